"""moderngl programs: GL points with depth test, camera frustum lines, and image quads.

These classes only need a moderngl context, so the window viewport and the headless renderer
draw with exactly the same code (which is why their images match).
"""

from __future__ import annotations

import moderngl
import numpy as np

from engine.camera import Camera
from engine.navigation import FRUSTUM_FULL_SIZE_BEYOND
from engine.points.lod import BACKGROUND, ordered_arrays
from engine.scene.types import Scene

_POINTS_VS = """
#version 330
uniform mat4 mvp;
uniform float point_size;
in vec3 in_pos;
in vec3 in_color;
out vec3 v_color;
void main() {
    gl_Position = mvp * vec4(in_pos, 1.0);
    gl_PointSize = point_size;
    v_color = in_color;
}
"""
_POINTS_FS = """
#version 330
in vec3 v_color;
out vec4 f_color;
void main() { f_color = vec4(v_color, 1.0); }
"""
_QUAD_VS = """
#version 330
in vec2 in_pos;
out vec2 v_uv;
void main() {
    // Image row 0 is the top: flip v so the texture is shown upright.
    v_uv = vec2(in_pos.x * 0.5 + 0.5, 0.5 - in_pos.y * 0.5);
    gl_Position = vec4(in_pos, 0.0, 1.0);
}
"""
_QUAD_FS = """
#version 330
uniform sampler2D image;
in vec2 v_uv;
out vec4 f_color;
void main() { f_color = vec4(texture(image, v_uv).rgb, 1.0); }
"""


def mvp_matrix(camera: Camera) -> np.ndarray:
    """(4, 4) float32 model-view-projection, column-major bytes ready for a GLSL mat4."""
    return (camera.gl_projection_matrix() @ camera.gl_view_matrix()).astype(np.float32)


class PointCloudGL:
    """A point cloud in a VBO. Points are stored shuffled so drawing a prefix is a fair subset;
    a huge cloud is stored in its level-of-detail order instead (``scene_lod(scene)``: cells, each
    shuffled) and drawn by view-dependent plans (``plan`` / ``draw_plan``)."""

    def __init__(self, ctx: moderngl.Context, scene: Scene) -> None:
        self.ctx = ctx
        self.prog = ctx.program(vertex_shader=_POINTS_VS, fragment_shader=_POINTS_FS)
        n = scene.num_points
        positions, colors, self.lod = ordered_arrays(scene)
        self.vbo_pos = ctx.buffer(positions)
        self.vbo_col = ctx.buffer(colors)
        self.vao = ctx.vertex_array(
            self.prog, [(self.vbo_pos, "3f", "in_pos"), (self.vbo_col, "3f1", "in_color")]
        )
        self.num_points = n

    def draw(
        self,
        camera: Camera,
        point_size: float = 1.0,
        max_points: int | None = None,
        first: int = 0,
    ) -> int:
        """Draw points [first, first + max_points) into the bound framebuffer with depth test.

        Drawing a cloud in consecutive chunks without clearing gives the same image as one
        draw (same order, same depth test). Returns the number of points drawn.
        """
        n = self.num_points - first if max_points is None else max_points
        n = max(0, min(n, self.num_points - first))
        self.ctx.enable(moderngl.DEPTH_TEST | moderngl.PROGRAM_POINT_SIZE)
        self.prog["mvp"].write(mvp_matrix(camera).T.tobytes())
        self.prog["point_size"].value = float(point_size)
        if n:
            self.vao.render(moderngl.POINTS, vertices=n, first=first)
        return n

    def plan(self, camera: Camera, budget: int | None) -> np.ndarray | None:
        """(K, 2) ranges worth drawing for ``camera`` (at most ``budget`` points), or None
        when this cloud has no level of detail (draw prefixes instead)."""
        return None if self.lod is None else self.lod.plan(camera, budget)

    def draw_plan(
        self,
        camera: Camera,
        point_size: float,
        plan: np.ndarray,
        start: int = 0,
        max_points: int | None = None,
    ) -> tuple[int, int]:
        """Draw ranges plan[start:] until ``max_points`` points are drawn (None: all). Returns
        (points drawn, index of the next range)."""
        self.ctx.enable(moderngl.DEPTH_TEST | moderngl.PROGRAM_POINT_SIZE)
        self.prog["mvp"].write(mvp_matrix(camera).T.tobytes())
        self.prog["point_size"].value = float(point_size)
        drawn, i = 0, start
        while i < len(plan) and (max_points is None or drawn < max_points):
            first, count = int(plan[i, 0]), int(plan[i, 1])
            self.vao.render(moderngl.POINTS, vertices=count, first=first)
            drawn += count
            i += 1
        return drawn, i

    def release(self) -> None:
        for obj in (self.vao, self.vbo_pos, self.vbo_col, self.prog):
            obj.release()


