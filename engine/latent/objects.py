"""Procedural furniture for HoloGAN training: chairs, stools, benches, tables, sofas and floor
lamps built from trimesh primitives with random proportions, parts, colours and materials,
rendered headlessly from random poses. Several categories and plain single-material objects make
*shape* the main thing that varies, so a generator cannot explain the data by texture alone.

Every object is centred and scaled into the unit sphere, so pose is the only thing the camera
changes. ``nsv data objects`` writes the dataset.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import trimesh

from engine.camera import Camera
from engine.latent.background import BACKGROUND
from engine.synthetic.scenes import Material, SceneObject

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
    params = {"category": "chair", "width": w, "depth": d, "seat_height": seat_h,
              "back_height": back_h, "slats": slats, "arms": arms,
              "leg_style": leg_style}  # fmt: skip
    return _normalised(parts), params


def _normalised(parts) -> list[SceneObject]:
    """One SceneObject per (meshes, material) part, the whole centred on its bounding box with
    the farthest corner on the unit sphere."""
    meshes = [trimesh.util.concatenate(ms) for ms, _ in parts]
    lo = np.min([m.bounds[0] for m in meshes], 0)
    hi = np.max([m.bounds[1] for m in meshes], 0)
    center, scale = (lo + hi) / 2, 1.0 / (np.linalg.norm(hi - lo) / 2)
    objs = []
    for m, (_, mat) in zip(meshes, parts, strict=True):
        m.apply_translation(-center)
        m.apply_scale(scale)
        objs.append(SceneObject(m, mat))
    return objs


def _cylinder(radius: float, height: float, center, sections: int = 24) -> trimesh.Trimesh:
    """Upright (along +Y) cylinder."""
    m = trimesh.creation.cylinder(radius=radius, height=height, sections=sections)
    m.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [1, 0, 0]))
    m.apply_translation(center)
    return m


def _legs(style: int, r: float, h: float, w: float, d: float) -> list[trimesh.Trimesh]:
    """Four legs at the corners of a w × d footprint."""
    return [_leg(style, r, h, sx * (w / 2 - r), sz * (d / 2 - r)) for sx in (-1, 1)
            for sz in (-1, 1)]  # fmt: skip


def random_stool(rng: np.random.Generator) -> tuple[list[SceneObject], dict]:
    """Round or square seat, three or four legs (splayed on a circle when round), no back,
    sometimes a footrest ring."""
    h = rng.uniform(0.45, 1.3)
    round_seat = bool(rng.random() < 0.6)
    r_seat, t = rng.uniform(0.25, 0.5), rng.uniform(0.05, 0.12)
    leg_r = rng.uniform(0.025, 0.06)
    n_legs = int(rng.choice([3, 4])) if round_seat else 4
    mat = _material(rng, wood=rng.random() < 0.5)
    seat_mat = mat if rng.random() < 0.5 else _material(rng, wood=False)
    if round_seat:
        seat = [_cylinder(r_seat, t, (0, h - t / 2, 0))]
        a0 = rng.uniform(0, 2 * math.pi)
        legs = [_cylinder(leg_r, h - t, ((r_seat - leg_r) * math.cos(a0 + 2 * math.pi * i / n_legs),
                          (h - t) / 2, (r_seat - leg_r) * math.sin(a0 + 2 * math.pi * i / n_legs)),
                          12) for i in range(n_legs)]  # fmt: skip
    else:
        seat = [_box((2 * r_seat, t, 2 * r_seat), (0, h - t / 2, 0))]
        legs = _legs(int(rng.integers(2)), leg_r, h - t, 2 * r_seat, 2 * r_seat)
    if rng.random() < 0.5:  # footrest ring
        fh = rng.uniform(0.25, 0.45) * h
        legs.append(_cylinder(r_seat * 0.95, 0.03, (0, fh, 0)))
    params = {"category": "stool", "height": h, "round": round_seat, "legs": n_legs}
    return _normalised([(legs, mat), (seat, seat_mat)]), params


def random_bench(rng: np.random.Generator) -> tuple[list[SceneObject], dict]:
    """A long seat on four legs or two slab ends, with a low back or none."""
    w, d = rng.uniform(1.6, 2.8), rng.uniform(0.45, 0.8)
    h, t = rng.uniform(0.45, 0.8), rng.uniform(0.05, 0.12)
    mat = _material(rng, wood=rng.random() < 0.7)
    slabs = bool(rng.random() < 0.4)
    if slabs:
        st = rng.uniform(0.05, 0.12)
        frame = [_box((st, h - t, d), (sx * (w / 2 - st / 2 - rng.uniform(0, 0.2)), (h - t) / 2, 0))
                 for sx in (-1, 1)]  # fmt: skip
    else:
        frame = _legs(int(rng.integers(2)), rng.uniform(0.03, 0.07), h - t, w, d)
    seat = [_box((w, t, d), (0, h - t / 2, 0))]
    back = bool(rng.random() < 0.45)
    if back:
        bh = rng.uniform(0.25, 0.6)
        seat.append(_box((w, bh, 0.06), (0, h + bh / 2 + 0.05, -d / 2 + 0.03)))
        for sx in (-1, 1):
            frame.append(
                _box((0.06, bh + 0.05, 0.06), (sx * (w / 2 - 0.1), h + bh / 2, -d / 2 + 0.03))
            )
    params = {"category": "bench", "width": w, "height": h, "slabs": slabs, "back": back}
    return _normalised(
        [(frame, mat), (seat, mat if rng.random() < 0.6 else _material(rng, False))]
    ), params


def random_table(rng: np.random.Generator) -> tuple[list[SceneObject], dict]:
    """A thin top (rectangular or round) on four legs or a central pedestal."""
    h, t = rng.uniform(0.6, 1.1), rng.uniform(0.04, 0.1)
    round_top = bool(rng.random() < 0.35)
    w, d = rng.uniform(1.0, 2.4), rng.uniform(0.7, 1.4)
    mat = _material(rng, wood=rng.random() < 0.6)
    if round_top:
        r = rng.uniform(0.45, 0.9)
        top = [_cylinder(r, t, (0, h - t / 2, 0), 32)]
        w = d = 2 * r
    else:
        top = [_box((w, t, d), (0, h - t / 2, 0))]
    pedestal = bool(round_top and rng.random() < 0.6) or bool(rng.random() < 0.15)
    if pedestal:
        pr = rng.uniform(0.04, 0.12)
        legs = [
            _cylinder(pr, h - t, (0, (h - t) / 2, 0), 16),
            _cylinder(rng.uniform(0.25, 0.45) * min(w, d), 0.05, (0, 0.025, 0), 24),
        ]
    else:
        inset = rng.uniform(0.0, 0.15)
        legs = _legs(int(rng.integers(2)), rng.uniform(0.03, 0.07), h - t,
                     w - 2 * inset, d - 2 * inset)  # fmt: skip
    params = {
        "category": "table",
        "width": w,
        "height": h,
        "round": round_top,
        "pedestal": pedestal,
    }
    return _normalised(
        [(legs, mat), (top, mat if rng.random() < 0.6 else _material(rng, False))]
    ), params


def random_sofa(rng: np.random.Generator) -> tuple[list[SceneObject], dict]:
    """Blocky upholstery: a base, a thick back, arms of random size (or none), short feet."""
    w, d = rng.uniform(1.4, 2.8), rng.uniform(0.75, 1.1)
    foot = rng.uniform(0.03, 0.15)
    base_h = rng.uniform(0.3, 0.5)
    back_h, back_t = rng.uniform(0.35, 0.75), rng.uniform(0.15, 0.3)
    arm_w = rng.uniform(0.12, 0.3) if rng.random() < 0.8 else 0.0
    arm_h = rng.uniform(0.1, 0.4)
    fabric = _material(rng, wood=False)
    body = [
        _box((w, base_h, d), (0, foot + base_h / 2, 0)),
        _box((w, back_h, back_t), (0, foot + base_h + back_h / 2, -d / 2 + back_t / 2)),
    ]
    if arm_w:
        for sx in (-1, 1):
            body.append(
                _box((arm_w, arm_h, d), (sx * (w / 2 - arm_w / 2), foot + base_h + arm_h / 2, 0))
            )
    feet = _legs(0, 0.04, foot, w - 0.1, d - 0.1)
    params = {"category": "sofa", "width": w, "back_height": back_h, "arms": bool(arm_w)}
    return _normalised([(body, fabric), (feet, _material(rng, wood=True))]), params


def random_lamp(rng: np.random.Generator) -> tuple[list[SceneObject], dict]:
    """Floor lamp: a base disc, a pole, and a cylindrical or conical shade."""
    pole_h = rng.uniform(0.9, 2.0)
    base = [
        _cylinder(rng.uniform(0.15, 0.35), rng.uniform(0.03, 0.08), (0, 0.03, 0), 24),
        _cylinder(rng.uniform(0.015, 0.04), pole_h, (0, pole_h / 2, 0), 12),
    ]
    sr, sh = rng.uniform(0.2, 0.5), rng.uniform(0.25, 0.55)
    if rng.random() < 0.5:
        shade = trimesh.creation.cone(radius=sr, height=sh, sections=24)
        shade.apply_transform(trimesh.transformations.rotation_matrix(-math.pi / 2, [1, 0, 0]))
        shade.apply_translation([0, pole_h - 0.1 * sh, 0])
    else:
        shade = _cylinder(sr, sh, (0, pole_h, 0), 24)
    params = {"category": "lamp", "height": pole_h, "shade_radius": sr}
    return _normalised(
        [(base, _material(rng, wood=False)), ([shade], _material(rng, wood=False))]
    ), params


CATEGORIES = {"chair": random_chair, "stool": random_stool, "bench": random_bench,
              "table": random_table, "sofa": random_sofa, "lamp": random_lamp}  # fmt: skip


def random_object(
    rng: np.random.Generator, categories: tuple[str, ...] = tuple(CATEGORIES), plain: float = 0.4
) -> tuple[list[SceneObject], dict]:
    """One object of a random category; with probability ``plain`` every part gets the same
    plain colour (shape is then all there is to see)."""
    category = categories[int(rng.integers(len(categories)))]
    objs, params = CATEGORIES[category](rng)
    if rng.random() < plain:
        c = tuple(rng.uniform(0.1, 0.9, 3))
        mat = Material(0, c, c, float(rng.uniform(8, 30)), float(rng.uniform(0.0, 0.3)),
                       float(rng.uniform(10, 60)))  # fmt: skip
        objs = [SceneObject(o.mesh, mat) for o in objs]
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
    out: str | Path,
    n: int,
    res: int = 64,
    seed: int = 0,
    progress: bool = True,
    categories: tuple[str, ...] = ("chair",),
    plain: float = 0.0,
) -> dict:
    """Render ``n`` random objects of ``categories`` (a fraction ``plain`` of them in one plain
    colour), one random pose each, into ``out/objects.safetensors``:
    images (n, res, res, 3) uint8, azimuth / elevation (n,) float32 degrees, and a preview
    grid ``out/preview.png``."""
    import imageio.v3 as iio
    import torch
    from tqdm import tqdm

    from engine.images import atomic_save_tensors
    from engine.synthetic.render import MeshRenderer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = np.zeros((n, res, res, 3), np.uint8)
    az = rng.uniform(0, 360, n).astype(np.float32)
    el = rng.uniform(*ELEVATION_RANGE, n).astype(np.float32)
    renderer = None
    for i in tqdm(range(n), desc="rendering objects", disable=not progress):
        objs, _ = (random_chair(rng) if categories == ("chair",) and not plain
                   else random_object(rng, categories, plain))  # fmt: skip
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
