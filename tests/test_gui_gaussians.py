"""Gaussians mode in the real window: opening a splatting file picks it, the frame matches the
headless render at the same camera, flying with the mouse redraws, keys switch modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.gui import drag, grab, press, settle
from tests.test_gaussians import psnr, random_scene, write_3dgs_ply

pytestmark = pytest.mark.gui


def _open(qtbot, win, path):
    win.open_path(path)
    qtbot.waitUntil(lambda: not win.loading, timeout=30_000)
    assert win.last_error is None, win.last_error
    settle(qtbot, win)


def _headless(path, shot, tmp_path, name):
    from nsv.main import main as nsv

    out = tmp_path / f"{name}.png"
    cam = str(shot.with_suffix(".camera.json"))
    assert (
        nsv(["render", str(path), "--mode", "gaussians", "--camera", cam, "--out", str(out)]) == 0
    )
    import imageio.v3 as iio

    return iio.imread(out)[..., :3]


def test_gaussians_open_fly_and_match_headless(qtbot, window, tmp_path, rng):
    import imageio.v3 as iio

    arrays = random_scene(rng, n=400, degree=3)
    path = write_3dgs_ply(tmp_path / "point_cloud.ply", *arrays)
    _open(qtbot, window, path)
    vp = window.viewport
    assert vp.settings.mode == "gaussians"  # picked because the file holds Gaussians
    assert window.controls.mode.currentData() == "gaussians"
    # Every Gaussian that reaches into the view is drawn (those wholly outside are culled).
    from engine.gaussians.view_order import view_order

    g = window.scene.gaussians
    in_view = len(view_order(g, vp.current_camera(), reach=g.reach()).index)
    assert 300 < in_view <= 400
    assert f"400 Gaussians, {in_view} in view" in window.status_label.text()

    shot = window.save_screenshot(tmp_path / "a.png")
    win_img = iio.imread(shot)[..., :3]
    assert win_img.std() > 5
    assert psnr(win_img / 255.0, _headless(path, shot, tmp_path, "a") / 255.0) >= 35.0

    # Fly: a left drag orbits; the window redraws the splats from the new camera.
    w, h = vp.width(), vp.height()
    drag(vp, (w * 0.3, h * 0.5), (w * 0.65, h * 0.45))
    settle(qtbot, window)
    shot = window.save_screenshot(tmp_path / "b.png")
    moved = iio.imread(shot)[..., :3]
    assert (np.abs(moved.astype(int) - win_img).max(-1) > 10).mean() > 0.02
    assert psnr(moved / 255.0, _headless(path, shot, tmp_path, "b") / 255.0) >= 35.0

    # The documented keys: 1 shows the centres as GL points, G the splats again.
    press(qtbot, window, "1")
    settle(qtbot, window)
    points = grab(window)
    press(qtbot, window, "G")
    settle(qtbot, window)
    assert vp.settings.mode == "gaussians"
    again = grab(window)
    assert (np.abs(points.astype(int) - again).max(-1) > 10).mean() > 0.02
    assert json.loads(shot.with_suffix(".camera.json").read_text())["width"] == again.shape[1]


def test_gaussians_key_says_what_is_missing_on_a_plain_cloud(qtbot, window):
    from tests.conftest import DEMO

    _open(qtbot, window, DEMO)
    press(qtbot, window, "G")
    assert window.viewport.settings.mode != "gaussians"
    assert (
        "Gaussian" in window.status_label.text() and "not available" in window.status_label.text()
    )


def test_wipe_compare_of_the_neural_scene_against_the_captures_gaussians(qtbot, window, tmp_path):
    """A capture folder with a fitted neural model and a Gaussian splatting result: the wipe
    compare (key 7) shows the neural rendering left of the line and the Gaussians right of it,
    each as its own mode draws it at the same camera."""
    from engine.open_path import load_scene
    from tests.gui import fit_tiny
    from tests.helpers import write_colmap_with_photos

    root, _ = write_colmap_with_photos(tmp_path / "cap")
    fit_tiny(root)
    pts = load_scene(root).points
    rng = np.random.default_rng(2)
    pick = rng.choice(len(pts), 300, replace=False)
    _, log_scales, quats, logits, sh = random_scene(rng, n=300, degree=1)
    write_3dgs_ply(root / "gaussians.ply", pts[pick], log_scales - 1.5, quats, logits + 2, sh)
    _open(qtbot, window, root)
    assert window.viewport.settings.mode == "neural"
    neural = grab(window)
    press(qtbot, window, "G")
    settle(qtbot, window)
    gaussians = grab(window)
    assert (np.abs(gaussians.astype(int) - neural).max(-1) > 10).mean() > 0.01
    press(qtbot, window, "7")
    combo = window.controls.compare_with
    combo.setCurrentIndex(combo.findData("gaussians"))  # the "Compare with" list
    settle(qtbot, window)
    img = grab(window).astype(int)
    x = round(window.viewport.settings.wipe * img.shape[1])
    left, right = slice(0, x - 2), slice(x + 3, img.shape[1])
    assert (np.abs(img[:, left] - neural[:, left]).max(-1) <= 2).mean() > 0.99
    assert (np.abs(img[:, right] - gaussians[:, right]).max(-1) <= 2).mean() > 0.99
