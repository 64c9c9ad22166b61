"""The bundled demo cloud: the Stanford Armadillo and Bunny on a checkered floor.

Points are sampled from the same synthetic scene (``engine.synthetic.scenes.demo_objects``)
whose rendered photos the demo's neural model was fitted to, with the same seed, so the PLY and
the fitted model hold identical points. ``nsv make-demo MESH_DIR`` reproduces it.
"""

from __future__ import annotations

from pathlib import Path

from engine.scene.ply import save_ply_cloud
from engine.synthetic.scenes import demo_objects, sample_cloud

DEMO_POINTS = 240_000
DEMO_SEED = 0


def build_demo(
    mesh_dir: str | Path, out_path: str | Path, n_points: int = DEMO_POINTS, seed: int = DEMO_SEED
) -> int:
    """Write the demo PLY (binary: xyz, normals, colors); returns the point count."""
    pts, nrm, col = sample_cloud(demo_objects(mesh_dir), n_points, seed)
    save_ply_cloud(out_path, pts, col, nrm, binary=True)
    return len(pts)
