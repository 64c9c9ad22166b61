"""Level of detail for clouds too large to draw every frame (as Potree does, simplified).

The cloud is split into the cells of a uniform grid (sized so cells hold ``cell_points`` points
on average) and stored cell by cell, each cell's points in random order: any prefix of a cell
is a fair subset of it. For a camera, :meth:`PointLOD.plan` culls the cells outside the view,
gives each visible cell as many points as its projected area needs (``density`` points per
pixel, at most all of them) and, when that is more than the frame budget, scales every cell
down alike. The plan is a list of (first, count) ranges into the stored order, coarse first:
round r draws the r-th slice of every visible cell, so a partial plan is an even sample of the
whole view and each later round refines it.

The cell layout is a pure function of the points and is cached on disk next to nothing the user
owns (``cache_dir``), so a large file opens in seconds the second time.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.camera import Camera

BACKGROUND = 0.1  # grey level of empty pixels, the torch rasterizer's and OpenGL's alike

CELL_POINTS = 50_000
MAX_CELLS = 2048  # a 100M-point scan gets bigger cells rather than thousands of draw calls
ROUNDS = 8  # refinement rounds of a full plan
LOD_MIN_POINTS = 2_000_000  # smaller clouds are drawn whole (a random subset while moving)


def user_cache_dir() -> Path:
    """Where layouts are cached: $NSV_CACHE, else $XDG_CACHE_HOME/nsv, else ~/.cache/nsv."""
    import os

    if os.environ.get("NSV_CACHE"):
        return Path(os.environ["NSV_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nsv"


@dataclass
class PointLOD:
    """order: (N,) permutation of the cloud into cell order; starts / counts: (C,) each cell's
    range in that order; lo / hi: (C, 3) each cell's bounding box (of its points)."""

    order: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    cache: Path | None = None  # where the layout is cached (``cloud_lod``); None: not cached

    @property
    def num_points(self) -> int:
        return int(self.counts.sum())

    @property
    def num_cells(self) -> int:
        return len(self.counts)

    @staticmethod
    def build(points: np.ndarray, cell_points: int = CELL_POINTS, seed: int = 0) -> PointLOD:
        """Cells for an (N, 3) cloud. The grid resolution is chosen on a subsample so that
        occupied cells hold about ``cell_points`` points (scans are surfaces: most of a fine
        grid is empty, so the resolution is searched, not computed from N)."""
        pts = np.asarray(points, np.float32)
        n = len(pts)
        rng = np.random.default_rng(seed)
        lo, hi = pts.min(0), pts.max(0)
        extent = np.maximum(hi - lo, 1e-9)
        sample = pts[rng.choice(n, min(n, 1_000_000), replace=False)] if n else pts

        def grid(size: float) -> tuple[np.ndarray, int]:
            """Cells per axis for cubic cells of side ``size``, and how many the sample fills."""
            res = np.maximum(np.ceil(extent / size), 1).astype(np.int64)
            return res, len(np.unique(_cell_ids(sample, lo, size, res)))

        size = float(extent.max())  # cubic cells, halved until they hold few enough points
        res, occupied = grid(size)
        while n / max(occupied, 1) > cell_points and res.prod() <= 2**30:
            finer, finer_occupied = grid(size / 2)
            if finer_occupied > MAX_CELLS:
                break  # each visible cell is a draw call: keep a frame's calls in the hundreds
            size, res, occupied = size / 2, finer, finer_occupied
        ids = _cell_ids(pts, lo, size, res)
        # Random within each cell: sort by (cell, random key).
        order = np.lexsort((rng.random(n), ids))
        _, starts, counts = np.unique(ids[order], return_index=True, return_counts=True)
        p = pts[order]
        lo_c = np.minimum.reduceat(p, starts, axis=0) if n else np.zeros((0, 3), np.float32)
        hi_c = np.maximum.reduceat(p, starts, axis=0) if n else np.zeros((0, 3), np.float32)
        return PointLOD(order.astype(np.int64), starts.astype(np.int64),
                        counts.astype(np.int64), lo_c, hi_c)  # fmt: skip

    # --- per frame ---------------------------------------------------------------------------
    def plan(
        self,
        camera: Camera,
        budget: int | None = None,
        density: float = 4.0,
        rounds: int = ROUNDS,
    ) -> np.ndarray:
        """(K, 2) int64 (first, count) ranges into the cell order: the points worth drawing
        for ``camera``, at most ``budget`` of them (None: no limit), coarse first (``rounds``
        slices of every visible cell, one after the other)."""
        need = self.points_needed(camera, density)
        total = need.sum()
        if budget is not None and total > budget:
            need = np.floor(need * (budget / total)).astype(np.int64)
        vis = np.nonzero(need)[0]
        if not len(vis):
            return np.zeros((0, 2), np.int64)
        c = need[vis]
        cuts = np.floor(np.outer(c, np.arange(rounds + 1) / rounds)).astype(np.int64)  # (V, R+1)
        firsts = self.starts[vis, None] + cuts[:, :-1]
        lens = cuts[:, 1:] - cuts[:, :-1]
        ranges = np.stack([firsts.T.ravel(), lens.T.ravel()], 1)  # round-major
        return ranges[ranges[:, 1] > 0]

    def points_needed(self, camera: Camera, density: float = 4.0) -> np.ndarray:
        """(C,) how many of each cell's points the view needs: 0 outside the frustum, else
        ``density`` per pixel of the cell's projected area, at most all of them."""
        corners = _box_corners(self.lo, self.hi)  # (C, 8, 3)
        R, t = camera.R, camera.t
        cam = corners @ R.T.astype(np.float32) + t.astype(np.float32)  # (C, 8, 3)
        x, y, z = cam[..., 0], cam[..., 1], cam[..., 2]
        x0, x1 = -camera.cx / camera.fx, (camera.width - camera.cx) / camera.fx
        y0, y1 = -camera.cy / camera.fy, (camera.height - camera.cy) / camera.fy
        # A box is outside when all its corners are beyond one frustum plane (the side planes
        # pass through the camera centre: x - z*x0 >= 0 is inside the left one, and so on).
        outside = (
            (z < camera.near).all(1)
            | (z > camera.far).all(1)
            | (x - z * x0 < 0).all(1)
            | (x - z * x1 > 0).all(1)
            | (y - z * y0 < 0).all(1)
            | (y - z * y1 > 0).all(1)
        )
        center = cam.mean(1)
        radius = np.linalg.norm(self.hi - self.lo, axis=1) / 2
        dist = np.linalg.norm(center, axis=1)
        f = max(camera.fx, camera.fy)
        screen = float(camera.width * camera.height)
        area = np.where(
            dist > radius,
            math.pi * (f * radius / np.maximum(dist - radius, 1e-9)) ** 2,
            screen,
        )
        area = np.minimum(area, screen)
        need = np.minimum(self.counts, np.ceil(density * area).astype(np.int64))
        need[outside] = 0
        return need

    # --- cache ---------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, order=self.order, starts=self.starts, counts=self.counts, lo=self.lo,
                 hi=self.hi)  # fmt: skip
        tmp.replace(path)

    @staticmethod
    def load(path: Path, num_points: int) -> PointLOD | None:
        """The cached layout, or None when it is missing, damaged or for another cloud."""
        try:
            with np.load(path) as z:
                lod = PointLOD(*(z[k] for k in ("order", "starts", "counts", "lo", "hi")))
        except Exception:
            return None
        ok = (
            lod.order.shape == (num_points,)
            and lod.num_points == num_points
            and lod.lo.shape == lod.hi.shape == (lod.num_cells, 3)
        )
        return lod if ok else None


