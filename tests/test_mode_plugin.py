"""A render mode is one file: this toy mode is defined entirely here, registered with one call,
and then found everywhere a mode appears - the Render combo, its key in a real window, the
shortcut table, the status line and ``nsv render --mode`` - with no edit anywhere else."""

from __future__ import annotations

import numpy as np
import pytest

from engine.frame import Frame
from engine.modes import MODES, Mode, register, unregister
from tests.conftest import DEMO
from tests.gui import grab, press, settle

TOY_COLOR = (200, 40, 160)


class ToyRenderer:
    """Fills the frame with one colour, scaled by how many points the scene has."""

    def __init__(self, scene) -> None:
        self.n = scene.num_points

    def render(self, camera, options) -> Frame:
        img = np.empty((camera.height, camera.width, 3), np.uint8)
        img[:] = TOY_COLOR
        return Frame(img, camera, render_ms=1.0, points_drawn=self.n)


@pytest.fixture
def toy_mode():
    mode = register(
        Mode(
            "toy",
            "Toy: solid colour",
            "Ctrl+T",
            "toy",
            build=lambda scene, _ctx: ToyRenderer(scene),
            status=lambda s: f"toy of {s['points']:,} points",
        )
    )
    yield mode
    unregister("toy")


@pytest.mark.gui
def test_toy_mode_appears_in_the_window(qtbot, toy_mode, tmp_path):
    from tests.gui import make_window, open_scene
    from viewer.shortcuts import shortcut_rows

    win = make_window(qtbot, tmp_path / "settings.ini")
    open_scene(qtbot, win, DEMO)
    combo = win.controls.mode
    keys = [combo.itemData(i) for i in range(combo.count())]
    assert "toy" in keys and combo.model().item(keys.index("toy")).isEnabled()
    before = grab(win)
    press(qtbot, win, "Ctrl+T")
    settle(qtbot, win)
    assert win.viewport.settings.mode == "toy" and combo.currentData() == "toy"
    after = grab(win)
    assert (np.abs(after.astype(int) - TOY_COLOR).max(-1) <= 2).mean() > 0.9
    assert (np.abs(before.astype(int) - TOY_COLOR).max(-1) <= 2).mean() < 0.1
    assert "toy of 240,000 points" in win.status_label.text()
    assert ("Ctrl+T", "Toy: solid colour") in shortcut_rows()
    win.close()


def test_toy_mode_renders_headless(toy_mode, tmp_path):
    import imageio.v3 as iio

    from nsv.main import main as nsv

    out = tmp_path / "toy.png"
    assert "toy" in MODES
    assert nsv(["render", str(DEMO), "--mode", "toy", "--size", "64x48", "--out", str(out)]) == 0
    img = iio.imread(out)[..., :3]
    assert img.shape == (48, 64, 3) and (img == TOY_COLOR).all()
