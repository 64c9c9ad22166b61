"""Headless OpenGL renders of synthetic scenes (moderngl on EGL; no Qt, no window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.camera import Camera
from engine.synthetic.scenes import _PATTERN_GLSL, BACKGROUND, LIGHT_DIR, SceneObject

_VS = """
#version 330
uniform mat4 mvp;
in vec3 in_pos;
in vec3 in_normal;
out vec3 v_pos;
out vec3 v_normal;
void main() { v_pos = in_pos; v_normal = in_normal; gl_Position = mvp * vec4(in_pos, 1.0); }
"""
_FS = (
    """
#version 330
uniform vec3 eye;
uniform vec3 light_dir;
uniform int pattern;
uniform vec3 c0;
uniform vec3 c1;
uniform float freq;
uniform float specular;
uniform float shininess;
in vec3 v_pos;
in vec3 v_normal;
out vec4 f_color;
"""
    + _PATTERN_GLSL
    + """
void main() {
    vec3 n = normalize(v_normal);
    vec3 v = normalize(eye - v_pos);
    if (dot(n, v) < 0.0) n = -n;  // scans have holes: shade back faces like front faces
    vec3 a = albedo(v_pos, pattern, c0, c1, freq);
    float diff = max(dot(n, light_dir), 0.0);
    vec3 h = normalize(light_dir + v);
    float spec = specular * pow(max(dot(n, h), 0.0), shininess) * step(0.0, diff);
    vec3 rgb = a * (0.3 + 0.7 * diff) + vec3(spec);
    f_color = vec4(clamp(rgb, 0.0, 1.0), 1.0);
}
"""
)


class MeshRenderer:
    """Renders SceneObjects with Blinn-Phong shading and procedural albedo into (H, W, 3)."""

    def __init__(self, objects: list[SceneObject]) -> None:
        import moderngl

        self.mgl = moderngl
        from engine.glcontext import create_headless_context

        self.ctx = create_headless_context()
        self.prog = self.ctx.program(vertex_shader=_VS, fragment_shader=_FS)
        self.items = []
        self.fbo = None
        self.set_objects(objects)

    def set_objects(self, objects: list[SceneObject]) -> None:
        """Replace the meshes, keeping the GL context (cheap: for datasets of many objects)."""
        for vao, _ in self.items:
            vao.release()
        for buf in getattr(self, "_buffers", []):
            buf.release()
        self.items, self._buffers = [], []
        for o in objects:
            m = o.mesh
            # Smooth vertex normals for scans; flat normals for boxes (trimesh merges them).
            data = np.hstack([m.vertices, m.vertex_normals]).astype(np.float32)
            vbo = self.ctx.buffer(data)
            ibo = self.ctx.buffer(np.asarray(m.faces, np.int32))
            vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 3f", "in_pos", "in_normal")], ibo)
            self._buffers += [vbo, ibo]
            self.items.append((vao, o.material))

    def render(self, camera: Camera, samples: int = 4, background=BACKGROUND) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1]; ``samples`` x ``samples`` supersampling anti-aliases."""
        W, H = camera.width * samples, camera.height * samples
        if self.fbo is None or self.fbo.size != (W, H):
            self.fbo = self.ctx.framebuffer(
                color_attachments=[self.ctx.renderbuffer((W, H), 4, dtype="f4")],
                depth_attachment=self.ctx.depth_renderbuffer((W, H)),
            )
        self.fbo.use()
        self.fbo.clear(*background, 1.0, depth=1.0)
        self.ctx.enable(self.mgl.DEPTH_TEST)
        big = camera.resized(W, H)
        mvp = (big.gl_projection_matrix() @ big.gl_view_matrix()).astype(np.float32)
        self.prog["mvp"].write(mvp.T.tobytes())
        self.prog["eye"].value = tuple(camera.position.astype(float))
        self.prog["light_dir"].value = tuple(LIGHT_DIR.astype(float))
        for vao, mat in self.items:
            self.prog["pattern"].value = int(mat.pattern)
            self.prog["c0"].value = tuple(float(c) for c in mat.c0)
            self.prog["c1"].value = tuple(float(c) for c in mat.c1)
            self.prog["freq"].value = float(mat.freq)
            self.prog["specular"].value = float(mat.specular)
            self.prog["shininess"].value = float(mat.shininess)
            vao.render()
        raw = np.frombuffer(self.fbo.read(components=3, dtype="f4"), np.float32)
        img = raw.reshape(H, W, 3)[::-1]
        return img.reshape(camera.height, samples, camera.width, samples, 3).mean((1, 3))


def write_synthetic_scene(
    out_dir: str | Path,
    objects: list[SceneObject],
    num_views: int,
    num_points: int,
    width: int,
    height: int,
    seed: int = 0,
    noise: float = 0.0,
    progress: bool = True,
) -> dict:
    """Render photos and write a COLMAP text scene: images/*.png, sparse/0/*.txt, cloud.ply."""
    import imageio.v3 as iio
    from tqdm import tqdm

    from engine.scene.colmap import ColmapCamera, image_from_camera, write_model
    from engine.scene.ply import save_ply_cloud
    from engine.scene.types import Scene
    from engine.synthetic.scenes import orbit_cameras, sample_cloud

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    pts, nrm, col = sample_cloud(objects, num_points, seed, noise)
    center, radius = Scene(points=pts).bounds()
    cams = orbit_cameras(num_views, center, radius, width, height, seed)
    renderer = MeshRenderer(objects)
    images = []
    for i, cam in enumerate(tqdm(cams, desc="rendering views", disable=not progress)):
        img = renderer.render(cam)
        name = f"view_{i:03d}.png"
        iio.imwrite(out / "images" / name, (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
        images.append(image_from_camera(i + 1, 1, name, cam))
    c = cams[0]
    colmap_cam = ColmapCamera(1, "PINHOLE", width, height, np.array([c.fx, c.fy, c.cx, c.cy]))
    rgb = (col * 255 + 0.5).astype(np.uint8)
    write_model(
        out / "sparse" / "0", [colmap_cam], images, pts.astype(np.float64), rgb, binary=False
    )
    save_ply_cloud(out / "cloud.ply", pts, col, nrm)
    return {"views": num_views, "points": len(pts), "size": (width, height)}
