"""Target images for RenderNet: conventional renders of a mesh in several shading styles.

One headless OpenGL pass writes view-space normals and depth (supersampled); the styles are then
shaded from those buffers (deferred shading in numpy), so every style sees exactly the same
geometry:

* ``phong``   white Blinn-Phong material, key light above-left of the camera, ambient 0.15
* ``toon``    the same diffuse term quantised to 3 bands, with dark contour lines
* ``contour`` black silhouette and crease lines on white (depth and normal discontinuities)

Images are (H, W, 3) float32 in [0, 1] on the styles' background (white).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing trimesh takes 0.7 s: not at the viewer's start
    import trimesh

import numpy as np

from engine.camera import Camera

STYLES = ("phong", "toon", "contour")
LIGHT_VIEW = np.array([-0.45, -0.6, -0.65]) / np.linalg.norm([-0.45, -0.6, -0.65])  # toward light

_VS = """
#version 330
uniform mat4 mvp;
uniform mat4 view;
in vec3 in_pos;
in vec3 in_normal;
out vec3 v_normal;
out float v_depth;
void main() {
    vec4 p = view * vec4(in_pos, 1.0);
    v_depth = -p.z;
    v_normal = mat3(view) * in_normal;
    gl_Position = mvp * vec4(in_pos, 1.0);
}
"""
_FS = """
#version 330
in vec3 v_normal;
in float v_depth;
layout(location = 0) out vec4 f_normal;
layout(location = 1) out vec4 f_depth;
void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    f_normal = vec4(n, 1.0);
    // Depth gets its own target: with a Qt GL context in the process, Mesa's EGL drops the
    // alpha channel of float targets, so it cannot ride along in the normals' alpha.
    f_depth = vec4(v_depth, v_depth, v_depth, 1.0);
}
"""


class GeometryBuffer:
    """Renders view-space normals (x right, y down, z forward: our camera convention) and
    depth of one mesh at a time. Keeps its GL context between meshes."""

    def __init__(self) -> None:
        import moderngl

        self.mgl = moderngl
        from engine.glcontext import create_headless_context

        self.ctx = create_headless_context()
        self.prog = self.ctx.program(vertex_shader=_VS, fragment_shader=_FS)
        self.vao = None
        self._bufs = []
        self.fbo = None

    def set_mesh(self, mesh: trimesh.Trimesh) -> None:
        if self.vao is not None:
            self.vao.release()
            for b in self._bufs:
                b.release()
        # Flat (face) normals: creases stay crisp for contour lines.
        tris = mesh.vertices[mesh.faces].reshape(-1, 3)
        nrm = np.repeat(mesh.face_normals, 3, axis=0)
        vbo = self.ctx.buffer(np.hstack([tris, nrm]).astype(np.float32))
        ibo = self.ctx.buffer(np.arange(len(tris), dtype=np.int32))
        self.vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 3f", "in_pos", "in_normal")], ibo)
        self._bufs = [vbo, ibo]

    def render(self, camera: Camera, samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """normals (H, W, 3) in our camera frame (0 where empty), depth (H, W) (0 = empty)."""
        W, H = camera.width * samples, camera.height * samples
        if self.fbo is None or self.fbo.size != (W, H):
            self.fbo = self.ctx.framebuffer(
                color_attachments=[
                    self.ctx.renderbuffer((W, H), 4, dtype="f4"),
                    self.ctx.renderbuffer((W, H), 4, dtype="f4"),
                ],
                depth_attachment=self.ctx.depth_renderbuffer((W, H)),
            )
        self.fbo.use()
        self.fbo.clear(0, 0, 0, 0, depth=1.0)  # clears every color attachment
        self.ctx.enable(self.mgl.DEPTH_TEST)
        big = camera.resized(W, H)
        view = big.gl_view_matrix().astype(np.float32)
        mvp = (big.gl_projection_matrix() @ big.gl_view_matrix()).astype(np.float32)
        self.prog["mvp"].write(mvp.T.tobytes())
        self.prog["view"].write(view.T.tobytes())
        self.vao.render()

        def read(i: int) -> np.ndarray:
            raw = np.frombuffer(self.fbo.read(components=3, attachment=i, dtype="f4"), np.float32)
            return raw.reshape(H, W, 3)[::-1]

        n = read(0) * np.array([1, -1, -1], np.float32)  # GL view axes -> ours
        d = read(1)[..., 0].copy()
        return n, d


def _downsample(x: np.ndarray, s: int) -> np.ndarray:
    if s == 1:
        return x
    H, W = x.shape[:2]
    return x.reshape(H // s, s, W // s, s, *x.shape[2:]).mean((1, 3))


def _edges(normals: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1]: silhouettes (coverage changes, depth jumps) and creases."""
    cov = depth > 0
    d = np.where(cov, depth, depth[cov].max() * 1.5 if cov.any() else 1.0)
    e = np.zeros(depth.shape, np.float32)
    for axis in (0, 1):
        dd = np.abs(np.diff(d, axis=axis)) / np.maximum(np.minimum(
            np.delete(d, -1, axis), np.delete(d, 0, axis)), 1e-6)  # fmt: skip
        both = np.delete(cov, -1, axis) & np.delete(cov, 0, axis)
        dn = (1 - (np.delete(normals, -1, axis) * np.delete(normals, 0, axis)).sum(-1)) * both
        c = np.abs(np.diff(cov.astype(np.float32), axis=axis))
        edge = np.maximum.reduce([(dd > 0.04).astype(np.float32), (dn > 0.3).astype(np.float32), c])
        pad = [(0, 0), (0, 0)]
        pad[axis] = (0, 1)
        e = np.maximum(e, np.pad(edge, pad))
        pad[axis] = (1, 0)
        e = np.maximum(e, np.pad(edge, pad))
    return e


def shade(normals: np.ndarray, depth: np.ndarray, camera: Camera, style: str) -> np.ndarray:
    """Deferred shading of one style from full-resolution buffers -> (H, W, 3) float32."""
    cov = (depth > 0)[..., None]
    ndl = np.clip((normals * LIGHT_VIEW).sum(-1), 0, 1)
    if style == "phong":
        h = LIGHT_VIEW + np.array([0, 0, -1.0])
        h = h / np.linalg.norm(h)
        spec = np.clip((normals * h).sum(-1), 0, 1) ** 40 * (ndl > 0)
        rgb = (0.15 + 0.75 * ndl + 0.35 * spec)[..., None] * np.array([0.95, 0.93, 0.9])
    elif style == "toon":
        band = np.select([ndl > 0.7, ndl > 0.3], [1.0, 0.7], 0.4)
        rgb = band[..., None] * np.array([0.95, 0.55, 0.3])
        rgb = rgb * (1 - _edges(normals, depth)[..., None])
    elif style == "contour":
        rgb = np.repeat(1 - _edges(normals, depth)[..., None], 3, -1)
        return np.clip(rgb, 0, 1).astype(np.float32)
    else:
        raise ValueError(f"unknown style {style!r}; choose from {STYLES}")
    return np.clip(np.where(cov, rgb, 1.0), 0, 1).astype(np.float32)


def render_styles(
    gbuf: GeometryBuffer, camera: Camera, styles=STYLES, samples: int = 2
) -> dict[str, np.ndarray]:
    """All styles of the current mesh from ``camera``, anti-aliased by supersampling."""
    n, d = gbuf.render(camera, samples)
    big = camera.resized(camera.width * samples, camera.height * samples)
    return {s: _downsample(shade(n, d, big, s), samples) for s in styles}
