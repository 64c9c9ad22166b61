"""Progressive rendering: 1-spp frames accumulate while the camera is still, reset on motion."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from engine.camera import Camera
from engine.frame import Frame
from engine.pathtrace.mitsuba_scene import MitsubaScene

PATHTRACE_VIEWS = ("color", "albedo", "normal", "depth")


@dataclass
class PathTraceOptions:
    """view: which buffer to show (PATHTRACE_VIEWS); max_spp: stop accumulating here;
    exposure: stops applied before tone mapping."""

    view: str = "color"
    max_spp: int = 1024
    exposure: float = 0.0


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear RGB -> sRGB-encoded, clamped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def to_display(rgb_linear: np.ndarray, exposure: float = 0.0) -> np.ndarray:
    """(H, W, 3) linear radiance -> (H, W, 3) uint8 sRGB."""
    return (linear_to_srgb(rgb_linear * 2.0**exposure) * 255 + 0.5).astype(np.uint8)


class ProgressiveRenderer:
    """Path traces one sample per pixel per call and keeps running means of every buffer.

    The accumulation restarts whenever the camera (pose, intrinsics or size) changes, so a
    moving camera shows fresh 1-spp frames and a still one converges. Frame.extra carries
    'spp' and 'progressive' (True while more samples would still be added).
    """

    def __init__(self, scene: MitsubaScene) -> None:
        self.scene = scene
        self.device = scene.variant
        self.num_points = 0
        self._key = None
        self._epoch = 0
        self.spp = 0
        self.mean: dict[str, np.ndarray] = {}

    def reset(self) -> None:
        self._key = None

    def _camera_key(self, c: Camera):
        return (
            c.world_to_camera.round(9).tobytes(),
            c.width,
            c.height,
            round(c.fx, 6),
            round(c.fy, 6),
            round(c.cx, 6),
            round(c.cy, 6),
        )

    def render(self, camera: Camera, opts: PathTraceOptions | None = None) -> Frame:
        opts = opts or PathTraceOptions()
        t0 = time.perf_counter()
        key = self._camera_key(camera)
        if key != self._key:
            self._key, self.spp, self.mean = key, 0, {}
            self._epoch += 1
        if self.spp < opts.max_spp:
            # A distinct seed per sample and per camera epoch keeps samples independent.
            f = self.scene.render(camera, 1, seed=self._epoch * 1_000_003 + self.spp)
            n = self.spp + 1
            for name in ("radiance", "albedo", "normal", "depth"):
                x = getattr(f, name)
                self.mean[name] = (
                    x.copy() if n == 1 else self.mean[name] + (x - self.mean[name]) / n
                )
            self.spp = n
        image = self.display(opts)
        ms = (time.perf_counter() - t0) * 1000
        extra = {
            "spp": self.spp,
            "progressive": self.spp < opts.max_spp,
            "variant": self.scene.variant,
        }
        return Frame(image, camera, ms, 0, self.scene.variant, extra)

    def display(self, opts: PathTraceOptions) -> np.ndarray:
        m = self.mean
        if opts.view == "albedo":
            return to_display(m["albedo"])
        if opts.view == "normal":
            n = m["normal"]
            return (
                (np.clip(n * 0.5 + 0.5, 0, 1) * (np.abs(n).sum(-1, keepdims=True) > 0)) * 255 + 0.5
            ).astype(np.uint8)
        if opts.view == "depth":
            d = m["depth"]
            valid = d > 0
            out = np.zeros((*d.shape, 3), np.uint8)
            if valid.any():
                lo, hi = d[valid].min(), d[valid].max()
                t = 1 - (d - lo) / max(hi - lo, 1e-9)
                out[valid] = (np.repeat(t[valid, None], 3, 1) * 255).astype(np.uint8)
            return out
        return to_display(m["radiance"], opts.exposure)
