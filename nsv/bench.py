"""`nsv bench`: timings and quality benchmarks on this machine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.assets import DEMO_SCENE, DENOISER, HOLOGAN, RENDERNET
from engine.errors import NsvError
from nsv.common import parse_size
from nsv.options import add_choice, add_device, add_json


def _bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nsv bench", description="Benchmarks.")
    add_choice(p, "what", {
        "raster": "rasterizer and render-mode timings",
        "neural": "Neural-mode frame time split into rasterization and network (on the demo's "
                  "fitted model)",
        "denoise": "path tracing + denoiser quality and time",
        "latent": "HoloGAN and RenderNet frame time",
        "viewer": "the real window, a scripted orbit per mode: first moving frame, p50/p95 while "
                  "moving, time to full quality, and fitting steps/s in the window vs without one",
        "fit": "a fit of --scene (photos with cameras, from `nsv import`) as `nsv fit` runs "
               "it: time per step, a held-out evaluation, and the whole fit projected",
        "lod": "level-of-detail build / cached open and moving frame time of a huge synthetic "
               "cloud (--points, one count)",
    })  # fmt: skip
    p.add_argument("--points", default="1e6,1e7", help="comma-separated cloud sizes")
    p.add_argument(
        "--sizes",
        help="comma-separated WxH (raster: 512x512,1920x1080; neural: 256x256,512x512,1920x1080)",
    )
    p.add_argument("--repeats", type=int, default=5)
    add_device(p)
    add_json(p)
    p.add_argument("--data", help="denoise: held-out sequences (from `nsv data denoise`)")
    p.add_argument(
        "--model",
        help="denoise: denoiser folder (default: the bundled one); neural: a fitted scene "
        "folder to time instead of the demo's",
    )
    p.add_argument(
        "--spp",
        default="1,4,16,64,256,1024",
        help="denoise: sample counts to judge at (counts the data has no samples for are skipped)",
    )
    p.add_argument("--modes", help="viewer: comma-separated mode keys, 'pathtrace+denoise' (path "
                   "trace with key N) and 'fit' (default gl,color,neural,pathtrace,"
                   "pathtrace+denoise,fit); 'gaussians' flies a 1M-Gaussian scene made over the "
                   "demo's surfaces (or --scene, a splatting file)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=3.0, help="viewer: length of each orbit")
    p.add_argument("--target-ms", type=float, help="viewer: the moving frame budget (default: the "
                   "viewer's 40 ms)")  # fmt: skip
    p.add_argument("--scene", help="viewer: the scene for the point and neural modes (default: "
                   "the bundled demo); fit: the scene to fit")  # fmt: skip
    p.add_argument("--steps", type=int, default=30, help="fit: training steps timed")
    p.add_argument("--viewport", help="viewer: resize the window so the viewport is WxH pixels "
                   "(default: the first-run window's)")  # fmt: skip
    return p


def cmd_bench(argv: list[str]) -> int:
    from viewer.bench import bench_neural, bench_raster

    a = _bench_parser().parse_args(argv)
    points = [int(float(p)) for p in a.points.split(",")]
    default = "512x512,1920x1080" if a.what == "raster" else "256x256,512x512,1920x1080"
    sizes = [parse_size(s) for s in (a.sizes or default).split(",")]
    if a.what == "raster":
        results = bench_raster(points, sizes, a.repeats, a.device, demo=DEMO_SCENE)
    elif a.what == "neural":
        results = bench_neural(sizes, a.repeats, a.device, demo=DEMO_SCENE, model=a.model)
    elif a.what == "fit":
        from engine.device import pick_device
        from engine.npbg.bench import bench_fit

        if not a.scene:
            raise NsvError("nsv bench fit needs --scene: a scene folder with photos (nsv import)")
        results = bench_fit(a.scene, a.steps, pick_device(a.device))
    elif a.what == "lod":
        from viewer.bench import bench_lod

        results = bench_lod(points[0], sizes[0] if a.sizes else (782, 796))
    elif a.what == "viewer":
        import viewer.modes  # noqa: F401  (the modes the viewer draws itself: gaussians)
        from engine.modes import MODES
        from viewer.bench_viewer import bench_viewer

        modes = a.modes.split(",") if a.modes else None
        known = [*MODES, "pathtrace+denoise", "fit"]
        for m in modes or []:
            if m not in known:
                raise NsvError(f"--modes {m!r}: no such mode (expected {', '.join(known)})")
        viewport = parse_size(a.viewport) if a.viewport else None
        results = bench_viewer(Path(a.scene) if a.scene else DEMO_SCENE, a.seconds, modes,
                               a.target_ms, viewport)  # fmt: skip
    elif a.what == "latent":
        from viewer.bench import bench_latent

        results = bench_latent(a.repeats, a.device, HOLOGAN, RENDERNET)
    else:
        from viewer.bench import bench_denoise

        sizes = [parse_size(s) for s in (a.sizes or "256x256,512x512,1280x720").split(",")]
        try:
            spps = tuple(int(x) for x in a.spp.split(","))
        except ValueError:
            raise NsvError(f"--spp {a.spp!r}: expected sample counts like 1,4,16") from None
        results = bench_denoise(sizes, a.repeats, a.data, a.model or str(DENOISER), spps, a.device)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0
