"""Turning rasterized point attributes into displayable images (depth, normals, colors)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.camera import Camera

# Turbo colormap, polynomial fit (Mikhailov 2019, Google): maps t in [0, 1] to RGB.
_TURBO_R = (0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943)
_TURBO_G = (0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604)
_TURBO_B = (0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973)


def turbo(t: torch.Tensor) -> torch.Tensor:
    """t: (...) float in [0, 1] -> (..., 3) float RGB in [0, 1]."""
    t = t.clamp(0, 1)
    powers = torch.stack([t**i for i in range(6)], -1)
    coeffs = torch.tensor([_TURBO_R, _TURBO_G, _TURBO_B], dtype=t.dtype, device=t.device)
    return (powers @ coeffs.T).clamp(0, 1)


def depth_to_rgb(depth: torch.Tensor, background: float) -> torch.Tensor:
    """depth: (H, W) float, +inf where empty -> (H, W, 3) turbo of inverse depth (near = red)."""
    valid = torch.isfinite(depth)
    if not valid.any():
        return torch.full((*depth.shape, 3), background, device=depth.device)
    inv = torch.where(valid, 1.0 / depth, 0.0)
    lo, hi = inv[valid].min(), inv[valid].max()
    t = (inv - lo) / (hi - lo).clamp(min=1e-12)
    rgb = turbo(t)
    return torch.where(valid[..., None], rgb, torch.full_like(rgb, background))


def normals_from_depth(depth: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Camera-space normals from a depth map by finite differences.

    depth: (H, W) float, +inf where empty
    returns (H, W, 3) unit normals facing the camera (Z < 0), zero where undefined
    """
    H, W = depth.shape
    dev = depth.device
    v, u = torch.meshgrid(
        torch.arange(H, device=dev, dtype=torch.float32) + 0.5,
        torch.arange(W, device=dev, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    valid = torch.isfinite(depth)
    d = torch.where(valid, depth, 0.0)
    P = torch.stack([(u - camera.cx) / camera.fx * d, (v - camera.cy) / camera.fy * d, d], -1)
    # Central differences where both neighbours exist keep edges from smearing.
    Pp = F.pad(P.permute(2, 0, 1), (1, 1, 1, 1), mode="replicate").permute(1, 2, 0)
    Vp = F.pad(valid[None].float(), (1, 1, 1, 1))[0] > 0
    dx = Pp[1:-1, 2:] - Pp[1:-1, :-2]
    dy = Pp[2:, 1:-1] - Pp[:-2, 1:-1]
    ok = valid & Vp[1:-1, 2:] & Vp[1:-1, :-2] & Vp[2:, 1:-1] & Vp[:-2, 1:-1]
    n = torch.cross(dx, dy, dim=-1)
    n = F.normalize(n, dim=-1)
    n = torch.where(n[..., 2:3] > 0, -n, n)
    return torch.where(ok[..., None], n, 0.0)


def normals_to_rgb(n_cam: torch.Tensor, background: float) -> torch.Tensor:
    """Camera-space normals (H, W, 3), zero = undefined -> (H, W, 3) RGB (OpenGL-style colors).

    Shown in OpenGL's camera axes (x right, y up, z toward the viewer) so a surface facing the
    camera is blue, as in most tools.
    """
    gl = n_cam * torch.tensor([1.0, -1.0, -1.0], device=n_cam.device)
    rgb = gl * 0.5 + 0.5
    defined = n_cam.abs().sum(-1, keepdim=True) > 0
    return torch.where(defined, rgb, torch.full_like(rgb, background))


def to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) float in [0, 1] -> uint8."""
    return (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8)


# ASPRS LAS classification codes -> display colours (as LiDAR tools show them); others grey.
CLASS_COLORS: dict[int, tuple[str, tuple[float, float, float]]] = {
    1: ("unclassified", (0.70, 0.70, 0.70)),
    2: ("ground", (0.63, 0.45, 0.27)),
    3: ("low vegetation", (0.56, 0.85, 0.42)),
    4: ("medium vegetation", (0.25, 0.68, 0.25)),
    5: ("high vegetation", (0.08, 0.45, 0.12)),
    6: ("building", (0.90, 0.35, 0.25)),
    7: ("low noise", (0.95, 0.0, 0.95)),
    8: ("model key point", (0.95, 0.85, 0.2)),
    9: ("water", (0.2, 0.45, 0.95)),
    10: ("rail", (0.55, 0.3, 0.6)),
    11: ("road surface", (0.35, 0.35, 0.4)),
    13: ("wire guard", (0.95, 0.75, 0.3)),
    14: ("wire conductor", (0.95, 0.6, 0.1)),
    15: ("transmission tower", (0.6, 0.2, 0.1)),
    17: ("bridge deck", (0.5, 0.5, 0.2)),
    18: ("high noise", (1.0, 0.0, 0.5)),
}
OTHER_CLASS = (0.45, 0.45, 0.45)


def class_colors(classes: np.ndarray) -> np.ndarray:
    """(N,) uint8 class codes -> (N, 3) float32 colours from CLASS_COLORS."""
    lut = np.tile(np.asarray(OTHER_CLASS, np.float32), (256, 1))
    for code, (_, rgb) in CLASS_COLORS.items():
        lut[code] = rgb
    return lut[np.asarray(classes, np.uint8)]
