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
from engine.gaussians.model import Gaussians, depth_order
from engine.latest import LatestWins
from engine.modes import Mode, register

TEX_W = 4096  # texels per row of the parameter textures
SPRITE_PAD = 64  # px of guard band around the image; larger Gaussians are drawn as quads
# Pass 1, once per Gaussian (transform feedback): project it. Pass 2, per quad corner: place
# the corner. Doing the projection once instead of at each of the four corners is what makes
# a software rasterizer keep up (the vertex work dominated).
_PROJECT_VS = """
#version 330
uniform sampler2D params;  // RGBA32F, 3 texels per Gaussian
uniform mat4 view;         // world -> camera (OpenCV axes: x right, y down, z forward)
uniform vec2 focal;
uniform vec2 center;
uniform vec2 tan_lim;      // 1.3 tan(half field of view), x and y
uniform float near;
uniform sampler2D sh;      // RGBA32F: the spherical-harmonic coefficients, SH_TEXELS per Gaussian
uniform int sh_count;      // coefficients per channel: 1, 4, 9 or 16
uniform vec3 eye;          // the camera centre, world coordinates
in uint in_index;
out vec4 o_mean;           // pixel centre xy, quad half-size (0: culled), unused
out vec4 o_conic;          // inverse 2D covariance (xx, xy, yy), opacity
out vec3 o_color;

ivec2 texel(int i) { return ivec2(i % %TEX_W%, i / %TEX_W%); }

float coef[48];  // coefficient-major: coef[3 * k + channel]

vec3 c(int k) { return vec3(coef[3 * k], coef[3 * k + 1], coef[3 * k + 2]); }

vec3 sh_color(int i, vec3 pos) {
    int n = (3 * sh_count + 3) / 4;
    for (int t = 0; t < n; ++t) {
        vec4 v = texelFetch(sh, texel(n * i + t), 0);
        for (int j = 0; j < 4; ++j) if (4 * t + j < 48) coef[4 * t + j] = v[j];
    }
    vec3 col = 0.28209479177387814 * c(0);
    if (sh_count > 1) {
        vec3 d = normalize(pos - eye);
        float x = d.x, y = d.y, z = d.z;
        col += -0.4886025119029199 * y * c(1) + 0.4886025119029199 * z * c(2)
               - 0.4886025119029199 * x * c(3);
        if (sh_count > 4) {
            float xx = x * x, yy = y * y, zz = z * z;
            col += 1.0925484305920792 * x * y * c(4) - 1.0925484305920792 * y * z * c(5)
                   + 0.31539156525252005 * (2.0 * zz - xx - yy) * c(6)
                   - 1.0925484305920792 * x * z * c(7) + 0.5462742152960396 * (xx - yy) * c(8);
            if (sh_count > 9) {
                col += -0.5900435899266435 * y * (3.0 * xx - yy) * c(9)
                       + 2.890611442640554 * x * y * z * c(10)
                       - 0.4570457994644658 * y * (4.0 * zz - xx - yy) * c(11)
                       + 0.3731763325901154 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * c(12)
                       - 0.4570457994644658 * x * (4.0 * zz - xx - yy) * c(13)
                       + 1.445305721320277 * z * (xx - yy) * c(14)
                       - 0.5900435899266435 * x * (xx - 3.0 * yy) * c(15);
            }
        }
    }
    return max(col + 0.5, vec3(0.0));
}

void main() {
    int i = int(in_index);
    vec4 p0 = texelFetch(params, texel(3 * i), 0);
    vec4 p1 = texelFetch(params, texel(3 * i + 1), 0);
    vec4 p2 = texelFetch(params, texel(3 * i + 2), 0);
    o_mean = vec4(0.0); o_conic = vec4(0.0); o_color = vec3(0.0);
    vec3 t = (view * vec4(p0.xyz, 1.0)).xyz;
    float opacity = p0.w;
    float k = 2.0 * log(255.0 * opacity);  // alpha >= 1/255 inside d^T S^-1 d <= k
    if (t.z <= near || k <= 0.0) return;
    mat3 Sigma = mat3(p1.x, p1.y, p1.z, p1.y, p1.w, p2.x, p1.z, p2.x, p2.y);
    float tx = clamp(t.x / t.z, -tan_lim.x, tan_lim.x) * t.z;
    float ty = clamp(t.y / t.z, -tan_lim.y, tan_lim.y) * t.z;
    mat3 J = mat3(focal.x / t.z, 0.0, 0.0,
                  0.0, focal.y / t.z, 0.0,
                  -focal.x * tx / (t.z * t.z), -focal.y * ty / (t.z * t.z), 0.0);
    mat3 T = J * mat3(view);
    mat3 cov = T * Sigma * transpose(T);
    float a = cov[0][0] + 0.3;
    float b = cov[0][1];
    float cc = cov[1][1] + 0.3;
    float det = a * cc - b * b;
    if (det <= 0.0) return;
    float mid = 0.5 * (a + cc);
    float lmax = mid + sqrt(max(0.0, mid * mid - det));
    vec2 mean = vec2(focal.x * t.x / t.z + center.x, focal.y * t.y / t.z + center.y);
    o_mean = vec4(mean, sqrt(k * lmax), 0.0);
    o_conic = vec4(vec3(cc, -b, a) / det, opacity);
    o_color = sh_color(i, p0.xyz);
}
""".replace("%TEX_W%", str(TEX_W))
# One pass instead of two where every Gaussian fits in a point sprite (the sort bounds their
# size on screen): the projection runs once per point, and a point is one vertex where a quad
# is four - on llvmpipe a full frame of 715k Gaussians in about half the time.
_POINT_VS = (
    _PROJECT_VS.replace("out vec4 o_mean;", "vec4 o_mean;")
    .replace("out vec4 o_conic;", "vec4 o_conic;")
    .replace("out vec3 o_color;", "vec3 o_color;")
    .replace(
        "void main() {\n    int i = int(in_index);", "void project() {\n    int i = int(in_index);"
    )
    + """
uniform vec2 size;  // the image, pixels
uniform float pad;  // the guard band around it, pixels: a point whose centre is off the
                    // target is clipped whole, so the target reaches past the image
flat out vec3 v_conic;
flat out vec4 v_color;
flat out vec2 v_mean;
void main() {
    project();
    v_conic = o_conic.xyz;
    v_color = vec4(o_color, o_conic.w);
    v_mean = o_mean.xy;
    gl_PointSize = 2.0 * o_mean.z + 1.0;  // covers every pixel centre within the half-size
    gl_Position = o_mean.z <= 0.0 ? vec4(0.0, 0.0, 2.0, 1.0)  // culled
        : vec4((o_mean.x + pad) / (size.x + 2.0 * pad) * 2.0 - 1.0,
               1.0 - (o_mean.y + pad) / (size.y + 2.0 * pad) * 2.0, 0.0, 1.0);
}
"""
)
# The fragment's share of one Gaussian, ``d`` pixels from its mean: alpha = min(0.99, opacity
# G) and below 1/255 nothing; premultiplied for the front-to-back blend.
_SPLAT_FS = """
#version 330
flat in vec3 v_conic;
flat in vec4 v_color;
out vec4 f_color;
void splat(vec2 d) {
    float power = -0.5 * (v_conic.x * d.x * d.x + v_conic.z * d.y * d.y) - v_conic.y * d.x * d.y;
    if (power > 0.0) discard;
    float alpha = min(0.99, v_color.a * exp(power));
    if (alpha < 1.0 / 255.0) discard;
    f_color = vec4(v_color.rgb * alpha, alpha);
}
"""
_POINT_FS = (
    _SPLAT_FS
    + """
uniform vec2 size;
uniform float pad;
flat in vec2 v_mean;
// The pixel centre's offset from the mean (y down), as the quads have it exactly.
void main() { splat(vec2(gl_FragCoord.x - pad, size.y + pad - gl_FragCoord.y) - v_mean); }
"""
)
_VS = """
#version 330
uniform vec2 size;         // target size in pixels
in vec2 in_corner;
in vec4 in_mean;
in vec4 in_conic;
in vec3 in_color;
flat out vec3 v_conic;
flat out vec4 v_color;
out vec2 v_d;

void main() {
    v_conic = in_conic.xyz;
    v_color = vec4(in_color, in_conic.w);
    if (in_mean.z <= 0.0) {  // culled in pass 1
        gl_Position = vec4(0.0, 0.0, 2.0, 1.0);
        v_d = vec2(0.0);
        return;
    }
    vec2 d = in_corner * in_mean.z;
    vec2 pix = in_mean.xy + d;
    gl_Position = vec4(pix.x / size.x * 2.0 - 1.0, 1.0 - pix.y / size.y * 2.0, 0.0, 1.0);
    v_d = d;
}
"""
_FS = (
    _SPLAT_FS
    + """
in vec2 v_d;
void main() { splat(v_d); }
"""
)
_RESOLVE_VS = """
#version 330
in vec2 in_pos;
out vec2 v_uv;
void main() { v_uv = in_pos * 0.5 + 0.5; gl_Position = vec4(in_pos, 0.0, 1.0); }
"""
_RESOLVE_FS = """
#version 330
uniform sampler2D accum;
uniform vec3 background;
uniform vec4 uv_map;  // the image inside the accumulation target's guard band: scale, offset
in vec2 v_uv;
out vec4 f_color;
void main() {
    vec4 s = texture(accum, v_uv * uv_map.xy + uv_map.zw);
    f_color = vec4(clamp(s.rgb + (1.0 - s.a) * background, 0.0, 1.0), 1.0);
}
"""


