"""The main window: menus, docks, status bar, scene loading, errors as dialogs."""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
)

import viewer.modes  # noqa: F401  (registers the modes drawn with OpenGL: Gaussians)
from engine.assets import DENOISER
from engine.modes import MODES, SceneRenderers, build_renderers, get_mode
from engine.points.lod import scene_lod
from engine.scene.types import Scene
from engine.view_settings import ViewSettings
from viewer.panels.controls import ControlsPanel
from viewer.panels.fit import FitPanel
from viewer.panels.plots import ErrorPlot, FrameTimePlot
from viewer.panels.views import ViewsPanel
from viewer.viewport import Viewport
from viewer.window_files import FileActions
from viewer.window_latent import LatentActions
from viewer.worker import BackgroundTask


def _load(path: str, device, preloaded=None, progress=None) -> tuple[Scene, SceneRenderers]:
    """A scene and its renderers (neural when a fitted model exists, path tracing for Mitsuba
    scenes, with the bundled denoiser). ``progress``: stages and cancel (a capture's points)."""
    from engine.npbg.files import open_scene

    scene, model = preloaded if preloaded is not None else open_scene(path, device, progress)
    scene_lod(scene)  # a huge cloud's level-of-detail layout, built here, off the GUI thread
    return scene, build_renderers(scene, model, device, DENOISER)


