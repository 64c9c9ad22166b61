"""The neural modes: NPBG's image, its descriptors (PCA) and the wipe compare."""

from __future__ import annotations

from engine.mode_registry import BuildContext, Mode, register
from engine.view_settings import ViewSettings


def _build(scene, ctx: BuildContext):
    """A fitted model's renderer (drawing through the points rasterizer), else None."""
    if ctx.model is None:
        return None
    from engine.npbg.render import NeuralRenderer

    return NeuralRenderer(ctx.model.to(ctx.device), ctx.built["points"], scene.views)


def _options(s: ViewSettings, _max_points: int | None, moving: bool = False):
    from engine.npbg.render import NeuralRenderOptions

    return NeuralRenderOptions(s.mode, s.wipe, s.compare_with, s.point_size, preview=moving)


def _moving_budget(s: ViewSettings) -> float:
    """Neural frames in flight get 2.5x the frame budget (100 ms at the default 40): the preview
    network in bf16 draws the whole viewport in about that on the 2-core EPYC (454x572: 54 ms
    network + 17 ms points), 38.7 dB from the full network's frame, where any smaller frame
    scaled up loses detail (0.36 of the pixels: 30.3 dB). `nsv bench viewer --modes neural`."""
    return 2.5 * s.target_ms


_FIT = "Fit the scene first (Fit panel or nsv fit)"
register(Mode("neural", "Neural (NPBG)", "5", "neural", _options, needs=_FIT, build=_build,
              auto=lambda _scene: True, moving_budget=_moving_budget))  # fmt: skip
register(Mode("descriptors", "Neural: descriptors (PCA)", "6", "neural", _options, needs=_FIT))
register(Mode("compare", "Neural: wipe compare", "7", "neural", _options, needs=_FIT,
              controls=frozenset({"wipe", "compare_with", "point_size"})))  # fmt: skip
