"""Dense points on the CPU: plane-sweep stereo over neighbouring views, then consistency fusion.

COLMAP's PatchMatch stereo needs CUDA; this is a torch implementation that runs anywhere (and on
the GPU when one is present). For every reference view:

1. pick up to ``neighbors`` source views whose viewing directions differ by 3-45 degrees;
2. sweep ``num_depths`` fronto-parallel planes, uniform in inverse depth between the near and
   far depth of the sparse points seen by the view; warp each source photo onto the plane (one
   homography per plane) and score it with windowed normalized cross-correlation (NCC);
3. aggregate the best half of the source views per pixel (robust to occlusion), take the
   winner-take-all depth with a parabolic sub-plane refinement, and drop low-texture and
   low-score pixels.

Fusion keeps a pixel's 3D point only where at least ``min_consistent`` other depth maps agree
with it (relative depth error below ``depth_tolerance``) and no more than one of 8 views up to
60 degrees round sees a confident surface behind it (free space), then merges duplicates on a
voxel grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.camera import Camera
from engine.points.spacing import point_spacing


@dataclass
class SweepView:
    """A photo at working resolution. image: (3, H, W) float32 in [0, 1]; camera matches it."""

    camera: Camera
    image: torch.Tensor
    near: float
    far: float


@dataclass
class DenseCloud:
    """points (N, 3) float32 world; colors (N, 3) float32 [0, 1]; normals (N, 3) float32;
    footprint (N,) float32: the world size of the pixel each point came from (depth / focal),
    or None."""

    points: np.ndarray
    colors: np.ndarray
    normals: np.ndarray
    footprint: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> DenseCloud:
        fp = None if self.footprint is None else self.footprint[keep]
        return DenseCloud(self.points[keep], self.colors[keep], self.normals[keep], fp)


def depth_range(camera: Camera, points: np.ndarray, margin: float = 0.15) -> tuple[float, float]:
    """Near/far depth of the sparse ``points`` (N, 3) that project into ``camera``.

    The far end is taken near the farthest points (99.8th percentile): in an object capture
    the room behind holds only a percent or two of the sparse points, and a sweep that stops
    short of it leaves the background without points. Planes are uniform in inverse depth, so
    reaching far costs little resolution up close."""
    uv, z = camera.project(points)
    inside = (
        (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < camera.width) & (uv[:, 1] >= 0)
        & (uv[:, 1] < camera.height)
    )  # fmt: skip
    z = z[inside]
    if len(z) < 8:
        z = np.abs(points @ camera.R[2] + camera.t[2])
    lo, hi = np.quantile(z, [0.02, 0.998]) if len(z) else (0.1, 10.0)
    lo, hi = float(lo) * (1 - margin), float(hi) * (1 + margin)
    return max(lo, 1e-3), max(hi, lo * 1.5)


def choose_neighbors(cams: list[Camera], k: int, min_deg=3.0, max_deg=45.0) -> list[list[int]]:
    """For each camera, up to ``k`` others whose viewing directions differ by min..max degrees,
    preferring angles near 15 degrees (enough baseline, still similar appearance)."""
    fwd = np.stack([c.forward for c in cams])
    pos = np.stack([c.position for c in cams])
    out = []
    for i in range(len(cams)):
        ang = np.degrees(np.arccos(np.clip(fwd @ fwd[i], -1, 1)))
        base = np.linalg.norm(pos - pos[i], axis=1)
        ok = (ang >= min_deg) & (ang <= max_deg) & (base > 1e-9)
        ok[i] = False
        idx = np.flatnonzero(ok)
        if len(idx) < 2:  # e.g. a forward-moving video: fall back to nearest cameras
            idx = np.argsort(base)[1 : k + 1]
        else:
            idx = idx[np.argsort(np.abs(ang[idx] - 15.0))][:k]
        out.append([int(j) for j in idx])
    return out


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean of each pixel's (2r+1)^2 window of ``x`` (..., H, W), counting only the pixels inside
    the image (as ``avg_pool2d(count_include_pad=False)``). Running sums along each axis: 5x
    faster than ``avg_pool2d`` on the 2-core EPYC, where the plane sweep spent most of its time
    in the box filters."""
    k = 2 * r + 1
    H, W = x.shape[-2:]
    s = F.pad(x, (r + 1, r, r + 1, r)).cumsum(-1)
    s = (s[..., k:] - s[..., :-k]).cumsum(-2)
    s = s[..., k:, :] - s[..., :-k, :]
    count = _window_count(H, r, x.device)[:, None] * _window_count(W, r, x.device)
    return s / count.to(x.dtype)


