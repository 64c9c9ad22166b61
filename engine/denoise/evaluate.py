"""Denoiser evaluation on held-out sequences: quality at 1/4/16 spp, temporal stability, time;
against the noisy input, our model per frame (state reset), recurrent, and Intel OIDN."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from engine.denoise.data import load_sequence
from engine.denoise.model import RecurrentDenoiser, pad_to
from engine.denoise.oidn import available, denoise_hwc
from engine.denoise.reproject import reprojection_grid
from engine.denoise.train import frame_inputs
from engine.images import linear_to_srgb
from engine.metrics import psnr, rel_mse, ssim


def _srgb(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(linear_to_srgb(x).astype(np.float32)).permute(2, 0, 1)


def denoise_sequence(
    model: RecurrentDenoiser, seq: dict, spp: int, recurrent: bool, warp: bool = True
):
    """Run the model over a sequence; returns (list of (H, W, 3) outputs, ms per frame).
    ``warp=False`` carries a reprojecting model's state unwarped (an inference-time ablation)."""
    outs, times, state, prev_d = [], [], None, None
    T = seq["noisy"].shape[0]
    with torch.no_grad():
        for t in range(T):
            r, a, n, d = (pad_to(x, model.multiple) for x in frame_inputs(seq, t, spp))
            t0 = time.perf_counter()
            motion = None
            if state is not None and model.cfg.reproject and warp:
                cams, k = seq["cameras"], seq["intrinsics"]
                motion = reprojection_grid(
                    d, cams[t : t + 1], k[t : t + 1], prev_d, cams[t - 1 : t], k[t - 1 : t]
                )
            out, new_state = model(r, a, n, d, state, motion, spp=spp)
            prev_d = d
            times.append((time.perf_counter() - t0) * 1000)
            state = new_state if recurrent else None
            H, W = seq["reference"].shape[1:3]
            outs.append(out[0, :, :H, :W].permute(1, 2, 0).numpy())
    return outs, float(np.median(times))


def evaluate(model: RecurrentDenoiser, data_dir: str | Path, spps=(1, 4, 16)) -> dict:
    """Mean PSNR/SSIM/relMSE per spp and method over the sequences in ``data_dir``; a sample
    count above the stored 1-spp samples is evaluated on sequences rendered with it
    (``--extra-spp``), e.g. ``spps=(64, 256, 1024)``."""
    files = sorted(Path(data_dir).glob("seq_*.safetensors"))
    oidn = available()
    results: dict = {"sequences": len(files), "spp": {}, "temporal": {}}
    methods = ["noisy", "per-frame", "recurrent"]
    if model.cfg.reproject and model.cfg.recurrent:
        methods.append("recurrent-unwarped")
    methods += ["oidn"] if oidn else []
    temporal = {m: {"still_mad": [], "moving_err": []} for m in methods}
    times = {m: [] for m in methods}
    seqs = [load_sequence(f) for f in files]
    for spp in spps:
        acc = {m: {"psnr": [], "ssim": [], "relmse": []} for m in methods}
        for seq in seqs:
            K = seq["noisy"].shape[1]
            if spp > K and f"noisy_spp{spp}" not in seq:
                continue
            T = seq["noisy"].shape[0]
            ref = [seq["reference"][t].numpy() for t in range(T)]
            outs = {
                "noisy": [
                    frame_inputs(seq, t, spp)[0][0].permute(1, 2, 0).numpy() for t in range(T)
                ]
            }
            outs["per-frame"], ms = denoise_sequence(model, seq, spp, recurrent=False)
            times["per-frame"].append(ms)
            outs["recurrent"], ms = denoise_sequence(model, seq, spp, recurrent=True)
            times["recurrent"].append(ms)
            if "recurrent-unwarped" in methods:
                outs["recurrent-unwarped"], _ = denoise_sequence(model, seq, spp, True, warp=False)
            if oidn:
                o = []
                for t in range(T):
                    t0 = time.perf_counter()
                    o.append(
                        denoise_hwc(
                            outs["noisy"][t], seq["albedo"][t].numpy(), seq["normal"][t].numpy()
                        )
                    )
                    times["oidn"].append((time.perf_counter() - t0) * 1000)
                outs["oidn"] = o
            for m in methods:
                for t in range(T):
                    acc[m]["psnr"].append(psnr(_srgb(outs[m][t]), _srgb(ref[t])))
                    acc[m]["ssim"].append(ssim(_srgb(outs[m][t]), _srgb(ref[t])))
                    acc[m]["relmse"].append(rel_mse(outs[m][t], ref[t]))
                if spp == 1:
                    still = bool(np.allclose(seq["cameras"][0], seq["cameras"][-1]))
                    diffs = [
                        np.abs(linear_to_srgb(outs[m][t]) - linear_to_srgb(outs[m][t - 1])).mean()
                        for t in range(1, T)
                    ]
                    if still:
                        temporal[m]["still_mad"] += diffs
                    else:
                        errs = [
                            np.abs(
                                (linear_to_srgb(outs[m][t]) - linear_to_srgb(outs[m][t - 1]))
                                - (linear_to_srgb(ref[t]) - linear_to_srgb(ref[t - 1]))
                            ).mean()
                            for t in range(1, T)
                        ]
                        temporal[m]["moving_err"] += errs
        results["spp"][spp] = {
            m: {k: float(np.mean(v)) for k, v in acc[m].items()} for m in methods if acc[m]["psnr"]
        }
    results["temporal"] = {
        m: {k: (float(np.mean(v)) if v else None) for k, v in d.items()}
        for m, d in temporal.items()
    }
    results["ms_per_frame"] = {m: float(np.median(v)) for m, v in times.items() if v}
    res = seqs[0]["reference"].shape[1:3] if seqs else (0, 0)
    results["resolution"] = f"{res[1]}x{res[0]}"
    return results
