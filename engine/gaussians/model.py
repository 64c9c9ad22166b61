"""The Gaussians of a splatting scene and the view-dependent parts of the forward model.

Conventions are the original implementation's: scales are stored as logs, opacities as logits
(both converted by the readers), rotations as quaternions (w, x, y, z), normalized; colour is
the spherical-harmonic expansion evaluated in the direction from the camera centre to the
Gaussian, plus 0.5, clamped at 0 (on the GPU: viewer/gl/gaussians.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SH_C0 = 0.28209479177387814  # the DC term's basis constant (higher orders: the GPU, viewer/gl)


@dataclass
class Gaussians:
    """N Gaussians, one array each (no per-view copies).

    means: (N, 3) float32 world positions
    scales: (N, 3) float32 standard deviations along the rotated axes (linear, not log)
    quats: (N, 4) float32 unit quaternions (w, x, y, z)
    opacities: (N,) float32 in (0, 1) (after the sigmoid)
    sh: (N, K, 3) float16 spherical-harmonic coefficients, K = (degree + 1)^2, coefficient-
        major (sh[:, 0] is the DC term); float16 halves the largest array, colour error < 1e-3
    skipped: Gaussians the file held but that were invalid (NaN/Inf, zero quaternion, ...)
    """

    means: np.ndarray
    scales: np.ndarray
    quats: np.ndarray
    opacities: np.ndarray
    sh: np.ndarray
    skipped: int = 0

    @property
    def count(self) -> int:
        return int(self.means.shape[0])

    @property
    def degree(self) -> int:
        return {1: 0, 4: 1, 9: 2, 16: 3}[self.sh.shape[1]]

    def base_colors(self) -> np.ndarray:
        """(N, 3) float32: the view-independent colour (DC term), for points-style views."""
        return np.clip(SH_C0 * self.sh[:, 0].astype(np.float32) + 0.5, 0.0, 1.0)

    def describe(self) -> str:
        s = f"3D Gaussians, SH degree {self.degree}"
        if self.skipped:
            s += f"; {self.skipped:,} invalid Gaussians skipped"
        return s

    def covariances(self) -> np.ndarray:
        """(N, 6) float32 upper triangle (xx, xy, xz, yy, yz, zz) of R S S^T R^T."""
        return covariances(self.scales, self.quats)

    def reach(self) -> np.ndarray:
        """(N,) float32: how far from its mean a Gaussian is drawn at most - where
        alpha = opacity * G falls to 1/255 along its longest axis, at most 3.33 standard
        deviations (opacity 0.99)."""
        k = 2 * np.log(np.maximum(255 * self.opacities, 1.0))
        return (np.sqrt(k) * self.scales.max(axis=1)).astype(np.float32)

    def importance_order(self) -> np.ndarray:
        """(N,) int64 indices, most important first: opacity times projected-area proxy (the
        two largest scales). Level of detail while moving drops from the end of this list, so
        small and transparent Gaussians go first."""
        s = np.sort(self.scales, axis=1)
        weight = self.opacities * s[:, 1] * s[:, 2]
        return np.argsort(-weight, kind="stable")


def rotations(quats: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions (w, x, y, z) -> (N, 3, 3) rotation matrices."""
    w, x, y, z = (quats[:, i].astype(np.float64) for i in range(4))
    R = np.empty((len(quats), 3, 3), np.float64)
    R[:, 0, 0] = 1 - 2 * (y * y + z * z)
    R[:, 0, 1] = 2 * (x * y - w * z)
    R[:, 0, 2] = 2 * (x * z + w * y)
    R[:, 1, 0] = 2 * (x * y + w * z)
    R[:, 1, 1] = 1 - 2 * (x * x + z * z)
    R[:, 1, 2] = 2 * (y * z - w * x)
    R[:, 2, 0] = 2 * (x * z - w * y)
    R[:, 2, 1] = 2 * (y * z + w * x)
    R[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return R


def covariances(scales: np.ndarray, quats: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    """(N, 3) scales and (N, 4) unit quaternions -> (N, 6) float32 covariance upper triangles,
    in chunks so a few million Gaussians never hold N 3x3 float64 matrices at once."""
    out = np.empty((len(scales), 6), np.float32)
    for a in range(0, len(scales), chunk):
        M = rotations(quats[a : a + chunk]) * scales[a : a + chunk, None, :].astype(np.float64)
        S = M @ M.transpose(0, 2, 1)
        out[a : a + chunk] = S[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]]
    return out


def depth_order(
    means: np.ndarray, world_to_camera: np.ndarray, near: float,
    frustum: tuple[float, float, float, float] | None = None, reach: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Indices of the Gaussians in front of the near plane, nearest first (front-to-back
    compositing order), and their camera depths in that order (M,) float32. means: (N, 3);
    world_to_camera: (4, 4). With ``frustum`` (left, right,
    top, bottom: x/z and y/z of the image's edges) and ``reach`` (N,) (how far from its mean a
    Gaussian can still be drawn, world units), Gaussians wholly outside the view are left out
    too: nothing of them lands in the image, and drawing them is most of the work on a
    software rasterizer (about half of a scene seen from outside)."""
    R = world_to_camera[:3, :3].astype(np.float32)
    t = world_to_camera[:3, 3].astype(np.float32)
    z = means @ R[2] + t[2]
    keep = z > near
    if reach is not None:
        keep &= reach > 0  # opacity below 1/255: never drawn
    if frustum is not None and reach is not None:
        x = means @ R[0] + t[0]
        y = means @ R[1] + t[1]
        for v, lo, hi in ((x, frustum[0], frustum[1]), (y, frustum[2], frustum[3])):
            # Signed distances to the two side planes v = lo z and v = hi z (outward positive).
            keep &= (lo * z - v) / np.sqrt(1 + lo * lo) < reach
            keep &= (v - hi * z) / np.sqrt(1 + hi * hi) < reach
    keep = np.flatnonzero(keep)
    # Introsort: a third faster than a stable sort here; equal depths are rare and their order
    # is still the same every time.
    order = keep[np.argsort(z[keep], kind="quicksort")]
    return order, z[order]
