"""``nsv bench raster``: rasterizer throughput plus frame times of both plain render modes."""

from __future__ import annotations

from pathlib import Path

from engine.bench import bench_rasterizer, time_call
from engine.device import cpu_bf16, describe, pick_device
from engine.navigation import home_navigator
from engine.open_path import load_scene
from engine.points.render import PointCloudRenderer, PointRenderOptions


def bench_raster(points, sizes, repeats: int, device: str | None, demo: Path) -> dict:
    results = {"rasterizer": bench_rasterizer(points, sizes, repeats, device), "modes": []}
    if not Path(demo).is_file():
        return results
    scene = load_scene(demo)
    dev = pick_device(device)
    nav = home_navigator(scene)
    print(f"render modes on the demo scene ({scene.num_points:,} points), point size 2:")
    torch_r = PointCloudRenderer(scene, dev)
    try:
        from viewer.gl.offscreen import OffscreenPointRenderer

        gl_r = OffscreenPointRenderer(scene)
    except Exception as e:
        print(f"  OpenGL points: unavailable ({e})")
        gl_r = None
    for w, h in sizes:
        cam = nav.camera(w, h)
        entries = []
        if gl_r is not None:
            ms = time_call(lambda cam=cam: gl_r.render(cam, 2), dev, repeats)
            entries.append(("OpenGL points", gl_r.renderer_name, ms))
        for mode in ("color", "depth", "normal"):
            opts = PointRenderOptions(mode, 2)
            ms = time_call(lambda cam=cam, o=opts: torch_r.render(cam, o), dev, repeats)
            entries.append((f"rasterizer {mode}", describe(dev), ms))
        for name, where, ms in entries:
            results["modes"].append(
                {"mode": name, "device": where, "width": w, "height": h, "ms": ms}
            )
            print(f"  {name:<20} {w}x{h:<5} {ms:8.1f} ms  ({1000 / ms:6.1f} fps)  on {where}")
    return results


