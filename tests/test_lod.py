"""Level of detail for huge clouds: cells, view-dependent plans under a budget, the cache."""

from __future__ import annotations

import numpy as np
import pytest

from engine.camera import Camera
from engine.points.lod import PointLOD, cloud_lod


@pytest.fixture(scope="module")
def cloud():
    rng = np.random.default_rng(0)
    # A ground plane 100 x 100 with some boxes: a surface, like a scan.
    p = rng.uniform(0, 100, (400_000, 3)).astype(np.float32)
    p[:, 1] = rng.normal(0, 0.2, len(p))
    return p


def test_cells_partition_the_cloud(cloud):
    lod = PointLOD.build(cloud, cell_points=5_000)
    n = len(cloud)
    assert np.array_equal(np.sort(lod.order), np.arange(n))  # a permutation
    assert lod.num_points == n and 20 <= lod.num_cells <= 1000
    assert np.array_equal(lod.starts, np.concatenate([[0], np.cumsum(lod.counts)[:-1]]))
    import engine.points.lod as lod_mod

    assert PointLOD.build(cloud, cell_points=20).num_cells <= lod_mod.MAX_CELLS  # draw calls
    p = cloud[lod.order]
    for c in range(0, lod.num_cells, 17):
        q = p[lod.starts[c] : lod.starts[c] + lod.counts[c]]
        assert (q >= lod.lo[c]).all() and (q <= lod.hi[c]).all()


def _inside(cam: Camera, pts: np.ndarray) -> np.ndarray:
    uv, z = cam.project(pts)
    return (
        (z > cam.near)
        & (uv[:, 0] >= 0)
        & (uv[:, 0] < cam.width)
        & (uv[:, 1] >= 0)
        & (uv[:, 1] < cam.height)
    )


def test_plan_draws_what_the_view_shows_within_the_budget(cloud):
    lod = PointLOD.build(cloud, cell_points=5_000)
    p = cloud[lod.order]
    # Low over one corner of the plane, looking along it: most of the cloud is out of view.
    cam = Camera.look_at([5, 3, 5], [30, 0, 30], [0, 1, 0], 320, 240, 50)
    full = lod.plan(cam, density=1e9)  # no density cap: every point of every visible cell
    idx = np.concatenate([np.arange(a, a + n) for a, n in full])
    assert len(np.unique(idx)) == len(idx)
    visible = np.nonzero(_inside(cam, p))[0]
    assert np.isin(visible, idx).all()  # nothing in view is culled
    assert len(idx) < 0.8 * len(p)  # and much out of view is
    # Under a budget: at most that many, spread over the same cells, coarse first.
    plan = lod.plan(cam, budget=20_000)
    assert 15_000 <= plan[:, 1].sum() <= 20_000
    cells_full = np.searchsorted(lod.starts, full[:, 0], side="right") - 1
    cells_plan = np.searchsorted(lod.starts, plan[:, 0], side="right") - 1
    assert set(cells_plan) <= set(cells_full)
    first_round = plan[: len(set(cells_plan))]
    cells_first = np.searchsorted(lod.starts, first_round[:, 0], side="right") - 1
    assert set(cells_first) == set(cells_plan)  # round 0 touches every visible cell
    # Far cells get fewer points than near ones (their pixels are fewer).
    need = lod.points_needed(cam, density=1.0)
    seen = np.nonzero(need > 0)[0]
    dist = np.linalg.norm((lod.lo + lod.hi)[seen] / 2 - cam.position, axis=1)
    share = need[seen] / lod.counts[seen]
    assert (
        share[dist < np.percentile(dist, 10)].mean()
        > 2 * share[dist > np.percentile(dist, 90)].mean()
    )


def test_a_camera_looking_away_plans_nothing(cloud):
    lod = PointLOD.build(cloud, cell_points=5_000)
    cam = Camera.look_at([50, 10, -20], [50, 10, -60], [0, 1, 0], 320, 240, 50)
    assert len(lod.plan(cam)) == 0


