import numpy as np
import pytest
import torch

from engine.camera import Camera
from engine.points import gather_features, rasterize_points


def brute_force(points: np.ndarray, cam: Camera, size: int = 1):
    """Nearest point per pixel by explicit loops (the reference). A point covers the pixels whose
    centres lie in [u - size/2, u + size/2) x [v - size/2, v + size/2), OpenGL's point rule."""
    uv, z = cam.project(points.astype(np.float32).astype(np.float64))
    H, W = cam.height, cam.width
    best_d = np.full((H, W), np.inf)
    best_i = np.full((H, W), -1)
    for i, ((u, v), d) in enumerate(zip(uv, z, strict=True)):
        if not (cam.near < d < cam.far and 0 <= u < W and 0 <= v < H):
            continue
        x0, x1 = int(np.ceil(u - size / 2 - 0.5)), int(np.ceil(u + size / 2 - 0.5))
        y0, y1 = int(np.ceil(v - size / 2 - 0.5)), int(np.ceil(v + size / 2 - 0.5))
        for y in range(y0, y1):
            for x in range(x0, x1):
                if 0 <= y < H and 0 <= x < W and d < best_d[y, x]:
                    best_d[y, x], best_i[y, x] = d, i
    return best_i, best_d


def cloud_and_camera(rng, n=3000, w=48, h=40):
    pts = rng.normal(size=(n, 3)) * np.array([1.0, 0.8, 1.0])
    cam = Camera.look_at(rng.normal(size=3) * 0.3 + [0, 0, -4], [0, 0, 0], [0, -1, 0], w, h, 45)
    return pts.astype(np.float32), cam


