import math

import numpy as np
import pytest

from engine.camera import Camera, qvec_to_rotmat, rotation_about, rotmat_to_qvec


def random_camera(rng, w=64, h=48) -> Camera:
    eye = rng.normal(size=3) * 3
    return Camera.look_at(eye, rng.normal(size=3) * 0.1, [0, 1, 0], w, h, 55.0)


def test_look_at_puts_target_at_principal_point(rng):
    cam = Camera.look_at([1, 2, 3], [0, 0, 0], [0, 1, 0], 64, 48)
    uv, z = cam.project(np.zeros((1, 3)))
    assert np.allclose(uv[0], [32, 24])
    assert z[0] == pytest.approx(math.sqrt(14))
    # World up appears toward the top of the image (smaller v).
    uv_up, _ = cam.project(np.array([[0, 0.1, 0]]))
    assert uv_up[0, 1] < 24


def test_gl_matrices_match_pixel_projection(rng):
    cam = random_camera(rng)
    pts = rng.normal(size=(50, 3)) * 0.5
    uv, z = cam.project(pts)
    clip = (cam.gl_projection_matrix() @ cam.gl_view_matrix() @ np.c_[pts, np.ones(50)].T).T
    ndc = clip[:, :3] / clip[:, 3:4]
    u_gl = (ndc[:, 0] + 1) / 2 * cam.width
    v_gl = (1 - ndc[:, 1]) / 2 * cam.height  # GL y is up, image rows go down
    assert np.allclose(u_gl, uv[:, 0]) and np.allclose(v_gl, uv[:, 1])
    assert np.allclose(clip[:, 3], z)  # w_clip is the camera depth


def test_from_gl_inverts_to_gl(rng):
    cam = random_camera(rng)
    back = Camera.from_gl(cam.gl_view_matrix(), cam.gl_projection_matrix(), cam.width, cam.height)
    assert np.allclose(back.world_to_camera, cam.world_to_camera)
    assert np.allclose([back.fx, back.fy, back.cx, back.cy], [cam.fx, cam.fy, cam.cx, cam.cy])
    assert back.near == pytest.approx(cam.near) and back.far == pytest.approx(cam.far, rel=1e-6)


def test_quaternion_round_trip(rng):
    for _ in range(20):
        R = rotation_about(rng.normal(size=3), rng.uniform(-3, 3))
        q = rotmat_to_qvec(R)
        assert np.allclose(qvec_to_rotmat(q), R, atol=1e-9)


def test_colmap_pose_is_our_convention():
    # Identity rotation, camera at z = -2 in world: COLMAP tvec = -R @ C = (0, 0, 2).
    cam = Camera.from_colmap(100, 80, 50, 50, 50, 40, [1, 0, 0, 0], [0, 0, 2])
    assert np.allclose(cam.position, [0, 0, -2])
    uv, z = cam.project(np.array([[0.2, 0.0, 0.0]]))
    assert uv[0, 0] > 50 and z[0] == pytest.approx(2.0)  # +X world is to the right


def test_resized_keeps_normalized_projection(rng):
    cam = random_camera(rng, 64, 48)
    small = cam.resized(32, 24)
    pts = rng.normal(size=(10, 3)) * 0.3
    assert np.allclose(small.project(pts)[0] * 2, cam.project(pts)[0])


def test_dict_round_trip_and_validation(rng):
    cam = random_camera(rng)
    back = Camera.from_dict(cam.to_dict())
    assert np.array_equal(back.world_to_camera, cam.world_to_camera)
    assert (back.width, back.height, back.fx, back.cy) == (cam.width, cam.height, cam.fx, cam.cy)
    bad = cam.to_dict()
    bad["world_to_camera"] = [[1, 0], [0, 1]]
    with pytest.raises(ValueError):
        Camera.from_dict(bad)
