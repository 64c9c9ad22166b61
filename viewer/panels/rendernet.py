"""RenderNet tab of Latent mode: open a mesh (or voxel grid), orbit it, pick the shading style,
compare with a conventional render of the same mesh."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from engine.errors import NsvError

if TYPE_CHECKING:  # PyTorch and the model load when the tab is first used
    from engine.latent.voxel_render import VoxelOptions, VoxelRenderer
from viewer.panels.latent import LatentView, ViewDriver, _slider

MESH_FILTER = "Meshes (*.obj *.ply *.stl *.glb *.gltf *.off);;Voxel grid (*.npy);;All files (*)"


class RenderNetPanel(ViewDriver):
    status_prefix = "RenderNet "

    def __init__(self, view: LatentView, device="cpu", parent=None) -> None:
        super().__init__(view, device, parent)
        self.renderer: VoxelRenderer | None = None
        self.model_label = QLabel("no model")
        self.mesh_label = QLabel("no mesh")
        open_btn = QPushButton("Open mesh...")
        open_btn.clicked.connect(self.open_mesh_dialog)
        self.style = QComboBox()
        self.compare = QCheckBox("Compare with conventional render")
        self.azimuth = _slider(0, 359, 30)
        self.elevation = _slider(-10, 60, 25)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Style", self.style)
        form.addRow("Azimuth", self.azimuth)
        form.addRow("Elevation", self.elevation)
        lay = QVBoxLayout(self)
        lay.addWidget(self.model_label)
        lay.addWidget(self.mesh_label)
        lay.addWidget(open_btn)
        lay.addLayout(form)
        lay.addWidget(self.compare)
        lay.addWidget(self.status)
        lay.addStretch(1)
        for s in (self.azimuth, self.elevation):
            s.valueChanged.connect(self.request)
        self.style.currentIndexChanged.connect(self.request)
        self.compare.toggled.connect(self.request)

    def load_model(self, folder: str | Path) -> None:
        from engine.latent.rendernet import load_rendernet
        from engine.latent.voxel_render import VoxelRenderer

        model = load_rendernet(folder, self.device)
        self.renderer = VoxelRenderer(model, self.device)
        self.style.blockSignals(True)
        self.style.clear()
        self.style.addItems(model.cfg.styles)
        self.style.blockSignals(False)
        steps = getattr(model, "summary", {}).get("steps")
        self.model_label.setText(
            f"RenderNet {model.cfg.voxels}³ → {model.cfg.res}² ({steps} steps)"
        )

    def set_mesh(self, path: str | Path) -> None:
        """Voxelize and show a mesh; errors leave the previous mesh in place."""
        if self.renderer is None:
            raise NsvError("no RenderNet model loaded")
        self.renderer.set_mesh(path)
        self.mesh_label.setText(f"{Path(path).name} (voxelized {self.renderer.model.cfg.voxels}³)")
        self.request()

    def open_mesh_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open mesh for RenderNet", "", MESH_FILTER)
        if path:
            try:
                self.set_mesh(path)
            except NsvError as e:
                self.status.setText(str(e))

    def options(self) -> VoxelOptions:
        from engine.latent.voxel_render import VoxelOptions

        return VoxelOptions(self.style.currentText() or "phong", float(self.azimuth.value()),
                            float(self.elevation.value()), 256, self.compare.isChecked())  # fmt: skip

    def ready(self) -> bool:
        return self.renderer is not None and self.renderer.voxels is not None
