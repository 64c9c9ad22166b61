"""GUI tests of Latent mode (HoloGAN / RenderNet) in the real main window."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QApplication

from tests.conftest import ROOT
from tests.gui import TIMEOUT, open_scene

ROOT_ASSETS = ROOT / "assets"

pytestmark = pytest.mark.gui


@pytest.fixture
def tiny_hologan(tmp_path):
    """An untrained generator saved like a trained one: enough to check the plumbing."""
    import torch

    from engine.latent.hologan import Generator, HoloGANConfig
    from engine.latent.train import save_generator

    torch.manual_seed(0)
    cfg = HoloGANConfig(const=16, c3d=[8, 8], c3d_post=[8, 4], proj=32, c2d=[16, 8])
    G = Generator(cfg)
    with torch.no_grad():  # non-zero styles, so that z1 and z2 visibly matter
        for m in G.modules():
            if hasattr(m, "affine"):
                m.affine.weight.normal_(0, 0.5)
    save_generator(G, tmp_path / "hologan", {"steps": 0})
    return tmp_path / "hologan"


def test_path_tracer_pauses_while_latent_mode_is_shown(qtbot, window, tiny_hologan):
    pytest.importorskip("mitsuba")
    open_scene(qtbot, window, "cornell-box", mode=None)
    vp = window.viewport
    qtbot.waitUntil(lambda: vp._frame is not None and vp._frame.spp >= 2,
                    timeout=TIMEOUT)  # fmt: skip
    window.set_latent_mode(True, tiny_hologan)
    paused_at = vp._frame.spp
    qtbot.wait(2000)  # a sample in flight lands, but is not shown: it belongs to another mode
    assert vp._frame.spp == paused_at  # no samples while the viewport is hidden
    status = window.status_label.text()
    assert status.startswith("Latent") and "spp" not in status and "Mitsuba" not in status
    window.set_latent_mode(False)
    qtbot.waitUntil(lambda: vp._frame.spp > paused_at, timeout=TIMEOUT)


def test_latent_mode_sliders_change_the_image(qtbot, window, tiny_hologan, tmp_path):
    window.set_latent_mode(True, tiny_hologan)
    panel = window.latent_panel
    assert window.central.currentWidget() is window.latent_view
    qtbot.waitUntil(lambda: panel.settled and window.latent_view.image is not None, timeout=TIMEOUT)
    first = window.latent_view.image.copy()
    # Drag the azimuth slider through many values: the view follows, stale ones are dropped.
    for v in range(0, 180, 5):
        panel.azimuth.setValue(v)
        QApplication.processEvents()
    qtbot.waitUntil(lambda: panel.settled, timeout=TIMEOUT)
    rotated = window.latent_view.image.copy()
    assert np.abs(rotated.astype(int) - first.astype(int)).mean() > 1.0
    assert panel.worker.rendered <= 36 + 1
    # Texture seed changes the image; locking z2 keeps it through "Randomize unlocked".
    panel.z2.seed.setValue(panel.z2.seed.value() + 1)
    qtbot.waitUntil(lambda: panel.settled, timeout=TIMEOUT)
    assert np.abs(window.latent_view.image.astype(int) - rotated.astype(int)).mean() > 0.5
    panel.z2.lock.setChecked(True)
    seed2 = panel.z2.seed.value()
    panel.randomize()
    assert panel.z2.seed.value() == seed2
    panel.export_png(tmp_path / "latent.png", size=128)
    panel.export_turntable(tmp_path / "turn.gif", frames=6, size=64)
    import imageio.v3 as iio

    assert iio.imread(tmp_path / "latent.png").shape == (128, 128, 3)
    assert iio.imread(tmp_path / "turn.gif").shape[0] == 6
    window.set_latent_mode(False)
    assert window.central.currentWidget() is window.viewport


def test_rendernet_tab_renders_a_mesh_and_compares(qtbot, window, tmp_path):
    import torch

    from engine.latent.rendernet import RenderNet, RenderNetConfig, save_rendernet

    torch.manual_seed(0)
    save_rendernet(RenderNet(RenderNetConfig()), tmp_path / "rn", {"steps": 0})
    panel = window.rendernet_panel
    panel.load_model(tmp_path / "rn")
    window.central.setCurrentWidget(window.latent_view)
    window.latent_tabs.setCurrentWidget(panel)
    assert panel.active and not window.latent_panel.active
    panel.set_mesh(ROOT_ASSETS / "scenes" / "bunny.obj")
    qtbot.waitUntil(lambda: panel.settled and window.latent_view.image is not None, timeout=TIMEOUT)
    single = window.latent_view.image.copy()
    panel.compare.setChecked(True)
    qtbot.waitUntil(lambda: panel.settled, timeout=TIMEOUT)
    pair = window.latent_view.image
    assert pair.shape[1] == 2 * single.shape[1]  # RenderNet | conventional
    right = pair[:, pair.shape[1] // 2 :]
    assert (right < 200).any(axis=-1).mean() > 0.02  # the conventional bunny is drawn
    # A bad mesh is a clear message; the previous mesh stays.
    (tmp_path / "empty.obj").write_text("")
    with pytest.raises(Exception, match=r"no triangles|cannot read"):
        panel.set_mesh(tmp_path / "empty.obj")
    assert panel.renderer.voxels is not None


def test_latent_mode_opens_the_bundled_models(qtbot, window):
    window.set_latent_mode(True)  # the bundled HoloGAN
    panel = window.latent_panel
    assert panel.renderer is not None and window.last_error is None
    qtbot.waitUntil(lambda: panel.settled and window.latent_view.image is not None, timeout=TIMEOUT)
    img = window.latent_view.image
    import torch

    from engine.latent.render import silhouette

    mask = silhouette(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    assert 0.03 < float(mask.float().mean()) < 0.7  # an object on the light background
    window.latent_tabs.setCurrentWidget(window.rendernet_panel)  # loads the bundled RenderNet
    rn = window.rendernet_panel
    assert rn.renderer is not None and rn.renderer.voxels is not None
    qtbot.waitUntil(lambda: rn.settled, timeout=TIMEOUT)
    assert not np.array_equal(window.latent_view.image, img)


def test_train_panel_trains_rendernet_and_resumes(qtbot, window, tmp_path):
    from PySide6.QtCore import Qt

    from engine.latent.rendernet import load_rendernet, write_rendernet_dataset

    data = tmp_path / "voxels"
    write_rendernet_dataset(data, 3, views=2, res=32, voxels=16, progress=False)
    panel = window.fit_panel
    panel.model.setCurrentIndex(panel.model.findData("rendernet"))
    assert panel.data.isVisible() and not panel.psnr_plot.isVisible()
    qtbot.keyClicks(panel.data, str(data))
    qtbot.keyClicks(panel.out, str(tmp_path / "run"))
    panel.steps.setValue(12)
    qtbot.mouseClick(panel.start_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=120_000)
    assert "Saved the trained RenderNet" in panel.status.text(), panel.status.text()
    assert panel.fitter.step == 12 and len(panel.loss_curve.getData()[0]) > 0
    assert load_rendernet(tmp_path / "run").cfg.res == 32
    panel.steps.setValue(16)  # Start again on the same folder: the run continues
    qtbot.mouseClick(panel.start_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=120_000)
    assert panel.fitter.step == 16 and len(panel.fitter.history["loss"]) == 16


def test_nsv_hologan_writes_the_image_latent_mode_shows(qtbot, window, tiny_hologan, tmp_path):
    import imageio.v3 as iio

    from nsv.main import main as nsv

    window.set_latent_mode(True, tiny_hologan)
    panel = window.latent_panel
    qtbot.waitUntil(lambda: panel.renderer is not None, timeout=TIMEOUT)
    panel.z1.seed.setValue(3)
    panel.z2.seed.setValue(5)
    shown = panel.renderer.render(None, panel.options(128)).image
    out = tmp_path / "h.png"
    args = ["hologan", "--model", str(tiny_hologan), "--z1", "3", "--z2", "5", "--size", "128"]
    assert nsv([*args, "--out", str(out)]) == 0
    assert np.abs(iio.imread(out).astype(int) - shown).max() <= 1


def _grab(widget) -> np.ndarray:
    """What the widget shows on screen, (H, W, 3) uint8."""
    img = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB888)
    h, w = img.height(), img.width()
    return (
        np.frombuffer(img.constBits(), np.uint8)
        .reshape(h, img.bytesPerLine())[:, : 3 * w]
        .reshape(h, w, 3)
        .copy()
    )


def test_direction_strips_random_buttons_and_display(qtbot, window, tiny_hologan):
    from PySide6.QtCore import Qt

    window.set_latent_mode(True, tiny_hologan)
    panel = window.latent_panel
    view = window.latent_view
    qtbot.waitUntil(lambda: panel.settled and panel.strips_settled, timeout=TIMEOUT)
    # Every direction slider has a strip of thumbnails, and they differ along it.
    for strip in panel.z1.strips + panel.z2.strips:
        pm = strip.pixmap()
        assert pm is not None and not pm.isNull() and pm.width() > 3 * pm.height()
    row = panel._strip_images[0]
    res = row.shape[0]
    first, last = row[:, :res].astype(int), row[:, -res:].astype(int)
    assert np.abs(first - last).mean() > 1.0  # direction 1 of z1 changes the image
    # Random shape draws a new z1 seed and keeps z2; Random texture the reverse.
    s1, s2 = panel.z1.seed.value(), panel.z2.seed.value()
    qtbot.mouseClick(panel.z1.random_btn, Qt.LeftButton)
    assert panel.z1.seed.value() != s1 and panel.z2.seed.value() == s2
    qtbot.mouseClick(panel.z2.random_btn, Qt.LeftButton)
    assert panel.z2.seed.value() != s2
    qtbot.waitUntil(lambda: panel.settled and panel.strips_settled, timeout=TIMEOUT)
    # The image is shown at whole multiples of its resolution, centred, not stretched.
    rect = view.image_rect()
    scale = rect.width() / view.image.shape[1]
    assert scale == int(scale) and rect.width() <= view.width() and rect.height() <= view.height()
    # Nearest-neighbour upscaling, chosen with the keyboard: blocks of equal pixels on screen.
    panel.filter.setFocus()
    qtbot.keyClick(panel.filter, Qt.Key_Down)
    assert panel.filter.currentText() == "Nearest" and not view.smooth
    qtbot.wait(100)
    shown = _grab(view)
    x0, y0, k = int(rect.x()), int(rect.y()), int(scale)
    if k >= 2:
        block = shown[y0 + k * 10 : y0 + k * 11, x0 + k * 10 : x0 + k * 11].reshape(-1, 3)
        assert (block == block[0]).all()
    # Fit to view fills one side of the view.
    panel.zoom.setFocus()
    qtbot.keyClick(panel.zoom, Qt.Key_Down)
    assert panel.zoom.currentText() == "Fit to view"
    rect = view.image_rect()
    assert abs(rect.width() - view.width()) < 1 or abs(rect.height() - view.height()) < 1
