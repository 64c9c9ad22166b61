"""A procedural object category for HoloGAN training: chairs built from trimesh primitives with
random proportions, parts, colors and materials, rendered headlessly from random poses.

Every chair is centred and scaled into the unit sphere with its seat at the origin's height, so
pose is the only thing the camera changes. ``nsv data objects`` writes the dataset.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import trimesh

from engine.camera import Camera
from engine.synthetic.scenes import Material, SceneObject

BACKGROUND = (0.86, 0.86, 0.88)  # light grey: silhouettes separate from it by a threshold
CAMERA_DISTANCE = 3.2
FOV_Y_DEG = 36.0
ELEVATION_RANGE = (10.0, 40.0)


def _box(extents, center) -> trimesh.Trimesh:
    m = trimesh.creation.box(extents=extents)
    m.apply_translation(center)
    return m


def _leg(style: int, radius: float, height: float, x: float, z: float) -> trimesh.Trimesh:
    if style == 0:
        m = trimesh.creation.box(extents=(2 * radius, height, 2 * radius))
    else:
        m = trimesh.creation.cylinder(radius=radius, height=height, sections=16)
        m.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [1, 0, 0]))
    m.apply_translation([x, height / 2, z])
    return m


def _material(rng: np.random.Generator, wood: bool) -> Material:
    if wood:
        base = np.array([0.55, 0.35, 0.18]) * rng.uniform(0.5, 1.4)
        return Material(1, tuple(np.clip(base, 0, 1)), tuple(np.clip(base * 0.7, 0, 1)),
                        float(rng.uniform(20, 40)), 0.15, 20.0)  # fmt: skip
    c0 = rng.uniform(0.05, 0.95, 3)
    pattern = int(rng.choice([0, 0, 1, 3]))
    c1 = np.clip(c0 * rng.uniform(0.4, 0.8), 0, 1)
    return Material(pattern, tuple(c0), tuple(c1), float(rng.uniform(8, 20)),
                    float(rng.uniform(0.0, 0.4)), float(rng.uniform(10, 60)))  # fmt: skip


def random_chair(rng: np.random.Generator) -> tuple[list[SceneObject], dict]:
    """One chair (frame + seat + back [+ arms]) and its shape parameters."""
    w, d = rng.uniform(0.8, 1.25), rng.uniform(0.75, 1.2)
    seat_h, seat_t = rng.uniform(0.75, 1.15), rng.uniform(0.06, 0.18)
    leg_style, leg_r = int(rng.integers(2)), rng.uniform(0.035, 0.08)
    back_h, back_t = rng.uniform(0.5, 1.3), rng.uniform(0.05, 0.12)
    slats = int(rng.choice([0, 0, 2, 3, 4]))  # 0: solid back
    arms = bool(rng.random() < 0.35)
    frame_mat = _material(rng, wood=rng.random() < 0.6)
    seat_mat = _material(rng, wood=rng.random() < 0.3)
    back_mat = seat_mat if rng.random() < 0.7 else _material(rng, wood=False)

    frame = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w / 2 - leg_r), sz * (d / 2 - leg_r)
            frame.append(_leg(leg_style, leg_r, seat_h - seat_t, x, z))
    seat = [_box((w, seat_t, d), (0, seat_h - seat_t / 2, -0.0))]
    back = []
    z_back = -d / 2 + back_t / 2
    if slats == 0:
        back.append(_box((w, back_h, back_t), (0, seat_h + back_h / 2, z_back)))
    else:
        top = rng.uniform(0.12, 0.25) * back_h
        back.append(_box((w, top, back_t), (0, seat_h + back_h - top / 2, z_back)))
        for i in range(slats):
            x = -w / 2 + leg_r + (w - 2 * leg_r) * i / (slats - 1) if slats > 1 else 0.0
            back.append(
                _box((2 * leg_r, back_h - top, back_t), (x, seat_h + (back_h - top) / 2, z_back))
            )
    if arms:
        arm_h = rng.uniform(0.2, 0.35)
        for sx in (-1, 1):
            x = sx * (w / 2 - leg_r)
            frame.append(
                _box((2 * leg_r, arm_h, 2 * leg_r), (x, seat_h + arm_h / 2, d / 2 - leg_r))
            )
            frame.append(_box((2 * leg_r + 0.04, 0.05, d), (x, seat_h + arm_h, 0)))
    parts = [(frame, frame_mat), (seat, seat_mat), (back, back_mat)]
    meshes = [trimesh.util.concatenate(ms) for ms, _ in parts]
    # Normalise: centre of the bounding box at the origin, farthest corner on the unit sphere.
    lo = np.min([m.bounds[0] for m in meshes], 0)
    hi = np.max([m.bounds[1] for m in meshes], 0)
    center, scale = (lo + hi) / 2, 1.0 / (np.linalg.norm(hi - lo) / 2)
    objs = []
    for m, (_, mat) in zip(meshes, parts, strict=True):
        m.apply_translation(-center)
        m.apply_scale(scale)
        objs.append(SceneObject(m, mat))
    params = {"width": w, "depth": d, "seat_height": seat_h, "back_height": back_h,
              "slats": slats, "arms": arms, "leg_style": leg_style}  # fmt: skip
    return objs, params


def object_camera(
    azimuth_deg: float, elevation_deg: float, size: int, distance: float = CAMERA_DISTANCE
) -> Camera:
    """The dataset's camera: on a sphere around the origin, +Y up. Azimuth 0 looks at the
    chair's front (+Z side); positive azimuth turns the camera counter-clockwise seen from above."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    eye = distance * np.array(
        [math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)]
    )
    return Camera.look_at(eye, [0, 0, 0], [0, 1, 0], size, size, FOV_Y_DEG)


def write_object_dataset(
    out: str | Path, n: int, res: int = 64, seed: int = 0, progress: bool = True
) -> dict:
    """Render ``n`` random chairs, one random pose each, into ``out/objects.safetensors``:
    images (n, res, res, 3) uint8, azimuth / elevation (n,) float32 degrees, and a preview
    grid ``out/preview.png``."""
    import imageio.v3 as iio
    import torch
    from tqdm import tqdm

    from engine.npbg.model import atomic_save_tensors
    from engine.synthetic.render import MeshRenderer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = np.zeros((n, res, res, 3), np.uint8)
    az = rng.uniform(0, 360, n).astype(np.float32)
    el = rng.uniform(*ELEVATION_RANGE, n).astype(np.float32)
    renderer = None
    for i in tqdm(range(n), desc="rendering objects", disable=not progress):
        objs, _ = random_chair(rng)
        if renderer is None:
            renderer = MeshRenderer(objs)
        else:
            renderer.set_objects(objs)
        img = renderer.render(object_camera(az[i], el[i], res), 4, BACKGROUND)
        images[i] = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    tensors = {
        "images": torch.from_numpy(images),
        "azimuth": torch.from_numpy(az),
        "elevation": torch.from_numpy(el),
    }
    atomic_save_tensors(tensors, out / "objects.safetensors")
    k = min(8, int(math.sqrt(n)))
    grid = (
        images[: k * k]
        .reshape(k, k, res, res, 3)
        .transpose(0, 2, 1, 3, 4)
        .reshape(k * res, k * res, 3)
    )
    iio.imwrite(out / "preview.png", grid)
    return {"images": n, "res": res}