class _Order:
    """One sort's result: the camera it was made for and, front to back, the indices (uint32)
    of the Gaussians in front of the near plane; ``lod``: only the ``lod`` most important
    Gaussians (a moving camera's level of detail), None: all; ``max_half_px``: a bound on the
    largest half-size on screen of those drawn (inf: unknown)."""

    def __init__(self, key: bytes, index: np.ndarray, lod: int | None = None,
                 max_half_px: float = float("inf")) -> None:  # fmt: skip
        self.key, self.index, self.lod, self.max_half_px = key, index, lod, max_half_px


def view_order(g: Gaussians, cam: Camera, subset: np.ndarray | None = None,
               reach: np.ndarray | None = None, margin_px: float = 2.0) -> _Order:  # fmt: skip
    """Depth order of all Gaussians, or of ``subset`` (indices); with ``reach`` (N,) (see
    ``Gaussians.reach``) those wholly outside the view, widened by ``margin_px`` pixels (the
    0.3 px² low-pass reaches 1.8 px), are left out, and the largest on-screen size is bounded.
    The colours are evaluated on the GPU, per frame, from each Gaussian's spherical
    harmonics."""
    means = g.means if subset is None else g.means[subset]
    frustum = r = None
    if reach is not None:
        m = margin_px
        frustum = ((-cam.cx - m) / cam.fx, (cam.width - cam.cx + m) / cam.fx,
                   (-cam.cy - m) / cam.fy, (cam.height - cam.cy + m) / cam.fy)  # fmt: skip
        r = reach if subset is None else reach[subset]
    order, z = depth_order(means, cam.world_to_camera, cam.near, frustum, r)
    index = order if subset is None else subset[order]
    lod = None if subset is None else len(subset)
    half = float("inf")
    if r is not None:
        # The EWA footprint's half-size: sqrt(k (lmax + 0.3)) <= |J| reach + 1.83 px, with
        # |J| <= f / z sqrt(1 + tx^2 + ty^2) at the Jacobian's clamped 1.3 x the view's tangents.
        tx = 1.3 * max(abs(frustum[0]), abs(frustum[1]))
        ty = 1.3 * max(abs(frustum[2]), abs(frustum[3]))
        j = max(cam.fx, cam.fy) * float(np.sqrt(1 + tx * tx + ty * ty))
        half = float((j * r[order] / z).max(initial=0.0)) + 2.0
    return _Order(_pose_key(cam), index.astype(np.uint32), lod, half)


