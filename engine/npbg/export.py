"""A fitted neural point scene as 3D Gaussian splats, for viewers that cannot run our networks.

Each point becomes an isotropic Gaussian as wide as the cloud's spacing around it, coloured with
the average of what the fitted model renders at that point over the capture's cameras (its
view-independent colour: the splats' DC term). Points no camera sees are left out. The result
is a binary 3DGS PLY (``engine.gaussians.io.write_3dgs_ply``) that SuperSplat, the original
SIBR viewer, gsplat and this viewer's Gaussians mode open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.camera import Camera
from engine.npbg.model import NeuralPointModel
from engine.points.rasterize import rasterize_points
from engine.points.spacing import point_spacing

OPACITY = 0.95  # splats nearly opaque: a surface of points, not a haze


@dataclass
class BakedPoints:
    """points (M, 3), colors (M, 3) in [0, 1], sigma (M,) world units; ``seen``: of the N
    model points, how many some camera saw (the M kept)."""

    points: np.ndarray
    colors: np.ndarray
    sigma: np.ndarray
    seen: int
    total: int


@torch.no_grad()
def bake_colors(
    model: NeuralPointModel, cameras: list[Camera], max_side: int = 384,
    report: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The model's rendered colour averaged per point over ``cameras`` (each scaled to at most
    ``max_side`` px): (N, 3) float32 colours and (N,) int64 pixel counts (0: never visible)."""
    n = model.points.shape[0]
    dev = model.points.device
    total = torch.zeros(n, 3, dtype=torch.float64, device=dev)
    count = torch.zeros(n, dtype=torch.int64, device=dev)
    was_training = model.training
    model.eval()
    for i, cam in enumerate(cameras):
        if report is not None:
            report(i, len(cameras))
        s = min(1.0, max_side / max(cam.width, cam.height))
        c = cam.scaled(s) if s < 1 else cam
        with model.lock:
            rgb = model(c).clamp(0, 1)  # (3, H, W)
        (r,) = rasterize_points(model.points, c, model.point_size)
        idx = r.index.reshape(-1)
        vis = idx >= 0
        total.index_add_(0, idx[vis], rgb.reshape(3, -1).T[vis].double())
        count.index_add_(0, idx[vis], torch.ones_like(idx[vis]))
    model.train(was_training)
    if report is not None:
        report(len(cameras), len(cameras))
    colors = (total / count.clamp_min(1)[:, None]).float()
    return colors.cpu().numpy(), count.cpu().numpy()


def bake_points(
    model: NeuralPointModel, cameras: list[Camera], max_side: int = 384, report=None
) -> BakedPoints:
    """The visible points with their baked colours and a splat size from their spacing."""
    colors, count = bake_colors(model, cameras, max_side, report)
    pts = model.points.detach().cpu().numpy()
    seen = count > 0
    sigma = 0.5 * point_spacing(pts)[seen].astype(np.float32)  # splats overlap at ~1 sigma
    return BakedPoints(pts[seen], colors[seen], np.maximum(sigma, 1e-6), int(seen.sum()), len(pts))


def export_gaussians(baked: BakedPoints, path: str | Path) -> Path:
    """Write ``baked`` as a degree-0 3DGS PLY."""
    from engine.gaussians.io import write_3dgs_ply

    m = len(baked.points)
    log_s = np.repeat(np.log(baked.sigma)[:, None], 3, 1)
    quats = np.tile(np.float32([1, 0, 0, 0]), (m, 1))
    logit = np.full(m, np.log(OPACITY / (1 - OPACITY)), np.float32)
    return write_3dgs_ply(path, baked.points, baked.colors, log_s, quats, logit)
