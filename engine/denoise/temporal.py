"""A temporal denoiser run over consecutive frames: the one place that carries a model's
recurrent state (its previous output) from frame to frame and reprojects it into the next view.

The viewer's progressive path tracer (``engine.pathtrace.progressive``) and ``nsv denoise``
(``engine.denoise.sequence``) both denoise through it.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.camera import Camera
from engine.denoise.model import image_tensor
from engine.denoise.reproject import camera_tensors, reprojection_grid


class TemporalDenoiser:
    """``net``'s run over a sequence of frames. Each call denoises one frame with the state of
    the previous call, warped into this frame's view (with both cameras and depths) when the
    model reprojects its state and both cameras are known. When it cannot be reprojected the
    state is reused as it is if ``unwarped_history`` (the viewer: a still camera, or a model
    that never warps), else dropped (a user's sequence without cameras: it would ghost).
    A frame of another size starts afresh. ``net=`` in a call swaps in a model that carries
    the same state (the viewer's fast model for moving frames)."""

    def __init__(self, net: torch.nn.Module, unwarped_history: bool = True) -> None:
        self.net = net
        self.device = next(net.parameters()).device
        self.unwarped_history = unwarped_history
        self.reset()

    def reset(self) -> None:
        """Forget the state (a new scene or sequence)."""
        self.state: list[torch.Tensor] | None = None
        self._prev: tuple[Camera | None, torch.Tensor] | None = None  # camera, padded depth
        self._shape: tuple[int, int] | None = None

    def __call__(
        self,
        radiance: np.ndarray,
        albedo: np.ndarray,
        normal: np.ndarray,
        depth: np.ndarray | None,
        camera: Camera | None = None,
        spp: int = 1,
        guide: np.ndarray | None = None,
        net: torch.nn.Module | None = None,
    ) -> np.ndarray:
        """radiance, albedo, normal: (H, W, 3) float32 linear; depth: (H, W) z-depth or None;
        ``camera``: this frame's; ``spp``: its samples per pixel; ``guide``: OIDN's output
        (H, W, 3) for a guided model, when the caller already has it (else the model computes
        it). Returns the denoised (H, W, 3) float32 linear radiance."""
        net = net or self.net
        H, W = radiance.shape[:2]
        if self._shape != (H, W):
            self.reset()
            self._shape = (H, W)

        def t(x: np.ndarray) -> torch.Tensor:
            return image_tensor(x, net.multiple, self.device)

        d = t(depth if depth is not None else np.zeros((H, W), np.float32))
        motion = None
        prev_cam, prev_depth = self._prev if self._prev is not None else (None, None)
        # Only models that warp their state need the grid: skip it for the others.
        if net.cfg.reproject and depth is not None and camera is not None and prev_cam is not None:
            motion = reprojection_grid(
                d, *camera_tensors(camera, self.device), prev_depth,
                *camera_tensors(prev_cam, self.device),
            )  # fmt: skip
        history = self.state if motion is not None or self.unwarped_history else None
        extra = {"guide": t(guide)} if guide is not None else {}
        with torch.no_grad():
            out, self.state = net(t(radiance), t(albedo), t(normal), d, history, motion,
                                  spp=max(int(spp), 1), **extra)  # fmt: skip
        self._prev = (camera, d)
        return out[0, :, :H, :W].permute(1, 2, 0).cpu().numpy()
