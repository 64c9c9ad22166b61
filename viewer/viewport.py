"""The 3D viewport: a QOpenGLWidget owning the moderngl context. It draws and takes input;
rendering with the torch engine happens in the RenderWorker thread.

Input: left drag orbits (mouse look in fly mode), right/middle drag pans, the wheel zooms
(changes speed in fly mode), WASD/QE fly (Shift = faster), a left click on a camera frustum
jumps to that view.
"""

from __future__ import annotations

import gc
import math
import time

import moderngl
import numpy as np
from PySide6.QtCore import (
    QCoreApplication,
    QElapsedTimer,
    QObject,
    QPointF,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent
from PySide6.QtOpenGLWidgets import QOpenGLWidget

from engine.camera import Camera
from engine.device import describe
from engine.frame import Frame
from engine.frame_schedule import IDLE_REFINE_S, FrameScheduler
from engine.modes import Mode, SceneRenderers, get_mode
from engine.navigation import Navigator, frustum_depth, home_navigator
from engine.npbg.render import NeuralRenderer
from engine.scene.types import Scene
from engine.view_settings import ViewSettings
from viewer.gl.points import FrustumsGL, ImageQuadGL, PointCloudGL, RenderTarget, clear
from viewer.worker import RenderRequest, RenderResult, RenderWorker

ORBIT_RAD_PER_PX = 0.008
LOOK_RAD_PER_PX = 0.004
_MOVE_KEYS = {
    Qt.Key_W: (0, 0, 1),
    Qt.Key_S: (0, 0, -1),
    Qt.Key_A: (-1, 0, 0),
    Qt.Key_D: (1, 0, 0),
    Qt.Key_E: (0, 1, 0),
    Qt.Key_Q: (0, -1, 0),
}


_gc_pause = {"until": 0.0, "paused": False}


def pause_gc(for_s: float) -> None:
    """No cyclic garbage collection while the camera moves: a full collection of this app's
    objects takes 50-200 ms with the GIL held (every thread stops), which were the slowest
    frames of a drag. Reference counting still frees everything else. The collector comes back
    ``for_s`` after the last call, by a timer of the application (not of a widget, which may be
    gone by then: the collector is process-wide)."""
    _gc_pause["until"] = time.perf_counter() + for_s
    if not _gc_pause["paused"] and gc.isenabled():
        gc.disable()
        _gc_pause["paused"] = True
        QTimer.singleShot(int(for_s * 1000) + 20, QCoreApplication.instance(), _gc_check)


def _gc_check() -> None:
    left = _gc_pause["until"] - time.perf_counter()
    if left > 0 and _gc_pause["paused"]:
        QTimer.singleShot(int(left * 1000) + 20, QCoreApplication.instance(), _gc_check)
    else:
        resume_gc()


def resume_gc() -> None:
    if _gc_pause["paused"]:
        _gc_pause["paused"] = False
        gc.enable()


class _Wake(QObject):
    fire = Signal()


class Viewport(QOpenGLWidget):
    """Shows a scene. Emits ``stats`` after each displayed frame and ``view_picked`` on clicks."""

    stats = Signal(dict)  # frame_ms, points, device, resolution, mode
    view_picked = Signal(int)
    camera_changed = Signal()

    def __init__(self, settings: ViewSettings | None = None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings or ViewSettings()
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMinimumSize(320, 240)
        self.scene: Scene | None = None
        self.nav = Navigator()
        self.renderers = SceneRenderers()
        self.selected_view: int | None = None
        self.ctx: moderngl.Context | None = None
        self._cloud_gl: PointCloudGL | None = None
        self._frustums: FrustumsGL | None = None
        self._quad: ImageQuadGL | None = None
        self._scene_dirty = False
        self._frustums_dirty = False
        self._full_quality = False  # set while grabbing a screenshot
        self._frame: Frame | None = None
        self._frame_dirty = False
        self.schedule = FrameScheduler()  # sizes, refinement and stale results (Qt-free)
        self._gl_key = None  # what the GL target currently holds (camera, size, point size)
        self._gl_done = 0  # points of the cloud already drawn into it
        self._gl_plan = None  # a huge cloud's ranges for the current view (PointCloudGL.plan)
        self._gl_next = 0  # the next of those ranges to draw
        self._gl_ms_per_point = 2e-5  # measured GL cost, sets the per-frame point budget
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
    def neural(self) -> NeuralRenderer | None:
        return self.renderers.neural

    def set_scene(self, scene: Scene, renderers: SceneRenderers) -> None:
        """Show a new scene (the renderers already hold it on the device)."""
        self.scene = scene
        self.renderers = renderers
        self.nav = home_navigator(scene, self.settings.fov_y_deg)
        self.selected_view = None
        self._frame = None
        self.schedule.drop_in_flight()  # frames of the previous scene still in flight
        self._scene_dirty = True
        self._interacted(refine_now=True)

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
        self.settings.fov_y_deg = fov_y_deg
        self.nav.fov_y_deg = fov_y_deg
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

    def set_neural(self, neural: NeuralRenderer | None) -> None:
        self.renderers.neural = neural
        self._interacted(refine_now=True)

    def _active_renderer(self):
        return self.renderers.for_mode(self.mode)

    def _drawn_by_gl(self) -> bool:
        """The viewport draws this mode itself with OpenGL (points, or a mode's GL drawer)."""
        return self.mode.renderer == "gl" or self.mode.gl is not None

    def _drawer(self):
        """The current mode's GL drawer (made on first use; the GL context is current)."""
        mode = self.mode
        d = self._drawers.get(mode.key)
        if d is None:
            d = self._drawers[mode.key] = mode.gl(self.ctx)
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
        if (
            f.progressive
            and self.mode.progressive
            and result.id == self.schedule.next_id
            and self.isVisible()
        ):
            # Nothing newer pending: keep accumulating samples, but not while hidden (Latent
            # mode shows another widget; the path tracer would take its CPU).
            self._request_render()
        self.stats.emit(
            {
                "frame_ms": f.render_ms,
                "points": f.points_drawn,
                "device": describe(self.renderer.device) if self.renderer else f.device,
                "frame": f,  # the typed result (spp, denoiser, runtime ...)
                "resolution": f.size,
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
        self._target = RenderTarget(self.ctx)

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
        if self.mode.gl is not None:
            cam = self.current_camera()
            stats = self._drawer().paint(
                fbo, cam, (w, h), self.is_moving() and self.settings.dynamic_resolution,
                self._full_quality, self.settings,
            )  # fmt: skip
            fbo.use()
            # An incomplete frame is finished by the drawer's worker, which asks for the repaint
            # (on_change): repainting meanwhile would only take CPU from it.
            self._gl_complete = bool(stats.get("complete", True))
            self.stats.emit({"mode": self.settings.mode, "points": 0, **stats})
            overlay_cam = cam
        elif self.mode.renderer == "gl":
            cam = self.current_camera()
            self._paint_gl_points(fbo, cam, (w, h))
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
        if self.settings.show_cameras:
            self._frustums.draw(overlay_cam)

    def _paint_gl_points(self, fbo, cam: Camera, size: tuple[int, int]) -> None:
        """Progressive GL points: each paint draws at most a frame budget of points into the
        offscreen target. While the camera moves every frame restarts with a random subset (the
        stored order is shuffled); once it stops, later paints add the rest chunk by chunk, so
        even 10M points on a software rasterizer never block the GUI thread for long. A huge
        cloud (engine.points.lod) draws only the cells in view, each with the points its
        projected size needs, coarse first."""
        ctx, cloud = self.ctx, self._cloud_gl
        key = (cam.world_to_camera.tobytes(), cam.fx, cam.fy, size, self.settings.point_size)
        restart = key != self._gl_key or self._full_quality
        budget = None
        if self.settings.dynamic_resolution and not self._full_quality:
            budget = max(50_000, int(self.settings.target_ms / max(self._gl_ms_per_point, 1e-9)))
        if restart:
            self._target.bind(size)  # clears color and depth
            self._gl_key, self._gl_done, self._gl_next = key, 0, 0
            # A huge cloud: only what this view needs; while moving, an even sample of it
            # within one frame's budget, else all of it over the next paints, coarse first.
            self._gl_plan = cloud.plan(cam, budget if self.is_moving() else None)
        else:
            self._target.fbo.use()
        t0 = time.perf_counter()
        if self._gl_plan is not None:
            drawn, self._gl_next = cloud.draw_plan(
                cam, self.settings.point_size, self._gl_plan, self._gl_next, budget
            )
            complete = self._gl_next >= len(self._gl_plan)
        else:
            drawn = cloud.draw(cam, self.settings.point_size, budget, first=self._gl_done)
            complete = self._gl_done + drawn >= cloud.num_points
        ctx.finish()  # so the time measures the GPU's work, not just submission
        ms = (time.perf_counter() - t0) * 1000
        if drawn >= 10_000:  # too few points time mostly overhead
            self._gl_ms_per_point = 0.5 * self._gl_ms_per_point + 0.5 * ms / drawn
        self._gl_done += drawn
        ctx.copy_framebuffer(fbo, self._target.fbo)
        fbo.use()
        if not complete:
            QTimer.singleShot(0, self.update)  # continue refining on the next paint
        self.stats.emit(
            {
                "frame_ms": ms,
                "points": self._gl_done,
                "device": "OpenGL: " + ctx.info.get("GL_RENDERER", "?"),
                "resolution": size,
                "mode": "gl",
                "complete": complete,
            }
        )

    def _upload_scene(self) -> None:
        if self._cloud_gl is not None:
            self._cloud_gl.release()
            self._cloud_gl = None
        if self.scene is not None:
            self._cloud_gl = PointCloudGL(self.ctx, self.scene)
        for d in self._drawers.values():
            d.release()
        self._drawers.clear()
        self._gl_key = None
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

    # --- input ----------------------------------------------------------------------------
    def mousePressEvent(self, e: QMouseEvent) -> None:
        self._press = {
            "pos": e.position(),
            "last": e.position(),
            "button": e.button(),
            "moved": 0.0,
        }
        self.setFocus()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if self._press is None:
            return
        pos: QPointF = e.position()
        dx, dy = pos.x() - self._press["last"].x(), pos.y() - self._press["last"].y()
        self._press["last"] = pos
        self._press["moved"] += abs(dx) + abs(dy)
        button = self._press["button"]
        if button == Qt.LeftButton:
            if self.settings.fly_mode:
                self.nav.look(dx * LOOK_RAD_PER_PX, -dy * LOOK_RAD_PER_PX)
            else:
                self.nav.orbit(dx * ORBIT_RAD_PER_PX, -dy * ORBIT_RAD_PER_PX)
        elif button in (Qt.RightButton, Qt.MiddleButton):
            dpr = self.devicePixelRatioF()
            self.nav.pan(dx * dpr, dy * dpr, self.pixel_size()[1])
        else:
            return
        self._interacted()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        press, self._press = self._press, None
        if press and press["button"] == Qt.LeftButton and press["moved"] < 4:
            idx = self.pick_view(e.position().x(), e.position().y())
            if idx is not None:
                self.jump_to_view(idx)
                self.view_picked.emit(idx)

    def wheelEvent(self, e: QWheelEvent) -> None:
        steps = e.angleDelta().y() / 120.0
        if self.settings.fly_mode:
            self.settings.fly_speed *= 1.2**steps
        else:
            self.nav.zoom(steps)
            self._interacted()

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() in _MOVE_KEYS and not e.isAutoRepeat():
            self._keys.add(e.key())
            if not self._fly_timer.isActive():
                self._fly_clock.start()
                self._fly_timer.start()
            return
        super().keyPressEvent(e)

    def keyReleaseEvent(self, e: QKeyEvent) -> None:
        if e.key() in _MOVE_KEYS and not e.isAutoRepeat():
            self._keys.discard(e.key())
            return
        super().keyReleaseEvent(e)

    def focusOutEvent(self, e) -> None:
        self._keys.clear()
        super().focusOutEvent(e)

    def _fly_tick(self) -> None:
        if not self._keys:
            self._fly_timer.stop()
            return
        dt = self._fly_clock.restart() / 1000.0
        move = np.sum([_MOVE_KEYS[k] for k in self._keys], axis=0).astype(float)
        self.fly_step(move, dt, fast=bool(self._modifiers() & Qt.ShiftModifier))

    def fly_step(self, move, dt: float, fast: bool = False) -> None:
        """Move by ``move`` (right, up, forward) for ``dt`` seconds at the fly speed."""
        if self.scene is None:
            return
        _, radius = self.scene.bounds()
        speed = self.settings.fly_speed * radius * (4.0 if fast else 1.0)
        self.nav.fly(np.asarray(move, float), speed, dt)
        self._interacted()

    def _modifiers(self):
        from PySide6.QtGui import QGuiApplication

        return QGuiApplication.queryKeyboardModifiers()

    # --- picking --------------------------------------------------------------------------
    def pick_view(self, x: float, y: float, radius_px: float = 14.0) -> int | None:
        """Index of the registered view whose frustum is under widget point (x, y), if any."""
        if self.scene is None or not self.scene.views or not self.settings.show_cameras:
            return None
        dpr = self.devicePixelRatioF()
        cam = self.current_camera()
        depth = frustum_depth(self.scene)
        best, best_d = None, radius_px * dpr
        for i, v in enumerate(self.scene.views):
            c = v.camera
            # The camera centre and the centre of its drawn image plane.
            pts = np.stack([c.position, c.position + c.forward * depth])
            uv, z = cam.project(pts)
            for (u, vv), z_cam in zip(uv, z, strict=True):
                if z_cam <= cam.near:
                    continue
                d = math.hypot(u - x * dpr, vv - y * dpr)
                if d < best_d:
                    best, best_d = i, d
        return best

    def closeEvent(self, e) -> None:
        self.worker.stop()
        resume_gc()
        super().closeEvent(e)
