"""Latent-model commands: `nsv train-hologan`, `nsv train-rendernet`, `nsv rendernet`, `nsv eval-latent`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from engine.assets import HOLOGAN, RENDERNET
from engine.device import pick_device
from engine.distributed import local_device
from engine.errors import NsvError
from engine.training import check_writable
from nsv.common import add_config_args, config_from_args, run_training
from nsv.options import add_data_out, add_device, add_json, add_resume, command_parser

HOLOGAN_OPTIONS = ["steps", "batch", "lr_g", "lr_d", "lambda_z1", "lambda_shape", "lambda_outline",
                   "lambda_diversity", "diversity_iou", "lambda_shape_code", "shape_code_dims",
                   "d_warmup", "pose_conditional", "z1_volume", "minibatch_std", "ema",
                   "sample_every", "checkpoint_every", "seed"]  # fmt: skip
RENDERNET_OPTIONS = ["steps", "batch", "lr", "checkpoint_every", "seed"]


def cmd_train_hologan(argv: list[str]) -> int:
    """Train HoloGAN on `nsv data objects` images. Writes hologan.safetensors + hologan.json
    (EMA generator), samples/step_*.png grids and an atomic checkpoint."""
    from engine.latent.train import HoloGANTrainConfig, HoloGANTrainer

    p = command_parser(cmd_train_hologan)
    add_data_out(p, "folder with objects.safetensors")
    add_config_args(p, HoloGANTrainConfig, HOLOGAN_OPTIONS, {
        "batch": "images per step (the global batch under torchrun)",
        "lr_g": "generator learning rate", "lr_d": "discriminator learning rate",
        "lambda_z1": "weight of the shape latent's identity loss (raise it when samples "
        "differ in colour but not in shape)",
        "lambda_shape": "shape-seeking term on the 3D features (not in the paper; 0 = off)",
        "lambda_outline": "texture keeps the outline: silhouettes with other z2 must match "
        "(not in the paper; 0 = off)",
        "lambda_diversity": "shape moves the outline: two z1 with the same z2 and pose may "
        "not overlap more than --diversity-iou (not in the paper; 0 = off)",
        "diversity_iou": "silhouette IoU above which --lambda-diversity pushes shapes apart",
        "z1_volume": "z1 also writes the generator's 4^3 volume, not only its styles (not in "
        "the paper; with --init, the new layer starts at zero)",
        "lambda_shape_code": "an encoder that sees only the silhouette must recover z1 "
        "(InfoGAN-style; not in the paper; 0 = off)",
        "shape_code_dims": "how many of z1's first entries the silhouette encoder recovers",
        "d_warmup": "discriminator-only steps before the generator trains (for warm starts)",
        "minibatch_std": "the discriminator sees the spread of each group of this many images "
        "(minibatch standard deviation, Karras et al. 2018; 0 = off): one shape for every z1 "
        "is easier to tell from the data",
        "ema": "decay of the exported generator's moving average of weights (a shorter one, "
        "e.g. 0.99, follows a warm-started generator that is still moving)",
        "pose_conditional": "the discriminator judges (image, pose) pairs with the dataset's "
        "camera poses (not in the paper): the shape cannot follow the azimuth",
    })  # fmt: skip
    add_device(p)
    add_resume(p)
    p.add_argument(
        "--init",
        help="start the generator from this HoloGAN folder (warm start; e.g. the bundled "
        "assets/hologan); the discriminator starts fresh (see --d-warmup)",
    )
    a = p.parse_args(argv)

    out = Path(a.out)
    check_writable(out)
    cfg = config_from_args(HoloGANTrainConfig, a, HOLOGAN_OPTIONS)
    trainer = HoloGANTrainer(a.data, out, cfg, device=pick_device(local_device(a.device)))
    if a.init and not a.resume:
        from engine.latent.train import load_generator

        init = load_generator(a.init)
        # z1_volume only adds a zero-initialised layer (a generator without it warm-starts one
        # with it and renders the same images); d_minibatch_std is the discriminator's.
        new = trainer.G.cfg
        same = replace(init.cfg, z1_volume=new.z1_volume, d_minibatch_std=new.d_minibatch_std)
        if same != new or (init.cfg.z1_volume and not new.z1_volume):
            raise NsvError(f"{a.init}: that generator has another configuration ({init.cfg})")
        for g in (trainer.G, trainer.G_ema):
            g.load_state_dict(init.state_dict(), strict=False)
        prior = getattr(init, "summary", {}) or {}
        trainer.warm_start = {
            k: prior[k] for k in ("steps", "seconds", "total_steps", "total_seconds") if k in prior
        }
        trainer.warm_start["from"] = str(a.init)  # fmt: skip
        print(f"starting the generator from {a.init}")
    n_g = sum(p.numel() for p in trainer.G.parameters())
    n_d = sum(p.numel() for p in trainer.D.parameters())
    what = f"training on {len(trainer.images)} images; G {n_g:,} / D {n_d:,} parameters"
    return run_training(trainer, out, a.resume, what)


def cmd_train_rendernet(argv: list[str]) -> int:
    """Train RenderNet on `nsv data voxels` (one head per shading style). Writes
    rendernet.safetensors + rendernet.json and an atomic checkpoint to --out."""
    from engine.latent.rendernet import RenderNetTrainConfig, RenderNetTrainer

    p = command_parser(cmd_train_rendernet)
    add_data_out(p, "folder with rendernet.safetensors")
    add_config_args(p, RenderNetTrainConfig, RENDERNET_OPTIONS,
                    {"batch": "views per step (the global batch under torchrun)"})  # fmt: skip
    add_device(p)
    add_resume(p)
    a = p.parse_args(argv)

    out = Path(a.out)
    check_writable(out)
    cfg = config_from_args(RenderNetTrainConfig, a, RENDERNET_OPTIONS)
    trainer = RenderNetTrainer(a.data, out, cfg, device=pick_device(local_device(a.device)))
    what = (f"training on {len(trainer.data['images'])} views of {len(trainer.data['voxels'])} "
            f"shapes, {sum(p.numel() for p in trainer.model.parameters()):,} parameters")  # fmt: skip
    return run_training(trainer, out, a.resume, what)


def cmd_hologan(argv: list[str]) -> int:
    """One image from the HoloGAN generator: the image Latent mode shows for the same seeds and
    pose (sliders at their defaults)."""
    p = command_parser(cmd_hologan)
    p.add_argument("--z1", type=int, default=0, help="shape seed (Latent mode's z1 seed)")
    p.add_argument("--z2", type=int, default=7, help="texture seed (Latent mode's z2 seed)")
    p.add_argument("--azimuth", type=float, default=30.0, help="degrees")
    p.add_argument("--elevation", type=float, default=25.0, help="degrees")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--size", type=int, default=256, help="output side in pixels")
    p.add_argument("--model", default=str(HOLOGAN), help="a HoloGAN folder (default: bundled)")
    p.add_argument("--out", required=True, help="PNG path")
    a = p.parse_args(argv)
    import imageio.v3 as iio

    from engine.latent.hologan import latent_from_seed
    from engine.latent.render import LatentOptions, LatentRenderer
    from engine.latent.train import load_generator

    if not 16 <= a.size <= 4096:
        raise NsvError(f"--size {a.size}: expected 16 to 4096 pixels")
    r = LatentRenderer(load_generator(a.model))
    opts = LatentOptions(latent_from_seed(a.z1, r.cfg.z1), latent_from_seed(a.z2, r.cfg.z2),
                         a.azimuth, a.elevation, a.scale, a.size)  # fmt: skip
    iio.imwrite(a.out, r.render(None, opts).image)
    print(f"wrote {a.out} ({a.size}x{a.size}, z1 {a.z1}, z2 {a.z2})")
    return 0


def cmd_rendernet(argv: list[str]) -> int:
    """Voxelize a mesh (OBJ/PLY/STL/GLB/...) and render it with RenderNet."""
    p = command_parser(cmd_rendernet)
    p.add_argument("mesh")
    p.add_argument("--out", required=True, help="PNG: RenderNet | conventional render")
    p.add_argument("--style", default="phong")
    p.add_argument("--azimuth", type=float, default=30.0)
    p.add_argument("--elevation", type=float, default=25.0)
    p.add_argument("--model", default=str(RENDERNET))
    p.add_argument("--size", type=int, default=256)
    a = p.parse_args(argv)
    import imageio.v3 as iio
    import numpy as np

    from engine.latent.rendernet import load_rendernet
    from engine.latent.voxel_render import VoxelRenderer

    r = VoxelRenderer(load_rendernet(a.model))
    r.set_mesh(a.mesh)
    img = r.render_pair(a.style, a.azimuth, a.elevation, a.size)
    iio.imwrite(a.out, np.concatenate(img, 1))
    print(f"wrote {a.out} (RenderNet | conventional, {a.style})")
    return 0


def cmd_eval_latent(argv: list[str]) -> int:
    """Measure the trained latent models: HoloGAN disentanglement (silhouette IoU when only z1
    or only z2 changes) and pose control (a pose regressor trained on the synthetic renders);
    RenderNet held-out PSNR/SSIM per style."""
    p = command_parser(cmd_eval_latent)
    p.add_argument("--hologan", default=str(HOLOGAN))
    p.add_argument("--objects", help="the `nsv data objects` set (trains the pose regressor)")
    p.add_argument("--rendernet", default=str(RENDERNET))
    p.add_argument("--voxels", help="a held-out `nsv data voxels` set (unseen shapes)")
    p.add_argument(
        "--kid-renders",
        help="an `nsv data objects` set NOT used in training (another --seed): HoloGAN's KID "
        "against it (needs --objects, whose renders train the feature network)",
    )
    p.add_argument("--pairs", type=int, default=200)
    add_json(p)
    p.add_argument(
        "--figures", help="write HoloGAN's samples, turntable and z1/z2 grid PNGs to this folder"
    )
    a = p.parse_args(argv)
    from engine.latent.evaluate import evaluate_all

    results = evaluate_all(
        a.hologan, a.objects, a.rendernet, a.voxels, a.pairs, a.figures, a.kid_renders
    )
    for line in results.pop("lines"):
        print(line)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0
