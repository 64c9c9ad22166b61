"""Build the bundled demo cloud from the Stanford Armadillo and Bunny scans.

Points are sampled uniformly on the mesh surfaces (with the surface normal) and given colors
from a baked key light and a simple procedural albedo, so the demo shows depth and shape even
as plain colored points. ``nsv make-demo MESH_DIR OUT.ply`` reproduces assets/demo/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from engine.scene.ply import save_ply_cloud


def _sample(mesh: trimesh.Trimesh, n: int, rng: np.random.Generator):
    pts, face = trimesh.sample.sample_surface(mesh, n, seed=int(rng.integers(1 << 31)))
    return np.asarray(pts, np.float32), np.asarray(mesh.face_normals[face], np.float32)


def _normalize(mesh: trimesh.Trimesh, height: float, base_xz) -> trimesh.Trimesh:
    lo, hi = mesh.bounds
    s = height / (hi[1] - lo[1])
    mesh = mesh.copy()
    mesh.apply_scale(s)
    lo, hi = mesh.bounds
    c = (lo + hi) / 2
    mesh.apply_translation([base_xz[0] - c[0], -lo[1], base_xz[1] - c[2]])
    return mesh


def _shade(normals: np.ndarray, albedo: np.ndarray) -> np.ndarray:
    light = np.array([0.4, 0.8, 0.45])
    light /= np.linalg.norm(light)
    lambert = np.abs(normals @ light)  # scans have unreliable normal orientation
    return np.clip(albedo * (0.35 + 0.75 * lambert[:, None]), 0, 1).astype(np.float32)


def build_demo(mesh_dir: str | Path, out_path: str | Path, n_points: int = 240_000, seed: int = 0):
    """Write the demo PLY (binary, xyz + normals + colors) and return its point count."""
    rng = np.random.default_rng(seed)
    mesh_dir = Path(mesh_dir)
    arma = _normalize(trimesh.load(mesh_dir / "armadillo.obj", force="mesh"), 1.6, (0.0, 0.0))
    bunny = _normalize(trimesh.load(mesh_dir / "bunny.obj", force="mesh"), 0.7, (1.25, 0.35))
    n_arma, n_bunny = int(n_points * 0.6), int(n_points * 0.2)
    n_ground = n_points - n_arma - n_bunny

    p1, n1 = _sample(arma, n_arma, rng)
    h = (p1[:, 1] - p1[:, 1].min()) / np.ptp(p1[:, 1])
    clay = np.stack([0.85 - 0.25 * h, 0.55 + 0.1 * h, 0.35 + 0.35 * h], 1)
    c1 = _shade(n1, clay)

    p2, n2 = _sample(bunny, n_bunny, rng)
    stripes = 0.5 + 0.5 * np.sin(p2[:, 1] * 40.0)
    fur = np.stack([0.35 + 0.2 * stripes, 0.55 + 0.1 * stripes, 0.85 + 0.0 * stripes], 1)
    c2 = _shade(n2, fur)

    # A round checkered floor under both.
    r = 2.2 * np.sqrt(rng.random(n_ground))
    a = rng.random(n_ground) * 2 * np.pi
    p3 = np.stack([r * np.cos(a) + 0.5, np.zeros(n_ground), r * np.sin(a)], 1).astype(np.float32)
    n3 = np.tile(np.array([[0.0, 1.0, 0.0]], np.float32), (n_ground, 1))
    check = ((np.floor(p3[:, 0] * 3) + np.floor(p3[:, 2] * 3)) % 2)[:, None]
    c3 = _shade(n3, 0.45 + 0.35 * check * np.ones((1, 3)))

    pts = np.concatenate([p1, p2, p3])
    nrm = np.concatenate([n1, n2, n3])
    col = np.concatenate([c1, c2, c3])
    save_ply_cloud(out_path, pts, col, nrm, binary=True)
    return len(pts)
