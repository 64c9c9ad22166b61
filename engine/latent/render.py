"""Rendering a trained HoloGAN for interactive use: latents + pose -> Frame.

The 3D features depend on z1 only, so they are cached: dragging a pose or z2 slider re-runs just
the rotation, projection and 2D renderer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.camera import Camera
from engine.frame import Frame
from engine.latent.background import BACKGROUND
from engine.latent.hologan import Generator


@dataclass
class LatentOptions:
    """z1 (cfg.z1,), z2 (cfg.z2,) float32 in [-1, 1]; angles in degrees; ``size`` the output
    side in pixels (the model's resolution, upsampled bilinearly for display when larger)."""

    z1: torch.Tensor
    z2: torch.Tensor
    azimuth: float = 0.0
    elevation: float = 25.0
    scale: float = 1.0
    size: int = 256


class LatentRenderer:
    def __init__(self, generator: Generator, device="cpu") -> None:
        self.G = generator.to(device).eval()
        self.device = torch.device(device)
        self._vol_key: bytes | None = None
        self._vol: torch.Tensor | None = None

    @property
    def cfg(self):
        return self.G.cfg

    @torch.no_grad()
    def volume(self, z1: torch.Tensor) -> torch.Tensor:
        key = z1.detach().cpu().numpy().tobytes()
        if key != self._vol_key:
            self._vol = self.G.volume(z1.reshape(1, -1).to(self.device))
            self._vol_key = key
        return self._vol

    @torch.no_grad()
    def generate(self, z1, z2, azimuth, elevation, scale=None) -> torch.Tensor:
        """Batched: z1 (B, z1), z2 (B, z2), angles (B,) degrees -> (B, 3, res, res) in [0, 1]."""

        def rad(a):
            return torch.as_tensor(a, dtype=torch.float32, device=self.device) * (math.pi / 180)

        s = (
            None
            if scale is None
            else torch.as_tensor(scale, dtype=torch.float32, device=self.device)
        )
        img = self.G(z1.to(self.device), z2.to(self.device), rad(azimuth), rad(elevation), s)
        return (img + 1) / 2

    @torch.no_grad()
    def render(self, camera: Camera | None, opts: LatentOptions) -> Frame:
        t0 = time.perf_counter()
        vol = self.volume(opts.z1)
        az = torch.tensor([math.radians(opts.azimuth)], device=self.device)
        el = torch.tensor([math.radians(opts.elevation)], device=self.device)
        sc = torch.tensor([opts.scale], device=self.device)
        img = (self.G.render(vol, opts.z2.reshape(1, -1).to(self.device), az, el, sc) + 1) / 2
        if opts.size != img.shape[-1]:
            img = F.interpolate(
                img, size=(opts.size, opts.size), mode="bilinear", align_corners=False
            )
        rgb = (img[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        cam = camera or Camera.from_fov(opts.size, opts.size, 36.0)
        ms = (time.perf_counter() - t0) * 1000
        return Frame(rgb, cam, ms, 0, str(self.device), {"model_res": self.cfg.res})

    @torch.no_grad()
    def strip(self, z1: torch.Tensor, z2: torch.Tensor, opts: LatentOptions) -> np.ndarray:
        """Thumbnails of the latents z1 (B, z1), z2 (B, z2) at ``opts``' pose, side by side at
        the model's resolution: (res, B * res, 3) uint8 (what a slider's strip shows)."""
        n = len(z1)
        img = self.generate(
            z1, z2, [opts.azimuth] * n, [opts.elevation] * n, [opts.scale] * n
        ).clamp(0, 1)
        row = torch.cat(list(img), -1)  # (3, res, B * res)
        return (row.permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)

    def principal_directions(self, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """Directions in z1 and z2 space that move the style parameters most: the top right-
        singular vectors of the first AdaIN map of each latent ((k, z1), (k, z2), unit)."""
        w1 = self.G.ada_const.affine.weight.detach().cpu()
        w2 = self.G.ada2d[0].affine.weight.detach().cpu()
        d1 = torch.linalg.svd(w1, full_matrices=False).Vh[:k]
        d2 = torch.linalg.svd(w2, full_matrices=False).Vh[:k]
        return d1, d2


SILHOUETTE_THRESHOLD = 0.08  # background distance above which a pixel is the object's


def background_distance(images: torch.Tensor, background=BACKGROUND) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, H, W): largest channel difference from the dataset's
    flat background colour."""
    bg = torch.tensor(background, dtype=images.dtype, device=images.device).reshape(1, 3, 1, 1)
    return (images - bg).abs().amax(1)


def silhouette(
    images: torch.Tensor, background=BACKGROUND, threshold: float = SILHOUETTE_THRESHOLD
) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, H, W) bool: pixels that differ from the dataset's flat
    background colour."""
    return background_distance(images, background) > threshold


def soft_silhouette(img: torch.Tensor, width: float = 0.02) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] (the generator's range) -> (B, H, W) in (0, 1): a
    differentiable ``silhouette``, for training terms."""
    return torch.sigmoid((background_distance((img + 1) / 2) - SILHOUETTE_THRESHOLD) / width)
