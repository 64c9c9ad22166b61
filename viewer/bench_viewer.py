"""``nsv bench viewer``: the real main window (in Xvfb when there is no display), a scripted
orbit drag in each mode, and what a user feels: how long the first frame after the camera starts
moving takes, frame intervals while moving (p50 / p95), and how long until full quality after
the camera stops. With ``fit`` among the modes: NPBG fitting steps per second in the window
(Train dock, Neural view showing the live preview) vs. the same fit without a window."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from engine.assets import DEMO_SCENE


def bench_viewer(
    demo: Path, seconds: float = 3.0, modes=None, target_ms: float | None = None,
    viewport: tuple[int, int] | None = None,
) -> dict:  # fmt: skip
    """Runs in this process when there is a display; otherwise re-runs itself as a child
    process inside a private Xvfb (Qt must be gone before the X server stops). ``viewport``:
    the viewport's size in pixels (the window is resized around it; the private screen is
    then 1920x1080 so the docks fit beside it)."""
    if os.environ.get("DISPLAY"):
        return _run(demo, seconds, modes, target_ms, viewport)
    import json
    import subprocess
    import sys
    import tempfile

    from pyvirtualdisplay import Display

    screen = (1920, 1080) if viewport else (1280, 800)
    with tempfile.TemporaryDirectory() as tmp, Display(visible=False, size=screen) as d:
        out = Path(tmp) / "viewer.json"
        cmd = [sys.executable, "-m", "nsv", "bench", "viewer", "--seconds", str(seconds),
               "--json", str(out), "--scene", str(demo)]  # fmt: skip
        if modes:
            cmd += ["--modes", ",".join(modes)]
        if target_ms is not None:
            cmd += ["--target-ms", str(target_ms)]
        if viewport:
            cmd += ["--viewport", f"{viewport[0]}x{viewport[1]}"]
        env = {**os.environ, "DISPLAY": f":{d.display}"}
        subprocess.run(cmd, env=env, check=False)
        return json.loads(out.read_text()) if out.is_file() else {}


def _run(demo: Path, seconds: float, modes, target_ms: float | None = None,
         viewport: tuple[int, int] | None = None) -> dict:  # fmt: skip
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from engine.modes import MODES
    from viewer.app import configure_gl
    from viewer.main_window import MainWindow

    configure_gl()
    app = QApplication.instance() or QApplication([])
    win = MainWindow(device=None)
    if target_ms is not None:  # the frame budget dynamic resolution aims for while moving
        win.viewport.settings.target_ms = target_ms
    win.show()
    vp = win.viewport
    if viewport:
        app.processEvents()
        win.resize(win.width() + viewport[0] - vp.width(), win.height() + viewport[1] - vp.height())
        end = time.perf_counter() + 5
        while (vp.width(), vp.height()) != tuple(viewport) and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    def pump(until):
        while time.perf_counter() < until:
            app.processEvents()
            time.sleep(0.002)

    def wait(cond, timeout=120.0):
        end = time.perf_counter() + timeout
        while not cond() and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.005)

    def mouse(kind, x, y, buttons):
        p = QPointF(x, y)
        btn = Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton
        ev = QMouseEvent(kind, p, vp.mapToGlobal(p), btn, buttons, Qt.NoModifier)
        QApplication.sendEvent(vp, ev)

    # (time, (width, height), what denoised it ("" if nothing: the status line's words),
    # request id or None for OpenGL) of every frame shown
    shown: list[tuple[float, tuple[int, int], str, int | None]] = []

    frames: dict[float, object] = {}  # the engine's Frame of each shown frame, by time

    def on_stats(s: dict) -> None:
        f = s.get("frame")
        denoiser = (f.denoiser or "?") if f is not None and f.denoised else ""
        shown.append((time.perf_counter(), tuple(s["resolution"][:2]), denoiser, s.get("request")))
        if f is not None:
            frames[shown[-1][0]] = f
        if s.get("complete"):  # a mode's GL drawer: the current camera drawn completely
            complete.append(shown[-1][0])

    complete: list[float] = []

    vp.stats.connect(on_stats)

    def press(key) -> None:
        """A key press as a user makes it: to the focused widget of the active window."""
        from PySide6.QtTest import QTest

        if QApplication.activeWindow() is not win:
            win.activateWindow()
            wait(lambda: QApplication.activeWindow() is win, timeout=5.0)
        QTest.keyClick(QApplication.focusWidget() or win, key)
        app.processEvents()

    plan = modes or ["gl", "color", "neural", "pathtrace", "pathtrace+denoise", "fit"]
    results = []
    fit_result = None
    print(f"viewer bench: window {win.width()}x{win.height()}, {seconds:.0f} s orbit per mode")
    for entry in plan:
        if entry == "fit":
            fit_result = _bench_fit(win, wait, pump)
            continue
        # "pathtrace+denoise": path trace with the denoiser on (key N), as a user turns it on
        key, _, extra = entry.partition("+")
        want_denoise = extra == "denoise"
        scene = "cornell-box" if MODES[key].renderer == "pathtrace" else str(demo)
        if (key == "gaussians" and not str(demo).endswith((".ply", ".splat"))) or (
            key == "gaussians" and Path(demo).resolve() == Path(DEMO_SCENE).resolve()
        ):
            scene = str(_gaussians_scene())
        if win.scene_path is None or str(win.scene_path) != scene:
            win.open_path(scene)
            wait(lambda: not win.loading)
        if not win.set_mode(key):
            print(f"  {entry}: not available")
            continue
        if win.controls.denoise.isChecked() != want_denoise and MODES[key].renderer == "pathtrace":
            press(Qt.Key_N)
        wait(vp.is_settled)
        pump(time.perf_counter() + 1.0)  # let a still frame or two land (the cost model)
        full_w = vp.current_camera().width
        still_size = shown[-1][1] if shown else None  # the last frame before the drag
        shown.clear()
        w, h = vp.width(), vp.height()
        before = vp.last_request  # frames asked for until now show the still camera
        t_start = time.perf_counter()
        mouse(QEvent.MouseButtonPress, w * 0.3, h * 0.5, Qt.LeftButton)
        n = int(seconds / 0.016)
        for i in range(1, n + 1):  # a steady drag, one event every 16 ms
            mouse(QEvent.MouseMove, w * 0.3 + i * (0.4 * w / n), h * 0.5, Qt.LeftButton)
            pump(t_start + i * 0.016)
        t_stop = time.perf_counter()
        mouse(QEvent.MouseButtonRelease, w * 0.7, h * 0.5, Qt.NoButton)
        if MODES[key].progressive:
            pump(t_stop + 1.5)
        else:
            wait(lambda: vp.is_settled() and not vp.is_moving())
        during = [f for f in shown if t_start < f[0] <= t_stop]
        moved_frames = [frames[t] for t, *_ in during if t in frames]
        quality = _moving_quality(vp, moved_frames, (w, h))
        # The engine's own time per moving frame: what the intervals spend beyond it is the
        # window's (painting, the GUI thread's share of the CPU, waiting for a request).
        engine_ms = [f.render_ms for f in moved_frames if f.render_ms > 0]
        moving = [t for t, _, _, _ in during]
        moving_sizes = [size for _, size, _, _ in during]
        n_denoised = sum(bool(d) for _, _, d, _ in during)
        used = sorted({d for _, _, d, _ in during if d})
        # The first frame of the moved camera: not a still frame requested before the press
        # that lands after it (a progressive mode always has one in flight).
        first_moved = [t for t, _, _, r in during if r is None or r > before]
        first = (first_moved[0] - t_start) * 1000 if first_moved else float("nan")
        gaps = np.diff([t_start, *moving]) * 1000 if moving else np.array([np.nan])
        # Progressive modes never reach "full quality": they keep adding samples.
        # A frame at full size that is not a moving frame (Neural's preview network draws its
        # moving frames at full size too).
        full = [t for t, (fw, _), _, _ in shown if t > t_stop and abs(fw - full_w) <= 1
                and (t not in frames or frames[t].network != "preview")]  # fmt: skip
        if MODES[key].gl is not None:
            full = [t for t in complete if t > t_stop]
        to_full = (full[0] - t_stop) * 1000 if full else float("nan")
        if MODES[key].progressive:
            to_full = float("nan")
        frames.clear()
        row = {
            "mode": entry,
            "first_moving_ms": first,
            "p50_ms": float(np.percentile(gaps, 50)),
            "p95_ms": float(np.percentile(gaps, 95)),
            "frames_while_moving": len(moving),
            "intervals_ms": [round(float(g), 1) for g in gaps],
            "engine_p50_ms": float(np.percentile(engine_ms, 50)) if engine_ms else float("nan"),
            "to_full_quality_ms": to_full,
            "viewport": [w, h],
            "still_size": list(still_size) if still_size else None,
            # the commonest frame size while moving (modes that fly at a reduced size)
            "moving_size": list(max(set(moving_sizes), key=moving_sizes.count))
            if moving_sizes
            else None,
            "denoised_while_moving": n_denoised,
            "denoisers_while_moving": used,
            **quality,
        }
        results.append(row)
        print(
            f"  {entry:<10} first moving frame {first:7.0f} ms   while moving p50 "
            f"{row['p50_ms']:6.0f} / p95 {row['p95_ms']:6.0f} ms ({len(moving)} frames"
            + (f", engine p50 {row['engine_p50_ms']:.0f} ms" if engine_ms else "")
            + ")   "
            + ("" if MODES[key].progressive else f"full quality {to_full:6.0f} ms after stop")
            + (
                f"   moving at {row['moving_size'][0]}x{row['moving_size'][1]}"
                if moving_sizes
                else ""
            )
            + (f", {n_denoised} denoised ({' / '.join(used)})" if want_denoise else "")
            + (f"   moving frames {quality['moving_psnr_db']:.2f} dB vs full quality, "
               f"{quality['moving_scale']:.2f} of the pixels" if quality else "")
        )  # fmt: skip
    win.close()
    import torch

    from engine.device import describe, pick_device

    return {"viewer": results, "fit": fit_result, "device": describe(pick_device(None)),
            "threads": torch.get_num_threads()}  # fmt: skip


FIT_SECONDS = 20.0
QUALITY_FRAMES = 8  # moving frames compared with the full-quality frame at their camera


def _moving_quality(vp, moving_frames: list, viewport_px: tuple[int, int]) -> dict:
    """How the engine's moving frames compare with the full-quality frame at the same camera
    and viewport size: ``moving_psnr_db`` (mean over up to QUALITY_FRAMES moving frames, each
    scaled up to the viewport as the window shows it, bilinear), ``moving_scale`` (moving-frame
    pixels / viewport pixels). Empty for modes the engine does not draw (GL) and progressive
    ones (their still frames keep changing)."""
    import torch
    import torch.nn.functional as F

    from engine.metrics import psnr

    mode = vp.mode
    renderer = vp.renderers.for_mode(mode)
    if renderer is None or mode.progressive or not moving_frames:
        return {}
    vw, vh = vp.pixel_size()
    picks = moving_frames[:: max(1, len(moving_frames) // QUALITY_FRAMES)][:QUALITY_FRAMES]
    scores, scales = [], []
    opts = mode.make_options(vp.settings, None, False)
    for f in picks:
        full_cam = f.camera.resized(vw, vh)
        full = renderer.render(full_cam, opts).image
        shown = torch.from_numpy(f.image).permute(2, 0, 1)[None].float() / 255
        shown = F.interpolate(shown, size=(vh, vw), mode="bilinear", align_corners=False)
        ref = torch.from_numpy(full).permute(2, 0, 1)[None].float() / 255
        scores.append(float(psnr(shown.clamp(0, 1), ref)))
        scales.append(f.image.shape[0] * f.image.shape[1] / (vw * vh))
    return {"moving_psnr_db": float(np.mean(scores)), "moving_scale": float(np.mean(scales)),
            "moving_psnr_frames": len(scores)}  # fmt: skip


BENCH_GAUSSIANS = 1_000_000


def _gaussians_scene() -> Path:
    """A 1M-Gaussian splatting PLY over the demo's surfaces, made once in the user cache."""
    from engine.points.lod import user_cache_dir
    from engine.synthetic.gaussians import write_demo_gaussians

    path = user_cache_dir() / f"bench_gaussians_{BENCH_GAUSSIANS}.ply"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"  writing a {BENCH_GAUSSIANS:,}-Gaussian scene to {path}")
        write_demo_gaussians(path, BENCH_GAUSSIANS)
    return path


