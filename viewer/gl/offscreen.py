"""Headless OpenGL rendering (EGL when available) with the same drawing code as the window."""

from __future__ import annotations

import moderngl
import numpy as np

from engine.camera import Camera
from engine.glcontext import create_headless_context
from engine.scene.types import Scene
from viewer.gl.points import PointCloudGL, RenderTarget


class OffscreenPointRenderer:
    """Renders a cloud with GL points into an offscreen framebuffer."""

    def __init__(self, scene: Scene, ctx: moderngl.Context | None = None) -> None:
        self.ctx = ctx or create_headless_context()
        self.cloud = PointCloudGL(self.ctx, scene)
        self.target = RenderTarget(self.ctx)

    def render(self, camera: Camera, point_size: float = 1.0, max_points=None) -> np.ndarray:
        """Returns (H, W, 3) uint8, row 0 at the top."""
        self.target.bind((camera.width, camera.height))
        self.cloud.draw(camera, point_size, max_points)
        img = self.target.read()
        self.ctx.finish()
        return img

    @property
    def renderer_name(self) -> str:
        return self.ctx.info.get("GL_RENDERER", "OpenGL")
