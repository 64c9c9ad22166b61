"""What every render mode returns: an image plus what the status bar needs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.camera import Camera


@dataclass
class Frame:
    """A rendered image.

    image: (H, W, 3) uint8, sRGB, row 0 at the top
    camera: the camera it was rendered with (its width/height match the image)
    render_ms: engine time spent on this frame
    points_drawn: points submitted to the rasterizer
    """

    image: np.ndarray
    camera: Camera
    render_ms: float = 0.0
    points_drawn: int = 0
    device: str = "cpu"
    extra: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])
