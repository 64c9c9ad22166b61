"""Held-out evaluation of a fitted neural point scene against plain splatting."""

from __future__ import annotations

import time

import numpy as np
import torch

from engine.metrics import psnr, ssim
from engine.npbg.data import ViewSet
from engine.npbg.fit import FitConfig, FitTarget, Fitter
from engine.npbg.model import NeuralPointModel
from engine.npbg.photometric import apply_gains
from engine.scene.types import Scene


@torch.no_grad()
def evaluate_model(
    scene: Scene, model: NeuralPointModel, max_side: int, holdout_every: int
) -> dict:
    """PSNR / SSIM / render time of the model on the held-out views, and the splatting
    baseline on the same views (see Fitter.splat_baseline)."""
    views = ViewSet(scene, max_side, holdout_every)
    ps, ss, ms = [], [], []
    model.eval()
    for v in views.test:
        t0 = time.perf_counter()
        pred = model(v.camera).clamp(0, 1)
        if model.calibration is not None:  # the nearest training photos' exposure / WB
            pred = apply_gains(pred, model.calibration.predict(v.camera))
        ms.append((time.perf_counter() - t0) * 1000)
        ps.append(psnr(pred, v.image))
        ss.append(ssim(pred, v.image))
    colors = torch.from_numpy(scene.colors_or_default())
    target = FitTarget("eval", views, model, colors if len(colors) == len(model.points) else None)
    base = Fitter([target], FitConfig(train_network=False), "/nonexistent").splat_baseline()
    w, h = (views.test[0].camera.width, views.test[0].camera.height) if views.test else (0, 0)
    return {
        "views": len(views.test),
        "resolution": f"{w}x{h}",
        "neural": {
            "psnr": float(np.mean(ps)),
            "ssim": float(np.mean(ss)),
            "ms_per_frame": float(np.median(ms)),
        },
        "splatting": base,
    }
