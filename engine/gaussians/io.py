"""Reading Gaussian splatting files: the original implementation's PLY (also what gsplat,
nerfstudio's splatfacto, Polycam, Luma and SuperSplat export: SH degree 0-3, float, half or
double properties, with or without normals, extra properties ignored; its vertices are read
by engine.scene.ply), antimatter15's ``.splat`` (32 bytes per splat) and Niantic's ``.spz``.
Damaged files raise SceneError with one line in the file's own terms; nothing is allocated
from a count the file cannot hold (the PLY header check compares it with the file's size
first). ``write_3dgs_ply`` writes the original implementation's PLY."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import SceneError
from engine.gaussians.model import SH_C0, Gaussians

_REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1",
             "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]  # fmt: skip
SPLAT_BYTES = 32


def gaussians_from_columns(path: Path, names: list[str], count: int, get) -> Gaussians:
    """The Gaussians of a 3DGS ``point_cloud.ply`` from its vertex columns: ``names`` the
    vertex properties, ``get(name)`` one column (engine.scene.ply reads the file)."""
    missing = [n for n in _REQUIRED if n not in names]
    if missing:
        raise SceneError(path, f"a Gaussian splatting PLY needs the vertex properties "
                               f"{', '.join(missing)}")  # fmt: skip
    n_rest = sum(1 for n in names if n.startswith("f_rest_"))
    if n_rest % 3 or n_rest // 3 not in (0, 3, 8, 15):
        raise SceneError(path, f"{n_rest} f_rest properties: spherical harmonics of degree 0-3 "
                               "have 0, 9, 24 or 45 (three colour channels)")  # fmt: skip
    stack = lambda ns: np.stack([np.asarray(get(n), np.float32) for n in ns], 1)  # noqa: E731
    means = stack(["x", "y", "z"])
    log_scales = stack(["scale_0", "scale_1", "scale_2"])
    quats = stack(["rot_0", "rot_1", "rot_2", "rot_3"])
    logits = np.asarray(get("opacity"), np.float32)
    k = n_rest // 3
    sh = np.empty((count, 1 + k, 3), np.float16)
    sh[:, 0] = stack(["f_dc_0", "f_dc_1", "f_dc_2"])
    for c in range(3):  # f_rest is channel-major: all R coefficients, then G, then B
        for j in range(k):
            sh[:, 1 + j, c] = np.asarray(get(f"f_rest_{c * k + j}"), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        scales = np.exp(log_scales)
        opacities = 1.0 / (1.0 + np.exp(-logits))
    return _finish(path, means, scales, quats, opacities.astype(np.float32), sh)


def load_splat(path: Path) -> Gaussians:
    """antimatter15's ``.splat``: per splat 3 float32 position, 3 float32 scale (linear), 4
    uint8 RGBA, 4 uint8 quaternion (w, x, y, z) stored as (q + 1) * 128."""
    size = path.stat().st_size
    if size == 0 or size % SPLAT_BYTES:
        raise SceneError(path, f"a .splat file holds {SPLAT_BYTES} bytes per splat; this one has "
                               f"{size:,} bytes, not a multiple of {SPLAT_BYTES}")  # fmt: skip
    raw = np.fromfile(path, np.uint8).reshape(-1, SPLAT_BYTES)
    f32 = raw[:, :24].copy().view("<f4")
    means, scales = f32[:, :3], f32[:, 3:6]
    rgba = raw[:, 24:28].astype(np.float32) / 255.0
    quats = (raw[:, 28:32].astype(np.float32) - 128.0) / 128.0
    sh = ((rgba[:, None, :3] - 0.5) / SH_C0).astype(np.float16)
    return _finish(path, means, scales, quats, rgba[:, 3].copy(), sh)


def _finish(path: Path, means, scales, quats, opacities, sh) -> Gaussians:
    """Drop invalid Gaussians (counted), normalize quaternions."""
    norm = np.linalg.norm(quats, axis=1)
    ok = (
        np.isfinite(means).all(1) & np.isfinite(scales).all(1) & (scales > 0).all(1)
        & np.isfinite(quats).all(1) & (norm > 1e-12) & np.isfinite(opacities)
        & np.isfinite(sh[:, 0].astype(np.float32)).all(1)
    )  # fmt: skip
    if not ok.any():
        why = "no Gaussians" if len(ok) == 0 else "every Gaussian is invalid (NaN/Inf values, "
        why += "" if len(ok) == 0 else "zero or negative scales, or zero quaternions)"
        raise SceneError(path, f"the file holds {why}")
    skipped = int((~ok).sum())
    if skipped:
        means, scales, quats, opacities, sh, norm = (
            a[ok] for a in (means, scales, quats, opacities, sh, norm)
        )
    sh = np.nan_to_num(sh, nan=0.0, posinf=0.0, neginf=0.0)  # a bad higher-order term: off
    return Gaussians(
        means=np.ascontiguousarray(means, np.float32),
        scales=np.ascontiguousarray(scales, np.float32),
        quats=np.ascontiguousarray(quats / norm[:, None], np.float32),
        opacities=np.ascontiguousarray(opacities, np.float32),
        sh=np.ascontiguousarray(sh),
        skipped=skipped,
    )


def find_splat_file(folder: Path) -> Path | None:
    """A Gaussian splatting result kept in a capture folder, if any: ``gaussians.ply``, the
    original code's ``point_cloud/iteration_N/point_cloud.ply`` (the latest N), a
    ``point_cloud.ply`` with Gaussians, or a ``.splat`` / ``.spz`` file."""
    import re

    folder = Path(folder)
    if not folder.is_dir():
        return None
    if (folder / "gaussians.ply").is_file():
        return folder / "gaussians.ply"
    its = [
        (int(m.group(1)), d)
        for d in folder.glob("point_cloud/iteration_*")
        if (m := re.fullmatch(r"iteration_(\d+)", d.name)) and (d / "point_cloud.ply").is_file()
    ]
    if its:
        return max(its)[1] / "point_cloud.ply"
    ply = folder / "point_cloud.ply"
    if ply.is_file():
        with open(ply, "rb") as f:
            if b"f_dc_0" in f.read(1 << 16):
                return ply
    splats = sorted([*folder.glob("*.splat"), *folder.glob("*.spz")])
    return splats[0] if splats else None


SPZ_MAGIC = 0x5053474E  # "NGSP"
_SPZ_COLOR_SCALE = 0.15  # the DC colour is stored as 0.5 + 0.15 * coefficient, in 8 bits
# Sign of each SH basis function (degree 1-3, 3DGS order) when y and z flip: .spz stores its
# Gaussians in RUB axes (OpenGL), 3DGS PLYs in RDF (COLMAP), which is what this viewer reads.
_SH_FLIP_YZ = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], np.float32)


def load_spz(path: Path) -> Gaussians:
    """Niantic's ``.spz`` (its published layout, versions 2 and 3): a gzip stream of a 16-byte
    header (magic, version, count, SH degree, fractional bits, flags) and, per attribute,
    positions (24-bit fixed point), alphas, colours, log scales (8 bits each), rotations (v2:
    x, y, z in 8 bits; v3: the smallest three in 10 bits) and SH coefficients (8 bits).
    Converted from its RUB axes to the RDF axes of 3DGS PLYs; degree-4 SH are dropped (the
    renderer stops at 3)."""
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            head = f.read(16)
            if len(head) < 16:
                raise SceneError(path, "not a .spz file: shorter than its 16-byte header")
            magic, version, count, degree, frac, _flags, _ = np.frombuffer(
                head, dtype=[("m", "<u4"), ("v", "<u4"), ("n", "<u4"), ("d", "u1"), ("f", "u1"),
                             ("fl", "u1"), ("r", "u1")])[0]  # fmt: skip
            if magic != SPZ_MAGIC:
                raise SceneError(path, "not a .spz file (it does not start with NGSP)")
            if version not in (2, 3):
                raise SceneError(path, f".spz version {version}: versions 2 and 3 are read")
            if degree > 4:
                raise SceneError(path, f".spz declares SH degree {degree}: at most 4")
            n, dim = int(count), (0, 3, 8, 15, 24)[degree]
            rot_bytes = 4 if version == 3 else 3
            need = n * (9 + 1 + 3 + 3 + rot_bytes + dim * 3)
            # A count the file cannot hold is refused before anything is allocated for it:
            # gzip expands at most ~1032:1.
            if need > 1100 * path.stat().st_size:
                raise SceneError(path, f"the header declares {n:,} Gaussians, more than the "
                                       f"file's {path.stat().st_size:,} bytes can hold")  # fmt: skip
            body = f.read(need)
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, SceneError):
            raise
        raise SceneError(path, "not a .spz file (not a valid gzip stream)") from None
    if len(body) < need:
        raise SceneError(path, f"file is truncated: the header declares {n:,} Gaussians")
    raw = np.frombuffer(body, np.uint8)
    o = 0

    def take(k: int) -> np.ndarray:
        nonlocal o
        out = raw[o : o + n * k].reshape(n, k)
        o += n * k
        return out

    p = take(9).reshape(n, 3, 3).astype(np.int32)
    fixed = p[..., 0] | (p[..., 1] << 8) | (p[..., 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)  # sign of the 24-bit value
    means = (fixed / float(1 << int(frac))).astype(np.float32)
    opacities = take(1)[:, 0].astype(np.float32) / 255.0
    dc = (take(3).astype(np.float32) / 255.0 - 0.5) / _SPZ_COLOR_SCALE
    scales = np.exp(take(3).astype(np.float32) / 16.0 - 10.0)
    quats = _spz_rotations(take(rot_bytes), version)  # (w, x, y, z)
    rest = (take(dim * 3).reshape(n, dim, 3).astype(np.float32) - 128.0) / 128.0
    k = min(dim, 15)
    sh = np.empty((n, 1 + k, 3), np.float16)
    sh[:, 0] = dc
    sh[:, 1:] = rest[:, :k] * _SH_FLIP_YZ[:k, None]
    means[:, 1:] *= -1.0  # RUB -> RDF: y and z flip; the rotation by pi about x follows
    quats[:, 2:] *= -1.0
    return _finish(path, means, scales, quats, opacities, sh)


def _spz_rotations(r: np.ndarray, version: int) -> np.ndarray:
    """(N, 3 or 4) uint8 -> (N, 4) float32 quaternions (w, x, y, z)."""
    n = len(r)
    q = np.zeros((n, 4), np.float32)  # x, y, z, w as .spz orders them
    if version < 3:
        q[:, :3] = r.astype(np.float32) / 127.5 - 1.0
        q[:, 3] = np.sqrt(np.maximum(0.0, 1.0 - (q[:, :3] ** 2).sum(1)))
    else:
        comp = r.astype(np.uint32)
        comp = comp[:, 0] | (comp[:, 1] << 8) | (comp[:, 2] << 16) | (comp[:, 3] << 24)
        largest = (comp >> 30).astype(np.int64)
        total = np.zeros(n, np.float32)
        for i in (3, 2, 1, 0):  # the last stored component sits in the lowest bits
            here = largest != i
            mag = (comp & 511).astype(np.float32) / 511.0 * np.float32(np.sqrt(0.5))
            neg = ((comp >> 9) & 1).astype(bool)
            q[here, i] = np.where(neg, -mag, mag)[here]
            total[here] += q[here, i] ** 2
            comp = np.where(here, comp >> 10, comp)
        q[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1.0 - total))
    return q[:, [3, 0, 1, 2]]


def write_3dgs_ply(
    path: str | Path, means: np.ndarray, colors: np.ndarray, log_scales: np.ndarray,
    quats: np.ndarray, opacity_logits: np.ndarray, sh_rest: np.ndarray | None = None,
) -> Path:  # fmt: skip
    """A binary 3D Gaussian Splatting PLY as the original code writes it (what other viewers
    open), atomically. means, log_scales: (N, 3); colors: (N, 3) base colour in [0, 1] (the
    DC term); quats: (N, 4) w, x, y, z; opacity_logits: (N,); sh_rest: (N, 3 * K) channel-major
    higher-order coefficients, or None (degree 0)."""
    n = len(means)
    cols: list[tuple[str, np.ndarray]] = [("x", means[:, 0]), ("y", means[:, 1]),
                                          ("z", means[:, 2])]  # fmt: skip
    cols += [(f"f_dc_{c}", (colors[:, c] - 0.5) / SH_C0) for c in range(3)]
    if sh_rest is not None:
        cols += [(f"f_rest_{i}", sh_rest[:, i]) for i in range(sh_rest.shape[1])]
    cols += [("opacity", opacity_logits)]
    cols += [(f"scale_{i}", log_scales[:, i]) for i in range(3)]
    cols += [(f"rot_{i}", quats[:, i]) for i in range(4)]
    data = np.empty(n, dtype=[(name, "<f4") for name, _ in cols])
    for name, v in cols:
        data[name] = v
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {n}\n"
    header += "".join(f"property float {name}\n" for name, _ in cols) + "end_header\n"
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header.encode())
        data.tofile(f)
    tmp.replace(path)
    return path
