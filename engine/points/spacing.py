"""How far apart a cloud's points are: the mean distance to their nearest neighbours."""

from __future__ import annotations

import numpy as np


def point_spacing(points: np.ndarray, k: int = 4) -> np.ndarray:
    """(N,) float64 mean distance from each of ``points`` (N, 3) to its ``k`` nearest
    neighbours (fewer when the cloud is smaller; 1e-3 for a single point)."""
    from scipy.spatial import cKDTree

    k = min(k, len(points) - 1)
    if k < 1:
        return np.full(len(points), 1e-3)
    dist, _ = cKDTree(points).query(points, k + 1, workers=-1)
    return dist[:, 1:].mean(1)
