"""Training views for fitting: photos with cameras, the held-out split, crops and rescaling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.camera import Camera
from engine.errors import NsvError
from engine.images import read_image, resize_image
from engine.scene.types import Scene


@dataclass
class View:
    """image: (3, H, W) float32 in [0, 1], sRGB; camera at the same resolution."""

    name: str
    camera: Camera
    image: torch.Tensor


class ViewSet:
    """A scene's photos at a working resolution (longest side <= max_side), split so that every
    ``holdout_every``-th view (0, 8, 16, ... in name order) is held out for evaluation."""

    def __init__(self, scene: Scene, max_side: int = 512, holdout_every: int = 8) -> None:
        views = [v for v in scene.views if v.has_image]
        if len(views) < 2:
            raise NsvError(f"{scene.source}: fitting needs photos with cameras; found {len(views)}")
        self.train: list[View] = []
        self.test: list[View] = []
        for i, v in enumerate(views):
            img = read_image(v.image_path)
            cam = v.camera
            if img.shape[1:] != (cam.height, cam.width):
                # Photos may be stored at another size than the model's cameras: scale cameras.
                cam = cam.resized(img.shape[2], img.shape[1])
            s = min(1.0, max_side / max(cam.width, cam.height))
            cam = cam.scaled(s)
            view = View(v.name, cam, resize_image(img, cam.width, cam.height))
            held = holdout_every > 0 and i % holdout_every == 0
            (self.test if held else self.train).append(view)
        if not self.train:
            raise NsvError(f"{scene.source}: no training views left after the hold-out split")

    def sample(self, rng: np.random.Generator, crop: int, scale_range=(0.75, 1.25)) -> View:
        """A random training view, rescaled by a random factor and randomly cropped (the camera
        is adjusted to match, so the crop renders exactly)."""
        v = self.train[rng.integers(len(self.train))]
        s = float(rng.uniform(*scale_range))
        cam = v.camera.scaled(s)
        img = resize_image(v.image, cam.width, cam.height)
        cw, ch = min(crop, cam.width), min(crop, cam.height)
        x0 = int(rng.integers(0, cam.width - cw + 1))
        y0 = int(rng.integers(0, cam.height - ch + 1))
        crop_cam = Camera(
            cw, ch, cam.fx, cam.fy, cam.cx - x0, cam.cy - y0, cam.world_to_camera, cam.near, cam.far
        )
        return View(v.name, crop_cam, img[:, y0 : y0 + ch, x0 : x0 + cw])