def test_layout_is_cached(cloud, tmp_path, monkeypatch):
    a = cloud_lod(cloud, tmp_path, cell_points=5_000)
    assert len(list(tmp_path.glob("lod-*.npz"))) == 1

    def no_rebuild(*_a, **_k):
        raise AssertionError("rebuilt although cached")

    monkeypatch.setattr(PointLOD, "build", staticmethod(no_rebuild))
    b = cloud_lod(cloud, tmp_path, cell_points=5_000)
    assert np.array_equal(a.order, b.order) and np.array_equal(a.lo, b.lo)
    # Another cloud never picks up this layout; a damaged cache file is rebuilt.
    monkeypatch.undo()
    other = cloud.copy()
    other[0, 0] += 1.0
    cloud_lod(other, tmp_path, cell_points=5_000)
    assert len(list(tmp_path.glob("lod-*.npz"))) == 2
    for f in tmp_path.glob("lod-*.npz"):
        f.write_bytes(b"garbage")
    c = cloud_lod(cloud, tmp_path, cell_points=5_000)
    assert np.array_equal(a.order, c.order)


def test_torch_rasterizer_uses_the_same_plans(cloud, tmp_path, monkeypatch):
    import engine.points.lod as lod_mod
    from engine.points.render import PointCloudRenderer, PointRenderOptions
    from engine.scene.types import Scene

    cols = np.clip(cloud / 100, 0, 1).astype(np.float32)
    plain = PointCloudRenderer(Scene(points=cloud, colors=cols))
    monkeypatch.setattr(lod_mod, "LOD_MIN_POINTS", 100_000)
    monkeypatch.setenv("NSV_CACHE", str(tmp_path))
    lod = PointCloudRenderer(Scene(points=cloud, colors=cols))
    assert plain.lod is None and lod.lod is not None
    opts = PointRenderOptions("color", 2)
    whole = Camera.look_at([50, 120, -60], [50, 0, 50], [0, 1, 0], 160, 120, 50)
    a, b = plain.render(whole, opts), lod.render(whole, opts)
    same = (np.abs(a.image.astype(int) - b.image).max(-1) <= 8).mean()
    assert same > 0.97  # the whole view: practically the same picture
    close = Camera.look_at([30, 8, 30], [33, 0, 33], [0, 1, 0], 160, 120, 50)
    a, b = plain.render(close, opts), lod.render(close, opts)
    assert b.points_drawn < 0.5 * a.points_drawn  # zoomed in: only the cells in view
    assert (np.abs(a.image.astype(int) - b.image).max(-1) <= 8).mean() > 0.97


def test_reordered_arrays_are_cached_for_a_fast_second_open(cloud, tmp_path, monkeypatch):
    """The GL buffers' reordered positions and 8-bit colours are written beside the layout and
    memory-mapped on the next open; other colours for the same points get their own file."""
    import engine.points.lod as lod_mod
    from engine.scene.types import Scene

    monkeypatch.setattr(lod_mod, "LOD_MIN_POINTS", 100_000)
    monkeypatch.setenv("NSV_CACHE", str(tmp_path))
    cols = np.clip(cloud / 100, 0, 1).astype(np.float32)
    pos, rgb, lod = lod_mod.ordered_arrays(Scene(points=cloud, colors=cols))
    assert np.array_equal(pos, cloud[lod.order])
    assert np.array_equal(rgb, (cols[lod.order] * 255 + 0.5).astype(np.uint8))
    pos2, rgb2, _ = lod_mod.ordered_arrays(Scene(points=cloud.copy(), colors=cols.copy()))
    assert isinstance(pos2, np.memmap) and isinstance(rgb2, np.memmap)
    assert np.array_equal(pos2, pos) and np.array_equal(rgb2, rgb)
    _, grey, _ = lod_mod.ordered_arrays(Scene(points=cloud))
    assert (np.asarray(grey) == 191).all() and len(list(tmp_path.glob("*-rgb-*.npy"))) == 2
    for f in tmp_path.glob("*.npy"):  # a damaged cache is rebuilt, never trusted
        f.write_bytes(b"garbage")
    pos3, rgb3, _ = lod_mod.ordered_arrays(Scene(points=cloud, colors=cols))
    assert np.array_equal(pos3, pos) and np.array_equal(rgb3, rgb)
