"""Training HoloGAN on a rendered object dataset, with sample grids, atomic checkpoints and resume.

Losses (non-saturating GAN, as in the paper's code): image logit + style-discriminator logits
on every normalised discriminator layer + latent regression (identity) loss
``lambda_z * |z - D_z(G(z))|^2`` for both the generator and the discriminator. Poses are
sampled uniformly: azimuth over the full circle, elevation over the dataset's range. The
exported weights are an exponential moving average of the generator's.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import (
    load_model_folder,
    read_dataset,
    save_model_folder,
)
from engine.errors import NsvError
from engine.latent.hologan import (
    Discriminator,
    Generator,
    HoloGANConfig,
    pose_features,
    sample_latents,
)
from engine.latent.render import soft_silhouette
from engine.training import TrainingConfig, TrainingJob

WEIGHTS = "hologan.safetensors"
CONFIG = "hologan.json"


@dataclass
class HoloGANTrainConfig(TrainingConfig):
    steps: int = 4000
    batch: int = 24
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lambda_z: float = 1.0
    lambda_z1: float = 1.0  # extra weight of the shape latent's identity term (1: the paper)
    lambda_shape: float = 0.0  # shape-seeking term (not in the paper; 0 = off), see below
    lambda_outline: float = 0.0  # texture keeps the outline (not in the paper; 0 = off)
    # Shape must move the outline: two shape latents with the same texture and pose may not
    # overlap more than ``diversity_iou`` (soft silhouette IoU; not in the paper; 0 = off).
    lambda_diversity: float = 0.0
    diversity_iou: float = 0.7
    # InfoGAN-style (Chen et al. 2016) shape code, not in the paper (0 = off): an encoder that
    # sees only the soft silhouette must recover z1, so z1 has to live in the outline rather
    # than in colour patterns the full discriminator can read.
    lambda_shape_code: float = 0.0
    shape_code_dims: int = 4  # the first dims of z1 it must recover (InfoGAN uses a few codes)
    # Discriminator-only steps first (0 = none): a warm-started generator meets a fresh
    # discriminator, whose first gradients otherwise wreck it.
    d_warmup: int = 0
    z1_volume: bool = False  # a fresh generator's z1 also writes its 4^3 volume (HoloGANConfig)
    minibatch_std: int = 0  # the discriminator's minibatch-std group (HoloGANConfig)
    # The discriminator judges (image, pose) pairs, using the dataset's camera poses (not in
    # the paper, which is unsupervised): without it, furniture runs let the shape follow the
    # azimuth instead of z1 (a different category every 45 degrees of one turntable).
    pose_conditional: bool = False
    lambda_style: float = 1.0
    ema: float = 0.998
    sample_every: int = 250
    elevation_deg: list[float] = field(default_factory=lambda: [10.0, 40.0])


def load_object_dataset(path: str | Path) -> dict[str, torch.Tensor]:
    """``objects.safetensors`` from ``nsv data objects`` (a folder or the file)."""
    data = read_dataset(path, "objects.safetensors", "nsv data objects")
    if "images" not in data or data["images"].dim() != 4:
        raise NsvError(f"{path}: not an object dataset (no (N, H, W, 3) 'images')")
    return data


def to_model_range(images_u8: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]."""
    return images_u8.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def grid_image(imgs: torch.Tensor, cols: int) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> one (rows*H, cols*W, 3) uint8 image."""
    n, _, h, w = imgs.shape
    rows = math.ceil(n / cols)
    pad = torch.full((rows * cols - n, 3, h, w), 1.0)
    x = torch.cat([imgs.detach().cpu().float(), pad]).clamp(-1, 1)
    x = x.reshape(rows, cols, 3, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, 3)
    return ((x + 1) * 127.5 + 0.5).byte().numpy()


class HoloGANTrainer(TrainingJob):
    cosine_lr = False  # constant rates, as in the paper

    def __init__(
        self, data: str | Path, out_dir: str | Path, cfg: HoloGANTrainConfig,
        model_cfg: HoloGANConfig | None = None, device="cpu",
    ) -> None:  # fmt: skip
        self.data_path = Path(data)
        ds = load_object_dataset(data)
        self.images = to_model_range(ds["images"])
        if cfg.pose_conditional:
            if "azimuth" not in ds or "elevation" not in ds:
                raise NsvError(f"{data}: no camera poses (azimuth, elevation) for a "
                               "pose-conditional discriminator")  # fmt: skip
            self.real_pose = pose_features(
                torch.deg2rad(ds["azimuth"].float()), torch.deg2rad(ds["elevation"].float())
            )
        self.model_cfg = model_cfg or HoloGANConfig(
            res=self.images.shape[-1], z1_volume=cfg.z1_volume, d_minibatch_std=cfg.minibatch_std
        )
        if self.images.shape[-1] != self.model_cfg.res:
            raise NsvError(
                f"{data}: images are {self.images.shape[-1]} px, model is {self.model_cfg.res}"
            )
        model_cfg = self.model_cfg
        super().__init__(cfg, out_dir, device)
        self.model_cfg = model_cfg
        self.device = torch.device(device)
        self.G = Generator(self.model_cfg).to(self.device)
        self.D = Discriminator(self.model_cfg, cfg.pose_conditional).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), cfg.lr_g, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), cfg.lr_d, betas=(0.5, 0.999))
        self.modules = {"G": self.G, "D": self.D, "E": self.G_ema}
        self.optimizers = {"g_": self.opt_g, "d_": self.opt_d}
        if cfg.lambda_shape_code > 0:
            self.Q = ShapeCode(self.model_cfg, cfg.shape_code_dims).to(self.device)
            self.opt_q = torch.optim.Adam(self.Q.parameters(), cfg.lr_d, betas=(0.5, 0.999))
            self.modules["Q"], self.optimizers["q_"] = self.Q, self.opt_q
        self.history = {"d": [], "g": [], "z": []}
        self.warm_start: dict | None = None  # the --init generator's summary (steps, seconds)
        g = torch.Generator().manual_seed(1234)  # fixed latents/poses for comparable grids
        self.fixed = sample_latents(16, self.model_cfg, g)
        self.fixed_az = torch.linspace(0, 2 * math.pi, 17)[:16]

    def poses(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = (math.radians(a) for a in self.cfg.elevation_deg)
        az = torch.from_numpy(self.rng.uniform(0, 2 * math.pi, n)).float()
        el = torch.from_numpy(self.rng.uniform(lo, hi, n)).float()
        return az.to(self.device), el.to(self.device)

    def train_step(self) -> dict[str, float]:
        cfg, B = self.cfg, self.cfg.batch
        mine = self.shard(list(range(B)))  # this rank's items of the global batch
        idx = torch.from_numpy(self.rng.integers(0, len(self.images), B)[mine])
        real = self.images[idx].to(self.device)
        g = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
        z1, z2 = (z[mine].to(self.device) for z in sample_latents(B, self.model_cfg, g))
        z = torch.cat([z1, z2], 1)
        az, el = (p[mine] for p in self.poses(B))
        vol = self.G.volume(z1)
        feats = self.G.project_view(vol, az, el)
        fake = self.G.decode(feats, z2)

        # Discriminator
        pr = pf = None
        if cfg.pose_conditional:
            pr = self.real_pose[idx].to(self.device)
            pf = pose_features(az, el)
        lr_, sr, _ = self.D(real, pr)
        lf, sf, zf = self.D(fake.detach(), pf)
        d_gan = F.softplus(-lr_).mean() + F.softplus(lf).mean()
        d_style = sum(
            F.softplus(-a).mean() + F.softplus(b).mean() for a, b in zip(sr, sf, strict=True)
        )
        d_z = F.mse_loss(zf, z)
        d_loss = d_gan + cfg.lambda_style * d_style + cfg.lambda_z * d_z
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizer_step(self.opt_d)
        if self.step < cfg.d_warmup:
            return {"d": float(d_loss.detach()), "g": 0.0, "z": 0.0}

        # Generator
        lf, sf, zf = self.D(fake, pf)
        g_z = self.identity_loss(zf, z1, z2)
        g_loss = F.softplus(-lf).mean() + cfg.lambda_style * sum(F.softplus(-b).mean() for b in sf)
        g_loss = g_loss + cfg.lambda_z * g_z
        if cfg.lambda_shape > 0:
            g_loss = g_loss + cfg.lambda_shape * self.shape_seeking_loss(vol, z1, g)
        if cfg.lambda_outline > 0:
            g_loss = g_loss + cfg.lambda_outline * self.outline_loss(feats, fake, g)
        if cfg.lambda_diversity > 0:
            g_loss = g_loss + cfg.lambda_diversity * self.diversity_loss(fake, z2, az, el, g)
        if cfg.lambda_shape_code > 0:  # the encoder and the generator both minimise it
            self.opt_q.zero_grad(set_to_none=True)
            code = z1[:, : cfg.shape_code_dims]
            q_loss = F.mse_loss(self.Q(soft_silhouette(fake)[:, None]), code)
            g_loss = g_loss + cfg.lambda_shape_code * q_loss
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizer_step(self.opt_g)
        if cfg.lambda_shape_code > 0:
            self.optimizer_step(self.opt_q)
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                pe.lerp_(p, 1 - cfg.ema)
        return {"d": float(d_loss.detach()), "g": float(g_loss.detach()), "z": float(g_z.detach())}

    def shape_seeking_loss(self, vol: torch.Tensor, z1: torch.Tensor, g) -> torch.Tensor:
        """Mode seeking (Mao et al. 2019) on the 3D features: 1 / (feature distance / latent
        distance) between two shape latents. The volumes are instance-normalised per channel
        first, so only a different *spatial* arrangement (a different shape) counts, not the
        per-channel rescaling that AdaIN alone produces and later normalisation erases."""
        z1b, _ = sample_latents(z1.shape[0], self.model_cfg, g)
        volb = self.G.volume(z1b.to(self.device))

        def norm(v):
            return (v - v.mean((2, 3, 4), keepdim=True)) / (v.std((2, 3, 4), keepdim=True) + 1e-5)

        d_vol = (norm(vol) - norm(volb)).abs().mean((1, 2, 3, 4))
        d_z = (z1 - z1b.to(self.device)).abs().mean(1)
        return (1.0 / (d_vol / d_z + 1e-5)).mean()

    def outline_loss(self, feats: torch.Tensor, fake: torch.Tensor, g, n: int = 8) -> torch.Tensor:
        """Texture must not move the outline: the first ``n`` items are decoded again from the
        same projected features (B, C, S, S) with other texture latents, and their soft
        silhouettes (differs from the flat training background, as ``nsv eval-latent`` counts
        it) must match ``fake``'s (B, 3, H, W). Without it the 2D renderer's z2 modulation
        reshapes legs and backs (IoU 0.78 for a z2 change in a furniture run)."""
        n = min(n, fake.shape[0])
        _, z2b = sample_latents(n, self.model_cfg, g)
        other = self.G.decode(feats[:n], z2b.to(self.device))
        return (soft_silhouette(fake[:n]) - soft_silhouette(other)).abs().mean()

    def diversity_loss(self, fake, z2, az, el, g, n: int = 8) -> torch.Tensor:
        """Shape must move the outline: the first ``n`` items of ``fake`` (B, 3, H, W) are
        generated again with other shape latents and the same texture latents z2 (B, cfg.z2)
        and poses (B,); soft silhouette IoUs above ``diversity_iou`` are penalised (a hinge,
        so shapes are pushed apart only until they differ as much as the goal asks, and the
        discriminator keeps them plausible). The mode-seeking term on 3D features alone left
        every z1 with the same silhouette in furniture runs."""
        n = min(n, fake.shape[0])
        z1b, _ = sample_latents(n, self.model_cfg, g)
        other = self.G(z1b.to(self.device), z2[:n], az[:n], el[:n])
        a, b = soft_silhouette(fake[:n]), soft_silhouette(other)
        iou = torch.minimum(a, b).sum((1, 2)) / (torch.maximum(a, b).sum((1, 2)) + 1e-6)
        return F.relu(iou - self.cfg.diversity_iou).mean()

    def identity_loss(self, z_pred, z1, z2) -> torch.Tensor:
        """Latent regression: |z - D_z(G(z))|^2, the z1 part weighted by lambda_z1 (with the
        default 1 this is the plain mean squared error over both latents of equal size)."""
        n1 = z1.shape[1]
        l1 = F.mse_loss(z_pred[:, :n1], z1)
        l2 = F.mse_loss(z_pred[:, n1:], z2)
        return (self.cfg.lambda_z1 * l1 + l2) / 2

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray:
        """Row per latent pair, columns = azimuths (a turntable per row), from the EMA model."""
        z1, z2 = (z[:6].to(self.device) for z in self.fixed)
        n_az = 8
        az = self.fixed_az[::2][:n_az].to(self.device)
        el = torch.full((n_az,), math.radians(np.mean(self.cfg.elevation_deg)), device=self.device)
        rows = [
            self.G_ema(z1[i : i + 1].expand(n_az, -1), z2[i : i + 1].expand(n_az, -1), az, el)
            for i in range(6)
        ]
        return grid_image(torch.cat(rows), n_az)

    def after_step(self) -> dict:
        every = self.cfg.sample_every  # 0: no sample grids
        if every and self.step % every == 0 and self.is_main:
            import imageio.v3 as iio

            (self.out / "samples").mkdir(parents=True, exist_ok=True)
            iio.imwrite(self.out / "samples" / f"step_{self.step:06d}.png", self.sample_grid())
        return {}

    def extra_state(self) -> dict:
        return {"warm_start": self.warm_start}  # a resumed warm start keeps its totals

    def load_extra_state(self, state: dict) -> None:
        self.warm_start = state.get("warm_start")

    def export(self) -> None:
        summary = {"steps": self.step, "seconds": round(self.seconds, 1), "train": asdict(self.cfg),
                   "data": str(self.data_path), "images": len(self.images)}  # fmt: skip
        # A warm start's totals include the runs before it (model cards sum them).
        before = self.warm_start or {}
        summary["total_steps"] = before.get("total_steps", before.get("steps", 0)) + self.step
        summary["total_seconds"] = round(
            before.get("total_seconds", before.get("seconds", 0.0)) + self.seconds, 1
        )
        if self.warm_start is not None:
            summary["warm_start"] = self.warm_start
        save_generator(self.G_ema, self.out, summary)


class ShapeCode(nn.Module):
    """Soft silhouettes (B, 1, res, res) -> estimates (B, dims) of the first ``dims`` entries
    of z1, in [-1, 1]: strided convolutions, for ``HoloGANTrainConfig.lambda_shape_code``."""

    def __init__(self, cfg: HoloGANConfig, dims: int) -> None:
        super().__init__()
        layers, c = [], 1
        for co in (16, 32, 64, 64):
            layers += [nn.Conv2d(c, co, 4, 2, 1), nn.LeakyReLU(0.2)]
            c = co
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(c * (cfg.res // 16) ** 2, dims)

    def forward(self, sil: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.convs(sil).flatten(1)))


def save_generator(G: Generator, folder: Path, summary: dict) -> None:
    save_model_folder(G, folder, WEIGHTS, CONFIG, summary)


def load_generator(folder: str | Path, device="cpu") -> Generator:
    """The exported (EMA) generator; another architecture is rejected clearly."""
    return load_model_folder(
        folder, WEIGHTS, CONFIG, lambda c: Generator(HoloGANConfig(**c)), "HoloGAN", device
    )
