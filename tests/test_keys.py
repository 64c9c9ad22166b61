"""Every shortcut in the README's table, pressed as key events through the main window, with
its effect checked on what the window shows. The table itself is generated from the mode
registry (viewer.shortcuts) and must match the README."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit

from engine.modes import MODES
from tests.conftest import DEMO, ROOT
from tests.gui import TIMEOUT, fit_tiny, grab, open_scene, press, set_mode, settle
from tests.helpers import write_colmap_with_photos

pytestmark = pytest.mark.gui


def differs(a: np.ndarray, b: np.ndarray, level: int = 10) -> float:
    return float((np.abs(a.astype(int) - b).max(-1) > level).mean())


def test_readme_shows_the_registry_table():
    from viewer.shortcuts import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text()


def test_number_keys_switch_every_scene_mode(qtbot, window, tmp_path):
    root, _ = write_colmap_with_photos(tmp_path / "cap")
    fit_tiny(root)
    open_scene(qtbot, window, root, mode=None)
    images = {}
    for m in MODES.values():
        if not m.shortcut.isdigit() or m.key in ("pathtrace", "classes"):
            continue
        set_mode(qtbot, window, m.key)  # presses m.shortcut
        assert window.viewport.settings.mode == m.key, m.shortcut
        assert window.controls.mode.currentData() == m.key  # the combo follows the key
        images[m.key] = grab(window)
    for a, b in (("gl", "depth"), ("depth", "normal"), ("neural", "descriptors"),
                 ("neural", "compare"), ("color", "neural")):  # fmt: skip
        assert differs(images[a], images[b]) > 0.01, (a, b)
    # 8 (path trace) needs a Mitsuba scene: the key leaves the mode alone and says why.
    press(qtbot, window, "8")
    assert window.viewport.settings.mode == "compare"
    assert "Mitsuba" in window.status_label.text()
    # 9 (classification) needs a cloud with point classes (LAS/LAZ).
    press(qtbot, window, "9")
    assert window.viewport.settings.mode == "compare"
    assert "classes" in window.status_label.text()


def test_classification_key_colours_las_classes(qtbot, window, tmp_path):
    laspy = pytest.importorskip("laspy")
    rng = np.random.default_rng(0)
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = np.array([0.001, 0.001, 0.001])
    las = laspy.LasData(header)
    n = 40_000
    xyz = rng.uniform(-1, 1, (n, 3)) * [1, 1, 0.05]
    las.x, las.y, las.z = xyz.T
    las.classification = np.where(xyz[:, 0] < 0, 2, 6).astype(np.uint8)  # ground | building
    las.write(str(tmp_path / "c.las"))
    open_scene(qtbot, window, tmp_path / "c.las", mode="color")
    plain = grab(window)
    press(qtbot, window, "9")
    settle(qtbot, window)
    assert window.viewport.settings.mode == "classes"
    img = grab(window).astype(int)
    assert differs(plain, img) > 0.1
    # Ground (brown: red > blue) on one side of the view, buildings (red) on the other; which
    # side depends on the default view, so look for both colours.
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    brown = (r > 130) & (g > 90) & (g < 140) & (b < 90)
    red = (r > 180) & (g < 110) & (b < 90)
    assert brown.mean() > 0.02 and red.mean() > 0.02


def test_path_trace_key_and_denoise_key(qtbot, window):
    pytest.importorskip("mitsuba")
    open_scene(qtbot, window, "cornell-box", mode="gl")
    vp = window.viewport
    gl = grab(window)
    press(qtbot, window, "8")
    assert vp.settings.mode == "pathtrace"
    qtbot.waitUntil(lambda: vp._frame is not None and vp._frame.spp >= 1,
                    timeout=TIMEOUT)  # fmt: skip
    qtbot.waitUntil(lambda: differs(grab(window), gl) > 0.05, timeout=TIMEOUT)
    assert not vp.settings.pt_denoise
    press(qtbot, window, "N")
    assert vp.settings.pt_denoise and window.controls.denoise.isChecked()
    qtbot.waitUntil(lambda: vp._frame.denoised, timeout=TIMEOUT)
    press(qtbot, window, "N")
    assert not vp.settings.pt_denoise


def test_view_keys_fly_frame_reset(qtbot, window):
    open_scene(qtbot, window, DEMO)
    vp = window.viewport
    home = grab(window)
    eye = vp.nav.eye.copy()
    press(qtbot, window, "Y")
    assert vp.settings.fly_mode and window.fly_action.isChecked()
    press(qtbot, window, "Y")
    assert not vp.settings.fly_mode
    vp.nav.orbit(0.8, 0.3)  # somewhere else (a drag would do the same; tested elsewhere)
    vp.nav.distance *= 3
    vp.update()
    press(qtbot, window, "R")  # reset: back to the home view
    settle(qtbot, window)
    assert np.allclose(vp.nav.eye, eye, atol=1e-5)
    assert differs(grab(window), home) < 0.01
    vp.nav.distance *= 4
    press(qtbot, window, "F")  # frame all: the cloud fills the view again
    settle(qtbot, window)
    assert np.linalg.norm(vp.nav.eye - vp.nav.pivot) < 2.0 * np.linalg.norm(eye - vp.nav.pivot)


def test_a_capture_inside_its_room_opens_at_its_first_photos_view(qtbot, window, tmp_path):
    # A 360-degree capture whose points reach the room's walls: it opens where its first
    # photo was taken (framing the whole cloud would look at the room from outside); F frames
    # it all, R comes back.
    root, truth = write_colmap_with_photos(tmp_path / "cap", n_views=8, arc=1.0, room=True)
    open_scene(qtbot, window, root)
    vp = window.viewport
    assert np.allclose(vp.current_camera().position, truth[0].position, atol=1e-6)
    assert np.allclose(vp.current_camera().R, truth[0].R, atol=1e-6)
    home = grab(window)
    press(qtbot, window, "F")
    settle(qtbot, window)
    assert np.linalg.norm(vp.current_camera().position) > 12  # outside the walls
    assert differs(grab(window), home) > 0.05
    press(qtbot, window, "R")
    settle(qtbot, window)
    assert differs(grab(window), home) < 0.01


def test_latent_key_toggles_latent_mode(qtbot, window):
    open_scene(qtbot, window, DEMO, mode="color")
    press(qtbot, window, "Ctrl+L")
    assert window.central.currentWidget() is window.latent_view
    assert window.viewport.settings.mode == "latent" and window.latent_action.isChecked()
    qtbot.waitUntil(lambda: window.latent_view.image is not None, timeout=TIMEOUT)
    assert window.latent_view.grab().toImage().width() > 100
    press(qtbot, window, "Ctrl+L")
    assert window.central.currentWidget() is window.viewport
    assert window.viewport.settings.mode == "color"  # back to the mode used before
    press(qtbot, window, "Ctrl+L")
    press(qtbot, window, "1")  # a mode key leaves Latent mode for that mode
    assert window.central.currentWidget() is window.viewport
    assert window.viewport.settings.mode == "gl"


def _answer_file_dialog(path: str):
    """Fill in and accept the next modal file dialog (as a user typing a name and Enter)."""

    def answer():
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, QFileDialog):
            QTimer.singleShot(50, answer)
            return
        if dlg.fileMode() == QFileDialog.Directory:
            dlg.setDirectory(path)  # navigate into the folder, then "Choose"
        else:  # type the path into the name field
            dlg.findChild(QLineEdit, "fileNameEdit").setText(path)
        dlg.accept()

    QTimer.singleShot(50, answer)


def test_screenshot_key_writes_png_and_camera(qtbot, window, tmp_path):
    import imageio.v3 as iio

    open_scene(qtbot, window, DEMO)
    out = tmp_path / "shot.png"
    _answer_file_dialog(str(out))
    press(qtbot, window, "Ctrl+S")
    qtbot.waitUntil(out.is_file, timeout=TIMEOUT)
    img = iio.imread(out)
    assert differs(img[..., :3], grab(window)[..., :3], 20) < 0.02  # what the window shows
    assert out.with_suffix(".camera.json").is_file()


def test_import_key_runs_the_import(qtbot, window, tmp_path):
    src = tmp_path / "photos"  # two photos: the pipeline refuses them at once, in plain words
    src.mkdir()
    import imageio.v3 as iio

    for i in range(2):
        iio.imwrite(src / f"p{i}.png", np.full((32, 32, 3), 100 + i, np.uint8))
    out = tmp_path / "imported"
    _answer_file_dialog(str(src))  # the folder to import ...
    QTimer.singleShot(600, lambda: _answer_file_dialog(str(out)))  # ... then where to write
    press(qtbot, window, "Ctrl+I")
    qtbot.waitUntil(lambda: getattr(window, "import_dialog", None) is not None, timeout=TIMEOUT)
    dlg = window.import_dialog
    assert dlg.source == src and dlg.out == out
    qtbot.waitUntil(lambda: not dlg.running, timeout=TIMEOUT)
    assert "photos" in window.status_label.text() and not out.exists()


def test_f1_lists_the_shortcuts(qtbot, window):
    press(qtbot, window, "F1")
    dlg = window.shortcuts_dialog
    qtbot.waitExposed(dlg)
    keys = [dlg.table.item(i, 0).text() for i in range(dlg.table.rowCount())]
    for k in ("1 … 9", "N / Shift+N", "Ctrl+L", "Ctrl+I", "Ctrl+S", "Y", "F / R"):
        assert k in keys
    dlg.close()


def test_keyframe_and_play_keys_fly_the_camera_path(qtbot, window, tmp_path):
    from PySide6.QtCore import Qt

    from engine.camera_path import CameraPath
    from tests.gui import drag

    open_scene(qtbot, window, DEMO)
    vp, panel = window.viewport, window.path_panel
    press(qtbot, window, "K")  # shows the Camera path dock (the viewport may get narrower)
    assert window.path_dock.isVisible() and panel.list.count() == 1
    qtbot.mouseClick(panel.delete_btn, Qt.LeftButton)
    assert panel.list.count() == 0
    settle(qtbot, window)
    start = grab(window)
    press(qtbot, window, "K")
    w, h = vp.width(), vp.height()
    drag(vp, (w * 0.3, h * 0.5), (w * 0.7, h * 0.45))  # orbit with the mouse
    settle(qtbot, window)
    press(qtbot, window, "K")
    drag(vp, (w * 0.3, h * 0.5), (w * 0.6, h * 0.6))
    settle(qtbot, window)
    press(qtbot, window, "K")
    end = grab(window)
    last = vp.current_camera().world_to_camera.copy()
    assert panel.list.count() == 3 and len(panel.path.keyframes) == 3
    assert window.path_dock.isVisible()
    # Save with the dialog answered, as a user would; the file loads back identically.
    out = tmp_path / "path.json"
    _answer_file_dialog(str(out))
    qtbot.mouseClick(panel.save_btn, Qt.LeftButton)
    qtbot.waitUntil(out.is_file, timeout=TIMEOUT)
    back = CameraPath.load(out)
    assert len(back.keyframes) == 3 and back.duration == panel.path.duration == 2.0
    # Scrub (keyboard on the slider) to the end, then the start: the first keyframe's view.
    panel.scrub.setFocus()
    qtbot.keyClick(panel.scrub, Qt.Key_End)
    settle(qtbot, window)
    assert np.allclose(vp.current_camera().world_to_camera, last, atol=1e-6)
    qtbot.keyClick(panel.scrub, Qt.Key_Home)
    settle(qtbot, window)
    assert differs(grab(window), start) < 0.02
    # P plays the path to its end in real time; the view moves on the way.
    press(qtbot, window, "P")
    assert panel.playing
    qtbot.wait(900)
    middle = grab(window)
    qtbot.waitUntil(lambda: not panel.playing, timeout=10_000)
    settle(qtbot, window)
    assert differs(middle, start) > 0.02 and differs(middle, end) > 0.02
    assert np.allclose(vp.current_camera().world_to_camera, last, atol=1e-6)
    assert differs(grab(window), end) < 0.02


def test_window_layout_is_remembered(qtbot, tmp_path):
    from tests.gui import make_window

    a = make_window(qtbot, tmp_path / "layout.ini", size=None)
    a.resize(1150, 640)
    a.path_dock.close()  # the user closed the Camera path dock
    qtbot.wait(50)
    size = (a.width(), a.height())
    assert size != (1280, 800)  # not the default
    a.close()
    b = make_window(qtbot, tmp_path / "layout.ini", size=None)
    assert b.qsettings.value("window/geometry") is not None
    # The restored size is the saved one, as far as the (virtual) screen allows.
    screen = b.screen().availableGeometry()
    if size[0] <= screen.width() and size[1] <= screen.height():
        assert abs(b.width() - size[0]) <= 4 and abs(b.height() - size[1]) <= 4, b.size()
    assert not b.path_dock.isVisible()
    b.close()


def test_bookmark_key_saves_views_remembered_per_scene(qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from tests.gui import drag, make_window

    win = make_window(qtbot, tmp_path / "marks.ini")
    open_scene(qtbot, win, DEMO)
    vp, panel = win.viewport, win.path_panel
    press(qtbot, win, "Ctrl+B")
    settle(qtbot, win)
    home = grab(win)
    marked = vp.current_camera().world_to_camera.copy()
    w, h = vp.width(), vp.height()
    drag(vp, (w * 0.3, h * 0.5), (w * 0.7, h * 0.4))
    settle(qtbot, win)
    assert differs(grab(win), home) > 0.02
    assert panel.mark_list.count() == 1
    rect = panel.mark_list.visualItemRect(panel.mark_list.item(0))
    qtbot.mouseClick(panel.mark_list.viewport(), Qt.LeftButton, pos=rect.center())
    settle(qtbot, win)
    assert np.allclose(vp.current_camera().world_to_camera, marked, atol=1e-6)
    assert differs(grab(win), home) < 0.02
    win.close()
    # A new session on the same scene has the bookmark.
    again = make_window(qtbot, tmp_path / "marks.ini")
    open_scene(qtbot, again, DEMO)
    assert again.path_panel.mark_list.count() == 1
    again.close()
