"""Image quality metrics and the structural loss term used by fitting."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR in dB of images in [0, 1]. pred, target: (..., 3, H, W); mask: (..., 1, H, W) bool."""
    err = (pred.float() - target.float()) ** 2
    if mask is not None:
        m = mask.expand_as(err).float()
        mse = (err * m).sum() / m.sum().clamp(min=1)
    else:
        mse = err.mean()
    return float(10 * torch.log10(1.0 / mse.clamp(min=1e-10)))


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    w = g[:, None] * g[None, :]
    return w.expand(channels, 1, size, size).contiguous()


def ssim_map(pred: torch.Tensor, target: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004, Gaussian window sigma 1.5). (B, C, H, W) in [0, 1]."""
    C = pred.shape[1]
    w = _gaussian_window(window, 1.5, C, pred.device, pred.dtype)
    pad = window // 2

    def blur(x):
        return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), w, groups=C)

    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x**2
    syy = blur(target * target) - mu_y**2
    sxy = blur(pred * target) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM of (B, 3, H, W) or (3, H, W) images in [0, 1]."""
    if pred.ndim == 3:
        pred, target = pred[None], target[None]
    return float(ssim_map(pred.float(), target.float()).mean())


def rel_mse(x, ref, eps: float = 1e-2) -> float:
    """Relative MSE of linear HDR images (numpy arrays): mean((x - ref)^2 / (ref^2 + eps))."""
    import numpy as np

    return float(np.mean((x - ref) ** 2 / (ref**2 + eps)))
