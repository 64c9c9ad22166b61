"""The points a crop of a photo can see, found without projecting the whole cloud.

A fit renders random crops of its photos (``engine.npbg.data.ViewSet.sample``): the photo's
pose with its intrinsics scaled and shifted. Projecting all of a million points for every crop
was about two thirds of the rasterization (15 of 24 ms for a 256-px crop on the 2-core EPYC),
yet a crop covers a third of its photo. ``PhotoCull`` sorts once the points inside a photo's
frame by the 16-px tile they land in, row of tiles by row of tiles; a crop then takes, for each
row of tiles it covers, the run of tiles it covers - a superset of the points that land in it -
and the rasterizer, given their indices in the cloud, returns the same pixels as from the
whole cloud."""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.camera import Camera
from engine.points.rasterize import project_points

TILE = 16  # photo pixels
# Photo pixels added round the frame and round a crop's window, and the relative slack on the
# depth range: far more than float32 rounding can move a point, so no point that lands in a
# crop is left out.
_MARGIN = 2
_DEPTH_SLACK = 1e-3


class PhotoCull:
    """The points of a cloud inside one photo's frame, ordered by the tile they land in.

    points: (N, 3) float32 world coordinates (the cloud a crop will be rasterized from)
    camera: the photo's camera; crops must share its pose
    """

    def __init__(self, points: torch.Tensor, camera: Camera) -> None:
        self.camera = camera
        uv, z = project_points(points, camera)
        u, v = uv[:, 0], uv[:, 1]
        m, W, H = _MARGIN, camera.width, camera.height
        inside = (
            (z > camera.near * (1 - _DEPTH_SLACK)) & (z < camera.far * (1 + _DEPTH_SLACK))
            & (u >= -m) & (u < W + m) & (v >= -m) & (v < H + m)
        )  # fmt: skip
        ids = torch.nonzero(inside)[:, 0]
        # Tiles over the frame and its margin: column tx of row ty covers photo pixels
        # x = tx * TILE - m .. (tx + 1) * TILE - m.
        self.cols = math.ceil((W + 2 * m) / TILE)
        self.rows = math.ceil((H + 2 * m) / TILE)
        tx = ((u[ids] + m) / TILE).floor().long().clamp_(0, self.cols - 1)
        ty = ((v[ids] + m) / TILE).floor().long().clamp_(0, self.rows - 1)
        tile = ty * self.cols + tx
        self.ids = ids[torch.argsort(tile, stable=True)].to(torch.int32)  # (M,) by tile
        counts = torch.bincount(tile, minlength=self.rows * self.cols)
        # (rows * cols + 1,) where each tile starts in ``ids``
        self.starts = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).tolist()

    def points_for(self, crop: Camera) -> torch.Tensor | None:
        """(K,) int32 indices into the cloud: every point that can land in ``crop`` (and some
        that do not), or None when ``crop`` is not a window of this photo (another pose or
        depth range, or reaching past the frame): then rasterize the whole cloud."""
        cam = self.camera
        if (
            not np.array_equal(crop.world_to_camera, cam.world_to_camera)
            or crop.near < cam.near
            or crop.far > cam.far
        ):
            return None
        # The same pose: a point's x / z is (u - cx) / fx in both images, y / z (v - cy) / fy.
        m = _MARGIN
        ax, ay = cam.fx / crop.fx, cam.fy / crop.fy
        left, right = cam.cx - crop.cx * ax, cam.cx + (crop.width - crop.cx) * ax
        top, bottom = cam.cy - crop.cy * ay, cam.cy + (crop.height - crop.cy) * ay
        if left < 1 - m or right > cam.width + m - 1 or top < 1 - m or bottom > cam.height + m - 1:
            return None  # e.g. a crop padded to the network's multiple: its points are not here
        # Tiles holding photo pixels left - 1 .. right + 1 (and the same for rows).
        tx0, tx1 = (math.floor((left - 1 + m) / TILE), math.floor((right + 1 + m) / TILE))
        ty0, ty1 = (math.floor((top - 1 + m) / TILE), math.floor((bottom + 1 + m) / TILE))
        tx1, ty1 = min(tx1, self.cols - 1), min(ty1, self.rows - 1)
        runs = [
            self.ids[self.starts[ty * self.cols + tx0] : self.starts[ty * self.cols + tx1 + 1]]
            for ty in range(ty0, ty1 + 1)
        ]
        return torch.cat(runs)