def _bench_fit(win, wait, pump) -> dict:
    """Steps per second of the same NPBG fit (a small synthetic capture, the bundled pretrained
    network, the Train dock's settings) without a window, then in the window while the Neural
    view shows its live preview."""
    import tempfile
    import threading

    from engine.synthetic.render import write_synthetic_scene
    from engine.synthetic.scenes import random_objects
    from engine.trainers import TRAINERS

    tmp = Path(tempfile.mkdtemp(prefix="nsv-bench-fit-"))
    scene_dir = tmp / "capture"
    write_synthetic_scene(scene_dir, random_objects(1), 24, 60_000, 320, 240, progress=False)
    panel = win.fit_panel
    steps = panel.steps.value()

    def rate(run, count) -> float:
        """Steps per second over FIT_SECONDS after the first 5 s (photo loading, warm-up)."""
        t0 = time.perf_counter()
        pump_or_sleep(run, t0 + 5)
        s0, t1 = count(), time.perf_counter()
        pump_or_sleep(run, t1 + FIT_SECONDS)
        return (count() - s0) / (time.perf_counter() - t1)

    def pump_or_sleep(in_window: bool, until: float) -> None:
        if in_window:
            pump(until)
        else:
            time.sleep(max(0.0, until - time.perf_counter()))

    fitter = TRAINERS["npbg"].build(scene_dir, tmp / "cli", steps, win.device)  # the panel's
    stop = threading.Event()
    thread = threading.Thread(target=lambda: fitter.run(progress=False, stop=stop))
    thread.start()
    cli = rate(False, lambda: fitter.step)
    stop.set()
    thread.join()

    win.open_path(str(scene_dir))
    wait(lambda: not win.loading)
    panel.start_btn.click()
    wait(lambda: panel.fitter is not None)
    window = rate(True, lambda: panel.fitter.step)
    panel.stop()
    wait(lambda: not panel.running)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    vp = win.viewport
    res = {"cli_steps_per_s": cli, "window_steps_per_s": window, "ratio": window / cli,
           "viewport": [vp.width(), vp.height()]}  # fmt: skip
    print(f"  fit        {cli:.2f} steps/s without a window, {window:.2f} in the window with "
          f"the Neural preview ({100 * window / cli:.0f}%)")  # fmt: skip
    return res
