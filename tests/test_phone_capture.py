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
    truth = json.loads((tmp_path / "cap" / "truth.json").read_text())
    assert sorted(truth) == sorted(applied)
