"""The render-mode registry (the built-in modes are declared in their packages and loaded by
:mod:`engine.modes`, the module to import).

A :class:`Mode` owns what is specific to it: how it builds its renderer for a scene
(``build``), the options it takes from the :class:`~engine.view_settings.ViewSettings`, its
shortcut, whether it keeps refining a still view, its status-line text (``status``), whether
opening a scene picks it (``auto``), and, for modes drawn by OpenGL in the viewer, the drawer
(``gl``). The viewer's mode combo, menus, number keys, viewport dispatch, status bar and
keyboard-shortcut help, and ``nsv render --mode``, all iterate :data:`MODES`, so adding a mode
is one module with one :func:`register` call (README: "Add a mode").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import NsvError
from engine.view_settings import ViewSettings


@dataclass
class BuildContext:
    """What a mode's ``build`` gets besides the scene: the fitted neural model (or None), the
    torch device, the denoiser folder, and the renderers built so far (by renderer name)."""

    model: Any = None
    device: Any = "cpu"
    denoiser_dir: Path | None = None
    built: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mode:
    """key: stable name (settings, ``nsv render --mode``); label: shown in the UI; shortcut:
    key sequence text ("1", "Ctrl+L"); renderer: the name its renderer is built under (modes
    sharing a renderer share one instance; "gl": the viewer's OpenGL points, "latent": the
    latent-model view); options: (settings, max_points, moving) -> that renderer's options
    (moving: the camera is moving, so a cheaper frame is welcome); build: (scene,
    BuildContext) -> the renderer, or None where the scene cannot be shown this way; panel: the
    dock that controls it; progressive: keeps adding samples while the camera is still; needs:
    what the user lacks when it is off; status: frame -> the status line's text (else the
    generic one); auto: scene -> True where opening that scene should pick this mode; gl: for
    modes the viewer draws with OpenGL itself, (moderngl context) -> a drawer with
    ``set_scene(scene)``, ``paint(fbo, camera, size, moving, full_quality) -> stats dict``,
    ``release()``; the headless ``nsv render`` uses the same drawer offscreen; frame_size:
    (viewport camera, settings, moving, FrameCost) -> (camera to render, is a moving frame),
    for modes that size their frames themselves (path tracing: a fixed still size, one
    prepared moving size), else the scheduler's dynamic resolution applies; controls: which of
    the Controls dock's shared widgets apply ("point_size", "scale", "wipe", "compare_with",
    "pathtrace": the path tracer's view, denoiser, split and reference, and its N / Shift+N
    keys);
    moving_budget: settings -> the frame time its moving frames may take (default the
    settings' ``target_ms``), for modes whose moving frames trade rate for sharpness."""

    key: str
    label: str
    shortcut: str
    renderer: str
    options: Callable[[ViewSettings, int | None, bool], Any] | None = None
    panel: str = "Controls"
    progressive: bool = False
    needs: str = ""
    build: Callable[[Any, BuildContext], Any] | None = None
    status: Callable[[Any], str] | None = None
    auto: Callable[[Any], bool] | None = None
    gl: Callable[[Any], Any] | None = None
    frame_size: Callable[[Any, ViewSettings, bool, Any], tuple[Any, bool]] | None = None
    controls: frozenset[str] = frozenset()
    moving_budget: Callable[[ViewSettings], float] | None = None

    @property
    def renders_scene(self) -> bool:
        """False for views that do not show the open scene (Latent)."""
        return self.renderer != "latent"

    @property
    def torch(self) -> bool:
        """Drawn by an engine renderer on the render worker (not by OpenGL in the viewer)."""
        return self.renderer not in ("gl", "latent") and self.gl is None

    def make_options(self, settings: ViewSettings, max_points: int | None, moving: bool):
        return None if self.options is None else self.options(settings, max_points, moving)


MODES: dict[str, Mode] = {}


def register(mode: Mode) -> Mode:
    """Add a mode: it appears in the viewer (combo, menu, shortcut, help) and ``nsv render``."""
    if mode.key in MODES:
        raise ValueError(f"mode {mode.key!r} is registered twice")
    if any(m.shortcut == mode.shortcut for m in MODES.values()):
        raise ValueError(f"shortcut {mode.shortcut!r} is taken")
    MODES[mode.key] = mode
    # Digit keys in their order first (the combo and the key table read 1 ... 9), then the
    # others in the order they were registered.
    items = sorted(MODES.items(), key=lambda kv: int(kv[1].shortcut) if kv[1].shortcut.isdigit()
                   else 100)  # fmt: skip
    MODES.clear()
    MODES.update(items)
    return mode


def unregister(key: str) -> None:
    """Remove a mode (tests that register a toy mode clean up with this)."""
    MODES.pop(key, None)


def get_mode(key: str) -> Mode:
    try:
        return MODES[key]
    except KeyError:
        raise NsvError(f"unknown mode {key!r}; choose from {', '.join(MODES)}") from None


class SceneRenderers:
    """The renderers of one open scene, by renderer name; a mode draws with the one its
    ``renderer`` names. ``points`` (torch rasterizer), ``neural`` (NPBG, when the scene has a
    fitted model) and ``pathtrace`` (Mitsuba scenes) read as attributes."""

    def __init__(self, points: Any = None, neural: Any = None, pathtrace: Any = None,
                 **others: Any) -> None:  # fmt: skip
        self.__dict__["by_name"] = {"points": points, "neural": neural, "pathtrace": pathtrace}
        self.by_name.update(others)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["by_name"].get(name)
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.by_name[name] = value

    def for_mode(self, mode: Mode):
        """The renderer that draws ``mode``, or None (GL/latent modes, or not available: no
        such renderer, or one that cannot draw this mode for this scene)."""
        r = self.by_name.get(mode.renderer) if mode.torch else None
        supports = getattr(r, "supports", None)
        return None if supports is not None and not supports(mode.key) else r

    def available(self, mode: Mode) -> bool:
        if mode.gl is not None:  # drawn by the viewer: available where its build says so
            return mode.build is None or self.by_name.get(mode.renderer) is not None
        return not mode.torch or self.for_mode(mode) is not None


def build_renderers(scene, model=None, device="cpu", denoiser_dir=None) -> SceneRenderers:
    """Renderers for a loaded scene (and its fitted NeuralPointModel, if any): each registered
    mode's ``build``, once per renderer name, in registration order (a later build may use an
    earlier renderer: neural draws through the points rasterizer)."""
    ctx = BuildContext(model, device, denoiser_dir)
    for m in MODES.values():
        if m.build is not None and m.renderer not in ctx.built:
            ctx.built[m.renderer] = m.build(scene, ctx)
    return SceneRenderers(**ctx.built)
