"""Point rasterization and the plain point-cloud render modes.

The rasterizer's names are loaded on first use (``engine.points.rasterize_points``), so that
importing the package (for its modes) does not import PyTorch: the viewer's window comes up
before PyTorch has loaded."""

from __future__ import annotations

__all__ = ["PointRaster", "gather_features", "gather_pyramid", "project_points", "rasterize_points"]


def __getattr__(name: str):
    if name in __all__:
        from engine.points import rasterize

        return getattr(rasterize, name)
    raise AttributeError(name)
