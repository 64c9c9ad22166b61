"""Latest-wins work on a thread: requests overwrite the pending one, so the thread never
builds a queue and the caller never waits (StyleGAN3's visualizer does the same). The render
worker and the Gaussians' sorter run on it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LatestWins:
    """Runs ``work(request)`` on a daemon thread for the newest request only; ``on_done(request,
    result)`` or ``on_error(request, exception)`` are called from that thread."""

    def __init__(self, work: Callable[[Any], Any], on_done: Callable[[Any, Any], None],
                 on_error: Callable[[Any, Exception], None] | None = None,
                 name: str = "nsv-latest") -> None:  # fmt: skip
        self._work, self._on_done, self._on_error = work, on_done, on_error
        self._cond = threading.Condition()
        self._pending: Any = None
        self._stopping = False
        self._busy = False
        self.dropped = 0  # requests overwritten before they were worked on
        self.done = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: Any) -> None:
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = request
            self._cond.notify()

    def has_newer(self) -> bool:
        """True while a request newer than the one being worked on waits."""
        with self._cond:
            return self._pending is not None

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and not self._busy

    def stop(self, wait_s: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify()
        if wait_s and threading.current_thread() is not self._thread:
            self._thread.join(timeout=wait_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                req, self._pending = self._pending, None
                self._busy = True
            try:
                result = self._work(req)
            except Exception as e:
                if self._on_error is None:
                    raise
                self._on_error(req, e)
            else:
                self.done += 1
                self._on_done(req, result)
            finally:
                with self._cond:
                    self._busy = False
