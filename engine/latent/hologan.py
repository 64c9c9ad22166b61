"""HoloGAN (Nguyen-Phuoc et al., ICCV 2019): a generator that learns 3D features, rotates them
with a rigid-body transform (not learned), and renders them with a projection unit and 2D
convolutions.

Volume layout: (B, C, D, H, W). D is depth along the viewing direction (the projection unit
folds it into channels), H is image rows (down), W is image columns (right). In
``torch.nn.functional.grid_sample`` coordinates a voxel is at (x, y, z) = (W, H, D), each in
[-1, 1].

The latent is split as in the paper's shape/texture experiment: ``z1`` (shape) drives the
AdaIN layers of the 3D generator only, ``z2`` (texture) those of the 2D renderer only.
Latents are uniform in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class HoloGANConfig:
    z1: int = 64  # shape latent (3D AdaIN)
    z2: int = 64  # texture latent (2D AdaIN)
    res: int = 64  # output image size (16 * 2 ** len(c2d))
    # Widths are the paper's divided by ~4-8 so that training fits a CPU budget.
    const: int = 96  # channels of the learned constant 4^3 volume
    c3d: list[int] = field(default_factory=lambda: [48, 24])  # 8^3, 16^3 after up-convolutions
    c3d_post: list[int] = field(default_factory=lambda: [16, 8])  # 3D convs after the rotation
    proj: int = 128  # channels after the projection unit
    c2d: list[int] = field(default_factory=lambda: [48, 24])  # 2D up-convolutions
    d_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    # z1 also writes the 4^3 volume through a linear layer (not in the paper, where z1 only
    # restyles a learned constant): with AdaIN alone, furniture runs collapsed to one shape
    # per pose whatever z1 was. Zero-initialised, so a warm start renders as before.
    z1_volume: bool = False
    # Minibatch standard deviation (Karras et al. 2018) in the discriminator, over groups of
    # this many images (0 = off, as in the paper): lets it see that a batch has one shape.
    d_minibatch_std: int = 0


def rotation_matrix(azimuth: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rotation of the object in view space, in grid coordinates (x right, y down,
    z away from the camera): azimuth turns it about the vertical axis, elevation tips its top
    toward the viewer (the camera rising above it). Angles in radians, shape (B,)."""
    ca, sa = torch.cos(azimuth), torch.sin(azimuth)
    ce, se = torch.cos(elevation), torch.sin(elevation)
    one, zero = torch.ones_like(ca), torch.zeros_like(ca)
    r_az = torch.stack(
        [
            torch.stack([ca, zero, sa], -1),
            torch.stack([zero, one, zero], -1),
            torch.stack([-sa, zero, ca], -1),
        ],
        -2,
    )
    r_el = torch.stack(
        [
            torch.stack([one, zero, zero], -1),
            torch.stack([zero, ce, -se], -1),
            torch.stack([zero, se, ce], -1),
        ],
        -2,
    )
    return r_el @ r_az


