"""Point clouds as LiDAR and scanner tools write them: LAS/LAZ (laspy + lazrs), E57 (pye57),
PCD (ASCII and binary) and XYZ/PTS/TXT text columns.

Georeferenced coordinates (values like 4,000,000) do not fit float32 with centimetre precision,
so coordinates are read as float64 and, when they are large, recentred on the cloud's bounding
box centre before the conversion; the offset is kept as ``scene.origin``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import SceneError
from engine.scene.ply import finish_cloud
from engine.scene.types import Scene

RECENTRE_ABOVE = 1e4  # coordinates beyond this (in any axis) are recentred before float32


def _finish(path: Path, xyz: np.ndarray, colors: np.ndarray | None, classes=None) -> Scene:
    """float64 (N, 3) -> recentred float32 Scene with ``origin`` (the float64 offset)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    origin = np.zeros(3)
    finite = np.isfinite(xyz).all(axis=1)
    if finite.any() and np.abs(xyz[finite]).max() > RECENTRE_ABOVE:
        lo, hi = xyz[finite].min(0), xyz[finite].max(0)
        origin = (lo + hi) / 2
        xyz = xyz - origin
    scene = finish_cloud(path, xyz.astype(np.float32), colors, None, classes)
    scene.origin = origin  # type: ignore[attr-defined]
    return scene


def _intensity_colors(intensity: np.ndarray) -> np.ndarray:
    """Intensity as grey levels, stretched between its 1st and 99th percentiles."""
    i = np.asarray(intensity, dtype=np.float64)
    lo, hi = np.percentile(i, [1, 99]) if len(i) else (0.0, 1.0)
    g = np.clip((i - lo) / max(hi - lo, 1e-9), 0, 1).astype(np.float32)
    return np.repeat(g[:, None], 3, axis=1)


# --- LAS / LAZ ---------------------------------------------------------------------------------
def load_las(path: str | Path) -> Scene:
    """LAS or LAZ: scaled/offset coordinates, RGB (16-bit scaled to [0, 1]) or, without RGB,
    intensity as grey; the classification codes when any point has one (not 0, "never
    classified")."""
    path = Path(path)
    try:
        import laspy
    except ImportError:
        raise SceneError(path, "reading LAS/LAZ needs the laspy package") from None
    try:
        with laspy.open(str(path)) as reader:  # header only: check the sizes first
            h = reader.header
            if not h.are_points_compressed:
                need = h.offset_to_point_data + h.point_count * h.point_format.size
                size = path.stat().st_size
                if need > size:
                    raise SceneError(path, f"file is truncated: the header declares "
                                     f"{h.point_count:,} points ({need:,} bytes), the file has "
                                     f"{size:,}")  # fmt: skip
        las = laspy.read(str(path))
        xyz = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)
        dims = set(las.point_format.dimension_names)
        colors = None
        if {"red", "green", "blue"} <= dims:
            rgb = np.stack([las.red, las.green, las.blue], axis=1).astype(np.float32)
            colors = rgb / (65535.0 if rgb.max(initial=0) > 255 else 255.0)
        elif "intensity" in dims:
            colors = _intensity_colors(las.intensity)
        classes = None
        if "classification" in dims:
            classes = np.asarray(las.classification, dtype=np.uint8)
            classes = classes if classes.any() else None
    except SceneError:
        raise
    except OSError as e:
        raise SceneError(path, f"cannot read file ({e.strerror or 'read error'})") from None
    except Exception as e:
        raise SceneError(path, f"not a valid LAS/LAZ file ({_plain(e)})") from None
    return _finish(path, xyz, colors, classes)


def _plain(e: Exception) -> str:
    """laspy's failure in the file's terms (its own words are often numpy's)."""
    msg = str(e)
    if "Source is empty" in msg:
        return "the file is empty"
    if "too small" in msg or "to small" in msg:
        return "the file is too short to hold a LAS header"
    if "signature" in msg:
        return "it does not start with 'LASF'"
    return "damaged header or point records"


# --- E57 ----------------------------------------------------------------------------------------
E57_MAGIC = b"ASTM-E57"


