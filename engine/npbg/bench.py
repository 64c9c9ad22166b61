"""`nsv bench fit`: how long a fit of a real scene takes here, from a few timed steps.

The 20-minute import + fit budget of a phone capture is judged on the 2-core CPU this project
targets; a whole fit to learn a change's cost takes 15 minutes, a few dozen steps one."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from engine.bench import sync
from engine.npbg.fit import FitConfig, Fitter, make_target, times_left
from engine.npbg.network import FIT_NETWORK, NetworkConfig
from engine.open_path import load_scene


def machine() -> str:
    """The CPU's model name and the threads torch uses (the hardware a timing belongs to)."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name or 'CPU'}, {torch.get_num_threads()} threads"


def bench_fit(
    scene_dir: str | Path,
    steps: int = 30,
    device: str | torch.device = "cpu",
    cfg: FitConfig | None = None,
    net_cfg: NetworkConfig | None = None,
) -> dict:
    """Time ``steps`` training steps (after 3 to warm up) and one held-out evaluation of a fit
    of ``scene_dir`` as ``nsv fit`` runs it (``cfg``, default FitConfig(); ``net_cfg``, default
    FIT_NETWORK), and project the whole fit's time: ``cfg.steps`` steps (at their mean: the
    slow ones count) plus an evaluation every ``cfg.eval_every`` and a checkpoint every
    ``cfg.checkpoint_every``. The gain-field measurement at the end (one rendering per training
    photo) is counted as one more evaluation per held-out share of the photos, and the
    building of the photos' culls (``Fitter.build_culls``) once."""
    cfg = cfg or FitConfig()
    dev = torch.device(device)
    scene = load_scene(scene_dir)
    target = make_target(scene, cfg, device=dev, net_cfg=net_cfg or FIT_NETWORK)
    with tempfile.TemporaryDirectory() as tmp:
        fitter = Fitter([target], cfg, tmp)
        t0 = time.perf_counter()
        fitter.build_culls()  # a fit builds them over its first few hundred steps
        culls_s = time.perf_counter() - t0
        for _ in range(3):  # oneDNN builds its kernels for each new shape on first use
            fitter.train_step()
        times = []
        for _ in range(steps):
            sync(dev)
            t0 = time.perf_counter()
            fitter.train_step()
            sync(dev)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fitter.evaluate()
        eval_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fitter.save_checkpoint()
        checkpoint_s = time.perf_counter() - t0
    step_s, mean_s = float(np.median(times)), float(np.mean(times))
    n_eval = times_left(cfg.eval_every, cfg.steps)
    n_ckpt = times_left(cfg.checkpoint_every, cfg.steps)
    n_train, n_test = len(target.views.train), max(1, len(target.views.test))
    fields = eval_s * n_train / n_test if cfg.photometric and cfg.photo_field else 0.0
    total = cfg.steps * mean_s + n_eval * eval_s + n_ckpt * checkpoint_s + fields + culls_s
    res = {
        "machine": machine() if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        "scene": str(scene_dir),
        "points": int(target.model.points.shape[0]),
        "crop": cfg.crop,
        "step_ms": step_s * 1000,
        "step_ms_p90": float(np.quantile(times, 0.9)) * 1000,
        "step_ms_mean": mean_s * 1000,
        "eval_s": eval_s,
        "checkpoint_s": checkpoint_s,
        "culls_s": culls_s,
        "checkpoint_every": cfg.checkpoint_every,
        "held_out_views": len(target.views.test),
        "fit_steps": cfg.steps,
        "eval_every": cfg.eval_every,
        "projected_fit_min": total / 60,
    }
    print(
        f"fit of {scene_dir} on {res['machine']}: {res['points']:,} points, "
        f"{cfg.crop}-px crops: {res['step_ms']:.0f} ms a step (p90 {res['step_ms_p90']:.0f}), "
        f"held-out evaluation {eval_s:.1f} s ({res['held_out_views']} views), checkpoint "
        f"{checkpoint_s:.1f} s; {cfg.steps:,} steps with an evaluation every "
        f"{cfg.eval_every} and a checkpoint every {cfg.checkpoint_every}: about "
        f"{res['projected_fit_min']:.1f} min"
    )
    return res