def bench_neural(sizes, repeats: int, device: str | None, demo: Path, model=None) -> dict:
    """Neural-mode frame time split into rasterization (+ descriptor gather) and network, for
    the demo's fitted model or another fitted scene folder ``model`` (views of the demo)."""
    import torch

    from engine.npbg.files import find_fitted_model
    from engine.npbg.model import NeuralPointModel, pad_camera

    dev = pick_device(device)
    model_dir = Path(model) if model else find_fitted_model(demo)
    if model_dir is None:
        print(f"no fitted model beside {demo}")
        return {}
    model = NeuralPointModel.load(model_dir, dev).eval()
    scene = load_scene(demo)
    nav = home_navigator(scene)
    print(
        f"neural mode on {describe(dev)}: {model.points.shape[0]:,} points, "
        f"{sum(p.numel() for p in model.net.parameters()):,} network parameters"
    )
    from engine.npbg import ort
    from engine.npbg.cuda import CudaNetworks, half_dtype

    sessions = {}
    if ort.available() and dev.type == "cpu":  # what the viewer runs the networks with
        sessions = {"net": ort.build_session(model.net)}
        if model.preview is not None:
            sessions["preview"] = ort.build_session(model.preview)
    # On CUDA the viewer runs the networks in half precision with CUDA graphs
    # (engine.npbg.cuda); timed here without graphs too.
    runners = {}
    if dev.type == "cuda":
        plain = CudaNetworks()
        plain.graphs_enabled = False
        graphs = CudaNetworks()
        graphs.capture_after = 1  # recorded in time_call's warm-up call
        runners = {"half": plain, "graph": graphs}
    nets = {"net": model.net, "preview": model.preview}
    from engine.npbg.render import NeuralRenderer, NeuralRenderOptions

    viewer = NeuralRenderer(model)  # frames as the viewer draws them (bf16 where native ...)
    viewer.ort.wait()
    rows = []
    for w, h in sizes:
        cam = pad_camera(nav.camera(w, h), 2 ** (model.config.num_scales - 1))
        with torch.no_grad():
            inputs = model.rasterize(cam)
            t_r = time_call(lambda cam=cam: model.rasterize(cam), dev, repeats)
            t_n = time_call(lambda x=inputs: model.net(x), dev, repeats)
            t_all = time_call(lambda cam=cam: model(cam), dev, repeats)
            t_p = None
            if model.preview is not None:  # the fast network the viewer shows while moving
                t_p = time_call(lambda x=inputs: model.preview(x), dev, repeats)
            t_o = {
                k: time_call(lambda x=inputs, s=sess: ort.run_session(s, x), dev, repeats)
                for k, sess in sessions.items()
            }
            if "preview" in sessions:  # the moving frame as the viewer draws it on a CPU
                run = lambda _net, levels, s=sessions["preview"]: ort.run_session(s, levels)  # noqa: E731
                t_o["moving_frame"] = time_call(
                    lambda cam=cam, run=run: model(cam, True, run), dev, repeats
                )
            t_c = {
                f"{r}_{k}": time_call(lambda x=inputs, n=net, c=c: c.run(n, x), dev, repeats)
                for r, c in runners.items()
                for k, net in nets.items()
                if net is not None
            }
            if runners:  # the frame as the viewer draws it: rasterize + graph-replayed network
                t_c["frame"] = time_call(
                    lambda cam=cam, run=runners["graph"].run: model(cam, runner=run), dev, repeats
                )
        full_cam = nav.camera(w, h)
        t_v = {}
        for k, preview in (("still", False), ("moving", True)):
            if preview and model.preview is None:
                continue
            opts = NeuralRenderOptions(preview=preview)
            t_v[k] = time_call(lambda c=full_cam, o=opts: viewer.render(c, o), dev, repeats)
        runtime = viewer.render(full_cam).runtime
        row = {
            "width": w,
            "height": h,
            "viewer_still_frame_ms": t_v["still"],
            "viewer_moving_frame_ms": t_v.get("moving"),
            "viewer_runtime": runtime,
            "raster_ms": t_r,
            "network_ms": t_n,
            "total_ms": t_all,
            "preview_network_ms": t_p,
            "onnxruntime_network_ms": t_o.get("net"),
            "onnxruntime_preview_network_ms": t_o.get("preview"),
            "moving_frame_ms": t_o.get("moving_frame"),
            "device": describe(dev),
        }
        line = (
            f"  {w}x{h:<5} rasterize {t_r:7.1f} ms  network {t_n:8.1f} ms  "
            f"frame {t_all:8.1f} ms ({1000 / t_all:5.1f} fps)"
            + ("" if t_p is None else f"  preview network {t_p:7.1f} ms")
            + ("" if "net" not in t_o else f"  onnxruntime: network {t_o['net']:7.1f} ms")
            + ("" if "preview" not in t_o else f", preview {t_o['preview']:7.1f} ms")
            + (
                ""
                if "moving_frame" not in t_o
                else f"; moving frame {t_o['moving_frame']:7.1f} ms "
                f"({1000 / t_o['moving_frame']:5.1f} fps)"
            )
            + f"\n           the viewer ({runtime}): still frame {t_v['still']:7.1f} ms"
            + ("" if "moving" not in t_v else f", moving frame {t_v['moving']:7.1f} ms")
        )
        if runners:
            half = {k: v for k, v in t_c.items() if k != "frame"}
            row.update({f"cuda_{k}_network_ms": v for k, v in half.items()})
            row["cuda_frame_ms"] = t_c["frame"]
            line += (
                f"  {str(half_dtype(dev)).removeprefix('torch.')}: "
                f"network {t_c['half_net']:6.2f} ms, with graph {t_c['graph_net']:6.2f} ms"
                + ("" if "graph_preview" not in t_c
                   else f", preview {t_c['half_preview']:6.2f} / {t_c['graph_preview']:6.2f} ms")
                + f"; viewer frame {t_c['frame']:6.2f} ms ({1000 / t_c['frame']:6.1f} fps)"
            )  # fmt: skip
        rows.append(row)
        print(line)
    return {"neural": rows}