class MainWindow(FileActions, LatentActions, QMainWindow):
    def __init__(self, settings: QSettings | None = None, device=None) -> None:
        super().__init__()
        self.qsettings = settings or QSettings("NeuralSceneViewer", "nsv")
        self._device_request = device
        self._device = None  # resolved when first needed (PyTorch loads after the window shows)
        self.setWindowTitle("Neural Scene Viewer")
        self.setAcceptDrops(True)

        self.viewport = Viewport(ViewSettings())
        # Central area: the scene viewport, or the Latent mode's generated image.
        from viewer.panels.latent import LatentPanel, LatentView

        self.latent_view = LatentView()
        self.central = QStackedWidget()
        self.central.addWidget(self.viewport)
        self.central.addWidget(self.latent_view)
        self.setCentralWidget(self.central)
        from viewer.panels.rendernet import RenderNetPanel

        self.latent_panel = LatentPanel(self.latent_view, lambda: self.device)
        self.rendernet_panel = RenderNetPanel(self.latent_view, lambda: self.device)
        self.rendernet_panel.active = False
        self.latent_tabs = QTabWidget()
        self.latent_tabs.addTab(self.latent_panel, "HoloGAN")
        self.latent_tabs.addTab(self.rendernet_panel, "RenderNet")
        self.latent_tabs.currentChanged.connect(self._latent_tab_changed)
        self.latent_view.orbit.connect(lambda a, e: self.latent_tabs.currentWidget().orbit(a, e))
        self.controls = ControlsPanel(self.viewport)
        self.views_panel = ViewsPanel(self.viewport)
        self.plot = FrameTimePlot(busy=self.viewport.is_moving)
        self.fit_panel = FitPanel(self)
        self.error_plot = ErrorPlot()
        self._dock("Controls", self.controls, Qt.LeftDockWidgetArea)
        self._dock("Views && photo", self.views_panel, Qt.RightDockWidgetArea)
        plot_dock = self._dock("Frame time", self.plot, Qt.BottomDockWidgetArea)
        fit_dock = self._dock("Train", self.fit_panel, Qt.RightDockWidgetArea)
        error_dock = self._dock("Error vs spp", self.error_plot, Qt.RightDockWidgetArea)
        views_dock = self.findChild(QDockWidget, "Views && photo")
        self.resizeDocks([plot_dock], [150], Qt.Vertical)
        self.resizeDocks([views_dock], [340], Qt.Horizontal)
        self.tabifyDockWidget(views_dock, fit_dock)
        self.tabifyDockWidget(fit_dock, error_dock)
        # Scrolls rather than forcing a tall window (sliders with thumbnail strips).
        latent_scroll = QScrollArea()
        latent_scroll.setWidget(self.latent_tabs)
        latent_scroll.setWidgetResizable(True)
        # Wide enough that no control is cut ("Open model...", "Lock"): it scrolls vertically.
        bar = latent_scroll.verticalScrollBar().sizeHint().width()
        latent_scroll.setMinimumWidth(self.latent_tabs.minimumSizeHint().width() + bar + 4)
        latent_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.latent_dock = self._dock("Latent", latent_scroll, Qt.RightDockWidgetArea)
        self.tabifyDockWidget(error_dock, self.latent_dock)
        from viewer.panels.camera_path import CameraPathPanel

        self.path_panel = CameraPathPanel(self.viewport, self.qsettings)
        self.path_panel.failed.connect(self.show_error)
        self.path_dock = self._dock("Camera path", self.path_panel, Qt.RightDockWidgetArea)
        self.tabifyDockWidget(self.latent_dock, self.path_dock)
        views_dock.raise_()
        # The window layout (size, docks) is remembered between runs.
        geometry = self.qsettings.value("window/geometry")
        state = self.qsettings.value("window/state")
        self._first_run_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

        self.status_label = QLabel("No scene")
        self.busy = QProgressBar(maximum=0, minimumWidth=260, visible=False)
        self.busy.setFormat("%v/%m")
        self.cancel_button = QPushButton("Cancel (Esc)", visible=False)
        self.cancel_button.clicked.connect(self.cancel_load)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.busy)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self._progress = None  # the running load's engine Progress (cancel goes through it)
        self.preview_scene: Scene | None = None  # shown while the scene it previews loads
        self._renderers = SceneRenderers()  # the shown scene's
        self.viewport.stats.connect(self._on_stats)

        self.scene: Scene | None = None
        self.scene_path: Path | None = None
        self.last_error: str | None = None
        self._task: BackgroundTask | None = None
        self._mode_before_latent = "gl"
        self._build_menus()
        self.controls.sync_available(SceneRenderers())
        self.controls.mode_changed.connect(self._on_mode_changed)

    def _first_run_geometry(self) -> None:
        """About 80% of the screen (at least what the docks need), centred and on screen;
        later runs restore the saved layout over it."""
        screen = self.screen().availableGeometry() if self.screen() else None
        if screen is None or screen.width() <= 0:
            self.resize(1280, 800)
            return
        need = self.minimumSizeHint()
        w = max(int(screen.width() * 0.8), need.width())
        h = max(int(screen.height() * 0.8), need.height())
        self.resize(w, h)
        self.move(screen.x() + max(0, (screen.width() - w) // 2),
                  screen.y() + max(0, (screen.height() - h) // 2))  # fmt: skip

    @property
    def device(self):
        """The torch device everything runs on (CUDA when present); importing PyTorch for it
        waits until something needs it, so the window shows first."""
        if self._device is None:
            from engine.device import pick_device

            self._device = pick_device(self._device_request)
        return self._device

    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open...", self.open_dialog, QKeySequence.Open)
        self._action(file_menu, "Open &folder (COLMAP)...", self.open_folder_dialog, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._refresh_recent()
        file_menu.addSeparator()
        self._action(file_menu, "&Import photos or capture folder...", self.import_folder_dialog,
                     "Ctrl+I")  # fmt: skip
        self._action(file_menu, "Import &video...", self.import_video_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "Save &screenshot...", self.screenshot_dialog, "Ctrl+S")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.Quit)

        view = self.menuBar().addMenu("&View")
        self._action(view, "&Frame all", self.viewport.frame_all, "F")
        self._action(view, "&Reset view", self.viewport.reset_view, "R")
        self.fly_action = self._action(view, "Fl&y mode", self._toggle_fly, "Y")
        self._action(view, "&Denoise (path trace)", self._toggle_denoise, "N")
        self._action(view, "Next de&noiser (path trace)", self._next_denoiser, "Shift+N")
        self._action(view, "Add &keyframe (camera path)", self._add_keyframe, "K")
        self._action(view, "&Play camera path", self.path_panel.toggle_play, "P")
        self._action(view, "&Bookmark this view", self._add_bookmark, "Ctrl+B")
        self.fly_action.setCheckable(True)
        self.viewport.settings.events.fly_mode.connect(lambda v, *_: self.fly_action.setChecked(v))
        view.addSeparator()
        # One action per registered mode; PySide6 passes `checked` to the slot, hence `_`.
        self.mode_actions: dict[str, QAction] = {}
        for m in MODES.values():
            slot = partial(self._mode_key, m.key)
            self.mode_actions[m.key] = self._action(view, m.label, slot, m.shortcut)
        self.latent_action = self.mode_actions["latent"]
        self.latent_action.setCheckable(True)

        help_menu = self.menuBar().addMenu("&Help")
        self._action(
            help_menu, "&Keyboard shortcuts", self.show_shortcuts, QKeySequence.HelpContents
        )

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        menu.addAction(act)
        self.addAction(act)
        return act

    def _mode_key(self, key: str, _checked: bool = False) -> None:
        """A mode's shortcut: select it (Latent's toggles back to the previous mode)."""
        if key == "latent":
            self.set_latent_mode(self.viewport.settings.mode != "latent")
        else:
            self.set_mode(key)

    def set_mode(self, key: str) -> bool:
        """Switch to a registered mode, as its shortcut does; says in the status bar why not
        when the open scene cannot show it."""
        mode = get_mode(key)
        if not self.controls.set_mode(key):
            self.status_label.setText(f"{mode.label} is not available: {mode.needs}")
            return False
        return True

    def _on_mode_changed(self, key: str) -> None:
        """Every mode change (combo, shortcut, code) ends here: show the view the mode draws."""
        latent = not get_mode(key).renders_scene
        self.latent_action.setChecked(latent)
        self.central.setCurrentWidget(self.latent_view if latent else self.viewport)
        if latent:
            # The scene's last frame no longer describes what is shown.
            self.status_label.setText(f"{get_mode(key).label} | sliders in the Latent dock")
            self._show_latent()
        else:
            self._mode_before_latent = key
            self.viewport.setFocus()

    def _in_path_trace(self, key: str) -> bool:
        """Whether a path-trace key applies now; in another mode the status bar says so."""
        if "pathtrace" not in get_mode(self.viewport.settings.mode).controls:
            self.status_label.setText(f"{key} works in Path trace mode (key 8)")
            return False
        return True

    def _toggle_denoise(self) -> None:
        if self._in_path_trace("N (denoise)"):
            self.controls.denoise.toggle()

    def _next_denoiser(self) -> None:
        """Shift+N: ours -> Intel OIDN -> ours | OIDN side by side -> ours (turns it on)."""
        if self._in_path_trace("Shift+N (next denoiser)"):
            self.controls.next_denoiser()

    def show_shortcuts(self) -> None:
        from viewer.shortcuts import ShortcutsDialog

        self.shortcuts_dialog = ShortcutsDialog(self)
        self.shortcuts_dialog.show()

    def _toggle_fly(self) -> None:
        self.viewport.settings.fly_mode = not self.viewport.settings.fly_mode  # all follow it

    # --- opening scenes ---------------------------------------------------------------------
    def open_path(self, path: str | Path) -> None:
        """Load a scene in the background; the window stays usable meanwhile. Loads that compute
        (a capture's points, triangulated the first time) show their stages in the status bar
        and in the terminal; Cancel or Esc stops them and keeps the scene shown before."""
        from engine.capture.progress import Progress

        path = str(path)
        self.status_label.setText(f"Loading {path} ...")
        self.busy.setRange(0, 0)
        self.busy.setVisible(True)
        task = BackgroundTask(lambda: _load(path, self.device, progress=progress), self)
        progress = Progress(task.report)
        self._progress = progress
        task.step.connect(self._load_step)
        task.done.connect(lambda res: self._loaded(path, *res))
        task.error.connect(self._load_failed)
        self._task = task
        self._load_started = time.perf_counter()
        self._stage = ("", 0.0)
        task.start()

    def _load_step(self, step) -> None:
        """A load's progress report: stage, count and an ETA from this stage's rate; a preview
        (the cameras, before the points) is shown at once; a finished stage's summary is
        printed."""
        if step.stage == "preview":
            self._show_preview(step.preview, step.info)
            return
        if step.stage == "found":
            print(f"nsv: {step.info}", file=sys.stderr, flush=True)
            return
        now = time.perf_counter()
        if step.stage != self._stage[0]:
            self._stage = (step.stage, now)
            print(f"nsv: {step.stage} ...", file=sys.stderr, flush=True)
        self.cancel_button.setVisible(True)
        self.busy.setRange(0, max(step.total, 0))
        self.busy.setValue(step.done)
        eta = ""
        if step.total and step.done:
            left = (now - self._stage[1]) / step.done * (step.total - step.done)
            eta = f", about {left:.0f} s left"
        count = f" {step.done}/{step.total}" if step.total else ""
        self.status_label.setText(f"Opening: {step.stage}{count}{eta} (Esc cancels)")

    def _show_preview(self, scene: Scene, what: str) -> None:
        """What exists of the scene being opened (its cameras): shown until it is complete."""
        self.preview_scene = scene
        self.viewport.set_scene(scene, SceneRenderers())
        self.views_panel.set_scene(scene)
        if not self.controls.is_available(self.viewport.settings.mode):
            self.controls.set_mode("gl")
        print(f"nsv: showing {what} while the rest loads", file=sys.stderr, flush=True)

    def cancel_load(self) -> None:
        """Stop the running load (Esc or the Cancel button); the viewer keeps what it showed."""
        if self._progress is not None and self.loading:
            self._progress.cancel()
            self.status_label.setText("Cancelling ...")

    def keyPressEvent(self, e) -> None:
        if e.key() == Qt.Key_Escape and self.loading:
            self.cancel_load()
            return
        super().keyPressEvent(e)

    def show_scene(self, path: str | Path, scene: Scene, model=None) -> None:
        """Show an already loaded scene (and its fitted model, if any)."""
        self._loaded(str(path), *_load(str(path), self.device, (scene, model)))

    @property
    def loading(self) -> bool:
        return self.busy.isVisible()

    def _loaded(self, path: str, scene: Scene, renderers: SceneRenderers) -> None:
        self.busy.setVisible(False)
        self.cancel_button.setVisible(False)
        self._progress = None
        if self.fit_panel.running:
            self.fit_panel.shutdown()
        # The finished scene keeps the view the user took of its preview (its cameras).
        keep_view = self.preview_scene is not None and self.preview_scene.source == scene.source
        self.preview_scene = None
        self.scene = scene
        self.scene_path = Path(path)
        self.viewport.set_scene(scene, renderers, keep_view=keep_view)
        self._renderers = renderers
        self.views_panel.set_scene(scene)
        self.path_panel.set_scene(str(Path(path).resolve()))
        self.controls.sync_available(renderers)
        neural = renderers.neural
        # The first mode that asks for this scene and can show it (registration order).
        auto = next(
            (m.key for m in MODES.values()
             if m.auto is not None and renderers.available(m) and m.auto(scene)),
            None,
        )  # fmt: skip
        if auto is not None:
            self.controls.set_mode(auto)
        elif not self.controls.is_available(self.viewport.settings.mode):
            self.controls.set_mode("gl")
        self.setWindowTitle(f"{scene.name} — Neural Scene Viewer")
        msg = f"Loaded {scene.name}: {scene.num_points:,} points, {len(scene.views)} views"
        if neural is not None:
            msg += ", fitted neural model"
        if scene.gaussians is not None:
            msg += f" ({scene.gaussians.describe()})"
        if scene.skipped_images:
            msg += (
                f" ({scene.skipped_images} photos listed in transforms.json are missing: skipped)"
            )
        if scene.dropped_points:
            msg += f" ({scene.dropped_points:,} points with NaN/inf coordinates skipped)"
        self.status_label.setText(msg)
        self._add_recent(path)

    def _load_failed(self, message: str) -> None:
        self.busy.setVisible(False)
        self.cancel_button.setVisible(False)
        cancelled = self._progress is not None and self._progress.cancelled
        self._progress = None
        if self.preview_scene is not None:  # back to what was shown before (or nothing)
            self.preview_scene = None
            if self.scene is not None:
                self.viewport.set_scene(self.scene, self._renderers)
                self.views_panel.set_scene(self.scene)
            else:
                self.viewport.clear_scene()
        if cancelled:  # the user's choice: no dialog; the previous scene (or none) stays
            self.status_label.setText("Opening cancelled")
            print("nsv: opening cancelled", file=sys.stderr, flush=True)
            return
        self.status_label.setText("Could not open: " + message)
        print(f"nsv: error: {message}", file=sys.stderr, flush=True)
        self.show_error(message)

    def show_error(self, message: str) -> None:
        """A non-blocking error dialog; the app stays usable."""
        self.last_error = message
        box = QMessageBox(QMessageBox.Critical, "Neural Scene Viewer", message, parent=self)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()
        self.error_box = box

    # --- status -------------------------------------------------------------------------------
    def _on_stats(self, s: dict) -> None:
        if self._progress is not None and self.loading:
            # A preview is on screen while the rest loads: the status line keeps saying what is
            # being loaded and that Esc cancels.
            if s.get("frame_ms"):
                self.plot.add(s["frame_ms"])
            return
        w, h = s["resolution"]
        mode = get_mode(s["mode"])
        label = mode.label
        if mode.status is not None:  # the mode words its own status line
            self.status_label.setText(f"{label} | {mode.status(s)}")
            if s.get("frame_ms"):  # (none while its first frame is being prepared)
                self.plot.add(s["frame_ms"])
            return
        self.statusBar().showMessage("")
        f = s.get("frame")
        moving = ""
        if self.viewport.is_moving() and mode.torch and f is not None:
            # How the moving frame was made: its size against the viewport's, and the network.
            how = [f"{round(100 * w / s['viewport'][0])}% size, scaled up"
                   if w < s["viewport"][0] - 1 else "full size"]  # fmt: skip
            if f.network == "preview":
                how.append("preview network")
            moving = f" (moving: {', '.join(how)})"
        if f is not None and f.error is not None:
            self.error_plot.add(f.error)
        if f is not None and f.spp:
            dn = ""
            if f.denoised:
                dn = f" | denoised ({f.denoiser})" if f.denoiser else " | denoised"
            self.status_label.setText(
                f"{label} | {s['frame_ms']:.1f} ms/sample | {f.spp} spp | Mitsuba "
                f"{f.variant} | {w}×{h}{dn}"
            )
        else:
            where = s["device"]
            runtime = f.runtime if f is not None else ""  # how a neural mode ran its network
            if runtime and runtime != "torch":
                where = f"{where}, {runtime.removeprefix('cuda ')}"
            drawn = ""  # a neural scene drawn at the scale it was fitted at, then enlarged
            if f is not None and f.drawn_size is not None:
                drawn = f", drawn at {f.drawn_size[0]}×{f.drawn_size[1]} (the fit's scale)"
            if f is not None and f.passes > 1:  # a still neural view, refined in passes
                drawn += f", {f.passes} passes"
            self.status_label.setText(
                f"{label} | {s['frame_ms']:.1f} ms | {s['points']:,} points | {where} | "
                f"{w}×{h}{drawn}{moving}"
            )
        self.plot.add(s["frame_ms"])

    def _add_bookmark(self) -> None:
        if self.scene is None:
            return
        self.path_panel.add_bookmark()
        self.path_dock.show()
        self.path_dock.raise_()

    def _add_keyframe(self) -> None:
        if self.scene is None:
            self.status_label.setText("Open a scene first, then add keyframes with K")
            return
        self.path_panel.add_current_view()
        self.path_dock.show()
        self.path_dock.raise_()

    def closeEvent(self, e) -> None:
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/state", self.saveState())
        self.rendernet_panel.shutdown()
        self.latent_panel.shutdown()
        self.fit_panel.shutdown()
        self.viewport.worker.stop()
        super().closeEvent(e)

    def open_when_shown(self, path: str | None) -> None:
        if path:
            QTimer.singleShot(0, lambda: self.open_path(path))
