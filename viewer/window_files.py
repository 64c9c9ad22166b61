"""The main window's file actions: open dialogs, importing captures, drag and drop, recent
files and screenshots (a mixin of :class:`viewer.main_window.MainWindow`)."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

MAX_RECENT = 10
OPEN_FILTER = (
    "Scenes (*.ply *.splat *.spz *.las *.laz *.e57 *.pcd *.xyz *.pts *.txt *.obj *.stl *.glb *.gltf "
    "*.off *.xml *.json cameras.bin images.bin);;"
    "All files (*)"
)


class FileActions:
    """Needs the window's open_path, status_label, viewport, qsettings, recent_menu and
    show_error."""

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open scene", "", OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open a COLMAP or NeRF (transforms.json) folder"
        )
        if path:
            self.open_path(path)

    # --- importing captures -------------------------------------------------------------------
    def import_folder_dialog(self) -> None:
        src = QFileDialog.getExistingDirectory(
            self, "Import: a folder of photos, a NeRF capture (transforms.json) or COLMAP folder"
        )
        if src:
            self._ask_output_and_import(Path(src))

    def import_video_dialog(self) -> None:
        src, _ = QFileDialog.getOpenFileName(
            self, "Import video", "", "Videos (*.mp4 *.mov *.m4v *.avi *.mkv *.webm);;All (*)"
        )
        if src:
            self._ask_output_and_import(Path(src))

    def _ask_output_and_import(self, src: Path) -> None:
        default = src.parent / f"{src.stem if src.is_file() else src.name}_nsv"
        out, _ = QFileDialog.getSaveFileName(
            self, "Write the imported scene to folder", str(default)
        )
        if out:
            self.start_import(src, Path(out))

    def start_import(self, src: Path, out: Path, options=None):
        """Run the import pipeline in the background; open the result when it finishes."""
        from engine.capture.importer import ImportOptions
        from viewer.panels.import_dialog import ImportDialog

        dlg = ImportDialog(Path(src), Path(out), options or ImportOptions(), self)
        dlg.accepted.connect(lambda: self.open_path(dlg.result) if dlg.result else None)
        dlg.failed.connect(lambda m: m and self.status_label.setText("Import failed: " + m))
        self.import_dialog = dlg
        dlg.show()
        dlg.start()
        return dlg

    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        urls = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0])
            e.acceptProposedAction()

    # --- recent files -------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.qsettings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value or []]

    def _add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        items = [p for p in self.recent_files() if p != path]
        self.qsettings.setValue("recent", [path, *items][:MAX_RECENT])
        self.qsettings.sync()
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        items = self.recent_files()
        for p in items:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, p=p: self.open_path(p))
        self.recent_menu.setEnabled(bool(items))

    # --- screenshot ---------------------------------------------------------------------------
    def screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save screenshot", "screenshot.png", "PNG (*.png)"
        )
        if path:
            self.save_screenshot(path)

    def save_screenshot(self, path: str | Path) -> Path:
        """Write the viewport as PNG, plus ``<name>.camera.json`` for ``nsv render --camera``."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        img = self.viewport.grab_qimage()
        if not img.save(str(path), "PNG"):
            self.show_error(f"{path}: cannot write the screenshot")
            return path
        cam = self.viewport.current_camera()
        cam_path = path.with_suffix(".camera.json")
        cam_path.write_text(json.dumps(cam.to_dict(), indent=1))
        self.status_label.setText(f"Saved {path} and {cam_path.name}")
        return path
