"""The Gaussians of a splatting scene and the view-dependent parts of the forward model.

Conventions are the original implementation's: scales are stored as logs, opacities as logits
(both converted here), rotations as quaternions (w, x, y, z), normalized here; colour is the
spherical-harmonic expansion evaluated in the direction from the camera centre to the
Gaussian, plus 0.5, clamped at 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
         0.5462742152960396)  # fmt: skip
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)  # fmt: skip


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


def sh_colors(sh: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """View-dependent colour.

    sh: (N, K, 3) coefficients, K in (1, 4, 9, 16); dirs: (N, 3) directions from the camera
    centre to each Gaussian (any length). Returns (N, 3) float32: SH + 0.5, clamped at 0.
    """
    K = sh.shape[1]
    c = SH_C0 * sh[:, 0].astype(np.float32)
    if K > 1:
        d = dirs / np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
        x, y, z = (d[:, i : i + 1].astype(np.float32) for i in range(3))
        f = lambda k: sh[:, k].astype(np.float32)  # noqa: E731
        c = c - SH_C1 * y * f(1) + SH_C1 * z * f(2) - SH_C1 * x * f(3)
        if K > 4:
            xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
            c = (c + SH_C2[0] * xy * f(4) + SH_C2[1] * yz * f(5)
                 + SH_C2[2] * (2 * zz - xx - yy) * f(6) + SH_C2[3] * xz * f(7)
                 + SH_C2[4] * (xx - yy) * f(8))  # fmt: skip
            if K > 9:
                c = (c + SH_C3[0] * y * (3 * xx - yy) * f(9) + SH_C3[1] * xy * z * f(10)
                     + SH_C3[2] * y * (4 * zz - xx - yy) * f(11)
                     + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * f(12)
                     + SH_C3[4] * x * (4 * zz - xx - yy) * f(13)
                     + SH_C3[5] * z * (xx - yy) * f(14)
                     + SH_C3[6] * x * (xx - 3 * yy) * f(15))  # fmt: skip
    return np.maximum(c + 0.5, 0.0).astype(np.float32)


def depth_order(means: np.ndarray, world_to_camera: np.ndarray, near: float) -> np.ndarray:
    """Indices of the Gaussians in front of the near plane, nearest first (front-to-back
    compositing order). means: (N, 3); world_to_camera: (4, 4)."""
    R = world_to_camera[:3, :3].astype(np.float32)
    t = world_to_camera[:3, 3].astype(np.float32)
    z = means @ R[2] + t[2]
    keep = np.flatnonzero(z > near)
    return keep[np.argsort(z[keep], kind="stable")]