def _window_count(n: int, r: int, device) -> torch.Tensor:
    """(n,) how many of positions i-r..i+r lie in 0..n-1."""
    i = torch.arange(n, device=device)
    return (i + r).clamp(max=n - 1) - (i - r).clamp(min=0) + 1


def _pixel_grid(cam: Camera, device) -> torch.Tensor:
    """(3, H*W) homogeneous pixel centres."""
    v, u = torch.meshgrid(
        torch.arange(cam.height, device=device, dtype=torch.float32) + 0.5,
        torch.arange(cam.width, device=device, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)])


def _gray(img: torch.Tensor) -> torch.Tensor:
    """(1, H, W) luminance minus 0.5: NCC ignores the offset, and values about 0 keep the box
    filter's running sums exact enough in float32."""
    return (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2] - 0.5)[None]


def mean_of_best(scores: list[torch.Tensor], keep: int) -> torch.Tensor:
    """Elementwise mean of the ``keep`` largest of ``scores`` (S tensors of one shape), as
    ``torch.stack(scores).topk(keep, 0).values.mean(0)``: bubble passes of elementwise
    max / min, each carrying the largest left to the end. topk along a short leading axis was
    10x slower on the 2-core EPYC (30 vs 3 ms for 4 x 8 x 400 x 400), a quarter of the sweep."""
    if not 1 <= keep <= len(scores):
        raise ValueError(f"keep must be 1..{len(scores)}, got {keep}")
    x = list(scores)
    total = None
    for k in range(keep):
        n = len(x) - k
        if k == keep - 1:  # the last pass needs only the largest, not the order below it
            top = x[0]
            for i in range(1, n):
                top = torch.maximum(top, x[i])
        else:
            for i in range(n - 1):
                x[i], x[i + 1] = torch.minimum(x[i], x[i + 1]), torch.maximum(x[i], x[i + 1])
            top = x[n - 1]
        total = top if total is None else total + top
    return total / keep


