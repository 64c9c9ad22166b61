"""Plain point-cloud render modes through the torch rasterizer: color, depth and normals."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from engine.camera import Camera
from engine.device import pick_device
from engine.frame import Frame
from engine.points.lod import BACKGROUND, plan_indices, storage_order
from engine.points.rasterize import gather_features, rasterize_points
from engine.points.shading import (
    class_colors,
    depth_to_rgb,
    normals_from_depth,
    normals_to_rgb,
    to_uint8,
)
from engine.scene.types import Scene

MODES = ("color", "depth", "normal", "classes")


@dataclass
class PointRenderOptions:
    """mode: one of MODES; point_size: splat size in px at the shown scale;
    scale: pyramid level shown (0 = full resolution, s = 1/2**s, upsampled for display);
    max_points: draw only a random subset of this many points (None = all)."""

    mode: str = "color"
    point_size: int = 1
    scale: int = 0
    max_points: int | None = None


class PointCloudRenderer:
    """Holds a cloud on the device and renders it with the torch z-buffer rasterizer."""

    def __init__(self, scene: Scene, device: torch.device | str | None = None) -> None:
        self.device = pick_device(device) if not isinstance(device, torch.device) else device
        n = scene.num_points
        # Shuffled (a huge cloud: cell by cell, drawn by per-view plans): engine.points.lod.
        order, self.lod = storage_order(scene)
        perm = torch.from_numpy(order)
        self.points = torch.from_numpy(np.asarray(scene.points, np.float32))[perm].to(self.device)
        self.colors = torch.from_numpy(np.asarray(scene.colors_or_default(), np.float32))[perm].to(
            self.device
        )
        self.normals = (
            torch.from_numpy(np.asarray(scene.normals, np.float32))[perm].to(self.device)
            if scene.normals is not None
            else None
        )
        self.class_colors = (
            torch.from_numpy(class_colors(scene.classes))[perm].to(self.device)
            if scene.classes is not None
            else None
        )
        self.num_points = n

    def supports(self, mode: str) -> bool:
        """Classification colours need a cloud with classes (LAS/LAZ)."""
        return mode != "classes" or self.class_colors is not None

    @torch.no_grad()
    def render(self, camera: Camera, opts: PointRenderOptions | None = None) -> Frame:
        """Render at the camera's resolution. Returns a Frame with an (H, W, 3) uint8 image."""
        opts = opts or PointRenderOptions()
        if opts.mode not in MODES:
            raise ValueError(f"unknown mode {opts.mode!r}; choose from {MODES}")
        t0 = time.perf_counter()
        n = self.num_points if opts.max_points is None else min(self.num_points, opts.max_points)
        sel = slice(0, n)
        if self.lod is not None:  # the cells in view, as many points as each needs
            idx = plan_indices(self.lod.plan(camera, opts.max_points))
            sel = torch.from_numpy(idx).to(self.device)
            n = len(idx)
        pts = self.points[sel]
        rasters = rasterize_points(pts, camera, max(1, opts.point_size), opts.scale + 1)
        r = rasters[opts.scale]
        if opts.mode in ("color", "classes"):
            src = self.colors if opts.mode == "color" else self.class_colors
            if src is None:
                raise ValueError("this cloud has no point classes")
            rgb = gather_features(src[sel], r, BACKGROUND).permute(1, 2, 0)
        elif opts.mode == "depth":
            rgb = depth_to_rgb(r.depth, BACKGROUND)
        else:
            if self.normals is not None:
                R = torch.as_tensor(r.camera.R, dtype=torch.float32, device=self.device)
                n_cam = gather_features(self.normals[sel] @ R.T, r).permute(1, 2, 0)
                # Flip normals to face the camera: scanned clouds have inconsistent orientation.
                n_cam = torch.where(n_cam[..., 2:3] > 0, -n_cam, n_cam)
            else:
                n_cam = normals_from_depth(r.depth, r.camera)
            rgb = normals_to_rgb(n_cam, BACKGROUND)
        img = to_uint8(rgb)
        if opts.scale > 0:  # show coarse levels at the requested size, blocky on purpose
            img = _upsample_nearest(img, camera.height, camera.width)
        image = img.cpu().numpy()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        ms = (time.perf_counter() - t0) * 1000
        return Frame(image, camera, ms, n, self.device.type)


def _upsample_nearest(img: torch.Tensor, H: int, W: int) -> torch.Tensor:
    h, w = img.shape[:2]
    rows = (torch.arange(H, device=img.device) * h // H).clamp(max=h - 1)
    cols = (torch.arange(W, device=img.device) * w // W).clamp(max=w - 1)
    return img[rows][:, cols]
