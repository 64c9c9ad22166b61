"""``nsv``: open the viewer, or run a headless subcommand (render, bench, make-demo).

Subcommands are thin wrappers over ``engine`` (and the shared GL code for GL-points images).
User errors print one line, ``nsv: error: <file>: <problem>``, and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from viewer.assets import ASSETS, DEMO_SCENE, DENOISER, HOLOGAN, PRETRAINED_NETWORK, RENDERNET

SUBCOMMANDS = (
    "view",
    "render",
    "bench",
    "fit",
    "pretrain",
    "eval",
    "data",
    "train-denoiser",
    "make-demo",
    "import",
    "train-hologan",
    "train-rendernet",
    "rendernet",
    "eval-latent",
)


def _view_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nsv",
        description="Neural Scene Viewer. Opens the viewer on PATH (a .ply point cloud or a "
        "COLMAP folder), or on the bundled demo. Subcommands: " + ", ".join(SUBCOMMANDS[1:]) + ".",
    )
    p.add_argument("path", nargs="?", help="scene to open (default: the bundled demo)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    p.add_argument(
        "--latent",
        nargs="?",
        const=str(HOLOGAN),
        metavar="MODEL",
        help="start in Latent mode with a HoloGAN model folder (default: the bundled one)",
    )
    return p


def _render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nsv render", description="Render a scene headlessly to PNG.")
    p.add_argument("scene", help="a .ply point cloud or a COLMAP folder")
    p.add_argument(
        "--camera",
        default="default",
        help="'default' (the viewer's home view), the index or image name of a registered view, "
        "or a .camera.json written by the viewer's screenshot",
    )
    p.add_argument("--out", required=True, help="output PNG path")
    p.add_argument(
        "--mode",
        default="gl",
        choices=["gl", "color", "depth", "normal", "neural", "pathtrace"],
        help="neural needs a fitted scene; pathtrace a Mitsuba scene",
    )
    p.add_argument("--spp", type=int, default=64, help="samples per pixel for --mode pathtrace")
    p.add_argument("--size", help="WxH (default: the camera's own size, or 960x640)")
    p.add_argument("--point-size", type=int, default=2)
    p.add_argument("--scale", type=int, default=0, help="rasterizer pyramid level to show")
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    return p


def _bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nsv bench", description="Benchmarks.")
    p.add_argument(
        "what",
        choices=["raster", "neural", "denoise", "latent"],
        help="raster: rasterizer and render-mode timings; neural: Neural-mode frame "
        "time split into rasterization and network (on the demo's fitted model); denoise: "
        "path tracing + denoiser quality and time; latent: HoloGAN and RenderNet frame time",
    )
    p.add_argument("--points", default="1e6,1e7", help="comma-separated cloud sizes")
    p.add_argument(
        "--sizes",
        help="comma-separated WxH (raster: 512x512,1920x1080; neural: 256x256,512x512,1920x1080)",
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--data", help="denoise: held-out sequences (from `nsv data denoise`)")
    p.add_argument("--model", help="denoise: denoiser folder (default: the bundled one)")
    return p


def parse_size(text: str) -> tuple[int, int]:
    from engine.errors import NsvError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0 or w > 16384 or h > 16384:
            raise ValueError
    except ValueError:
        raise NsvError(f"--size {text!r}: expected WxH, e.g. 1280x720") from None
    return w, h


def resolve_camera(scene, spec: str, size: tuple[int, int] | None):
    """Turn a --camera argument into a Camera (see ``nsv render --help``)."""
    from engine.camera import Camera
    from engine.errors import NsvError
    from engine.navigation import home_navigator

    if spec == "default":
        w, h = size or (960, 640)
        return home_navigator(scene).camera(w, h)
    if spec.endswith(".json"):
        path = Path(spec)
        try:
            cam = Camera.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise NsvError(f"{path}: no such camera file") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise NsvError(f"{path}: not a valid camera file ({e})") from None
        return cam.resized(*size) if size else cam
    names = [v.name for v in scene.views]
    if spec.isdigit() and int(spec) < len(scene.views):
        cam = scene.views[int(spec)].camera
    elif spec in names:
        cam = scene.views[names.index(spec)].camera
    else:
        have = f"0..{len(names) - 1} or an image name" if names else "none (the scene has no views)"
        raise NsvError(f"--camera {spec!r}: no such registered view; available: {have}")
    return cam.resized(*size) if size else cam


def cmd_render(argv: list[str]) -> int:
    import imageio.v3 as iio

    from engine.errors import NsvError
    from engine.scene import load_scene

    a = _render_parser().parse_args(argv)
    scene = load_scene(a.scene)
    size = parse_size(a.size) if a.size else None
    cam = resolve_camera(scene, a.camera, size)
    if a.mode == "gl":
        from viewer.gl.offscreen import OffscreenPointRenderer

        image = OffscreenPointRenderer(scene).render(cam, a.point_size)
    elif a.mode == "neural":
        from engine.npbg.files import find_fitted_model
        from engine.npbg.model import NeuralPointModel
        from engine.npbg.render import NeuralRenderer

        found = find_fitted_model(a.scene)
        if found is None:
            raise NsvError(f"{a.scene}: no fitted neural model (run `nsv fit` first)")
        image = NeuralRenderer(NeuralPointModel.load(found)).render(cam).image
    elif a.mode == "pathtrace":
        source = getattr(scene, "pathtrace_source", None)
        if source is None:
            raise NsvError(f"{a.scene}: path tracing needs a Mitsuba scene (.xml or cornell-box)")
        from engine.pathtrace.mitsuba_scene import MitsubaScene
        from engine.pathtrace.progressive import to_display

        if a.spp < 1:
            raise NsvError("--spp must be at least 1")
        # The loader already parsed the file: reuse its scene (render() adapts the film size).
        ms = getattr(scene, "pathtrace_scene", None) or MitsubaScene(source, cam.width, cam.height)
        image = to_display(ms.render(cam, a.spp).radiance)
    else:
        from engine.points.render import PointCloudRenderer, PointRenderOptions

        r = PointCloudRenderer(scene, a.device)
        image = r.render(cam, PointRenderOptions(a.mode, a.point_size, a.scale)).image
    out = Path(a.out)
    if not out.parent.exists():
        raise NsvError(f"{out}: folder {out.parent} does not exist")
    tmp = out.with_name(out.name + ".tmp.png")
    iio.imwrite(tmp, image)
    tmp.replace(out)
    print(f"wrote {out} ({cam.width}x{cam.height}, mode {a.mode})")
    return 0


def cmd_bench(argv: list[str]) -> int:
    from viewer.bench import bench_neural, bench_raster

    a = _bench_parser().parse_args(argv)
    points = [int(float(p)) for p in a.points.split(",")]
    default = "512x512,1920x1080" if a.what == "raster" else "256x256,512x512,1920x1080"
    sizes = [parse_size(s) for s in (a.sizes or default).split(",")]
    if a.what == "raster":
        results = bench_raster(points, sizes, a.repeats, a.device, demo=DEMO_SCENE)
    elif a.what == "neural":
        results = bench_neural(sizes, a.repeats, a.device, demo=DEMO_SCENE)
    elif a.what == "latent":
        from viewer.bench import bench_latent

        results = bench_latent(a.repeats, a.device, HOLOGAN, RENDERNET)
    else:
        from viewer.bench import bench_denoise

        sizes = [parse_size(s) for s in (a.sizes or "256x256,512x512,1280x720").split(",")]
        results = bench_denoise(sizes, a.repeats, a.data, a.model or str(DENOISER))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


def cmd_make_demo(argv: list[str]) -> int:
    from engine.scene.demo import build_demo

    p = argparse.ArgumentParser(prog="nsv make-demo", description="Rebuild the demo cloud.")
    p.add_argument("mesh_dir", help="folder with armadillo.obj and bunny.obj")
    p.add_argument("out", nargs="?", default=str(DEMO_SCENE))
    p.add_argument("--points", type=int, default=240_000)
    a = p.parse_args(argv)
    n = build_demo(a.mesh_dir, a.out, a.points)
    print(f"wrote {a.out} ({n:,} points)")
    return 0


def _fit_args(p: argparse.ArgumentParser) -> None:
    from engine.npbg.fit import FitConfig

    d = FitConfig()
    p.add_argument("--steps", type=int, default=d.steps, help=f"total steps (default {d.steps})")
    p.add_argument("--crop", type=int, default=d.crop, help="training crop size in px")
    p.add_argument(
        "--max-side",
        type=int,
        default=d.max_side,
        help="photos are scaled so their longest side is at most this",
    )
    p.add_argument(
        "--holdout-every",
        type=int,
        default=d.holdout_every,
        help="hold out every N-th view for evaluation (0: none)",
    )
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--lr-descriptors", type=float, default=d.lr_descriptors)
    p.add_argument("--lr-network", type=float, default=d.lr_network)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--device", help="cpu, cuda or cuda:N")


def _fit_config(a):
    from engine.npbg.fit import FitConfig

    if a.steps <= 0 or a.crop < 16 or a.max_side < 16:
        from engine.errors import NsvError

        raise NsvError("--steps must be > 0, --crop and --max-side >= 16")
    return FitConfig(
        steps=a.steps,
        crop=a.crop,
        max_side=a.max_side,
        holdout_every=a.holdout_every,
        eval_every=a.eval_every,
        checkpoint_every=a.checkpoint_every,
        lr_descriptors=a.lr_descriptors,
        lr_network=a.lr_network,
        seed=a.seed,
        train_network=not getattr(a, "freeze_network", False),
    )


def _check_writable(out: Path) -> None:
    import os

    from engine.errors import NsvError

    parent = out if out.exists() else out.parent
    if not parent.exists() or not os.access(parent, os.W_OK):
        raise NsvError(f"{out}: cannot write here; choose another --out folder")


def _start_or_resume(job, out: Path, resume: bool) -> None:
    """``--resume`` loads the checkpoint in ``out``; without it an existing run is refused
    rather than overwritten. ``job`` is a Fitter or DenoiserTrainer."""
    from engine.errors import NsvError

    if resume:
        if not job.load_checkpoint():
            raise NsvError(f"{out}: no checkpoint to resume from")
        print(f"resumed at step {job.step}")
    elif (out / "checkpoint.safetensors").exists():
        raise NsvError(
            f"{out}: a training run is already there; pass --resume to continue it, "
            "or choose another --out"
        )


def _run_interruptible(job) -> tuple[bool, object]:
    """(True, ``job.run()``); on Ctrl+C save a checkpoint and return (False, None)."""
    try:
        return True, job.run()
    except KeyboardInterrupt:
        job.save_checkpoint()
        print(f"interrupted at step {job.step}; checkpoint saved, continue with --resume")
        return False, None


def cmd_fit(argv: list[str]) -> int:
    from engine.device import pick_device
    from engine.errors import NsvError
    from engine.npbg.files import default_model_dir
    from engine.npbg.fit import Fitter, load_network_weights, make_target
    from engine.scene import load_scene

    p = argparse.ArgumentParser(
        prog="nsv fit",
        description="Fit neural point descriptors (and the rendering network) to a scene's "
        "photos. Writes a fitted scene (model.safetensors + config.json) that `nsv SCENE` opens "
        "in Neural mode.",
    )
    p.add_argument("scene", help="a COLMAP folder with photos (or a synthetic scene)")
    p.add_argument("--out", help="output folder (default: SCENE/npbg)")
    p.add_argument(
        "--network",
        default="pretrained",
        help="network to start from: 'pretrained' (the bundled one, trained by "
        "`nsv pretrain` on synthetic scenes), 'none' (from scratch), or a file/folder "
        "written by `nsv pretrain` or `nsv fit`",
    )
    p.add_argument(
        "--freeze-network",
        action="store_true",
        help="fit descriptors only, keep the (pretrained) network fixed",
    )
    _fit_args(p)
    a = p.parse_args(argv)
    cfg = _fit_config(a)
    scene = load_scene(a.scene)
    out = Path(a.out) if a.out else default_model_dir(a.scene)
    _check_writable(out)
    network = {"pretrained": PRETRAINED_NETWORK, "none": None}.get(a.network, a.network)
    if network == PRETRAINED_NETWORK and not PRETRAINED_NETWORK.is_file():
        network = None
    if a.freeze_network and network is None:
        raise NsvError("--freeze-network needs a pretrained --network")
    device = pick_device(a.device)
    target = make_target(scene, cfg, device=device, name=str(Path(a.scene).resolve()))
    if network is not None:
        load_network_weights(target.model, network)
        print(f"starting from the network in {network}")
    fitter = Fitter([target], cfg, out)
    _start_or_resume(fitter, out, a.resume)
    views = target.views
    print(
        f"fitting {scene.num_points:,} points to {len(views.train)} photos "
        f"({len(views.test)} held out) on {device}"
    )
    if fitter.baseline is None:
        base = fitter.splat_baseline()
        print(f"splatting baseline (held-out): PSNR {base['psnr']:.2f} dB, SSIM {base['ssim']:.3f}")
    finished, res = _run_interruptible(fitter)
    if not finished:
        return 130
    if not res and views.test:
        res = fitter.evaluate()
    fitter.export(str(Path(a.scene).resolve()))
    if res:
        print(
            f"held-out PSNR {res['psnr']:.2f} dB, SSIM {res['ssim']:.3f} "
            f"(splatting: {fitter.baseline['psnr']:.2f} dB, {fitter.baseline['ssim']:.3f})"
        )
    print(f"wrote {out} in {fitter.history.seconds / 60:.1f} min; open it with: nsv {a.scene}")
    return 0


def cmd_pretrain(argv: list[str]) -> int:
    from engine.device import pick_device
    from engine.npbg.fit import Fitter, make_target
    from engine.npbg.model import atomic_save_tensors, atomic_write_text
    from engine.scene import load_scene

    p = argparse.ArgumentParser(
        prog="nsv pretrain",
        description="Pretrain the rendering network across several scenes (each with its own "
        "descriptors), the first stage of NPBG. Writes OUT/network.safetensors for "
        "`nsv fit --network`.",
    )
    p.add_argument("scenes", nargs="+", help="scene folders with photos")
    p.add_argument("--out", required=True)
    _fit_args(p)
    a = p.parse_args(argv)
    cfg = _fit_config(a)
    out = Path(a.out)
    _check_writable(out)
    device = pick_device(a.device)
    targets, net = [], None
    for s in a.scenes:
        t = make_target(load_scene(s), cfg, net=net, device=device, name=str(Path(s).resolve()))
        net = t.model.net
        targets.append(t)
    fitter = Fitter(targets, cfg, out)
    _start_or_resume(fitter, out, a.resume)
    finished, res = _run_interruptible(fitter)
    if not finished:
        return 130
    import json
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
                "seconds": round(fitter.history.seconds, 1),
                "held_out": res,
            },
            indent=1,
        ),
    )
    print(f"wrote {out / 'network.safetensors'}; held-out PSNR {res.get('psnr', float('nan')):.2f}")
    return 0


def cmd_eval(argv: list[str]) -> int:
    import json

    from engine.errors import NsvError
    from engine.npbg.evaluate import evaluate_model
    from engine.npbg.files import find_fitted_model
    from engine.npbg.model import NeuralPointModel
    from engine.scene import load_scene

    p = argparse.ArgumentParser(
        prog="nsv eval",
        description="Held-out PSNR / SSIM of a fitted neural scene vs. plain splatting.",
    )
    p.add_argument("scene", help="the scene with photos")
    p.add_argument("--model", help="fitted model folder (default: the one beside the scene)")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    model_dir = Path(a.model) if a.model else find_fitted_model(a.scene)
    if model_dir is None:
        raise NsvError(f"{a.scene}: no fitted model found; pass --model")
    model = NeuralPointModel.load(model_dir)
    cfg = (getattr(model, "summary", {}) or {}).get("config", {})
    res = evaluate_model(
        load_scene(a.scene), model, cfg.get("max_side", 512), cfg.get("holdout_every", 8)
    )
    n, b = res["neural"], res["splatting"]
    print(f"{res['views']} held-out views at {res['resolution']}:")
    print(
        f"  neural     PSNR {n['psnr']:.2f} dB  SSIM {n['ssim']:.3f}  "
        f"({n['ms_per_frame']:.0f} ms/frame)"
    )
    print(
        f"  splatting  PSNR {b['psnr']:.2f} dB  SSIM {b['ssim']:.3f}  "
        f"(best point size {b['point_size']} px)"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


def cmd_data(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="nsv data",
        description="Generate datasets. `synthetic`: a mesh scene with procedural materials, "
        "rendered headlessly from many cameras, written as a COLMAP folder with photos.",
    )
    p.add_argument(
        "kind",
        choices=["synthetic", "denoise", "capture", "objects", "voxels"],
        help="synthetic: NPBG scenes; denoise: path-traced sequences for the denoiser; "
        "capture: a textured scene photographed from a ring of known cameras, written as "
        "photos/, video.mp4 and nerf/transforms.json (+ truth.json) to try `nsv import` on; "
        "objects: procedural chairs from random poses for `nsv train-hologan`; voxels: "
        "voxelized shapes with Phong/toon/contour renders for `nsv train-rendernet`",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--sequences", type=int, default=16, help="denoise: number of sequences")
    p.add_argument("--frames", type=int, default=8, help="denoise: frames per sequence")
    p.add_argument(
        "--samples", type=int, default=4, help="denoise: independent 1-spp samples stored per frame"
    )
    p.add_argument("--ref-spp", type=int, default=256, help="denoise: reference samples")
    p.add_argument(
        "--mesh",
        action="append",
        help="denoise: a mesh file (OBJ/PLY, +Y up) placed in 2 of 3 scenes; repeatable",
    )
    p.add_argument("--scene", default="demo", help="'demo' (Armadillo + Bunny) or 'random'")
    p.add_argument(
        "--meshes",
        default=str(ASSETS.parent.parent / "shared" / "data" / "meshes"),
        help="folder with armadillo.obj and bunny.obj",
    )
    p.add_argument("--views", type=int, default=60)
    p.add_argument("--points", type=int, default=240_000)
    p.add_argument("--size", default="384x288")
    p.add_argument("--noise", type=float, default=0.0, help="point position noise (world units)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=8000, help="objects: number of images")
    p.add_argument("--res", type=int, default=64, help="objects/voxels: image size in pixels")
    p.add_argument("--shapes", type=int, default=800, help="voxels: number of shapes")
    p.add_argument("--per-shape", type=int, default=4, help="voxels: views per shape")
    a = p.parse_args(argv)
    from engine.errors import NsvError

    if a.kind == "voxels":
        from engine.latent.rendernet import write_rendernet_dataset

        info = write_rendernet_dataset(a.out, a.shapes, a.per_shape, a.res, seed=a.seed)
        print(
            f"wrote {a.out}/rendernet.safetensors: {info['shapes']} shapes, {info['views']} views"
        )
        return 0
    if a.kind == "objects":
        from engine.latent.objects import write_object_dataset

        info = write_object_dataset(a.out, a.n, a.res, a.seed)
        print(f"wrote {a.out}/objects.safetensors: {info['images']} chairs at {a.res}x{a.res} "
              f"(preview.png shows the first 64)")  # fmt: skip
        return 0
    if a.kind == "capture":
        from engine.synthetic.capture import write_capture

        w, h = parse_size(a.size if a.size != "384x288" else "320x240")
        views = a.views if a.views != 60 else 24
        info = write_capture(a.out, views=views, width=w, height=h, seed=a.seed)
        print(
            f"wrote {a.out}: photos/ ({info['views']} views {w}x{h}), video.mp4 "
            f"({info['video_frames']} frames), nerf/transforms.json, truth.json"
        )
        return 0
    if a.kind == "denoise":
        from engine.denoise.data import write_dataset

        w, _ = parse_size(a.size if "x" in a.size else f"{a.size}x{a.size}")
        for m in a.mesh or []:
            if not Path(m).is_file():
                raise NsvError(f"{m}: no such mesh file")
        paths = write_dataset(
            a.out, a.sequences, a.frames, w, a.samples, a.ref_spp, a.seed, meshes=a.mesh
        )
        print(f"wrote {len(paths)} sequences to {a.out}")
        return 0
    from engine.synthetic.render import write_synthetic_scene
    from engine.synthetic.scenes import demo_objects, random_objects

    w, h = parse_size(a.size)
    if a.scene == "demo":
        if not (Path(a.meshes) / "armadillo.obj").is_file():
            raise NsvError(f"{a.meshes}: needs armadillo.obj and bunny.obj (pass --meshes)")
        objects = demo_objects(a.meshes)
    elif a.scene == "random":
        objects = random_objects(a.seed, a.meshes if Path(a.meshes).is_dir() else None)
    else:
        raise NsvError(f"--scene {a.scene!r}: expected 'demo' or 'random'")
    info = write_synthetic_scene(a.out, objects, a.views, a.points, w, h, a.seed, a.noise)
    print(f"wrote {a.out}: {info['views']} views {w}x{h}, {info['points']:,} points")
    return 0


def cmd_train_denoiser(argv: list[str]) -> int:
    from engine.denoise.model import DenoiserConfig
    from engine.denoise.train import DenoiserTrainer, TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="nsv train-denoiser",
        description="Train the recurrent denoiser on sequences from `nsv data denoise`. Writes "
        "denoiser.safetensors + denoiser.json (and an atomic checkpoint) to --out.",
    )
    p.add_argument("data", help="folder of seq_*.safetensors")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--crop", type=int, default=d.crop)
    p.add_argument("--frames", type=int, default=d.frames)
    p.add_argument("--lr", type=float, default=d.lr)
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
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    out = Path(a.out)
    _check_writable(out)
    cfg = TrainConfig(
        steps=a.steps,
        batch=a.batch,
        crop=a.crop,
        frames=a.frames,
        lr=a.lr,
        checkpoint_every=a.checkpoint_every,
    )
    mcfg = DenoiserConfig(
        [int(c) for c in a.channels.split(",")],
        afm=not a.no_afm,
        recurrent=not a.no_recurrent,
        reproject=not a.no_reproject,
        residual=not a.direct,
    )
    trainer = DenoiserTrainer(a.data, out, cfg, mcfg)
    _start_or_resume(trainer, out, a.resume)
    print(
        f"training on {len(trainer.seqs)} sequences, "
        f"{sum(p.numel() for p in trainer.model.parameters()):,} parameters"
    )
    finished, _ = _run_interruptible(trainer)
    if not finished:
        return 130
    print(f"wrote {out} ({trainer.step} steps, {trainer.seconds / 60:.1f} min)")
    return 0


def cmd_import(argv: list[str]) -> int:
    from engine.capture.importer import DENSIFY_METHODS, ImportOptions

    d = ImportOptions()
    p = argparse.ArgumentParser(
        prog="nsv import",
        description="Make a scene folder you can open and fit from a folder of photos, a video, "
        "a NeRF capture (transforms.json) or a COLMAP folder: structure from motion (pycolmap), "
        "undistortion, and a dense point cloud.",
    )
    p.add_argument("source", help="photo folder, video file, transforms.json folder or COLMAP")
    p.add_argument("out", help="output scene folder (must not exist, or pass --force)")
    p.add_argument("--densify", choices=DENSIFY_METHODS, default=d.densify,
                   help="planesweep: dense depth maps (default); triangulate: more features "
                   "triangulated against the poses; none: keep the sparse SfM points")  # fmt: skip
    p.add_argument("--matcher", choices=["auto", "exhaustive", "sequential"], default=d.matcher)
    p.add_argument("--max-frames", type=int, default=d.max_frames, help="video: frames kept")
    p.add_argument("--dense-size", type=int, default=d.dense_side,
                   help="plane sweep: longest side of the depth maps in pixels")  # fmt: skip
    p.add_argument("--depths", type=int, default=d.num_depths, help="plane sweep: depth planes")
    p.add_argument("--camera-model", default=d.camera_model,
                   help="SfM camera model for photos (e.g. SIMPLE_RADIAL, OPENCV, PINHOLE)")  # fmt: skip
    p.add_argument("--reference", help="a scene (or truth .json) with the true cameras: report "
                   "the pose error of the result after a similarity alignment")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    a = p.parse_args(argv)
    from tqdm import tqdm

    from engine.capture.importer import import_capture
    from engine.capture.progress import Progress

    bar: list = [None, ""]

    def show(step) -> None:
        if step.stage == "found":
            tqdm.write(f"  {step.info}")
            return
        if step.stage != bar[1]:
            if bar[0] is not None:
                bar[0].close()
            bar[0] = tqdm(total=step.total or None, desc=step.stage, leave=False)
            bar[1] = step.stage
        if step.total:
            bar[0].n = step.done
            bar[0].refresh()

    opts = ImportOptions(
        densify=a.densify, matcher=a.matcher, max_frames=a.max_frames, dense_side=a.dense_size,
        num_depths=a.depths, camera_model=a.camera_model,
    )  # fmt: skip
    try:
        report = import_capture(a.source, a.out, opts, Progress(show), force=a.force)
    finally:
        if bar[0] is not None:
            bar[0].close()
    st = report["stages"]
    print(f"wrote {a.out} in {st['total']:.1f} s; open it with `nsv {a.out}`, "
          f"fit it with `nsv fit {a.out}`")  # fmt: skip
    if a.reference:
        err = compare_to_reference(a.out, a.reference)
        print(
            f"poses vs {a.reference} ({err['cameras']} cameras, similarity-aligned): rotation "
            f"{err['rotation_deg_mean']:.3f} deg mean / {err['rotation_deg_max']:.3f} max; "
            f"position {err['position_mean']:.4f} mean / {err['position_max']:.4f} max "
            f"({100 * err['position_mean_rel']:.2f}% / {100 * err['position_max_rel']:.2f}% "
            "of the camera extent)"
        )
    return 0


def compare_to_reference(scene_path, reference) -> dict:
    """Pose error of a scene's cameras against a reference scene or truth JSON, by image name
    (falling back to the name without folder and extension)."""
    from engine.capture.align import compare_cameras
    from engine.errors import NsvError
    from engine.scene.load import load_scene

    def cams(path) -> dict:
        if str(path).endswith(".json") and not Path(path).name.startswith("transforms"):
            from engine.synthetic.capture import read_truth

            return read_truth(path)
        return {v.name: v.camera for v in load_scene(path).views}

    ours, ref = cams(scene_path), cams(reference)
    if not set(ours) & set(ref):
        ours = {Path(k).stem: v for k, v in ours.items()}
        ref = {Path(k).stem: v for k, v in ref.items()}
    try:
        return compare_cameras(ours, ref)
    except ValueError as e:
        raise NsvError(f"{reference}: {e}") from None


def cmd_train_hologan(argv: list[str]) -> int:
    from engine.latent.train import HoloGANTrainConfig, HoloGANTrainer

    d = HoloGANTrainConfig()
    p = argparse.ArgumentParser(
        prog="nsv train-hologan",
        description="Train HoloGAN on `nsv data objects` images. Writes hologan.safetensors + "
        "hologan.json (EMA generator), samples/step_*.png grids and an atomic checkpoint.",
    )
    p.add_argument("data", help="folder with objects.safetensors")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr_g)
    p.add_argument("--lambda-z1", type=float, default=d.lambda_z1,
                   help="weight of the shape latent's identity loss (raise it when samples "
                   "differ in colour but not in shape)")  # fmt: skip
    p.add_argument("--lambda-shape", type=float, default=d.lambda_shape,
                   help="shape-seeking term on the 3D features (not in the paper; 0 = off)")  # fmt: skip
    p.add_argument("--sample-every", type=int, default=d.sample_every)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    from engine.device import pick_device

    out = Path(a.out)
    _check_writable(out)
    cfg = HoloGANTrainConfig(
        steps=a.steps, batch=a.batch, lr_g=a.lr, lr_d=a.lr, sample_every=a.sample_every,
        lambda_z1=a.lambda_z1, lambda_shape=a.lambda_shape,
        checkpoint_every=a.checkpoint_every,
    )  # fmt: skip
    trainer = HoloGANTrainer(a.data, out, cfg, device=pick_device(a.device))
    _start_or_resume(trainer, out, a.resume)
    n_g = sum(p.numel() for p in trainer.G.parameters())
    n_d = sum(p.numel() for p in trainer.D.parameters())
    print(f"training on {len(trainer.images)} images; G {n_g:,} / D {n_d:,} parameters")
    finished, _ = _run_interruptible(trainer)
    if not finished:
        return 130
    print(f"wrote {out} ({trainer.step} steps, {trainer.seconds / 60:.1f} min)")
    return 0


def cmd_train_rendernet(argv: list[str]) -> int:
    from engine.latent.rendernet import RenderNetTrainConfig, RenderNetTrainer

    d = RenderNetTrainConfig()
    p = argparse.ArgumentParser(
        prog="nsv train-rendernet",
        description="Train RenderNet on `nsv data voxels` (one head per shading style). Writes "
        "rendernet.safetensors + rendernet.json and an atomic checkpoint to --out.",
    )
    p.add_argument("data")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--device")
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    from engine.device import pick_device

    out = Path(a.out)
    _check_writable(out)
    cfg = RenderNetTrainConfig(steps=a.steps, batch=a.batch, lr=a.lr,
                               checkpoint_every=a.checkpoint_every)  # fmt: skip
    trainer = RenderNetTrainer(a.data, out, cfg, device=pick_device(a.device))
    _start_or_resume(trainer, out, a.resume)
    print(f"training on {len(trainer.data['images'])} views of {len(trainer.data['voxels'])} "
          f"shapes, {sum(p.numel() for p in trainer.model.parameters()):,} parameters")  # fmt: skip
    finished, _ = _run_interruptible(trainer)
    if not finished:
        return 130
    print(f"wrote {out} ({trainer.step} steps, {trainer.seconds / 60:.1f} min)")
    return 0


def cmd_rendernet(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="nsv rendernet",
        description="Voxelize a mesh (OBJ/PLY/STL/GLB/...) and render it with RenderNet.",
    )
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
    p = argparse.ArgumentParser(
        prog="nsv eval-latent",
        description="Measure the trained latent models: HoloGAN disentanglement (silhouette IoU "
        "when only z1 or only z2 changes) and pose control (a pose regressor trained on the "
        "synthetic renders); RenderNet held-out PSNR/SSIM per style.",
    )
    p.add_argument("--hologan", default=str(HOLOGAN))
    p.add_argument("--objects", help="the `nsv data objects` set (trains the pose regressor)")
    p.add_argument("--rendernet", default=str(RENDERNET))
    p.add_argument("--voxels", help="a held-out `nsv data voxels` set (unseen shapes)")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--json", help="also write the results here")
    p.add_argument(
        "--figures", help="write HoloGAN's samples, turntable and z1/z2 grid PNGs to this folder"
    )
    a = p.parse_args(argv)
    from engine.latent.evaluate import evaluate_all

    results = evaluate_all(a.hologan, a.objects, a.rendernet, a.voxels, a.pairs, a.figures)
    for line in results.pop("lines"):
        print(line)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


def cmd_view(argv: list[str]) -> int:
    a = _view_parser().parse_args(argv)
    from engine.npbg.files import open_scene

    path = a.path or str(DEMO_SCENE)
    loaded = open_scene(path)  # a bad path fails here with one line, before any window opens
    from viewer.app import run_viewer

    return run_viewer(path, a.device, loaded, latent=a.latent)


def main(argv: list[str] | None = None) -> int:
    from engine.errors import NsvError

    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv and argv[0] in SUBCOMMANDS else "view"
    if argv and argv[0] == cmd:
        argv = argv[1:]
    handler = {
        "fit": cmd_fit,
        "pretrain": cmd_pretrain,
        "eval": cmd_eval,
        "train-denoiser": cmd_train_denoiser,
        "data": cmd_data,
        "view": cmd_view,
        "render": cmd_render,
        "bench": cmd_bench,
        "make-demo": cmd_make_demo,
        "import": cmd_import,
        "train-hologan": cmd_train_hologan,
        "train-rendernet": cmd_train_rendernet,
        "rendernet": cmd_rendernet,
        "eval-latent": cmd_eval_latent,
    }
    try:
        return handler[cmd](argv)
    except NsvError as e:
        print(f"nsv: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nsv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
