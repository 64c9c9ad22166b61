"""`nsv data phone`: phone-like test captures (engine/synthetic/phone.py)."""

from __future__ import annotations

import json

import numpy as np

from engine.camera import Camera
from engine.synthetic.phone import PhoneLook, _undistort_points, distort, write_phone_capture


def test_distortion_follows_opencvs_radial_model():
    """A point the pinhole camera sees at (u, v) appears where OpenCV's k1/k2 model puts it."""
    k1, k2 = -0.08, 0.02
    xd, yd = np.array([0.0, 0.3, -0.5, 0.62]), np.array([0.0, -0.2, 0.4, 0.55])
    xu, yu = _undistort_points(xd, yd, k1, k2)
    r2 = xu * xu + yu * yu
    s = 1 + k1 * r2 + k2 * r2 * r2
    np.testing.assert_allclose(xu * s, xd, atol=1e-9)
    np.testing.assert_allclose(yu * s, yd, atol=1e-9)
    # An image that is a function of the pinhole direction: the distorted photo samples it at
    # the undistorted coordinates (barrel: the corners bring in more of the view).
    cam = Camera.from_fov(64, 48, 60.0)

    def render(c: Camera) -> np.ndarray:
        v, u = np.mgrid[0 : c.height, 0 : c.width] + 0.5
        x = (u - c.cx) / c.fx
        return np.stack([x, (v - c.cy) / c.fy, np.zeros_like(x)], -1).astype(np.float32)

    photo = distort(render, cam, k1, k2)
    v, u = np.mgrid[0:48, 0:64] + 0.5
    ex, ey = _undistort_points((u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, k1, k2)
    np.testing.assert_allclose(photo[..., 0], ex, atol=1e-4)
    np.testing.assert_allclose(photo[..., 1], ey, atol=1e-4)
    assert abs(photo[0, 0, 0]) > abs((0.5 - cam.cx) / cam.fx)  # more of the view in the corner


def test_phone_capture_has_the_phones_look_and_its_metadata(tmp_path):
    look = PhoneLook(exposure_stops=0.3)
    write_phone_capture(tmp_path / "cap", views=6, width=64, height=64, seed=3, look=look)
    meta = json.loads((tmp_path / "cap" / "transforms.json").read_text())
    assert len(meta["frames"]) == 6
    assert all(f["k1"] == look.k1 and f["k2"] == look.k2 for f in meta["frames"])
    assert all((tmp_path / "cap" / f["file_path"]).is_file() for f in meta["frames"])
    applied = json.loads((tmp_path / "cap" / "look.json").read_text())
    gains = np.array([a["exposure"] for a in applied.values()])
    assert gains.std() > 0.05  # auto-exposure changes from photo to photo
    metered = np.array([a["metered"] for a in applied.values()])
    assert np.all((metered >= 0.5) & (metered <= 2.0))
    assert np.abs(np.log2(gains / metered)).std() > 0.1  # the random part, 0.3 stops here
    truth = json.loads((tmp_path / "cap" / "truth.json").read_text())
    assert sorted(truth) == sorted(applied)


def test_a_fit_with_the_room_behind_the_objects_beats_one_without(tmp_path):
    """Issue 31's main gain, on a small phone-like capture: `nsv import`'s plane sweep now
    reaches the room around the objects (before, its depth range stopped at the objects' sparse
    points and fusion dropped far pixels: 0.1% of stitch_toy's points lay beyond the orbit),
    and held-out photos are better for it than a fit of the same capture without those points."""
    import dataclasses

    import torch

    from engine.capture.importer import ImportOptions, import_capture
    from engine.npbg.fit import FitConfig, Fitter, make_target
    from engine.open_path import load_scene

    # (Seeds 5, 6 and 7 all pass; one runs here.)
    write_phone_capture(tmp_path / "cap", views=24, width=160, height=160, seed=5)
    import_capture(
        tmp_path / "cap", tmp_path / "scene", ImportOptions(dense_side=160, num_depths=48)
    )
    scene = load_scene(tmp_path / "scene")
    beyond = np.linalg.norm(scene.points[:, [0, 2]], axis=1) > 1.8  # the orbit's radius is 2.3
    assert beyond.mean() > 0.1  # the room got points
    cfg = FitConfig(steps=200, crop=64, max_side=160, eval_every=0, checkpoint_every=0,
                    holdout_every=6, lr_decay=False)  # fmt: skip
    scores = {}
    for name, keep in (("with the room", slice(None)), ("without", ~beyond)):
        part = dataclasses.replace(scene, points=scene.points[keep], colors=scene.colors[keep])
        torch.manual_seed(0)
        fit = Fitter([make_target(part, cfg)], cfg, tmp_path / name)
        scores[name] = fit.run(progress=False)
    good, old = scores["with the room"], scores["without"]
    assert good["psnr"] > old["psnr"] + 0.3 and good["ssim"] > old["ssim"] + 0.03, scores


def test_nsv_data_phone_takes_any_size_given(tmp_path):
    """The kind's own defaults apply only when an option is not given: a --size equal to
    another kind's default (which used to read as "not given") is the size written."""
    import imageio.v3 as iio

    from tests.helpers import nsv

    res = nsv("data", "phone", str(tmp_path / "cap"), "--views", "3", "--size", "384x288")
    assert res.returncode == 0, res.stderr
    frames = json.loads((tmp_path / "cap" / "transforms.json").read_text())["frames"]
    assert len(frames) == 3
    assert iio.imread(tmp_path / "cap" / frames[0]["file_path"]).shape == (288, 384, 3)
