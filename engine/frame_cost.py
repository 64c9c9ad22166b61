"""How long a mode takes per frame, learned from the frames it rendered, so that the first
frame of a camera move is already rendered at a resolution that fits the frame budget (instead
of starting each drag at full cost and adapting over several slow frames)."""

from __future__ import annotations

import math
from collections import deque

SNAP_FULL = 0.9


class FrameCost:
    """Per-mode model ``ms = fixed + per_pixel * pixels``, fitted to that mode's recent frames
    (still and moving alike; kept across drags). ``moving_factor`` turns it into the
    resolution scale for a frame budget."""

    def __init__(self, min_factor: float = 0.2, keep: int = 24) -> None:
        self.min_factor = min_factor
        self._samples: dict[str, deque[tuple[float, float]]] = {}
        self._keep = keep

    def record(self, mode: str, pixels: int, ms: float) -> None:
        if pixels > 0 and ms > 0 and math.isfinite(ms):
            self._samples.setdefault(mode, deque(maxlen=self._keep)).append((float(pixels), ms))

    def model(self, mode: str) -> tuple[float, float] | None:
        """(fixed ms, ms per pixel), or None before the mode has rendered anything."""
        s = self._samples.get(mode)
        if not s:
            return None
        px = [p for p, _ in s]
        ms = [m for _, m in s]
        if max(px) > 1.5 * min(px):  # two or more resolutions seen: fit both terms
            n = len(px)
            mp, mm = sum(px) / n, sum(ms) / n
            var = sum((p - mp) ** 2 for p in px)
            slope = sum((p - mp) * (m - mm) for p, m in zip(px, ms, strict=True)) / var
            fixed = mm - slope * mp
            if slope > 0 and fixed >= 0:
                return fixed, slope
        # One resolution (or a noisy fit): all of the cost scales with the pixels.
        return 0.0, sum(ms) / sum(px)

    def predict(self, mode: str, pixels: int) -> float | None:
        m = self.model(mode)
        return None if m is None else m[0] + m[1] * pixels

    def moving_factor(self, mode: str, full_pixels: int, target_ms: float) -> float:
        """Resolution scale (applied to width and height) that fits ``target_ms``; 1 when the
        full resolution fits or nothing is known yet."""
        m = self.model(mode)
        if m is None:
            return 1.0
        fixed, per_px = m
        # When the fixed part alone overruns the budget, shrinking the image further buys
        # little time and costs a lot of sharpness: let the pixels cost half the fixed part.
        budget = max(target_ms - fixed, 0.25 * target_ms, 0.5 * fixed)
        f = math.sqrt(budget / max(per_px * full_pixels, 1e-9))
        # Nearly full size is drawn at full size: scaling a 0.9 frame up blurs every pixel
        # for at most 1.23x the time.
        return 1.0 if f >= SNAP_FULL else max(self.min_factor, f)