def bench_denoise(
    sizes, repeats: int, data: str | None, model_dir: str, spps=(1, 4, 16), device=None
) -> dict:
    """Denoiser quality on held-out sequences (vs noisy and OIDN), then per-frame times of
    path tracing (1 spp) and of the denoiser at each size (its network on ``device``, OIDN's
    guide on the CPU). Without Mitsuba the denoiser is timed on a synthetic noisy frame."""
    import numpy as np
    import torch

    from engine.camera import Camera
    from engine.denoise import oidn
    from engine.denoise.evaluate import evaluate
    from engine.denoise.model import image_tensor
    from engine.denoise.reproject import camera_tensors, reprojection_grid
    from engine.denoise.train import load_denoisers

    dev = pick_device(device)
    model, fast = load_denoisers(model_dir)
    out: dict = {}
    if data:
        res = evaluate(model, data, spps)  # on the CPU
        out["quality"] = res
        print(f"held-out: {res['sequences']} sequences at {res['resolution']}")
        for spp, by in res["spp"].items():
            for m, v in by.items():
                print(
                    f"  {spp:>3} spp  {m:<18} PSNR {v['psnr']:6.2f} dB  SSIM {v['ssim']:.3f}  "
                    f"relMSE {v['relmse']:.4f}"
                )
        for m, v in res["temporal"].items():
            still = "n/a" if v["still_mad"] is None else f"{v['still_mad']:.4f}"
            moving = "n/a" if v["moving_err"] is None else f"{v['moving_err']:.4f}"
            print(
                f"  temporal {m:<18} still-camera frame diff {still}   "
                f"moving temporal error {moving}"
            )
        for m, ms in res["ms_per_frame"].items():
            print(f"  time {m:<18} {ms:8.1f} ms/frame at {res['resolution']}")
    model = model.to(dev)
    fast = None if fast is None else fast.to(dev)
    from engine.mitsuba_scene import MitsubaScene

    try:
        import mitsuba  # noqa: F401
    except ImportError:  # a machine without Mitsuba: the denoisers alone
        MitsubaScene = None
        print("path tracing: unavailable (mitsuba is not installed); a synthetic noisy frame")
    cpu = torch.device("cpu")
    rows = []
    for w, h in sizes:
        if MitsubaScene is not None:
            ms_scene = MitsubaScene("cornell-box", w, h)
            cam = ms_scene.home_camera.resized(w, h)
            t_pt = time_call(lambda cam=cam, s=ms_scene: s.render(cam, 1), cpu, repeats)
            f = ms_scene.render(cam, 1)
            bufs, variant = (f.radiance, f.albedo, f.normal, f.depth), ms_scene.variant
        else:
            cam, t_pt, variant = Camera.from_fov(w, h, 40.0), None, None
            rng = np.random.default_rng(0)
            bufs = (rng.exponential(0.5, (h, w, 3)), rng.uniform(0, 1, (h, w, 3)),
                    rng.normal(0, 1, (h, w, 3)), 1 + rng.uniform(0, 1, (h, w, 1)))  # fmt: skip
            bufs = tuple(b.astype(np.float32) for b in bufs)
        ins = [image_tensor(x, model.multiple, dev) for x in bufs]
        w2c, k = camera_tensors(cam, dev)

        def frame_ms(net, guide=None, ins=ins, w2c=w2c, k=k) -> float:
            given = {} if guide is None else {"guide": guide}  # only guided models take one
            with torch.no_grad():
                state = net(*ins, **given)[1]

                def step():
                    # A frame as the viewer runs it: with the previous state (warped when the
                    # model reprojects; the reprojection is part of the time).
                    warp = net.cfg.reproject
                    motion = reprojection_grid(ins[3], w2c, k, ins[3], w2c, k) if warp else None
                    return net(*ins, state, motion, spp=1, **given)

                return time_call(step, dev, repeats)

        t_guide = guide = None
        guided = getattr(model.cfg, "oidn", False)
        q = model.guide_quality(1) if guided else None  # OIDN's preset for a fresh frame
        if guided:
            # The guide (OIDN, on the CPU) timed apart from the network (on ``dev``).
            if oidn.available():
                t_guide = time_call(lambda i=ins, q=q: oidn.denoise_bchw(*i[:3], q), cpu, repeats)
                guide = oidn.denoise_bchw(*ins[:3], q)
            else:
                guide = ins[0]  # stands in for OIDN's image: the network's time alone
        t_net = frame_ms(model, guide)
        t_dn = t_net + (t_guide or 0.0)
        row = {"width": w, "height": h, "pathtrace_ms": t_pt, "denoise_ms": t_dn,
               "denoise_network_ms": t_net, "oidn_guide_ms": t_guide, "variant": variant,
               "device": describe(dev)}  # fmt: skip
        pt = "n/a" if t_pt is None else f"{t_pt:8.1f} ms ({variant})"
        bf16 = ", bf16 U-Net" if dev.type == "cpu" and cpu_bf16() else ""
        parts = f"network {t_net:7.1f} ms on {describe(dev)}{bf16}"
        if guided:
            preset = "" if q == "high" else f" ({q})"
            parts += f" + OIDN{preset} " + (
                "unavailable" if t_guide is None else f"{t_guide:.1f} ms"
            )
        line = f"  {w}x{h:<5} path trace 1 spp {pt}   denoiser {t_dn:8.1f} ms ({parts})"
        if fast is not None:
            # The viewer's moving frames: a fresh 1-spp frame and the fast model.
            row["fast_denoise_ms"] = t_fast = frame_ms(fast)
            line += f"   fast {t_fast:6.1f} ms"
            if t_pt is not None:
                row["moving_fps"] = 1000 / (t_pt + t_fast)
                line += f": moving {row['moving_fps']:4.1f} fps"
        rows.append(row)
        print(line)
    out["timing"] = rows
    return out


