"""A synthetic Gaussian splatting scene for benchmarks and tests: Gaussians spread over the
bundled demo cloud's surfaces (its colours as the DC term, small view-dependent terms),
anisotropic and flat along the surface like trained splats, written as a 3DGS PLY."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.gaussians.model import SH_C0


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
    cols: list[tuple[str, np.ndarray]] = [("x", means[:, 0]), ("y", means[:, 1]),
                                          ("z", means[:, 2])]  # fmt: skip
    cols += [(f"f_dc_{c}", (colors[:, c] - 0.5) / SH_C0) for c in range(3)]
    rest = rng.normal(0, 0.05, (count, 3 * k))
    cols += [(f"f_rest_{i}", rest[:, i]) for i in range(3 * k)]
    cols += [("opacity", opacity)]
    cols += [(f"scale_{i}", scales[:, i]) for i in range(3)]
    cols += [(f"rot_{i}", quats[:, i]) for i in range(4)]
    data = np.empty(count, dtype=[(n, "<f4") for n, _ in cols])
    for n, v in cols:
        data[n] = v
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {count}\n"
    header += "".join(f"property float {n}\n" for n, _ in cols) + "end_header\n"
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header.encode())
        data.tofile(f)
    tmp.replace(path)
    return path
