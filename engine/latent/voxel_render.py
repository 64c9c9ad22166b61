"""Interactive RenderNet: a user's mesh (or voxel grid) -> learned shading from any viewpoint,
next to a conventional render of the same mesh in the same style."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.camera import Camera
from engine.errors import NsvError
from engine.frame import Frame
from engine.latent.rendernet import RenderNet


@dataclass
class VoxelOptions:
    style: str = "phong"
    azimuth: float = 30.0  # degrees, object_camera convention
    elevation: float = 25.0
    size: int = 256
    compare: bool = False  # RenderNet | conventional side by side


class VoxelRenderer:
    def __init__(self, model: RenderNet, device="cpu") -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.voxels: torch.Tensor | None = None
        self.mesh = None
        self._gbuf = None
        self.name = ""

    def set_mesh(self, path_or_mesh) -> None:
        """Load (if a path), normalise and voxelize a mesh; ``.npy`` files are taken as
        occupancy grids in the canonical layout (``engine.latent.voxels``)."""
        from engine.latent.voxels import load_mesh, normalise, voxelize

        n = self.model.cfg.voxels
        if isinstance(path_or_mesh, (str, Path)) and str(path_or_mesh).endswith(".npy"):
            grid = np.load(path_or_mesh, allow_pickle=False)
            if grid.ndim != 3 or len(set(grid.shape)) != 1:
                raise NsvError(
                    f"{path_or_mesh}: a voxel grid must be a cube (n, n, n), got {grid.shape}"
                )
            g = torch.from_numpy((grid > 0).astype(np.float32))[None, None]
            if grid.shape[0] != n:
                g = (F.interpolate(g, size=(n, n, n), mode="trilinear") > 0.3).float()
            self.voxels, self.mesh = g.to(self.device), None
            self.name = Path(path_or_mesh).name
            return
        mesh = load_mesh(path_or_mesh) if isinstance(path_or_mesh, (str, Path)) else path_or_mesh
        self.mesh = normalise(mesh)
        vox = voxelize(self.mesh, n)
        if vox.sum() == 0:
            raise NsvError(f"{path_or_mesh}: the mesh voxelized to an empty grid")
        self.voxels = torch.from_numpy(vox)[None, None].to(self.device)
        self.name = Path(path_or_mesh).name if isinstance(path_or_mesh, (str, Path)) else "mesh"
        if self._gbuf is not None:
            self._gbuf.set_mesh(self.mesh)

    def conventional(self, style: str, azimuth: float, elevation: float, size: int) -> np.ndarray:
        """The reference render of the mesh in ``style`` (H, W, 3) uint8."""
        from engine.latent.objects import object_camera
        from engine.latent.styles import GeometryBuffer, render_styles

        if self.mesh is None:
            return np.full((size, size, 3), 255, np.uint8)
        if self._gbuf is None:
            self._gbuf = GeometryBuffer()
            self._gbuf.set_mesh(self.mesh)
        img = render_styles(self._gbuf, object_camera(azimuth, elevation, size), (style,))[style]
        return (img * 255 + 0.5).astype(np.uint8)

    @torch.no_grad()
    def learned(self, style: str, azimuth: float, elevation: float, size: int) -> np.ndarray:
        if self.voxels is None:
            raise NsvError("no mesh loaded")
        if style not in self.model.cfg.styles:
            raise NsvError(
                f"style {style!r} not in this model ({', '.join(self.model.cfg.styles)})"
            )
        az = torch.tensor([math.radians(azimuth)], device=self.device)
        el = torch.tensor([math.radians(elevation)], device=self.device)
        img = self.model(self.voxels, az, el, [style])[:, 0]
        if size != img.shape[-1]:
            img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
        return (img[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)

    def render_pair(self, style, azimuth, elevation, size) -> tuple[np.ndarray, np.ndarray]:
        return self.learned(style, azimuth, elevation, size), self.conventional(
            style, azimuth, elevation, size
        )

    def render(self, camera: Camera | None, opts: VoxelOptions) -> Frame:
        t0 = time.perf_counter()
        img = self.learned(opts.style, opts.azimuth, opts.elevation, opts.size)
        ms = (time.perf_counter() - t0) * 1000
        if opts.compare:
            img = np.concatenate(
                [img, self.conventional(opts.style, opts.azimuth, opts.elevation, opts.size)], 1
            )
        cam = camera or Camera.from_fov(img.shape[1], img.shape[0], 36.0)
        return Frame(img, cam, ms, 0, str(self.device), {"model_res": self.model.cfg.res})