def sweep_depth(
    ref: SweepView,
    sources: list[SweepView],
    num_depths: int = 96,
    window: int = 3,
    chunk: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth (H, W) float32 (0 where unknown) and NCC score (H, W) in [-1, 1] for ``ref``."""
    dev = ref.image.device
    cam = ref.camera
    H, W = cam.height, cam.width
    g_ref = _gray(ref.image)[None]  # (1, 1, H, W)
    mu_r = _box(g_ref, window)
    sd_r = (_box(g_ref * g_ref, window) - mu_r**2).clamp_min(0).sqrt()
    inv = torch.linspace(1.0 / ref.near, 1.0 / ref.far, num_depths, device=dev)
    depths = 1.0 / inv
    Kr_inv = torch.from_numpy(np.linalg.inv(cam.K)).float().to(dev)
    rays = Kr_inv @ _pixel_grid(cam, dev)  # (3, HW), z = 1
    Rr, tr = cam.R, cam.t
    src_gray = []
    warps = []
    for s in sources:
        R_rel = s.camera.R @ Rr.T
        t_rel = s.camera.t - R_rel @ tr
        Ks = torch.from_numpy(s.camera.K).float().to(dev)
        A = Ks @ torch.from_numpy(R_rel).float().to(dev) @ rays  # (3, HW)
        b = Ks @ torch.from_numpy(t_rel).float().to(dev)[:, None]  # (3, 1)
        warps.append((A, b, s.camera.width, s.camera.height))
        src_gray.append(_gray(s.image)[None])
    cost = torch.empty(num_depths, H, W, device=dev)
    for d0 in range(0, num_depths, chunk):
        d = depths[d0 : d0 + chunk]  # (D,)
        per_src = []
        for (A, b, ws, hs), g in zip(warps, src_gray, strict=True):
            hom = d[:, None, None] * A[None] + b[None]  # (D, 3, HW)
            z = hom[:, 2].clamp_min(1e-6)
            gx = hom[:, 0] / z * (2.0 / ws) - 1.0
            gy = hom[:, 1] / z * (2.0 / hs) - 1.0
            valid = (hom[:, 2] > 1e-6) & (gx.abs() <= 1) & (gy.abs() <= 1)
            grid = torch.stack([gx, gy], -1).reshape(len(d), H, W, 2)
            warped = F.grid_sample(
                g.expand(len(d), -1, -1, -1), grid, align_corners=False, padding_mode="border"
            )  # (D, 1, H, W)
            mu_w = _box(warped, window)
            sd_w = (_box(warped * warped, window) - mu_w**2).clamp_min(0).sqrt()
            cov = _box(warped * g_ref, window) - mu_w * mu_r
            ncc = cov / (sd_w * sd_r + 1e-4)
            ncc = torch.where(valid.reshape(len(d), 1, H, W), ncc, torch.full_like(ncc, -1.0))
            per_src.append(ncc[:, 0])
        best = mean_of_best(per_src, max(1, (len(sources) + 1) // 2))
        cost[d0 : d0 + chunk] = 1.0 - best
    c_min, i_min = cost.min(0)
    # Parabolic refinement in inverse depth between the neighbouring planes.
    i0 = (i_min - 1).clamp(0, num_depths - 1)
    i2 = (i_min + 1).clamp(0, num_depths - 1)
    c0 = cost.gather(0, i0[None])[0]
    c2 = cost.gather(0, i2[None])[0]
    denom = c0 - 2 * c_min + c2
    offset = torch.where(denom > 1e-6, 0.5 * (c0 - c2) / denom, torch.zeros_like(denom))
    offset = offset.clamp(-0.5, 0.5)
    step = inv[1] - inv[0] if num_depths > 1 else torch.tensor(0.0)
    inv_best = inv[i_min] + offset * step
    depth = 1.0 / inv_best
    score = 1.0 - c_min
    textured = sd_r[0, 0] > 0.01
    interior = (i_min > 0) & (i_min < num_depths - 1)  # a winner at the range's end is a guess
    depth = torch.where(textured & interior, depth, torch.zeros_like(depth))
    return depth, score


def half_view(v: SweepView) -> SweepView:
    """The view at half its resolution (area-averaged): a 7-px window there spans 14 px."""
    cam = v.camera.scaled(0.5)
    img = F.interpolate(v.image[None], size=(cam.height, cam.width), mode="area")[0]
    return SweepView(cam, img, v.near, v.far)


def fill_from_coarse(
    depth: torch.Tensor,
    score: torch.Tensor,
    coarse_depth: torch.Tensor,
    coarse_score: torch.Tensor,
    min_score: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W) depth and score where the fine sweep found nothing confident (untextured at its
    window: smooth shading, a plain wall) taken from a sweep at a coarser resolution,
    ``coarse_*`` (h, w), where that one is confident; elsewhere unchanged."""
    H, W = depth.shape
    up = lambda x: F.interpolate(x[None, None], size=(H, W), mode="nearest")[0, 0]  # noqa: E731
    dc, sc = up(coarse_depth), up(coarse_score)
    hole = (depth <= 0) | (score < min_score)
    fill = hole & (dc > 0) & (sc >= min_score)
    return torch.where(fill, dc, depth), torch.where(fill, sc, score)


def sweep_depth_filled(
    ref: SweepView, sources: list[SweepView], num_depths: int = 96, coarse_levels: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``sweep_depth`` of ``ref``, its holes then filled (``fill_from_coarse``) from sweeps at
    1/2, 1/4, ... of its resolution, ``coarse_levels`` of them, each filling what the finer
    ones left: every halving doubles the window's reach, so smooth shading that is flat
    within 7 px at one scale has shape enough to match at the next. Each halving also halves
    the planes (at least 16): the disparities between them, in its pixels, stay as fine as the
    full sweep's, and the coarse sweeps cost 1/8 and 1/64 of it rather than 1/4 and 1/16."""
    d, s = sweep_depth(ref, sources, num_depths)
    planes = num_depths
    for _ in range(coarse_levels):
        ref, sources = half_view(ref), [half_view(src) for src in sources]
        planes = max(16, planes // 2)
        if min(ref.camera.width, ref.camera.height) < 16:
            break
        d, s = fill_from_coarse(d, s, *sweep_depth(ref, sources, planes))
    return d, s


def _backproject(cam: Camera, depth: torch.Tensor) -> torch.Tensor:
    """(H*W, 3) world points for a (H, W) depth map."""
    dev = depth.device
    rays = torch.from_numpy(np.linalg.inv(cam.K)).float().to(dev) @ _pixel_grid(cam, dev)
    x_cam = rays * depth.reshape(1, -1)
    R = torch.from_numpy(cam.R).float().to(dev)
    t = torch.from_numpy(cam.t).float().to(dev)
    return ((x_cam - t[:, None]).T @ R).contiguous()


def _project_into(X: torch.Tensor, cam: Camera) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Project world points ``X`` (N, 3) into ``cam``: their depth z (N,), the flat index of the
    pixel they land in (N,) int64 (clamped to the image), and whether they land inside (N,)."""
    R = torch.from_numpy(cam.R).float().to(X.device)
    t = torch.from_numpy(cam.t).float().to(X.device)
    xc = X @ R.T + t
    z = xc[:, 2]
    u = cam.fx * xc[:, 0] / z.clamp_min(1e-9) + cam.cx
    w = cam.fy * xc[:, 1] / z.clamp_min(1e-9) + cam.cy
    inside = (z > 0) & (u >= 0) & (u < cam.width) & (w >= 0) & (w < cam.height)
    ui = u.long().clamp(0, cam.width - 1)
    vi = w.long().clamp(0, cam.height - 1)
    return z, vi * cam.width + ui, inside


def _normals_from_depth(cam: Camera, depth: torch.Tensor) -> torch.Tensor:
    """(H*W, 3) world normals facing the camera, from depth-map neighbours."""
    X = _backproject(cam, depth).reshape(cam.height, cam.width, 3)
    dx = torch.zeros_like(X)
    dy = torch.zeros_like(X)
    dx[:, 1:-1] = X[:, 2:] - X[:, :-2]
    dy[1:-1] = X[2:] - X[:-2]
    n = torch.linalg.cross(dy, dx, dim=-1)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    to_cam = torch.from_numpy(cam.position).float().to(X.device) - X
    flip = (n * to_cam).sum(-1, keepdim=True) < 0
    return torch.where(flip, -n, n).reshape(-1, 3)


def fuse(
    views: list[SweepView],
    depths: list[torch.Tensor],
    scores: list[torch.Tensor],
    neighbors: list[list[int]],
    min_score: float = 0.5,
    depth_tolerance: float = 0.01,
    min_consistent: int = 2,
    num_depths: int = 96,
    checks: list[list[int]] | None = None,
    free_space_margin: float = 0.01,
    max_violations: int = 1,
) -> DenseCloud:
    """Keep depth-map points that ``min_consistent`` neighbouring depth maps agree with: their
    depths differ by less than ``depth_tolerance`` of the depth, or by less than half a plane
    of the other view's sweep (in inverse depth, as stereo measures it) - far away the sweep's
    planes lie further apart than any relative tolerance meant for the object up close.

    With ``checks`` (per view, the views to test against), a point is also dropped where more
    than ``max_violations`` of those views measured a confident surface behind it (by more than
    ``free_space_margin`` of the depth): they look through the place the point would fill, so it
    floats in free space."""
    if checks is not None:
        # The nearest confident depth within a pixel: a point on a silhouette that lands a
        # rounding away from it in another view is not in front of that view's surface.
        front = []
        for d, sc in zip(depths, scores, strict=True):
            inf = torch.full_like(d, torch.inf)
            conf = torch.where((d > 0) & (sc >= min_score), d, inf)
            front.append(-F.max_pool2d(-conf[None], 3, 1, 1)[0])
    pts, cols, nrms, fps = [], [], [], []
    for i, v in enumerate(views):
        d = depths[i]
        ok = ((d > 0) & (scores[i] >= min_score)).reshape(-1)
        X = _backproject(v.camera, d)
        agree = torch.zeros(X.shape[0], dtype=torch.int32, device=X.device)
        violations = torch.zeros_like(agree)
        check = checks[i] if checks is not None else []
        for j in dict.fromkeys([*neighbors[i], *check]):  # each view projected into once
            z, pix, inside = _project_into(X, views[j].camera)
            if j in neighbors[i]:
                dj = depths[j].reshape(-1)[pix]
                half_plane = 0.5 * (1 / views[j].near - 1 / views[j].far) / max(num_depths - 1, 1)
                close = ((dj - z).abs() < depth_tolerance * z) | (
                    (1 / dj.clamp_min(1e-9) - 1 / z.clamp_min(1e-9)).abs() < half_plane
                )
                agree += (inside & (dj > 0) & close).int()
            if j in check:
                fj = front[j].reshape(-1)[pix]
                violations += (inside & (z < fj * (1 - free_space_margin))).int()
        keep = ok & (agree >= min_consistent) & (violations <= max_violations)
        pts.append(X[keep])
        cols.append(v.image.reshape(3, -1).T[keep])
        nrms.append(_normals_from_depth(v.camera, d)[keep])
        fps.append(d.reshape(-1)[keep] / v.camera.fx)
    P = torch.cat(pts).cpu().numpy()
    C = torch.cat(cols).cpu().numpy()
    N = torch.cat(nrms).cpu().numpy()
    FP = torch.cat(fps).cpu().numpy()
    return DenseCloud(*(a.astype(np.float32) for a in (P, C, N, FP)))


def _scale_band(cloud: DenseCloud) -> np.ndarray:
    """(N,) int: 0 for points seen at about the median pixel footprint or finer, b for points
    whose footprint is about 2^b times it (the room behind an object, seen from afar)."""
    if cloud.footprint is None or len(cloud.footprint) == 0:
        return np.zeros(len(cloud.points), np.int64)
    ratio = cloud.footprint / max(float(np.median(cloud.footprint)), 1e-12)
    return np.clip(np.round(np.log2(np.maximum(ratio, 1e-6))), 0, 20).astype(np.int64)


def voxel_merge(cloud: DenseCloud, voxel: float) -> DenseCloud:
    """Average the points falling in each cell (duplicates from several views). Cells are
    ``voxel`` wide where points were seen at the median pixel footprint and 2^b times wider
    for points seen 2^b times coarser, so far surfaces keep about one point per pixel instead
    of being merged away or kept at a density no photo resolves."""
    if len(cloud.points) == 0:
        return cloud
    band = _scale_band(cloud)
    size = voxel * np.exp2(band)[:, None]
    key = np.concatenate([np.floor(cloud.points / size).astype(np.int64), band[:, None]], 1)
    key -= key.min(0)
    span = key.max(0) + 1
    if float(np.prod(span.astype(np.float64))) < 2.0**62:
        # One int64 per cell, in the same (x, y, z, band) order: np.unique on a flat array is
        # an order of magnitude faster than over rows.
        flat = ((key[:, 0] * span[1] + key[:, 1]) * span[2] + key[:, 2]) * span[3] + key[:, 3]
        _, inv, counts = np.unique(flat, return_inverse=True, return_counts=True)
    else:
        _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)

    def mean(a: np.ndarray) -> np.ndarray:
        cols = [
            np.bincount(inv, a[:, c].astype(np.float64), len(counts)) for c in range(a.shape[1])
        ]
        return (np.stack(cols, 1) / counts[:, None]).astype(np.float32)

    n = mean(cloud.normals)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    fp = None if cloud.footprint is None else mean(cloud.footprint[:, None])[:, 0]
    return DenseCloud(mean(cloud.points), mean(cloud.colors), n, fp)


def remove_outliers(cloud: DenseCloud, k: int = 8, std_ratio: float = 2.0) -> DenseCloud:
    """Drop points whose mean distance to their ``k`` nearest neighbours is more than
    ``std_ratio`` standard deviations above the average (isolated mismatches in free space).
    Distances are measured in pixel footprints where the cloud has them: a far wall is
    sparser in world units than the object in front, not an outlier."""
    if len(cloud.points) <= k:
        return cloud
    mean = point_spacing(cloud.points, k)
    if cloud.footprint is not None:
        mean = mean / np.exp2(_scale_band(cloud))
    keep = mean <= mean.mean() + std_ratio * mean.std()
    return cloud.subset(keep)


def _gray_stack(views: list[SweepView]) -> torch.Tensor:
    """(V, H, W) luminance of every view, padded to the largest."""
    H = max(v.camera.height for v in views)
    W = max(v.camera.width for v in views)
    g = torch.zeros(len(views), H, W, device=views[0].image.device)
    for i, v in enumerate(views):
        g[i, : v.camera.height, : v.camera.width] = _gray(v.image)[0]
    return g


def _bilinear(g: torch.Tensor, view: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Sample ``g`` (V, H, W) in view ``view`` (...) int64 at pixel coordinates ``uv`` (..., 2)
    (pixel i spans [i, i + 1)): (...)."""
    _, H, W = g.shape
    x, y = uv[..., 0] - 0.5, uv[..., 1] - 0.5
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    x0 = x0.long().clamp(0, W - 2)
    y0 = y0.long().clamp(0, H - 2)
    flat = g.reshape(-1)
    i = view * (H * W) + y0 * W + x0
    top = flat[i] * (1 - fx) + flat[i + 1] * fx
    bottom = flat[i + W] * (1 - fx) + flat[i + W + 1] * fx
    return top * (1 - fy) + bottom * fy


def _stacked_cameras(views: list[SweepView], device) -> dict[str, torch.Tensor]:
    """Every view's K, R, t, centre (V, 3[, 3]) and size (V, 2) as tensors."""

    def t(a) -> torch.Tensor:
        return torch.tensor(np.stack(a), dtype=torch.float32, device=device)

    cams = [v.camera for v in views]
    return {"K": t([c.K for c in cams]), "R": t([c.R for c in cams]), "t": t([c.t for c in cams]),
            "C": t([c.position for c in cams]), "size": t([[c.width, c.height] for c in cams])}  # fmt: skip


def _project(X: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor):
    """World points X (..., 3) through cameras broadcast against them (K, R (..., 3, 3), t
    (..., 3)): pixel coordinates (..., 2) and depth (...)."""
    xc = (R @ X[..., None])[..., 0] + t
    uvw = (K @ xc[..., None])[..., 0]
    return uvw[..., :2] / uvw[..., 2:3].clamp_min(1e-9), xc[..., 2]


def rank_views(
    views: list[SweepView],
    depths: list[torch.Tensor],
    cloud: DenseCloud,
    count: int = 5,
    tolerance: float = 0.01,
    min_cos: float = 0.3,
    max_angle: float = 40.0,
) -> torch.Tensor:
    """(N, count) int64 views for each point, -1 where there are fewer: first the view that
    sees it largest and most frontally, then the ones at the widest angles to it up to
    ``max_angle`` degrees (a depth error shows most there). Only views whose depth map has the
    point (within ``tolerance`` of its depth) and that face it (cosine to its normal above
    ``min_cos``) count."""
    dev = depths[0].device
    P = torch.from_numpy(cloud.points).to(dev)
    Nrm = torch.from_numpy(cloud.normals).to(dev)
    C = _stacked_cameras(views, dev)["C"]

    def seen(j: int) -> tuple[torch.Tensor, torch.Tensor]:
        z, pix, inside = _project_into(P, views[j].camera)
        dj = depths[j].reshape(-1)[pix]
        to_cam = C[j] - P
        dist = to_cam.norm(dim=1, keepdim=True).clamp_min(1e-9)
        ok = inside & (dj > 0) & ((dj - z).abs() < tolerance * z)
        ok &= (to_cam * Nrm).sum(1) > min_cos * dist[:, 0]
        return ok, to_cam / dist

    def best_of(scores: list[torch.Tensor], k: int) -> torch.Tensor:
        q, i = torch.stack(scores, 1).topk(k, dim=1)
        return torch.where(q > 0, i, torch.full_like(i, -1))

    front = []
    for j in range(len(views)):
        ok, d = seen(j)
        front.append(torch.where(ok, (d * Nrm).sum(1) / (C[j] - P).norm(dim=1), -1.0))
    ref = best_of(front, 1)[:, 0]
    ref_dir = C[ref.clamp_min(0)] - P
    ref_dir = ref_dir / ref_dir.norm(dim=1, keepdim=True).clamp_min(1e-9)
    cos_max = math.cos(math.radians(max_angle))
    wide = []
    for j in range(len(views)):
        ok, d = seen(j)
        cos = (d * ref_dir).sum(1)
        # 2 - cos ranks wider angles first; 0 where unusable (the reference itself included).
        wide.append(torch.where(ok & (cos >= cos_max) & (ref != j) & (ref >= 0), 2.0 - cos, 0.0))
    return torch.cat([ref[:, None], best_of(wide, count - 1)], 1)


def refine_points(
    views: list[SweepView],
    depths: list[torch.Tensor],
    cloud: DenseCloud,
    voxel: float,
    offsets: int = 13,
    radius: int = 2,
    min_score: float = 0.5,
    keep: int = 2,
    chunk: int = 32768,
    report: Callable[[int, int], None] | None = None,
) -> tuple[DenseCloud, float]:
    """Move each point along its normal to where a slanted patch agrees best between the
    photos, and return the cloud and the share of points moved.

    The sweep scores fronto-parallel windows at one of ``num_depths`` planes; a table seen at a
    grazing angle or a depth between two planes leaves points about a pixel off the surface
    (phone2's truth: 1.07 depth-map pixels median near the object), enough to blur texture in
    every other view. Here each point's tangent plane is tried at ``offsets`` positions a voxel
    apart (``voxel`` times 2^band for points seen from afar, as in ``voxel_merge``): a
    (2 ``radius`` + 1)^2-pixel patch about the point in the view that sees it best
    (``rank_views``) is carried by the plane into up to four others and scored by NCC, the
    best ``keep`` views averaged. The best offset, refined by a parabola, is kept where it is
    inside the range and scores at least ``min_score``."""
    if len(cloud.points) == 0:
        return cloud, 0.0
    dev = depths[0].device
    ranked = rank_views(views, depths, cloud)
    g = _gray_stack(views)
    cams = _stacked_cameras(views, dev)
    K_inv = torch.linalg.inv(cams["K"])
    R_t = cams["R"].transpose(1, 2)
    r = torch.arange(-radius, radius + 1, dtype=torch.float32, device=dev)
    patch = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1).reshape(-1, 2)  # (S, 2)
    ks = torch.arange(offsets, dtype=torch.float32, device=dev) - offsets // 2
    P_all = torch.from_numpy(cloud.points).to(dev)
    N_all = torch.from_numpy(cloud.normals).to(dev)
    step_all = torch.from_numpy(voxel * np.exp2(_scale_band(cloud))).float().to(dev)
    out = P_all.clone()
    moved = torch.zeros(len(P_all), dtype=torch.bool, device=dev)
    for c0 in range(0, len(P_all), chunk):
        if report is not None:
            report(c0, len(P_all))
        P, Nrm, order = P_all[c0 : c0 + chunk], N_all[c0 : c0 + chunk], ranked[c0 : c0 + chunk]
        step = step_all[c0 : c0 + chunk]
        ref = order[:, 0].clamp_min(0)
        uv0, _ = _project(P, cams["K"][ref], cams["R"][ref], cams["t"][ref])
        uv = uv0[:, None] + patch  # (n, S, 2)
        size = cams["size"][ref][:, None]
        usable = (order[:, :2] >= 0).all(1) & ((uv >= 1) & (uv < size - 1)).all(2).all(1)
        a = _bilinear(g, ref[:, None], uv)
        a = a - a.mean(1, keepdim=True)
        a = a / (a.norm(dim=1, keepdim=True) + 1e-4)
        # The patch pixels' rays (world directions) from the reference camera's centre.
        hom = torch.cat([uv, torch.ones_like(uv[..., :1])], -1)
        rays = (R_t[ref][:, None] @ (K_inv[ref][:, None] @ hom[..., None]))[..., 0]  # (n, S, 3)
        origin = cams["C"][ref][:, None]  # (n, 1, 3)
        along = (rays * Nrm[:, None]).sum(-1)
        along = torch.where(along.abs() > 1e-6, along, torch.full_like(along, 1e-6))
        # The patch on the point's own tangent plane, and how it moves per offset step: the
        # plane shifted by o * step along the normal meets each ray o * step / along further.
        hit = ((P[:, None] - origin) * Nrm[:, None]).sum(-1) / along  # (n, S)
        X0 = origin + hit[..., None] * rays
        dX = (step[:, None] / along)[..., None] * rays
        scores = []
        for k in range(1, order.shape[1]):
            src = order[:, k]
            s = src.clamp_min(0)
            M = cams["K"][s] @ cams["R"][s]  # (n, 3, 3): world to pixels, up to the division
            base = (
                X0 @ M.transpose(1, 2) + (cams["K"][s] @ cams["t"][s][..., None])[..., 0][:, None]
            )
            per_step = dX @ M.transpose(1, 2)
            size = cams["size"][s][:, None]
            per_offset = []
            for o in ks:
                uvw = base + o * per_step  # (n, S, 3); w is the depth (K's last row is 0 0 1)
                z = uvw[..., 2]
                uv_s = uvw[..., :2] / z[..., None].clamp_min(1e-9)
                ok = (src >= 0) & (z > 0).all(1) & ((uv_s >= 1) & (uv_s < size - 1)).all(2).all(1)
                b = _bilinear(g, s[:, None], uv_s)
                b = b - b.mean(1, keepdim=True)
                ncc = (a * b).sum(1) / (b.norm(dim=1) + 1e-4)
                per_offset.append(torch.where(ok, ncc, torch.full_like(ncc, -1.0)))
            scores.append(torch.stack(per_offset, 1))
        score = torch.stack(scores).topk(min(keep, len(scores)), dim=0).values.mean(0)  # (n, O)
        best, i = score.max(1)
        c_lo = score.gather(1, (i - 1).clamp_min(0)[:, None])[:, 0]
        c_hi = score.gather(1, (i + 1).clamp_max(offsets - 1)[:, None])[:, 0]
        curv = c_lo - 2 * best + c_hi
        frac = torch.where(curv < -1e-6, 0.5 * (c_lo - c_hi) / curv, torch.zeros_like(curv))
        go = usable & (i > 0) & (i < offsets - 1) & (best >= min_score)
        shift = (ks[i] + frac.clamp(-0.5, 0.5)) * step
        out[c0 : c0 + chunk] = torch.where(go[:, None], P + shift[:, None] * Nrm, P)
        moved[c0 : c0 + chunk] = go
    points = out.cpu().numpy().astype(np.float32)
    refined = DenseCloud(points, cloud.colors, cloud.normals, cloud.footprint)
    return refined, float(moved.float().mean())


def densify(
    views: list[SweepView],
    neighbors: int = 4,
    num_depths: int = 96,
    voxel: float | None = None,
    max_points: int = 1_000_000,
    report: Callable[[str, int, int], None] | None = None,
    refine: bool = False,
    coarse_levels: int = 0,
) -> DenseCloud:
    """Plane-sweep every view, fuse, merge on a voxel grid (default: 1/1000 of the extent),
    drop outliers, keep at most ``max_points`` (a random subset; fitting time grows with the
    point count) and, with ``refine``, move them onto the surface the photos agree on
    (``refine_points``). ``coarse_levels``: each depth map's holes filled from sweeps at 1/2 ..
    1/2**``coarse_levels`` of its resolution (``sweep_depth_filled``; 0: none).
    ``report(stage, done, total)``: 'depth maps' or 'refining points'."""
    cams = [v.camera for v in views]
    nbrs = choose_neighbors(cams, neighbors)
    # Free-space checks ask twice as many views, up to 60 degrees round, as matching does: a
    # floater in front of a surface is seen through by views the matching never compared.
    checks = choose_neighbors(cams, 8, max_deg=60.0)
    depths, scores = [], []
    for i, v in enumerate(views):
        if report is not None:
            report("depth maps", i, len(views))
        with torch.no_grad():
            d, s = sweep_depth_filled(v, [views[j] for j in nbrs[i]], num_depths, coarse_levels)
        depths.append(d)
        scores.append(s)
    if report is not None:
        report("depth maps", len(views), len(views))
    with torch.no_grad():
        cloud = fuse(views, depths, scores, nbrs, num_depths=num_depths, checks=checks)
    if len(cloud.points) and voxel is None:
        near = _scale_band(cloud) == 0  # the extent of what is seen up close, not the room
        lo, hi = np.quantile(cloud.points[near], [0.01, 0.99], axis=0)
        voxel = float(np.linalg.norm(hi - lo)) / 1000.0
    cloud = voxel_merge(cloud, voxel) if voxel else cloud
    cloud = remove_outliers(cloud)
    if len(cloud.points) > max_points:
        keep = np.sort(np.random.default_rng(0).choice(len(cloud.points), max_points, False))
        cloud = cloud.subset(keep)
    if refine and voxel:
        step = None if report is None else (lambda i, n: report("refining points", i, n))
        with torch.no_grad():
            cloud, _ = refine_points(views, depths, cloud, voxel, report=step)
    return cloud


def working_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    s = min(1.0, max_side / max(width, height))
    return max(8, math.floor(width * s)), max(8, math.floor(height * s))
