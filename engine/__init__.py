"""Neural Scene Viewer engine: cameras, scenes, rasterization and renderers. Never imports Qt."""

from engine.errors import NsvError, SceneError

__all__ = ["NsvError", "SceneError"]
