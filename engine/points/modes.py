"""The point modes: OpenGL points (drawn by the viewer) and the torch rasterizer's colour,
depth, normal and classification views."""

from __future__ import annotations

from engine.mode_registry import BuildContext, Mode, register
from engine.view_settings import ViewSettings


def _build(scene, ctx: BuildContext):
    from engine.points.render import PointCloudRenderer

    return PointCloudRenderer(scene, ctx.device)


def _options(s: ViewSettings, max_points: int | None, _moving: bool = False):
    from engine.points.render import PointRenderOptions

    return PointRenderOptions(s.mode, s.point_size, s.scale, max_points)


_SCALE = frozenset({"scale", "point_size"})
register(Mode("gl", "OpenGL points", "1", "gl", controls=frozenset({"point_size"})))
register(Mode("color", "Rasterizer: color", "2", "points", _options, build=_build,
              controls=_SCALE))  # fmt: skip
register(Mode("depth", "Rasterizer: depth", "3", "points", _options, controls=_SCALE))
register(Mode("normal", "Rasterizer: normals", "4", "points", _options, controls=_SCALE))
register(Mode("classes", "Rasterizer: classification", "9", "points", _options,
              needs="Open a LAS/LAZ file whose points have classes", controls=_SCALE))  # fmt: skip