def _pose_key(cam: Camera) -> bytes:
    return np.asarray(cam.world_to_camera, np.float64).tobytes()


class _Sorter:
    """The full depth sort on a latest-wins thread: ``request`` never blocks; ``on_done`` is
    called from the thread when a newer order is ready."""

    settle_s = 0.06  # a camera unchanged this long is sorted ahead (see ``request``)

    def __init__(self, g: Gaussians, on_done, reach: np.ndarray | None = None) -> None:
        self.g, self.on_done, self.reach = g, on_done, reach
        self.result: _Order | None = None
        self.ms = 0.0
        self._asked: bytes | None = None  # the camera of the newest request
        self._latest = LatestWins(self._sort, self._done, name="nsv-gaussian-sort")

    def request(self, cam: Camera, moving: bool, ahead: bool = False) -> None:
        """Sort for ``cam``; ``moving``: the order will be drawn for the next cameras too.
        ``ahead``: a frame drawn with a level of detail - sort all for this camera only once
        no newer camera has come for ``settle_s``, so the order for where the camera stops is
        ready by the time the view refines (the wait for the camera to count as stopped)."""
        key = _pose_key(cam)
        if key == self._asked:
            return
        self._asked = key
        self._latest.submit((cam, moving, ahead))

    def stop(self) -> None:
        self._latest.stop(wait_s=0)

    def _sort(self, job: tuple[Camera, bool, bool]) -> _Order | None:
        cam, moving, ahead = job
        if ahead:
            time.sleep(self.settle_s)
            if self._latest.has_newer():  # still moving: nothing to sort ahead
                return None
        t0 = time.perf_counter()
        # A moving camera's order is drawn for a frame or two after it has moved on: a wider
        # view than the camera's, so Gaussians coming in at the edges are already there.
        margin = 0.15 * cam.width if moving else 2.0
        order = view_order(self.g, cam, reach=self.reach, margin_px=margin)
        self.ms = (time.perf_counter() - t0) * 1000
        return order

    def _done(self, _job: tuple, order: _Order | None) -> None:
        if order is None:
            return
        self.result = order
        if self.on_done is not None:
            self.on_done()


