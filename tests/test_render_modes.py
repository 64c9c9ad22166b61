import numpy as np
import pytest
import torch

from engine.camera import Camera
from engine.open_path import load_scene
from engine.points.render import PointCloudRenderer, PointRenderOptions
from engine.scene.types import Scene
from tests.conftest import DEMO
from tests.helpers import coverage


def plane_scene(n=20000, normals=True):
    rng = np.random.default_rng(0)
    xy = rng.uniform(-1, 1, size=(n, 2))
    pts = np.c_[xy, xy[:, 0] * 0.5].astype(np.float32)  # tilted: depth grows with x
    nrm = np.tile(np.array([[-0.5, 0, 1]], np.float32) / np.sqrt(1.25), (n, 1))
    return Scene(
        points=pts, colors=np.full((n, 3), 0.8, np.float32), normals=nrm if normals else None
    )


CAM = Camera.look_at([0, 0, -3], [0, 0, 0], [0, -1, 0], 96, 96, 50)


def test_color_mode_draws_colors():
    img = PointCloudRenderer(plane_scene(), "cpu").render(CAM, PointRenderOptions("color", 2)).image
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    centre = img[40:56, 40:56].reshape(-1, 3)
    assert np.all(np.abs(centre.astype(int) - 204) <= 1)


def test_depth_mode_near_is_warm_far_is_cool():
    img = PointCloudRenderer(plane_scene(), "cpu").render(CAM, PointRenderOptions("depth", 2)).image
    row = img[48].astype(int)
    # The camera looks down +z; points with smaller x are nearer (turbo: red near, blue far).
    left, right = row[30], row[66]
    assert left[0] > left[2] and right[2] > right[0]


@pytest.mark.parametrize("with_normals", [True, False])
def test_normal_mode_shows_facing_surface_as_blue(with_normals):
    r = PointCloudRenderer(plane_scene(normals=with_normals), "cpu")
    img = r.render(CAM, PointRenderOptions("normal", 3)).image.astype(int)
    centre = img[44:52, 44:52].reshape(-1, 3).mean(0)
    assert centre[2] > 180 and centre[2] > centre[1]  # facing the viewer: +z (blue) dominates
    # The surface z = x/2 faces the camera along (+0.5, 0, -1): tilted to the right, red > grey.
    assert 170 < centre[0] < 200


def test_scale_level_is_blockier_but_same_size():
    r = PointCloudRenderer(plane_scene(2000), "cpu")
    fine = r.render(CAM, PointRenderOptions("color", 1, 0)).image
    coarse = r.render(CAM, PointRenderOptions("color", 1, 2)).image
    assert coarse.shape == fine.shape
    assert coverage(coarse) > coverage(fine)  # the 1/4 level has fewer holes


def test_max_points_draws_a_subset():
    r = PointCloudRenderer(plane_scene(), "cpu")
    f = r.render(CAM, PointRenderOptions("color", 1, max_points=1000))
    assert f.points_drawn == 1000
    assert coverage(f.image) < coverage(r.render(CAM, PointRenderOptions("color", 1)).image)


def test_gl_points_agree_with_torch_rasterizer():
    gl = pytest.importorskip("viewer.gl.offscreen")
    from engine.errors import NsvError

    scene = load_scene(DEMO)
    from engine.navigation import home_navigator

    cam = home_navigator(scene).camera(320, 240)
    try:
        gl_img = gl.OffscreenPointRenderer(scene).render(cam, 1)
    except NsvError as e:
        pytest.skip(str(e))
    torch_img = PointCloudRenderer(scene, "cpu").render(cam, PointRenderOptions("color", 1)).image
    same = (np.abs(gl_img.astype(int) - torch_img).max(-1) <= 1).mean()
    assert same > 0.98
    assert coverage(gl_img) > 0.05


def test_render_on_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    scene = plane_scene()
    a = PointCloudRenderer(scene, "cpu").render(CAM, PointRenderOptions("color", 3)).image
    b = PointCloudRenderer(scene, "cuda").render(CAM, PointRenderOptions("color", 3)).image
    assert (a == b).all(-1).mean() > 0.999