def load_e57(path: str | Path) -> Scene:
    """E57 (ASTM E2807) scanner files: every scan, placed by its pose, RGB (8 or 16 bit) or
    intensity as grey."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(48)
    if not head:
        raise SceneError(path, "the file is empty")
    if not head.startswith(E57_MAGIC):
        raise SceneError(path, "not an E57 file (it does not start with 'ASTM-E57')")
    try:
        import pye57
    except ImportError:
        raise SceneError(path, "reading E57 needs the pye57 package") from None
    xyz, cols = [], []
    try:
        e57 = pye57.E57(str(path))
        if e57.scan_count == 0:
            raise SceneError(path, "the file holds no scans")
        for i in range(e57.scan_count):
            s = e57.read_scan(i, colors=True, intensity=True, ignore_missing_fields=True)
            if not {"cartesianX", "cartesianY", "cartesianZ"} <= set(s):
                raise SceneError(path, f"scan {i + 1} has no cartesian coordinates")
            xyz.append(np.stack([s["cartesianX"], s["cartesianY"], s["cartesianZ"]], axis=1))
            if {"colorRed", "colorGreen", "colorBlue"} <= set(s):
                rgb = np.stack([s["colorRed"], s["colorGreen"], s["colorBlue"]], 1)
                rgb = rgb.astype(np.float32)
                cols.append(rgb / (65535.0 if rgb.max(initial=0) > 255 else 255.0))
            elif "intensity" in s:
                cols.append(_intensity_colors(s["intensity"]))
            else:
                cols.append(None)
    except SceneError:
        raise
    except Exception as e:
        # libE57's first line says what is wrong; its "(ErrorXyz)" code adds nothing for a user.
        first = (str(e).strip().splitlines() or ["damaged file"])[0]
        first = first.split(" (Error")[0].strip() or "damaged file"
        raise SceneError(path, f"not a readable E57 file ({first})") from None
    colors = None
    if all(c is not None for c in cols):
        colors = np.concatenate(cols)
    return _finish(path, np.concatenate(xyz), colors)


# --- XYZ / PTS / TXT ------------------------------------------------------------------------------
def load_xyz(path: str | Path) -> Scene:
    """Text columns, one point per line, separated by spaces, commas or semicolons:
    x y z | x y z i | x y z r g b | x y z i r g b (PTS) | x y z r g b nx ny nz. A leading
    count line (PTS) and header lines are skipped; colours 0-255 or 0-1."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise SceneError(path, f"cannot read file ({e.strerror or e})") from None
    rows, ncol = [], None
    for lineno, line in enumerate(text.splitlines(), start=1):
        f = line.replace(",", " ").replace(";", " ").split()
        if not f or f[0].startswith(("#", "//")):
            continue
        try:
            vals = [float(v) for v in f]
        except ValueError:
            if rows:
                raise SceneError(path, f"line {lineno}: not numbers: {line[:40]!r}") from None
            continue  # a header line before the data
        if len(vals) == 1 and not rows:
            continue  # PTS: the point count
        if ncol is None:
            if len(vals) < 3:
                raise SceneError(path, f"line {lineno}: fewer than 3 columns (x y z)")
            ncol = len(vals)
        elif len(vals) != ncol:
            raise SceneError(path, f"line {lineno}: {len(vals)} columns, earlier lines {ncol}")
        rows.append(vals)
    if not rows:
        raise SceneError(path, "no points (expected lines of x y z [...])")
    a = np.asarray(rows, dtype=np.float64)
    colors = None
    if ncol in (6, 9):
        colors = a[:, 3:6]
    elif ncol == 7:
        colors = a[:, 4:7]
    elif ncol == 4:
        colors = _intensity_colors(a[:, 3])
    if colors is not None and ncol != 4:
        colors = (colors / (255.0 if colors.max() > 1.0 else 1.0)).clip(0, 1).astype(np.float32)
    return _finish(path, a[:, :3], colors)


# --- PCD -------------------------------------------------------------------------------------------
_PCD_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4",
              ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4", ("U", 8): "u8",
              ("I", 8): "i8"}  # fmt: skip


