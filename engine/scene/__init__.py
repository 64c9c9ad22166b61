"""Scene loading: one loader per format, each returning a :class:`Scene`."""

from engine.scene.load import load_scene
from engine.scene.types import RegisteredView, Scene

__all__ = ["RegisteredView", "Scene", "load_scene"]
