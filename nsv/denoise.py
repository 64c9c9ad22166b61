"""`nsv train-denoiser`."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.training import check_writable
from nsv.common import add_config_args, config_from_args, run_training

TRAIN_OPTIONS = ["steps", "batch", "crop", "frames", "lr", "max_spp", "checkpoint_every", "seed"]


def cmd_train_denoiser(argv: list[str]) -> int:
    from engine.denoise.model import DenoiserConfig
    from engine.denoise.train import DenoiserTrainer, TrainConfig

    p = argparse.ArgumentParser(
        prog="nsv train-denoiser",
        description="Train the recurrent denoiser on sequences from `nsv data denoise`. Writes "
        "denoiser.safetensors + denoiser.json (and an atomic checkpoint) to --out.",
    )
    p.add_argument("data", help="folder of seq_*.safetensors")
    p.add_argument("--out", required=True)
    add_config_args(p, TrainConfig, TRAIN_OPTIONS, {
        "batch": "sequences per step (the global batch under torchrun)",
        "crop": "crop size in px", "frames": "frames per training sequence",
        "max_spp": "inputs average 1..N of the stored 1-spp samples",
    })  # fmt: skip
    p.add_argument("--channels", default="24,32,48,64", help="encoder widths per level")
    p.add_argument("--no-afm", action="store_true", help="concatenate aux buffers instead")
    p.add_argument("--no-recurrent", action="store_true", help="no hidden state (ablation)")
    p.add_argument(
        "--direct",
        action="store_true",
        help="predict the image itself instead of a correction of the noisy input",
    )
    p.add_argument(
        "--no-reproject",
        action="store_true",
        help="carry the hidden state unwarped, as in the paper (ablation)",
    )
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    out = Path(a.out)
    check_writable(out)
    cfg = config_from_args(TrainConfig, a, TRAIN_OPTIONS)
    mcfg = DenoiserConfig(
        [int(c) for c in a.channels.split(",")],
        afm=not a.no_afm,
        recurrent=not a.no_recurrent,
        reproject=not a.no_reproject,
        residual=not a.direct,
    )
    trainer = DenoiserTrainer(a.data, out, cfg, mcfg)
    what = (f"training on {len(trainer.seqs)} sequences, "
            f"{sum(p.numel() for p in trainer.model.parameters()):,} parameters")  # fmt: skip
    return run_training(trainer, out, a.resume, what)
