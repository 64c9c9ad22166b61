"""Shared fixtures. GUI tests open real windows (Xvfb via pytest-xvfb when there's no display)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
STATUE = SHARED / "scenes" / "statue"
DEMO = ROOT / "assets" / "demo" / "armadillo_bunny.ply"

os.environ.setdefault("NSV_DEVICE", "cpu")  # tests compare against CPU references


def pytest_configure(config):
    # The GL surface format must be set before pytest-qt creates the QApplication.
    try:
        from viewer.app import configure_gl

        configure_gl()
    except ImportError:
        pass


def pytest_collection_modifyitems(config, items):
    # GUI tests run first: once a headless EGL context (synthetic renders in the engine tests)
    # has loaded Mesa in this process, Qt's GLX widgets can no longer make their context
    # current. The other way round works.
    items.sort(key=lambda item: 0 if "gui" in item.keywords else 1)
    # GUI tests need an X display: a real one, or Xvfb (started by pytest-xvfb). Without
    # either, Qt would abort the whole run, so skip them with the reason instead.
    if os.environ.get("DISPLAY") or shutil.which("Xvfb"):
        return
    skip = pytest.mark.skip(reason="no X display and no Xvfb (apt-get install xvfb)")
    for item in items:
        if "gui" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def statue_dir() -> Path:
    if not (STATUE / "sparse" / "0" / "images.bin").is_file():
        pytest.skip("../shared/data/scenes/statue not available (only in the dev checkout)")
    return STATUE


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def window(qtbot, tmp_path):
    from tests.gui import make_window

    win = make_window(qtbot, tmp_path / "nsv.ini")
    yield win
    win.viewport.worker.stop()


@pytest.fixture(autouse=True)
def _delete_windows_after_gui_tests(request):
    """Destroy every top-level window a GUI test left, at once and here: left to Python's
    cyclic garbage collector, a window (with its OpenGL widget and worker threads) would be
    destroyed at a random later moment, possibly inside another window's event handling,
    which can hang or abort the process under Xvfb/Mesa."""
    yield
    if "qtbot" not in request.fixturenames:
        return
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    for w in QApplication.topLevelWidgets():
        w.close()
        w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    gc.collect()
