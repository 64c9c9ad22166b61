"""Gaussians render mode: 3D Gaussian splatting drawn with OpenGL (moderngl), in the window
and headless (``nsv render --mode gaussians``), on real GPUs and on Mesa's software llvmpipe.

The forward model of Kerbl et al. 2023 per Gaussian, in the vertex shader: covariance
R S S^T R^T (precomputed once), EWA projection with the affine Jacobian (the mean's x/z, y/z
clamped to 1.3x the field of view, as the original), a 0.3 px^2 low-pass; each instanced quad
covers exactly where alpha = min(0.99, opacity * G) reaches 1/255. Fragments below 1/255 are
discarded; front-to-back "under" blending into a float32 target (no banding however many
layers) accumulates C += T alpha c, T *= 1 - alpha. Colour (spherical harmonics at the camera
centre's direction) and the depth order are computed on a worker thread, so sorting never
blocks the GUI; while the camera moves the last order is reused until the new one is ready,
and the least important Gaussians (small, transparent) are left out to keep the frame time.
"""

from __future__ import annotations

import time
from typing import Any

import moderngl
import numpy as np

from engine.camera import Camera
from engine.gaussians.model import Gaussians
from engine.gaussians.view_order import Sorter, ViewOrder, pose_key, view_order
from engine.modes import Mode, register
from engine.scene.types import Scene
from viewer.gl.gaussian_shaders import (
    POINT_FS,
    POINT_VS,
    PROJECT_VS,
    QUAD_FS,
    QUAD_VS,
    RESOLVE_FS,
    RESOLVE_VS,
    SPRITE_PAD,
    TEX_W,
)


