"""The plane sweep's handling of the room behind an object: a 360-degree capture's background
lies several times farther than the object and holds a percent or two of the sparse points;
the sweep must reach it, fusion must keep it, and merging and outlier removal must not thin it
out as if it were noise."""

from __future__ import annotations

import numpy as np
import torch

from engine.camera import Camera
from engine.capture import planesweep as ps


def _camera(x: float = 0.0) -> Camera:
    """A 64x48 camera at (x, 0, 0) looking down +z."""
    return Camera.look_at(np.array([x, 0.0, 0.0]), np.array([x, 0.0, 10.0]),
                          np.array([0.0, -1.0, 0.0]), 64, 48, 50.0)  # fmt: skip


def test_the_sweep_reaches_the_few_far_points():
    rng = np.random.default_rng(0)
    near = np.c_[rng.uniform(-0.5, 0.5, (980, 2)), rng.uniform(2.5, 3.5, 980)]
    far = np.c_[rng.uniform(-8, 8, (20, 2)), np.full(20, 25.0)]  # 2% of the points
    lo, hi = ps.depth_range(_camera(), np.concatenate([near, far]))
    assert lo < 2.5 and hi >= 25.0


def _plane_views(depth: float, rel_error: float) -> tuple[list, list, list]:
    """Three cameras 0.2 apart facing a plane at ``depth``; each depth map is off by
    ``rel_error`` of the depth (alternating sign), as a sweep's winner is between planes."""
    cams = [_camera(x) for x in (-0.2, 0.0, 0.2)]
    views = [ps.SweepView(c, torch.rand(3, c.height, c.width), 1.5, 75.0) for c in cams]
    depths = [torch.full((c.height, c.width), depth * (1 + s * rel_error))
              for c, s in zip(cams, (1, -1, 1), strict=True)]  # fmt: skip
    scores = [torch.ones(c.height, c.width) for c in cams]
    return views, depths, scores


def test_fusion_judges_agreement_in_inverse_depth():
    """Far away the sweep's planes lie ~18% of the depth apart: depth maps 4% apart agree there,
    while up close the same disagreement is a mismatch."""
    nbrs = [[1, 2], [0, 2], [0, 1]]
    far = ps.fuse(*_plane_views(25.0, 0.02), nbrs, num_depths=96)
    near = ps.fuse(*_plane_views(2.5, 0.02), nbrs, num_depths=96)
    assert len(far.points) > 0.5 * 3 * 64 * 48
    assert len(near.points) < 0.05 * 3 * 64 * 48
    assert far.footprint is not None
    assert np.allclose(np.median(far.footprint), 25.0 / _camera().fx, rtol=0.05)


def test_far_points_are_not_thinned_out_as_outliers():
    """A wall seen at 8x the object's pixel footprint is 8x sparser in world units, not noise:
    merged on its own coarser grid and kept by the outlier filter, which measures neighbour
    distances in pixel footprints."""
    rng = np.random.default_rng(1)
    obj = rng.uniform(-0.5, 0.5, (40_000, 3))  # ~0.03 apart
    wall = np.c_[rng.uniform(-8, 8, (10_000, 2)), np.full(10_000, 25.0)]  # ~0.16 apart
    pts = np.concatenate([obj, wall]).astype(np.float32)
    fp = np.r_[np.full(40_000, 0.01), np.full(10_000, 0.08)].astype(np.float32)
    n = len(pts)
    normals = np.tile(np.float32([0, 0, 1]), (n, 1))
    cloud = ps.DenseCloud(pts, np.full((n, 3), 0.5, np.float32), normals, fp)
    merged = ps.voxel_merge(cloud, 0.01)
    on_wall = merged.points[:, 2] > 24
    assert on_wall.sum() > 0.8 * 10_000  # its 0.08 cells hold about one point each
    kept = ps.remove_outliers(merged)
    assert (kept.points[:, 2] > 24).sum() > 0.95 * on_wall.sum()
    # Without footprints (world distances) the same filter drops much of the wall.
    plain = ps.remove_outliers(ps.DenseCloud(merged.points, merged.colors, merged.normals))
    assert (plain.points[:, 2] > 24).sum() < 0.8 * on_wall.sum()


def test_box_filter_matches_average_pooling_at_the_borders_too():
    x = torch.rand(2, 3, 37, 50) - 0.5
    want = torch.nn.functional.avg_pool2d(x, 7, stride=1, padding=3, count_include_pad=False)
    assert torch.allclose(ps._box(x, 3), want, atol=1e-5)


