"""Shared GUI-test helpers: the real main window in Xvfb, driven by real input events (key
presses through the focused widget, so the window's shortcuts fire as they do for a user; mouse
drags and wheel events on the viewport)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QKeySequence, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from engine.modes import MODES
from engine.open_path import load_scene

TIMEOUT = 30_000


def make_window(qtbot, settings_file, size=(1100, 720)):
    """A shown main window whose settings (recent files, layout, bookmarks) live in
    ``settings_file``: two windows on the same file are two sessions of one user."""
    from PySide6.QtCore import QSettings

    from viewer.main_window import MainWindow

    settings = QSettings(str(settings_file), QSettings.IniFormat)
    win = MainWindow(settings=settings, device="cpu")
    qtbot.addWidget(win)
    if size is not None:
        win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    return win


def open_scene(qtbot, win, path, mode: str | None = "gl"):
    """Open a scene and wait for it; ``mode`` (default the fast GL points) is then selected,
    None keeps the mode the window picked (Neural for fitted scenes)."""
    win.open_path(path)
    qtbot.waitUntil(lambda: not win.loading, timeout=TIMEOUT)
    assert win.last_error is None, win.last_error
    settle(qtbot, win)
    if mode is not None:
        set_mode(qtbot, win, mode)


def settle(qtbot, win):
    qtbot.waitUntil(win.viewport.is_settled, timeout=TIMEOUT)
    qtbot.wait(30)


def grab(win) -> np.ndarray:
    return win.viewport.grab_image()


def press(qtbot, win, sequence: str) -> None:
    """Type a shortcut ("5", "Ctrl+L", "F1") as a user does: a key press and release delivered
    to the focused widget of the active window, where Qt's shortcut map sees it."""
    combo = QKeySequence(sequence)[0]
    if QApplication.activeWindow() is not win:  # as when the user clicks into the window
        win.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)
    target = QApplication.focusWidget() or win
    qtbot.keyClick(target, combo.key(), combo.keyboardModifiers())


def set_mode(qtbot, win, mode):
    """Switch modes with the mode's documented key, then wait for its frame."""
    press(qtbot, win, MODES[mode].shortcut)
    settle(qtbot, win)


def send_mouse(widget, kind, pos, button, buttons):
    p = QPointF(*pos)
    ev = QMouseEvent(kind, p, widget.mapToGlobal(p), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(widget, ev)


def drag(widget, start, end, button=Qt.LeftButton, steps=10):
    send_mouse(widget, QEvent.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        t = i / steps
        pos = (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
        send_mouse(widget, QEvent.MouseMove, pos, Qt.NoButton, button)
    send_mouse(widget, QEvent.MouseButtonRelease, end, button, Qt.NoButton)


def wheel(widget, notches):
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    ev = QWheelEvent(
        pos,
        widget.mapToGlobal(pos),
        QPoint(),
        QPoint(0, 120 * notches),
        Qt.NoButton,
        Qt.NoModifier,
        Qt.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)


def fit_tiny(root, steps=20, max_side=160):
    """Fit a tiny scene with the real fitter and export it where the viewer looks for it."""
    from engine.npbg.fit import FitConfig, Fitter, make_target

    # Constant learning rates: a few dozen steps get furthest without the decay (the default
    # decays them over the run, which pays over thousands of steps).
    cfg = FitConfig(steps=steps, crop=64, max_side=max_side, eval_every=10, checkpoint_every=10,
                    lr_decay=False)  # fmt: skip
    fitter = Fitter([make_target(load_scene(root), cfg)], cfg, root / "npbg")
    fitter.run(progress=False)
    fitter.export(str(root))
    return fitter


def needs_fast_path_tracer() -> None:
    """Skip a test that waits for Mitsuba's 256-spp reference where only its scalar variant
    runs (no libllvm19, which the README lists as optional): there it takes minutes."""
    from engine.mitsuba_scene import choose_variant

    if choose_variant().startswith("scalar"):
        pytest.skip("the 256-spp reference needs Mitsuba's LLVM variant (apt-get install "
                    "libllvm19); the scalar one takes minutes")  # fmt: skip
