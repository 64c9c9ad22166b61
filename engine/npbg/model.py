"""A neural point scene: points, their learned descriptors, and the rendering network.

Saved as a folder: ``model.safetensors`` (points, descriptors, network weights) and
``config.json`` (network configuration and fitting summary). Loading never executes code.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from engine.camera import Camera
from engine.errors import NsvError
from engine.images import atomic_save_tensors, atomic_write_text, resample_image, shift_image
from engine.npbg.layout import CONFIG_FILE, MODEL_FILE
from engine.npbg.network import NetworkConfig, RenderingNetwork
from engine.points.cull import PhotoCull
from engine.points.rasterize import gather_pyramid, rasterize_points

ENV_ROWS = 64  # environment descriptor map: latitude rows (longitude: twice as many columns)
# NeuralPointModel.render draws a view at the scale the model was fitted at unless the camera's
# focal length is within this fraction of it.
FIT_SCALE_TOLERANCE = 0.05
# A still view is drawn in passes, each offset by these fractions of a drawn pixel and moved
# back, and averaged (the viewer adds one pass per frame while the camera stays; `nsv eval`
# scores all four): the rasterizer puts each point in one pixel, and averaging offsets smooths
# that. Held-out PSNR / SSIM, one pass against four: stitch_toy 28.67 / 0.9004 against 28.91 /
# 0.9058, phone11 28.30 / 0.9426 against 28.44 / 0.9462, the room 30.02 / 0.9465 against 30.17 /
# 0.9484 (session 27; the second pass gives most of it).
PASS_SHIFTS = ((0.0, 0.0), (0.5, 0.5), (0.5, 0.0), (0.0, 0.5))


def ray_directions(
    camera: Camera, height: int, width: int, level: int, pixels: torch.Tensor | None = None
) -> torch.Tensor:
    """(3, height, width) world-space unit view directions of the pixel centres of pyramid
    ``level`` (level 0 = the camera's pixels, level s = 2**s x 2**s blocks of them); with
    ``pixels`` (M,) flat indices into that grid, (3, M): only theirs."""
    f = 2.0**level
    # Camera-space rays (a, b, 1), unit length through 1 / sqrt(a^2 + b^2 + 1), turned to world
    # space by R^T; per row and column, in float32: this runs for every frame at every level.
    a = ((torch.arange(width, dtype=torch.float32) + 0.5) * f - camera.cx) / camera.fx
    b = ((torch.arange(height, dtype=torch.float32) + 0.5) * f - camera.cy) / camera.fy
    rt = torch.as_tensor(camera.world_to_camera[:3, :3], dtype=torch.float32).T  # camera -> world
    if pixels is None:
        a, b = a[None, :], b[:, None]  # (1, W), (H, 1): broadcast over the grid
        r0, r1, r2 = (rt[:, i, None, None] for i in range(3))
    else:
        rows = pixels // width
        a, b = a[pixels - rows * width], b[rows]
        r0, r1, r2 = (rt[:, i, None] for i in range(3))
    inv = torch.rsqrt(a**2 + b**2 + 1.0)
    return (r0 * a + r1 * b + r2) * inv


def sphere_directions(
    dirs: torch.Tensor, origin: np.ndarray, center: torch.Tensor, radius: float | torch.Tensor
) -> torch.Tensor:
    """Where rays from ``origin`` (3,) along unit ``dirs`` (3, ...) leave the sphere of
    ``radius`` (a number, or one per ray: (...)) about ``center`` (3,), as unit directions from
    its centre (3, ...): the environment looked up there moves with the camera like walls that
    far away, where a map at infinity stays put (parallax). From outside the sphere, the far
    side."""
    oc = torch.as_tensor(origin, dtype=dirs.dtype) - center.to(dirs.dtype)  # (3,)
    shape = (3,) + (1,) * (dirs.dim() - 1)
    b = (dirs * oc.view(shape)).sum(0)
    c = float(oc.dot(oc)) - radius * radius
    t = -b + torch.sqrt((b * b - c).clamp_min(0.0))
    hit = oc.view(shape) + dirs * t
    # Not hit.norm(dim=0): reducing over the 3 rows of a (3, M) tensor took 36 ms for 131k rays
    # on the 2-core EPYC (one frame's empty pixels), the sum of the rows' squares 0.2 ms.
    length = (hit[0] * hit[0] + hit[1] * hit[1] + hit[2] * hit[2]).sqrt_().clamp_min_(1e-12)
    return hit / length


def environment_sphere(
    points: np.ndarray, camera_positions: np.ndarray
) -> tuple[np.ndarray, float]:
    """Centre and radius for the environment of a capture: the cameras' centre, and the median
    distance from it of the points beyond 1.5x the farthest camera (the room around an object,
    the walls of a room); 0 (at infinity) when no points lie that far. points: (N, 3);
    camera_positions: (M, 3)."""
    center = np.median(np.asarray(camera_positions, np.float64), axis=0)
    rel, _ = _far_points(points, center, camera_positions)
    if len(rel) < 100:
        return center.astype(np.float32), 0.0
    return center.astype(np.float32), float(np.median(np.linalg.norm(rel, axis=1)))


def _far_points(
    points: np.ndarray, center: np.ndarray, camera_positions: np.ndarray
) -> tuple[np.ndarray, float]:
    """(K, 3) the points beyond 1.5x the farthest camera from ``center``, relative to it, and
    that distance: what the environment stands for."""
    reach = 1.5 * max(float(np.linalg.norm(camera_positions - center, axis=1).max()), 1e-6)
    rel = np.asarray(points, np.float64) - center
    return rel[np.linalg.norm(rel, axis=1) > reach], reach


def surface_radius(
    dirs: torch.Tensor,
    origin: np.ndarray,
    center: torch.Tensor,
    radius: float,
    radii: torch.Tensor,
    rounds: int = 3,
) -> torch.Tensor:
    """(...) the distance from ``center`` at which rays from ``origin`` along ``dirs`` (3, ...)
    meet a surface whose distance depends on the direction: ``radii`` (He, We) lat-long
    (``environment_radii``); give it to ``sphere_directions``. Each round moves the hit to the
    sphere of the radius found in the previous hit's direction, starting from ``radius``: the
    map is smooth, so a few rounds settle."""
    r = sample_environment(radii[None], sphere_directions(dirs, origin, center, radius))[0]
    for _ in range(rounds - 1):
        r = sample_environment(radii[None], sphere_directions(dirs, origin, center, r))[0]
    return r


def environment_radii(
    points: np.ndarray, center: np.ndarray, radius: float, camera_positions: np.ndarray, rows: int
) -> np.ndarray:
    """(rows, 2 * rows) lat-long map of the environment's distance from ``center`` by direction
    (see ``sample_environment``): per texel, the median distance of the far points in it;
    texels with fewer than three take their neighbours' (then ``radius``). Kept within 1.5x the
    farthest camera and 4x ``radius`` (the sweep's farthest planes hold stray points). A room is
    not a sphere: from stitch_toy's centre its walls lie 12-35 units out, the sphere at 25.
    points: (N, 3); the far points are those of ``environment_sphere``."""
    cols = 2 * rows
    rel, reach = _far_points(points, center, camera_positions)
    dist = np.linalg.norm(rel, axis=1)
    uv = latlong(torch.from_numpy((rel / dist[:, None]).T)).numpy()  # the map's own convention
    col = np.clip(((uv[:, 0] + 1) / 2 * cols).astype(int), 0, cols - 1)
    row = np.clip(((uv[:, 1] + 1) / 2 * rows).astype(int), 0, rows - 1)
    cell = row * cols + col
    count = np.bincount(cell, minlength=rows * cols)
    order = np.lexsort((dist, cell))  # by texel, then by distance
    start = np.cumsum(count) - count
    med = dist[order][np.minimum(start + count // 2, max(len(order) - 1, 0))]
    known = (count >= 3).reshape(rows, cols)
    inv = np.where(known, 1 / np.where(known, med.reshape(rows, cols), 1.0), 0.0)
    for _ in range(rows + cols):  # grow the known texels into the unknown ones
        if known.all():
            break
        acc, n = np.zeros_like(inv), np.zeros_like(inv)
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            k = np.roll(known, (dr, dc), (0, 1))
            v = np.roll(inv, (dr, dc), (0, 1))
            if dr:  # latitude does not wrap
                k[0 if dr == 1 else -1] = False
            acc += np.where(k, v, 0.0)
            n += k
        grow = ~known & (n > 0)
        inv[grow] = acc[grow] / n[grow]
        known |= grow
    radii = np.where(known, 1 / np.maximum(inv, 1e-12), radius)
    return np.clip(radii, reach, 4 * max(radius, reach)).astype(np.float32)


def latlong(dirs: torch.Tensor) -> torch.Tensor:
    """(..., 2) lat-long map coordinates in [-1, 1] (longitude from +z towards +x, latitude
    from y) of unit directions (3, ...), as ``grid_sample`` takes them."""
    x, y, z = dirs
    return torch.stack(
        [torch.atan2(x, z) / math.pi, torch.asin(y.clamp(-1, 1)) / (math.pi / 2)], -1
    )


def sample_environment(env: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Look up a lat-long descriptor map env (D, He, We) in directions dirs (3, ...) -> (D,
    ...); differentiable in ``env``."""
    grid = latlong(dirs.to(env.device).reshape(3, 1, -1))
    out = F.grid_sample(env[None], grid[None], align_corners=False, padding_mode="border")[0]
    return out.reshape(env.shape[0], *dirs.shape[1:])


def init_descriptors(colors: np.ndarray | None, n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """(n, dim) initial descriptors: the point color (mapped to [-1, 1]) in the first three
    channels when known, which makes early renders recognisable; small noise elsewhere."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, dim, generator=g) * 0.1
    if colors is not None and dim >= 3:
        d[:, :3] = torch.from_numpy(np.asarray(colors, np.float32)) * 2 - 1
    return d


class NeuralPointModel(nn.Module):
    """points: (N, 3) float32 buffer; descriptors: (N, D) parameter; net: RenderingNetwork;
    environment: optional (D, 16, 32) lat-long descriptor map looked up by view direction
    where no point lands (the background a capture's cloud does not cover: sky, far walls), on a
    sphere of ``env_radius`` about ``env_center`` (3,) (radius 0: at infinity), or on a surface
    whose distance varies by direction: ``env_radii`` (He, We) (``environment_radii``);
    preview: optional fast RenderingNetwork distilled from ``net`` (engine.npbg.distill),
    shown while the camera moves."""

    def __init__(
        self,
        points: torch.Tensor,
        descriptors: torch.Tensor,
        net: RenderingNetwork,
        point_size: int = 1,
        environment: torch.Tensor | None = None,
        env_center: np.ndarray | None = None,
        env_radius: float = 0.0,
        env_radii: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer(
            "env_radii", None if env_radii is None else torch.as_tensor(env_radii).float()
        )
        center = np.zeros(3, np.float32) if env_center is None else np.asarray(env_center)
        self.register_buffer("env_center", torch.as_tensor(center, dtype=torch.float32))
        self.env_radius = float(env_radius)
        self.register_buffer("points", points.float().contiguous())
        self.descriptors = nn.Parameter(descriptors.float().contiguous())
        self.environment = None if environment is None else nn.Parameter(environment.float())
        self.net = net
        self.preview: RenderingNetwork | None = None
        self.point_size = point_size
        self.calibration = None  # PhotoCalibration of the photos it was fitted to, if any
        # The photos' focal length in pixels at the resolution they were fitted at (the median
        # fx of the fit's training views), or None (unknown: every view rendered as asked).
        self.fit_focal: float | None = None
        # The descriptors' gradient added into descriptors.grad in place (gather_pyramid's
        # grad_in_place): set by a fit that zeroes gradients in place between steps.
        self.grad_in_place = False
        # Held by the fitter while it updates weights and by renderers while they read them,
        # so the viewer can render while training runs in another thread.
        self.lock = threading.RLock()

    @property
    def config(self) -> NetworkConfig:
        return self.net.cfg

    @staticmethod
    def create(
        points: np.ndarray,
        colors: np.ndarray | None,
        cfg: NetworkConfig | None = None,
        point_size: int = 1,
        seed: int = 0,
        environment: bool = False,
        env_rows: int = ENV_ROWS,
        env_sphere: tuple[np.ndarray, float] | None = None,
        env_radii: np.ndarray | None = None,
    ) -> NeuralPointModel:
        cfg = cfg or NetworkConfig()
        torch.manual_seed(seed)
        desc = init_descriptors(colors, len(points), cfg.descriptor_dim, seed)
        env = torch.zeros(cfg.descriptor_dim, env_rows, 2 * env_rows) if environment else None
        return NeuralPointModel(
            torch.from_numpy(np.asarray(points, np.float32)),
            desc,
            RenderingNetwork(cfg),
            point_size,
            env,
            *(env_sphere or (None, 0.0)),
            None if env_radii is None else torch.from_numpy(env_radii),
        )

    def rasterize(
        self,
        camera: Camera,
        descriptors: torch.Tensor | None = None,
        subset: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Descriptor images for every scale: list of (1, D, H / 2**s, W / 2**s).
        ``descriptors``: (N, D) to gather instead of the model's own (a viewer's bfloat16 copy:
        half the bytes to fetch per pixel); the images come out in its dtype. ``subset``: (K,)
        int32 indices of the points that can land in the view (``engine.points.cull``), a
        superset of them: the same images, fewer points projected."""
        table = self.descriptors if descriptors is None else descriptors
        points = self.points if subset is None else self.points.index_select(0, subset)
        rasters = rasterize_points(
            points, camera, self.point_size, self.config.num_scales, ids=subset
        )
        radius_image = self._radius_image(camera, rasters)
        fills = []
        for level, r in enumerate(rasters):
            fill = None
            if self.environment is not None:
                # The environment only where no point lands: looked up for those pixels alone.
                empty = torch.nonzero(r.index.reshape(-1) < 0)[:, 0]
                if len(empty):
                    dirs = ray_directions(camera, *r.index.shape, level, pixels=empty.cpu())
                    if radius_image is not None:
                        r_lo = _pixels_at(radius_image, *r.index.shape, empty.cpu())
                        dirs = sphere_directions(dirs, camera.position, self.env_center.cpu(), r_lo)
                    elif self.env_radius > 0:
                        dirs = sphere_directions(
                            dirs, camera.position, self.env_center.cpu(), self.env_radius
                        )
                    values = sample_environment(self.environment, dirs).T  # (M, D)
                    # One pass: the dtype of the table and contiguous rows for the fill.
                    fill = (empty, values.to(table.dtype, memory_format=torch.contiguous_format))
            fills.append(fill)
        # gather_pyramid takes the in-place path only for a leaf that requires grad: never
        # for a viewer's bf16 copy.
        in_place = self.grad_in_place
        return [img[None] for img in gather_pyramid(table, rasters, fills, grad_in_place=in_place)]

    def _radius_image(self, camera: Camera, rasters) -> torch.Tensor | None:
        """(h, w) the shaped environment's distance for the rays of the 1/4-resolution pixels
        (``surface_radius``), or None without a shape. Found once per frame on that grid and
        looked up for each level's empty pixels: the rounds' trigonometry for every empty
        pixel of every level cost about as much as rasterizing (the map is smooth: at 512 px a
        1/4-resolution pixel is about a sixth of its texel)."""
        if self.env_radii is None or self.env_radius <= 0 or self.environment is None:
            return None
        level = min(2, len(rasters) - 1)
        h, w = rasters[level].index.shape
        dirs = ray_directions(camera, h, w, level).reshape(3, -1)
        r = surface_radius(
            dirs, camera.position, self.env_center.cpu(), self.env_radius, self.env_radii.cpu()
        )
        return r.reshape(h, w)

    def forward(
        self,
        camera: Camera,
        preview: bool = False,
        runner=None,
        descriptors: torch.Tensor | None = None,
        cull: PhotoCull | None = None,
    ) -> torch.Tensor:
        """Render a view. Returns (3, H, W) float RGB in [0, 1] at the camera's resolution;
        ``preview``: with the fast preview network when there is one; ``runner(net, levels)``:
        runs the network another way (ONNX Runtime), or returns None to use ``net`` itself;
        ``descriptors``: see ``rasterize``; ``cull``: the photo's ``PhotoCull`` when ``camera``
        is a crop of it (a fit's step): only the points it can see are projected."""
        padded = pad_camera(camera, 2 ** (self.config.num_scales - 1))
        net = self.preview if preview and self.preview is not None else self.net
        subset = cull.points_for(padded) if cull is not None else None
        levels = self.rasterize(padded, descriptors, subset)
        out = runner(net, levels) if runner is not None else None
        if out is None:
            out = net(levels)
        return out[0, :, : camera.height, : camera.width]

    def fit_camera(self, camera: Camera, supersample: float = 2.0) -> Camera:
        """The camera ``render`` draws ``camera`` with: the same view at the resolution where
        its focal length is ``fit_focal``, but at most ``supersample`` times the camera's
        resolution per axis; ``camera`` itself within FIT_SCALE_TOLERANCE of it or without a
        ``fit_focal``."""
        if not self.fit_focal or camera.fx <= 0:
            return camera
        ratio = min(self.fit_focal / camera.fx, supersample)
        if abs(ratio - 1.0) < FIT_SCALE_TOLERANCE:
            return camera
        return camera.scaled(ratio)

    def render(
        self,
        camera: Camera,
        preview: bool = False,
        runner=None,
        descriptors: torch.Tensor | None = None,
        supersample: float = 2.0,
        shift: tuple[float, float] = (0.0, 0.0),
    ) -> torch.Tensor:
        """A view as shown to a person: (3, H, W) float RGB in [0, 1] at the camera's
        resolution, drawn at the scale the model was fitted at (``fit_camera``) and resampled.
        The network renders best at the point density per pixel it was trained at: a fit at
        512 px shown at stitch_toy's 800 px scores 26.33 dB drawn at 800 and 28.11 drawn at
        512 and enlarged; a phone capture at 320 px 27.27 drawn at 320 and 28.59 drawn at 512
        and shrunk (session 27). The photos themselves hold little above the fit's scale: at
        800 px, stitch_toy's enlarged from 512 are 44 dB from the originals. Arguments as
        ``forward``; ``supersample``: see ``fit_camera`` (a viewer's 1: never more pixels than
        it shows); ``shift``: (dx, dy) in drawn pixels by which the view is drawn offset, then
        moved back into place (one of PASS_SHIFTS; ``render_passes``)."""
        inner = self.fit_camera(camera, supersample)
        dx, dy = shift
        drawn = replace(inner, cx=inner.cx + dx, cy=inner.cy + dy) if dx or dy else inner
        out = self(drawn, preview, runner, descriptors)
        if drawn is not inner:
            out = shift_image(out, dx, dy)
        if inner is camera:
            return out
        return resample_image(out, camera.width, camera.height)

    def render_passes(self, camera: Camera, passes: int = len(PASS_SHIFTS), **kw) -> torch.Tensor:
        """(3, H, W) the mean of ``render`` at the first ``passes`` of PASS_SHIFTS: a still
        view as the viewer shows it once its passes are done. ``kw``: as ``render``."""
        shifts = PASS_SHIFTS[: max(1, min(passes, len(PASS_SHIFTS)))]
        return torch.stack([self.render(camera, shift=s, **kw).float() for s in shifts]).mean(0)

    # --- persistence -------------------------------------------------------------------------
    def save(self, folder: str | Path, summary: dict | None = None, calibration=None) -> None:
        """Write model.safetensors and config.json atomically (temp file, then rename), with the
        per-photo exposure / white balance of the fit when given (``PhotoCalibration``)."""
        calibration = calibration if calibration is not None else self.calibration
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            "points": self.points.detach().cpu(),
            "descriptors": self.descriptors.detach().cpu(),
        }
        tensors.update({f"net.{k}": v.detach().cpu() for k, v in self.net.state_dict().items()})
        if calibration is not None:
            tensors.update(calibration.state())
        if self.environment is not None:
            tensors["environment"] = self.environment.detach().cpu()
        if self.env_radii is not None:
            tensors["environment_radii"] = self.env_radii.cpu()
        if self.preview is not None:
            tensors.update(
                {f"preview.{k}": v.detach().cpu() for k, v in self.preview.state_dict().items()}
            )
        atomic_save_tensors(tensors, folder / MODEL_FILE)
        config = {
            "network": asdict(self.config),
            "preview_network": asdict(self.preview.cfg) if self.preview is not None else None,
            "point_size": self.point_size,
            "num_points": int(self.points.shape[0]),
            "environment_sphere": {
                "center": self.env_center.tolist(),
                "radius": self.env_radius,
            },
            "photos": calibration.names if calibration is not None else [],
            "fit_focal": self.fit_focal,
            "summary": summary or {},
        }
        atomic_write_text(folder / CONFIG_FILE, json.dumps(config, indent=1))

    @staticmethod
    def load(folder: str | Path, device: torch.device | str = "cpu") -> NeuralPointModel:
        folder = Path(folder)
        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
            tensors = load_file(str(folder / MODEL_FILE), device=str(device))
            cfg = NetworkConfig(**config["network"])
        except FileNotFoundError as e:
            raise NsvError(
                f"{folder}: not a fitted neural scene ({Path(e.filename).name} missing)"
            ) from None
        except Exception as e:
            raise NsvError(
                f"{folder}: cannot read the fitted model ({type(e).__name__}: {e})"
            ) from None
        net = RenderingNetwork(cfg)
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        preview = None
        if config.get("preview_network"):
            try:
                preview = RenderingNetwork(NetworkConfig(**config["preview_network"]))
                preview.load_state_dict(
                    {k[8:]: v for k, v in tensors.items() if k.startswith("preview.")}
                )
            except Exception:
                raise NsvError(
                    f"{folder}: the preview network's weights in {MODEL_FILE} do not match its "
                    f"description in {CONFIG_FILE}"
                ) from None
        model = NeuralPointModel(
            tensors["points"],
            tensors["descriptors"],
            net,
            int(config.get("point_size", 1)),
            tensors.get("environment"),
            *_sphere_of(config, folder),
            _radii_of(tensors, folder),
        )
        model.preview = preview
        model.summary = config.get("summary", {})
        focal = config.get("fit_focal")  # (absent before session 27; nonsense is ignored)
        ok = isinstance(focal, int | float) and not isinstance(focal, bool)
        model.fit_focal = float(focal) if ok and math.isfinite(focal) and focal > 0 else None
        from engine.npbg.photometric import PhotoCalibration

        model.calibration = PhotoCalibration.from_state(tensors, config.get("photos", []))
        if model.calibration is not None:
            model.calibration.requires_grad_(False)
        return model.to(device).eval()  # for viewing until a fit trains it (Fitter.run)


def _pixels_at(image: torch.Tensor, height: int, width: int, pixels: torch.Tensor) -> torch.Tensor:
    """(M,) values of ``image`` (h, w), a coarser grid over the same frame, at ``pixels`` (M,)
    flat indices into a (height, width) grid (the nearest cell under each pixel's centre)."""
    h, w = image.shape
    rows = pixels // width
    cols = pixels - rows * width
    ri = ((rows * 2 + 1) * h // (2 * height)).clamp_(max=h - 1)
    ci = ((cols * 2 + 1) * w // (2 * width)).clamp_(max=w - 1)
    return image.reshape(-1)[ri * w + ci]


def _radii_of(tensors: dict[str, torch.Tensor], folder: Path) -> torch.Tensor | None:
    """The environment's distance map from a model's tensors (models fitted before it existed:
    none, a sphere)."""
    radii = tensors.get("environment_radii")
    if radii is None:
        return None
    if radii.ndim != 2 or not bool(torch.isfinite(radii).all()) or bool((radii <= 0).any()):
        raise NsvError(
            f"{folder / MODEL_FILE}: environment_radii must be a 2-D map of positive distances"
        )
    return radii


def _sphere_of(config: dict, folder: Path) -> tuple[np.ndarray | None, float]:
    """The environment's sphere from a model's config.json (models fitted before it existed:
    none, the map at infinity)."""
    sphere = config.get("environment_sphere") or {}
    try:
        center = np.asarray(sphere.get("center", [0, 0, 0]), np.float32).reshape(3)
        radius = float(sphere.get("radius", 0.0))
    except (TypeError, ValueError):
        raise NsvError(
            f"{folder / CONFIG_FILE}: environment_sphere needs a centre of 3 numbers and a radius"
        ) from None
    if not np.all(np.isfinite(center)) or not np.isfinite(radius) or radius < 0:
        raise NsvError(
            f"{folder / CONFIG_FILE}: environment_sphere's centre and radius must be finite and "
            "the radius 0 or more"
        )
    return center, radius


def pad_camera(camera: Camera, multiple: int) -> Camera:
    """Grow the image to the next multiple (right and bottom), keeping the projection."""
    W = math.ceil(camera.width / multiple) * multiple
    H = math.ceil(camera.height / multiple) * multiple
    if (W, H) == (camera.width, camera.height):
        return camera
    return Camera(
        W,
        H,
        camera.fx,
        camera.fy,
        camera.cx,
        camera.cy,
        camera.world_to_camera,
        camera.near,
        camera.far,
    )