def _textured_view(cam: Camera, depth: float) -> torch.Tensor:
    """(3, H, W) photo of a fronto-parallel plane at ``depth`` painted with smooth stripes."""
    v, u = np.mgrid[0 : cam.height, 0 : cam.width] + 0.5
    x = (u - cam.cx) / cam.fx * depth + cam.position[0]
    y = (v - cam.cy) / cam.fy * depth
    g = 0.5 + 0.2 * np.sin(7 * x + 3 * y) + 0.2 * np.sin(11 * y - 5 * x)
    return torch.from_numpy(np.repeat(g[None], 3, 0)).float()


def test_the_mean_of_the_best_sources_matches_topk_with_ties_and_any_count():
    g = torch.Generator().manual_seed(0)
    for count in range(1, 7):
        # Scores rounded to tenths, so that many pixels tie between sources.
        scores = [(torch.rand(5, 7, generator=g) * 20).round() / 10 - 1 for _ in range(count)]
        for keep in range(1, count + 1):
            want = torch.stack(scores).topk(keep, 0).values.mean(0)
            got = ps.mean_of_best(scores, keep)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_the_sweep_finds_a_textured_planes_depth():
    cams = [_camera(x) for x in (0.0, -0.5, 0.5)]
    views = [ps.SweepView(c, _textured_view(c, 10.0), 4.0, 40.0) for c in cams]
    depth, score = ps.sweep_depth(views[0], views[1:], num_depths=48)
    inner = depth[8:-8, 8:-8]
    assert (inner > 0).float().mean() > 0.9
    assert torch.allclose(inner[inner > 0].median(), torch.tensor(10.0), rtol=0.02)
    assert score[8:-8, 8:-8].median() > 0.9


