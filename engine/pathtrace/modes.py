"""Path trace mode: Mitsuba, progressive, with the denoisers (key 8)."""

from __future__ import annotations

from typing import Any

from engine.mode_registry import BuildContext, Mode, register
from engine.view_settings import ViewSettings


def _build(scene, ctx: BuildContext):
    """Mitsuba scenes get a progressive path tracer with the denoiser in ``denoiser_dir``."""
    source = scene.pathtrace_source
    if source is None:
        return None
    from engine.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import ProgressiveRenderer

    denoiser = fast = None
    d = ctx.denoiser_dir
    if d is not None and (d / "denoiser.safetensors").is_file():
        from engine.denoise.train import load_denoisers

        denoiser, fast = load_denoisers(d, ctx.device)
    # The loader already parsed the file: reuse its scene (render() adapts the film size).
    ms = scene.pathtrace_scene or MitsubaScene(source, 256, 256)
    return ProgressiveRenderer(ms, denoiser, fast)


def _options(s: ViewSettings, _max_points: int | None, moving: bool = False):
    from engine.pathtrace import moving_scale
    from engine.pathtrace.progressive import PathTraceOptions

    return PathTraceOptions(
        s.pt_view,
        s.pt_max_spp,
        denoise=s.pt_denoise,
        denoiser=s.pt_denoiser,
        split=s.pt_split,
        wipe=s.wipe,
        reference_spp=256 if s.pt_reference else 0,
        # A still view prepares the moving size; a moving frame (already that size) does not
        # prepare a smaller one when the camera pauses mid-drag.
        moving_scale=moving_scale(s.pt_denoise) if s.dynamic_resolution and not moving else 0.0,
        frame_budget_ms=s.target_ms,
    )


def _frame_size(cam, s: ViewSettings, moving: bool, cost) -> tuple[Any, bool]:
    """Path tracing renders at ``pt_max_side`` at most; while moving, one smaller size when
    the recorded cost of fresh frames says the still size overruns the budget (one size: a
    new film size costs Mitsuba a rebuild, and the renderer prepares this one in advance)."""
    from engine.pathtrace import moving_scale

    cam = cam.scaled(min(1.0, s.pt_max_side / max(cam.width, cam.height)))
    if moving and cost.moving_factor(s.mode, cam.width * cam.height, s.target_ms) < 1:
        return cam.scaled(moving_scale(s.pt_denoise)), True
    return cam, False


register(Mode("pathtrace", "Path trace (Mitsuba)", "8", "pathtrace", _options, progressive=True,
              needs="Open a Mitsuba .xml scene or 'cornell-box'", build=_build,
              auto=lambda _scene: True, frame_size=_frame_size,
              controls=frozenset({"wipe", "pathtrace"})))  # fmt: skip
