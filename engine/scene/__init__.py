"""Scene loaders: one per format, each returning a :class:`Scene` (``engine.open_path``
dispatches on what a path is)."""

from engine.scene.types import RegisteredView, Scene

__all__ = ["RegisteredView", "Scene"]
