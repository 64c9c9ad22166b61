"""What every render mode returns: an image plus what the status bar needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.camera import Camera

# Frame.compare_with when the wipe compare's right side is the capture's Gaussian splats: the
# viewer draws them there with OpenGL (the engine's frame holds the neural image only).
GAUSSIANS_LABEL = "Gaussian splats"


@dataclass(frozen=True)
class ErrorPoint:
    """relMSE against a path-traced reference at ``spp`` samples: of the noisy estimate, the
    denoised one (None when not denoised) and Intel OIDN's (None when not computed)."""

    spp: int
    noisy: float
    denoised: float | None = None
    oidn: float | None = None


@dataclass
class Frame:
    """A rendered image and what the viewer says about it (typed: the engine -> viewer
    protocol; a renderer fills the fields that apply to it).

    image: (H, W, 3) uint8, sRGB, row 0 at the top
    camera: the camera it was rendered with (its width/height match the image)
    render_ms: engine time spent on this frame
    points_drawn: points submitted to the rasterizer
    device: where it was rendered (a torch device type, or Mitsuba's variant)
    Progressive path tracing: spp (samples so far), progressive (more will come), variant,
    denoised / denoiser (which one, as the status line names it), build_ms (time spent on a
    new film size: not per-frame cost), error (against the reference, when one is on).
    Neural: network ("preview" when the preview network drew it), runtime (torch,
    torch bf16, onnxruntime, cuda ...), compare_with (what the wipe compares against),
    drawn_size ((width, height) the network drew at, when not the image's: the scale the
    scene was fitted at, resampled to the image - NeuralPointModel.render), passes (a still
    view: offset passes averaged so far; progressive while more will come).
    """

    image: np.ndarray
    camera: Camera
    render_ms: float = 0.0
    points_drawn: int = 0
    device: str = "cpu"
    spp: int = 0
    progressive: bool = False
    variant: str = ""
    denoised: bool = False
    denoiser: str = ""
    build_ms: float = 0.0
    error: ErrorPoint | None = None
    network: str = ""
    runtime: str = ""
    compare_with: str = ""
    drawn_size: tuple[int, int] | None = None
    passes: int = 0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])
