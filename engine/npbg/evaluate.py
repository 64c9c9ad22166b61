"""Held-out evaluation of a fitted neural point scene against plain splatting."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from engine.metrics import psnr, ssim
from engine.npbg.data import ViewSet, fill_fit_focal
from engine.npbg.fit import FitConfig, FitTarget, Fitter
from engine.npbg.model import PASS_SHIFTS, NeuralPointModel
from engine.scene.types import Scene


def colour_bias(pred: torch.Tensor, photo: torch.Tensor) -> float:
    """Mean absolute per-channel bias, in 8-bit levels: |mean(pred_c) - mean(photo_c)| averaged
    over the channels of (3, H, W) images in [0, 1]. A colour cast shows here even when PSNR
    is dominated by detail."""
    return float((pred.mean((1, 2)) - photo.mean((1, 2))).abs().mean() * 255)


@torch.no_grad()
def evaluate_model(
    scene: Scene,
    model: NeuralPointModel,
    max_side: int,
    holdout_every: int,
    figures: str | Path | None = None,
    at_fit_scale: bool = True,
    passes: int = len(PASS_SHIFTS),
) -> dict:
    """PSNR / SSIM / colour bias / render time of the model on the held-out views, and the
    splatting baseline on the same views (see Fitter.splat_baseline). With ``figures``, writes
    one ``<view>.png`` per held-out view there: photo | neural | splatting, side by side.
    ``at_fit_scale``: each view drawn at the scale the model was fitted at and resampled, as
    the viewer shows it (NeuralPointModel.render); False: drawn at the views' resolution.
    ``passes``: each view the mean of that many offset passes, as the viewer's still frame
    once they are done (NeuralPointModel.render_passes; the preview network, which the viewer
    shows while moving, is scored in one)."""
    views = ViewSet(scene, max_side, holdout_every)
    fill_fit_focal(model, scene)
    model.eval()
    fitted = model.fit_focal
    if not at_fit_scale:
        model.fit_focal = None  # drawn as asked; the caller's model gets its own back below
    try:
        neural, preds = _score(model, views, preview=False, passes=passes)
        previews = _score(model, views, True, 1)[0] if model.preview is not None else None
        drawn = model.fit_camera(views.test[0].camera) if views.test else None
    finally:
        model.fit_focal = fitted
    colors = torch.from_numpy(scene.colors_or_default())
    target = FitTarget("eval", views, model, colors if len(colors) == len(model.points) else None)
    cfg = FitConfig(train_network=False, photometric=False)
    base = Fitter([target], cfg, "/nonexistent").splat_baseline()
    if figures and views.test:
        import imageio.v3 as iio

        from engine.npbg.fit import background_color, splat_image

        out = Path(figures)
        out.mkdir(parents=True, exist_ok=True)
        col = target.colors if target.colors is not None else torch.full_like(model.points, 0.5)
        bg = background_color(views.train)
        for v, pred in zip(views.test, preds, strict=True):
            splat = splat_image(model.points, col, v.camera, base.get("point_size", 1), bg).cpu()
            row = torch.cat([v.image, pred, splat.clamp(0, 1)], -1)
            png = (row.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
            iio.imwrite(out / f"{Path(v.name).stem}.png", png)
    w, h = (views.test[0].camera.width, views.test[0].camera.height) if views.test else (0, 0)
    res = {"views": len(views.test), "resolution": f"{w}x{h}", "neural": neural,
           "splatting": base, "passes": passes}  # fmt: skip
    if drawn is not None and (drawn.width, drawn.height) != (w, h):
        res["drawn_at"] = f"{drawn.width}x{drawn.height}"
    if previews is not None:
        res["preview"] = previews  # the fast network the viewer shows while moving
    return res


def _score(
    model: NeuralPointModel, views: ViewSet, preview: bool, passes: int
) -> tuple[dict, list]:
    """PSNR / SSIM / render time / colour bias over the held-out views, and the images."""
    ps, ss, ms, bias, preds = [], [], [], [], []
    for v in views.test:
        t0 = time.perf_counter()
        # Drawn at the fit's scale, in passes: as the viewer shows it.
        pred = model.render_passes(v.camera, passes, preview=preview).clamp(0, 1)
        if model.calibration is not None:  # the nearest training photos' exposure, WB, field
            pred = model.calibration.apply(pred, v.camera)
        ms.append((time.perf_counter() - t0) * 1000)
        ps.append(psnr(pred, v.image))
        ss.append(ssim(pred, v.image))
        bias.append(colour_bias(pred, v.image))
        preds.append(pred.cpu())
    stats = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)),
             "ms_per_frame": float(np.median(ms)), "colour_bias": float(np.mean(bias))}  # fmt: skip
    return stats, preds
