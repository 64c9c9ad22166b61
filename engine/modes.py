"""The render modes: the registry (engine.mode_registry) with the built-in modes loaded, each
declared in its own package's module. Import from here: ``from engine.modes import MODES``."""

from engine.latent import modes as _latent_modes  # noqa: F401  (Ctrl+L)
from engine.mode_registry import (
    MODES,
    BuildContext,
    Mode,
    SceneRenderers,
    build_renderers,
    get_mode,
    register,
    unregister,
)
from engine.npbg import modes as _npbg_modes  # noqa: F401  (keys 5-7)
from engine.pathtrace import modes as _pathtrace_modes  # noqa: F401  (key 8)
from engine.points import modes as _points_modes  # noqa: F401  (keys 1-4, 9)

__all__ = ["MODES", "BuildContext", "Mode", "SceneRenderers", "build_renderers", "get_mode",
           "register", "unregister"]  # fmt: skip
