"""A crop of a photo rasterized from its photo cull (engine.points.cull) is the crop rasterized
from the whole cloud, pixel for pixel, while projecting a fraction of the points."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.camera import Camera
from engine.points import rasterize_points
from engine.points.cull import PhotoCull


def _photo_and_cloud(seed: int) -> tuple[Camera, torch.Tensor]:
    rng = np.random.default_rng(seed)
    # A scene all round the camera, as a 360-degree capture's room: much of it outside the frame
    # or behind, some of it beyond the far plane.
    pts = rng.normal(size=(40_000, 3)) * np.array([3.0, 2.0, 3.0])
    cam = Camera.look_at(np.array([0.3, 0.1, -1.0]), np.zeros(3), np.array([0.0, -1.0, 0.0]),
                         120, 96, 50.0)  # fmt: skip
    return replace(cam, far=6.0), torch.from_numpy(pts.astype(np.float32))


def _crop(photo: Camera, scale: float, x0: int, y0: int, size: int) -> Camera:
    """As ViewSet.sample: the photo rescaled, then a size x size window at (x0, y0)."""
    cam = photo.scaled(scale)
    return Camera(size, size, cam.fx, cam.fy, cam.cx - x0, cam.cy - y0, cam.world_to_camera,
                  cam.near, cam.far)  # fmt: skip


@pytest.mark.parametrize("point_size", [1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_crop_rasterized_from_its_rows_equals_it_from_the_whole_cloud(seed, point_size):
    photo, pts = _photo_and_cloud(seed)
    cull = PhotoCull(pts, photo)
    rng = np.random.default_rng(seed + 10)
    fractions = []
    for _ in range(12):
        s = float(rng.uniform(0.75, 1.25))
        w, h = round(photo.width * s), round(photo.height * s)
        x0, y0 = int(rng.integers(0, w - 48 + 1)), int(rng.integers(0, h - 48 + 1))
        crop = _crop(photo, s, x0, y0, 48)
        ids = cull.points_for(crop)
        assert ids is not None
        fractions.append(len(ids) / len(pts))
        whole = rasterize_points(pts, crop, point_size, 3)
        part = rasterize_points(pts[ids.long()], crop, point_size, 3, ids=ids)
        for a, b in zip(whole, part, strict=True):
            assert torch.equal(a.index, b.index)
            assert torch.equal(a.depth, b.depth)
            assert (a.index >= 0).any()
    assert max(fractions) < 0.3  # it does cull: most of the cloud is never projected


def test_a_view_that_is_not_a_crop_of_the_photo_is_not_culled():
    photo, pts = _photo_and_cloud(0)
    cull = PhotoCull(pts, photo)
    moved = photo.with_pose(photo.world_to_camera @ np.diag([1.0, 1.0, 1.0, 1.0]) + 1e-3)
    assert cull.points_for(moved) is None
    # A window reaching below the photo (as a crop padded to the network's multiple): the
    # points there were never sorted in.
    assert cull.points_for(_crop(photo, 1.0, 0, 80, 32)) is None
    assert cull.points_for(_crop(photo, 1.0, 0, 64, 32)) is not None
