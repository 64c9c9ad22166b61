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


def photo_focal(scene: Scene, max_side: int) -> float | None:
    """The median focal length in pixels of the scene's photos scaled as ViewSet scales them
    (longest side at most ``max_side``), from their cameras; None without photos. For a model
    fitted before it recorded its own (NeuralPointModel.fit_focal)."""
    f = [
        v.camera.fx * min(1.0, max_side / max(v.camera.width, v.camera.height))
        for v in scene.views
        if v.has_image
    ]
    return float(np.median(f)) if f else None


def fill_fit_focal(model, scene: Scene) -> None:
    """Give a model fitted before models recorded their ``fit_focal`` the one of its fit:
    its photos at the ``max_side`` its summary records (unchanged when unknown)."""
    if model.fit_focal is not None:
        return
    fitted = ((getattr(model, "summary", None) or {}).get("config") or {}).get("max_side")
    if isinstance(fitted, int) and fitted > 0:
        model.fit_focal = photo_focal(scene, fitted)


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

    @property
    def focal(self) -> float:
        """The training views' median focal length in pixels (NeuralPointModel.fit_focal)."""
        return float(np.median([v.camera.fx for v in self.train]))

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
