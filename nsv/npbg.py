"""Neural point graphics commands: `nsv fit`, `nsv pretrain`, `nsv eval`, `nsv make-demo`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.assets import DEMO_SCENE, PRETRAINED_NETWORK
from engine.device import pick_device
from engine.distributed import local_device
from engine.errors import NsvError
from engine.training import check_writable
from nsv.common import add_config_args, cli_progress, config_from_args, train, was_given
from nsv.options import add_device, add_json, add_resume, command_parser

FIT_OPTIONS = ["steps", "crop", "max_side", "holdout_every", "eval_every", "checkpoint_every",
               "lr_descriptors", "lr_network", "lr_photometric", "lr_decay", "seed", "batch",
               "pose_every", "bf16", "environment_rows", "environment_sphere",
               "environment_shape", "scale_min", "scale_max", "photo_field",
               "ssim_weight", "minutes"]  # fmt: skip


DISTILL_OPTIONS = ["steps", "crop", "jitter_deg", "orbit_deg", "checkpoint_every"]


def _fit_args(p: argparse.ArgumentParser, net=None) -> None:
    """The fit's options and those of a network trained from scratch, whose defaults are
    ``net`` (a NetworkConfig; default: ``NetworkConfig()``)."""
    from engine.npbg.fit import FitConfig
    from engine.npbg.network import NetworkConfig

    net = net or NetworkConfig()

    add_config_args(p, FitConfig, FIT_OPTIONS, {
        "steps": "total steps", "crop": "training crop size in px",
        "max_side": "photos are scaled so their longest side is at most this",
        "holdout_every": "hold out every N-th view for evaluation (0: none)",
        "batch": "crops per step; under torchrun they are split over the processes",
        "pose_every": "refine the training photos' camera poses every N steps by aligning each "
                      "photo to the rendering (0: keep the poses as imported)",
        "bf16": "the network's convolutions in bfloat16 where the CPU has it natively",
        "lr_decay": "learning rates decay to 0 along a cosine over the run (off: constant)",
        "environment_rows": "rows of the environment map that paints what no point covers "
                            "(twice as many columns)",
        "environment_sphere": "the environment map lies on a sphere about the cameras at the "
                              "distance of the far points, so it moves with the view like the "
                              "walls it stands for (off: at infinity)",
        "environment_shape": "with --environment-sphere: each direction of the map at the far "
                             "points' distance there (a room is not a sphere)",
        "scale_min": "training photos are rescaled by a random factor from --scale-min to "
                     "--scale-max before cropping (robustness to zoom in the viewer)",
        "scale_max": "see --scale-min",
        "photo_field": "rows and columns of each photo's smooth gain field across the frame "
                       "(vignetting, a phone's local tone mapping); a held-out photo gets its "
                       "neighbours' (0: off)",
        "ssim_weight": "weight of the SSIM term in the loss (the rest is L1)",
        "minutes": "end the steps within about this many minutes of training: after 250 "
                   "and again after 1,000 steps the fit measures this machine's pace and lowers "
                   "--steps to what fits (0: exactly --steps; a --steps given alone also means "
                   "exactly)",
    })  # fmt: skip
    p.add_argument(
        "--no-photometric",
        action="store_true",
        help="do not learn a per-photo exposure / white balance (ablation)",
    )
    p.add_argument(
        "--no-environment",
        action="store_true",
        help="leave pixels without points empty instead of learning an environment map (ablation)",
    )
    add_resume(p)
    add_device(p)
    p.add_argument(
        "--channels",
        default=",".join(str(c) for c in net.channels),
        help="rendering network widths per convolved level, finest first (for a network "
        "trained from scratch; a pretrained --network brings its own) (default %(default)s)",
    )
    p.add_argument(
        "--convs",
        type=int,
        default=net.convs,
        help="convolutions per U-Net block (default %(default)s)",
    )
    p.add_argument(
        "--descriptor-dim",
        type=int,
        default=net.descriptor_dim,
        help="channels of each point's learned descriptor (for a network trained from scratch) "
        "(default %(default)s)",
    )
    p.add_argument(
        "--fold-finest",
        action="store_true",
        help="do not convolve the full-resolution level: fold it 2x2 into the next one and "
        "predict 2x2 pixels per half-resolution pixel (several times faster on a CPU)",
    )
    p.add_argument(
        "--pixel-head",
        type=int,
        default=0,
        help="with --fold-finest: width of a per-pixel full-resolution head that also sees "
        "the pixel's own descriptor (0: none)",
    )
    gated = p.add_mutually_exclusive_group()
    gated.add_argument(
        "--ungated",
        dest="gated",
        action="store_false",
        help="plain convolutions (about half the cost of gated ones)"
        + ("" if net.gated else " (default)"),
    )
    gated.add_argument(
        "--gated",
        dest="gated",
        action="store_true",
        help="gated convolutions (Yu et al. 2019)" + (" (default)" if net.gated else ""),
    )
    p.set_defaults(gated=net.gated)


def _network_config(a):
    from engine.npbg.network import NetworkConfig

    try:
        channels = [int(c) for c in a.channels.split(",")]
    except ValueError:
        raise NsvError(f"--channels {a.channels}: expected comma-separated integers") from None
    if a.convs < 1 or min(channels) < 1 or a.pixel_head < 0 or a.descriptor_dim < 1:
        raise NsvError("--convs, --descriptor-dim and every --channels width must be at least 1")
    if a.pixel_head and not a.fold_finest:
        raise NsvError("--pixel-head needs --fold-finest")
    scales = len(channels) + (1 if a.fold_finest else 0)
    return NetworkConfig(
        descriptor_dim=a.descriptor_dim,
        num_scales=scales,
        channels=channels,
        convs=a.convs,
        fold_finest=a.fold_finest,
        pixel_head=a.pixel_head,
        gated=a.gated,
    )


def _fit_config(a):
    """The FitConfig of parsed options ``a``, where a --steps without --minutes asks for
    exactly that many steps (no time budget)."""
    from engine.npbg.fit import FitConfig

    if a.steps <= 0 or a.crop < 16 or a.max_side < 16:
        raise NsvError("--steps must be > 0, --crop and --max-side >= 16")
    if not 0 < a.scale_min <= a.scale_max:
        raise NsvError("--scale-min must be > 0 and at most --scale-max")
    if not 0 <= a.ssim_weight <= 1:
        raise NsvError(f"--ssim-weight {a.ssim_weight}: expected 0 to 1")
    if not 0 <= a.photo_field <= 64:
        raise NsvError(f"--photo-field {a.photo_field}: expected 0 (off) to 64 rows")
    if a.minutes < 0:
        raise NsvError(f"--minutes {a.minutes}: expected 0 (no budget) or more")
    if was_given(a, "steps") and not was_given(a, "minutes"):
        a.minutes = 0.0
    return config_from_args(
        FitConfig,
        a,
        FIT_OPTIONS,
        train_network=not getattr(a, "freeze_network", False),
        photometric=not getattr(a, "no_photometric", False),
        environment=not getattr(a, "no_environment", False),
    )


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="fitted model folder (default: the one beside the scene)")


def _fitted_model(a) -> Path:
    """The fitted model folder a command works on: --model, else the one beside the scene."""
    from engine.npbg.files import find_fitted_model

    found = Path(a.model) if a.model else find_fitted_model(a.scene)
    if found is None:
        raise NsvError(f"{a.scene}: no fitted model found; run `nsv fit` first or pass --model")
    return found


def cmd_fit(argv: list[str]) -> int:
    """Fit neural point descriptors (and the rendering network) to a scene's photos. Writes a
    fitted scene (model.safetensors + config.json) that `nsv SCENE` opens in Neural mode."""
    from engine.npbg.files import default_model_dir
    from engine.npbg.fit import Fitter, load_network_weights, make_target, network_config_of
    from engine.npbg.network import FIT_NETWORK
    from engine.open_path import load_scene

    p = command_parser(cmd_fit)
    p.add_argument("scene", help="a COLMAP folder with photos (or a synthetic scene)")
    p.add_argument("--out", help="output folder (default: SCENE/npbg)")
    p.add_argument(
        "--network",
        default="none",
        help="network to start from: 'none' (a new one, trained from scratch with the fit: "
        "--channels, --descriptor-dim, --gated), 'pretrained' (the bundled gated network, "
        "trained by `nsv pretrain` on synthetic scenes), or a file/folder written by "
        "`nsv pretrain` or `nsv fit`",
    )
    p.add_argument(
        "--freeze-network",
        action="store_true",
        help="fit descriptors only, keep the (pretrained) network fixed",
    )
    _fit_args(p, FIT_NETWORK)
    a = p.parse_args(argv)
    cfg = _fit_config(a)
    with cli_progress() as progress:  # a capture opened the first time computes its points
        scene = load_scene(a.scene, progress)
    out = Path(a.out) if a.out else default_model_dir(a.scene)
    check_writable(out)
    network = {"pretrained": PRETRAINED_NETWORK, "none": None}.get(a.network, a.network)
    if network == PRETRAINED_NETWORK and not PRETRAINED_NETWORK.is_file():
        network = None
    if a.freeze_network and network is None:
        raise NsvError("--freeze-network needs a pretrained --network")
    device = pick_device(local_device(a.device))
    net_cfg = network_config_of(network) if network is not None else _network_config(a)
    target = make_target(
        scene, cfg, device=device, name=str(Path(a.scene).resolve()), net_cfg=net_cfg
    )
    if network is not None:
        load_network_weights(target.model, network)
        print(f"starting from the network in {network}")
    fitter = Fitter([target], cfg, out)
    views = target.views
    finished, _ = train(fitter, out, a.resume,
                        f"fitting {scene.num_points:,} points to {len(views.train)} photos "
                        f"({len(views.test)} held out) on {device}"
                        + (f", {fitter.world} processes" if fitter.world > 1 else ""))  # fmt: skip
    if not finished:
        return 130
    if not fitter.is_main:
        return 0
    res = fitter.finish(str(Path(a.scene).resolve()))
    if res:
        print(
            f"held-out PSNR {res['psnr']:.2f} dB, SSIM {res['ssim']:.3f} "
            f"(splatting: {fitter.baseline['psnr']:.2f} dB, {fitter.baseline['ssim']:.3f})"
        )
    print(f"wrote {out} in {fitter.seconds / 60:.1f} min; open it with: nsv {a.scene}")
    where = f" --model {out}" if a.out else ""
    print(f"for smooth flying on a CPU, add a preview network: nsv distill {a.scene}{where}")
    return 0


def cmd_pretrain(argv: list[str]) -> int:
    """Pretrain the rendering network across several scenes (each with its own descriptors), the
    first stage of NPBG. Writes OUT/network.safetensors for `nsv fit --network`."""
    from engine.images import atomic_save_tensors, atomic_write_text
    from engine.npbg.fit import Fitter, make_target
    from engine.open_path import load_scene

    p = command_parser(cmd_pretrain)
    p.add_argument("scenes", nargs="+", help="scene folders with photos")
    p.add_argument("--out", required=True)
    _fit_args(p)
    a = p.parse_args(argv)
    cfg = _fit_config(a)
    if not was_given(a, "minutes"):  # pretraining runs its steps, however long they take
        cfg.minutes = 0.0
    out = Path(a.out)
    check_writable(out)
    device = pick_device(local_device(a.device))
    net_cfg = _network_config(a)
    targets, net = [], None
    for s in a.scenes:
        t = make_target(
            load_scene(s),
            cfg,
            net=net,
            device=device,
            name=str(Path(s).resolve()),
            net_cfg=net_cfg,
        )
        net = t.model.net
        targets.append(t)
    fitter = Fitter(targets, cfg, out)
    finished, res = train(
        fitter, out, a.resume, f"pretraining on {len(targets)} scenes on {device}"
    )
    if not finished:
        return 130
    if not fitter.is_main:
        return 0
    from dataclasses import asdict

    atomic_save_tensors(
        {f"net.{k}": v.detach().cpu() for k, v in net.state_dict().items()},
        out / "network.safetensors",
    )
    atomic_write_text(
        out / "network.json",
        json.dumps(
            {
                "network": asdict(net.cfg),
                "scenes": a.scenes,
                "steps": fitter.step,
                "seconds": round(fitter.seconds, 1),
                "held_out": res,
            },
            indent=1,
        ),
    )
    print(f"wrote {out / 'network.safetensors'}; held-out PSNR {res.get('psnr', float('nan')):.2f}")
    return 0


def cmd_distill(argv: list[str]) -> int:
    """Train a fast preview network for a fitted neural scene: it reproduces the scene's own
    network from the same descriptors, and the viewer shows it while the camera moves (the full
    network once it stops). Stored in the model folder."""
    from engine.npbg.distill import DistillConfig, preview_distiller
    from engine.npbg.model import NeuralPointModel
    from engine.open_path import load_scene

    p = command_parser(cmd_distill)
    p.add_argument("scene", help="the scene with photos (their cameras are the training views)")
    _add_model(p)
    p.add_argument(
        "--network",
        default="pretrained",
        help="fast network to start from: 'pretrained' (the bundled one), 'model' (the model's "
        "own preview network: distil it longer) or a folder written by "
        "`nsv pretrain --fold-finest`",
    )
    add_config_args(p, DistillConfig, DISTILL_OPTIONS, {
        "steps": "training steps", "crop": "training crop size in px",
        "jitter_deg": "views are turned up to this many degrees from the photo cameras",
        "orbit_deg": "half the views orbit the point the photos look at by up to this many "
                     "degrees and dolly 0.8-1.5x, as a user flies (0: photo cameras only)",
    })  # fmt: skip
    add_resume(p)
    add_device(p)
    a = p.parse_args(argv)
    if a.steps <= 0 or a.crop < 32:
        raise NsvError("--steps must be > 0 and --crop >= 32")
    model_dir = _fitted_model(a)
    device = pick_device(local_device(a.device))
    model = NeuralPointModel.load(model_dir, device)
    cfg = config_from_args(DistillConfig, a, DISTILL_OPTIONS)
    check_writable(model_dir)
    network = None if a.network == "pretrained" else a.network
    job = preview_distiller(model, load_scene(a.scene), model_dir, cfg, network)
    finished, _ = train(job, job.out, a.resume,
                        f"distilling a {sum(p.numel() for p in job.student.parameters()):,}-"
                        f"parameter preview network from {model_dir} on {device}",
                        instead="delete that folder to start over")  # fmt: skip
    if not finished:
        return 130
    print(f"wrote the preview network into {model_dir} ({job.step} steps, "
          f"{job.seconds / 60:.1f} min; {job.match_db():.1f} dB vs the full network on "
          "training crops)")  # fmt: skip
    return 0


def cmd_eval(argv: list[str]) -> int:
    """Held-out PSNR / SSIM / colour bias of a fitted neural scene vs. plain splatting."""
    from engine.npbg.evaluate import evaluate_model
    from engine.npbg.model import NeuralPointModel
    from engine.open_path import load_scene

    p = command_parser(cmd_eval)
    p.add_argument("scene", help="the scene with photos")
    _add_model(p)
    add_json(p)
    p.add_argument(
        "--figures", help="write photo | neural | splatting PNGs of each held-out view here"
    )
    p.add_argument("--max-side", type=int,
                   help="evaluate with the photos scaled to this longest side (default: the "
                   "fit's), e.g. half the photos' resolution")  # fmt: skip
    p.add_argument("--native", action="store_true",
                   help="draw each view at its own resolution rather than at the fit's scale "
                   "resampled, as the viewer shows it")  # fmt: skip
    p.add_argument("--passes", type=int, default=4,
                   help="each view the mean of this many passes drawn offset by part of a "
                   "pixel, 1 to 4, as the viewer's still frame once its passes are done "
                   "(default 4)")  # fmt: skip
    a = p.parse_args(argv)
    if not 1 <= a.passes <= 4:
        raise NsvError(f"--passes {a.passes}: expected 1 to 4")
    if a.max_side is not None and not 16 <= a.max_side <= 16384:
        raise NsvError(f"--max-side {a.max_side}: expected 16 to 16384 pixels")
    model_dir = _fitted_model(a)
    model = NeuralPointModel.load(model_dir)
    cfg = (getattr(model, "summary", {}) or {}).get("config", {})
    res = evaluate_model(
        load_scene(a.scene),
        model,
        a.max_side or cfg.get("max_side", 512),
        cfg.get("holdout_every", 8),
        a.figures,
        at_fit_scale=not a.native,
        passes=a.passes,
    )
    n, b = res["neural"], res["splatting"]
    how = (
        [f"drawn at {res['drawn_at']}, the fit's scale, and resampled"] if "drawn_at" in res else []
    )
    how += [f"the mean of {a.passes} offset passes"] if a.passes > 1 else []
    how_text = f" ({'; '.join(how)})" if how else ""
    print(f"{res['views']} held-out views at {res['resolution']}{how_text}:")
    print(
        f"  neural     PSNR {n['psnr']:.2f} dB  SSIM {n['ssim']:.3f}  "
        f"colour bias {n['colour_bias']:.1f}/255  ({n['ms_per_frame']:.0f} ms/frame)"
    )
    if "preview" in res:
        v = res["preview"]
        print(
            f"  preview    PSNR {v['psnr']:.2f} dB  SSIM {v['ssim']:.3f}  "
            f"colour bias {v['colour_bias']:.1f}/255  ({v['ms_per_frame']:.0f} ms/frame; "
            "shown while the camera moves)"
        )
    print(
        f"  splatting  PSNR {b['psnr']:.2f} dB  SSIM {b['ssim']:.3f}  "
        f"(best point size {b['point_size']} px)"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    if a.figures:
        print(f"wrote photo | neural | splatting figures to {a.figures}")
    return 0


def cmd_export(argv: list[str]) -> int:
    """Write a fitted neural scene as a 3D Gaussian Splatting PLY that other viewers open
    (SuperSplat, SIBR, gsplat): one splat per point, coloured with what the fitted model renders
    there, averaged over the capture's cameras."""
    from tqdm import tqdm

    from engine.npbg.export import bake_points, export_gaussians
    from engine.npbg.model import NeuralPointModel
    from engine.open_path import load_scene

    p = command_parser(cmd_export)
    p.add_argument("scene", help="the fitted scene (its cameras are the views colours come from)")
    p.add_argument("--out", required=True, help="the .ply to write")
    _add_model(p)
    p.add_argument("--size", type=int, default=384,
                   help="render the cameras at most this many pixels wide (default 384)")  # fmt: skip
    a = p.parse_args(argv)
    if not a.out.lower().endswith(".ply"):
        raise NsvError(f"--out {a.out}: the Gaussian splatting format is a .ply file")
    if a.size < 16:
        raise NsvError("--size must be at least 16")
    model_dir = _fitted_model(a)
    model = NeuralPointModel.load(model_dir)
    cams = [v.camera for v in load_scene(a.scene).views]
    if not cams:
        raise NsvError(f"{a.scene}: no cameras to take the points' colours from")
    bar = tqdm(total=len(cams), unit="view", desc="baking colours")
    baked = bake_points(model, cams, a.size, lambda i, n: bar.update(i - bar.n))
    bar.close()
    export_gaussians(baked, a.out)
    print(f"wrote {a.out}: {baked.seen:,} Gaussians ({baked.total - baked.seen:,} points no "
          f"camera sees left out); open it with `nsv {a.out}`")  # fmt: skip
    return 0


def cmd_make_demo(argv: list[str]) -> int:
    """Rebuild the demo cloud."""
    from engine.synthetic.demo import build_demo

    p = command_parser(cmd_make_demo)
    p.add_argument("mesh_dir", help="folder with armadillo.obj and bunny.obj")
    p.add_argument("out", nargs="?", default=str(DEMO_SCENE))
    p.add_argument("--points", type=int, default=240_000)
    a = p.parse_args(argv)
    n = build_demo(a.mesh_dir, a.out, a.points)
    print(f"wrote {a.out} ({n:,} points)")
    return 0
