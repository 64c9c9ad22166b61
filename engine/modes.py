"""The render modes, each declared once.

A mode names the renderer that draws it (one of :class:`SceneRenderers`' fields, or "gl" for
the viewer's own OpenGL points, or "latent" for the latent-model view), the options it takes
from the :class:`~engine.view_settings.ViewSettings`, its shortcut, the panel that controls it
and whether it keeps refining a still view. The viewer's mode combo, number keys, viewport
dispatch, status bar and keyboard-shortcut help, and ``nsv render --mode``, all iterate
:data:`MODES`. Adding a mode: an engine module with a renderer, a panel, one ``register`` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import NsvError
from engine.view_settings import ViewSettings


@dataclass(frozen=True)
class Mode:
    """key: stable name (settings, ``nsv render --mode``); label: shown in the UI; shortcut:
    key sequence text ("1", "Ctrl+L"); renderer: field of SceneRenderers that draws it ("gl":
    the viewer's OpenGL points, "latent": the latent-model view); options: (settings,
    max_points, moving) -> that renderer's options (moving: the camera is moving, so a cheaper
    frame is welcome); panel: the dock that controls it; progressive: keeps
    adding samples while the camera is still; needs: what the user lacks when it is off."""

    key: str
    label: str
    shortcut: str
    renderer: str
    options: Callable[[ViewSettings, int | None, bool], Any] | None = None
    panel: str = "Controls"
    progressive: bool = False
    needs: str = ""

    @property
    def renders_scene(self) -> bool:
        """False for views that do not show the open scene (Latent)."""
        return self.renderer != "latent"

    @property
    def torch(self) -> bool:
        """Drawn by an engine renderer on the render worker (not by OpenGL in the viewer)."""
        return self.renderer not in ("gl", "latent")


MODES: dict[str, Mode] = {}


def register(mode: Mode) -> Mode:
    if mode.key in MODES:
        raise ValueError(f"mode {mode.key!r} is registered twice")
    if any(m.shortcut == mode.shortcut for m in MODES.values()):
        raise ValueError(f"shortcut {mode.shortcut!r} is taken")
    MODES[mode.key] = mode
    return mode


def get_mode(key: str) -> Mode:
    try:
        return MODES[key]
    except KeyError:
        raise NsvError(f"unknown mode {key!r}; choose from {', '.join(MODES)}") from None


@dataclass
class SceneRenderers:
    """The renderers of one open scene; a mode draws with the one its ``renderer`` names.
    points: torch rasterizer (always); neural: NPBG when the scene has a fitted model;
    pathtrace: progressive Mitsuba path tracer for Mitsuba scenes."""

    points: Any = None
    neural: Any = None
    pathtrace: Any = None

    def for_mode(self, mode: Mode):
        """The renderer that draws ``mode``, or None (GL/latent modes, or not available: no
        such renderer, or one that cannot draw this mode for this scene)."""
        r = getattr(self, mode.renderer, None) if mode.torch else None
        supports = getattr(r, "supports", None)
        return None if supports is not None and not supports(mode.key) else r

    def available(self, mode: Mode) -> bool:
        return not mode.torch or self.for_mode(mode) is not None


def build_renderers(scene, model=None, device="cpu", denoiser_dir=None) -> SceneRenderers:
    """Renderers for a loaded scene (and its fitted NeuralPointModel, if any). Mitsuba scenes
    get a progressive path tracer with the denoiser in ``denoiser_dir`` when there is one."""
    from engine.points.render import PointCloudRenderer

    points = PointCloudRenderer(scene, device)
    neural = None
    if model is not None:
        from engine.npbg.render import NeuralRenderer

        neural = NeuralRenderer(model.to(device), points, scene.views)
    pathtrace = None
    source = getattr(scene, "pathtrace_source", None)
    if source is not None:
        from engine.pathtrace.mitsuba_scene import MitsubaScene
        from engine.pathtrace.progressive import ProgressiveRenderer

        denoiser = fast = None
        if denoiser_dir is not None and (denoiser_dir / "denoiser.safetensors").is_file():
            from engine.denoise.train import load_denoisers

            denoiser, fast = load_denoisers(denoiser_dir, device)
        # The loader already parsed the file: reuse its scene (render() adapts the film size).
        ms = getattr(scene, "pathtrace_scene", None) or MitsubaScene(source, 256, 256)
        pathtrace = ProgressiveRenderer(ms, denoiser, fast)
    return SceneRenderers(points, neural, pathtrace)


# --- the modes ---------------------------------------------------------------------------------
def _points(s: ViewSettings, max_points: int | None, _moving: bool = False):
    from engine.points.render import PointRenderOptions

    return PointRenderOptions(s.mode, s.point_size, s.scale, max_points)


def _neural(s: ViewSettings, _max_points: int | None, moving: bool = False):
    from engine.npbg.render import NeuralRenderOptions

    return NeuralRenderOptions(s.mode, s.wipe, s.compare_with, s.point_size, preview=moving)


def _pathtrace(s: ViewSettings, _max_points: int | None, moving: bool = False):
    from engine.pathtrace.progressive import PathTraceOptions, moving_scale

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


_FIT = "Fit the scene first (Fit panel or nsv fit)"
_MITSUBA = "Open a Mitsuba .xml scene or 'cornell-box'"

register(Mode("gl", "OpenGL points", "1", "gl"))
register(Mode("color", "Rasterizer: color", "2", "points", _points))
register(Mode("depth", "Rasterizer: depth", "3", "points", _points))
register(Mode("normal", "Rasterizer: normals", "4", "points", _points))
register(Mode("neural", "Neural (NPBG)", "5", "neural", _neural, needs=_FIT))
register(Mode("descriptors", "Neural: descriptors (PCA)", "6", "neural", _neural, needs=_FIT))
register(Mode("compare", "Neural: wipe compare", "7", "neural", _neural, needs=_FIT))
register(Mode("pathtrace", "Path trace (Mitsuba)", "8", "pathtrace", _pathtrace,
              progressive=True, needs=_MITSUBA))  # fmt: skip
register(Mode("classes", "Rasterizer: classification", "9", "points", _points,
              needs="Open a LAS/LAZ file whose points have classes"))  # fmt: skip
register(Mode("latent", "Latent (HoloGAN / RenderNet)", "Ctrl+L", "latent", panel="Latent"))
