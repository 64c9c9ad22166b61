"""Image and file helpers shared across the engine's packages (one low module, so that the
import pipeline, the fitter, the denoiser and checkpoints do not import each other for them)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import NsvError


def read_image(path) -> torch.Tensor:
    """An image file -> (3, H, W) float32 in [0, 1]."""
    import imageio.v3 as iio

    try:
        img = iio.imread(path)
    except Exception as e:
        raise NsvError(f"{path}: cannot read image ({e})") from None
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = img[..., :3]
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / scale


def resize_image(img: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(3, H, W) -> (3, height, width), antialiased bilinear, clamped to [0, 1]."""
    if img.shape[-2:] == (height, width):
        return img
    return F.interpolate(
        img[None], size=(height, width), mode="bilinear", antialias=True, align_corners=False
    )[0].clamp(0, 1)


def resample_image(img: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(3, H, W) -> (3, height, width), clamped to [0, 1]: bicubic when enlarging (sharper
    than bilinear), antialiased bilinear when shrinking. For a rendering made at another
    resolution than it is shown at (NeuralPointModel.render)."""
    if img.shape[-2:] == (height, width):
        return img
    if width >= img.shape[-1] and height >= img.shape[-2]:
        out = F.interpolate(img[None].float(), size=(height, width), mode="bicubic")
        return out[0].clamp(0, 1)
    return resize_image(img.float(), width, height)


def shift_image(img: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """(3, H, W) sampled at (x + dx, y + dy) pixels, bicubic, the border repeated: moves a
    picture drawn ``dx`` right and ``dy`` down of where it belongs back into place."""
    _, h, w = img.shape
    theta = torch.tensor([[[1.0, 0.0, 2 * dx / w], [0.0, 1.0, 2 * dy / h]]], device=img.device)
    grid = F.affine_grid(theta, [1, 3, h, w], align_corners=False)
    out = F.grid_sample(img[None].float(), grid, mode="bicubic", padding_mode="border",
                        align_corners=False)  # fmt: skip
    return out[0]


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear RGB -> sRGB-encoded, clamped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata=None) -> None:
    """safetensors file written whole or not at all (a temporary file, then a rename)."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