class GaussiansGL:
    """Draws a scene's Gaussians. ``paint`` in the window (sorting on a thread); ``render`` for
    a headless image (sorted in place)."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.project = ctx.program(vertex_shader=_PROJECT_VS,
                                   varyings=["o_mean", "o_conic", "o_color"])  # fmt: skip
        self.prog = ctx.program(vertex_shader=_VS, fragment_shader=_FS)
        self.points = ctx.program(vertex_shader=_POINT_VS, fragment_shader=_POINT_FS)
        self._max_point = float(ctx.info.get("GL_POINT_SIZE_RANGE", (1.0, 1.0))[1])
        self.drew_sprites = False  # the last frame: one point sprite per Gaussian (not quads)
        self.resolve = ctx.program(vertex_shader=_RESOLVE_VS, fragment_shader=_RESOLVE_FS)
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
        self._shown: _Order | None = None  # the order uploaded to the GPU
        self._count = 0
        self.sorter: _Sorter | None = None
        self.on_change = None  # called from the sort thread when a new order is ready
        self.ms_per_gaussian = 1e-3  # measured per drawn Gaussian; sets the moving LOD
        self._important: np.ndarray | None = None  # Gaussian indices, most important first
        self._reach: np.ndarray | None = None  # per Gaussian: how far from its mean it is drawn
        self.background = (0.0, 0.0, 0.0)

    # --- scene ------------------------------------------------------------------------------
    def set_scene(self, scene, gaussians: Gaussians | None = None) -> None:
        self.release_scene()
        g = gaussians if gaussians is not None else getattr(scene, "gaussians", None)
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

    def _upload(self, order: _Order) -> None:
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
        if self.g is not None and (shown is None or shown.key != _pose_key(cam) or shown.lod):
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
        key = _pose_key(cam)
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

    def _sorter(self) -> _Sorter:
        if self.sorter is None:
            self.sorter = _Sorter(self.g, lambda: self.on_change and self.on_change(), self._reach)
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
