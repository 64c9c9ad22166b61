"""A user's rendered sequence on disk, denoised frame by frame (``nsv denoise``).

Input per frame ``NNNN`` (sorted by name), in one folder, linear float EXR:

- separate passes: ``color_NNNN.exr``, ``albedo_NNNN.exr``, ``normal_NNNN.exr`` and optionally
  ``depth_NNNN.exr`` (z-depth along the camera's axis, one channel), all one size; or
- one multi-layer EXR per frame with Blender Cycles' pass names: ``Combined`` (or the
  compositor's ``Image``), ``Denoising Albedo``, ``Denoising Normal``, optionally ``Depth``
  (channels named ``[ViewLayer.]Pass.R`` and so on).

An optional ``cameras.json`` (``{"frames": [{"world_to_camera": 4x4, "fx", "fy", "cx", "cy"},
...]}``, one entry per frame, OpenCV convention as ``engine.camera``) lets the temporal
denoiser reproject its previous output with the depth. EXR files are read and written with
Mitsuba's ``Bitmap`` (Mitsuba is already the path tracer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.camera import Camera
from engine.errors import NsvError

PASSES = ("color", "albedo", "normal", "depth")
# Blender Cycles' pass (layer) names for each pass, in order of preference.
BLENDER_PASSES = {
    "color": ("Combined", "Image", "Noisy Image"),
    "albedo": ("Denoising Albedo", "DiffCol"),
    "normal": ("Denoising Normal", "Normal"),
    "depth": ("Depth", "Z"),
}
_COMPONENTS = {"color": "RGB", "albedo": "RGB", "normal": "XYZ", "depth": "Z"}


@dataclass
class FramePasses:
    """One frame: color, albedo, normal (H, W, 3) float32, depth (H, W) or None; ``zeroed``
    counts the non-finite values that were set to 0."""

    name: str
    color: np.ndarray
    albedo: np.ndarray
    normal: np.ndarray
    depth: np.ndarray | None
    zeroed: int = 0


def _mitsuba():
    import mitsuba as mi

    if mi.variant() is None:
        mi.set_variant("scalar_rgb")  # Bitmap I/O works in any variant
    return mi


def read_exr(path: Path) -> dict[str, np.ndarray]:
    """Every channel of an EXR file by name -> (H, W) float32."""
    mi = _mitsuba()
    try:
        bmp = mi.Bitmap(str(path))
    except Exception:
        raise NsvError(f"{path}: not a readable EXR file") from None
    s = bmp.struct_()
    arr = np.array(bmp, dtype=np.float32, copy=False)
    if arr.ndim == 2:
        arr = arr[..., None]
    return {s[i].name: arr[..., i] for i in range(arr.shape[-1])}


def write_exr(path: Path, rgb: np.ndarray) -> None:
    """(H, W, 3) linear float -> an RGB EXR, written atomically."""
    mi = _mitsuba()
    tmp = path.with_name(path.stem + ".tmp.exr")
    mi.Bitmap(np.ascontiguousarray(rgb, np.float32)).write(str(tmp))
    tmp.replace(path)


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def find_frames(folder: Path) -> list[tuple[str, dict[str, Path]]]:
    """[(frame name, {pass: file})] sorted by name: separate pass files when there are
    ``color_*.exr`` files, else one multi-layer EXR per frame (every pass maps to it)."""
    if not folder.is_dir():
        raise NsvError(f"{folder}: no such folder")
    colors = sorted(folder.glob("color_*.exr"), key=lambda p: _natural(p.name))
    if colors:
        frames = []
        for c in colors:
            name = c.stem[len("color_") :]
            files = {"color": c}
            for p in PASSES[1:]:
                f = folder / f"{p}_{name}.exr"
                if f.is_file():
                    files[p] = f
                elif p != "depth":
                    raise NsvError(f"{folder}: frame {name} has no {f.name}")
            frames.append((name, files))
        return frames
    layered = [
        p for p in folder.glob("*.exr") if not p.name.startswith(tuple(f"{q}_" for q in PASSES))
    ]
    if not layered:
        raise NsvError(f"{folder}: no frames (color_NNNN.exr with albedo_ and normal_ files, or "
                       "multi-layer EXRs with Combined, Denoising Albedo and Denoising Normal)")  # fmt: skip
    return [
        (p.stem, dict.fromkeys(PASSES, p)) for p in sorted(layered, key=lambda p: _natural(p.name))
    ]


def _pass_from_layers(path: Path, channels: dict[str, np.ndarray], kind: str) -> np.ndarray | None:
    """A pass of a multi-layer EXR by Blender's names; None when the file has none of them."""
    by_layer: dict[str, dict[str, np.ndarray]] = {}
    for full, data in channels.items():
        parts = full.split(".")
        if len(parts) >= 2:
            by_layer.setdefault(parts[-2], {})[parts[-1]] = data
    for layer in BLENDER_PASSES[kind]:
        comps = by_layer.get(layer)
        if comps is None:
            continue
        for names in (_COMPONENTS[kind], "RGB", "V", "Y", "R"):
            if all(c in comps for c in names):
                planes = [comps[c] for c in names]
                return (
                    planes[0]
                    if kind == "depth"
                    else np.stack(planes + planes[:1] * (3 - len(planes)), -1)
                )
        raise NsvError(f"{path}: the {layer!r} pass has channels {sorted(comps)}, expected "
                       f"{', '.join(_COMPONENTS[kind])}")  # fmt: skip
    return None


