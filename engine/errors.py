"""Errors a user can meet. The CLI prints them as one line; the viewer shows them in a dialog."""

from __future__ import annotations

from pathlib import Path


class NsvError(Exception):
    """Base class for errors caused by user input (files, arguments), not by bugs."""


class SceneError(NsvError):
    """A scene file or folder cannot be loaded. The message names the path and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
