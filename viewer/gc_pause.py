"""No cyclic garbage collection while the camera moves (process-wide, by the app's timers)."""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QCoreApplication, QTimer

_gc_pause = {"until": 0.0, "paused": False}


def pause_gc(for_s: float) -> None:
    """No cyclic garbage collection while the camera moves: a full collection of this app's
    objects takes 50-200 ms with the GIL held (every thread stops), which were the slowest
    frames of a drag. Reference counting still frees everything else. The collector comes back
    ``for_s`` after the last call, by a timer of the application (not of a widget, which may be
    gone by then: the collector is process-wide)."""
    _gc_pause["until"] = time.perf_counter() + for_s
    if not _gc_pause["paused"] and gc.isenabled():
        gc.disable()
        _gc_pause["paused"] = True
        QTimer.singleShot(int(for_s * 1000) + 20, QCoreApplication.instance(), _gc_check)


def _gc_check() -> None:
    left = _gc_pause["until"] - time.perf_counter()
    if left > 0 and _gc_pause["paused"]:
        QTimer.singleShot(int(left * 1000) + 20, QCoreApplication.instance(), _gc_check)
    else:
        resume_gc()


def resume_gc() -> None:
    if _gc_pause["paused"]:
        _gc_pause["paused"] = False
        gc.enable()
