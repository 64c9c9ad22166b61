"""RenderNet (Nguyen-Phuoc et al., NeurIPS 2018): a convolutional renderer from voxel grids.

The occupancy grid (``engine.latent.voxels`` layout) is turned into the camera's frame by a
rigid transform of its coordinates (trilinear resampling, not learned), then 3D convolutions,
the projection unit (depth folded into channels, 1x1 convolution), and 2D up-convolutions
render the image. One shared trunk, one small head per shading style.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.checkpoint import (
    load_model_folder,
    read_dataset,
    save_model_folder,
)
from engine.images import atomic_save_tensors
from engine.latent.hologan import rigid_transform
from engine.latent.styles import STYLES
from engine.training import TrainingConfig, TrainingJob

WEIGHTS = "rendernet.safetensors"
CONFIG = "rendernet.json"
# object_camera's azimuth/elevation -> rotation of the canonical grid into that camera's frame
# (checked in tests: these signs make the grid's silhouette match the rendered one).
AZIMUTH_SIGN = 1.0
ELEVATION_SIGN = 1.0


@dataclass
class RenderNetConfig:
    voxels: int = 32
    res: int = 64
    styles: list[str] = field(default_factory=lambda: list(STYLES))
    c3d: list[int] = field(default_factory=lambda: [16, 32])  # at n^3, then n/2^3
    proj: int = 256
    c2d: list[int] = field(default_factory=lambda: [128, 64])


class _Res2d(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, 1, 1)
        self.b = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return x + self.b(F.leaky_relu(self.a(x), 0.2))


class RenderNet(nn.Module):
    def __init__(self, cfg: RenderNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or RenderNetConfig()
        c1, c2 = cfg.c3d
        self.conv3d = nn.ModuleList([
            nn.Conv3d(1, c1, 3, 1, 1), nn.Conv3d(c1, c2, 4, 2, 1), nn.Conv3d(c2, c2, 3, 1, 1),
        ])  # fmt: skip
        s = cfg.voxels // 2
        self.project = nn.Conv2d(c2 * s, cfg.proj, 1)
        self.res = _Res2d(cfg.proj)
        ups, c = [], cfg.proj
        for co in cfg.c2d:
            ups.append(nn.ConvTranspose2d(c, co, 4, 2, 1))
            c = co
        self.up = nn.ModuleList(ups)
        self.heads = nn.ModuleDict({
            st: nn.Sequential(nn.Conv2d(c, 32, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 3, 3, 1, 1))
            for st in cfg.styles
        })  # fmt: skip
        if s * 2 ** len(cfg.c2d) != cfg.res:
            raise ValueError(f"res {cfg.res} != {s} * 2^{len(cfg.c2d)}")

    def features(self, vox: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor):
        """vox (B, 1, n, n, n); angles (B,) radians, object_camera's convention."""
        x = rigid_transform(vox, AZIMUTH_SIGN * azimuth, ELEVATION_SIGN * elevation)
        for conv in self.conv3d:
            x = F.leaky_relu(conv(x), 0.2)
        B, C, D, H, W = x.shape
        x = F.leaky_relu(self.project(x.reshape(B, C * D, H, W)), 0.2)
        x = self.res(x)
        for up in self.up:
            x = F.leaky_relu(up(x), 0.2)
        return x

    def forward(self, vox, azimuth, elevation, styles: list[str] | None = None) -> torch.Tensor:
        """-> (B, S, 3, res, res), one image per requested style: [0, 1] in eval mode; raw in
        training (a sigmoid saturates on the white background and stalls learning)."""
        f = self.features(vox, azimuth, elevation)
        out = torch.stack([self.heads[s](f) for s in styles or self.cfg.styles], 1)
        return out if self.training else out.clamp(0, 1)


# --- data ------------------------------------------------------------------------------------


def random_shape(rng: np.random.Generator):
    """A chair (60%) or a random primitive (boxes, spheres, tori, capsules, cylinders)."""
    import trimesh

    from engine.latent.objects import random_chair

    if rng.random() < 0.6:
        objs, _ = random_chair(rng)
        return trimesh.util.concatenate([o.mesh for o in objs])
    makers = [
        lambda: trimesh.creation.box(extents=rng.uniform(0.3, 1.0, 3)),
        lambda: trimesh.creation.icosphere(subdivisions=3, radius=float(rng.uniform(0.3, 0.6))),
        lambda: trimesh.creation.torus(float(rng.uniform(0.3, 0.5)), float(rng.uniform(0.08, 0.2))),
        lambda: trimesh.creation.capsule(
            height=float(rng.uniform(0.3, 0.9)), radius=float(rng.uniform(0.1, 0.3))
        ),
        lambda: trimesh.creation.cylinder(
            radius=float(rng.uniform(0.1, 0.4)), height=float(rng.uniform(0.3, 1.0))
        ),
    ]
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        m = makers[rng.integers(len(makers))]()
        m.apply_transform(trimesh.transformations.random_rotation_matrix(rng.random(3)))
        m.apply_translation(rng.uniform(-0.4, 0.4, 3))
        parts.append(m)
    return trimesh.util.concatenate(parts)