def _slanted_plane_views(n_views: int = 5) -> tuple[list, list, np.ndarray, np.ndarray]:
    """Cameras on an arc 15 degrees apart facing a textured plane through (0, 0, 5) tilted 53
    degrees away (a table seen at a grazing angle): their views, true depth maps, the plane's
    point and normal."""
    p0, n = np.array([0.0, 0.0, 5.0]), np.array([0.0, -0.8, -0.6])
    e1 = np.array([1.0, 0.0, 0.0])
    e2 = np.cross(n, e1)
    views, depths = [], []
    for a in np.radians((np.arange(n_views) - n_views // 2) * 15.0):
        cam = Camera.look_at(p0 + 5 * np.array([np.sin(a), 0.0, -np.cos(a)]), p0,
                             np.array([0.0, -1.0, 0.0]), 96, 72, 40.0)  # fmt: skip
        v, u = np.mgrid[0 : cam.height, 0 : cam.width] + 0.5
        rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(cam.K).T @ cam.R  # z_cam = 1
        t = ((p0 - cam.position) @ n) / (rays @ n)
        X = cam.position + t[..., None] * rays
        s, r = X @ e1, X @ e2
        g = (
            0.5
            + 0.15 * np.sin(23 * s + 7 * r)
            + 0.15 * np.sin(19 * r - 11 * s)
            + 0.1 * np.sin(9 * s * r)
        )
        views.append(
            ps.SweepView(cam, torch.from_numpy(np.repeat(g[None], 3, 0)).float(), 2.0, 20.0)
        )
        depths.append(torch.from_numpy(t).float())
    return views, depths, p0, n


def test_points_move_along_their_normals_onto_the_surface_the_photos_agree_on():
    """Points a few voxels off a slanted textured plane (a sweep's error between its planes)
    land within a fraction of a voxel of it; points already on it stay."""
    views, depths, p0, n = _slanted_plane_views()
    mid = views[len(views) // 2].camera
    rng = np.random.default_rng(0)
    uv = np.c_[rng.uniform(20, 76, 2000), rng.uniform(15, 57, 2000), np.ones(2000)]
    rays = uv @ np.linalg.inv(mid.K).T @ mid.R
    on = mid.position + (((p0 - mid.position) @ n) / (rays @ n))[:, None] * rays
    voxel = 0.01  # about a quarter of a pixel's footprint on the plane
    off = rng.uniform(-2, 2, 2000) * voxel
    normals = np.tile(n, (2000, 1)).astype(np.float32)
    cloud = ps.DenseCloud((on + off[:, None] * n).astype(np.float32), np.full((2000, 3), 0.5, np.float32), normals)  # fmt: skip
    refined, moved = ps.refine_points(views, depths, cloud, voxel)
    before = np.abs((cloud.points - p0) @ n)
    after = np.abs((refined.points - p0) @ n)
    assert moved > 0.9
    assert np.median(after) < 0.25 * voxel < 0.25 * np.median(before)
    still, _ = ps.refine_points(views, depths, ps.DenseCloud(on.astype(np.float32), cloud.colors, normals), voxel)  # fmt: skip
    assert np.median(np.abs((still.points - p0) @ n)) < 0.2 * voxel


def test_holes_the_fine_sweep_left_are_filled_from_the_coarse_one_where_it_is_confident():
    depth = torch.tensor([[2.0, 0.0, 0.0, 3.0], [2.0, 2.0, 0.0, 0.0]])
    score = torch.tensor([[0.9, 0.0, 0.0, 0.3], [0.9, 0.9, 0.0, 0.0]])
    coarse_depth = torch.tensor([[5.0, 6.0], [7.0, 0.0]])  # (1, 2) pixel blocks of 2 x 2
    coarse_score = torch.tensor([[0.8, 0.6], [0.9, 0.0]])[:1].repeat(2, 1)
    coarse_score[1, 1] = 0.2  # not confident: no fill from it
    d, s = ps.fill_from_coarse(depth, score, coarse_depth, coarse_score)
    # Confident fine depths stay; holes (and unconfident ones) take the coarse block's depth.
    assert d.tolist() == [[2.0, 5.0, 6.0, 6.0], [2.0, 2.0, 0.0, 0.0]]
    assert torch.allclose(s, torch.tensor([[0.9, 0.8, 0.6, 0.6], [0.9, 0.9, 0.0, 0.0]]))


def _shaded_plane_views(amp: float, freq: float) -> list[ps.SweepView]:
    """Three views 0.5 apart of a plane at depth 10 with smooth, shading-like sinusoids of
    amplitude ``amp`` and spatial frequency ``freq`` (radians per unit)."""

    def view(cam: Camera) -> torch.Tensor:
        v, u = np.mgrid[0 : cam.height, 0 : cam.width] + 0.5
        x = (u - cam.cx) / cam.fx * 10.0 + cam.position[0]
        y = (v - cam.cy) / cam.fy * 10.0
        g = (
            0.5
            + amp * np.sin(freq * x + 0.6 * freq * y)
            + amp * np.sin(1.3 * freq * y - 0.5 * freq * x)
        )
        return torch.from_numpy(np.repeat(g[None], 3, 0)).float()

    cams = [Camera.look_at(np.array([x, 0.0, 0.0]), np.array([x, 0.0, 10.0]),
                           np.array([0.0, -1.0, 0.0]), 128, 96, 100.0) for x in (0, -0.5, 0.5)]  # fmt: skip
    return [ps.SweepView(c, view(c), 4.0, 40.0) for c in cams]


def test_a_smooth_low_contrast_surface_is_found_by_the_half_resolution_sweep():
    # Shading-like texture: too little contrast within the fine sweep's 7-px window for a
    # quarter of the plane; at half resolution the same window spans twice as much of it.
    views = _shaded_plane_views(0.03, 0.8)
    d, s = ps.sweep_depth(views[0], views[1:], num_depths=48)
    halves = [ps.half_view(v) for v in views]
    d, s = ps.fill_from_coarse(d, s, *ps.sweep_depth(halves[0], halves[1:], num_depths=48))
    before = ps.sweep_depth(views[0], views[1:], num_depths=48)[0][8:-8, 8:-8]
    inner = d[8:-8, 8:-8]
    assert (before > 0).float().mean() < 0.85 and (inner > 0).float().mean() > 0.97
    assert torch.allclose(inner.median(), torch.tensor(10.0), rtol=0.03)


def test_each_halving_fills_what_the_finer_sweeps_left_and_keeps_what_they_found():
    # Shading too faint for the half-resolution sweep's window over a third of the plane; at a
    # quarter the same window spans four times the full sweep's reach and finds it.
    views = _shaded_plane_views(0.012, 0.9)
    inner = (slice(8, -8), slice(8, -8))
    d1 = ps.sweep_depth_filled(views[0], views[1:], num_depths=48, coarse_levels=1)[0][inner]
    d2 = ps.sweep_depth_filled(views[0], views[1:], num_depths=48, coarse_levels=2)[0][inner]
    found, filled = d1 > 0, (d2 > 0) & (d1 <= 0)
    assert found.float().mean() < 0.8 and (d2 > 0).float().mean() > 0.97
    assert torch.equal(d2[found], d1[found])  # a coarser sweep never overrides a finer one
    # A quarter-resolution pixel spans 4: its depth is rough, but on the surface.
    assert abs(float(d2[filled].median()) - 10.0) < 1.5
