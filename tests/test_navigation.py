import math

import numpy as np
import pytest

from engine.navigation import Navigator, home_navigator
from engine.scene.types import Scene


def nav_at_origin() -> Navigator:
    nav = Navigator()
    nav.look_at([0, 0, 5], [0, 0, 0], up=[0, 1, 0])
    return nav


def test_orbit_keeps_pivot_and_distance():
    nav = nav_at_origin()
    nav.orbit(0.7, -0.3)
    assert np.allclose(nav.pivot, 0, atol=1e-9)
    assert np.linalg.norm(nav.eye) == pytest.approx(5)
    assert np.allclose(nav.axes @ nav.axes.T, np.eye(3), atol=1e-9)  # still a rotation


def test_orbit_yaw_right_moves_eye_left_and_pitch_down_raises_it():
    nav = nav_at_origin()
    right_before = nav.axes[0].copy()
    nav.orbit(0.3, 0.0)
    assert np.dot(nav.eye, right_before) < 0  # camera went left: the scene turns right
    nav = nav_at_origin()
    nav.orbit(0.0, -0.4)  # tilt the view down: the eye rises above the pivot
    assert nav.eye[1] > 0


def test_pitch_is_clamped_short_of_the_pole():
    nav = nav_at_origin()
    nav.orbit(0.0, -10.0)
    assert abs(np.dot(nav.axes[2], nav.up)) < math.sin(math.radians(89))
    assert np.all(np.isfinite(nav.eye))


def test_pan_moves_pivot_in_the_view_plane():
    nav = nav_at_origin()
    nav.pan(100, 0, viewport_height=500)
    assert nav.pivot[2] == pytest.approx(0)
    assert np.dot(nav.pivot, nav.axes[0]) < 0  # drag right: the scene follows the mouse


def test_zoom_changes_distance_not_pivot():
    nav = nav_at_origin()
    nav.zoom(2)
    assert nav.distance == pytest.approx(5 * 0.85**2)
    assert np.allclose(nav.pivot, 0, atol=1e-9)


def test_fly_motion_is_frame_rate_independent():
    a, b = nav_at_origin(), nav_at_origin()
    for _ in range(100):
        a.fly([0, 0, 1], speed=2.0, dt=0.01)
    b.fly([0, 0, 1], speed=2.0, dt=1.0)
    assert np.allclose(a.eye, b.eye)
    assert np.allclose(b.eye, [0, 0, 3])  # forward toward the origin at 2 units/s


def test_jump_to_reproduces_registered_camera():
    from engine.camera import Camera

    cam = Camera(640, 480, 500, 510, 300, 250, np.eye(4))
    nav = nav_at_origin()
    nav.jump_to(cam)
    got = nav.camera(640, 480)
    assert np.allclose(got.world_to_camera, cam.world_to_camera)
    assert (got.fx, got.fy, got.cx, got.cy) == (500, 510, 300, 250)


def test_home_view_frames_the_cloud(rng):
    pts = rng.normal(size=(1000, 3)).astype(np.float32) + 10
    nav = home_navigator(Scene(points=pts))
    cam = nav.camera(200, 200)
    uv, z = cam.project(pts)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < 200) & (uv[:, 1] >= 0) & (uv[:, 1] < 200) & (z > 0)
    assert inside.mean() > 0.98
    nav.orbit(1.0, 0.2)
    nav.reset()
    assert np.allclose(nav.camera(200, 200).world_to_camera, cam.world_to_camera)
