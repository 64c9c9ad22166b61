"""Phone-like test captures with known truth: an object on a table in a room, orbited by a
hand-held camera whose photos carry what a phone's do - auto-exposure and white balance that
change from photo to photo, a little motion blur, sensor noise, JPEG compression and a lens's
barrel distortion (written to ``transforms.json`` as OpenCV ``k1``/``k2``, as capture apps do).

Material for judging ``nsv import`` + ``nsv fit`` on held-out photos of captures nothing was
tuned on (``nsv data phone``; a new ``--seed`` is a new table, object set and room).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from engine.camera import Camera
from engine.synthetic.scenes import Material, SceneObject, _place, floor_disk


@dataclass
class PhoneLook:
    """What the phone does to each photo."""

    # Auto-exposure meters each frame: it brings the frame's mean (linear) brightness this far
    # towards mid-grey (0: fixed exposure, 1: every frame the same mean), so a frame full of
    # dark wall comes out brighter than one of the bright table - neighbours alike, as a
    # phone's. Plus a random part (std, in stops) no neighbour predicts.
    metering: float = 0.6
    exposure_stops: float = 0.1
    white_balance: float = 0.04  # spread of the per-channel white-balance gains
    blur_px: float = 1.5  # longest hand-shake blur (a line of up to this many pixels)
    noise: float = 0.012  # sensor noise (std, linear intensity)
    jpeg_quality: int = 88
    k1: float = -0.06  # barrel distortion (OpenCV radial terms, normalized coordinates)
    k2: float = 0.012
    # Light lost towards the frame's corners (the lens shading a phone leaves uncorrected):
    # linear gain 1 - vignetting * (r / r_corner)^2. 0 in the captures of sessions 14-20.
    vignetting: float = 0.0
    # Local tone mapping: each region's light scaled by (its blurred brightness / the frame's
    # mean)^-local_tone, so a bright sofa is held down and a dark table lifted, by amounts
    # that follow what the frame sees (neighbouring frames alike). 0: none.
    local_tone: float = 0.0


def _quad(corners: np.ndarray) -> trimesh.Trimesh:
    """Two triangles with their own four vertices (flat normals)."""
    return trimesh.Trimesh(corners, [[0, 1, 2], [0, 2, 3]], process=False)


def room_objects(seed: int) -> list[SceneObject]:
    """A round table (radius 1.4) with 2-4 textured objects on it, in a room 14 x 5 x 12 whose
    floor, walls and ceiling each have their own material: the room fills most of a 360-degree
    orbit's frames and lies 2-3x farther than the object, as in a living-room capture."""
    rng = np.random.default_rng(seed)

    def material(pattern: int, freq: tuple[float, float], spec: float = 0.05) -> Material:
        return Material(pattern, tuple(rng.uniform(0.45, 0.95, 3)),
                        tuple(rng.uniform(0.05, 0.45, 3)), float(rng.uniform(*freq)), spec, 12.0)  # fmt: skip

    objs = [SceneObject(floor_disk(1.4, (0.0, 0.0)), material(4, (18, 30)))]
    makers = [
        lambda: trimesh.creation.box(extents=rng.uniform(0.3, 0.7, 3)),
        lambda: trimesh.creation.icosphere(subdivisions=3, radius=float(rng.uniform(0.2, 0.35))),
        lambda: trimesh.creation.cylinder(radius=float(rng.uniform(0.12, 0.25)),
                                          height=float(rng.uniform(0.4, 0.9)), sections=48),
        lambda: trimesh.creation.capsule(height=float(rng.uniform(0.3, 0.6)),
                                         radius=float(rng.uniform(0.1, 0.2))),
        lambda: trimesh.creation.torus(float(rng.uniform(0.2, 0.3)), float(rng.uniform(0.06, 0.1))),
    ]  # fmt: skip
    for i in range(int(rng.integers(2, 5))):
        mesh = makers[rng.integers(len(makers))]()
        mesh.apply_transform(trimesh.transformations.random_rotation_matrix(rng.random(3)))
        r, a = (0.0, 0.0) if i == 0 else (rng.uniform(0.5, 0.9), rng.uniform(0, 2 * np.pi))
        mesh = _place(mesh, float(rng.uniform(0.4, 0.9)), r * np.cos(a), r * np.sin(a))
        objs.append(SceneObject(mesh, material(int(rng.choice([1, 2, 3, 4])), (8, 22), 0.3)))
    x0, x1, z0, z1, y0, y1 = -7.0, 7.0, -5.0, 7.0, -1.2, 3.8
    c = {
        (sx, sy, sz): np.array([sx, sy, sz])
        for sx in (x0, x1)
        for sy in (y0, y1)
        for sz in (z0, z1)
    }
    faces = [
        [c[x0, y0, z0], c[x1, y0, z0], c[x1, y0, z1], c[x0, y0, z1]],  # floor
        [c[x0, y1, z0], c[x0, y1, z1], c[x1, y1, z1], c[x1, y1, z0]],  # ceiling
        [c[x0, y0, z0], c[x0, y1, z0], c[x1, y1, z0], c[x1, y0, z0]],
        [c[x0, y0, z1], c[x1, y0, z1], c[x1, y1, z1], c[x0, y1, z1]],
        [c[x0, y0, z0], c[x0, y0, z1], c[x0, y1, z1], c[x0, y1, z0]],
        [c[x1, y0, z0], c[x1, y1, z0], c[x1, y1, z1], c[x1, y0, z1]],
    ]  # fmt: skip
    for k, f in enumerate(faces):
        # Blocks of 0.3-1 units in random colours: doors, shelves and pictures stand in for them.
        objs.append(
            SceneObject(_quad(np.array(f)), material(4, (2.5, 4.0) if k == 0 else (1.0, 3.0)))
        )
    return objs