def bench_latent(repeats: int, device: str | None, hologan: Path, rendernet: Path) -> dict:
    """Frame time of HoloGAN generation (full, and pose-only with the cached 3D features) and
    of RenderNet, at their native resolutions, batch 1 (what Latent mode renders per frame)."""
    import math

    import torch

    from engine.latent.hologan import Generator, HoloGANConfig, latent_from_seed
    from engine.latent.rendernet import RenderNet, RenderNetConfig

    dev = pick_device(device)
    results = []
    if (Path(hologan) / "hologan.json").is_file():
        from engine.latent.train import load_generator

        G, label = load_generator(hologan, dev), "bundled"
    else:
        G, label = Generator(HoloGANConfig()).to(dev).eval(), "untrained (no bundled model)"
    cfg = G.cfg
    z1 = latent_from_seed(0, cfg.z1)[None].to(dev)
    z2 = latent_from_seed(1, cfg.z2)[None].to(dev)
    a = torch.tensor([0.5], device=dev)
    e = torch.tensor([math.radians(25)], device=dev)
    with torch.no_grad():
        vol = G.volume(z1)
        full = time_call(lambda: G(z1, z2, a, e), dev, repeats)
        pose = time_call(lambda: G.render(vol, z2, a, e), dev, repeats)
    results.append({"model": "HoloGAN", "res": cfg.res, "ms": full, "device": describe(dev)})
    results.append(
        {"model": "HoloGAN pose/z2 only", "res": cfg.res, "ms": pose, "device": describe(dev)}
    )
    if (Path(rendernet) / "rendernet.json").is_file():
        from engine.latent.rendernet import load_rendernet

        R = load_rendernet(rendernet, dev)
    else:
        R = RenderNet(RenderNetConfig()).to(dev).eval()
    n = R.cfg.voxels
    vox = (torch.rand(1, 1, n, n, n, device=dev) > 0.9).float()
    with torch.no_grad():
        one = time_call(lambda: R(vox, a, e, [R.cfg.styles[0]]), dev, repeats)
    results.append(
        {"model": f"RenderNet ({n}^3 voxels)", "res": R.cfg.res, "ms": one, "device": describe(dev)}
    )
    print(f"latent models, batch 1 (HoloGAN: {label}):")
    for r in results:
        print(
            f"  {r['model']:<26} {r['res']}x{r['res']}  {r['ms']:7.1f} ms  ({1000 / r['ms']:6.1f} fps)  on {r['device']}"
        )
    return {"latent": results}


