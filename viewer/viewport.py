"""The 3D viewport: a QOpenGLWidget owning the moderngl context. It draws and takes input;
rendering with the torch engine happens in the RenderWorker thread.

Input: left drag orbits (mouse look in fly mode), right/middle drag pans, the wheel zooms
(changes speed in fly mode), WASD/QE fly (Shift = faster), a left click on a camera frustum
jumps to that view.
"""

from __future__ import annotations

from typing import Any

import moderngl
import numpy as np
from PySide6.QtCore import (
    QElapsedTimer,
    QObject,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtOpenGLWidgets import QOpenGLWidget

from engine.camera import Camera
from engine.frame import GAUSSIANS_LABEL, Frame
from engine.frame_schedule import IDLE_REFINE_S, FrameScheduler
from engine.modes import MODES, Mode, SceneRenderers, get_mode
from engine.navigation import Navigator, frustum_depth, home_navigator
from engine.scene.types import Scene
from engine.view_settings import NOT_DRAWN, ViewSettings
from viewer.gc_pause import pause_gc, resume_gc
from viewer.gl.points import FrustumsGL, ImageQuadGL, clear
from viewer.gl.points_view import PointsDrawer
from viewer.viewport_input import ViewportInput
from viewer.worker import RenderRequest, RenderResult, RenderWorker


def _describe(device) -> str:
    from engine.device import describe  # PyTorch is loaded by the time a frame is rendered

    return describe(device)


class _Wake(QObject):
    fire = Signal()


class Viewport(ViewportInput, QOpenGLWidget):
    """Shows a scene. Emits ``stats`` after each displayed frame and ``view_picked`` on clicks."""

    stats = Signal(dict)  # frame_ms, points, device, resolution, mode
    view_picked = Signal(int)
    camera_changed = Signal()

    def __init__(self, settings: ViewSettings | None = None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings or ViewSettings()
        # The state is evented: whoever changes a setting (a panel, a key, a script), the view
        # follows; set_fov / settings_changed stay for callers that want it at once.
        self.settings.events.connect(self._on_setting)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMinimumSize(320, 240)
        self.scene: Scene | None = None
        self.nav = Navigator()
        self.renderers = SceneRenderers()
        self.selected_view: int | None = None
        self.ctx: moderngl.Context | None = None
        self._frustums: FrustumsGL | None = None
        self._quad: ImageQuadGL | None = None
        self._scene_dirty = False
        self._frustums_dirty = False
        self._full_quality = False  # set while grabbing a screenshot
        self._frame: Frame | None = None
        self._frame_dirty = False
        self.schedule = FrameScheduler()  # sizes, refinement and stale results (Qt-free)
        self._drawers: dict = {}  # GL drawers of modes that have one (Mode.gl), by mode key
        self._gl_complete = False  # the drawer's last paint showed the current camera fully
        self._wake = _Wake()  # a drawer's thread asks for a repaint through a queued signal
        self._wake.fire.connect(self.update)
        self._press: dict | None = None
        self._keys: set[int] = set()
        self._fly_clock = QElapsedTimer()
        self._fly_timer = QTimer(self, interval=15, timeout=self._fly_tick)
        self._refine_timer = QTimer(self, singleShot=True, timeout=self._refine)
        self._refine_timer.setTimerType(Qt.PreciseTimer)
        self.worker = RenderWorker()
        self.worker.frame_ready.connect(self._on_frame)
        self.worker.failed.connect(self._on_render_failed)
        self.last_error: str | None = None
        self.setAcceptDrops(False)  # the main window handles drops

    # --- scene & state ------------------------------------------------------------------
    @property
    def cost(self):
        """The per-mode frame-cost model (engine.frame_cost.FrameCost)."""
        return self.schedule.cost

    @property
    def mode(self) -> Mode:
        return get_mode(self.settings.mode)

    @property
    def renderer(self):
        """The torch point renderer of the open scene (None before one is open)."""
        return self.renderers.points

    @property
    def neural(self) -> Any:
        return self.renderers.neural

    def set_scene(self, scene: Scene, renderers: SceneRenderers, keep_view: bool = False) -> None:
        """Show a new scene (the renderers already hold it on the device); ``keep_view``: stay
        where the camera is (the scene completes the preview shown before)."""
        self.scene = scene
        self.renderers = renderers
        if not keep_view:
            self.nav = home_navigator(scene, self.settings.fov_y_deg)
        self.selected_view = None
        self._frame = None
        self.schedule.drop_in_flight()  # frames of the previous scene still in flight
        self._scene_dirty = True
        self._interacted(refine_now=True)

    def clear_scene(self) -> None:
        """Show nothing (a cancelled first open)."""
        self.scene = None
        self.renderers = SceneRenderers()
        self._frame = None
        self.schedule.drop_in_flight()
        self._scene_dirty = True
        self.update()

    def frame_all(self) -> None:
        if self.scene is None:
            return
        center, radius = self.scene.bounds()
        self.nav.frame_points(center, radius)
        self._interacted(refine_now=True)

    def reset_view(self) -> None:
        self.nav.reset()
        self._interacted(refine_now=True)

    def set_fov(self, fov_y_deg: float) -> None:
        self.settings.fov_y_deg = fov_y_deg  # _on_setting updates the navigator and redraws

    def _on_setting(self, info) -> None:
        name = info.signal.name
        if name in NOT_DRAWN:
            return
        if name == "fov_y_deg":
            self.nav.fov_y_deg = self.settings.fov_y_deg
            self.nav.exact = None
        self._interacted(refine_now=True)

    def settings_changed(self) -> None:
        """Call after editing ``settings`` (mode, point size, ...): re-render at once."""
        self._interacted(refine_now=True)

    def preview(self, scale: float) -> None:
        """Re-render the still view at ``scale`` of the full resolution (a cheap refresh, e.g.
        of a model being trained); the next camera stop renders full quality again."""
        if not self.is_moving():
            self._request_render(scale=scale)
            self.update()

    def jump_to_view(self, index: int) -> None:
        if self.scene is None or not (0 <= index < len(self.scene.views)):
            return
        self.selected_view = index
        self._update_frustums()
        self.show_camera(self.scene.views[index].camera)

    def show_camera(self, cam: Camera, moving: bool = False) -> None:
        """Look through ``cam`` (pose and field of view). ``moving``: one frame of an animation,
        rendered like a camera being dragged (reduced resolution, refined after it stops)."""
        pivot = None
        if self.scene is not None:
            center, _ = self.scene.bounds()
            pivot = float(np.dot(center - cam.position, cam.forward))
        self.nav.jump_to(cam, pivot_distance=pivot)
        self._interacted(refine_now=not moving)

    def pixel_size(self) -> tuple[int, int]:
        dpr = self.devicePixelRatioF()
        return max(1, int(self.width() * dpr)), max(1, int(self.height() * dpr))

    def current_camera(self) -> Camera:
        w, h = self.pixel_size()
        return self.nav.camera(w, h)

    def is_settled(self) -> bool:
        """True when the newest requested frame is on screen (GL points: always; a mode's GL
        drawer: when it drew the current camera completely)."""
        if self.mode.gl is not None:
            return self._gl_complete and not self.is_moving()
        if self._active_renderer() is None:
            return True
        if self.mode.progressive:
            # Progressive: the worker never idles; settled = showing samples of this view.
            return self._frame is not None and np.allclose(
                self._frame.camera.world_to_camera, self.current_camera().world_to_camera
            )
        # A pending refinement (camera just stopped) means the final frame is still to come.
        refining = self._refine_timer.isActive() or self.schedule.refining
        return (
            self.worker.idle
            and self.schedule.shown_id == self.schedule.next_id
            and not self._frame_dirty
            and not refining
        )

    def is_moving(self) -> bool:
        return self.schedule.is_moving()

    # --- rendering ----------------------------------------------------------------------
    def _interacted(self, refine_now: bool = False) -> None:
        self.schedule.interacted(refine_now)
        if refine_now:
            resume_gc()
        else:
            self._refine_timer.start(int(IDLE_REFINE_S * 1000) + 10)
            pause_gc(IDLE_REFINE_S)
        self._request_render()
        self.camera_changed.emit()
        if self._drawn_by_gl() or self._active_renderer() is None or self._frame is None:
            self.update()
        # else the worker's last frame stays until the next one arrives (_on_frame repaints):
        # repainting the same picture per mouse event took CPU from the renderer.

    def _refine(self) -> None:
        wait = self.schedule.refine_wait_s()
        if wait > 0:  # timers may fire a little early: try again when due
            self._refine_timer.start(int(wait * 1000) + 10)
            return
        resume_gc()
        # Input between the two refinement steps restarts from the moving resolution.
        scale = self.schedule.refine_scale(self.mode, self.settings, self.current_camera())
        self._request_render(scale=scale)
        self.schedule.half_id = self.schedule.next_id if scale != 1.0 else -1
        self.update()

    def set_neural(self, neural) -> None:
        self.renderers.neural = neural
        self._interacted(refine_now=True)

    def _active_renderer(self):
        return self.renderers.for_mode(self.mode)

    def _drawn_by_gl(self) -> bool:
        """The viewport draws this mode itself with OpenGL (points, or a mode's GL drawer)."""
        return self.mode.renderer == "gl" or self.mode.gl is not None

    def _drawer(self, mode: Mode | None = None):
        """The GL drawer of ``mode`` (default: the current one), made on first use (the GL
        context is current)."""
        mode = mode or self.mode
        d = self._drawers.get(mode.key)
        if d is None:
            make = mode.gl if mode.gl is not None else PointsDrawer  # "gl": the GL points
            d = self._drawers[mode.key] = make(self.ctx)
            d.set_scene(self.scene, self.renderers.by_name.get(mode.renderer))
            d.on_change = self._wake.fire.emit  # called from the drawer's worker thread
        return d

    def _request_render(self, scale: float = 1.0) -> None:
        renderer = self._active_renderer()
        if renderer is None:
            return
        s, mode = self.settings, self.mode
        points = renderer.num_points if renderer is self.renderer else None
        plan = self.schedule.plan(mode, renderer, s, self.current_camera(), scale, points)
        opts = mode.make_options(s, plan.max_points, plan.moving)
        rid = self.schedule.new_request(s.mode)
        self.worker.submit(RenderRequest(rid, renderer, plan.camera, opts))

    def _on_frame(self, result: RenderResult) -> None:
        if not self.schedule.accept(result.id, self.settings.mode):
            return  # stale: a newer frame is on screen, or it was drawn in another mode
        self._frame = result.frame
        self._frame_dirty = True
        mode = self.mode
        self.schedule.record(mode, self.settings.mode, result.frame, mode.renderer == "points")
        if self.schedule.half_step_done(result.id):
            self._request_render()  # the half-resolution step is shown: now full
        self.update()
        f = result.frame
        if f.progressive and result.id == self.schedule.next_id and self.isVisible():
            # Nothing newer pending: keep accumulating samples (path tracing) or offset passes
            # (a still neural view), but not while hidden (Latent mode shows another widget;
            # the path tracer would take its CPU).
            self._request_render()
        self.stats.emit(
            {
                "frame_ms": f.render_ms,
                "points": f.points_drawn,
                "device": _describe(self.renderer.device) if self.renderer else f.device,
                "frame": f,  # the typed result (spp, denoiser, runtime ...)
                "resolution": f.size,
                "viewport": self.pixel_size(),  # what a full-size frame would be
                "mode": self.settings.mode,
                "request": result.id,  # compare with ``last_request`` (benchmarks)
            }
        )

    @property
    def last_request(self) -> int:
        """The id of the newest frame requested from the render worker: a frame shown later
        with a greater ``request`` in its stats was asked for after this moment."""
        return self.schedule.next_id

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._request_render()  # resume progressive accumulation paused while hidden

    def hideEvent(self, event) -> None:
        # Hidden or its window closed mid-drag: the stop that resumes the collector may never
        # come, and it is process-wide.
        resume_gc()
        super().hideEvent(event)

    def _on_render_failed(self, message: str) -> None:
        self.last_error = message

    # --- GL -------------------------------------------------------------------------------
    def initializeGL(self) -> None:
        self.ctx = moderngl.create_context()
        self._frustums = FrustumsGL(self.ctx)
        self._quad = ImageQuadGL(self.ctx)

    def paintGL(self) -> None:
        ctx = self.ctx
        fbo = ctx.detect_framebuffer(self.defaultFramebufferObject())
        clear(ctx, fbo)
        w, h = self.pixel_size()
        fbo.viewport = (0, 0, w, h)
        if self._scene_dirty:
            self._upload_scene()
        if self._frustums_dirty:
            self._build_frustums()
        if self.scene is None:
            return
        if self._drawn_by_gl():
            cam = self.current_camera()
            stats = self._drawer().paint(
                fbo, cam, (w, h), self.is_moving(), self._full_quality, self.settings
            )
            fbo.use()
            # A drawer that refines over several paints asks for the next one; one whose work
            # finishes on a worker thread asks through on_change (repainting meanwhile would
            # only take CPU from it).
            self._gl_complete = bool(stats.get("complete", True))
            if stats.get("repaint"):
                QTimer.singleShot(0, self.update)
            self.stats.emit({"mode": self.settings.mode, "points": 0, **stats})
            overlay_cam = cam
        else:
            if self._frame is None:
                return
            if self._frame_dirty:
                self._quad.set_image(self._frame.image)
                self._frame_dirty = False
            self._quad.draw((w, h))
            # Overlays use the camera the frame was rendered with, so they stay registered.
            overlay_cam = self._frame.camera.resized(w, h)
            if self._frame.compare_with == GAUSSIANS_LABEL:
                self._paint_wipe_gaussians(fbo, overlay_cam, (w, h))
        if self.settings.show_cameras:
            self._frustums.draw(overlay_cam)

    def _paint_wipe_gaussians(self, fbo, cam: Camera, size: tuple[int, int]) -> None:
        """The wipe compare against the capture's Gaussian splats: they are drawn right of the
        wipe line, at the neural frame's camera."""
        mode = MODES.get("gaussians")
        if mode is None or mode.gl is None or self.scene is None or self.scene.gaussians is None:
            return
        d = self._drawer(mode)
        w, h = size
        x = round(min(max(self.settings.wipe, 0.0), 1.0) * w) + 1  # right of the wipe line
        if x < w:
            d.paint(fbo, cam, size, self.is_moving(), self._full_quality, self.settings,
                    scissor=(x, 0, w - x, h))  # fmt: skip
        fbo.use()

    def _upload_scene(self) -> None:
        for d in self._drawers.values():
            d.release()
        self._drawers.clear()
        self._update_frustums()
        self._scene_dirty = False

    def _update_frustums(self) -> None:
        self._frustums_dirty = True  # rebuilt in paintGL, where the GL context is current
        self.update()

    def _build_frustums(self) -> None:
        self._frustums_dirty = False
        if self.scene is None:
            return
        cams = [v.camera for v in self.scene.views]
        self._frustums.set_cameras(cams, frustum_depth(self.scene), self.selected_view)

    def grab_image(self) -> np.ndarray:
        """The displayed frame as (H, W, 3) uint8 (what a screenshot saves)."""
        img = self.grab_qimage()
        img = img.convertToFormat(img.Format.Format_RGB888)
        w, h = img.width(), img.height()
        buf = np.frombuffer(img.constBits(), np.uint8, count=img.bytesPerLine() * h)
        return buf.reshape(h, img.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()

    def grab_qimage(self):
        """Render the view at full quality (no level of detail) and return it as a QImage."""
        self._full_quality = True
        try:
            return self.grabFramebuffer()
        finally:
            self._full_quality = False

    def resizeGL(self, w: int, h: int) -> None:
        self._interacted(refine_now=True)

    def closeEvent(self, e) -> None:
        self.worker.stop()
        resume_gc()
        super().closeEvent(e)