def hand_held_cameras(n: int, width: int, height: int, seed: int) -> list[Camera]:
    """A 360-degree orbit at varying distance and height, aimed roughly at the table's centre."""
    rng = np.random.default_rng(seed + 7)
    cams = []
    for i in range(n):
        az = 2 * math.pi * i / n + rng.normal(0, 0.02)
        r = 2.3 * (1 + rng.uniform(-0.08, 0.08))
        el = math.radians(28 + rng.uniform(-5, 5))
        eye = np.array(
            [r * math.cos(el) * math.cos(az), r * math.sin(el), r * math.cos(el) * math.sin(az)]
        )
        target = np.array([0.0, 0.25, 0.0]) + rng.normal(0, 0.05, 3)
        cams.append(Camera.look_at(eye, target, [0, 1, 0], width, height, 60.0))
    return cams  # fmt: skip


def _undistort_points(xd: np.ndarray, yd: np.ndarray, k1: float, k2: float):
    """The pinhole (undistorted) normalized coordinates that OpenCV's radial model maps to
    (xd, yd): fixed-point iteration of x_u = x_d / (1 + k1 r^2 + k2 r^4)."""
    xu, yu = xd.copy(), yd.copy()
    for _ in range(20):
        r2 = xu * xu + yu * yu
        s = 1 + k1 * r2 + k2 * r2 * r2
        xu, yu = xd / s, yd / s
    return xu, yu


def distort(render, cam: Camera, k1: float, k2: float) -> np.ndarray:
    """The photo a lens with radial distortion (k1, k2) takes where the pinhole ``cam`` stands:
    ``render(camera)`` (H, W, 3) is called once on a canvas wide enough for what the lens
    brings into the frame, and resampled bilinearly."""
    v, u = np.mgrid[0 : cam.height, 0 : cam.width].astype(np.float64) + 0.5
    xu, yu = _undistort_points((u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, k1, k2)
    pu, pv = xu * cam.fx + cam.cx, yu * cam.fy + cam.cy
    pad = math.ceil(max(-pu.min(), pu.max() - cam.width, -pv.min(), pv.max() - cam.height, 0)) + 2
    big = Camera(cam.width + 2 * pad, cam.height + 2 * pad, cam.fx, cam.fy, cam.cx + pad,
                 cam.cy + pad, cam.world_to_camera)  # fmt: skip
    img = render(big)
    x, y = pu + pad - 0.5, pv + pad - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x0, y0 = np.clip(x0, 0, big.width - 2), np.clip(y0, 0, big.height - 2)
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)  # fmt: skip


