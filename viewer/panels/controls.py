"""Render and navigation controls."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.modes import MODES, SceneRenderers
from engine.pathtrace import DENOISERS
from viewer.viewport import Viewport


class ControlsPanel(QWidget):
    """Edits the viewport's ViewSettings; every change re-renders at once."""

    mode_changed = Signal(str)  # a mode key of engine.modes.MODES

    def __init__(self, viewport: Viewport, parent=None) -> None:
        super().__init__(parent)
        self.viewport = viewport
        s = viewport.settings
        form = QFormLayout()

        self.mode = QComboBox()
        for m in MODES.values():
            self.mode.addItem(f"{m.label}  ({m.shortcut})", m.key)
        self.mode.setCurrentIndex(list(MODES).index(s.mode))
        self.mode.currentIndexChanged.connect(self._on_mode)
        form.addRow("Render", self.mode)

        self.point_size = QSpinBox(minimum=1, maximum=15, value=s.point_size, suffix=" px")
        self.point_size.valueChanged.connect(lambda v: self._set("point_size", int(v)))
        form.addRow("Point size", self.point_size)

        self.scale = QSpinBox(minimum=0, maximum=4, value=s.scale, prefix="1/2^")
        self.scale.setToolTip("Rasterizer pyramid level shown (0 = full resolution)")
        self.scale.valueChanged.connect(lambda v: self._set("scale", int(v)))
        form.addRow("Raster scale", self.scale)

        self.wipe = QSlider(Qt.Horizontal, minimum=0, maximum=100, value=int(s.wipe * 100))
        self.wipe.setToolTip(
            "Compare mode: neural left of the line; path-trace split: where noisy ends"
        )
        self.wipe.valueChanged.connect(lambda v: self._set("wipe", v / 100))
        self.compare_with = QComboBox()
        self.compare_with.addItem("splatting", "splat")
        self.compare_with.addItem("nearest photo", "photo")
        self.compare_with.addItem("Gaussian splats (the capture's)", "gaussians")
        self.compare_with.currentIndexChanged.connect(
            lambda _i: self._set("compare_with", self.compare_with.currentData())
        )
        self.pt_view = QComboBox()
        for v in ("color", "albedo", "normal", "depth", "reference"):
            self.pt_view.addItem(v, v)
        self.pt_view.currentIndexChanged.connect(
            lambda _i: self._set("pt_view", self.pt_view.currentData())
        )
        form.addRow("Path trace view", self.pt_view)
        self.denoise = QCheckBox("Denoise (N)", checked=s.pt_denoise)
        self.denoise.toggled.connect(lambda v: self._set("pt_denoise", bool(v)))
        self.split = QCheckBox("Split: noisy | denoised | ref.", checked=s.pt_split)
        self.split.toggled.connect(lambda v: self._set("pt_split", bool(v)))
        row = QHBoxLayout()
        row.addWidget(self.denoise)
        row.addWidget(self.split)
        form.addRow("", row)
        self.denoiser = QComboBox()
        for key, label in DENOISERS.items():
            self.denoiser.addItem(label, key)
        self.denoiser.setCurrentIndex(list(DENOISERS).index(s.pt_denoiser))
        self.denoiser.currentIndexChanged.connect(
            lambda _i: self._set("pt_denoiser", self.denoiser.currentData())
        )
        form.addRow("Denoiser (Shift+N)", self.denoiser)
        self.reference = QCheckBox("Reference (256 spp) and error plot", checked=s.pt_reference)
        self.reference.toggled.connect(lambda v: self._set("pt_reference", bool(v)))
        form.addRow("", self.reference)
        form.addRow("Wipe", self.wipe)
        form.addRow("Compare with", self.compare_with)

        self.fov = QSlider(Qt.Horizontal, minimum=10, maximum=120, value=int(s.fov_y_deg))
        self.fov.valueChanged.connect(lambda v: viewport.set_fov(float(v)))
        form.addRow("Field of view", self.fov)

        self.show_cameras = QCheckBox("Show cameras", checked=s.show_cameras)
        self.show_cameras.toggled.connect(lambda v: self._set("show_cameras", bool(v)))
        self.dynamic = QCheckBox("Dynamic resolution while moving", checked=s.dynamic_resolution)
        self.dynamic.toggled.connect(lambda v: self._set("dynamic_resolution", bool(v)))
        self.fly = QCheckBox("Fly mode (WASD/QE, mouse look)", checked=s.fly_mode)
        self.fly.toggled.connect(lambda v: self._set("fly_mode", bool(v)))

        frame_all = QPushButton("Frame all")
        frame_all.clicked.connect(viewport.frame_all)
        reset = QPushButton("Reset view")
        reset.clicked.connect(viewport.reset_view)
        buttons = QHBoxLayout()
        buttons.addWidget(frame_all)
        buttons.addWidget(reset)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for w in (self.show_cameras, self.dynamic, self.fly):
            layout.addWidget(w)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self._sync_enabled()
        self._follow(s)

    def _on_mode(self, _index: int) -> None:
        key = self.mode.currentData()
        if key != self.viewport.settings.mode:
            self._set("mode", key)
        self._sync_enabled()
        self.mode_changed.emit(key)

    def next_denoiser(self) -> None:
        """The next entry of the denoiser list, with the denoiser turned on."""
        self.denoise.setChecked(True)
        self.denoiser.setCurrentIndex((self.denoiser.currentIndex() + 1) % self.denoiser.count())

    def _set(self, name: str, value) -> None:
        setattr(self.viewport.settings, name, value)  # the viewport observes the state

    def _sync_enabled(self) -> None:
        """The shared widgets a mode uses are enabled (each mode names them: Mode.controls)."""
        uses = MODES[self.viewport.settings.mode].controls
        self.scale.setEnabled("scale" in uses)
        self.point_size.setEnabled("point_size" in uses)
        self.wipe.setEnabled("wipe" in uses)
        self.compare_with.setEnabled("compare_with" in uses)
        for w in (self.pt_view, self.denoise, self.denoiser, self.split, self.reference):
            w.setEnabled("pathtrace" in uses)

    def sync_available(self, renderers: SceneRenderers) -> None:
        """Modes are selectable only when the open scene has their renderer (a fitted model
        for the neural modes, a Mitsuba scene for path tracing); the tooltip says what's
        missing."""
        model = self.mode.model()
        for i, m in enumerate(MODES.values()):
            ok = renderers.available(m)
            model.item(i).setEnabled(ok)
            model.item(i).setToolTip("" if ok else m.needs)
        # Compare against Gaussian splats: where the capture folder holds a splatting result.
        item = self.compare_with.model().item(self.compare_with.findData("gaussians"))
        item.setEnabled(renderers.by_name.get("gaussians") is not None)
        item.setToolTip("" if item.isEnabled() else "No Gaussian splatting file in the capture")

    def is_available(self, key: str) -> bool:
        return self.mode.model().item(list(MODES).index(key)).isEnabled()

    def set_mode(self, key: str) -> bool:
        """Select a mode as the combo box would; False (and nothing changes) when it's not
        available for the open scene."""
        if not self.is_available(key):
            return False
        self.mode.setCurrentIndex(list(MODES).index(key))
        return True

    def _follow(self, s) -> None:
        """Widgets follow the state, whoever changed it (a key, a script)."""
        ev = s.events
        ev.fly_mode.connect(lambda v, *_: self.fly.setChecked(v))
        ev.dynamic_resolution.connect(lambda v, *_: self.dynamic.setChecked(v))
        ev.show_cameras.connect(lambda v, *_: self.show_cameras.setChecked(v))
        ev.pt_denoise.connect(lambda v, *_: self.denoise.setChecked(v))
        ev.pt_split.connect(lambda v, *_: self.split.setChecked(v))
        ev.pt_reference.connect(lambda v, *_: self.reference.setChecked(v))
        ev.point_size.connect(lambda v, *_: self.point_size.setValue(v))
        ev.scale.connect(lambda v, *_: self.scale.setValue(v))
        ev.wipe.connect(lambda v, *_: self.wipe.setValue(round(v * 100)))
        ev.fov_y_deg.connect(lambda v, *_: self.fov.setValue(round(v)))
