"""Point rasterization and the plain point-cloud render modes."""

from engine.points.rasterize import PointRaster, gather_features, project_points, rasterize_points

__all__ = ["PointRaster", "gather_features", "project_points", "rasterize_points"]
