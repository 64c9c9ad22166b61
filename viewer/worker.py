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
    """Owns a daemon thread; ``submit`` never blocks; results arrive via ``frame_ready``."""

    frame_ready = Signal(object)  # RenderResult
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._pending: RenderRequest | None = None
        self._stopping = False
        self.dropped = 0  # requests overwritten before they were rendered
        self.rendered = 0
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="nsv-render", daemon=True)
        self._thread.start()

    def submit(self, request: RenderRequest) -> None:
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = request
            self._cond.notify()

    def has_newer(self) -> bool:
        """True while a request newer than the one being rendered waits."""
        with self._cond:
            return self._pending is not None

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and not self._busy

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                req, self._pending = self._pending, None
                self._busy = True
            if hasattr(req.renderer, "superseded"):
                req.renderer.superseded = self.has_newer
            try:
                frame = req.renderer.render(req.camera, req.options)
            except Exception as e:
                traceback.print_exc()
                self.failed.emit(f"render failed: {type(e).__name__}: {e}")
            else:
                self.rendered += 1
                self.frame_ready.emit(RenderResult(req.id, frame))
            finally:
                with self._cond:
                    self._busy = False


class BackgroundTask(QObject):
    """Runs ``fn()`` on a thread; emits ``done(result)`` or ``error(message)`` on the GUI thread,
    and ``step`` for each progress report the function makes through ``report`` (any
    thread)."""

    done = Signal(object)
    error = Signal(str)
    step = Signal(object)  # engine.capture.progress.Step

    def report(self, step) -> None:
        self.step.emit(step)

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
            self.error.emit(msg)
        else:
            self.done.emit(result)