def write_rendernet_dataset(
    out: str | Path, shapes: int, views: int = 4, res: int = 64, voxels: int = 32, seed: int = 0,
    progress: bool = True,
) -> dict:  # fmt: skip
    """Voxelize random shapes and render each from ``views`` random poses in every style into
    ``out/rendernet.safetensors``: voxels (S, n, n, n) uint8, images (S*views, styles, res,
    res, 3) uint8, shape (S*views,) int64, azimuth / elevation (S*views,) float32 degrees."""
    from tqdm import tqdm

    from engine.latent.objects import ELEVATION_RANGE, object_camera
    from engine.latent.styles import GeometryBuffer, render_styles
    from engine.latent.voxels import normalise, voxelize

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    gbuf = GeometryBuffer()
    vox = np.zeros((shapes, voxels, voxels, voxels), np.uint8)
    imgs = np.zeros((shapes * views, len(STYLES), res, res, 3), np.uint8)
    az = rng.uniform(0, 360, shapes * views).astype(np.float32)
    el = rng.uniform(*ELEVATION_RANGE, shapes * views).astype(np.float32)
    for i in tqdm(range(shapes), desc="voxelizing + rendering", disable=not progress):
        mesh = normalise(random_shape(rng))
        vox[i] = voxelize(mesh, voxels) > 0.5
        gbuf.set_mesh(mesh)
        for k in range(views):
            j = i * views + k
            r = render_styles(gbuf, object_camera(az[j], el[j], res))
            imgs[j] = np.stack([(r[s] * 255 + 0.5).astype(np.uint8) for s in STYLES])
    tensors = {
        "voxels": torch.from_numpy(vox),
        "images": torch.from_numpy(imgs),
        "shape": torch.from_numpy(np.repeat(np.arange(shapes), views)),
        "azimuth": torch.from_numpy(az),
        "elevation": torch.from_numpy(el),
    }
    atomic_save_tensors(tensors, out / "rendernet.safetensors")
    return {"shapes": shapes, "views": shapes * views}


def load_rendernet_dataset(path: str | Path) -> dict[str, torch.Tensor]:
    return read_dataset(path, "rendernet.safetensors", "nsv data voxels")


# --- training --------------------------------------------------------------------------------


@dataclass
class RenderNetTrainConfig(TrainingConfig):
    steps: int = 3000
    batch: int = 16
    lr: float = 5e-4


def batch_tensors(data: dict, idx: torch.Tensor):
    """(voxels (B, 1, n, n, n) float, azimuth, elevation (B,) radians, targets (B, S, 3, H, W))."""
    vox = data["voxels"][data["shape"][idx]].float()[:, None]
    az = data["azimuth"][idx] * (math.pi / 180)
    el = data["elevation"][idx] * (math.pi / 180)
    tgt = data["images"][idx].permute(0, 1, 4, 2, 3).float() / 255
    return vox, az, el, tgt


class RenderNetTrainer(TrainingJob):
    def __init__(
        self, data: str | Path, out_dir: str | Path, cfg: RenderNetTrainConfig, device="cpu"
    ) -> None:
        self.data_path = Path(data)
        self.data = load_rendernet_dataset(data)
        super().__init__(cfg, out_dir, device)
        n, res = self.data["voxels"].shape[1], self.data["images"].shape[-2]
        self.model_cfg = RenderNetConfig(voxels=n, res=res)
        self.device = torch.device(device)
        self.model = RenderNet(self.model_cfg).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), cfg.lr)
        self.modules = {"model": self.model}
        self.optimizers = {"": self.opt}

    @property
    def losses(self) -> list[float]:
        return self.history.get("loss", [])

    def train_step(self) -> dict[str, float]:
        idx = self.rng.integers(0, len(self.data["images"]), self.cfg.batch)
        idx = torch.from_numpy(np.asarray(self.shard(list(idx))))
        vox, az, el, tgt = (t.to(self.device) for t in batch_tensors(self.data, idx))
        out = self.model(vox, az, el)
        # L1, weighted up on dark target pixels: the styles are mostly white background, and
        # plain L1 is nearly optimal at predicting white where thin contour lines should be.
        w = 1 + 3 * (1 - tgt.mean(2, keepdim=True))
        loss = ((out - tgt).abs() * w).mean() / w.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_step(self.opt)
        return {"loss": float(loss.detach())}

    def export(self) -> None:
        summary = {"steps": self.step, "seconds": round(self.seconds, 1), "train": asdict(self.cfg),
                   "data": str(self.data_path)}  # fmt: skip
        save_rendernet(self.model, self.out, summary)


def save_rendernet(model: RenderNet, folder: Path, summary: dict) -> None:
    save_model_folder(model, folder, WEIGHTS, CONFIG, summary)


def load_rendernet(folder: str | Path, device="cpu") -> RenderNet:
    """Weights through safetensors only; another architecture is rejected clearly."""
    return load_model_folder(
        folder, WEIGHTS, CONFIG, lambda c: RenderNet(RenderNetConfig(**c)), "RenderNet", device
    )


@torch.no_grad()
def evaluate_rendernet(
    model: RenderNet, data: dict, batch: int = 32
) -> dict[str, dict[str, float]]:
    """Per-style PSNR / SSIM against the conventional renders in ``data``."""
    from engine.metrics import psnr, ssim

    res: dict[str, list] = {s: [] for s in model.cfg.styles}
    n = len(data["images"])
    for i in range(0, n, batch):
        idx = torch.arange(i, min(n, i + batch))
        vox, az, el, tgt = batch_tensors(data, idx)
        out = model(vox, az, el)
        for k, s in enumerate(model.cfg.styles):
            for b in range(len(idx)):
                res[s].append(
                    (float(psnr(out[b, k], tgt[b, k])), float(ssim(out[b, k], tgt[b, k])))
                )
    return {
        s: {"psnr": float(np.mean([a for a, _ in v])), "ssim": float(np.mean([b for _, b in v]))}
        for s, v in res.items()
    }
