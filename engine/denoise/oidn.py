"""Intel Open Image Denoise (pyoidn): the per-frame baseline in `nsv bench denoise`, and the
guide image of a kernel denoiser trained with ``KernelConfig.oidn`` (one place for its call)."""

from __future__ import annotations

import numpy as np
import torch

from engine.errors import NsvError


def available() -> bool:
    try:
        import pyoidn  # noqa: F401
    except ImportError:
        return False
    return True


def denoise_hwc(
    color: np.ndarray, albedo: np.ndarray, normal: np.ndarray, quality: str = "high"
) -> np.ndarray:
    """One frame: linear HDR radiance, albedo, normal (H, W, 3) -> OIDN's (H, W, 3) float32 at
    its ``quality`` preset: "high" (the baseline every comparison is against) or "fast" (a
    smaller network, about half the time on a CPU: a guided model's guide for fresh frames).
    Negative radiance (a renderer's rounding, or a user's file) is not light: OIDN sees 0."""
    import pyoidn

    def f32(x):
        return np.ascontiguousarray(x, np.float32)

    return pyoidn.denoise(
        f32(np.maximum(color, 0)), f32(albedo), f32(normal), hdr=True, quality=quality
    )


def denoise_bchw(
    radiance: torch.Tensor, albedo: torch.Tensor, normal: torch.Tensor, quality: str = "high"
) -> torch.Tensor:
    """Batched: (B, 3, H, W) tensors on any device -> OIDN's output (B, 3, H, W), same device
    and dtype. Run on the CPU (the pip build of pyoidn is CPU-only)."""
    if not available():
        raise NsvError("this denoiser uses Intel Open Image Denoise: pip install pyoidn")

    def hwc(x, b):
        return x[b].detach().float().permute(1, 2, 0).cpu().numpy()

    outs = [
        torch.from_numpy(
            denoise_hwc(hwc(radiance, b), hwc(albedo, b), hwc(normal, b), quality)
        ).permute(2, 0, 1)
        for b in range(radiance.shape[0])
    ]
    return torch.stack(outs).to(device=radiance.device, dtype=radiance.dtype)
