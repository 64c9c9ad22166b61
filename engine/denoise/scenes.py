"""Procedural scene *kinds* for the denoiser's data: Mitsuba scene dicts (no sensor/integrator)
in the Cornell box's frame (floor at y = -1, the camera looks at the origin from +Z).

Kinds differ in what a denoiser has to generalize over, so some can be kept out of training
entirely and used to judge it:

- ``cornell``: the Cornell box varied (walls, textures, area light, blocks, a sphere, a mesh).
- ``studio``: an open floor and backdrop under an environment (constant or a procedural sky
  with a sun), a spot or point light in half of them, several objects of mixed materials.
- ``open-room`` (held out): a room open on two sides to a sky, lit through the opening and by a
  small, very bright sphere light; glass and gold spheres and a tube-shaped mesh (a torus knot
  generated here, so it is in no other kind).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from engine.errors import NsvError

TRAIN_KINDS = ("cornell", "studio")
HELDOUT_KINDS = ("open-room",)
KINDS = TRAIN_KINDS + HELDOUT_KINDS


def _T():
    import mitsuba as mi

    return mi.ScalarTransform4f


def _rgb(rng: np.random.Generator, lo: float = 0.05, hi: float = 0.9) -> dict:
    return {"type": "rgb", "value": [float(x) for x in rng.uniform(lo, hi, 3)]}


def _reflectance(rng: np.random.Generator, lo: float = 0.05, hi: float = 0.9) -> dict:
    """Plain colour or, half the time, a checkerboard of random scale."""
    if rng.random() < 0.5:
        return _rgb(rng, lo, hi)
    s = float(rng.uniform(3, 16))
    return {
        "type": "checkerboard",
        "color0": _rgb(rng, lo, hi),
        "color1": _rgb(rng, lo, hi),
        "to_uv": _T()().scale([s, s, 1]),
    }


def _material(rng: np.random.Generator) -> dict:
    return [
        lambda: {"type": "diffuse", "reflectance": _reflectance(rng)},
        lambda: {"type": "roughconductor", "alpha": float(rng.uniform(0.05, 0.4))},
        lambda: {"type": "dielectric"},
        lambda: {"type": "plastic", "diffuse_reflectance": _rgb(rng)},
        lambda: {
            "type": "roughplastic",
            "diffuse_reflectance": _rgb(rng),
            "alpha": float(rng.uniform(0.1, 0.4)),
        },
    ][int(rng.integers(5))]()


def sky_bitmap(rng: np.random.Generator, width: int = 128) -> np.ndarray:
    """A procedural sky (H, W, 3) float32 in Mitsuba's lat-long layout: zenith-to-horizon
    gradient, a darker ground, and a small bright sun disc at a random position."""
    H, W = width // 2, width
    theta = (np.arange(H) + 0.5) / H * math.pi  # 0 = up
    phi = (np.arange(W) + 0.5) / W * 2 * math.pi
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    zenith = rng.uniform([0.15, 0.3, 0.7], [0.4, 0.55, 1.2])
    horizon = rng.uniform([0.7, 0.7, 0.7], [1.2, 1.1, 1.1])
    ground = rng.uniform(0.05, 0.3, 3) * np.array([1.0, 0.9, 0.8])
    t = np.clip(th / (math.pi / 2), 0, 1)[..., None] ** 2
    sky = zenith * (1 - t) + horizon * t
    img = np.where((th < math.pi / 2)[..., None], sky, ground)
    sun_th, sun_ph = rng.uniform(0.2, 1.2), rng.uniform(0, 2 * math.pi)
    d = np.stack([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)], -1)
    s = np.array(
        [math.sin(sun_th) * math.cos(sun_ph), math.cos(sun_th), math.sin(sun_th) * math.sin(sun_ph)]
    )
    sun = (d @ s) > math.cos(math.radians(4))
    img = img + sun[..., None] * rng.uniform(40, 150) * np.array([1.0, 0.93, 0.8])
    return img.astype(np.float32)


def _environment(rng: np.random.Generator, scale: float = 1.0) -> dict:
    import mitsuba as mi

    if rng.random() < 0.4:
        return {"type": "constant", "radiance": _rgb(rng, 0.3 * scale, 1.0 * scale)}
    return {"type": "envmap", "bitmap": mi.Bitmap(sky_bitmap(rng)), "scale": float(scale)}


def _rect(to_world, bsdf: dict) -> dict:
    return {"type": "rectangle", "to_world": to_world, "bsdf": bsdf}


def _mesh_shape(rng: np.random.Generator, path: Path, size: float, at: list[float]) -> dict:
    T = _T()
    bottom, height = mesh_placement(path)
    s = size / height
    return {
        "type": "ply" if path.suffix.lower() == ".ply" else "obj",
        "filename": str(path),
        "to_world": T().translate(at)
        @ T().rotate([0, 1, 0], float(rng.uniform(0, 360)))
        @ T().scale([s, s, s])
        @ T().translate([float(-bottom[0]), float(-bottom[1]), float(-bottom[2])]),
    }


def studio_dict(rng: np.random.Generator, meshes: list[Path] | None = None) -> dict:
    """Floor + backdrop under an environment, optional spot/point light, 2-4 objects."""
    T = _T()
    d: dict = {"type": "scene"}
    d["env"] = _environment(rng, float(rng.uniform(0.5, 1.5)))
    d["floor"] = _rect(
        T().translate([0, -1, 0]) @ T().rotate([1, 0, 0], -90) @ T().scale([6, 6, 1]),
        {"type": "diffuse", "reflectance": _reflectance(rng, 0.2, 0.9)},
    )
    if rng.random() < 0.7:
        d["backdrop"] = _rect(
            T().translate([0, 1, float(rng.uniform(-2.5, -1.2))]) @ T().scale([6, 2, 1]),
            {"type": "diffuse", "reflectance": _reflectance(rng, 0.2, 0.9)},
        )
    if rng.random() < 0.5:
        target = [float(rng.uniform(-0.5, 0.5)), -1.0, float(rng.uniform(-0.5, 0.5))]
        origin = [float(rng.uniform(-2, 2)), float(rng.uniform(1.5, 3)), float(rng.uniform(-1, 2))]
        power = float(rng.uniform(5, 40))
        if rng.random() < 0.5:
            d["spot"] = {
                "type": "spot",
                "to_world": T().look_at(origin=origin, target=target, up=[0, 1, 0]),
                "intensity": {"type": "rgb", "value": [power, power * 0.9, power * 0.75]},
                "cutoff_angle": float(rng.uniform(15, 40)),
            }
        else:
            d["point"] = {
                "type": "point",
                "position": origin,
                "intensity": {"type": "rgb", "value": [power * 0.5] * 3},
            }
    for i in range(int(rng.integers(2, 5))):
        x, z = float(rng.uniform(-0.9, 0.9)), float(rng.uniform(-0.9, 0.6))
        r = float(rng.uniform(0.15, 0.4))
        k = int(rng.integers(3 if not meshes else 4))
        if k == 0:
            shape = {"type": "sphere", "center": [x, -1 + r, z], "radius": r}
        elif k == 1:
            shape = {
                "type": "cube",
                "to_world": T().translate([x, -1 + r, z])
                @ T().rotate([0, 1, 0], float(rng.uniform(0, 90)))
                @ T().scale([r, r, r]),
            }
        elif k == 2:
            shape = {
                "type": "cylinder",
                "to_world": T().translate([x, -1, z])
                @ T().rotate([1, 0, 0], -90)
                @ T().scale([r * 0.7, r * 0.7, 2 * r]),
            }
        else:
            path = Path(meshes[int(rng.integers(len(meshes)))])
            shape = _mesh_shape(rng, path, float(rng.uniform(0.5, 1.0)), [x, -1.0, z])
        shape["bsdf"] = _material(rng)
        d[f"object_{i}"] = shape
    return d


def torus_knot_obj(path: Path, p: int = 2, q: int = 3, tube: float = 0.12) -> Path:
    """Write a (p, q) torus-knot tube mesh as OBJ (unit-ish size) once; returns its path."""
    if path.is_file():
        return path
    import trimesh

    n, m = 256, 16
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = 0.6 + 0.3 * np.cos(q * t)
    c = np.stack([r * np.cos(p * t), 0.3 * np.sin(q * t), r * np.sin(p * t)], -1)
    tang = np.roll(c, -1, 0) - np.roll(c, 1, 0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    nrm = np.cross(tang, [0.0, 1.0, 0.0])
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-9
    bin_ = np.cross(tang, nrm)
    a = np.linspace(0, 2 * math.pi, m, endpoint=False)
    verts = (
        c[:, None]
        + tube
        * (np.cos(a)[None, :, None] * nrm[:, None] + np.sin(a)[None, :, None] * bin_[:, None])
    ).reshape(-1, 3)
    faces = []
    for i in range(n):
        for j in range(m):
            a0, a1 = i * m + j, i * m + (j + 1) % m
            b0, b1 = ((i + 1) % n) * m + j, ((i + 1) % n) * m + (j + 1) % m
            faces += [[a0, b0, a1], [a1, b0, b1]]
    mesh = trimesh.Trimesh(verts, np.array(faces), process=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.obj")
    mesh.export(str(tmp))
    tmp.replace(path)
    return path


def open_room_dict(rng: np.random.Generator, work_dir: Path) -> dict:
    """Held-out kind: a room open to the sky on its right and front, a small very bright sphere
    light inside, glass and gold spheres, a torus-knot tube."""
    T = _T()
    d: dict = {"type": "scene"}
    d["env"] = _environment(rng, float(rng.uniform(0.6, 1.4)))
    wall = {"type": "diffuse", "reflectance": _reflectance(rng, 0.3, 0.85)}
    d["floor"] = _rect(
        T().translate([0, -1, 0]) @ T().rotate([1, 0, 0], -90) @ T().scale([1.2, 1.2, 1]),
        {"type": "diffuse", "reflectance": _reflectance(rng, 0.3, 0.9)},
    )
    d["ceiling"] = _rect(
        T().translate([0, 1, 0]) @ T().rotate([1, 0, 0], 90) @ T().scale([1.2, 1.2, 1]), wall
    )
    d["back"] = _rect(T().translate([0, 0, -1.2]) @ T().scale([1.2, 1, 1]), wall)
    d["left"] = _rect(
        T().translate([-1.2, 0, 0]) @ T().rotate([0, 1, 0], 90) @ T().scale([1.2, 1, 1]),
        {"type": "diffuse", "reflectance": _reflectance(rng, 0.2, 0.9)},
    )
    power = float(rng.uniform(150, 600))
    d["bulb"] = {
        "type": "sphere",
        "center": [
            float(rng.uniform(-0.8, 0.8)),
            float(rng.uniform(0.2, 0.8)),
            float(rng.uniform(-0.8, 0.2)),
        ],
        "radius": float(rng.uniform(0.03, 0.07)),
        "emitter": {
            "type": "area",
            "radiance": {"type": "rgb", "value": [power, power * 0.85, power * 0.6]},
        },
    }
    r1, r2 = float(rng.uniform(0.15, 0.3)), float(rng.uniform(0.15, 0.3))
    d["glass"] = {
        "type": "sphere",
        "center": [float(rng.uniform(-0.8, -0.1)), -1 + r1, float(rng.uniform(-0.5, 0.5))],
        "radius": r1,
        "bsdf": {"type": "dielectric"},
    }
    d["gold"] = {
        "type": "sphere",
        "center": [float(rng.uniform(0.1, 0.8)), -1 + r2, float(rng.uniform(-0.5, 0.5))],
        "radius": r2,
        "bsdf": {
            "type": "roughconductor",
            "material": "Au",
            "alpha": float(rng.uniform(0.02, 0.25)),
        },
    }
    knot = torus_knot_obj(work_dir / "torus_knot.obj")
    shape = _mesh_shape(
        rng,
        knot,
        float(rng.uniform(0.4, 0.7)),
        [float(rng.uniform(-0.4, 0.4)), -1.0, float(rng.uniform(-0.8, -0.2))],
    )
    shape["bsdf"] = _material(rng)
    d["knot"] = shape
    return d


def scene_dict(kind: str, rng: np.random.Generator, meshes: list[Path], work_dir: Path) -> dict:
    """A random scene of ``kind`` (see ``KINDS``)."""
    if kind == "cornell":
        return random_box_dict(rng, meshes)
    if kind == "studio":
        return studio_dict(rng, meshes)
    if kind == "open-room":
        return open_room_dict(rng, work_dir)
    raise ValueError(f"unknown scene kind {kind!r}; expected one of {', '.join(KINDS)}")


# --- the Cornell-box kind (and the mesh placement the other kinds share) ------------------
def mesh_placement(path: Path) -> tuple[np.ndarray, float]:
    """(centre of the bottom face of the bounding box, height) of a mesh file."""
    import trimesh

    try:
        mesh = trimesh.load(str(path), force="mesh")
        lo, hi = mesh.bounds
    except Exception as e:
        raise NsvError(f"{path}: cannot read the mesh ({type(e).__name__})") from None
    return np.array([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2]), float(hi[1] - lo[1])


def random_box_dict(rng: np.random.Generator, meshes: list[Path] | None = None) -> dict:
    """A Cornell-box variant (Mitsuba scene dict without sensor and integrator). With ``meshes``
    (OBJ/PLY files, +Y up), one of them replaces the large box in 2 of 3 scenes."""
    import mitsuba as mi

    from engine.mitsuba_scene import choose_variant, cornell_box_dict

    choose_variant()
    d = cornell_box_dict()
    T = mi.ScalarTransform4f

    def rgb(lo=0.05, hi=0.9):
        return {"type": "rgb", "value": [float(x) for x in rng.uniform(lo, hi, 3)]}

    def reflectance(lo=0.05, hi=0.9):
        # Textured albedo in half the materials: the network must learn to demodulate it.
        if rng.random() < 0.5:
            return rgb(lo, hi)
        s = float(rng.uniform(3, 16))
        return {
            "type": "checkerboard",
            "color0": rgb(lo, hi),
            "color1": rgb(lo, hi),
            "to_uv": T().scale([s, s, 1]),
        }

    d["red"] = {"type": "diffuse", "reflectance": reflectance()}
    d["green"] = {"type": "diffuse", "reflectance": reflectance()}
    d["white"] = {"type": "diffuse", "reflectance": rgb(0.5, 0.9)}
    # The floor and back wall get their own (possibly textured) materials.
    d["floor"]["bsdf"] = {"type": "diffuse", "reflectance": reflectance(0.3, 0.9)}
    d["back"]["bsdf"] = {"type": "diffuse", "reflectance": reflectance(0.3, 0.9)}
    light_scale = float(rng.uniform(0.15, 0.5))
    power = float(rng.uniform(8, 30)) * (0.25 / light_scale) ** 1.5
    d["light"]["to_world"] = (
        T().translate([float(rng.uniform(-0.4, 0.4)), 0.99, float(rng.uniform(-0.4, 0.4))])
        @ T().rotate([1, 0, 0], 90)
        @ T().scale([light_scale] * 3)
    )
    d["light"]["emitter"] = {
        "type": "area",
        "radiance": {
            "type": "rgb",
            "value": [
                power,
                power * float(rng.uniform(0.7, 0.9)),
                power * float(rng.uniform(0.4, 0.7)),
            ],
        },
    }
    for name, (lo, hi) in (("small-box", (0.2, 0.35)), ("large-box", (0.25, 0.6))):
        if name not in d:
            continue
        sx, sy = float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi * 1.8))
        d[name]["to_world"] = (
            T().translate([float(rng.uniform(-0.5, 0.5)), -1 + sy, float(rng.uniform(-0.5, 0.3))])
            @ T().rotate([0, 1, 0], float(rng.uniform(-45, 45)))
            @ T().scale([sx, sy, sx])
        )

    def material():
        return [
            {"type": "diffuse", "reflectance": reflectance()},
            {"type": "roughconductor", "alpha": float(rng.uniform(0.05, 0.4))},
            {"type": "dielectric"},
            {"type": "plastic", "diffuse_reflectance": rgb()},
        ][int(rng.integers(4))]

    bsdf = material()
    r = float(rng.uniform(0.15, 0.3))
    d["sphere"] = {
        "type": "sphere",
        "radius": r,
        "bsdf": bsdf,
        "center": [float(rng.uniform(-0.6, 0.6)), -1 + r, float(rng.uniform(0.0, 0.6))],
    }
    if meshes and rng.random() < 2 / 3:
        path = Path(meshes[int(rng.integers(len(meshes)))])
        bottom, height = mesh_placement(path)
        s = float(rng.uniform(0.6, 1.1)) / height
        d.pop("large-box", None)
        d["mesh"] = {
            "type": "ply" if path.suffix.lower() == ".ply" else "obj",
            "filename": str(path),
            "to_world": T().translate(
                [float(rng.uniform(-0.4, 0.4)), -1.0, float(rng.uniform(-0.5, 0.2))]
            )
            @ T().rotate([0, 1, 0], float(rng.uniform(0, 360)))
            @ T().scale([s, s, s])
            @ T().translate([float(-bottom[0]), float(-bottom[1]), float(-bottom[2])]),
            "bsdf": material() if rng.random() < 0.5 else {"type": "diffuse", "reflectance": rgb()},
        }
    return d