class FrustumsGL:
    """Camera frustums as lines; the highlighted one drawn in another color. Near the eye they
    shrink (``engine.navigation.frustum_scale``)."""

    _VS = """
    #version 330
    uniform mat4 mvp;
    uniform vec3 eye;
    uniform float full_size_beyond;  // FRUSTUM_FULL_SIZE_BEYOND frustum depths
    in vec3 in_pos;
    in vec3 in_color;
    in vec3 in_apex;
    out vec3 v_color;
    void main() {
        float s = min(1.0, distance(in_apex, eye) / full_size_beyond);
        gl_Position = mvp * vec4(in_apex + (in_pos - in_apex) * s, 1.0);
        v_color = in_color;
    }
    """

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.prog = ctx.program(vertex_shader=self._VS, fragment_shader=_POINTS_FS)
        self.vao = None
        self.vbo = None
        self.count = 0
        self.size = 1.0

    def set_cameras(self, cameras: list[Camera], size: float, selected: int | None = None) -> None:
        verts = []
        for i, cam in enumerate(cameras):
            color = (1.0, 0.8, 0.1) if i == selected else (0.3, 0.75, 1.0)
            apex = tuple(cam.position)
            for a, b in frustum_segments(cam, size):
                verts += [(*a, *color, *apex), (*b, *color, *apex)]
        if self.vbo is not None:
            self.vao.release()
            self.vbo.release()
            self.vao = self.vbo = None
        self.count, self.size = len(verts), size
        if not verts:
            return
        self.vbo = self.ctx.buffer(np.asarray(verts, np.float32))
        self.vao = self.ctx.vertex_array(
            self.prog, [(self.vbo, "3f 3f 3f", "in_pos", "in_color", "in_apex")]
        )

    def draw(self, camera: Camera) -> None:
        if not self.count:
            return
        self.ctx.disable(moderngl.DEPTH_TEST)  # frustums stay visible and clickable
        self.prog["mvp"].write(mvp_matrix(camera).T.tobytes())
        self.prog["eye"].value = tuple(float(x) for x in camera.position)
        self.prog["full_size_beyond"].value = FRUSTUM_FULL_SIZE_BEYOND * self.size
        self.vao.render(moderngl.LINES)


def frustum_segments(cam: Camera, size: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """World-space line segments of a camera pyramid whose image plane is ``size`` deep."""
    c = cam.position
    corners = []
    for u, v in ((0, 0), (cam.width, 0), (cam.width, cam.height), (0, cam.height)):
        d_cam = np.array([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, 1.0]) * size
        corners.append(cam.R.T @ d_cam + c)
    segs = [(c, p) for p in corners]
    segs += [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    # A small tick on the top edge shows which way is up in the photo.
    top_mid = (corners[0] + corners[1]) / 2
    up = -cam.R[1] * size * 0.25
    segs += [
        (corners[0] * 0.8 + corners[1] * 0.2, top_mid + up),
        (top_mid + up, corners[1] * 0.8 + corners[0] * 0.2),
    ]
    return segs


class ImageQuadGL:
    """Shows an (H, W, 3) uint8 image over the whole viewport."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.prog = ctx.program(vertex_shader=_QUAD_VS, fragment_shader=_QUAD_FS)
        quad = np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32)
        self.vbo = ctx.buffer(quad)
        self.vao = ctx.vertex_array(self.prog, [(self.vbo, "2f", "in_pos")])
        self.tex: moderngl.Texture | None = None

    def set_image(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self.tex is None or self.tex.size != (w, h):
            if self.tex is not None:
                self.tex.release()
            self.tex = self.ctx.texture((w, h), 3, dtype="f1")
            self.tex.repeat_x = self.tex.repeat_y = False
        self.tex.write(np.ascontiguousarray(image, np.uint8))

    def draw(self, viewport_size: tuple[int, int]) -> None:
        if self.tex is None:
            return
        # Exact pixels when sizes match; smooth upscaling for reduced-resolution frames.
        exact = self.tex.size == tuple(viewport_size)
        f = moderngl.NEAREST if exact else moderngl.LINEAR
        self.tex.filter = (f, f)
        self.ctx.disable(moderngl.DEPTH_TEST)
        self.tex.use(0)
        self.prog["image"].value = 0
        self.vao.render(moderngl.TRIANGLE_STRIP)


class RenderTarget:
    """An offscreen color + depth framebuffer. The window and headless rendering both draw GL
    points into one of these, so they share depth precision and give identical pixels."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.fbo: moderngl.Framebuffer | None = None

    def bind(self, size: tuple[int, int]) -> moderngl.Framebuffer:
        if self.fbo is None or self.fbo.size != tuple(size):
            if self.fbo is not None:
                for att in (*self.fbo.color_attachments, self.fbo.depth_attachment):
                    att.release()
                self.fbo.release()
            self.fbo = self.ctx.framebuffer(
                color_attachments=[self.ctx.renderbuffer(size, 4)],
                depth_attachment=self.ctx.depth_renderbuffer(size),
            )
        clear(self.ctx, self.fbo)
        return self.fbo

    def read(self) -> np.ndarray:
        """(H, W, 3) uint8, row 0 at the top."""
        w, h = self.fbo.size
        raw = self.fbo.read(components=3, alignment=1)
        return np.frombuffer(raw, np.uint8).reshape(h, w, 3)[::-1].copy()


def clear(ctx: moderngl.Context, fbo: moderngl.Framebuffer) -> None:
    fbo.use()
    fbo.clear(BACKGROUND, BACKGROUND, BACKGROUND, 1.0, depth=1.0)
