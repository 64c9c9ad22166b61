"""Camera pose refinement for fitting: align each training photo to the scene's own rendering.

The point rasterizer is a hard z-buffer (no gradient with respect to positions), so poses are
refined by *direct image alignment* instead (as in dense visual odometry): render the view from
the current camera with its depth, lift every covered pixel to 3D, move the 3D points by a
small rigid correction ``T(xi)``, project them and sample the photo there; ``xi`` minimises the
robust photometric difference between the rendering and the photo (coarse to fine, with a pull
towards zero). The camera's corrected pose is then ``T(xi) @ world_to_camera``: the photo was
taken from where the rendered scene lines up with it. The scene's points stay fixed, so they
anchor the frame and held-out cameras keep their meaning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.camera import Camera


@dataclass
class PoseRefineConfig:
    iters: int = 60  # per pyramid level
    levels: int = 3  # coarse to fine: 1/4, 1/2, 1 of ``max_side``
    max_side: int = 256  # alignment resolution (longest side)
    lr: float = 2e-3
    reg: float = 1e-3  # pull of the correction towards zero (per radian / scene unit, squared)
    # Larger corrections are not trusted (the camera is returned unchanged): the median image
    # motion of the covered pixels, as a share of the alignment resolution's longest side.
    max_motion: float = 0.04
    # The photometric error must drop by this share, else the camera is left alone: an
    # imperfect rendering always "improves" a little by moving, and those moves add up.
    min_gain: float = 0.03


def twist_matrix(xi: torch.Tensor) -> torch.Tensor:
    """(6,) [rotation vector w (rad), translation v] -> (4, 4) rigid transform exp(xi^)."""
    w, v = xi[:3], xi[3:]
    z = xi.new_zeros(())
    W = torch.stack(
        [
            torch.stack([z, -w[2], w[1]]),
            torch.stack([w[2], z, -w[0]]),
            torch.stack([-w[1], w[0], z]),
        ]
    )
    top = torch.cat([W, v[:, None]], 1)
    return torch.matrix_exp(torch.cat([top, xi.new_zeros(1, 4)], 0))


def _lift(depth: torch.Tensor, cam: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W) z-depth (inf where empty) -> camera-space points (M, 3) of the covered pixels and
    their flat indices (M,)."""
    W = depth.shape[1]
    ok = torch.isfinite(depth).view(-1)
    idx = ok.nonzero()[:, 0]
    v, u = (idx // W).float() + 0.5, (idx % W).float() + 0.5
    z = depth.view(-1)[idx]
    x = (u - cam.cx) / cam.fx * z
    y = (v - cam.cy) / cam.fy * z
    return torch.stack([x, y, z], 1), idx


def _project(pc: torch.Tensor, cam: Camera) -> torch.Tensor:
    """(M, 3) camera-space points -> (M, 2) pixel coordinates."""
    z = pc[:, 2:].clamp(min=1e-6)
    return torch.cat([pc[:, :1] / z * cam.fx + cam.cx, pc[:, 1:2] / z * cam.fy + cam.cy], 1)


def _sample(img: torch.Tensor, pc: torch.Tensor, cam: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear samples (M, C) of ``img`` (C, H, W) where camera points ``pc`` (M, 3) project,
    and (M,) whether they land inside the image in front of the camera."""
    uv = _project(pc, cam)
    H, W = img.shape[-2:]
    gx, gy = uv[:, 0] / W * 2 - 1, uv[:, 1] / H * 2 - 1
    inside = (gx.abs() < 1) & (gy.abs() < 1) & (pc[:, 2] > 1e-6)
    grid = torch.stack([gx, gy], 1)[None, None]
    s = F.grid_sample(img[None], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return s[0, :, 0].T, inside


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(2 * sigma))
    x = torch.arange(-r, r + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    C = img.shape[0]
    out = F.conv2d(
        F.pad(img[None], (r, r, 0, 0), mode="replicate"),
        k.view(1, 1, 1, -1).expand(C, 1, 1, -1),
        groups=C,
    )
    out = F.conv2d(
        F.pad(out, (0, 0, r, r), mode="replicate"),
        k.view(1, 1, -1, 1).expand(C, 1, -1, 1),
        groups=C,
    )
    return out[0]


def align_camera(
    render: Callable[[Camera], tuple[torch.Tensor, torch.Tensor]],
    photo: torch.Tensor,
    camera: Camera,
    scene_scale: float,
    cfg: PoseRefineConfig | None = None,
) -> tuple[Camera, dict]:
    """Refine ``camera`` so that ``render`` lines up with ``photo``.

    render(camera) -> (image (3, h, w) in [0, 1], z-depth (h, w), inf where nothing is seen);
    photo: (3, H, W) at ``camera``'s resolution; scene_scale: a length of the scene (e.g. the
    points' bounding-box diagonal) that makes translations comparable with rotations.
    Returns (the corrected camera, {"angle_deg", "shift", "motion_px", "loss_before",
    "loss_after"}); the camera is returned unchanged (with "skipped" saying why) when the
    correction is too large or does not clearly lower the error.
    """
    cfg = cfg or PoseRefineConfig()
    s = min(1.0, cfg.max_side / max(camera.width, camera.height))
    cam = camera.scaled(s)
    with torch.no_grad():
        image, depth = render(cam)
    image, depth = image.float().cpu(), depth.float().cpu()
    target = F.interpolate(photo[None].float().cpu(), size=image.shape[-2:], mode="area")[0]
    pc, idx = _lift(depth, cam)
    if len(idx) < 64:
        return camera, {"angle_deg": 0.0, "shift": 0.0, "skipped": "too few covered pixels"}
    ref_full = image.reshape(3, -1)[:, idx].T
    # Translations in units of the scene's size, so one step size suits both parts of xi.
    xi = torch.zeros(6, requires_grad=True)
    scale = torch.tensor([1.0, 1.0, 1.0, scene_scale, scene_scale, scene_scale])
    opt = torch.optim.Adam([xi], lr=cfg.lr)

    def loss_at(sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        tgt = _blur(target, sigma) if sigma > 0 else target
        ref = ref_full
        if sigma > 0:
            ref = _blur(image, sigma).reshape(3, -1)[:, idx].T
        T = twist_matrix(xi * scale)
        moved = pc @ T[:3, :3].T + T[:3, 3]
        smp, inside = _sample(tgt, moved, cam)
        err = torch.sqrt((smp - ref) ** 2 + 1e-4).sum(1)  # Charbonnier: robust to what moved
        data = (err * inside).sum() / inside.sum().clamp(min=1)
        return data + cfg.reg * (xi**2).sum(), data

    with torch.no_grad():
        before = float(loss_at(0.0)[1])
    for level in range(cfg.levels):
        sigma = 2.0 ** (cfg.levels - 1 - level) - 1.0  # 3, 1, 0 px at three levels
        for g in opt.param_groups:  # Adam's steps are ~lr: smaller ones to settle finely
            g["lr"] = cfg.lr * 0.3**level
        for _ in range(cfg.iters):
            opt.zero_grad()
            loss, _ = loss_at(sigma)
            loss.backward()
            opt.step()
    with torch.no_grad():
        after = float(loss_at(0.0)[1])
        Tt = twist_matrix(xi * scale)
        moved = pc @ Tt[:3, :3].T + Tt[:3, 3]
        motion_px = float((_project(moved, cam) - _project(pc, cam)).norm(dim=1).median())
        T = Tt.double().numpy()
    angle = float(np.degrees(np.linalg.norm(xi[:3].detach().numpy())))
    shift = float(np.linalg.norm(T[:3, 3]))
    info = {"angle_deg": angle, "shift": shift, "motion_px": motion_px * camera.width / cam.width,
            "loss_before": before, "loss_after": after}  # fmt: skip
    too_large = motion_px > cfg.max_motion * max(cam.width, cam.height)
    if too_large or after > (1 - cfg.min_gain) * before:
        info["skipped"] = "correction too large" if too_large else "no clear improvement"
        return camera, info
    return camera.with_pose(T @ camera.world_to_camera), info
