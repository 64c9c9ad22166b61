"""QApplication set-up and the GUI entry point."""

from __future__ import annotations

import sys

from PySide6.QtGui import QSurfaceFormat
from PySide6.QtWidgets import QApplication


def configure_gl() -> None:
    """OpenGL 3.3 core for every GL widget; must run before the QApplication exists."""
    fmt = QSurfaceFormat()
    fmt.setVersion(3, 3)
    fmt.setProfile(QSurfaceFormat.CoreProfile)
    fmt.setDepthBufferSize(24)
    fmt.setSwapInterval(1)
    QSurfaceFormat.setDefaultFormat(fmt)


def run_viewer(path: str | None, device: str | None = None, scene=None, latent=None) -> int:
    """Open the main window on ``path`` (``scene`` if already loaded) and run the event loop."""
    import os

    from engine.errors import NsvError

    if (
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
        and not os.environ.get("QT_QPA_PLATFORM")
    ):
        # Qt would abort with a long plugin message; say what to do instead.
        raise NsvError(
            "no display: run the viewer on a desktop, or under `xvfb-run -a nsv`; "
            "for images without a window use `nsv render`"
        )
    configure_gl()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Neural Scene Viewer")
    from viewer.main_window import MainWindow  # after the GL format is set

    win = MainWindow(device=device)
    win.show()
    if scene is not None:
        win.show_scene(path, *scene)  # (Scene, fitted model or None)
    else:
        win.open_when_shown(path)
    if latent is not None:
        win.set_latent_mode(True, latent)
    return app.exec()
