"""Latest-wins render worker: the GUI submits requests, a thread renders only the newest one.

Like StyleGAN3's visualizer: while a slow frame renders, newer requests overwrite the pending
slot, so the worker never builds a queue and the GUI thread never waits for the engine.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.camera import Camera
from engine.frame import Frame
from engine.latest import LatestWins


@dataclass
class RenderRequest:
    """Render ``camera`` with ``renderer.render(camera, options)``; ``id`` increases per request."""

    id: int
    renderer: Any
    camera: Camera
    options: Any


@dataclass
class RenderResult:
    id: int
    frame: Frame


class RenderWorker(QObject):
    """Owns a latest-wins thread; ``submit`` never blocks; results arrive via ``frame_ready``."""

    frame_ready = Signal(object)  # RenderResult
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._latest = LatestWins(self._render, self._done, self._error, name="nsv-render")

    def _render(self, req: RenderRequest) -> Frame:
        if hasattr(req.renderer, "superseded"):
            req.renderer.superseded = self.has_newer
        return req.renderer.render(req.camera, req.options)

    def _done(self, req: RenderRequest, frame: Frame) -> None:
        self.frame_ready.emit(RenderResult(req.id, frame))

    def _error(self, _req: RenderRequest, e: Exception) -> None:
        traceback.print_exception(e)
        self.failed.emit(f"render failed: {type(e).__name__}: {e}")

    def submit(self, request: RenderRequest) -> None:
        self._latest.submit(request)

    def has_newer(self) -> bool:
        """True while a request newer than the one being rendered waits."""
        return self._latest.has_newer()

    @property
    def idle(self) -> bool:
        return self._latest.idle

    @property
    def dropped(self) -> int:
        """Requests overwritten before they were rendered."""
        return self._latest.dropped

    @property
    def rendered(self) -> int:
        return self._latest.done

    def stop(self) -> None:
        self._latest.stop()


class BackgroundTask(QObject):
    """Runs ``fn()`` on a thread; emits ``done(result)`` or ``error(message)`` on the GUI thread,
    and ``step`` for each progress report the function makes through ``report`` (any
    thread)."""

    done = Signal(object)
    error = Signal(str)
    step = Signal(object)  # engine.capture.progress.Step

    def report(self, step) -> None:
        self._emit(self.step, step)

    @staticmethod
    def _emit(signal, value) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the window that asked was closed meanwhile: nobody to tell
            pass

    def __init__(self, fn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._thread = threading.Thread(target=self._run, name="nsv-task", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            result = self._fn()
        except Exception as e:
            from engine.errors import NsvError

            msg = str(e) if isinstance(e, NsvError) else f"{type(e).__name__}: {e}"
            self._emit(self.error, msg)
        else:
            self._emit(self.done, result)
