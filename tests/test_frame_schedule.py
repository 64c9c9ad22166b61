"""The viewport's frame policy without a display: moving vs still, dynamic resolution from
the learned cost, the path tracer's own sizes, two-step refinement, stale results."""

from __future__ import annotations

import numpy as np

from engine.camera import Camera
from engine.frame import Frame
from engine.frame_schedule import IDLE_REFINE_S, FrameScheduler
from engine.modes import get_mode
from engine.view_settings import ViewSettings


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _cam(w=400, h=300):
    return Camera.from_fov(w, h, 50.0)


def _frame(cam, ms, **kw):
    return Frame(np.zeros((cam.height, cam.width, 3), np.uint8), cam, ms, **kw)


def test_moving_then_still():
    clock = Clock()
    sch = FrameScheduler(clock)
    sch.interacted(refine_now=False)
    assert sch.is_moving() and sch.refine_wait_s() == IDLE_REFINE_S
    clock.t += IDLE_REFINE_S + 0.01
    assert not sch.is_moving() and sch.refine_wait_s() == 0
    sch.interacted(refine_now=True)
    assert not sch.is_moving()


def test_moving_frames_fit_the_budget_from_the_learned_cost():
    clock = Clock()
    sch = FrameScheduler(clock)
    mode, s, cam = get_mode("color"), ViewSettings(mode="color", target_ms=40.0), _cam()
    # Nothing learned yet: the first moving frame is full size.
    sch.interacted(refine_now=False)
    assert sch.plan(mode, None, s, cam).camera.width == 400
    # Full frames cost 160 ms: moving frames are a quarter of the pixels (half the side).
    sch.record(mode, "color", _frame(cam, 160.0), points_mode=True)
    plan = sch.plan(mode, None, s, cam)
    assert plan.moving and abs(plan.camera.width - 200) <= 2
    s.dynamic_resolution = False
    assert sch.plan(mode, None, s, cam).camera.width == 400


def test_two_step_refinement_for_slow_modes():
    sch = FrameScheduler(Clock())
    mode, s, cam = get_mode("color"), ViewSettings(mode="color"), _cam()
    sch.record(mode, "color", _frame(cam, 50.0), points_mode=False)
    assert sch.refine_scale(mode, s, cam) == 1.0  # fast: straight to full
    for _ in range(24):
        sch.record(mode, "color", _frame(cam, 2000.0), points_mode=False)
    assert sch.refine_scale(mode, s, cam) == 0.5
    rid = sch.new_request("color")
    sch.half_id = rid
    assert sch.refining and sch.half_step_done(rid) and not sch.refining


def test_path_trace_sizes_its_own_frames():
    clock = Clock()
    sch = FrameScheduler(clock)
    mode = get_mode("pathtrace")
    s = ViewSettings(mode="pathtrace", pt_max_side=320, target_ms=40.0)
    plan = sch.plan(mode, None, s, _cam(800, 600))
    assert (plan.camera.width, plan.camera.height) == (320, 240) and not plan.moving
    sch.record(mode, "pathtrace", _frame(_cam(320, 240), 200.0, spp=1), points_mode=False)
    sch.interacted(refine_now=False)
    plan = sch.plan(mode, None, s, _cam(800, 600))
    assert plan.moving and plan.camera.width < 320


def test_stale_results_are_dropped():
    sch = FrameScheduler(Clock())
    a = sch.new_request("color")
    b = sch.new_request("color")
    assert sch.accept(b, "color") and not sch.accept(a, "color")
    c = sch.new_request("depth")  # a mode switch: results of the old mode are stale
    assert not sch.accept(c, "color") and sch.accept(c, "depth")
    d = sch.new_request("depth")
    sch.drop_in_flight()  # a new scene
    assert not sch.accept(d, "depth")


def test_a_mode_may_trade_frame_rate_for_sharper_moving_frames():
    """Neural's moving frames get 2.5x the frame budget (Mode.moving_budget): with the same
    learned cost they are rendered larger than a mode without one."""
    clock = Clock()
    sch = FrameScheduler(clock)
    cam = _cam()
    for key in ("neural", "color"):
        sch.record(get_mode(key), key, _frame(cam, 200.0), points_mode=False)
    sch.interacted(refine_now=False)
    neural = sch.plan(get_mode("neural"), None, ViewSettings("neural", target_ms=40.0), cam).camera
    color = sch.plan(get_mode("color"), None, ViewSettings("color", target_ms=40.0), cam).camera
    ratio = (neural.width * neural.height) / (color.width * color.height)
    assert 2.2 < ratio < 2.8  # pixels scale with the budget
