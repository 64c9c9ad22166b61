"""A synthetic Gaussian splatting scene for benchmarks and tests: Gaussians spread over the
bundled demo cloud's surfaces (its colours as the DC term, small view-dependent terms),
anisotropic and flat along the surface like trained splats, written as a 3DGS PLY."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.gaussians.io import write_3dgs_ply


def write_demo_gaussians(path: str | Path, count: int, degree: int = 3, seed: int = 0) -> Path:
    """``count`` Gaussians on the demo's surfaces -> a binary 3DGS PLY at ``path``."""
    from engine.assets import DEMO_SCENE
    from engine.open_path import load_scene

    rng = np.random.default_rng(seed)
    demo = load_scene(DEMO_SCENE)
    pick = rng.integers(0, demo.num_points, count)
    _, radius = demo.bounds()
    spacing = radius * 2.0 / np.sqrt(count)  # about the distance between neighbours
    means = demo.points[pick] + rng.normal(0, 0.3 * spacing, (count, 3))
    scales = np.log(spacing * rng.uniform(0.4, 1.6, (count, 3)) * [1.0, 1.0, 0.15])
    quats = rng.normal(size=(count, 4))
    opacity = rng.normal(1.5, 1.5, count)  # logits: mostly opaque, some faint
    k = (degree + 1) ** 2 - 1
    colors = demo.colors_or_default()[pick]
    rest = rng.normal(0, 0.05, (count, 3 * k))
    return write_3dgs_ply(path, means, colors, scales, quats, opacity, rest)
