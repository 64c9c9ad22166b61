"""Reprojection of the denoiser's hidden state by the camera motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.camera import Camera
from engine.denoise.model import DenoiserConfig, RecurrentDenoiser
from engine.denoise.reproject import camera_tensors, reprojection_grid, warp


def _plane_depth(cam: Camera, z_world: float = -2.0) -> torch.Tensor:
    """(1, 1, H, W) z-depth of the plane z = z_world seen by ``cam`` (0 where missed)."""
    H, W = cam.height, cam.width
    d = np.zeros((H, W), np.float32)
    for i in range(H):
        for j in range(W):
            o, r = cam.pixel_ray(j + 0.5, i + 0.5)
            if abs(r[2]) > 1e-9:
                s = (z_world - o[2]) / r[2]
                if s > 0:
                    d[i, j] = s * float(np.dot(r, cam.forward))
    return torch.from_numpy(d)[None, None]


def test_identity_motion_keeps_every_pixel():
    cam = Camera.look_at([0.3, 0.2, 3.0], [0, 0, 0], [0, 1, 0], 24, 16, 50)
    depth = _plane_depth(cam)
    w2c, k = camera_tensors(cam)
    grid, valid = reprojection_grid(depth, w2c, k, depth, w2c, k)
    img = torch.rand(1, 5, 16, 24)
    assert valid.min() == 1
    assert torch.allclose(warp(img, grid, valid), img, atol=1e-5)


def test_reprojection_matches_projecting_the_point_into_the_previous_camera():
    prev = Camera.look_at([0.0, 0.0, 3.0], [0, 0, -2], [0, 1, 0], 32, 32, 60)
    cur = Camera.look_at([0.4, 0.1, 2.8], [0, 0, -2], [0, 1, 0], 32, 32, 60)
    depth, prev_depth = _plane_depth(cur), _plane_depth(prev)
    grid, valid = reprojection_grid(depth, *camera_tensors(cur), prev_depth, *camera_tensors(prev))
    # Pixel (i, j) of the current frame: its 3D point projected by our camera model.
    for i, j in [(5, 7), (16, 16), (25, 20)]:
        o, r = cur.pixel_ray(j + 0.5, i + 0.5)
        p = o + r * float(depth[0, 0, i, j]) / float(np.dot(r, cur.forward))
        uv, _ = prev.project(p[None])
        expect = [2 * uv[0, 0] / 32 - 1, 2 * uv[0, 1] / 32 - 1]
        assert np.allclose(grid[0, i, j].numpy(), expect, atol=1e-3)
        assert valid[0, 0, i, j] == 1


def test_disoccluded_and_off_screen_pixels_are_invalid():
    prev = Camera.look_at([0.0, 0.0, 3.0], [0, 0, -2], [0, 1, 0], 32, 32, 40)
    cur = Camera.look_at([1.5, 0.0, 3.0], [1.5, 0, -2], [0, 1, 0], 32, 32, 40)  # pans right
    depth, prev_depth = _plane_depth(cur), _plane_depth(prev)
    args = camera_tensors(prev)
    _, valid = reprojection_grid(depth, *camera_tensors(cur), prev_depth, *args)
    assert valid[0, 0, :, :4].sum() > 0 and valid[0, 0, :, -4:].sum() == 0  # new on the right
    # An occluder that was in front of the plane in the previous frame hides it there.
    blocked = prev_depth.clone()
    blocked[..., :, 20:] = 0.5
    _, valid2 = reprojection_grid(depth, *camera_tensors(cur), blocked, *args)
    assert valid2.sum() < valid.sum()


def test_warped_state_follows_a_rendered_image():
    """Warping one Mitsuba albedo frame into the next camera matches that camera's albedo."""
    pytest.importorskip("mitsuba")
    from engine.denoise.scenes import random_box_dict
    from engine.mitsuba_scene import MitsubaScene

    rng = np.random.default_rng(3)
    ms = MitsubaScene(None, 64, 64, scene_dict=random_box_dict(rng))
    a = Camera.look_at([0.3, 0.1, 3.6], [0, 0, 0], [0, 1, 0], 64, 64, 40)
    b = Camera.look_at([-0.2, 0.25, 3.3], [0, 0, 0], [0, 1, 0], 64, 64, 40)
    fa, fb = ms.render(a, 16, seed=1), ms.render(b, 16, seed=2)

    def chw(x):
        return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]

    da, db = (torch.from_numpy(f.depth)[None, None] for f in (fa, fb))
    grid, valid = reprojection_grid(db, *camera_tensors(b), da, *camera_tensors(a))
    warped = warp(chw(fa.albedo), grid, valid)
    target = chw(fb.albedo)
    m = valid[0, 0] > 0.5
    assert m.float().mean() > 0.6
    err_warped = (warped - target).abs()[0][:, m].mean()
    err_still = (chw(fa.albedo) - target).abs()[0][:, m].mean()
    assert err_warped < 0.4 * err_still, (err_warped, err_still)


def test_reprojecting_model_uses_motion():
    torch.manual_seed(0)  # the state's influence at initialisation depends on the weights
    m = RecurrentDenoiser(DenoiserConfig(channels=[8, 12, 16], reproject=True))
    g = torch.Generator().manual_seed(0)
    r, a = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g)
    n = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    d = torch.full((1, 1, 16, 16), 3.0)
    with torch.no_grad():
        _, state = m(r, a, n, d)
        still, _ = m(r, a, n, d, state)  # no motion given: state taken as aligned
        v, u = torch.meshgrid(torch.arange(16) + 0.5, torch.arange(16) + 0.5, indexing="ij")
        ident = torch.stack([2 * u / 16 - 1, 2 * v / 16 - 1], -1)[None]
        same, _ = m(r, a, n, d, state, (ident, torch.ones(1, 1, 16, 16)))
        shifted = torch.roll(ident, 4, dims=2)
        moved, _ = m(r, a, n, d, state, (shifted, torch.ones(1, 1, 16, 16)))
        lost, _ = m(r, a, n, d, state, (ident, torch.zeros(1, 1, 16, 16)))
    noise = (still - same).abs().max()  # identity warp: only float rounding
    assert noise < 1e-5
    assert (still - moved).abs().max() > 100 * max(noise, 1e-7)
    assert (still - lost).abs().max() > 100 * max(noise, 1e-7)