def bench_lod(num_points: int, size: tuple[int, int], frames: int = 40, target_ms: float = 40.0):
    """A synthetic terrain of ``num_points`` points: level-of-detail build time (first open),
    cached open time, then a low orbit drawn with GL points as the viewer draws a moving
    frame (a plan within the frame budget, the budget learned from the measured cost)."""
    import os
    import resource
    import tempfile
    import time

    import numpy as np

    from engine.camera import Camera
    from engine.points import lod as lod_mod
    from engine.scene.types import Scene
    from viewer.gl.offscreen import OffscreenPointRenderer

    rng = np.random.default_rng(0)
    xz = rng.uniform(-500, 500, (num_points, 2)).astype(np.float32)
    y = (20 * np.sin(xz[:, 0] / 60) * np.cos(xz[:, 1] / 45)).astype(np.float32)
    pts = np.stack([xz[:, 0], y, xz[:, 1]], 1)
    del xz, y
    cols = np.clip((pts[:, 1:2] + 20) / 40 * [0.6, 0.8, 0.3] + 0.1, 0, 1).astype(np.float32)
    scene = Scene(points=pts, colors=cols)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NSV_CACHE"] = cache
        old_min = lod_mod.LOD_MIN_POINTS
        lod_mod.LOD_MIN_POINTS = min(old_min, num_points)
        try:
            t = time.perf_counter()
            from engine.points.lod import scene_lod

            lod = scene_lod(scene)
            t_build = time.perf_counter() - t
            t = time.perf_counter()
            lod_mod.cloud_lod(pts, Path(cache))
            t_cached = time.perf_counter() - t
            t = time.perf_counter()
            gl = OffscreenPointRenderer(scene)
            t_upload = time.perf_counter() - t
            gl.cloud.release()
            # A second open, as after restarting the viewer: the layout and the reordered
            # buffers come from the cache (the file itself still has to be read).
            again = Scene(points=pts, colors=cols)
            t = time.perf_counter()
            scene_lod(again)
            gl = OffscreenPointRenderer(again, gl.ctx)
            t_reopen = time.perf_counter() - t
        finally:
            lod_mod.LOD_MIN_POINTS = old_min
            del os.environ["NSV_CACHE"]
    w, h = size
    ms_per_point, times, counts = 2e-5, [], []
    for i in range(frames):
        a = 2 * np.pi * i / frames
        eye = [300 * np.cos(a), 60, 300 * np.sin(a)]
        cam = Camera.look_at(eye, [0, 0, 0], [0, 1, 0], w, h, 60)
        budget = max(50_000, int(target_ms / ms_per_point))
        t = time.perf_counter()
        plan = gl.cloud.plan(cam, budget)
        gl.target.bind((w, h))
        drawn, _ = gl.cloud.draw_plan(cam, 1.0, plan)
        gl.ctx.finish()
        ms = (time.perf_counter() - t) * 1000
        if drawn >= 10_000:
            ms_per_point = 0.5 * ms_per_point + 0.5 * ms / drawn
        if i >= 5:  # the budget has adapted
            times.append(ms)
            counts.append(drawn)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res = {
        "points": num_points,
        "cells": lod.num_cells,
        "build_s": t_build,
        "cached_open_s": t_cached,
        "gl_upload_s": t_upload,
        "second_open_s": t_reopen,
        "moving_p50_ms": float(np.percentile(times, 50)),
        "moving_p95_ms": float(np.percentile(times, 95)),
        "points_per_frame": int(np.median(counts)),
        "peak_rss_gb": peak_gb,
        "renderer": gl.renderer_name,
        "size": [w, h],
    }
    print(f"level of detail, {num_points:,} points in {lod.num_cells:,} cells: build "
          f"{t_build:.1f} s, cached {t_cached:.1f} s, GL upload {t_upload:.1f} s; second open "
          f"(cached layout and buffers) {t_reopen:.1f} s")  # fmt: skip
    print(f"  moving orbit at {w}x{h} on {gl.renderer_name}: p50 {res['moving_p50_ms']:.0f} ms, "
          f"p95 {res['moving_p95_ms']:.0f} ms, {res['points_per_frame']:,} points per frame; "
          f"peak memory {peak_gb:.1f} GB")  # fmt: skip
    return {"lod": res}
