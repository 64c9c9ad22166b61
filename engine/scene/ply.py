"""PLY point clouds (binary and ASCII) via trimesh, with optional colors and normals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from trimesh.exchange.ply import load_ply

from engine.errors import SceneError
from engine.scene.types import Scene


def load_ply_cloud(path: str | Path) -> Scene:
    """Read the vertex element of a PLY file as a point cloud.

    Colors come from ``red/green/blue`` (uchar 0-255 or float 0-1), normals from ``nx/ny/nz``.
    A mesh PLY loads its vertices. Raises :class:`SceneError` for unreadable or invalid files.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = load_ply(f)
    except OSError as e:
        raise SceneError(path, f"cannot read file ({e.strerror or e})") from None
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as e:
        msg = str(e) or type(e).__name__
        if "unexpected length" in msg:
            msg = "file is truncated (fewer bytes than the header declares)"
        raise SceneError(path, f"not a valid PLY file: {msg}") from None
    except Exception as e:
        raise SceneError(path, f"not a valid PLY file: {type(e).__name__}: {e}") from None

    raw = data.get("metadata", {}).get("_ply_raw", {})
    vertex = raw.get("vertex", {}).get("data") if isinstance(raw.get("vertex"), dict) else None
    points = np.asarray(data.get("vertices", np.zeros((0, 3))), dtype=np.float32).reshape(-1, 3)
    names = _names(vertex)
    if names and len(np.asarray(_field(vertex, names[0]))) != len(points):
        raise SceneError(path, "file is truncated (fewer vertices than the header declares)")

    if "f_dc_0" in names:
        return _gaussian_splats(path, vertex, points)
    colors = _colors(vertex, data)
    normals = _normals(vertex)
    return finish_cloud(path, points, colors, normals)


SH_C0 = 0.28209479177387814  # zeroth spherical-harmonic basis constant, as in 3DGS
MIN_SPLAT_OPACITY = 0.05


def _gaussian_splats(path: Path, vertex, points: np.ndarray) -> Scene:
    """A 3D Gaussian Splatting ``point_cloud.ply``: Gaussian centres as points, the view-
    independent (DC) color as their color. Nearly transparent Gaussians (opacity < 5%, mostly
    floaters the optimiser faded out) are dropped; the count is reported."""
    dc = np.stack([_field(vertex, f"f_dc_{i}") for i in range(3)], 1).astype(np.float32)
    colors = np.clip(0.5 + SH_C0 * dc, 0.0, 1.0)
    keep = np.ones(len(points), bool)
    opacity = _field(vertex, "opacity")
    if opacity is not None:
        with np.errstate(over="ignore"):
            keep = 1.0 / (1.0 + np.exp(-np.asarray(opacity, np.float64))) >= MIN_SPLAT_OPACITY
        if not keep.any():
            raise SceneError(path, "every Gaussian in the file is fully transparent")
    scene = finish_cloud(path, points[keep], colors[keep], None)
    scene.gaussians = True  # type: ignore[attr-defined]
    scene.transparent_dropped = int((~keep).sum())  # type: ignore[attr-defined]
    return scene


def _names(vertex) -> list[str]:
    # trimesh gives a structured array, or a dict of per-property arrays.
    if isinstance(vertex, dict):
        return list(vertex)
    if vertex is not None and getattr(vertex.dtype, "names", None):
        return list(vertex.dtype.names)
    return []


def _field(vertex, *names: str):
    have = _names(vertex)
    for n in names:
        if n in have:
            col = np.asarray(vertex[n])
            return col[:, 0] if col.ndim > 1 else col
    return None


def _colors(vertex, data) -> np.ndarray | None:
    chans = [_field(vertex, c, c[0], "diffuse_" + c) for c in ("red", "green", "blue")]
    if all(c is not None for c in chans):
        rgb = np.stack(chans, 1)
        if np.issubdtype(rgb.dtype, np.integer):
            return (rgb.astype(np.float32) / float(np.iinfo(rgb.dtype).max)).clip(0, 1)
        return rgb.astype(np.float32).clip(0, 1)
    vc = data.get("vertex_colors")
    if vc is not None and len(vc):
        return (np.asarray(vc)[:, :3].astype(np.float32) / 255.0).clip(0, 1)
    return None


def _normals(vertex) -> np.ndarray | None:
    chans = [_field(vertex, n) for n in ("nx", "ny", "nz")]
    if any(c is None for c in chans):
        return None
    n = np.stack(chans, 1).astype(np.float32)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(norm > 1e-12, n / np.maximum(norm, 1e-12), 0).astype(np.float32)


def finish_cloud(path: Path, points, colors, normals, **scene_kw) -> Scene:
    """Validate a loaded cloud: non-empty, and drop (with a count) points with NaN/inf coords."""
    if len(points) == 0:
        raise SceneError(path, "the point cloud is empty (0 points)")
    finite = np.isfinite(points).all(axis=1)
    if not finite.any():
        raise SceneError(path, "every point has NaN or infinite coordinates")
    dropped = int((~finite).sum())
    if dropped:
        points = points[finite]
        colors = None if colors is None else colors[finite]
        normals = None if normals is None else normals[finite]
    scene = Scene(
        points=np.ascontiguousarray(points, dtype=np.float32),
        colors=None if colors is None else np.ascontiguousarray(colors, dtype=np.float32),
        normals=None if normals is None else np.ascontiguousarray(normals, dtype=np.float32),
        source=path,
        name=path.stem if path.suffix else path.name,
        **scene_kw,
    )
    scene.dropped_points = dropped  # type: ignore[attr-defined]
    return scene


def save_ply_cloud(
    path: str | Path,
    points: np.ndarray,
    colors: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    binary: bool = True,
) -> None:
    """Write a point cloud PLY. points (N, 3); colors (N, 3) float in [0, 1]; normals (N, 3)."""
    path = Path(path)
    n = len(points)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    arr = np.empty(n, dtype=fields)
    arr["x"], arr["y"], arr["z"] = np.asarray(points, np.float32).T
    if normals is not None:
        arr["nx"], arr["ny"], arr["nz"] = np.asarray(normals, np.float32).T
    if colors is not None:
        c = (np.clip(colors, 0, 1) * 255 + 0.5).astype(np.uint8)
        arr["red"], arr["green"], arr["blue"] = c.T
    kinds = {"<f4": "float", "u1": "uchar"}
    fmt = "binary_little_endian" if binary else "ascii"
    header = [f"ply\nformat {fmt} 1.0\nelement vertex {n}"]
    header += [f"property {kinds[t]} {name}" for name, t in fields]
    header.append("end_header\n")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write("\n".join(header).encode("ascii"))
        if binary:
            f.write(arr.tobytes())
        else:
            cols = [arr[name] for name, _ in fields]
            fmts = ["%.7g" if t == "<f4" else "%d" for _, t in fields]
            np.savetxt(f, np.stack([c.astype(np.float64) for c in cols], 1), fmt=fmts)
    tmp.replace(path)


__all__ = ["finish_cloud", "load_ply_cloud", "save_ply_cloud"]
