"""The depth order the Gaussians mode draws in: which Gaussians a camera sees, front to back,
with a bound on their size on screen (``view_order``), and the sort on a latest-wins thread
that never blocks the GUI (``Sorter``). NumPy only: no OpenGL, no Qt."""

from __future__ import annotations

import time

import numpy as np

from engine.camera import Camera
from engine.gaussians.model import Gaussians, depth_order
from engine.latest import LatestWins


class ViewOrder:
    """One sort's result: the camera it was made for and, front to back, the indices (uint32)
    of the Gaussians in front of the near plane; ``lod``: only the ``lod`` most important
    Gaussians (a moving camera's level of detail), None: all; ``max_half_px``: a bound on the
    largest half-size on screen of those drawn (inf: unknown)."""

    def __init__(self, key: bytes, index: np.ndarray, lod: int | None = None,
                 max_half_px: float = float("inf")) -> None:  # fmt: skip
        self.key, self.index, self.lod, self.max_half_px = key, index, lod, max_half_px


def view_order(g: Gaussians, cam: Camera, subset: np.ndarray | None = None,
               reach: np.ndarray | None = None, margin_px: float = 2.0) -> ViewOrder:  # fmt: skip
    """Depth order of all Gaussians, or of ``subset`` (indices); with ``reach`` (N,) (see
    ``Gaussians.reach``) those wholly outside the view, widened by ``margin_px`` pixels (the
    0.3 px² low-pass reaches 1.8 px), are left out, and the largest on-screen size is bounded.
    The colours are evaluated on the GPU, per frame, from each Gaussian's spherical
    harmonics."""
    means = g.means if subset is None else g.means[subset]
    frustum = r = None
    if reach is not None:
        m = margin_px
        frustum = ((-cam.cx - m) / cam.fx, (cam.width - cam.cx + m) / cam.fx,
                   (-cam.cy - m) / cam.fy, (cam.height - cam.cy + m) / cam.fy)  # fmt: skip
        r = reach if subset is None else reach[subset]
    order, z = depth_order(means, cam.world_to_camera, cam.near, frustum, r)
    index = order if subset is None else subset[order]
    lod = None if subset is None else len(subset)
    half = float("inf")
    if r is not None:
        # The EWA footprint's half-size: sqrt(k (lmax + 0.3)) <= |J| reach + 1.83 px, with
        # |J| <= f / z sqrt(1 + tx^2 + ty^2) at the Jacobian's clamped 1.3 x the view's tangents.
        tx = 1.3 * max(abs(frustum[0]), abs(frustum[1]))
        ty = 1.3 * max(abs(frustum[2]), abs(frustum[3]))
        j = max(cam.fx, cam.fy) * float(np.sqrt(1 + tx * tx + ty * ty))
        half = float((j * r[order] / z).max(initial=0.0)) + 2.0
    return ViewOrder(pose_key(cam), index.astype(np.uint32), lod, half)


def pose_key(cam: Camera) -> bytes:
    return np.asarray(cam.world_to_camera, np.float64).tobytes()


class Sorter:
    """The full depth sort on a latest-wins thread: ``request`` never blocks; ``on_done`` is
    called from the thread when a newer order is ready."""

    settle_s = 0.06  # a camera unchanged this long is sorted ahead (see ``request``)

    def __init__(self, g: Gaussians, on_done, reach: np.ndarray | None = None) -> None:
        self.g, self.on_done, self.reach = g, on_done, reach
        self.result: ViewOrder | None = None
        self.ms = 0.0
        self._asked: bytes | None = None  # the camera of the newest request
        self._latest = LatestWins(self._sort, self._done, name="nsv-gaussian-sort")

    def request(self, cam: Camera, moving: bool, ahead: bool = False) -> None:
        """Sort for ``cam``; ``moving``: the order will be drawn for the next cameras too.
        ``ahead``: a frame drawn with a level of detail - sort all for this camera only once
        no newer camera has come for ``settle_s``, so the order for where the camera stops is
        ready by the time the view refines (the wait for the camera to count as stopped)."""
        key = pose_key(cam)
        if key == self._asked:
            return
        self._asked = key
        self._latest.submit((cam, moving, ahead))

    def stop(self) -> None:
        self._latest.stop(wait_s=0)

    def _sort(self, job: tuple[Camera, bool, bool]) -> ViewOrder | None:
        cam, moving, ahead = job
        if ahead:
            time.sleep(self.settle_s)
            if self._latest.has_newer():  # still moving: nothing to sort ahead
                return None
        t0 = time.perf_counter()
        # A moving camera's order is drawn for a frame or two after it has moved on: a wider
        # view than the camera's, so Gaussians coming in at the edges are already there.
        margin = 0.15 * cam.width if moving else 2.0
        order = view_order(self.g, cam, reach=self.reach, margin_px=margin)
        self.ms = (time.perf_counter() - t0) * 1000
        return order

    def _done(self, _job: tuple, order: ViewOrder | None) -> None:
        if order is None:
            return
        self.result = order
        if self.on_done is not None:
            self.on_done()