def storage_order(scene) -> tuple[np.ndarray, PointLOD | None]:
    """The order a renderer stores ``scene``'s points in, and its level of detail: a huge
    cloud's cell order (``scene_lod``), else a fixed random permutation, so that any prefix
    is a fair subset (drawn while the camera moves) and subsets do not flicker."""
    lod = scene_lod(scene)
    if lod is not None:
        return lod.order, lod
    return np.random.default_rng(0).permutation(scene.num_points), None


def _digest(arr: np.ndarray, extra: str = "") -> str:
    """A cheap content hash of a big (N, C) array: its shape, a strided sample (hashing 1 GB
    would take seconds) and the sum of every row."""
    h = hashlib.sha1(f"{arr.shape}{arr.dtype}{extra}".encode())
    step = max(1, len(arr) // 100_000)
    h.update(np.ascontiguousarray(arr[::step]).tobytes())
    h.update(arr.sum(0, dtype=np.float64).tobytes())
    return h.hexdigest()[:20]


def cloud_lod(points: np.ndarray, cache_dir: Path | None = None, **kw) -> PointLOD:
    """PointLOD.build, cached in ``cache_dir`` under a hash of the points (a different cloud
    never picks up a stale layout)."""
    if cache_dir is None:
        return PointLOD.build(points, **kw)
    pts = np.ascontiguousarray(points, np.float32)
    path = Path(cache_dir) / f"lod-{_digest(pts, repr(sorted(kw.items())))}.npz"
    lod = PointLOD.load(path, len(pts)) if path.is_file() else None
    if lod is None:
        lod = PointLOD.build(pts, **kw)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lod.save(path)
        except OSError:
            lod.cache = None  # a read-only cache only costs the rebuild next time
            return lod
    lod.cache = path
    return lod


def ordered_arrays(scene) -> tuple[np.ndarray, np.ndarray, PointLOD | None]:
    """``scene``'s positions (N, 3) float32 and colours (N, 3) uint8 in storage order (see
    ``storage_order``), and its level of detail. For a huge cloud the two arrays are cached
    beside its layout and memory-mapped on the next open: reordering 100M points and
    converting their colours is most of the time opening them would otherwise take."""
    order, lod = storage_order(scene)
    files = None
    if lod is not None and lod.cache is not None:
        tag = "grey" if scene.colors is None else _digest(np.asarray(scene.colors))
        stem = lod.cache.with_suffix("")
        files = (
            stem.with_name(f"{stem.name}-pos.npy"),
            stem.with_name(f"{stem.name}-rgb-{tag}.npy"),
        )
        try:
            pos, rgb = (np.load(f, mmap_mode="r") for f in files)
            if pos.shape == rgb.shape == (len(order), 3) and rgb.dtype == np.uint8:
                return pos, rgb, lod
        except (OSError, ValueError):
            pass  # not cached yet, or damaged: rebuilt below
    pos = np.ascontiguousarray(np.asarray(scene.points, np.float32)[order])
    rgb = np.empty((len(order), 3), np.uint8)
    src = scene.colors_or_default()
    for a in range(0, len(order), 1 << 22):  # chunks: no 100M-point float temporaries
        c = np.asarray(src[order[a : a + (1 << 22)]], np.float32)
        rgb[a : a + len(c)] = np.clip(c * 255 + 0.5, 0, 255)
    if files is not None:
        try:
            for f, arr in zip(files, (pos, rgb), strict=True):
                tmp = f.with_name(f.name + ".tmp.npy")
                np.save(tmp, arr)
                tmp.replace(f)
        except OSError:
            pass
    return pos, rgb, lod


def plan_indices(plan: np.ndarray) -> np.ndarray:
    """(M,) int64 indices into the cell order of every point a plan's (K, 2) ranges cover."""
    if not len(plan):
        return np.zeros(0, np.int64)
    firsts, counts = plan[:, 0], plan[:, 1]
    offsets = np.repeat(firsts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return np.arange(int(counts.sum()), dtype=np.int64) + offsets


def _cell_ids(p: np.ndarray, lo: np.ndarray, size: float, res: np.ndarray) -> np.ndarray:
    """(N,) id of the cubic cell (side ``size``, ``res`` (3,) cells per axis) of each point."""
    ijk = np.clip(((p - lo) / size).astype(np.int64), 0, res - 1)
    return (ijk[:, 0] * res[1] + ijk[:, 1]) * res[2] + ijk[:, 2]


def _box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(C, 8, 3) corners of boxes lo, hi (C, 3)."""
    sel = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], bool)  # (8, 3)
    return np.where(sel[None], hi[:, None], lo[:, None]).astype(np.float32)


def scene_lod(scene) -> PointLOD | None:
    """A scene's level-of-detail layout, or None for clouds small enough to draw whole every
    frame (under LOD_MIN_POINTS). Built once per scene (and cached in the user cache directory
    across runs): call it off the GUI thread for big clouds."""
    if scene.num_points < LOD_MIN_POINTS:
        return None
    cached = scene.__dict__.get("_lod")
    if cached is None or cached.num_points != scene.num_points:
        cached = cloud_lod(scene.points, user_cache_dir())
        scene.__dict__["_lod"] = cached
    return cached