def _motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Average of the image shifted along a line of ``length`` pixels (hand shake)."""
    taps = max(1, math.ceil(length) * 2 + 1)
    if length < 0.25:
        return img
    out = np.zeros_like(img)
    for t in np.linspace(-0.5, 0.5, taps):
        dx, dy = t * length * math.cos(angle), t * length * math.sin(angle)
        ix, iy = math.floor(dx), math.floor(dy)
        ax, ay = dx - ix, dy - iy
        s = lambda a, b: np.roll(img, (b, a), (0, 1))  # noqa: E731
        out += ((1 - ax) * (1 - ay) * s(ix, iy) + ax * (1 - ay) * s(ix + 1, iy)
                + (1 - ax) * ay * s(ix, iy + 1) + ax * ay * s(ix + 1, iy + 1))  # fmt: skip
    return out / taps


def phone_photo(
    img: np.ndarray, look: PhoneLook, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Apply a phone's per-photo look to a rendered (H, W, 3) [0, 1] image (display values):
    exposure and white balance in linear light, hand-shake blur, sensor noise. Returns the
    8-bit photo and what was applied: ``exposure`` (the gain), ``metered`` (the part of it the
    frame's content sets; ``exposure / metered`` is the random part) and ``white_balance``."""
    lin = np.clip(img, 0, 1) ** 2.2
    metered = float(np.clip((0.18 / max(float(lin.mean()), 1e-3)) ** look.metering, 0.5, 2.0))
    gain = metered * 2.0 ** rng.normal(0, look.exposure_stops)
    wb = 1 + rng.normal(0, look.white_balance, 3)
    lin = lin * gain * wb
    h, w = lin.shape[:2]
    if look.vignetting:
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((xx + 0.5 - w / 2) ** 2 + (yy + 0.5 - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
        lin = lin * (1 - look.vignetting * r2)[..., None]
    if look.local_tone:
        from scipy.ndimage import gaussian_filter

        lum = lin.mean(2)
        local = gaussian_filter(lum, max(h, w) / 16, mode="nearest")
        lin = lin * ((local + 1e-3) / (lum.mean() + 1e-3))[..., None] ** -look.local_tone
    lin = _motion_blur(lin, look.blur_px * rng.uniform(0, 1), rng.uniform(0, math.pi))
    lin = lin + rng.normal(0, look.noise, lin.shape) * np.sqrt(np.clip(lin, 0.02, 1))
    out = np.clip(np.clip(lin, 0, 1) ** (1 / 2.2) * 255 + 0.5, 0, 255).astype(np.uint8)
    return out, {"exposure": gain, "metered": metered, "white_balance": wb.round(4).tolist()}


def write_phone_capture(out_dir: str | Path, views: int = 60, width: int = 480, height: int = 480,
                        seed: int = 0, look: PhoneLook | None = None) -> dict:  # fmt: skip
    """Render the capture to ``out_dir``: ``images/*.jpg`` and ``transforms.json`` (OpenCV
    intrinsics with ``k1``/``k2``), ``truth.json`` (image name -> camera, our convention) and
    ``look.json`` (each photo's exposure, its metered part and white balance)."""
    import imageio.v3 as iio

    from engine.scene.nerf import write_transforms
    from engine.scene.types import RegisteredView
    from engine.synthetic.render import MeshRenderer

    look = look or PhoneLook()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    renderer = MeshRenderer(room_objects(seed))
    rng = np.random.default_rng(seed + 11)
    cams = hand_held_cameras(views, width, height, seed)
    regs, applied = [], {}
    for i, cam in enumerate(cams):
        name = f"frame_{i:04d}.jpg"
        img = distort(lambda c: renderer.render(c, samples=3), cam, look.k1, look.k2)
        photo, applied[name] = phone_photo(img, look, rng)
        iio.imwrite(out / "images" / name, photo, quality=look.jpeg_quality)
        regs.append(RegisteredView(name, cam, out / "images" / name))
    write_transforms(out / "transforms.json", regs)
    meta = json.loads((out / "transforms.json").read_text())
    for f in meta["frames"]:
        f.update(k1=look.k1, k2=look.k2, p1=0.0, p2=0.0)
    (out / "transforms.json").write_text(json.dumps(meta, indent=1))
    (out / "truth.json").write_text(json.dumps({r.name: r.camera.to_dict() for r in regs}))
    (out / "look.json").write_text(json.dumps(applied, indent=1))
    return {"views": views, "width": width, "height": height}
