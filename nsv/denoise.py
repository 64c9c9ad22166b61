"""`nsv train-denoiser` and `nsv denoise`."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

from engine.device import pick_device
from engine.errors import NsvError
from engine.training import check_writable
from nsv.common import add_config_args, config_from_args, run_training
from nsv.options import add_data_out, add_device, add_resume, command_parser

TRAIN_OPTIONS = [
    "steps", "batch", "crop", "frames", "lr", "max_spp", "high_spp", "checkpoint_every", "seed"
]  # fmt: skip


def cmd_train_denoiser(argv: list[str]) -> int:
    """Train a denoiser on sequences from `nsv data denoise`: the temporal kernel predictor
    (--arch kernel, default) or the recurrent autoencoder. Writes denoiser.safetensors +
    denoiser.json (and an atomic checkpoint) to --out."""
    from engine.denoise.kpcn import KernelConfig
    from engine.denoise.model import DenoiserConfig
    from engine.denoise.train import DenoiserTrainer, TrainConfig

    p = command_parser(cmd_train_denoiser)
    add_data_out(p, "folder of seq_*.safetensors")
    add_config_args(p, TrainConfig, TRAIN_OPTIONS, {
        "batch": "sequences per step (the global batch under torchrun)",
        "crop": "crop size in px", "frames": "frames per training sequence",
        "max_spp": "inputs average 1..N of the stored 1-spp samples",
        "high_spp": "share of crops imitating 8..1024-spp inputs",
    })  # fmt: skip
    p.add_argument(
        "--arch",
        choices=["kernel", "recurrent"],
        default="kernel",
        help="kernel: per-pixel filters over the noisy input and the reprojected previous "
        "output (KPCN); recurrent: the autoencoder with a hidden state (Chaitanya et al.)",
    )
    p.add_argument("--channels", help="widths per level (kernel: 24,32,48; recurrent: 24,32,48,64)")
    p.add_argument("--init", help="start from the weights of this model folder (warm start; "
                   "with wider --channels its function is kept and the new channels learn)")  # fmt: skip
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
    p.add_argument(
        "--oidn-guide",
        action="store_true",
        help="kernel: also give the network Intel OIDN's output for each frame, blended in per "
        "pixel before the temporal step (--init may name a model without it)",
    )
    p.add_argument(
        "--fast-guide-below",
        type=int,
        default=0,
        metavar="SPP",
        help="with --oidn-guide: inputs of fewer samples per pixel get OIDN's fast preset as "
        "their guide (about half the time on a CPU), the others its high one (0: always high; "
        "--init may name a model trained with another setting)",
    )
    p.add_argument(
        "--history-clamp",
        type=float,
        default=0.0,
        metavar="TOL",
        help="kernel without --oidn-guide: keep the filtered previous output within exp(±TOL) "
        "of this frame's spatial result, so fireflies and lights are not carried (0: off; "
        "--init may name a model trained without it)",
    )
    add_resume(p)
    a = p.parse_args(argv)
    out = Path(a.out)
    check_writable(out)
    cfg = config_from_args(TrainConfig, a, TRAIN_OPTIONS)

    try:
        channels = [int(c) for c in a.channels.split(",")] if a.channels else None
    except ValueError:
        raise NsvError(f"--channels {a.channels!r}: expected widths like 24,32,48") from None
    if a.arch == "kernel":
        if channels is not None and len(channels) != 3:
            raise NsvError("--channels: the kernel predictor has 3 levels (e.g. 24,32,48)")
        mcfg = KernelConfig(
            channels=channels or [24, 32, 48],
            recurrent=not a.no_recurrent,
            reproject=not a.no_reproject,
            oidn=a.oidn_guide,
            history_clamp=a.history_clamp,
            fast_guide_below=a.fast_guide_below,
        )
        if a.fast_guide_below and not a.oidn_guide:
            raise NsvError("--fast-guide-below: only a model with --oidn-guide has a guide")
        if a.fast_guide_below < 0:
            raise NsvError(f"--fast-guide-below {a.fast_guide_below}: expected 0 (off) or more")
        if a.history_clamp and a.oidn_guide:
            raise NsvError("--history-clamp: the OIDN-guided model clamps to its guide already")
        if not 0 <= a.history_clamp <= 10:
            raise NsvError(f"--history-clamp {a.history_clamp}: expected 0 (off) to 10")
    else:
        if a.oidn_guide or a.history_clamp:
            raise NsvError("--oidn-guide and --history-clamp need --arch kernel")
        mcfg = DenoiserConfig(
            channels or [24, 32, 48, 64],
            afm=not a.no_afm,
            recurrent=not a.no_recurrent,
            reproject=not a.no_reproject,
            residual=not a.direct,
        )
    trainer = DenoiserTrainer(a.data, out, cfg, mcfg)
    if a.init and not a.resume:
        from engine.denoise.train import load_denoiser

        init = load_denoiser(a.init)
        mine = trainer.model.cfg
        if isinstance(mine, KernelConfig) and isinstance(init.cfg, KernelConfig):
            # The clamp and the guide's preset change no weight: a model trained with other
            # settings warm-starts this one.
            init.cfg = replace(
                init.cfg, history_clamp=mine.history_clamp, fast_guide_below=mine.fast_guide_below
            )
        if isinstance(mine, KernelConfig) and init.cfg == replace(mine, oidn=False):
            trainer.model.load_compatible(init.state_dict())  # adds the OIDN guide to it
        elif isinstance(mine, KernelConfig) and init.cfg == replace(
            mine, channels=init.cfg.channels
        ):
            trainer.model.load_wider(init.state_dict(), init.cfg.channels)  # --channels wider
        elif init.cfg != mine:
            raise NsvError(f"{a.init}: that model has another configuration ({init.cfg})")
        else:
            trainer.model.load_state_dict(init.state_dict())
    what = (f"training on {len(trainer.seqs)} sequences, "
            f"{sum(p.numel() for p in trainer.model.parameters()):,} parameters")  # fmt: skip
    return run_training(trainer, out, a.resume, what)


def cmd_denoise(argv: list[str]) -> int:
    """Denoise your own rendered sequence. IN_DIR holds per frame NNNN either color_NNNN.exr,
    albedo_NNNN.exr, normal_NNNN.exr (+ optional depth_NNNN.exr: z-depth), or one multi-layer
    EXR with Blender Cycles' passes (Combined or Image, Denoising Albedo, Denoising Normal,
    optional Depth); optional cameras.json ({"frames": [{"world_to_camera": 4x4, "fx", "fy",
    "cx", "cy"}]}, OpenCV convention) lets the temporal denoiser follow the camera. Writes
    OUT_DIR/NNNN.exr (linear)."""
    from tqdm import tqdm

    from engine.denoise.sequence import denoise_sequence, write_exr
    from engine.pathtrace.progressive import to_display

    p = command_parser(cmd_denoise)
    p.add_argument("input", help="folder of the rendered frames")
    p.add_argument("output", help="folder for the denoised frames")
    p.add_argument("--denoiser", choices=["ours", "oidn"], default="ours",
                   help="ours: the bundled temporal denoiser (default); oidn: Intel Open Image "
                   "Denoise on each frame alone")  # fmt: skip
    p.add_argument("--spp", type=int, default=16,
                   help="samples per pixel of the input frames (default 16): the denoiser "
                   "keeps more of the input as it grows")  # fmt: skip
    p.add_argument("--still", action="store_true",
                   help="the camera does not move: reuse the previous output without cameras")  # fmt: skip
    p.add_argument("--png", action="store_true", help="also write NNNN.png sRGB previews")
    p.add_argument("--model", help="a denoiser folder (default: the bundled one)")
    add_device(p)
    a = p.parse_args(argv)
    if a.spp < 1:
        raise NsvError("--spp must be at least 1")
    inp, out = Path(a.input), Path(a.output)
    device = pick_device(a.device)
    frames = denoise_sequence(inp, a.denoiser, a.spp, a.still,
                              Path(a.model) if a.model else None, device)  # fmt: skip
    zeroed: list[str] = []
    n = 0
    with tqdm(desc=f"denoising ({a.denoiser})", unit="frame") as bar:
        first = next(frames)  # a bad input stops here, before anything is written
        out.mkdir(parents=True, exist_ok=True)
        check_writable(out)
        for f, img in itertools.chain([first], frames):
            write_exr(out / f"{f.name}.exr", img)
            if a.png:
                import imageio.v3 as iio

                iio.imwrite(out / f"{f.name}.png", to_display(img))
            if f.zeroed:
                zeroed.append(f"{f.name} ({f.zeroed})")
            n += 1
            bar.update()
    if zeroed:
        print(f"non-finite values set to 0 in {len(zeroed)} frame(s): {', '.join(zeroed[:10])}"
              + (" ..." if len(zeroed) > 10 else ""))  # fmt: skip
    print(f"wrote {n} denoised frame(s) to {out}")
    return 0
