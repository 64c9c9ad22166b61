"""Per-photo exposure and white balance, learned while fitting (as in ADOP, Rückert et al. 2022).

Phone photos of one scene differ in exposure and white balance; without a per-photo correction
the rendering network averages them and every view comes out colour-shifted. Each training photo
gets three log gains (R, G, B; their mean is the exposure), applied to the rendering in linear
light before comparing with that photo. The gains are centred over the photos, so the scene
itself is rendered at the photos' average exposure and white balance (what the viewer shows).
A held-out photo is never fitted: it gets the mean gains of its nearest training photos (by
camera position), the way a new photo in the sequence would be predicted.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.camera import Camera

GAMMA = 2.2  # sRGB approximated by a power law: smooth, and exact enough for gains


def apply_gains(image: torch.Tensor, log_gain: torch.Tensor) -> torch.Tensor:
    """image (..., 3, H, W) sRGB in [0, 1]; log_gain (..., 3). Returns the image as if taken
    with those gains, in [0, 1]."""
    linear = image.clamp(min=1e-4) ** GAMMA
    g = torch.exp(log_gain)[..., :, None, None]
    return (linear * g).clamp(1e-6, 1) ** (1 / GAMMA)


def camera_centre(camera: Camera) -> torch.Tensor:
    w2c = torch.as_tensor(camera.world_to_camera, dtype=torch.float64)
    return (-w2c[:3, :3].T @ w2c[:3, 3]).float()


class PhotoCalibration(nn.Module):
    """Log gains (V, 3) of the training photos ``names``, with their camera centres (V, 3)."""

    def __init__(self, names: list[str], centres: torch.Tensor) -> None:
        super().__init__()
        self.names = list(names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.log_gain = nn.Parameter(torch.zeros(len(self.names), 3))
        self.register_buffer("centres", centres.float().reshape(-1, 3))

    @staticmethod
    def for_views(views) -> PhotoCalibration:
        """For a list of ``engine.npbg.data.View`` (the training photos)."""
        return PhotoCalibration(
            [v.name for v in views], torch.stack([camera_centre(v.camera) for v in views])
        )

    def gains(self) -> torch.Tensor:
        """(V, 3) log gains, centred: the average photo is the neutral rendering."""
        return self.log_gain - self.log_gain.mean(0, keepdim=True)

    def of_photo(self, name: str) -> torch.Tensor:
        """(3,) log gains of a training photo."""
        return self.gains()[self.index[name]]

    def predict(self, camera: Camera, k: int = 2) -> torch.Tensor:
        """(3,) log gains for a photo that was not fitted: the mean of the ``k`` training photos
        whose cameras are nearest."""
        d = (self.centres - camera_centre(camera).to(self.centres.device)).norm(dim=1)
        near = d.topk(min(k, len(d)), largest=False).indices
        return self.gains()[near].mean(0)

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to store with a fitted model (see ``from_state``)."""
        return {"photo.log_gain": self.gains().detach().cpu(), "photo.centres": self.centres.cpu()}

    @staticmethod
    def from_state(tensors: dict[str, torch.Tensor], names: list[str]) -> PhotoCalibration | None:
        if "photo.log_gain" not in tensors or len(names) != len(tensors["photo.log_gain"]):
            return None
        cal = PhotoCalibration(names, tensors["photo.centres"])
        with torch.no_grad():
            cal.log_gain.copy_(tensors["photo.log_gain"])
        return cal