def agreement(idx: torch.Tensor, ref: np.ndarray) -> float:
    return float((idx.numpy() == ref).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_point_matches_brute_force(seed):
    pts, cam = cloud_and_camera(np.random.default_rng(seed))
    (r,) = rasterize_points(torch.from_numpy(pts), cam)
    ref_i, ref_d = brute_force(pts, cam)
    # float32 vs float64 projection may move a point across a pixel edge; allow a handful.
    assert agreement(r.index, ref_i) > 0.995
    both = (ref_i >= 0) & (r.index.numpy() >= 0)
    assert np.allclose(
        r.depth.numpy()[both & (r.index.numpy() == ref_i)],
        ref_d[both & (r.index.numpy() == ref_i)],
        rtol=1e-5,
    )
    assert torch.isinf(r.depth[r.index < 0]).all()


@pytest.mark.parametrize("size", [2, 3, 4, 5])
def test_splat_size_matches_brute_force(size, rng):
    pts, cam = cloud_and_camera(rng, n=400)
    (r,) = rasterize_points(torch.from_numpy(pts), cam, point_size=size)
    ref_i, _ = brute_force(pts, cam, size)
    assert agreement(r.index, ref_i) > 0.99
    (r1,) = rasterize_points(torch.from_numpy(pts), cam, point_size=1)
    assert r.mask.sum() > r1.mask.sum()  # bigger splats cover more pixels


def test_occlusion_front_point_wins():
    cam = Camera.look_at([0, 0, -5], [0, 0, 0], [0, -1, 0], 9, 9, 40)
    pts = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    (r,) = rasterize_points(pts, cam)
    assert r.index[4, 4] == 1 and r.depth[4, 4] == pytest.approx(4.0)
    assert (r.index >= 0).sum() == 1


def test_points_behind_or_outside_are_ignored():
    cam = Camera.look_at([0, 0, -5], [0, 0, 0], [0, -1, 0], 16, 16, 40)
    pts = torch.tensor([[0.0, 0.0, -10.0], [100.0, 0.0, 0.0], [float("nan"), 0.0, 0.0]])
    (r,) = rasterize_points(pts, cam)
    assert (r.index < 0).all()


def test_multi_scale_resolutions_and_consistency(rng):
    pts, cam = cloud_and_camera(rng, w=64, h=48)
    rs = rasterize_points(torch.from_numpy(pts), cam, num_scales=4)
    assert [tuple(r.index.shape) for r in rs] == [(48, 64), (24, 32), (12, 16), (6, 8)]
    # Coarser levels cover a larger fraction of pixels (the point of the pyramid).
    cover = [r.mask.float().mean().item() for r in rs]
    assert cover == sorted(cover)
    ref_i, _ = brute_force(pts, rs[2].camera)
    assert agreement(rs[2].index, ref_i) > 0.99


@pytest.mark.parametrize("size", [1, 3])
def test_nested_levels_equal_one_zbuffer_per_level(size, rng):
    """Levels derived from the finest z-buffer (2×2 minima of keys) are the z-buffers a pass
    over the points at each level's own camera gives, up to float rounding at pixel edges."""
    from engine.points.rasterize import _splat, _zbuffer, scale_camera

    pts, cam = cloud_and_camera(rng, n=20_000, w=96, h=64)
    fast = rasterize_points(torch.from_numpy(pts), cam, point_size=size, num_scales=4)
    for level, r in enumerate(fast):
        ref = _zbuffer(torch.from_numpy(pts), scale_camera(cam, level))
        if size > 1:
            ref = _splat(ref, size)
        assert agreement(r.index, ref.index.numpy()) > 0.998
        same = r.index == ref.index
        assert torch.equal(r.depth[same], ref.depth[same])


def test_gather_is_differentiable_in_features(rng):
    pts, cam = cloud_and_camera(rng, n=500)
    (r,) = rasterize_points(torch.from_numpy(pts), cam)
    feats = torch.randn(len(pts), 8, requires_grad=True)
    img = gather_features(feats, r)
    assert img.shape == (8, cam.height, cam.width)
    assert torch.all(img[:, ~r.mask] == 0)
    img.sum().backward()
    visible = torch.unique(r.index[r.mask])
    # Each visible point's gradient is its pixel count; invisible points get none.
    counts = torch.bincount(r.index[r.mask], minlength=len(pts)).float()
    assert torch.allclose(feats.grad[:, 0], counts)
    assert (feats.grad[visible].abs().sum(1) > 0).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(rng):
    pts, cam = cloud_and_camera(rng, n=20000, w=128, h=96)
    cpu = rasterize_points(torch.from_numpy(pts), cam, point_size=3, num_scales=3)
    gpu = rasterize_points(torch.from_numpy(pts).cuda(), cam, point_size=3, num_scales=3)
    for a, b in zip(cpu, gpu, strict=True):
        assert (a.index == b.index.cpu()).float().mean() > 0.999


def test_a_pyramid_gathered_at_once_matches_level_by_level_with_its_gradients():
    """One index_select for every level (engine.points.gather_pyramid) draws and trains exactly
    as one per level: the same images, the same gradients for the features and the fills."""
    from engine.points import gather_pyramid

    pts, cam = cloud_and_camera(np.random.default_rng(3), n=800)
    rasters = rasterize_points(torch.from_numpy(pts), cam, 1, 3)
    feats = torch.randn(len(pts), 5, requires_grad=True)
    fills = []
    for r in rasters[:2]:  # a fill on two levels, the background (0) on the last
        empty = torch.nonzero(r.index.reshape(-1) < 0)[:, 0]
        fills.append((empty, torch.randn(len(empty), 5, requires_grad=True)))
    fills.append(None)
    weights = [torch.randn(5, *r.index.shape) for r in rasters]

    def loss(images):
        return sum((w * img).sum() for w, img in zip(weights, images, strict=True))

    one = [gather_features(feats, r, fill=f) for r, f in zip(rasters, fills, strict=True)]
    grads = torch.autograd.grad(loss(one), [feats, fills[0][1], fills[1][1]])
    at_once = gather_pyramid(feats, rasters, fills)
    grads_at_once = torch.autograd.grad(loss(at_once), [feats, fills[0][1], fills[1][1]])
    assert all(torch.equal(a, b) for a, b in zip(one, at_once, strict=True))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, grads_at_once, strict=True))
    assert (rasters[0].index < 0).any() and grads[0].abs().sum() > 0  # fills and points both


def test_a_pyramid_gathered_with_its_gradient_added_in_place_trains_as_autograd_would():
    """grad_in_place (a fit's descriptors: the gradient kept between steps and zeroed in
    place): after each backward, features.grad holds exactly autograd's gradient, and a
    step after zeroing carries nothing over from the one before."""
    from engine.points import gather_pyramid

    pts, cam = cloud_and_camera(np.random.default_rng(4), n=800)
    rasters = rasterize_points(torch.from_numpy(pts), cam, 1, 3)
    feats = torch.randn(len(pts), 5, requires_grad=True)
    fills = [None] * len(rasters)
    for seed in (0, 1):
        weights = [
            torch.randn(5, *r.index.shape, generator=torch.Generator().manual_seed(seed))
            for r in rasters
        ]

        def loss(images, weights=weights):
            return sum((w * img).sum() for w, img in zip(weights, images, strict=True))

        (expected,) = torch.autograd.grad(loss(gather_pyramid(feats, rasters, fills)), [feats])
        if feats.grad is not None:
            feats.grad.zero_()  # as zero_grad(set_to_none=False)
        loss(gather_pyramid(feats, rasters, fills, grad_in_place=True)).backward()
        assert expected.abs().sum() > 0
        assert torch.equal(feats.grad, expected)
