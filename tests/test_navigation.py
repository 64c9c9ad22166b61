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


def _ring_capture(rng, radius: float, room: float | None, arc: float = 2 * math.pi) -> Scene:
    """An object at the origin photographed from a ring (``arc`` radians of it) of cameras at
    ``radius``, looking at it; with ``room``, walls of points at that distance around it."""
    from engine.camera import Camera
    from engine.scene.types import RegisteredView

    pts = [rng.normal(scale=0.5, size=(2000, 3))]
    if room is not None:
        a = rng.uniform(0, 2 * math.pi, 3000)
        pts.append(np.stack([room * np.cos(a), rng.uniform(-2, 2, 3000), room * np.sin(a)], 1))
    views = []
    for t in np.linspace(0, arc, 24, endpoint=arc < 2 * math.pi):
        eye = [radius * math.sin(t), 0.5, -radius * math.cos(t)]
        views.append(
            RegisteredView(f"{len(views)}", Camera.look_at(eye, [0, 0, 0], [0, -1, 0], 64, 48))
        )
    return Scene(
        points=np.concatenate(pts).astype(np.float32), views=views, up=np.array([0.0, -1.0, 0.0])
    )


def test_home_view_of_a_capture_inside_its_room_is_a_photos_view(rng):
    # A 360-degree phone capture whose points reach the room's walls: framing the cloud would
    # put the eye outside the walls; the home view is the first photo's, pivoting on the object.
    scene = _ring_capture(rng, radius=3.0, room=12.0)
    nav = home_navigator(scene)
    first = scene.views[0].camera
    assert np.allclose(nav.eye, first.position)
    assert np.allclose(nav.axes[2], first.forward)
    assert np.linalg.norm(nav.pivot) < 0.1  # where the cameras look
    # Framing it all (F) moves the near plane out with the eye; R brings the clip planes back
    # too, or the home view would lose what lies close to the photo's camera.
    home = nav.camera(64, 48)
    nav.frame_points(*scene.bounds())
    assert nav.near > 2 * home.near
    nav.reset()
    back = nav.camera(64, 48)
    assert (back.near, back.far) == (home.near, home.far)
    assert np.allclose(back.world_to_camera, home.world_to_camera)
    # Framing the object and its cameras (no room) keeps the old home view, outside the ring.
    nav = home_navigator(_ring_capture(rng, radius=3.0, room=None))
    assert np.linalg.norm(nav.eye) > 3.5


def test_home_view_of_a_forward_facing_sweep_is_its_middle_photo(rng):
    from engine.camera import Camera
    from engine.scene.types import RegisteredView

    # Photos along a line, all looking +Z at a wall 8 units ahead (a room's sweep).
    views = [RegisteredView(f"{i}", Camera.look_at([x, 0, 0], [x * 0.5, 0, 8], [0, -1, 0], 64, 48))
             for i, x in enumerate(np.linspace(-2, 2, 9))]  # fmt: skip
    wall = np.stack([rng.uniform(-10, 10, 4000), rng.uniform(-3, 3, 4000), np.full(4000, 8.0)], 1)
    nav = home_navigator(Scene(points=wall.astype(np.float32), views=views))
    assert np.allclose(nav.eye, views[4].camera.position)
    assert nav.distance == pytest.approx(8.0, rel=0.05)
