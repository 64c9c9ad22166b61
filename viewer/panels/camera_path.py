"""Camera path dock: keyframes (K adds the current view), their order and durations, play and
scrub in the viewport, save / load (ours and nerfstudio's camera_path.json); and bookmarks
(Ctrl+B), saved views of the open scene remembered between runs. The path itself and its
interpolation live in ``engine.camera_path``; ``nsv render --path`` renders the same file."""

from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.camera import Camera
from engine.camera_path import CameraPath, Keyframe
from engine.errors import NsvError
from viewer.viewport import Viewport

SCRUB_STEPS = 1000


class CameraPathPanel(QWidget):
    failed = Signal(str)  # a file could not be read / written: the window shows it

    def __init__(self, viewport: Viewport, settings=None, parent=None) -> None:
        super().__init__(parent)
        self.viewport = viewport
        self.settings = settings  # QSettings holding bookmarks per scene, or None
        self.scene_key: str | None = None
        self.bookmarks: list[dict] = []  # {"name", "camera": Camera.to_dict()}
        self.path = CameraPath()
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._on_row)
        self.add_btn = QPushButton("Add (K)")
        self.delete_btn = QPushButton("Delete")
        self.up_btn = QPushButton("Up")
        self.down_btn = QPushButton("Down")
        self.play_btn = QPushButton("Play (P)")
        self.save_btn = QPushButton("Save...")
        self.load_btn = QPushButton("Load...")
        self.export_btn = QPushButton("nerfstudio...")
        self.export_btn.setToolTip("Export as nerfstudio's camera_path.json")
        self.duration = QDoubleSpinBox(minimum=0.05, maximum=600.0, value=1.0, singleStep=0.25)
        self.duration.setSuffix(" s")
        self.scrub = QSlider(Qt.Horizontal)
        self.scrub.setRange(0, SCRUB_STEPS)
        self.info = QLabel("No keyframes: press K to add the current view.")
        self.info.setWordWrap(True)
        grid = QGridLayout()
        buttons = (self.add_btn, self.delete_btn, self.up_btn, self.down_btn,
                   self.play_btn, self.save_btn, self.load_btn, self.export_btn)  # fmt: skip
        for i, b in enumerate(buttons):
            grid.addWidget(b, i // 4, i % 4)
        form = QFormLayout()
        form.addRow("Time to next", self.duration)
        form.addRow("Scrub", self.scrub)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list, 1)
        lay.addLayout(grid)
        lay.addLayout(form)
        lay.addWidget(self.info)
        marks = QGroupBox("Bookmarks (Ctrl+B saves the view; click one to go back)")
        self.mark_list = QListWidget()
        self.mark_list.itemClicked.connect(
            lambda item: self.go_to_bookmark(self.mark_list.row(item))
        )
        self.mark_btn = QPushButton("Save view (Ctrl+B)")
        self.unmark_btn = QPushButton("Delete")
        self.mark_btn.clicked.connect(self.add_bookmark)
        self.unmark_btn.clicked.connect(self.delete_bookmark)
        ml = QVBoxLayout(marks)
        ml.addWidget(self.mark_list)
        row = QHBoxLayout()
        row.addWidget(self.mark_btn)
        row.addWidget(self.unmark_btn)
        ml.addLayout(row)
        lay.addWidget(marks, 1)
        self.add_btn.clicked.connect(self.add_current_view)
        self.delete_btn.clicked.connect(self.delete_selected)
        self.up_btn.clicked.connect(lambda: self.move_selected(-1))
        self.down_btn.clicked.connect(lambda: self.move_selected(1))
        self.play_btn.clicked.connect(self.toggle_play)
        self.save_btn.clicked.connect(self.save_dialog)
        self.load_btn.clicked.connect(self.load_dialog)
        self.export_btn.clicked.connect(lambda: self.save_dialog(nerfstudio=True))
        self.duration.valueChanged.connect(self._on_duration)
        self.scrub.valueChanged.connect(self._on_scrub)
        self._clock = QElapsedTimer()
        self._timer = QTimer(self, interval=33, timeout=self._tick)
        self._start_t = 0.0
        self._syncing = False

    # --- editing -----------------------------------------------------------------------------
    def add_current_view(self) -> None:
        """Append the viewport's current camera (after the selected keyframe, if any)."""
        cam = self.viewport.current_camera()
        if not self.path.keyframes:
            self.path.width, self.path.height = (
                cam.width - cam.width % 2,
                cam.height - cam.height % 2,
            )
        row = self.list.currentRow()
        at = row + 1 if row >= 0 else len(self.path.keyframes)
        self.path.keyframes.insert(at, Keyframe.from_camera(cam, self.duration.value()))
        self._refresh(at)

    def delete_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.path.keyframes):
            del self.path.keyframes[row]
            self._refresh(min(row, len(self.path.keyframes) - 1))

    def move_selected(self, step: int) -> None:
        row = self.list.currentRow()
        to = row + step
        ks = self.path.keyframes
        if 0 <= row < len(ks) and 0 <= to < len(ks):
            ks[row], ks[to] = ks[to], ks[row]
            self._refresh(to)

    def _on_duration(self, value: float) -> None:
        row = self.list.currentRow()
        if not self._syncing and 0 <= row < len(self.path.keyframes):
            self.path.keyframes[row].duration = float(value)
            self._refresh(row)

    def _refresh(self, select: int = -1) -> None:
        self._syncing = True
        self.list.clear()
        t = 0.0
        for i, k in enumerate(self.path.keyframes):
            pos = np.round(k.camera_to_world[:3, 3], 2)
            self.list.addItem(f"{i + 1}.  t = {t:.2f} s   fov {k.fov:.0f}°   at {pos.tolist()}")
            t += k.duration
        if 0 <= select < len(self.path.keyframes):
            self.list.setCurrentRow(select)
            self.duration.setValue(self.path.keyframes[select].duration)
        self._syncing = False
        n = len(self.path.keyframes)
        self.info.setText(
            f"{n} keyframes, {self.path.duration:.2f} s at {self.path.fps:g} fps "
            f"({self.path.num_frames} frames, {self.path.width}x{self.path.height}). "
            "Render it: nsv render SCENE --path FILE --out flight.mp4"
            if n
            else "No keyframes: press K to add the current view."
        )

    def _on_row(self, row: int) -> None:
        if self._syncing or not (0 <= row < len(self.path.keyframes)):
            return
        self.duration.blockSignals(True)
        self.duration.setValue(self.path.keyframes[row].duration)
        self.duration.blockSignals(False)
        t = sum(k.duration for k in self.path.keyframes[:row])
        self.show_time(t)

    # --- playback ------------------------------------------------------------------------------
    def show_time(self, t: float) -> None:
        """Put the viewport's camera where the path is at ``t`` seconds."""
        if not self.path.keyframes:
            return
        w, h = self.viewport.pixel_size()
        cam = self.path.camera_at(t, w, h)
        self.viewport.show_camera(cam, moving=self.playing)

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def toggle_play(self) -> None:
        if self.playing:
            self._timer.stop()
            self.play_btn.setText("Play (P)")
            self.viewport.settings_changed()  # the last frame at full quality
            return
        if len(self.path.keyframes) < 2:
            self.info.setText("Add at least two keyframes to play the path.")
            return
        frac = self.scrub.value() / SCRUB_STEPS
        self._start_t = 0.0 if frac >= 1 else frac * self.path.duration
        self._clock.start()
        self._timer.start()
        self.play_btn.setText("Stop (P)")

    def _tick(self) -> None:
        t = self._start_t + self._clock.elapsed() / 1000.0
        done = t >= self.path.duration
        t = min(t, self.path.duration)
        self._syncing = True
        self.scrub.setValue(round(SCRUB_STEPS * t / max(self.path.duration, 1e-9)))
        self._syncing = False
        self.show_time(t)
        if done:
            self.toggle_play()

    def _on_scrub(self, value: int) -> None:
        if not self._syncing and self.path.keyframes:
            self.show_time(value / SCRUB_STEPS * self.path.duration)

    # --- bookmarks -----------------------------------------------------------------------------
    def set_scene(self, key: str) -> None:
        """Show the bookmarks saved for the scene ``key`` (its path)."""
        self.scene_key = key
        self.bookmarks = []
        if self.settings is not None:
            try:
                self.bookmarks = json.loads(self.settings.value(self._settings_key(), "[]"))
            except (TypeError, ValueError):
                self.bookmarks = []  # unreadable settings: start afresh, never fail to open
        self._refresh_marks()

    def _settings_key(self) -> str:
        return "bookmarks/" + (self.scene_key or "").replace("/", "|")

    def add_bookmark(self) -> None:
        if self.scene_key is None:
            return
        cam = self.viewport.current_camera()
        self.bookmarks.append({"name": f"View {len(self.bookmarks) + 1}", "camera": cam.to_dict()})
        self._store_marks()

    def delete_bookmark(self) -> None:
        row = self.mark_list.currentRow()
        if 0 <= row < len(self.bookmarks):
            del self.bookmarks[row]
            self._store_marks()

    def go_to_bookmark(self, row: int) -> None:
        if 0 <= row < len(self.bookmarks):
            w, h = self.viewport.pixel_size()
            cam = Camera.from_dict(self.bookmarks[row]["camera"])
            self.viewport.show_camera(Camera.from_fov(w, h, cam.fov_y_deg, cam.world_to_camera))

    def _store_marks(self) -> None:
        if self.settings is not None:
            self.settings.setValue(self._settings_key(), json.dumps(self.bookmarks))
        self._refresh_marks()

    def _refresh_marks(self) -> None:
        self.mark_list.clear()
        for b in self.bookmarks:
            self.mark_list.addItem(b["name"])

    # --- files ---------------------------------------------------------------------------------
    def save(self, file: str, nerfstudio: bool = False) -> None:
        self.path.save(file, nerfstudio=nerfstudio)
        self.info.setText(f"Saved {file}")

    def load(self, file: str) -> None:
        self.path = CameraPath.load(file)
        self._refresh(0)
        self.show_time(0.0)

    def save_dialog(self, nerfstudio: bool = False) -> None:
        if not self.path.keyframes:
            self.info.setText("Nothing to save: add keyframes with K first.")
            return
        name = "camera_path.json" if nerfstudio else "path.json"
        file, _ = QFileDialog.getSaveFileName(self, "Save camera path", name, "JSON (*.json)")
        if file:
            try:
                self.save(file, nerfstudio)
            except OSError as e:
                self.failed.emit(f"{file}: cannot write ({e.strerror})")

    def load_dialog(self) -> None:
        file, _ = QFileDialog.getOpenFileName(
            self, "Load camera path (ours or nerfstudio's)", "", "JSON (*.json)"
        )
        if file:
            try:
                self.load(file)
            except NsvError as e:
                self.failed.emit(str(e))
