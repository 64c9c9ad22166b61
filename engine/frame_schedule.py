"""The viewport's frame policy, without Qt (unit-tested without a display): which camera size
a request renders at (dynamic resolution while moving, each mode's own moving size), when the
camera counts as moving, the two-step refinement after it stops, and which results are stale.

The viewer calls it from its timers and input handlers; ``clock`` is injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.camera import Camera
from engine.frame import Frame
from engine.frame_cost import FrameCost
from engine.mode_registry import Mode
from engine.view_settings import ViewSettings

IDLE_REFINE_S = 0.25  # after this long without input, render at full quality


@dataclass(frozen=True)
class RenderPlan:
    """What to ask the renderer for: the camera (its size is the frame's), whether it is a
    moving frame (the mode's cheaper variant), and a cap on points for huge clouds."""

    camera: Camera
    moving: bool
    max_points: int | None = None


class FrameScheduler:
    """Request ids, the learned cost per mode, and the sizing decisions of the viewport."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.cost = FrameCost()  # per-mode frame cost, learned from rendered frames
        self.last_input = 0.0
        self.half_id = -1  # id of a half-resolution refinement step in flight
        self.next_id = 0  # the newest request's id
        self.shown_id = -1  # the newest result shown
        self.id_mode = ""  # the mode the newest request was made in
        self.ms_per_point = 1e-7  # torch rasterizer cost per point, measured

    # --- input --------------------------------------------------------------------------------
    def interacted(self, refine_now: bool) -> None:
        """The camera or a setting changed: now (refine at once) or by dragging (moving)."""
        self.half_id = -1
        self.last_input = 0.0 if refine_now else self.clock()

    def is_moving(self) -> bool:
        return (self.clock() - self.last_input) < IDLE_REFINE_S

    def refine_wait_s(self) -> float:
        """Seconds until the camera counts as stopped (0: it has)."""
        return max(0.0, IDLE_REFINE_S - (self.clock() - self.last_input))

    # --- sizing -------------------------------------------------------------------------------
    def cost_key(self, mode_key: str, renderer: Any, moving: bool) -> str:
        """The frame-cost model a request is priced by: a mode's moving frames have their own
        when the renderer draws them differently (Neural's preview network)."""
        if moving and getattr(renderer, "has_preview", False):
            key = mode_key + ":preview"
            if self.cost.model(key) is not None:  # else price it as the full network (safe)
                return key
        return mode_key

    def refine_scale(self, mode: Mode, s: ViewSettings, cam: Camera) -> float:
        """0.5 when a slow mode should refine in two steps (half, then full resolution) so the
        view sharpens soon after the camera stops; 1 when the full frame alone lands within
        ``refine_ms`` (the half step would only delay it)."""
        full_ms = self.cost.predict(s.mode, cam.width * cam.height)
        half = (
            not mode.progressive
            and s.dynamic_resolution
            and full_ms is not None
            and full_ms > 4 * s.target_ms
            and IDLE_REFINE_S * 1000 + full_ms > s.refine_ms
        )
        return 0.5 if half else 1.0

    def plan(self, mode: Mode, renderer: Any, s: ViewSettings, cam: Camera,
             scale: float = 1.0, num_points: int | None = None) -> RenderPlan:  # fmt: skip
        """The request for ``cam`` (the viewport's full size) in ``mode``."""
        moving_now = s.dynamic_resolution and self.is_moving()
        if mode.frame_size is not None:  # the mode sizes its own frames (path tracing)
            cam, moving = mode.frame_size(cam, s, moving_now, self.cost)
            return RenderPlan(cam, moving)
        if moving_now:
            # Moving: the mode's cheaper variant if it has one (Neural: the preview network),
            # at the resolution its recorded cost says fits the budget on the first frame.
            key = self.cost_key(s.mode, renderer, True)
            budget = mode.moving_budget(s) if mode.moving_budget is not None else s.target_ms
            factor = self.cost.moving_factor(key, cam.width * cam.height, budget)
            return RenderPlan(cam.scaled(factor), True)
        max_points = None
        if scale != 1.0:
            cam = cam.scaled(scale)
            # Huge clouds cost per point, not per pixel: also cap the points while refining.
            budget = s.target_ms / max(self.ms_per_point, 1e-9)
            if num_points is not None and budget < num_points:
                max_points = max(100_000, int(budget))
        return RenderPlan(cam, False, max_points)

    # --- requests and results ------------------------------------------------------------------
    def new_request(self, mode_key: str) -> int:
        """An id for the next request; switching modes makes results still in flight stale."""
        if mode_key != self.id_mode:
            self.shown_id = self.next_id
            self.id_mode = mode_key
        self.next_id += 1
        return self.next_id

    def drop_in_flight(self) -> None:
        """Results of requests made so far are stale (a new scene)."""
        self.shown_id = self.next_id

    def accept(self, result_id: int, mode_key: str) -> bool:
        """Whether a result should be shown (False: a newer one is on screen, or it was
        rendered in another mode); marks it shown."""
        if result_id <= self.shown_id or mode_key != self.id_mode:
            return False
        self.shown_id = result_id
        return True

    def record(self, mode: Mode, mode_key: str, frame: Frame, points_mode: bool) -> None:
        """Learn the frame's cost: progressive modes from their fresh (1-sample) frames, the
        others from every frame (the preview network's apart)."""
        w, h = frame.size
        if points_mode and frame.points_drawn >= 100_000:
            est = frame.render_ms / frame.points_drawn
            self.ms_per_point = 0.5 * self.ms_per_point + 0.5 * est
        if mode.progressive:
            if frame.spp == 1:  # a fresh frame: what moving costs
                self.cost.record(mode_key, w * h, frame.render_ms - frame.build_ms)
        else:
            key = mode_key + (":preview" if frame.network == "preview" else "")
            self.cost.record(key, w * h, frame.render_ms)

    def half_step_done(self, result_id: int) -> bool:
        """The half-resolution refinement step is on screen and nothing newer was asked for:
        time for the full frame."""
        if result_id == self.half_id == self.next_id and not self.is_moving():
            self.half_id = -1
            return True
        return False

    @property
    def refining(self) -> bool:
        return self.half_id != -1