class GaussiansGL:
    """Draws a scene's Gaussians. ``paint`` in the window (sorting on a thread); ``render`` for
    a headless image (sorted in place)."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.project = ctx.program(vertex_shader=PROJECT_VS,
                                   varyings=["o_mean", "o_conic", "o_color"])  # fmt: skip
        self.prog = ctx.program(vertex_shader=QUAD_VS, fragment_shader=QUAD_FS)
        self.points = ctx.program(vertex_shader=POINT_VS, fragment_shader=POINT_FS)
        self._max_point = float(ctx.info.get("GL_POINT_SIZE_RANGE", (1.0, 1.0))[1])
        self.drew_sprites = False  # the last frame: one point sprite per Gaussian (not quads)
        self.resolve = ctx.program(vertex_shader=RESOLVE_VS, fragment_shader=RESOLVE_FS)
        corners = np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32)
        self._corners = ctx.buffer(corners.tobytes())
        tri = np.array([-1, -1, 3, -1, -1, 3], np.float32)
        self._tri = ctx.buffer(tri.tobytes())
        self._resolve_vao = ctx.vertex_array(self.resolve, [(self._tri, "2f", "in_pos")])
        self.g: Gaussians | None = None
        self._params = self._index = self._vao = self._projected = self._project_vao = None
        self._point_vao = None
        self._sh = None
        self._sh_count = 1
        self._accum = self._accum_fbo = None
        self._shown: ViewOrder | None = None  # the order uploaded to the GPU
        self._count = 0
        self.sorter: Sorter | None = None
        self.on_change = None  # called from the sort thread when a new order is ready
        self.ms_per_gaussian = 1e-3  # measured per drawn Gaussian; sets the moving LOD
        self._important: np.ndarray | None = None  # Gaussian indices, most important first
        self._reach: np.ndarray | None = None  # per Gaussian: how far from its mean it is drawn
        self.background = (0.0, 0.0, 0.0)

    # --- scene ------------------------------------------------------------------------------
    def set_scene(self, scene: Scene | None, gaussians: Gaussians | None = None) -> None:
        self.release_scene()
        g = gaussians if gaussians is not None else scene.gaussians if scene is not None else None
        if g is None:
            return
        self.g = g
        n = g.count
        rows = -(-3 * n // TEX_W)
        params = np.zeros((rows * TEX_W, 4), np.float32)
        cov = g.covariances()
        self._important = g.importance_order().astype(np.int64)
        self._reach = g.reach()
        params[0 : 3 * n : 3, :3] = g.means
        params[0 : 3 * n : 3, 3] = g.opacities
        params[1 : 3 * n : 3] = cov[:, :4]
        params[2 : 3 * n : 3, :2] = cov[:, 4:]
        self._params = self.ctx.texture((TEX_W, rows), 4, params.tobytes(), dtype="f4")
        self._params.filter = (moderngl.NEAREST, moderngl.NEAREST)
        del params, cov
        self._index = self.ctx.buffer(reserve=max(16, 4 * n))  # uint32 per drawn Gaussian
        self._project_vao = self.ctx.vertex_array(self.project, [(self._index, "1u", "in_index")])
        self._point_vao = self.ctx.vertex_array(self.points, [(self._index, "1u", "in_index")])
        k = g.sh.shape[1]
        per = -(-3 * k // 4)  # texels per Gaussian
        coef = np.zeros((n, per * 4), np.float32)
        coef[:, : 3 * k] = g.sh.reshape(n, 3 * k)
        rows = -(-n * per // TEX_W)
        flat = np.zeros((rows * TEX_W, 4), np.float32)
        flat[: n * per] = coef.reshape(n * per, 4)
        self._sh = self.ctx.texture((TEX_W, rows), 4, flat.tobytes(), dtype="f4")
        self._sh.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._sh_count = k
        del coef, flat
        self._projected = self.ctx.buffer(reserve=max(44, 44 * n))  # 4 + 4 + 3 floats each
        self._vao = self.ctx.vertex_array(
            self.prog,
            [(self._corners, "2f", "in_corner"),
             (self._projected, "4f 4f 3f/i", "in_mean", "in_conic", "in_color")],
        )  # fmt: skip

    def _upload(self, order: ViewOrder) -> None:
        self._index.write(order.index.tobytes())
        self._count = len(order.index)
        self._shown = order

    # --- drawing ----------------------------------------------------------------------------
    def _draw(self, cam: Camera, size: tuple[int, int]) -> int:
        """Accumulate the Gaussians into the float target of ``size``; returns instances."""
        w, h = size
        P = SPRITE_PAD
        if self._accum is None or self._accum.size != (w + 2 * P, h + 2 * P):
            if self._accum is not None:
                self._accum_fbo.release()
                self._accum.release()
            self._accum = self.ctx.texture((w + 2 * P, h + 2 * P), 4, dtype="f4")
            self._accum.filter = (moderngl.LINEAR, moderngl.LINEAR)
            self._accum_fbo = self.ctx.framebuffer(color_attachments=[self._accum])
        self._accum_fbo.use()
        self._accum_fbo.viewport = (0, 0, w + 2 * P, h + 2 * P)
        self._accum_fbo.clear(0.0, 0.0, 0.0, 0.0)
        if self._vao is None or self._count == 0:
            return 0
        c = cam.resized(w, h) if (cam.width, cam.height) != (w, h) else cam
        half = self._shown.max_half_px * w / cam.width  # its size bound was made for ``cam``
        sprites = 2 * half + 2 <= self._max_point and half + 1 <= P
        self.drew_sprites = sprites
        p = self.points if sprites else self.project
        p["view"].write(np.asarray(c.world_to_camera, np.float32).T.tobytes())
        p["focal"].value = (c.fx, c.fy)
        p["center"].value = (c.cx, c.cy)
        p["tan_lim"].value = (1.3 * 0.5 * w / c.fx, 1.3 * 0.5 * h / c.fy)
        p["near"].value = float(c.near)
        p["params"].value = 0
        p["sh"].value = 1
        p["sh_count"].value = self._sh_count
        p["eye"].value = tuple(float(v) for v in c.position)
        self._params.use(0)
        self._sh.use(1)
        ctx = self.ctx
        if not sprites:
            self._project_vao.transform(self._projected, moderngl.POINTS, vertices=self._count)
        self._accum_fbo.use()
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = (moderngl.ONE_MINUS_DST_ALPHA, moderngl.ONE)
        ctx.blend_equation = moderngl.FUNC_ADD
        if sprites:
            p["size"].value = (float(w), float(h))
            p["pad"].value = float(P)
            ctx.enable(moderngl.PROGRAM_POINT_SIZE)
            self._point_vao.render(moderngl.POINTS, vertices=self._count)
            ctx.disable(moderngl.PROGRAM_POINT_SIZE)
        else:
            self._accum_fbo.viewport = (P, P, w, h)  # quads are clipped at the image
            self.prog["size"].value = (float(w), float(h))
            self._vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=self._count)
        ctx.disable(moderngl.BLEND)
        ctx.blend_func = moderngl.DEFAULT_BLENDING
        return self._count

    def _resolve_into(self, fbo, viewport: tuple[int, int, int, int], scissor=None) -> None:
        fbo.use()
        fbo.viewport = viewport
        fbo.scissor = scissor  # (x, y, w, h) in GL pixels: only that part (a wipe compare)
        self.resolve["accum"].value = 0
        aw, ah = self._accum.size
        P = SPRITE_PAD
        self.resolve["uv_map"].value = ((aw - 2 * P) / aw, (ah - 2 * P) / ah, P / aw, P / ah)
        self.resolve["background"].value = tuple(float(v) for v in self.background)
        self._accum.use(0)
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND)
        self._resolve_vao.render(moderngl.TRIANGLES, vertices=3)
        fbo.scissor = None

    def render(self, cam: Camera) -> np.ndarray:
        """Headless: the full-quality image (H, W, 3) uint8, row 0 at the top."""
        shown = self._shown
        if self.g is not None and (shown is None or shown.key != pose_key(cam) or shown.lod):
            self._upload(view_order(self.g, cam, reach=self._reach))
        self._draw(cam, (cam.width, cam.height))
        out = self.ctx.simple_framebuffer((cam.width, cam.height), components=4)
        self._resolve_into(out, (0, 0, cam.width, cam.height))
        raw = out.read(components=3, alignment=1)
        out.release()
        self.ctx.finish()
        return np.frombuffer(raw, np.uint8).reshape(cam.height, cam.width, 3)[::-1].copy()

    def paint(self, fbo, cam: Camera, size, moving: bool, full_quality: bool, settings,
              scissor=None) -> dict:  # fmt: skip
        """Draw into the window's framebuffer ``fbo`` (only its ``scissor`` part when given);
        returns the frame's stats (``complete``: False while a newer order for this camera is
        still being sorted)."""
        if settings is not None:
            self.background = getattr(settings, "background", self.background)
        w, h = size
        if self.g is None:
            return {"frame_ms": 0.0, "resolution": size, "complete": True, "drawn": 0,
                    "count": 0}  # fmt: skip
        key = pose_key(cam)
        # Level of detail while moving: the most important Gaussians that the measured cost
        # per Gaussian fits in the frame budget (small and transparent ones go first).
        lod = None
        if moving and not full_quality and getattr(settings, "dynamic_resolution", True):
            budget = int(getattr(settings, "target_ms", 40.0) / max(self.ms_per_gaussian, 1e-9))
            if budget < self.g.count:
                lod = max(20_000, budget)
        if full_quality:
            shown = self._shown
            if shown is None or shown.key != key or shown.lod is not None:
                self._upload(view_order(self.g, cam, reach=self._reach))
        elif lod is not None:
            # Few enough to sort here, every frame: the moving view is never out of order.
            self._upload(view_order(self.g, cam, self._important[:lod], self._reach))
            self._sorter().request(cam, False, ahead=True)
        else:
            result = self._sorter().result
            if result is not None and result is not self._shown and result.key == key:
                self._upload(result)
            shown = self._shown
            if shown is None or shown.key != key or shown.lod is not None:
                self.sorter.request(cam, moving)
        if self._shown is None:  # the first order is still being made
            return {"frame_ms": 0.0, "resolution": size, "complete": False, "drawn": 0,
                    "count": self.g.count, "sorting": True}  # fmt: skip
        t0 = time.perf_counter()
        drawn = self._draw(cam, (w, h))
        self.ctx.finish()
        ms = (time.perf_counter() - t0) * 1000
        if drawn >= 1000:
            self.ms_per_gaussian = 0.5 * self.ms_per_gaussian + 0.5 * ms / drawn
        self._resolve_into(fbo, (0, 0, w, h), scissor)
        return {
            "frame_ms": ms,
            "resolution": (w, h),
            "complete": self._shown.key == key and self._shown.lod is None,
            "drawn": drawn,
            "count": self.g.count,
            "lod": self._shown.lod is not None,
            "sort_ms": self.sorter.ms if self.sorter else 0.0,
        }

    def _sorter(self) -> Sorter:
        if self.sorter is None:
            self.sorter = Sorter(self.g, lambda: self.on_change and self.on_change(), self._reach)
        return self.sorter

    # --- lifetime ---------------------------------------------------------------------------
    def release_scene(self) -> None:
        if self.sorter is not None:
            self.sorter.stop()
            self.sorter = None
        for r in (self._vao, self._project_vao, self._point_vao, self._projected, self._index,
                  self._params, self._sh):  # fmt: skip
            if r is not None:
                r.release()
        self._params = self._index = self._vao = self._projected = self._project_vao = None
        self._point_vao = None
        self._sh = None
        self._shown, self._count, self.g = None, 0, None

    def release(self) -> None:
        self.release_scene()
        if self._accum is not None:
            self._accum_fbo.release()
            self._accum.release()
            self._accum = self._accum_fbo = None


class OffscreenGaussians:
    """``nsv render --mode gaussians``: the window's drawer in a headless context."""

    def __init__(self, scene, ctx: moderngl.Context | None = None) -> None:
        from engine.glcontext import create_headless_context

        self.ctx = ctx or create_headless_context()
        self.gl = GaussiansGL(self.ctx)
        self.gl.set_scene(scene)

    def render(self, cam: Camera) -> np.ndarray:
        return self.gl.render(cam)


def _status(s: dict[str, Any]) -> str:
    w, h = s["resolution"]
    lod = " (moving: level of detail)" if s.get("lod") else ""
    if s.get("sorting"):
        return f"sorting {s['count']:,} Gaussians ..."
    drawn = f"{s['drawn']:,} drawn" if s.get("lod") else f"{s['drawn']:,} in view"
    return (f"{s['frame_ms']:.1f} ms | {s['count']:,} Gaussians, {drawn} | OpenGL | "
            f"{w}×{h}{lod}")  # fmt: skip


MODE = register(
    Mode(
        "gaussians",
        "Gaussian splats",
        "G",
        "gaussians",
        build=lambda scene, _ctx: scene.gaussians,
        needs="Open a 3D Gaussian Splatting .ply or .splat file",
        status=_status,
        auto=lambda scene: scene.gaussians is not None,
        gl=GaussiansGL,
    )
)
