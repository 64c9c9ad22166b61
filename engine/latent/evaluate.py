"""Measurements for the latent models (``nsv eval-latent``).

* Disentanglement: for random pairs at a shared random pose, the silhouette IoU between
  G(z1, z2) and G(z1, z2') (texture changed: should stay high) and G(z1', z2) (shape changed:
  should drop), plus the colour change inside the silhouette.
* Pose control: a small CNN regresses (cos az, sin az, elevation) from the synthetic renders,
  where the true pose is known; applied to generated images it tells whether the requested
  azimuth is the one you see. HoloGAN's canonical orientation is learned, so one global offset
  (and rotation direction) is fitted before the error is reported.
* RenderNet: PSNR / SSIM per style against conventional renders of unseen shapes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.latent.hologan import sample_latents
from engine.latent.render import LatentRenderer, silhouette


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool masks -> (B,) IoU."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float().clamp_min(1)
    return inter / union


@torch.no_grad()
def disentanglement(
    renderer: LatentRenderer, pairs: int = 200, seed: int = 0, batch: int = 50
) -> dict:
    cfg = renderer.cfg
    g = torch.Generator().manual_seed(seed)
    res = {
        "iou_z2_changed": [],
        "iou_z1_changed": [],
        "color_z2_changed": [],
        "color_z1_changed": [],
    }
    for i in range(0, pairs, batch):
        n = min(batch, pairs - i)
        z1, z2 = sample_latents(n, cfg, g)
        z1b, z2b = sample_latents(n, cfg, g)
        az = torch.rand(n, generator=g) * 360
        el = 10 + torch.rand(n, generator=g) * 30
        a = renderer.generate(z1, z2, az, el)
        b = renderer.generate(z1, z2b, az, el)  # texture changed
        c = renderer.generate(z1b, z2, az, el)  # shape changed
        sa, sb, sc = silhouette(a), silhouette(b), silhouette(c)
        res["iou_z2_changed"] += iou(sa, sb).tolist()
        res["iou_z1_changed"] += iou(sa, sc).tolist()
        both_b, both_c = (sa & sb)[:, None], (sa & sc)[:, None]
        db = ((a - b).abs() * both_b).flatten(1).sum(1) / (
            3 * both_b.flatten(1).sum(1).clamp_min(1)
        )
        dc = ((a - c).abs() * both_c).flatten(1).sum(1) / (
            3 * both_c.flatten(1).sum(1).clamp_min(1)
        )
        res["color_z2_changed"] += db.tolist()
        res["color_z1_changed"] += dc.tolist()
    return {k: float(np.mean(v)) for k, v in res.items()} | {"pairs": pairs}


class PoseRegressor(nn.Module):
    """64x64 image in [0, 1] -> (cos az, sin az, elevation / 45 degrees)."""

    def __init__(self) -> None:
        super().__init__()
        ch = [3, 32, 64, 96, 128]
        layers = []
        for a, b in itertools.pairwise(ch):
            layers += [nn.Conv2d(a, b, 3, 2, 1), nn.BatchNorm2d(b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(128 * 4 * 4, 3)

    def forward(self, x):
        if x.shape[-1] != 64:
            x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
        return self.head(self.body(x).flatten(1))

    @staticmethod
    def decode(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        az = torch.rad2deg(torch.atan2(y[:, 1], y[:, 0])) % 360
        return az, y[:, 2] * 45


def circular_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d = (a - b) % 360
    return torch.minimum(d, 360 - d)


def train_pose_regressor(
    data: dict, steps: int = 1500, batch: int = 64, seed: int = 0, progress=True
):
    """Train on the first 90% of the object set; returns (model, held-out errors in degrees)."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    imgs = data["images"].permute(0, 3, 1, 2)
    az, el = data["azimuth"].float(), data["elevation"].float()
    n_train = int(len(imgs) * 0.9)
    model = PoseRegressor()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    rng = np.random.default_rng(seed)
    for step in tqdm(range(steps), desc="pose regressor", disable=not progress):
        idx = torch.from_numpy(rng.integers(0, n_train, batch))
        x = imgs[idx].float() / 255
        a = torch.deg2rad(az[idx])
        y = torch.stack([torch.cos(a), torch.sin(a), el[idx] / 45], 1)
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        for g in opt.param_groups:
            g["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * (step + 1) / steps))
    model.eval()
    with torch.no_grad():
        x = imgs[n_train:].float() / 255
        paz, pel = PoseRegressor.decode(model(x))
        err_az = circular_error(paz, az[n_train:])
        err_el = (pel - el[n_train:]).abs()
    return model, {
        "azimuth_median_deg": float(err_az.median()),
        "azimuth_mean_deg": float(err_az.mean()),
        "elevation_mean_deg": float(err_el.mean()),
        "images": len(imgs) - n_train,
    }


@torch.no_grad()
def pose_control(renderer: LatentRenderer, regressor: PoseRegressor, latents: int = 32,
                 azimuths: int = 12, elevation: float = 25.0, seed: int = 0) -> dict:  # fmt: skip
    """Requested vs regressed azimuth of generated images (after one fitted global offset)."""
    cfg = renderer.cfg
    g = torch.Generator().manual_seed(seed)
    req, pred = [], []
    for _ in range(latents):
        z1, z2 = sample_latents(1, cfg, g)
        az = torch.arange(azimuths) * (360.0 / azimuths)
        imgs = renderer.generate(z1.expand(azimuths, -1), z2.expand(azimuths, -1), az,
                                 torch.full((azimuths,), elevation))  # fmt: skip
        p, _ = PoseRegressor.decode(regressor(imgs))
        req.append(az)
        pred.append(p)
    req, pred = torch.cat(req), torch.cat(pred)
    best = None
    for sign in (1.0, -1.0):
        diff = torch.deg2rad((pred - sign * req) % 360)
        offset = math.degrees(math.atan2(float(diff.sin().mean()), float(diff.cos().mean()))) % 360
        err = circular_error(pred, (sign * req + offset) % 360)
        cand = {"sign": sign, "offset_deg": offset, "median_deg": float(err.median()),
                "mean_deg": float(err.mean()), "within_30_deg": float((err < 30).float().mean())}  # fmt: skip
        if best is None or cand["median_deg"] < best["median_deg"]:
            best = cand
    return best | {"images": len(req)}


@torch.no_grad()
def regressor_features(regressor: PoseRegressor, images: torch.Tensor, batch: int = 250):
    """(B, 3, H, W) images in [0, 1] -> (B, 2048) features of the pose regressor's body: a
    network trained here on the renders, standing in for Inception (whose weights cannot be
    downloaded here)."""
    return torch.cat(
        [regressor.body(F.interpolate(images[i : i + batch], size=(64, 64), mode="bilinear",
                                      align_corners=False)).flatten(1)
         for i in range(0, len(images), batch)]
    )  # fmt: skip


def kid(x: torch.Tensor, y: torch.Tensor, subsets: int = 50, size: int = 500, seed: int = 0):
    """Kernel Inception Distance (Binkowski et al. 2018) between feature sets x (N, D) and
    y (M, D): the unbiased MMD² with the kernel (a·b / D + 1)³, averaged over random subsets.
    Returns (mean, standard deviation over subsets)."""
    g = torch.Generator().manual_seed(seed)
    x, y = x.double(), y.double()
    d, m = x.shape[1], min(size, len(x), len(y))
    vals = []
    for _ in range(subsets):
        a = x[torch.randperm(len(x), generator=g)[:m]]
        b = y[torch.randperm(len(y), generator=g)[:m]]
        kxx, kyy, kxy = ((a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3)
        off = m * (m - 1)
        vals.append(
            float((kxx.sum() - kxx.diag().sum()) / off + (kyy.sum() - kyy.diag().sum()) / off
                  - 2 * kxy.mean())
        )  # fmt: skip
    v = torch.tensor(vals)
    return float(v.mean()), float(v.std())


@torch.no_grad()
def sample_quality(renderer: LatentRenderer, regressor: PoseRegressor, held: dict,
                   train: dict | None = None, seed: int = 0) -> dict:  # fmt: skip
    """KID ×1000 of generated images against held-out renders (``held``: an object set not
    used in training), at the held-out renders' poses; with ``train``, also the KID of training
    renders against the held-out ones: the floor a perfect generator would reach."""
    real = held["images"].permute(0, 3, 1, 2).float() / 255
    n = len(real)
    g = torch.Generator().manual_seed(seed)
    z1, z2 = sample_latents(n, renderer.cfg, g)
    fake = torch.cat([
        renderer.generate(z1[i : i + 100], z2[i : i + 100], held["azimuth"][i : i + 100],
                          held["elevation"][i : i + 100])
        for i in range(0, n, 100)
    ])  # fmt: skip
    f_real = regressor_features(regressor, real)
    mean, std = kid(regressor_features(regressor, fake), f_real)
    out = {"kid_x1000": 1000 * mean, "kid_std_x1000": 1000 * std, "images": n}
    if train is not None:
        t = train["images"][torch.randperm(len(train["images"]), generator=g)[:n]]
        floor, _ = kid(regressor_features(regressor, t.permute(0, 3, 1, 2).float() / 255), f_real)
        out["kid_floor_x1000"] = 1000 * floor
    return out


@torch.no_grad()
def hologan_figures(
    renderer: LatentRenderer, out, seed: int = 0, offset_deg: float = 0.0, sign: float = 1.0
) -> list:
    """The model card's figures, written as PNGs into ``out``: ``samples.png`` (64 samples at
    random poses), ``turntable.png`` (4 latents x 12 views, 30 degrees apart, starting at the
    front) and ``z1_rows_z2_columns.png`` (shape latents down, texture across, a front
    three-quarter view). ``offset_deg``/``sign`` from ``pose_control`` map the generator's
    azimuth to the dataset's (0 = the chair's front); without them views start at the
    generator's own 0. Returns the paths."""

    def requested(dataset_az: torch.Tensor) -> torch.Tensor:
        return sign * (dataset_az - offset_deg)

    from pathlib import Path

    import imageio.v3 as iio

    from engine.latent.train import grid_image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg, g = renderer.cfg, torch.Generator().manual_seed(seed)

    def save(name: str, imgs: torch.Tensor, cols: int) -> Path:
        path = out / name
        iio.imwrite(path, grid_image(imgs * 2 - 1, cols))
        return path

    z1, z2 = sample_latents(64, cfg, g)
    az, el = torch.rand(64, generator=g) * 360, 10 + torch.rand(64, generator=g) * 30
    paths = [save("samples.png", renderer.generate(z1, z2, az, el), 8)]
    z1, z2 = sample_latents(4, cfg, g)
    azs = requested(torch.arange(12) * 30.0)
    rows = [
        renderer.generate(z1[i : i + 1].expand(12, -1), z2[i : i + 1].expand(12, -1), azs,
                          torch.full((12,), 25.0))
        for i in range(4)
    ]  # fmt: skip
    paths.append(save("turntable.png", torch.cat(rows), 12))
    z1, z2 = sample_latents(6, cfg, g)
    cells = [
        renderer.generate(z1[i : i + 1].expand(6, -1), z2, requested(torch.full((6,), 45.0)),
                          torch.full((6,), 25.0))
        for i in range(6)
    ]  # fmt: skip
    paths.append(save("z1_rows_z2_columns.png", torch.cat(cells), 6))
    return paths


def evaluate_all(
    hologan, objects, rendernet, voxels, pairs: int = 200, figures=None, kid_renders=None
) -> dict:
    from pathlib import Path

    out: dict = {"lines": []}
    if hologan and Path(hologan).exists():
        from engine.latent.train import load_generator, load_object_dataset

        r = LatentRenderer(load_generator(hologan))
        d = disentanglement(r, pairs)
        out["disentanglement"] = d
        out["lines"].append(
            f"HoloGAN disentanglement ({pairs} pairs): silhouette IoU {d['iou_z2_changed']:.3f} when "
            f"only z2 (texture) changes vs {d['iou_z1_changed']:.3f} when only z1 (shape) changes; "
            f"colour change inside the silhouette {d['color_z2_changed']:.3f} vs {d['color_z1_changed']:.3f}"
        )
        if objects:
            train_set = load_object_dataset(objects)
            reg, held = train_pose_regressor(train_set)
            out["pose_regressor"] = held
            pc = pose_control(r, reg)
            out["pose_control"] = pc
            out["lines"].append(
                f"pose regressor on held-out renders: azimuth median {held['azimuth_median_deg']:.1f} "
                f"deg, elevation mean {held['elevation_mean_deg']:.1f} deg"
            )
            out["lines"].append(
                f"HoloGAN pose control ({pc['images']} images): requested vs regressed azimuth, "
                f"median {pc['median_deg']:.1f} deg, {100 * pc['within_30_deg']:.0f}% within 30 deg "
                f"(after a global offset of {pc['offset_deg']:.0f} deg, direction {pc['sign']:+.0f})"
            )
            if kid_renders:
                q = sample_quality(r, reg, load_object_dataset(kid_renders), train_set)
                out["sample_quality"] = q
                out["lines"].append(
                    f"HoloGAN sample quality: KID x1000 {q['kid_x1000']:.2f} ± "
                    f"{q['kid_std_x1000']:.2f} against {q['images']} held-out renders (training "
                    f"renders against them: {q['kid_floor_x1000']:.2f}; features of the pose "
                    "regressor)"
                )
        if figures:
            pc = out.get("pose_control", {})
            offset, sign = float(pc.get("offset_deg", 0.0)), float(pc.get("sign", 1.0))
            for path in hologan_figures(r, figures, offset_deg=offset, sign=sign):
                out["lines"].append(f"wrote {path}")
    if rendernet and voxels and Path(rendernet).exists():
        from engine.latent.rendernet import (
            evaluate_rendernet,
            load_rendernet,
            load_rendernet_dataset,
        )

        m = evaluate_rendernet(load_rendernet(rendernet), load_rendernet_dataset(voxels))
        out["rendernet"] = m
        for s, v in m.items():
            out["lines"].append(
                f"RenderNet {s}: PSNR {v['psnr']:.2f} dB, SSIM {v['ssim']:.3f} (unseen shapes)"
            )
    return out
