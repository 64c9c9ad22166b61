"""PLY point clouds (binary and ASCII) via trimesh, with optional colors and normals."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import SceneError
from engine.scene.types import Scene


def load_ply_cloud(path: str | Path) -> Scene:
    """Read the vertex element of a PLY file as a point cloud.

    Colors come from ``red/green/blue`` (uchar 0-255 or float 0-1), normals from ``nx/ny/nz``.
    A mesh PLY loads its vertices. Raises :class:`SceneError` for unreadable or invalid files.
    """
    path = Path(path)
    try:
        header = parse_ply_header(path)
        declared = _vertex_count(header)
        vertex_props = {p[0] for e in header[1] if e[0] == "vertex" for p in e[2]}
        if "f_dc_0" in vertex_props:  # 3D Gaussian Splatting
            return gaussians_scene(path, read_gaussians_ply(path, header))
        vertex = _binary_vertices(path, header)
        if vertex is not None:  # the common case, read straight into numpy
            points = np.stack([vertex[c] for c in ("x", "y", "z")], 1).astype(np.float32)
            return finish_cloud(path, points, _colors(vertex, {}), _normals(vertex))
        from trimesh.exchange.ply import load_ply  # here: importing trimesh takes 0.7 s

        with open(path, "rb") as f:
            data = load_ply(f)
    except SceneError:
        raise
    except OSError as e:
        raise SceneError(path, f"cannot read file ({e.strerror or e})") from None
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as e:
        msg = str(e) or type(e).__name__
        if "unexpected length" in msg:
            msg = "file is truncated (fewer bytes than the header declares)"
        # An ASCII file: find the row and the value that is wrong (the reader's own words,
        # "string or file could not be read to its end", say neither).
        _ascii_problem(path, header)
        raise SceneError(path, f"not a valid PLY file: {msg}") from None
    except Exception as e:
        raise SceneError(path, f"not a valid PLY file: {type(e).__name__}: {e}") from None

    raw = data.get("metadata", {}).get("_ply_raw", {})
    vertex = raw.get("vertex", {}).get("data") if isinstance(raw.get("vertex"), dict) else None
    points = np.asarray(data.get("vertices", np.zeros((0, 3))), dtype=np.float32).reshape(-1, 3)
    names = _names(vertex)
    if len(points) != declared or (
        names and len(np.asarray(_field(vertex, names[0]))) != len(points)
    ):
        raise SceneError(
            path,
            f"file is truncated: the header declares {declared:,} vertices, "
            f"the file holds {len(points):,}",
        )

    colors = _colors(vertex, data)
    normals = _normals(vertex)
    return finish_cloud(path, points, colors, normals)


# PLY property types as numpy dtypes (their sizes are what the header check needs).
PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8", "half": "f2",
    "float16": "f2",
}  # fmt: skip
MAX_HEADER = 1 << 20
_INVALID = "not a valid PLY file: "


def check_ply_header(path: Path) -> int:
    """Check a PLY header in the file's own terms before any reader allocates for it: the magic,
    the format, each element and property line, x/y/z on the vertex element, and (binary
    files) that the file is as long as the vertex count declares. Returns that count."""
    return _vertex_count(parse_ply_header(path))


def read_gaussians_ply(path: Path, header=None):
    """A 3D Gaussian Splatting PLY's Gaussians (engine.gaussians.Gaussians): its vertices read
    here, binary or ASCII, and turned into Gaussians by engine.gaussians.io."""
    from engine.gaussians.io import gaussians_from_columns

    header = header or parse_ply_header(path)
    fmt, elements, body_start = header
    vertex = next(e for e in elements if e[0] == "vertex")
    names, count = [p[0] for p in vertex[2]], vertex[1]
    for name, types in vertex[2]:
        if len(types) != 1:
            raise SceneError(path, f"vertex property {name!r} has an unsupported type "
                                   f"{' '.join(types)}")  # fmt: skip
    if fmt == "ascii":
        cols = read_ascii_rows(path, body_start, count, len(names))
        return gaussians_from_columns(path, names, count, lambda n: cols[:, names.index(n)])
    data = _binary_vertices(path, header)
    if data is None:
        raise SceneError(path, "the vertex element must come first in a Gaussian splatting PLY")
    return gaussians_from_columns(path, names, count, lambda n: data[n])


def _ascii_problem(path: Path, header) -> None:
    """Raise SceneError naming the first bad vertex row of an ASCII PLY whose vertex element
    comes first with scalar properties (else return: the caller words the error)."""
    fmt, elements, body_start = header
    if fmt != "ascii" or not elements or elements[0][0] != "vertex":
        return
    if any(len(types) != 1 for _, types in elements[0][2]):
        return
    read_ascii_rows(path, body_start, elements[0][1], len(elements[0][2]))


def read_ascii_rows(path: Path, body_start: int, count: int, n_props: int) -> np.ndarray:
    """(count, n_props) float32 from an ASCII PLY body; a bad row is named."""
    out = np.empty((count, n_props), np.float32)
    with open(path, "rb") as f:
        f.seek(body_start)
        for i in range(count):
            line = f.readline()
            if not line:
                raise SceneError(path, f"file is truncated: the header declares {count:,} "
                                       f"vertices, the file holds {i:,}")  # fmt: skip
            fields = line.split()
            if len(fields) != n_props:
                raise SceneError(path, f"vertex row {i} has {len(fields)} values, the header "
                                       f"declares {n_props}")  # fmt: skip
            try:
                out[i] = [float(v) for v in fields]
            except ValueError:
                bad = next(v for v in fields if not _is_number(v))
                raise SceneError(path, f"vertex row {i}: {bad.decode(errors='replace')[:20]!r} "
                                       "is not a number") from None  # fmt: skip
    return out


def _is_number(v: bytes) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _vertex_count(header) -> int:
    return next(e for e in header[1] if e[0] == "vertex")[1]


def parse_ply_header(path: Path):
    """The checked header (see check_ply_header): (format, elements, body_start), elements as
    [name, count, [(property, type names)]] (a list property's types: [count type, item
    type])."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(min(size, MAX_HEADER))
    if not head.startswith(b"ply"):
        raise SceneError(path, "not a valid PLY file: it does not start with 'ply'")
    end = head.find(b"end_header")
    if end < 0:
        raise SceneError(path, _INVALID + "PLY header has no 'end_header' line")
    body_start = head.find(b"\n", end) + 1
    lines = head[:end].decode("ascii", errors="replace").splitlines()[1:]
    fmt, elements = None, []  # [name, count, [(name, size or None for lists)]]
    for i, line in enumerate(lines, start=2):
        f = line.split()
        if not f or f[0] in ("comment", "obj_info"):
            continue
        if f[0] == "format":
            if len(f) < 2 or f[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise SceneError(path, _INVALID + f"bad 'format' line {i} in the PLY header")
            fmt = f[1]
        elif f[0] == "element":
            if len(f) != 3 or not f[2].isdigit():
                raise SceneError(path, _INVALID + f"bad 'element' line {i} in the PLY header")
            elements.append([f[1], int(f[2]), []])
        elif f[0] == "property":
            if not elements:
                raise SceneError(
                    path, _INVALID + f"PLY header line {i}: property before any element"
                )
            if len(f) == 5 and f[1] == "list":
                types, name, prop_size = f[2:4], f[4], None
            elif len(f) == 3:
                types, name = f[1:2], f[2]
                prop_size = np.dtype(PLY_TYPES[f[1]]).itemsize if f[1] in PLY_TYPES else None
            else:
                raise SceneError(path, _INVALID + f"bad 'property' line {i} in the PLY header")
            for t in types:
                if t not in PLY_TYPES:
                    raise SceneError(path, _INVALID + f"unknown PLY property type {t!r} (line {i})")
            elements[-1][2].append((name, prop_size, types))
        else:
            raise SceneError(path, _INVALID + f"unknown PLY header line {i}: {line[:40]!r}")
    if fmt is None:
        raise SceneError(path, _INVALID + "PLY header has no 'format' line")
    vertex = next((e for e in elements if e[0] == "vertex"), None)
    if vertex is None:
        raise SceneError(path, _INVALID + "PLY header has no 'vertex' element")
    names = {p[0] for p in vertex[2]}
    if not {"x", "y", "z"} <= names:
        raise SceneError(
            path, _INVALID + "PLY header has no x/y/z properties on the vertex element"
        )
    if fmt == "ascii":
        # Every value takes at least two characters ("0 "): a count beyond that is corrupt.
        if vertex[1] * len(vertex[2]) * 2 > size:
            raise SceneError(path, f"file is truncated: the header declares {vertex[1]:,} vertices")
    else:
        # Fixed-size elements before (and including) the vertices must fit in the file.
        need = body_start
        for name, count, props in elements:
            if any(p[1] is None for p in props):
                break  # a list property: sizes vary, the reader checks as it goes
            need += count * sum(p[1] for p in props)
            if name == "vertex":
                break
        if need > size:
            raise SceneError(
                path,
                f"file is truncated: the header declares {vertex[1]:,} vertices "
                f"({need:,} bytes), the file has {size:,} bytes",
            )
    return fmt, [(n, c, [(p[0], p[2]) for p in props]) for n, c, props in elements], body_start


def gaussians_scene(path: Path, g) -> Scene:
    """A splatting file's Gaussians (engine.gaussians.Gaussians) as a Scene: their centres as
    the points, the view-independent colour as the points' colour."""
    return Scene(points=g.means, colors=g.base_colors(), source=path, name=path.stem,
                 gaussians=g)  # fmt: skip


def _binary_vertices(path: Path, header) -> np.ndarray | None:
    """The vertex element of a binary PLY whose vertices come first with scalar properties,
    as a structured array (what point clouds and most meshes are); None for the rest (the
    general reader handles them). The header check already matched the file's size."""
    fmt, elements, body_start = header
    if fmt == "ascii" or not elements or elements[0][0] != "vertex":
        return None
    props = elements[0][2]
    if any(len(types) != 1 for _, types in props):
        return None
    order = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(n, order + PLY_TYPES[t[0]]) for n, t in props])
    count = elements[0][1]
    data = np.fromfile(path, dtype=dtype, count=count, offset=body_start)
    if len(data) != count:
        raise SceneError(path, f"file is truncated: the header declares {count:,} vertices, "
                               f"the file holds {len(data):,}")  # fmt: skip
    return data


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


def finish_cloud(path: Path, points, colors, normals, classes=None, **scene_kw) -> Scene:
    """Validate a loaded cloud: non-empty, and drop (with a count) points with NaN/inf coords
    (and their colors, normals and classes)."""
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
        classes = None if classes is None else classes[finite]
    scene = Scene(
        points=np.ascontiguousarray(points, dtype=np.float32),
        colors=None if colors is None else np.ascontiguousarray(colors, dtype=np.float32),
        normals=None if normals is None else np.ascontiguousarray(normals, dtype=np.float32),
        classes=None if classes is None else np.ascontiguousarray(classes, dtype=np.uint8),
        source=path,
        name=path.stem if path.suffix else path.name,
        **scene_kw,
    )
    scene.dropped_points = dropped
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
