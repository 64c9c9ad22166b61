"""The per-mode frame-cost model behind dynamic resolution."""

from __future__ import annotations

import pytest

from engine.frame_cost import FrameCost


def test_unknown_mode_renders_at_full_resolution():
    assert FrameCost().moving_factor("neural", 800 * 800, 40) == 1.0


def test_first_moving_frame_fits_the_budget_from_still_frames():
    c = FrameCost()
    c.record("neural", 800 * 800, 960.0)  # one full-resolution still frame: 1.5e-3 ms / px
    f = c.moving_factor("neural", 800 * 800, 40)
    assert f == pytest.approx((40 / 960) ** 0.5, rel=1e-6)
    assert c.predict("neural", int(800 * f) * int(800 * f)) <= 40.5


def test_fixed_cost_is_separated_from_per_pixel_cost():
    c = FrameCost(min_factor=0.05)
    for px in (100_000, 400_000, 100_000, 400_000):
        c.record("color", px, 20 + 1e-4 * px)  # 20 ms of rasterizing whatever the size
    fixed, per_px = c.model("color")
    assert fixed == pytest.approx(20, abs=1e-6) and per_px == pytest.approx(1e-4, rel=1e-6)
    # Only 20 ms of the budget scale with pixels.
    assert c.moving_factor("color", 1_000_000, 40) == pytest.approx((20 / 100) ** 0.5, rel=1e-6)


def test_cheap_modes_stay_at_full_resolution_and_factor_is_bounded():
    c = FrameCost()
    c.record("gl", 1_000_000, 5.0)
    assert c.moving_factor("gl", 1_000_000, 40) == 1.0
    c.record("slow", 1_000, 1e6)
    assert c.moving_factor("slow", 1_000_000, 40) == c.min_factor


def test_a_fixed_cost_over_budget_does_not_shrink_the_image_to_nothing():
    c = FrameCost(min_factor=0.05)
    for px in (100_000, 400_000):
        c.record("neural", px, 100 + 1e-4 * px)  # 100 ms whatever the size: over a 40 ms budget
    f = c.moving_factor("neural", 1_000_000, 40)
    assert f == pytest.approx((50 / 100) ** 0.5, rel=1e-6)  # pixels may cost half the fixed part
