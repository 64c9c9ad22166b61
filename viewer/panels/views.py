"""Registered views of a scene (e.g. COLMAP images): a list and the selected photo."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QSizePolicy, QVBoxLayout, QWidget

from engine.scene.types import Scene
from viewer.viewport import Viewport


class ViewsPanel(QWidget):
    def __init__(self, viewport: Viewport, parent=None) -> None:
        super().__init__(parent)
        self.viewport = viewport
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._on_row)
        self.photo = QLabel("Click a camera frustum or a name\nto see its view and photo.")
        self.photo.setAlignment(Qt.AlignCenter)
        self.photo.setMinimumHeight(160)
        self.photo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
        self._pixmap: QPixmap | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(self.photo, 3)
        layout.addWidget(self.list, 2)
        viewport.view_picked.connect(self.select)
        self._syncing = False

    def set_scene(self, scene: Scene) -> None:
        self._syncing = True
        self.list.clear()
        for v in scene.views:
            self.list.addItem(v.name + ("" if v.has_image else "  (no photo)"))
        self._syncing = False
        self._pixmap = None
        self.photo.setText("No registered views." if not scene.views else "Pick a view.")

    def select(self, index: int) -> None:
        self._syncing = True
        self.list.setCurrentRow(index)
        self._syncing = False
        self._show_photo(index)

    def _on_row(self, row: int) -> None:
        if self._syncing or row < 0:
            return
        self.viewport.jump_to_view(row)
        self._show_photo(row)

    def _show_photo(self, index: int) -> None:
        scene = self.viewport.scene
        if scene is None or not (0 <= index < len(scene.views)):
            return
        view = scene.views[index]
        if not view.has_image:
            self._pixmap = None
            self.photo.setText(f"{view.name}\n(photo not found)")
            return
        pm = QPixmap(str(view.image_path))
        if pm.isNull():
            self._pixmap = None
            self.photo.setText(f"{view.name}\n(cannot read the photo)")
            return
        self._pixmap = pm
        self._rescale()

    @property
    def showing_photo(self) -> bool:
        return self._pixmap is not None

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is not None:
            self.photo.setPixmap(
                self._pixmap.scaled(self.photo.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation)
            )
