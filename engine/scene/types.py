"""The one scene type every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.camera import Camera


@dataclass
class RegisteredView:
    """A photo with known camera (e.g. a COLMAP image). ``image_path`` may not exist on disk."""

    name: str
    camera: Camera
    image_path: Path | None = None

    @property
    def has_image(self) -> bool:
        return self.image_path is not None and self.image_path.is_file()


@dataclass
class Scene:
    """A point cloud with optional per-point attributes and registered views.

    points: (N, 3) float32, world coordinates
    colors: (N, 3) float32 in [0, 1], linear-ish sRGB as stored in the file, or None
    normals: (N, 3) float32 unit vectors, or None
    classes: (N,) uint8 per-point class codes (LAS classification, ASPRS codes), or None
    views: registered cameras (empty for a bare PLY)
    up: (3,) world direction shown as "up" by default
    pathtrace_source / pathtrace_scene: a Mitsuba scene's file (or 'cornell-box') and the
        loader's parsed MitsubaScene, for Path trace mode
    gaussians: a 3D Gaussian Splatting file's Gaussians (engine.gaussians.Gaussians); the
        points are their centres
    skipped_images: photos a capture lists but that are missing; dropped_points: points with
        NaN/inf coordinates the loader skipped
    """

    points: np.ndarray
    colors: np.ndarray | None = None
    normals: np.ndarray | None = None
    classes: np.ndarray | None = None
    views: list[RegisteredView] = field(default_factory=list)
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    source: Path | None = None
    name: str = "scene"
    pathtrace_source: str | None = None
    pathtrace_scene: Any = None
    gaussians: Any = None
    home_camera: Camera | None = None  # the view a scene file asks to open at (Mitsuba's)
    skipped_images: int = 0
    dropped_points: int = 0

    @property
    def num_points(self) -> int:
        return int(self.points.shape[0])

    def colors_or_default(self) -> np.ndarray:
        """Colors (N, 3) float32; a neutral grey where the file had none."""
        if self.colors is not None:
            return self.colors
        return np.full((self.num_points, 3), 0.75, dtype=np.float32)

    def bounds(self) -> tuple[np.ndarray, float]:
        """Robust centre (3,) and radius of the cloud (ignores the 1% farthest outliers)."""
        cached = self.__dict__.get("_bounds")
        if cached is not None and cached[0] == self.num_points:
            return cached[1].copy(), cached[2]
        if self.num_points == 0:
            return np.zeros(3), 1.0
        pts = self.points
        if len(pts) > 200_000:  # a fixed-stride subsample is plenty for bounds
            pts = pts[:: len(pts) // 200_000]
        center = np.median(pts, axis=0).astype(np.float64)
        d = np.linalg.norm(pts - center, axis=1)
        radius = float(np.quantile(d, 0.99)) if len(d) > 10 else float(d.max(initial=0.0))
        radius = max(radius, 1e-6)
        self.__dict__["_bounds"] = (self.num_points, center, radius)  # clouds are not edited
        return center.copy(), radius
