"""End-to-end CLI tests on tiny data: `nsv render` and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from engine.scene.ply import save_ply_cloud
from tests.conftest import DEMO
from tests.helpers import (
    assert_one_line_error,
    coverage,
    nsv,
    write_cloud,
    write_colmap_with_photos,
)


@pytest.mark.parametrize("mode", ["color", "depth", "normal", "gl"])
def test_render_writes_png(tmp_path, mode):
    out = tmp_path / f"{mode}.png"
    res = nsv("render", str(DEMO), "--mode", mode, "--size", "200x150", "--out", str(out))
    if mode == "gl" and res.returncode != 0 and "no headless OpenGL" in res.stderr:
        pytest.skip(res.stderr.strip())
    assert res.returncode == 0, res.stderr
    img = iio.imread(out)
    assert img.shape == (150, 200, 3)
    assert coverage(img) > 0.03


def test_render_registered_view_uses_its_camera(tmp_path):
    root, _ = write_colmap_with_photos(tmp_path / "cap")
    out = tmp_path / "v.png"
    res = nsv("render", str(root), "--camera", "view_3.png", "--mode", "color", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert iio.imread(out).shape == (120, 160, 3)  # the view's own resolution
    res = nsv(
        "render", str(root), "--camera", "3", "--mode", "color", "--out", str(tmp_path / "i.png")
    )
    assert res.returncode == 0
    assert np.array_equal(iio.imread(out), iio.imread(tmp_path / "i.png"))


def test_bad_camera_argument(tmp_path):
    root, _ = write_colmap_with_photos(tmp_path / "cap")
    assert_one_line_error(nsv("render", str(root), "--camera", "99", "--out", "x.png"), "--camera")
    bad = tmp_path / "cam.json"
    bad.write_text("{not json")
    assert_one_line_error(
        nsv("render", str(root), "--camera", str(bad), "--out", "x.png"), "cam.json"
    )


def test_missing_path(tmp_path):
    assert_one_line_error(nsv(str(tmp_path / "nope.ply")), "nope.ply", "no such file")
    assert_one_line_error(nsv("render", str(tmp_path / "nope.ply"), "--out", "x.png"), "nope.ply")


def test_truncated_ply(tmp_path):
    p = write_cloud(tmp_path / "cut.ply", 2000)
    p.write_bytes(p.read_bytes()[:-1000])
    assert_one_line_error(
        nsv("render", str(p), "--out", str(tmp_path / "x.png")), "cut.ply", "truncated"
    )


def test_malformed_ply(tmp_path):
    p = tmp_path / "junk.ply"
    p.write_bytes(
        b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1\nfoo\n"
    )
    assert_one_line_error(nsv("render", str(p), "--out", str(tmp_path / "x.png")), "junk.ply")


def test_empty_and_nan_clouds(tmp_path):
    e = tmp_path / "empty.ply"
    save_ply_cloud(e, np.zeros((0, 3)))
    assert_one_line_error(nsv("render", str(e), "--out", str(tmp_path / "x.png")), "empty")
    n = tmp_path / "nan.ply"
    save_ply_cloud(n, np.full((10, 3), np.nan))
    assert_one_line_error(nsv("render", str(n), "--out", str(tmp_path / "x.png")), "NaN")


def test_colmap_folder_with_missing_file(tmp_path):
    root, _ = write_colmap_with_photos(tmp_path / "cap")
    (root / "sparse" / "0" / "cameras.txt").unlink()
    assert_one_line_error(nsv("render", str(root), "--out", "x.png"), "cameras.txt", "missing")


def test_output_folder_must_exist(tmp_path):
    res = nsv("render", str(DEMO), "--mode", "color", "--out", str(tmp_path / "no" / "x.png"))
    assert_one_line_error(res, "does not exist")


def test_bench_neural_reports_still_and_moving_frames(tmp_path):
    """One line per size with rasterize, network and frame times (scripts read them), and the
    moving frame as the viewer draws it: rasterize + the preview network in ONNX Runtime."""
    out = tmp_path / "neural.json"
    res = nsv("bench", "neural", "--sizes", "64x64", "--repeats", "1", "--json", str(out))
    assert res.returncode == 0, res.stderr
    row = json.loads(out.read_text())["neural"][0]
    assert (row["width"], row["height"]) == (64, 64)
    # Timings only as values (no order between them: at 64x64 a frame is almost all
    # rasterization - projecting the demo's 240k points - so one sample of each can come out
    # either way on a busy machine).
    assert all(0 < row[k] < 60_000 for k in ("raster_ms", "network_ms", "total_ms"))
    line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("64x64"))
    assert "rasterize" in line and "network" in line and "frame" in line
    from engine.npbg import ort

    if ort.available():
        assert row["moving_frame_ms"] > 0 and "moving frame" in line


def test_bench_fit_times_steps_and_projects_the_whole_fit(tmp_path):
    """`nsv bench fit` on a small capture: a step time, an evaluation time, a checkpoint time
    and a projected fit that adds them up as `nsv fit` runs them (steps, an evaluation every
    eval_every, a checkpoint every checkpoint_every and the end's gain fields); without
    --scene, one line saying what it needs."""
    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=9, n_points=2000)
    out = tmp_path / "fit.json"
    res = nsv("bench", "fit", "--scene", str(root), "--steps", "2", "--json", str(out))
    assert res.returncode == 0, res.stderr
    r = json.loads(out.read_text())
    assert r["points"] == 2000 and r["held_out_views"] == 2 and r["step_ms"] > 0
    evals = r["fit_steps"] // r["eval_every"] + 1
    checkpoints = r["fit_steps"] // r["checkpoint_every"] + 1
    assert r["checkpoint_s"] > 0 and r["step_ms_mean"] > 0
    floor = (
        r["fit_steps"] * r["step_ms_mean"] / 1000
        + evals * r["eval_s"]
        + checkpoints * r["checkpoint_s"]
    ) / 60
    assert floor <= r["projected_fit_min"] < 1.5 * floor
    assert "ms a step" in res.stdout and "threads" in res.stdout
    assert_one_line_error(nsv("bench", "fit"), "--scene")


def test_bench_viewer_names_an_unknown_mode():
    res = nsv("bench", "viewer", "--modes", "gl,pathtrace-denoise")
    assert_one_line_error(res, "pathtrace-denoise")
    assert "pathtrace+denoise" in res.stderr  # what it should have been


def test_bench_raster_runs_small(tmp_path):
    out = tmp_path / "bench.json"
    res = nsv(
        "bench",
        "raster",
        "--points",
        "20000",
        "--sizes",
        "64x48",
        "--repeats",
        "1",
        "--json",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    assert "points/s" in res.stdout and "rasterizer color" in res.stdout
    import json

    data = json.loads(out.read_text())
    assert data["rasterizer"][0]["points"] == 20000 and data["rasterizer"][0]["ms"] > 0
    # The level-of-detail benchmark on a small synthetic terrain.
    res = nsv("bench", "lod", "--points", "200000", "--sizes", "96x64", "--json", str(out))
    assert res.returncode == 0, res.stderr
    lod = json.loads(out.read_text())["lod"]
    assert lod["points"] == 200_000 and lod["cells"] > 1 and 0 < lod["points_per_frame"]


def test_fit_then_resume_then_view_headless(tmp_path):
    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=8, n_points=2000)
    out = tmp_path / "fitted"
    args = [
        "fit",
        str(root),
        "--out",
        str(out),
        "--crop",
        "64",
        "--max-side",
        "128",
        "--eval-every",
        "5",
        "--checkpoint-every",
        "5",
    ]
    res = nsv(*args, "--steps", "10")
    assert res.returncode == 0, res.stderr
    assert "held-out PSNR" in res.stdout and "splatting" in res.stdout
    assert (out / "model.safetensors").is_file() and (out / "checkpoint.json").is_file()
    # A second run refuses to overwrite, --resume continues to the new total.
    assert_one_line_error(nsv(*args, "--steps", "15"), "--resume")
    # Resuming with another environment map size is one line, not a shape error.
    bad = nsv(*args, "--steps", "15", "--resume", "--environment-rows", "16")
    assert_one_line_error(bad, "environment map", "--environment-rows")
    res = nsv(*args, "--steps", "15", "--resume")
    assert res.returncode == 0, res.stderr
    assert "resumed at step 10" in res.stdout
    import json

    config = json.loads((out / "config.json").read_text())
    assert config["summary"]["steps"] == 15
    # The fit's own network by default: from scratch, ungated, 16-channel descriptors.
    from engine.npbg.network import FIT_NETWORK

    assert config["network"]["descriptor_dim"] == FIT_NETWORK.descriptor_dim == 16
    assert config["network"]["gated"] is FIT_NETWORK.gated is False
    # Held-out figures a person can look at: photo | neural | splatting per held-out view.
    figs = tmp_path / "figs"
    res = nsv("eval", str(root), "--model", str(out), "--figures", str(figs))
    assert res.returncode == 0, res.stderr
    assert "colour bias" in res.stdout
    import imageio.v3 as iio

    pngs = sorted(figs.glob("*.png"))
    assert len(pngs) == 1  # 8 views, every 8th held out
    img = iio.imread(pngs[0])
    assert img.shape[1] == 3 * 128 and img.shape[0] == 96
    # At another resolution (e.g. half the photos'): the held-out views are scaled to it.
    res = nsv("eval", str(root), "--model", str(out), "--max-side", "64")
    assert res.returncode == 0, res.stderr
    assert "held-out views at 64x48" in res.stdout
    # ... drawn at the fit's scale and shrunk, as the viewer draws it; --native: at 64 x 48.
    assert "(drawn at 128x96, the fit's scale" in res.stdout
    assert "the mean of 4 offset passes" in res.stdout  # as the viewer's still frame
    args = ["eval", str(root), "--model", str(out), "--max-side", "64", "--passes", "1"]
    native = nsv(*args, "--native")
    assert native.returncode == 0, native.stderr
    assert "held-out views at 64x48:" in native.stdout  # drawn as asked, one pass
    assert native.stdout.split("neural")[1] != res.stdout.split("neural")[1]
    assert_one_line_error(nsv(*args[:-1], "0"), "--passes 0", "1 to 4")


def test_pretrain_a_fast_network_then_fit_from_it(tmp_path):
    import json

    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=8, n_points=2000)
    net = tmp_path / "net"
    small = ["--crop", "32", "--max-side", "64", "--eval-every", "3", "--checkpoint-every", "3"]
    res = nsv("pretrain", str(root), "--out", str(net), "--steps", "3", "--fold-finest",
              "--convs", "1", "--channels", "8,12,16,24", "--descriptor-dim", "6",
              "--scale-min", "0.9", "--scale-max", "1.1", *small)  # fmt: skip
    assert res.returncode == 0, res.stderr
    cfg = json.loads((net / "network.json").read_text())["network"]
    assert cfg["fold_finest"] and cfg["convs"] == 1 and cfg["num_scales"] == 5
    assert cfg["descriptor_dim"] == 6
    out = tmp_path / "fit"
    res = nsv("fit", str(root), "--network", str(net), "--out", str(out), "--steps", "3", *small)
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "config.json").read_text())["network"] == cfg
    for bad in (
        ["--channels", "8,x"],
        ["--convs", "0"],
        ["--descriptor-dim", "0"],
        ["--scale-min", "1.5"],
    ):
        assert_one_line_error(
            nsv("pretrain", str(root), "--out", str(tmp_path / "x"), *bad), bad[0]
        )
    # A preview network distilled from the fitted one, stored with the model.
    distill = ["distill", str(root), "--model", str(out), "--network", str(net), "--crop", "32",
               "--checkpoint-every", "2"]  # fmt: skip
    res = nsv(*distill, "--steps", "2")
    assert res.returncode == 0, res.stderr
    assert "preview network" in res.stdout
    from engine.npbg.model import NeuralPointModel

    model = NeuralPointModel.load(out)
    assert model.preview is not None and model.preview.cfg.fold_finest
    assert json.loads((out / "config.json").read_text())["summary"]["preview"]["steps"] == 2
    assert_one_line_error(nsv(*distill, "--steps", "4"), "--resume")
    res = nsv(*distill, "--steps", "4", "--resume")
    assert res.returncode == 0 and "resumed at step 2" in res.stdout, res.stderr
    # Distilled longer, from the model's own preview network: steps add up.
    import shutil

    import torch

    before = {k: v.clone() for k, v in NeuralPointModel.load(out).preview.state_dict().items()}
    shutil.rmtree(out / "preview_run")
    res = nsv(*distill[:4], "--network", "model", *distill[6:], "--steps", "3")
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "config.json").read_text())["summary"]["preview"]["steps"] == 7
    after = NeuralPointModel.load(out).preview.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    res = nsv("eval", str(root), "--model", str(out))
    assert res.returncode == 0 and "preview    PSNR" in res.stdout, res.stderr
    assert_one_line_error(
        nsv("distill", str(root), "--model", str(out), "--network", str(tmp_path / "none")),
        "none",
    )


def test_fit_needs_photos(tmp_path):
    p = write_cloud(tmp_path / "c.ply", 500)
    assert_one_line_error(nsv("fit", str(p), "--out", str(tmp_path / "o")), "photos")


def test_synthetic_data_generator_writes_a_colmap_scene(tmp_path):
    out = tmp_path / "syn"
    res = nsv(
        "data",
        "synthetic",
        str(out),
        "--scene",
        "random",
        "--views",
        "4",
        "--points",
        "3000",
        "--size",
        "64x48",
        "--seed",
        "2",
    )
    if res.returncode != 0 and "no headless OpenGL" in res.stderr:
        pytest.skip(res.stderr.strip())
    assert res.returncode == 0, res.stderr
    from engine.open_path import load_scene

    scene = load_scene(out)
    assert scene.num_points == 3000 and len(scene.views) == 4
    img = iio.imread(scene.views[0].image_path)
    assert img.shape == (48, 64, 3) and coverage(img, background=31) > 0.05


def test_killed_fit_resumes_from_its_last_checkpoint(tmp_path):
    import os
    import signal
    import time

    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=8, n_points=2000)
    out = tmp_path / "fitted"
    fit = ["fit", str(root), "--out", str(out), "--crop", "64", "--max-side", "128",
           "--eval-every", "1000", "--checkpoint-every", "5"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsv", *fit, "--steps", "100000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    ck = out / "checkpoint.safetensors"

    def checkpoint_step() -> int:
        from safetensors import safe_open

        with safe_open(str(ck), "pt") as f:  # the authoritative state rides in the file
            return json.loads(f.metadata()["state"])["step"]

    deadline = time.time() + 120
    while time.time() < deadline:
        if ck.is_file() and checkpoint_step() >= 10:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up, possibly mid-write
    proc.wait()
    step = checkpoint_step()
    assert step >= 10 and step % 5 == 0
    res = nsv(*fit, "--steps", str(step + 5), "--resume")
    assert res.returncode == 0, res.stderr
    assert f"resumed at step {step}" in res.stdout
    assert checkpoint_step() == step + 5
    # SIGTERM (a scheduler's preemption) saves a checkpoint at the current step, like Ctrl+C.
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsv", *fit, "--steps", "100000", "--resume"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    deadline = time.time() + 120
    while time.time() < deadline and checkpoint_step() < step + 10:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out_text, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"interrupted at step {checkpoint_step()};" in out_text


def test_render_path_traced_cornell_box(tmp_path):
    pytest.importorskip("mitsuba")
    out = tmp_path / "box.png"
    res = nsv(
        "render",
        "cornell-box",
        "--mode",
        "pathtrace",
        "--spp",
        "8",
        "--size",
        "64x64",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    img = iio.imread(out).astype(int)
    assert img.shape == (64, 64, 3)
    assert img[32, 8, 0] > img[32, 8, 1] + 30 and img[32, 56, 1] > img[32, 56, 0] + 10


def test_render_neural_needs_a_fitted_scene(tmp_path):
    p = write_cloud(tmp_path / "c.ply", 500)
    assert_one_line_error(nsv("render", str(p), "--mode", "neural", "--out", "x.png"), "nsv fit")


def test_denoiser_data_train_and_resume(tmp_path):
    pytest.importorskip("mitsuba")
    data = tmp_path / "dn"
    res = nsv(
        "data",
        "denoise",
        str(data),
        "--sequences",
        "1",
        "--frames",
        "3",
        "--size",
        "32",
        "--samples",
        "2",
        "--ref-spp",
        "8",
        "--kinds",
        "studio",
        "--extra-spp",
        "4",
    )
    assert res.returncode == 0, res.stderr
    assert len(list(data.glob("seq_*.safetensors"))) == 1
    out = tmp_path / "model"
    args = [
        "train-denoiser",
        str(data),
        "--out",
        str(out),
        "--channels",
        "8,12,16",
        "--batch",
        "1",
        "--crop",
        "16",
        "--frames",
        "2",
        "--checkpoint-every",
        "2",
    ]
    res = nsv(*args, "--steps", "2")
    assert res.returncode == 0, res.stderr
    assert (out / "denoiser.safetensors").is_file()
    assert_one_line_error(nsv(*args, "--steps", "4"), "--resume")
    res = nsv(*args, "--steps", "4", "--resume")
    assert res.returncode == 0 and "resumed at step 2" in res.stdout
    assert_one_line_error(
        nsv("train-denoiser", str(tmp_path), "--out", str(tmp_path / "x")), "no seq_"
    )
    # A history clamp warm-starts from a model trained without one, and is saved with it.
    clamped = tmp_path / "clamped"
    cargs = [*args[:3], str(clamped), *args[4:], "--steps", "2", "--init", str(out)]
    res = nsv(*cargs, "--history-clamp", "0.5")
    assert res.returncode == 0, res.stderr
    saved = json.loads((clamped / "denoiser.json").read_text())["model"]
    assert saved["history_clamp"] == 0.5
    assert_one_line_error(nsv(*cargs, "--history-clamp", "0.5", "--oidn-guide"), "guide")
    assert_one_line_error(nsv(*cargs, "--history-clamp", "-1"), "--history-clamp")
    assert_one_line_error(nsv(*cargs, "--fast-guide-below", "16"), "--fast-guide-below")
    # A guided model on OIDN's fast preset warm-starts from the plain one; the rule is saved.
    guided = tmp_path / "guided"
    gargs = [*args[:3], str(guided), *args[4:], "--steps", "1", "--init", str(out)]
    res = nsv(*gargs, "--oidn-guide", "--fast-guide-below", "16")
    assert res.returncode == 0, res.stderr
    saved = json.loads((guided / "denoiser.json").read_text())["model"]
    assert saved["oidn"] and saved["fast_guide_below"] == 16
    # The trained (reprojecting) model in the benchmark: quality table and timings.
    res = nsv("bench", "denoise", "--data", str(data), "--model", str(out), "--sizes", "32x32",
              "--repeats", "1", "--spp", "1,4")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "recurrent-unwarped" in res.stdout and "32x32" in res.stdout
    assert "  4 spp  noisy" in res.stdout  # judged on the sequence's own 4-spp render
    assert_one_line_error(
        nsv("data", "denoise", str(tmp_path / "m"), "--mesh", str(tmp_path / "no.obj")), "no.obj"
    )
    assert_one_line_error(
        nsv("data", "denoise", str(tmp_path / "k"), "--kinds", "forest"), "forest"
    )


def test_viewer_without_a_display_says_so(tmp_path):
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    res = subprocess.run(
        [sys.executable, "-m", "nsv", str(DEMO)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert_one_line_error(res, "no display")


def _rendered_sequence(folder, frames: int = 3, size: int = 32):
    """A small path-traced sequence as a user's renderer would write it: color / albedo /
    normal / depth EXRs per frame (4 spp), cameras.json, and the 128-spp references."""
    pytest.importorskip("mitsuba")
    import mitsuba as mi

    from engine.camera import rotation_about
    from engine.denoise.sequence import write_exr
    from engine.mitsuba_scene import MitsubaScene

    folder.mkdir(parents=True)
    scene = MitsubaScene("cornell-box", size, size)
    home = scene.home_camera.resized(size, size)
    cams, refs, passes = [], [], []
    for i in range(frames):
        turn = np.eye(4)
        turn[:3, :3] = rotation_about([0, 1, 0], 0.03 * i)
        cam = home.with_pose(home.world_to_camera @ turn)
        f = scene.render(cam, 4, seed=i)
        for name in ("radiance", "albedo", "normal"):
            write_exr(folder / f"{'color' if name == 'radiance' else name}_{i:04d}.exr",
                      getattr(f, name))  # fmt: skip
        depth = np.ascontiguousarray(f.depth[..., None], np.float32)
        mi.Bitmap(depth, mi.Bitmap.PixelFormat.Y).write(str(folder / f"depth_{i:04d}.exr"))
        refs.append(scene.render(cam, 128, seed=1000 + i).radiance)
        passes.append(f)
        cams.append({"world_to_camera": cam.world_to_camera.tolist(), "fx": cam.fx,
                     "fy": cam.fy, "cx": cam.cx, "cy": cam.cy})  # fmt: skip
    (folder / "cameras.json").write_text(json.dumps({"frames": cams}))
    return refs, passes


def test_denoise_a_rendered_exr_sequence(tmp_path):
    """`nsv denoise` on a user's EXR sequence: ours (temporal, following the cameras) and OIDN
    both beat the noisy input against a 128-spp reference; Blender-style multi-layer EXRs
    give the same result as separate pass files; bad inputs give one line naming the file."""
    pytest.importorskip("pyoidn")
    import mitsuba as mi

    from engine.denoise.sequence import read_exr
    from engine.images import linear_to_srgb

    src = tmp_path / "in"
    refs, passes = _rendered_sequence(src)

    def psnr(folder, stem):
        vals = []
        for i, ref in enumerate(refs):
            c = read_exr(folder / stem.format(i))
            img = np.stack([c["R"], c["G"], c["B"]], -1)
            vals.append(-10 * np.log10(((linear_to_srgb(img) - linear_to_srgb(ref)) ** 2).mean()))
        return np.array(vals)

    noisy = psnr(src, "color_{:04d}.exr")
    for denoiser in ("ours", "oidn"):
        res = nsv("denoise", str(src), str(tmp_path / denoiser), "--spp", "4",
                  "--denoiser", denoiser, "--png")  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "wrote 3 denoised frame(s)" in res.stdout
        assert (tmp_path / denoiser / "0002.png").is_file()
        assert (psnr(tmp_path / denoiser, "{:04d}.exr") > noisy + 3).all()

    # The same frames as Blender Cycles writes them: one multi-layer EXR each.
    layered = tmp_path / "blender"
    layered.mkdir()
    for i, f in enumerate(passes):
        names, planes = [], []
        for layer, data, comps in (("Combined", f.radiance, "RGB"),
                                   ("Denoising Albedo", f.albedo, "RGB"),
                                   ("Denoising Normal", f.normal, "XYZ"),
                                   ("Depth", f.depth[..., None], "Z")):  # fmt: skip
            names += [f"ViewLayer.{layer}.{c}" for c in comps]
            planes += [data[..., k] for k in range(len(comps))]
        arr = np.ascontiguousarray(np.stack(planes, -1), np.float32)
        mi.Bitmap(arr, mi.Bitmap.PixelFormat.MultiChannel, names).write(
            str(layered / f"{i:04d}.exr")
        )
    shutil.copy(src / "cameras.json", layered)
    res = nsv("denoise", str(layered), str(tmp_path / "blender_out"), "--spp", "4")
    assert res.returncode == 0, res.stderr
    for i in range(3):
        a, b = (read_exr(d / f"{i:04d}.exr") for d in (tmp_path / "ours", tmp_path / "blender_out"))
        assert all(np.allclose(a[c], b[c], atol=1e-5) for c in "RGB")

    # Non-finite pixels are zeroed and counted, not propagated.
    c = read_exr(src / "color_0001.exr")
    img = np.stack([c["R"], c["G"], c["B"]], -1)
    img[3, 4] = np.nan
    img[5, 6, 1] = np.inf
    from engine.denoise.sequence import write_exr

    write_exr(src / "color_0001.exr", img)
    res = nsv("denoise", str(src), str(tmp_path / "nan"), "--spp", "4")
    assert res.returncode == 0 and "0001 (4)" in res.stdout, res.stdout + res.stderr
    out = read_exr(tmp_path / "nan" / "0001.exr")
    assert all(np.isfinite(out[ch]).all() for ch in "RGB")

    # Bad inputs: one line naming the file and what is wrong with it.
    (src / "albedo_0002.exr").rename(tmp_path / "albedo_0002.exr")
    assert_one_line_error(nsv("denoise", str(src), str(tmp_path / "x")), "albedo_0002.exr")
    small = np.zeros((16, 16, 3), np.float32)
    write_exr(src / "albedo_0002.exr", small)
    assert_one_line_error(nsv("denoise", str(src), str(tmp_path / "x")), "albedo_0002.exr",
                          "16×16", "32×32")  # fmt: skip
    (src / "albedo_0002.exr").write_bytes(b"not an exr")
    assert_one_line_error(nsv("denoise", str(src), str(tmp_path / "x")), "albedo_0002.exr",
                          "not a readable EXR")  # fmt: skip
    shutil.move(tmp_path / "albedo_0002.exr", src / "albedo_0002.exr")
    (src / "cameras.json").write_text('{"frames": [{"fx": 1}]}')
    assert_one_line_error(nsv("denoise", str(src), str(tmp_path / "x")), "cameras.json")
    (layered / "0001.exr").unlink()
    mi.Bitmap(np.zeros((32, 32, 3), np.float32)).write(str(layered / "0001.exr"))
    assert_one_line_error(nsv("denoise", str(layered), str(tmp_path / "x")), "0001.exr",
                          "Combined")  # fmt: skip
    assert_one_line_error(nsv("denoise", str(tmp_path / "empty_nothing"), str(tmp_path / "y")),
                          "no such folder")  # fmt: skip
    assert not (tmp_path / "y").exists()  # nothing written when no frame can be read


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
@pytest.mark.parametrize("keep", ["1", "0"])
def test_freed_tensor_memory_is_kept_for_reuse(keep):
    """The ``nsv`` entry point keeps freed memory in the heap (large tensors would otherwise be
    unmapped on free and page-faulted in again by the next operation); =0 leaves glibc as is."""
    probe = (  # in a worker thread, as the viewer renders (threads get arenas of their own)
        "import os, threading, torch\n"
        "from engine.device import keep_freed_memory\n"
        "applied = keep_freed_memory()\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGESIZE')\n"
        "out = []\n"
        "def work():\n"
        "    t = torch.ones(64 << 20)\n"  # 256 MB, written
        "    peak = rss(); del t\n"
        "    out.append((peak - rss()) >> 20)\n"
        "th = threading.Thread(target=work); th.start(); th.join()\n"
        "print(applied, out[0])\n"
    )
    env = {**os.environ, "NSV_KEEP_FREED_MEMORY": keep}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    applied, released_mb = out.stdout.split()
    if keep == "1":
        assert applied == "True" and int(released_mb) < 64  # kept for the next tensor
    else:
        assert applied == "False" and int(released_mb) > 200  # unmapped on free


def test_every_command_prints_its_help(capsys):
    # argparse formats help lazily, so a stray '%' in one option's text crashes only that
    # command's --help (nsv data's did, with a traceback)
    from nsv.main import HANDLERS, main

    for cmd in HANDLERS:
        with pytest.raises(SystemExit) as stop:
            main([cmd, "--help"])
        assert stop.value.code == 0, cmd
        assert "usage:" in capsys.readouterr().out, cmd


def test_data_refuses_counts_it_cannot_make_a_dataset_of(tmp_path, capsys):
    from nsv.main import main

    for args in (
        ["phone", "--views", "0"],
        ["capture", "--views", "1"],
        ["voxels", "--shapes", "-2"],
    ):
        out = tmp_path / args[0]
        assert main(["data", args[0], str(out), *args[1:]]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and args[1] in err and args[2] in err, err
        assert not out.exists()  # nothing written


def test_render_neural_writes_the_still_view_with_its_offset_passes_done(tmp_path):
    import torch

    from engine.navigation import home_navigator
    from engine.npbg.files import open_scene

    out = tmp_path / "n.png"
    res = nsv("render", str(DEMO), "--mode", "neural", "--size", "96x72", "--out", str(out))
    assert res.returncode == 0, res.stderr
    scene, model = open_scene(DEMO)
    cam = home_navigator(scene).camera(96, 72)
    with torch.no_grad():  # the mean of the four passes, as the viewer's still frame
        four = model.render_passes(cam, supersample=1.0).clamp(0, 1).permute(1, 2, 0).numpy()
        one = model.render(cam, supersample=1.0).clamp(0, 1).permute(1, 2, 0).numpy()
    img = iio.imread(out)[..., :3] / 255.0
    # (the CLI runs the network in bf16 where the CPU has it: equal up to its rounding)
    assert np.abs(img - four).mean() < 0.5 * np.abs(img - one).mean()
