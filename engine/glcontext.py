"""Headless OpenGL contexts for the engine's offscreen renders (synthetic photos, style
targets, GL points), created the same way everywhere."""

from __future__ import annotations

from engine.errors import NsvError


def create_headless_context(require: int = 330):
    """A standalone moderngl context: EGL (no display needed), else the default backend.

    EGL also works inside the viewer, after Qt has made its GLX context (a GLX standalone
    context there crashes Qt later). Created *before* any Qt GL context, though, it keeps Qt's
    widgets from making theirs current, which is why the tests run the GUI tests first.
    """
    import moderngl

    errors = []
    for kw in ({"backend": "egl"}, {}):
        try:
            return moderngl.create_standalone_context(require=require, **kw)
        except Exception as e:
            errors.append(f"{kw.get('backend', 'default')}: {e}")
    raise NsvError("no headless OpenGL available (" + "; ".join(errors) + ")")