def _pass_from_file(path: Path, channels: dict[str, np.ndarray], kind: str) -> np.ndarray:
    """A pass stored in its own file: R, G, B (or X, Y, Z; or the first three channels); depth:
    one channel (Z, Y, R or the first)."""
    if kind == "depth":
        for c in ("Z", "Y", "R", "V"):
            if c in channels:
                return channels[c]
        return next(iter(channels.values()))
    for names in ("RGB", "XYZ"):
        if all(c in channels for c in names):
            return np.stack([channels[c] for c in names], -1)
    planes = list(channels.values())
    if len(planes) < 3:
        raise NsvError(f"{path}: {len(planes)} channel(s) ({', '.join(channels)}); a {kind} pass "
                       "needs three")  # fmt: skip
    return np.stack(planes[:3], -1)


def load_frame(name: str, files: dict[str, Path], size: tuple[int, int] | None) -> FramePasses:
    """Read one frame's passes; ``size`` (W, H) the sequence's (None for the first frame)."""
    loaded: dict[str, np.ndarray | None] = {}
    cache: dict[Path, dict[str, np.ndarray]] = {}
    layered = files["color"] == files.get("albedo")  # one multi-layer file for every pass
    for kind in PASSES:
        path = files.get(kind)
        if path is None:
            loaded[kind] = None
            continue
        if path not in cache:
            cache[path] = read_exr(path)
        channels = cache[path]
        if layered:
            data = _pass_from_layers(path, channels, kind)
            if data is None and kind != "depth":
                layers = sorted({c.split(".")[-2] for c in channels if "." in c})
                raise NsvError(f"{path}: no {' / '.join(BLENDER_PASSES[kind][:2])!r} pass "
                               f"(layers: {', '.join(layers) or 'none'})")  # fmt: skip
        else:
            data = _pass_from_file(path, channels, kind)
        if data is not None:
            h, w = data.shape[:2]
            want = size
            if want is None and kind != "color":  # the first frame: its color pass sets the size
                want = (loaded["color"].shape[1], loaded["color"].shape[0])
            if want is not None and (w, h) != tuple(want):
                raise NsvError(f"{path}: {kind} is {w}×{h}, the sequence is {want[0]}×{want[1]}")
        loaded[kind] = data
    zeroed = 0
    for kind, data in loaded.items():
        if data is not None:
            bad = ~np.isfinite(data)
            zeroed += int(bad.sum())
            loaded[kind] = np.where(bad, 0.0, data).astype(np.float32)
    return FramePasses(
        name, loaded["color"], loaded["albedo"], loaded["normal"], loaded["depth"], zeroed
    )


def load_cameras(folder: Path, count: int, size: tuple[int, int]) -> list[Camera] | None:
    """The frames' cameras from ``folder/cameras.json``, or None when there is no such file."""
    path = folder / "cameras.json"
    if not path.is_file():
        return None
    try:
        frames = json.loads(path.read_text())["frames"]
        cams = [
            Camera(
                size[0],
                size[1],
                float(f["fx"]),
                float(f["fy"]),
                float(f["cx"]),
                float(f["cy"]),
                np.asarray(f["world_to_camera"], np.float64).reshape(4, 4),
            )
            for f in frames
        ]
    except (ValueError, KeyError, TypeError, IndexError):
        raise NsvError(f"{path}: expected {{\"frames\": [{{\"world_to_camera\": 4x4, \"fx\", \"fy\", "
                       "\"cx\", \"cy\"}, ...]}") from None  # fmt: skip
    if len(cams) != count:
        raise NsvError(f"{path}: {len(cams)} cameras for {count} frames")
    if not all(np.isfinite(c.world_to_camera).all() for c in cams):
        raise NsvError(f"{path}: a world_to_camera matrix is not finite")
    return cams


def denoise_sequence(
    folder: Path,
    denoiser: str = "ours",
    spp: int = 16,
    still: bool = False,
    model_dir: Path | None = None,
    device="cpu",
) -> Iterator[tuple[FramePasses, np.ndarray]]:
    """Yields (frame, denoised (H, W, 3) linear) in order. ``denoiser``: "ours" (the bundled
    temporal model: OIDN's spatial result + its reprojected previous output) or "oidn" (each
    frame alone); ``spp``: samples per pixel of the inputs (the model trusts the input more as
    it grows); ``still``: the camera did not move (the previous output is reused unwarped).
    With cameras and depth the previous output is reprojected; without either, and not
    ``still``, each frame is denoised on its own (no history carried: it would ghost)."""
    frames = find_frames(folder)
    first = load_frame(*frames[0], None)
    size = (first.color.shape[1], first.color.shape[0])
    cams = load_cameras(folder, len(frames), size)
    if denoiser == "oidn":
        from engine.denoise.oidn import denoise_hwc

        for i, (name, files) in enumerate(frames):
            f = first if i == 0 else load_frame(name, files, size)
            yield f, denoise_hwc(f.color, f.albedo, f.normal)
        return
    from engine.assets import DENOISER
    from engine.denoise.temporal import TemporalDenoiser
    from engine.denoise.train import load_denoiser

    # Without cameras (or depth) the history cannot follow the camera: reused only when
    # ``still``, else each frame alone.
    run = TemporalDenoiser(load_denoiser(model_dir or DENOISER, device), unwarped_history=still)
    for i, (name, files) in enumerate(frames):
        f = first if i == 0 else load_frame(name, files, size)
        camera = cams[i] if cams is not None else None
        yield f, run(f.color, f.albedo, f.normal, f.depth, camera, spp)
