"""Recurrent denoising autoencoder (Chaitanya et al. 2017), optionally with auxiliary feature
modulation (Xu et al. 2019).

Input per frame (all (B, C, H, W) float32):
  radiance: noisy linear RGB; albedo: RGB; normal: world-space shading normal; depth: (B, 1, ...)
The radiance is demodulated by the albedo and log-transformed (the paper's preprocessing), the
network predicts demodulated log radiance, and the output is re-modulated by the albedo.
Recurrent blocks in the encoder carry a hidden state from frame to frame (``state``), which is
what keeps the result stable while the camera moves. With ``reproject`` the state is first
warped by the camera motion (``engine.denoise.reproject``) and the blocks also see where the
warp was valid, so history follows the image instead of trailing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.denoise.reproject import warp

EPS = 1e-3


@dataclass
class DenoiserConfig:
    channels: list[int] = field(default_factory=lambda: [24, 32, 48, 64])
    afm: bool = True  # auxiliary feature modulation instead of plain concatenation
    recurrent: bool = True
    reproject: bool = False  # warp the hidden state by the camera motion (needs ``motion``)
    residual: bool = True  # predict a correction of the noisy input (else the image itself)


def preprocess(radiance, albedo, normal, depth):
    """Network inputs: (log demodulated radiance (B,3,..), aux (B,7,..) albedo|normal|depth)."""
    demod = radiance / (albedo + EPS)
    x = torch.log1p(demod.clamp(min=0))
    d = depth / (depth.flatten(1).amax(1).view(-1, 1, 1, 1) + 1e-6)
    return x, torch.cat([albedo, normal, d], 1)


def postprocess(y, albedo):
    """Network output (log demodulated) -> linear radiance."""
    return torch.expm1(y.clamp(max=12)).clamp(min=0) * (albedo + EPS)


def _conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))


class RecurrentBlock(nn.Module):
    """conv(x) -> conv([x, h_prev(, valid)]) -> conv: the output is the next frame's h_prev.
    With ``with_mask`` the block also gets the (B, 1, h, w) mask of where h_prev is valid."""

    def __init__(self, c: int, recurrent: bool, with_mask: bool = False) -> None:
        super().__init__()
        self.recurrent = recurrent
        self.with_mask = with_mask
        self.c1 = _conv(c, c)
        self.c2 = _conv((2 * c + int(with_mask)) if recurrent else c, c)
        self.c3 = _conv(c, c)

    def forward(self, x, h, valid=None):
        x = self.c1(x)
        if self.recurrent:
            parts = [x, h if h is not None else torch.zeros_like(x)]
            if self.with_mask:
                parts.append(valid if valid is not None else torch.zeros_like(x[:, :1]))
            x = torch.cat(parts, 1)
        return self.c3(self.c2(x))


class AuxModulation(nn.Module):
    """Per-level scale and bias from the auxiliary buffers: f * (1 + gamma) + beta."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.net = nn.Sequential(_conv(7, 32), nn.Conv2d(32, 2 * c, 1))

    def forward(self, f, aux):
        a = F.adaptive_avg_pool2d(aux, f.shape[-2:]) if aux.shape[-2:] != f.shape[-2:] else aux
        gamma, beta = self.net(a).chunk(2, 1)
        return f * (1 + gamma) + beta


class RecurrentDenoiser(nn.Module):
    label = "recurrent autoencoder"  # what the viewer's status line calls it

    def __init__(self, cfg: DenoiserConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or DenoiserConfig()
        ch = cfg.channels
        cin = 3 if cfg.afm else 10
        self.enc_in = nn.ModuleList()
        self.enc_rec = nn.ModuleList()
        self.afm = nn.ModuleList() if cfg.afm else None
        prev = cin
        for c in ch:
            self.enc_in.append(_conv(prev, c))
            self.enc_rec.append(RecurrentBlock(c, cfg.recurrent, cfg.recurrent and cfg.reproject))
            if cfg.afm:
                self.afm.append(AuxModulation(c))
            prev = c
        self.dec = nn.ModuleList()
        for i in range(len(ch) - 2, -1, -1):
            self.dec.append(nn.Sequential(_conv(ch[i + 1] + ch[i], ch[i]), _conv(ch[i], ch[i])))
        self.out = nn.Conv2d(ch[0], 3, 1)

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.cfg.channels) - 1)

    def forward(self, radiance, albedo, normal, depth, state=None, motion=None, spp=1):
        """One frame (``spp`` is accepted for a common interface and not used). Returns (denoised linear radiance (B, 3, H, W), new state).
        H and W must be multiples of ``self.multiple`` (pad with ``pad_to``). ``motion``:
        (grid, valid) from ``reprojection_grid`` (previous frame -> this one), used by models
        with ``reproject``; without it the state is taken as aligned (a still camera)."""
        x, aux = preprocess(radiance, albedo, normal, depth)
        if state is not None and self.cfg.reproject:
            if motion is None:
                valid_full = torch.ones_like(depth[:, :1])
            else:
                grid, valid_full = motion
                state = [warp(h, grid, valid_full) for h in state]
        else:
            valid_full = None
        if self.afm is None:
            x = torch.cat([x, aux], 1)
        skips, new_state = [], []
        for i, (cin, rec) in enumerate(zip(self.enc_in, self.enc_rec, strict=True)):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = cin(x)
            if self.afm is not None:
                x = self.afm[i](x, aux)
            valid = None
            if valid_full is not None:
                valid = F.adaptive_avg_pool2d(valid_full, x.shape[-2:])
            x = rec(x, None if state is None else state[i], valid)
            skips.append(x)
            new_state.append(x)
        for j, block in enumerate(self.dec):
            skip = skips[-2 - j]
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], 1))
        y = self.out(x)
        if self.cfg.residual:
            y = y + torch.log1p((radiance / (albedo + EPS)).clamp(min=0))
        return postprocess(y, albedo), new_state


def pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    H, W = x.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def image_tensor(x, multiple: int, device="cpu") -> torch.Tensor:
    """A renderer's buffer, (H, W, C) or (H, W) numpy, -> (1, C, H', W') float32 on ``device``,
    padded (replicated edges) to a multiple of ``multiple``, as a denoiser takes it."""
    t = torch.from_numpy(np.ascontiguousarray(x)).float().to(device)
    return pad_to(t.permute(2, 0, 1)[None] if t.ndim == 3 else t[None, None], multiple)
