"""Reprojection of the previous frame into the current one, for the denoiser's hidden state.

Chaitanya et al. carry the recurrent state unwarped, so on a moving camera it lags behind the
image; warping it with the camera motion (the previous camera and this frame's depth are known
to a renderer) keeps it aligned, as later temporal denoisers do. Cameras follow
``engine.camera``: world-to-camera (4, 4), pinhole intrinsics (fx, fy, cx, cy) in pixels, and
depth is the z-depth along the camera's forward axis (Mitsuba's ``depth`` AOV), 0 where a ray
escaped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FAR = 1e4  # escaped rays are reprojected as points this far away (rotation-only motion)


def reprojection_grid(
    depth: torch.Tensor,
    world_to_camera: torch.Tensor,
    intrinsics: torch.Tensor,
    prev_depth: torch.Tensor,
    prev_world_to_camera: torch.Tensor,
    prev_intrinsics: torch.Tensor,
    rel_tol: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each pixel of the current frame was in the previous frame.

    depth, prev_depth: (B, 1, H, W) z-depth, 0 = nothing hit; world_to_camera: (B, 4, 4);
    intrinsics: (B, 4) fx, fy, cx, cy (the order ``camera_tensors`` returns them in). Returns ``grid`` (B, H, W, 2) for
    ``F.grid_sample(prev, grid, align_corners=False)`` and ``valid`` (B, 1, H, W) float: 1
    where the point was on screen in the previous frame and not hidden there (its depth agrees
    with the previous depth within ``rel_tol``), 0 where it was disoccluded.
    """
    H, W = depth.shape[-2:]
    dev, dt = depth.device, torch.float32
    v, u = torch.meshgrid(
        torch.arange(H, device=dev, dtype=dt) + 0.5,
        torch.arange(W, device=dev, dtype=dt) + 0.5,
        indexing="ij",
    )
    hit = depth[:, 0] > 0
    z = torch.where(hit, depth[:, 0].to(dt), torch.full_like(depth[:, 0], FAR, dtype=dt))
    fx, fy, cx, cy = (intrinsics[:, i, None, None].to(dt) for i in range(4))
    p_cam = torch.stack([(u - cx) / fx * z, (v - cy) / fy * z, z], -1)  # (B, H, W, 3)
    R, t = world_to_camera[:, :3, :3].to(dt), world_to_camera[:, :3, 3].to(dt)
    Rp, tp = prev_world_to_camera[:, :3, :3].to(dt), prev_world_to_camera[:, :3, 3].to(dt)
    # x_world = R^T (x_cam - t); x_prev = Rp x_world + tp
    p_world = torch.einsum("bji,bhwj->bhwi", R, p_cam - t[:, None, None])
    p_prev = torch.einsum("bij,bhwj->bhwi", Rp, p_world) + tp[:, None, None]
    zp = p_prev[..., 2]
    fxp, fyp, cxp, cyp = (prev_intrinsics[:, i, None, None].to(dt) for i in range(4))
    zs = zp.clamp(min=1e-6)
    up = fxp * p_prev[..., 0] / zs + cxp
    vp = fyp * p_prev[..., 1] / zs + cyp
    grid = torch.stack([2 * up / W - 1, 2 * vp / H - 1], -1)
    inside = (zp > 1e-6) & (up >= 0) & (up < W) & (vp >= 0) & (vp < H)
    d_prev = F.grid_sample(prev_depth.to(dt), grid, mode="nearest", align_corners=False)[:, 0]
    seen = torch.where(hit, (d_prev - zp).abs() <= rel_tol * zp, d_prev <= 0)
    return grid, (inside & seen).to(dt)[:, None]


def warp(prev: torch.Tensor, grid: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Resample a previous-frame tensor (B, C, h, w) into the current frame; grid and valid
    come from ``reprojection_grid`` at full resolution and are pooled to (h, w)."""
    h, w = prev.shape[-2:]
    if grid.shape[1:3] != (h, w):
        grid = F.adaptive_avg_pool2d(grid.permute(0, 3, 1, 2), (h, w)).permute(0, 2, 3, 1)
        valid = F.adaptive_avg_pool2d(valid, (h, w))
    return F.grid_sample(prev, grid, mode="bilinear", align_corners=False) * valid


def camera_tensors(camera, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """An ``engine.camera.Camera`` -> (world_to_camera (1, 4, 4), intrinsics (1, 4)) float32."""
    w2c = torch.as_tensor(camera.world_to_camera, dtype=torch.float32, device=device)[None]
    k = [camera.fx, camera.fy, camera.cx, camera.cy]
    return w2c, torch.tensor([k], dtype=torch.float32, device=device)
