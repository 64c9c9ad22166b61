"""Meshes -> occupancy grids in RenderNet's canonical frame.

Grid layout (D, H, W) float32 in {0, 1}, covering the cube [-1, 1]^3 of the mesh normalised into
the unit sphere. Index (d, h, w) holds the world point (x, y, z) = (u(w), -u(h), -u(d)) with
u(i) = -1 + (2 i + 1) / n: the view of a camera at azimuth 0, elevation 0 of
``engine.latent.objects.object_camera`` (x right, y down, depth away from the camera), so that
``rigid_transform`` can turn it to any other view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from engine.errors import NsvError

MAX_FACES = 5_000_000  # voxelizing samples the surface, so this bounds memory, not quality


def normalise(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Centre the bounding box at the origin and scale its half-diagonal to 1."""
    m = mesh.copy()
    lo, hi = m.bounds
    m.apply_translation(-(lo + hi) / 2)
    m.apply_scale(2.0 / max(float(np.linalg.norm(hi - lo)), 1e-12))
    return m


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Any mesh trimesh reads (OBJ, PLY, STL, GLB/GLTF, OFF, ...), scenes concatenated."""
    path = Path(path)
    if not path.is_file():
        raise NsvError(f"{path}: no such file")
    try:
        loaded = trimesh.load(path, force="mesh")
    except Exception as e:
        raise NsvError(f"{path}: cannot read mesh ({type(e).__name__}: {e})") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise NsvError(f"{path}: the file has no triangles (an empty mesh or only points)")
    if not np.isfinite(loaded.vertices).all():
        raise NsvError(f"{path}: the mesh has NaN or infinite vertex coordinates")
    if len(loaded.faces) > MAX_FACES:
        raise NsvError(
            f"{path}: {len(loaded.faces):,} triangles is more than RenderNet's voxelizer takes "
            f"({MAX_FACES:,}); decimate the mesh first (a 32^3 grid needs far fewer)"
        )
    return loaded


def voxelize(mesh: trimesh.Trimesh, n: int = 32) -> np.ndarray:
    """(n, n, n) float32 occupancy in the canonical layout (see module doc), from dense
    surface samples."""
    m = normalise(mesh)
    pitch = 2.0 / n
    # Surface voxels from dense samples (robust for any mesh, watertight or not).
    count = int(min(4_000_000, max(200_000, m.area / pitch**2 * 8)))
    pts, _ = trimesh.sample.sample_surface(m, count, seed=0)
    idx = np.floor((pts + 1) / pitch).astype(int).clip(0, n - 1)
    grid_xyz = np.zeros((n, n, n), bool)  # indexed [x, y, z]
    grid_xyz[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    # Enclosed cavities are filled: solid for closed surfaces, a shell where a scan has holes
    # (which renders the same from outside). Inside-tests by ray parity would break on
    # overlapping parts, which procedural models have.
    from scipy.ndimage import binary_fill_holes

    grid_xyz = binary_fill_holes(grid_xyz)
    # [x, y, z] -> [d, h, w] with d ~ -z, h ~ -y, w ~ x.
    vol = grid_xyz[:, ::-1, ::-1].transpose(2, 1, 0)
    return np.ascontiguousarray(vol, dtype=np.float32)
