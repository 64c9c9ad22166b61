"""The OpenGL points mode's drawer in the window: progressive GL points into an offscreen
target, so even 10M points on a software rasterizer never block the GUI thread for long."""

from __future__ import annotations

import time

import moderngl

from engine.camera import Camera
from viewer.gl.points import PointCloudGL, RenderTarget


class PointsDrawer:
    """Each paint draws at most a frame budget of points into the offscreen target. While the
    camera moves every frame restarts with a random subset (the stored order is shuffled); once
    it stops, later paints add the rest chunk by chunk. A huge cloud (engine.points.lod) draws
    only the cells in view, each with the points its projected size needs, coarse first."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.target = RenderTarget(ctx)
        self.cloud: PointCloudGL | None = None
        self.on_change = None  # unused: all its work happens in paint
        self._key = None  # what the target currently holds (camera, size, point size)
        self._done = 0  # points of the cloud already drawn into it
        self._plan = None  # a huge cloud's ranges for the current view (PointCloudGL.plan)
        self._next = 0  # the next of those ranges to draw
        self.ms_per_point = 2e-5  # measured GL cost, sets the per-frame point budget

    def set_scene(self, scene, _renderer=None) -> None:
        self.release_scene()
        if scene is not None:
            self.cloud = PointCloudGL(self.ctx, scene)

    def paint(self, fbo, cam: Camera, size, moving: bool, full_quality: bool, settings) -> dict:
        ctx, cloud = self.ctx, self.cloud
        key = (cam.world_to_camera.tobytes(), cam.fx, cam.fy, size, settings.point_size)
        restart = key != self._key or full_quality
        budget = None
        if settings.dynamic_resolution and not full_quality:
            budget = max(50_000, int(settings.target_ms / max(self.ms_per_point, 1e-9)))
        if restart:
            self.target.bind(size)  # clears color and depth
            self._key, self._done, self._next = key, 0, 0
            # A huge cloud: only what this view needs; while moving, an even sample of it
            # within one frame's budget, else all of it over the next paints, coarse first.
            self._plan = cloud.plan(cam, budget if moving else None)
        else:
            self.target.fbo.use()
        t0 = time.perf_counter()
        if self._plan is not None:
            drawn, self._next = cloud.draw_plan(
                cam, settings.point_size, self._plan, self._next, budget
            )
            complete = self._next >= len(self._plan)
        else:
            drawn = cloud.draw(cam, settings.point_size, budget, first=self._done)
            complete = self._done + drawn >= cloud.num_points
        ctx.finish()  # so the time measures the GPU's work, not just submission
        ms = (time.perf_counter() - t0) * 1000
        if drawn >= 10_000:  # too few points time mostly overhead
            self.ms_per_point = 0.5 * self.ms_per_point + 0.5 * ms / drawn
        self._done += drawn
        ctx.copy_framebuffer(fbo, self.target.fbo)
        return {
            "frame_ms": ms,
            "points": self._done,
            "device": "OpenGL: " + ctx.info.get("GL_RENDERER", "?"),
            "resolution": size,
            "complete": complete,
            "repaint": not complete,  # continue refining on the next paint
        }

    def release_scene(self) -> None:
        if self.cloud is not None:
            self.cloud.release()
            self.cloud = None
        self._key = None

    def release(self) -> None:
        self.release_scene()
