"""Per-photo exposure and white balance, learned while fitting (as in ADOP, Rückert et al. 2022).

Phone photos of one scene differ in exposure and white balance; without a per-photo correction
the rendering network averages them and every view comes out colour-shifted. Each training photo
gets three log gains (R, G, B; their mean is the exposure), applied to the rendering in linear
light before comparing with that photo. The gains are centred over the photos, so the scene
itself is rendered at the photos' average exposure and white balance (what the viewer shows).
A held-out photo is never fitted: it gets the mean gains of its nearest training photos (by
camera position), the way a new photo in the sequence would be predicted.

With ``field_rows``, each photo also gets a smooth log-gain field across the frame (a coarse
grid, bilinearly interpolated): vignetting, and a phone's local tone mapping, which brightens a
white sofa in one frame and darkens the table in the next - no global gain explains that. The
fields are not learned with the scene (learned jointly they cost stitch_toy 0.26 dB: they
absorb what the scene should explain) but measured once it is fitted: the least-squares grid
between each training photo and its rendering (``fit_field``). A held-out photo gets the mean
field of its nearest training photos, as it gets their gains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.camera import Camera

GAMMA = 2.2  # sRGB approximated by a power law: smooth, and exact enough for gains


def apply_gains(
    image: torch.Tensor, log_gain: torch.Tensor, field: torch.Tensor | None = None
) -> torch.Tensor:
    """image (..., 3, H, W) sRGB in [0, 1]; log_gain (..., 3); field: None or a per-pixel log
    gain (3, H, W) on top. Returns the image as if taken with those gains, in [0, 1]."""
    linear = image.clamp(min=1e-4) ** GAMMA
    g = log_gain[..., :, None, None]
    if field is not None:
        g = g + field
    return (linear * torch.exp(g)).clamp(1e-6, 1) ** (1 / GAMMA)


def camera_centre(camera: Camera) -> torch.Tensor:
    w2c = torch.as_tensor(camera.world_to_camera, dtype=torch.float64)
    return (-w2c[:3, :3].T @ w2c[:3, 3]).float()


def _intrinsics(camera: Camera) -> torch.Tensor:
    return torch.tensor(
        [camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy],
        dtype=torch.float32,
    )


def frame_grid(camera: Camera, frame: torch.Tensor | None = None) -> torch.Tensor:
    """(1, H, W, 2) where ``camera``'s pixel centres fall in a photo's frame, in grid_sample's
    [-1, 1] coordinates. ``frame``: that photo's (width, height, fx, fy, cx, cy); ``camera`` is
    a rescaled / cropped copy of it (a training crop) - the same rays. None: the camera's own
    frame (a held-out photo)."""
    f = _intrinsics(camera) if frame is None else frame.float().cpu()
    W, H, fx, fy, cx, cy = f.tolist()
    u = (torch.arange(camera.width) + 0.5 - camera.cx) / camera.fx * fx + cx
    v = (torch.arange(camera.height) + 0.5 - camera.cy) / camera.fy * fy + cy
    gy, gx = torch.meshgrid(v / H * 2 - 1, u / W * 2 - 1, indexing="ij")
    return torch.stack([gx, gy], -1)[None]


class PhotoCalibration(nn.Module):
    """Log gains (V, 3) of the training photos ``names``, with their camera centres (V, 3); with
    ``field_rows`` > 0 also a log-gain field (V, 3, rows, rows) across each photo's frame (zero
    until ``fit_field`` measures it), whose intrinsics (V, 6) say where a crop of it lies."""

    def __init__(
        self,
        names: list[str],
        centres: torch.Tensor,
        frames: torch.Tensor | None = None,
        field_rows: int = 0,
    ) -> None:
        super().__init__()
        self.names = list(names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.log_gain = nn.Parameter(torch.zeros(len(self.names), 3))
        self.register_buffer("centres", centres.float().reshape(-1, 3))
        if field_rows > 0:
            if frames is None:
                raise ValueError("a gain field needs the photos' intrinsics")
            self.register_buffer("field", torch.zeros(len(self.names), 3, field_rows, field_rows))
            self.register_buffer("frames", frames.float().reshape(-1, 6))
        else:
            self.field = None

    @staticmethod
    def for_views(views, field_rows: int = 0) -> PhotoCalibration:
        """For a list of ``engine.npbg.data.View`` (the training photos)."""
        return PhotoCalibration(
            [v.name for v in views],
            torch.stack([camera_centre(v.camera) for v in views]),
            torch.stack([_intrinsics(v.camera) for v in views]),
            field_rows,
        )

    def _nearest(self, camera: Camera, k: int) -> torch.Tensor:
        d = (self.centres - camera_centre(camera).to(self.centres.device)).norm(dim=1)
        return d.topk(min(k, len(d)), largest=False).indices

    def apply(
        self, image: torch.Tensor, camera: Camera, name: str | None = None, field: bool = True
    ) -> torch.Tensor:
        """``image`` (..., 3, H, W) rendered from ``camera``, as the photo ``name`` took it (a
        training photo; ``camera`` may be a crop of it) or, with no name, as a photo at
        ``camera`` would be predicted from its nearest training photos (never fitted to it).
        ``field``: with the photos' gain fields (if measured), else the gains alone."""
        use = field and self.field is not None
        if name is not None:
            i = self.index[name]
            gain = self.of_photo(name)
            frame = self.frames[i] if use else None
            grids = self.field[i : i + 1] if use else None
        else:
            near = self._nearest(camera, 2)
            gain = self.gains()[near].mean(0)
            frame = None
            grids = self.field[near].mean(0, keepdim=True) if use else None
        per_pixel = None
        if grids is not None:
            where = frame_grid(camera, frame).to(grids.device)
            per_pixel = F.grid_sample(grids, where, align_corners=False, padding_mode="border")[0]
        return apply_gains(image, gain, per_pixel)

    @torch.no_grad()
    def fit_field(
        self, name: str, render: torch.Tensor, photo: torch.Tensor, camera: Camera, ridge=0.01
    ) -> None:
        """Measure training photo ``name``'s field: the grid whose bilinear log gains best take
        ``render`` (3, H, W, the fitted scene from ``camera``, the photo's own camera, with its
        gains applied) to ``photo`` (3, H, W), in least squares over log linear light at a
        quarter of the size (the field is smooth; a 512-px photo takes milliseconds). ``ridge``
        pulls cells the photo barely constrains towards no change."""
        i = self.index[name]
        rows = self.field.shape[-1]
        lin = [F.avg_pool2d(x.clamp(1e-4, 1)[None] ** GAMMA, 4)[0] for x in (render, photo)]
        small = camera.resized(lin[0].shape[2], lin[0].shape[1])
        grid = frame_grid(small).to(render.device)
        one_hot = torch.eye(rows * rows, device=render.device).reshape(-1, 1, rows, rows)
        B = F.grid_sample(one_hot, grid.expand(len(one_hot), -1, -1, -1), align_corners=False,
                          padding_mode="border")  # fmt: skip
        B = B.reshape(rows * rows, -1).T  # (pixels, cells)
        y = (torch.log(lin[1] + 1e-3) - torch.log(lin[0] + 1e-3)).reshape(3, -1).T  # (pixels, 3)
        A = B.T @ B + ridge * len(B) / (rows * rows) * torch.eye(rows * rows, device=B.device)
        self.field[i] = torch.linalg.solve(A, B.T @ y).T.reshape(3, rows, rows)

    def gains(self) -> torch.Tensor:
        """(V, 3) log gains, centred: the average photo is the neutral rendering."""
        return self.log_gain - self.log_gain.mean(0, keepdim=True)

    def of_photo(self, name: str) -> torch.Tensor:
        """(3,) log gains of a training photo."""
        return self.gains()[self.index[name]]

    def predict(self, camera: Camera, k: int = 2) -> torch.Tensor:
        """(3,) log gains for a photo that was not fitted: the mean of the ``k`` training photos
        whose cameras are nearest."""
        return self.gains()[self._nearest(camera, k)].mean(0)

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to store with a fitted model (see ``from_state``)."""
        out = {"photo.log_gain": self.gains().detach().cpu(), "photo.centres": self.centres.cpu()}
        if self.field is not None:
            out["photo.field"] = self.field.cpu()
            out["photo.frames"] = self.frames.cpu()
        return out

    @staticmethod
    def from_state(tensors: dict[str, torch.Tensor], names: list[str]) -> PhotoCalibration | None:
        if "photo.log_gain" not in tensors or len(names) != len(tensors["photo.log_gain"]):
            return None
        field = tensors.get("photo.field")
        frames = tensors.get("photo.frames")
        if field is not None and (
            frames is None
            or field.dim() != 4
            or field.shape[:2] != (len(names), 3)
            or field.shape[2] != field.shape[3]
            or frames.shape != (len(names), 6)
        ):
            field = None  # malformed: the gains alone still hold
        rows = 0 if field is None else int(field.shape[2])
        cal = PhotoCalibration(names, tensors["photo.centres"], frames, rows)
        with torch.no_grad():
            cal.log_gain.copy_(tensors["photo.log_gain"])
            if field is not None:
                cal.field.copy_(field)
        return cal
