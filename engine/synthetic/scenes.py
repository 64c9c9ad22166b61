"""Synthetic scenes with exact ground truth, for fitting and pretraining neural point rendering.

A scene is a set of meshes with procedural materials (albedo pattern, specular). From it we
sample a point cloud (optionally sparse and noisy) and render photos from many cameras with
headless OpenGL (moderngl on EGL; no Qt), then write a COLMAP text model plus PNG photos, so
every tool that opens COLMAP folders opens these too.

Materials are evaluated in world space in the shader and in numpy with the same formulas, so a
point's stored color is the albedo the photos show under the key light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from engine.camera import Camera

BACKGROUND = (0.12, 0.12, 0.14)
LIGHT_DIR = np.array([0.4, 0.8, 0.45]) / np.linalg.norm([0.4, 0.8, 0.45])

# Material patterns (shared by GLSL and numpy): 0 plain, 1 stripes, 2 dots, 3 checker,
# 4 random cells (a non-repeating texture: feature matching for structure from motion needs one).
_PATTERN_GLSL = """
float cell_hash(vec3 p, float freq) {
    ivec3 c = ivec3(floor(p * freq)) + ivec3(4096);
    uint h = uint(c.x) * 73856093u ^ uint(c.y) * 19349663u ^ uint(c.z) * 83492791u;
    h = (h ^ (h >> 13u)) * 1274126177u;
    return float((h >> 8u) & 65535u) / 65535.0;
}
vec3 albedo(vec3 p, int pattern, vec3 c0, vec3 c1, float freq) {
    float t = 0.0;
    if (pattern == 1) t = 0.5 + 0.5 * sin(freq * (p.y + 0.3 * p.x));
    else if (pattern == 2) {
        vec3 q = fract(p * freq) - 0.5;
        t = length(q) < 0.3 ? 1.0 : 0.0;
    } else if (pattern == 3) t = mod(floor(p.x * freq) + floor(p.z * freq), 2.0);
    else if (pattern == 4) t = cell_hash(p, freq);
    return mix(c0, c1, t);
}
"""


def albedo_np(p: np.ndarray, pattern: int, c0, c1, freq: float) -> np.ndarray:
    """numpy twin of the GLSL ``albedo``: p (N, 3) -> (N, 3)."""
    if pattern == 1:
        t = 0.5 + 0.5 * np.sin(freq * (p[:, 1] + 0.3 * p[:, 0]))
    elif pattern == 2:
        q = (p * freq) % 1.0 - 0.5
        t = (np.linalg.norm(q, axis=1) < 0.3).astype(float)
    elif pattern == 3:
        t = (np.floor(p[:, 0] * freq) + np.floor(p[:, 2] * freq)) % 2
    elif pattern == 4:
        c = (np.floor(p * freq).astype(np.int64) + 4096).astype(np.uint32)
        with np.errstate(over="ignore"):
            h = (c[:, 0] * np.uint32(73856093)) ^ (c[:, 1] * np.uint32(19349663))
            h = h ^ (c[:, 2] * np.uint32(83492791))
            h = (h ^ (h >> np.uint32(13))) * np.uint32(1274126177)
        t = ((h >> np.uint32(8)) & np.uint32(65535)).astype(np.float64) / 65535.0
    else:
        t = np.zeros(len(p))
    return np.asarray(c0)[None] * (1 - t[:, None]) + np.asarray(c1)[None] * t[:, None]


@dataclass
class Material:
    pattern: int = 0
    c0: tuple = (0.7, 0.7, 0.7)
    c1: tuple = (0.3, 0.3, 0.3)
    freq: float = 10.0
    specular: float = 0.3
    shininess: float = 40.0


@dataclass
class SceneObject:
    mesh: trimesh.Trimesh
    material: Material


def _place(mesh: trimesh.Trimesh, height: float, x: float, z: float) -> trimesh.Trimesh:
    mesh = mesh.copy()
    lo, hi = mesh.bounds
    mesh.apply_scale(height / (hi[1] - lo[1]))
    lo, hi = mesh.bounds
    c = (lo + hi) / 2
    mesh.apply_translation([x - c[0], -lo[1], z - c[2]])
    return mesh


def floor_disk(radius: float, center=(0.5, 0.0)) -> trimesh.Trimesh:
    disk = trimesh.creation.cylinder(radius=radius, height=0.02, sections=96)
    disk.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [1, 0, 0]))
    disk.apply_translation([center[0], -0.01, center[1]])
    return disk


def demo_objects(mesh_dir: str | Path) -> list[SceneObject]:
    """The bundled demo: the Stanford Armadillo and Bunny on a checkered floor."""
    mesh_dir = Path(mesh_dir)
    arma = _place(trimesh.load(mesh_dir / "armadillo.obj", force="mesh"), 1.6, 0.0, 0.0)
    bunny = _place(trimesh.load(mesh_dir / "bunny.obj", force="mesh"), 0.7, 1.25, 0.35)
    return [
        SceneObject(arma, Material(1, (0.85, 0.55, 0.35), (0.6, 0.3, 0.2), 14.0, 0.35, 30.0)),
        SceneObject(bunny, Material(2, (0.35, 0.55, 0.9), (0.95, 0.95, 0.9), 9.0, 0.5, 60.0)),
        SceneObject(
            floor_disk(2.2), Material(3, (0.8, 0.8, 0.78), (0.35, 0.35, 0.38), 3.0, 0.1, 10.0)
        ),
    ]


def random_objects(seed: int, mesh_dir: str | Path | None = None) -> list[SceneObject]:
    """A random arrangement of primitives (and scans, if available) with random materials."""
    rng = np.random.default_rng(seed)
    objs = [
        SceneObject(
            floor_disk(2.0, (0.0, 0.0)),
            Material(
                3,
                tuple(rng.uniform(0.5, 0.9, 3)),
                tuple(rng.uniform(0.1, 0.4, 3)),
                float(rng.uniform(2, 5)),
                0.1,
                10.0,
            ),
        )
    ]
    makers = [
        lambda: trimesh.creation.box(extents=rng.uniform(0.3, 0.9, 3)),
        lambda: trimesh.creation.icosphere(subdivisions=3, radius=float(rng.uniform(0.2, 0.45))),
        lambda: trimesh.creation.cylinder(
            radius=float(rng.uniform(0.1, 0.3)), height=float(rng.uniform(0.4, 1.2)), sections=48
        ),
        lambda: trimesh.creation.capsule(
            height=float(rng.uniform(0.3, 0.8)), radius=float(rng.uniform(0.1, 0.25))
        ),
        lambda: trimesh.creation.torus(
            float(rng.uniform(0.25, 0.4)), float(rng.uniform(0.06, 0.12))
        ),
    ]
    if mesh_dir is not None and (Path(mesh_dir) / "bunny.obj").is_file():
        bunny = trimesh.load(Path(mesh_dir) / "bunny.obj", force="mesh")
        makers.append(lambda: bunny.copy())
    for _ in range(int(rng.integers(3, 6))):
        mesh = makers[rng.integers(len(makers))]()
        mesh.apply_transform(trimesh.transformations.random_rotation_matrix(rng.random(3)))
        h = float(rng.uniform(0.3, 1.0))
        r, a = rng.uniform(0, 1.3), rng.uniform(0, 2 * np.pi)
        mesh = _place(mesh, h, r * np.cos(a), r * np.sin(a))
        mat = Material(
            int(rng.integers(0, 4)),
            tuple(rng.uniform(0.1, 0.95, 3)),
            tuple(rng.uniform(0.1, 0.95, 3)),
            float(rng.uniform(4, 16)),
            float(rng.uniform(0.0, 0.6)),
            float(rng.uniform(10, 80)),
        )
        objs.append(SceneObject(mesh, mat))
    return objs


def sample_cloud(objects: list[SceneObject], n: int, seed: int = 0, noise: float = 0.0):
    """Points on the surfaces, area-weighted across objects.

    Returns points (n, 3) float32, normals (n, 3), colors (n, 3) = albedo x (ambient + key
    light), which is what a photo shows without highlights.
    """
    rng = np.random.default_rng(seed)
    areas = np.array([o.mesh.area for o in objects])
    counts = rng.multinomial(n, areas / areas.sum())
    pts, nrm, col = [], [], []
    for o, k in zip(objects, counts, strict=True):
        if k == 0:
            continue
        p, face = trimesh.sample.sample_surface(o.mesh, int(k), seed=int(rng.integers(1 << 31)))
        nr = o.mesh.face_normals[face]
        a = albedo_np(p, o.material.pattern, o.material.c0, o.material.c1, o.material.freq)
        shade = 0.3 + 0.7 * np.clip(nr @ LIGHT_DIR, 0, 1)
        pts.append(p + rng.normal(size=p.shape) * noise)
        nrm.append(nr)
        col.append(np.clip(a * shade[:, None], 0, 1))
    return (
        np.concatenate(pts).astype(np.float32),
        np.concatenate(nrm).astype(np.float32),
        np.concatenate(col).astype(np.float32),
    )


def orbit_cameras(
    n: int,
    center,
    radius: float,
    width: int,
    height: int,
    seed: int = 0,
    elevation=(12.0, 55.0),
    fov_y_deg: float = 45.0,
) -> list[Camera]:
    """Cameras spread around the scene (golden-angle azimuths), random elevation and distance,
    looking near the centre; +Y is up."""
    rng = np.random.default_rng(seed)
    cams = []
    for i in range(n):
        az = i * math.pi * (3 - math.sqrt(5)) + rng.uniform(-0.2, 0.2)
        el = math.radians(rng.uniform(*elevation))
        dist = radius / math.sin(math.radians(fov_y_deg) / 2) * rng.uniform(0.55, 1.0)
        eye = np.asarray(center) + dist * np.array(
            [math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az)]
        )
        target = np.asarray(center) + rng.normal(size=3) * radius * 0.1
        cams.append(Camera.look_at(eye, target, [0, 1, 0], width, height, fov_y_deg))
    return cams