def rigid_transform(
    volume: torch.Tensor,
    azimuth: torch.Tensor,
    elevation: torch.Tensor,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rotate (and scale) a feature volume (B, C, D, H, W) about its centre with trilinear
    resampling: out(p) = in(R^T p / s). Voxel centres map to voxel centres for multiples of 90
    degrees (``align_corners=True``), so those rotations are exact permutations."""
    B = volume.shape[0]
    R = rotation_matrix(azimuth, elevation).to(volume.dtype)
    if scale is not None:
        R = R * scale.to(volume.dtype).reshape(B, 1, 1)
    # affine_grid maps output coords p to input coords A p: A = (s R)^-1 = R^T / s.
    A = torch.linalg.inv(R)
    theta = torch.cat([A, torch.zeros(B, 3, 1, dtype=volume.dtype, device=volume.device)], 2)
    grid = F.affine_grid(theta, list(volume.shape), align_corners=True)
    return F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


class AdaIN(nn.Module):
    """Instance norm whose per-channel scale and bias come from a latent (style) vector."""

    def __init__(self, channels: int, z_dim: int) -> None:
        super().__init__()
        # Default (non-zero) init: the latent must change the image from the first step, or
        # the generator collapses onto one sample before the styles ever grow (seen on CPU runs).
        self.affine = nn.Linear(z_dim, 2 * channels)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.dim()))
        mu = x.mean(dims, keepdim=True)
        sd = (x.var(dims, keepdim=True, unbiased=False) + 1e-5).sqrt()
        gamma, beta = self.affine(z).chunk(2, 1)
        shape = (*gamma.shape, *([1] * len(dims)))
        return (x - mu) / sd * (1 + gamma.reshape(shape)) + beta.reshape(shape)


def _adain_ups(conv, c: int, widths: list[int], z: int) -> tuple[nn.ModuleList, nn.ModuleList, int]:
    """Upsampling blocks (``conv``: a 2D or 3D transposed convolution, x2 each) and their AdaIN
    layers styled by a latent of size ``z``; returns both and the output width."""
    ups, adas = nn.ModuleList(), nn.ModuleList()
    for co in widths:
        ups.append(conv(c, co, 4, 2, 1))
        adas.append(AdaIN(co, z))
        c = co
    return ups, adas, c


class Generator(nn.Module):
    def __init__(self, cfg: HoloGANConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or HoloGANConfig()
        self.const = nn.Parameter(torch.randn(1, cfg.const, 4, 4, 4) * 0.5)
        self.ada_const = AdaIN(cfg.const, cfg.z1)
        if cfg.z1_volume:
            self.z1_to_volume = nn.Linear(cfg.z1, cfg.const * 4**3)
            nn.init.zeros_(self.z1_to_volume.weight)
            nn.init.zeros_(self.z1_to_volume.bias)
        self.up3d, self.ada3d, c = _adain_ups(nn.ConvTranspose3d, cfg.const, cfg.c3d, cfg.z1)
        self.size3d = 4 * 2 ** len(cfg.c3d)
        self.post3d = nn.ModuleList()
        for co in cfg.c3d_post:
            self.post3d.append(nn.Conv3d(c, co, 3, 1, 1))
            c = co
        # Projection unit: depth folded into channels, then a 1x1 convolution.
        self.project = nn.Conv2d(c * self.size3d, cfg.proj, 1)
        self.up2d, self.ada2d, c = _adain_ups(nn.ConvTranspose2d, cfg.proj, cfg.c2d, cfg.z2)
        self.to_rgb = nn.Conv2d(c, 3, 3, 1, 1)
        if self.size3d * 2 ** len(cfg.c2d) != cfg.res:
            raise ValueError(f"res {cfg.res} != {self.size3d} * 2^{len(cfg.c2d)}")

    def volume(self, z1: torch.Tensor) -> torch.Tensor:
        """The canonical (unrotated) 3D features (B, C, S, S, S) for shape latents z1 (B, z1)."""
        x = self.const.expand(z1.shape[0], -1, -1, -1, -1)
        if self.cfg.z1_volume:
            x = x + self.z1_to_volume(z1).reshape(x.shape)
        x = F.leaky_relu(self.ada_const(x, z1), 0.2)
        for up, ada in zip(self.up3d, self.ada3d, strict=True):
            x = F.leaky_relu(ada(up(x), z1), 0.2)
        return x

    def render(self, vol: torch.Tensor, z2: torch.Tensor, azimuth, elevation, scale=None):
        """Rotate ``vol`` and render it to (B, 3, res, res) in [-1, 1]."""
        return self.decode(self.project_view(vol, azimuth, elevation, scale), z2)

    def project_view(self, vol: torch.Tensor, azimuth, elevation, scale=None) -> torch.Tensor:
        """The rotated volume projected to 2D features (B, C, S, S): everything before z2."""
        x = rigid_transform(vol, azimuth, elevation, scale)
        for conv in self.post3d:
            x = F.leaky_relu(conv(x), 0.2)
        B, C, D, H, W = x.shape
        return F.leaky_relu(self.project(x.reshape(B, C * D, H, W)), 0.2)

    def decode(self, x: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Projected features (B, C, S, S) and texture latents z2 (B, cfg.z2) -> image (B, 3,
        res, res) in [-1, 1]."""
        for up, ada in zip(self.up2d, self.ada2d, strict=True):
            x = F.leaky_relu(ada(up(x), z2), 0.2)
        return torch.tanh(self.to_rgb(x))

    def forward(self, z1, z2, azimuth, elevation, scale=None) -> torch.Tensor:
        """z1 (B, cfg.z1), z2 (B, cfg.z2), azimuth/elevation (B,) radians -> (B, 3, res, res)."""
        return self.render(self.volume(z1), z2, azimuth, elevation, scale)


class Discriminator(nn.Module):
    """Strided convolutions with instance norm; a style discriminator on every normalised
    layer (it sees the per-channel mean and std, i.e. the 'style'), an image logit, and a
    latent-regression head that predicts (z1, z2) from the image (the identity loss)."""

    def __init__(self, cfg: HoloGANConfig | None = None, pose_conditional: bool = False) -> None:
        super().__init__()
        self.cfg = cfg = cfg or HoloGANConfig()
        sn = nn.utils.spectral_norm
        self.convs = nn.ModuleList()
        self.styles = nn.ModuleList()
        c = 3
        for i, co in enumerate(cfg.d_channels):
            self.convs.append(sn(nn.Conv2d(c, co, 4, 2, 1)))
            if i > 0:
                self.styles.append(sn(nn.Linear(2 * co, 1)))
            c = co
        s = cfg.res // 2 ** len(cfg.d_channels)
        self.logit = sn(nn.Linear((c + (cfg.d_minibatch_std > 0)) * s * s, 1))
        self.latent = nn.Linear(c * s * s, cfg.z1 + cfg.z2)
        # Projection discriminator (Miyato & Koyama 2018) on the pose: judges (image, pose)
        # pairs, so at every pose the generated objects must vary as the data's do.
        self.pose = sn(nn.Linear(POSE_FEATURES, c * s * s)) if pose_conditional else None

    def forward(self, img: torch.Tensor, pose: torch.Tensor | None = None):
        """img (B, 3, res, res) in [-1, 1], pose (B, POSE_FEATURES) from ``pose_features``
        (pose-conditional discriminators) -> (logit (B,), style logits list of (B,), z (B, Z))."""
        x = img
        styles = []
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i > 0:
                mu = x.mean((2, 3))
                sd = (x.var((2, 3), unbiased=False) + 1e-5).sqrt()
                styles.append(self.styles[i - 1](torch.cat([mu, sd], 1))[:, 0])
                x = (x - mu[..., None, None]) / sd[..., None, None]
            x = F.leaky_relu(x, 0.2)
        flat = x.flatten(1)
        if self.cfg.d_minibatch_std > 0:
            x = torch.cat([x, minibatch_std(x, self.cfg.d_minibatch_std)], 1)
        logit = self.logit(x.flatten(1))[:, 0]
        if self.pose is not None:
            logit = logit + (self.pose(pose) * flat).sum(1)
        return logit, styles, torch.tanh(self.latent(flat))


POSE_FEATURES = 9


def minibatch_std(x: torch.Tensor, group: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W): per group of ``group`` images (fewer when B is not a
    multiple), the standard deviation of each feature across the group, averaged: low when
    the group's images look alike."""
    B, _, H, W = x.shape
    g = math.gcd(B, group)
    sd = (x.reshape(g, B // g, *x.shape[1:]).var(0, unbiased=False) + 1e-8).sqrt()
    return sd.mean((1, 2, 3)).repeat(g).reshape(B, 1, 1, 1).expand(B, 1, H, W)


def pose_features(azimuth: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
    """Radians (B,) -> (B, 9): azimuth harmonics 1-4 (a linear map of them can single out any
    45-degree sector) and the elevation scaled around the datasets' 10-40 degree range."""
    k = torch.arange(1, 5, device=azimuth.device, dtype=azimuth.dtype)
    a = azimuth[:, None] * k
    el = (elevation[:, None] - math.radians(25)) / math.radians(15)
    return torch.cat([torch.cos(a), torch.sin(a), el], 1)


def sample_latents(
    n: int, cfg: HoloGANConfig, generator: torch.Generator | None = None, device="cpu"
):
    """(z1, z2), uniform in [-1, 1]."""
    z1 = torch.rand(n, cfg.z1, generator=generator, device=device) * 2 - 1
    z2 = torch.rand(n, cfg.z2, generator=generator, device=device) * 2 - 1
    return z1, z2


def latent_from_seed(seed: int, dim: int) -> torch.Tensor:
    """A reproducible latent (dim,) for a seed field in the UI."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.rand(dim, generator=g) * 2 - 1


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between latents (falls back to linear when nearly parallel)."""
    an, bn = a / a.norm(), b / b.norm()
    omega = torch.arccos((an * bn).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    if float(omega) < 1e-4:
        return (1 - t) * a + t * b
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def degrees(x) -> float:
    return math.degrees(float(x))
