"""Progress reporting and cancellation shared by every import stage (CLI bar or viewer dialog)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import NsvError


class ImportCancelled(NsvError):
    """Raised inside a stage when the user cancelled the import."""


@dataclass
class Step:
    """One progress report. ``total`` is 0 for a stage whose length is unknown (a spinner).
    ``preview``: what already exists of the result (a Scene with the cameras while the points
    are still being computed), for a front end to show meanwhile."""

    stage: str
    done: int = 0
    total: int = 0
    info: str = ""
    preview: object = None


class Progress:
    """Stages call :meth:`update`; the front end passes ``callback`` and may call :meth:`cancel`
    from any thread. pycolmap calls take :attr:`token` so a cancel stops them mid-call too."""

    def __init__(self, callback: Callable[[Step], None] | None = None) -> None:
        self.callback = callback
        self._cancelled = threading.Event()
        self._token = None
        self.log: list[str] = []  # one line per finished stage: what it found

    @property
    def token(self):
        if self._token is None:
            import pycolmap

            self._token = pycolmap.CancellationToken()
            if self._cancelled.is_set():
                self._token.cancel()
        return self._token

    def cancel(self) -> None:
        self._cancelled.set()
        if self._token is not None:
            self._token.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise ImportCancelled("import cancelled")

    def update(self, stage: str, done: int = 0, total: int = 0, info: str = "") -> None:
        self.check()
        if self.callback is not None:
            self.callback(Step(stage, done, total, info))

    def show(self, preview, what: str) -> None:
        """Hand the front end a preview of the result (``what`` says what it holds)."""
        self.check()
        if self.callback is not None:
            self.callback(Step("preview", 0, 0, what, preview))

    def found(self, line: str) -> None:
        """A finished stage's summary (shown by the CLI and the viewer's dialog)."""
        self.log.append(line)
        if self.callback is not None:
            self.callback(Step("found", 0, 0, line))