def load_pcd(path: str | Path) -> Scene:
    """Point Cloud Library PCD, ``DATA ascii`` or ``binary`` (``binary_compressed`` is refused
    with a message): x, y, z and packed ``rgb``/``rgba`` when present."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SceneError(path, f"cannot read file ({e.strerror or e})") from None
    header, pos = {}, 0
    while "DATA" not in header:
        end = raw.find(b"\n", pos)
        if end < 0 or pos > 65536:
            raise SceneError(path, "not a PCD file (no DATA line in the header)")
        line = raw[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *vals = line.split()
        header[key.upper()] = vals
    try:
        fields = header["FIELDS"]
        sizes = [int(v) for v in header["SIZE"]]
        types = header["TYPE"]
        counts = [int(v) for v in header.get("COUNT", ["1"] * len(fields))]
        n = int(header["POINTS"][0]) if "POINTS" in header else int(header["WIDTH"][0])
    except (KeyError, ValueError, IndexError):
        raise SceneError(path, "PCD header needs FIELDS, SIZE, TYPE and POINTS lines") from None
    if not (len(fields) == len(sizes) == len(types) == len(counts)):
        raise SceneError(path, "PCD header: FIELDS, SIZE, TYPE and COUNT differ in length")
    if not {"x", "y", "z"} <= set(fields):
        raise SceneError(path, "PCD has no x/y/z fields")
    try:
        dt = np.dtype([(f, _PCD_TYPES[(t, s)], (c,)) if c > 1 else (f, _PCD_TYPES[(t, s)])
                       for f, s, t, c in zip(fields, sizes, types, counts, strict=True)])  # fmt: skip
    except (KeyError, ValueError):
        raise SceneError(
            path, f"PCD header: unsupported field types {types} / sizes {sizes}"
        ) from None
    kind = header["DATA"][0].lower() if header["DATA"] else ""
    if kind == "binary":
        if n < 0 or pos + n * dt.itemsize > len(raw):
            raise SceneError(path, f"file is truncated: the header declares {n:,} points "
                             f"({n * dt.itemsize:,} bytes of data), the file has "
                             f"{len(raw) - pos:,}")  # fmt: skip
        data = np.frombuffer(raw, dt, count=n, offset=pos)
    elif kind == "ascii":
        lines = raw[pos:].decode("ascii", errors="replace").split("\n")
        lines = [ln for ln in lines if ln.strip()]
        if len(lines) < n:
            raise SceneError(path, f"file is truncated: the header declares {n:,} points, "
                             f"the file holds {len(lines):,}")  # fmt: skip
        data = np.zeros(n, dt)
        for i, ln in enumerate(lines[:n]):
            vals = ln.split()
            try:
                data[i] = tuple(_pcd_value(v, dt[f]) for v, f in zip(vals, fields, strict=True))
            except ValueError:
                raise SceneError(path, f"data line {i + 1}: {ln[:40]!r} does not match the "
                                 "header's fields") from None  # fmt: skip
    elif kind == "binary_compressed":
        raise SceneError(path, "compressed PCD (DATA binary_compressed) is not supported; save "
                         "it as binary or ascii (pcl_convert_pcd_ascii_binary)")  # fmt: skip
    else:
        raise SceneError(path, f"unknown PCD DATA kind {kind!r}")
    xyz = np.stack([data["x"], data["y"], data["z"]], axis=1).astype(np.float64)
    colors = None
    for name in ("rgb", "rgba"):
        if name in fields:
            packed = np.ascontiguousarray(data[name]).view(np.uint32)
            rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)
            colors = rgb.astype(np.float32) / 255.0
    if colors is None and "intensity" in fields:
        colors = _intensity_colors(data["intensity"])
    return _finish(path, xyz, colors)


def _pcd_value(text: str, dtype: np.dtype):
    if dtype.kind == "f":
        return float(text)
    if dtype.kind in "iu":
        return int(float(text))
    raise ValueError(text)


# --- meshes ----------------------------------------------------------------------------------------
MESH_SUFFIXES = (".obj", ".stl", ".glb", ".gltf", ".off")
MESH_SAMPLES = 400_000  # points sampled over the surface (uniform by area)


def load_mesh_as_points(path: str | Path, count: int = MESH_SAMPLES) -> Scene:
    """A mesh (OBJ/STL/GLB/glTF/OFF) sampled uniformly over its surface, with the colour of its
    texture or vertex/face colours where it has one (trimesh), with normals."""
    import trimesh

    path = Path(path)
    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except OSError as e:
        raise SceneError(path, f"cannot read file ({e.strerror or e})") from None
    except Exception:
        raise SceneError(path, "not a readable mesh (damaged or unsupported content)") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise SceneError(path, "the mesh has no triangles")
    if not np.isfinite(mesh.vertices).all():
        raise SceneError(path, "the mesh has NaN or infinite vertex coordinates")
    if mesh.area <= 0:
        raise SceneError(path, "the mesh has no surface area (all triangles degenerate)")
    colors = None
    try:
        pts, faces, rgba = trimesh.sample.sample_surface(mesh, count, sample_color=True, seed=0)
        if rgba is not None and len(rgba):
            colors = np.asarray(rgba, dtype=np.float32)[:, :3] / 255.0
    except Exception:  # no usable colour information: geometry only
        pts, faces = trimesh.sample.sample_surface(mesh, count, seed=0)
    scene = _finish(path, np.asarray(pts), colors)
    if len(scene.points) == len(faces):
        scene.normals = np.asarray(mesh.face_normals[faces], dtype=np.float32)
    return scene
