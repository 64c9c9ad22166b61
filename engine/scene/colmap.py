"""COLMAP sparse reconstructions (``cameras``, ``images``, ``points3D``; binary or text).

COLMAP's world-to-camera pose and pixel convention are ours (see ``engine.camera``), so cameras
convert without flips. Lens distortion parameters are read but ignored: undistorted models
(PINHOLE / SIMPLE_PINHOLE) are what neural rendering expects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.camera import Camera, rotmat_to_qvec
from engine.errors import SceneError
from engine.scene.ply import finish_cloud
from engine.scene.types import RegisteredView, Scene

# model id -> (name, number of parameters)
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
}
MODEL_IDS = {name: (mid, n) for mid, (name, n) in CAMERA_MODELS.items()}


@dataclass
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray

    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy); single-focal models repeat f."""
        p = self.params
        if self.model in (
            "SIMPLE_PINHOLE",
            "SIMPLE_RADIAL",
            "RADIAL",
            "SIMPLE_RADIAL_FISHEYE",
            "RADIAL_FISHEYE",
        ):
            return float(p[0]), float(p[0]), float(p[1]), float(p[2])
        return float(p[0]), float(p[1]), float(p[2]), float(p[3])


@dataclass
class ColmapImage:
    id: int
    qvec: np.ndarray
    tvec: np.ndarray
    camera_id: int
    name: str


@dataclass
class ColmapModel:
    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    xyz: np.ndarray  # (N, 3) float64
    rgb: np.ndarray  # (N, 3) uint8
    error: np.ndarray  # (N,) float64


# ---------------------------------------------------------------------------------------------
# locating the model


def find_model_dir(path: Path) -> tuple[Path, str]:
    """The folder holding the model files and their extension ('.bin' or '.txt')."""
    candidates = [path, path / "sparse" / "0", path / "sparse", path / "colmap" / "sparse" / "0"]
    for d in candidates:
        for ext in (".bin", ".txt"):
            if (d / f"images{ext}").is_file() or (d / f"cameras{ext}").is_file():
                missing = [
                    n for n in ("cameras", "images", "points3D") if not (d / f"{n}{ext}").is_file()
                ]
                if missing:
                    raise SceneError(
                        d / f"{missing[0]}{ext}", "missing from the COLMAP model folder"
                    )
                return d, ext
    raise SceneError(
        path, "not a COLMAP model: no cameras/images/points3D (.bin or .txt) here or in sparse/0"
    )


def find_images_dir(root: Path, model_dir: Path) -> Path | None:
    for d in (
        root / "images",
        model_dir / "images",
        model_dir.parent / "images",
        model_dir.parent.parent / "images",
    ):
        if d.is_dir():
            return d
    return None


# ---------------------------------------------------------------------------------------------
# reading


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.buf = path.read_bytes()
        self.pos = 0

    def read(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise SceneError(self.path, "file is truncated")
        out = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return out

    def count(self, min_item_bytes: int, what: str) -> int:
        """A uint64 item count, checked against the bytes left before anything is allocated."""
        n = self.read("Q")[0]
        room = (len(self.buf) - self.pos) // min_item_bytes
        if n > room:
            raise SceneError(
                self.path,
                f"declares {n:,} {what} but the file has room for at most {room:,} "
                "(truncated or corrupt)",
            )
        return n

    def read_string(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise SceneError(self.path, "file is truncated (unterminated image name)")
        s = self.buf[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return s


def read_cameras_binary(path: Path) -> dict[int, ColmapCamera]:
    r = _Reader(path)
    cams = {}
    for _ in range(r.count(48, "cameras")):  # ids, size and at least 3 parameters
        cid, model_id, w, h = r.read("iiQQ")
        if model_id not in CAMERA_MODELS:
            raise SceneError(path, f"unknown camera model id {model_id}")
        name, n = CAMERA_MODELS[model_id]
        cams[cid] = ColmapCamera(cid, name, int(w), int(h), np.array(r.read("d" * n)))
    return cams


def read_images_binary(path: Path) -> dict[int, ColmapImage]:
    r = _Reader(path)
    images = {}
    for _ in range(r.count(73, "images")):  # pose, camera, name, point count
        iid, qw, qx, qy, qz, tx, ty, tz, cid = r.read("idddddddi")
        name = r.read_string()
        n2d = r.read("Q")[0]
        r.pos += n2d * 24  # x, y (double), point3D_id (int64): not needed to view the scene
        if r.pos > len(r.buf):
            raise SceneError(path, "file is truncated")
        images[iid] = ColmapImage(
            iid, np.array([qw, qx, qy, qz]), np.array([tx, ty, tz]), cid, name
        )
    return images


def read_points3d_binary(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = _Reader(path)
    n = r.count(51, "points")  # id, position, color, error, track length
    xyz = np.empty((n, 3))
    rgb = np.empty((n, 3), np.uint8)
    err = np.empty(n)
    for i in range(n):
        _pid, x, y, z, cr, cg, cb, e, track_len = r.read("QdddBBBdQ")
        xyz[i] = (x, y, z)
        rgb[i] = (cr, cg, cb)
        err[i] = e
        r.pos += track_len * 8
    if r.pos > len(r.buf):
        raise SceneError(path, "file is truncated")
    return xyz, rgb, err


def _text_lines(path: Path):
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def read_cameras_text(path: Path) -> dict[int, ColmapCamera]:
    cams = {}
    for line in _text_lines(path):
        f = line.split()
        try:
            cid, model, w, h = int(f[0]), f[1], int(f[2]), int(f[3])
            params = np.array([float(x) for x in f[4:]])
        except (ValueError, IndexError):
            raise SceneError(path, f"malformed camera line: {line[:60]!r}") from None
        if model not in MODEL_IDS or len(params) != MODEL_IDS[model][1]:
            raise SceneError(path, f"camera {cid}: bad model {model!r} or parameter count")
        cams[cid] = ColmapCamera(cid, model, w, h, params)
    return cams


def read_points3d_text(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xyz, rgb, err = [], [], []
    for line in _text_lines(path):
        f = line.split()
        try:
            xyz.append([float(f[1]), float(f[2]), float(f[3])])
            rgb.append([int(f[4]), int(f[5]), int(f[6])])
            err.append(float(f[7]))
        except (ValueError, IndexError):
            raise SceneError(path, f"malformed point line: {line[:60]!r}") from None
    return (
        np.array(xyz, dtype=np.float64).reshape(-1, 3),
        np.array(rgb, dtype=np.uint8).reshape(-1, 3),
        np.array(err, dtype=np.float64),
    )


def read_model(path: str | Path) -> ColmapModel:
    """Read a COLMAP model from a scene folder or the model folder itself."""
    model_dir, ext = find_model_dir(Path(path))
    try:
        if ext == ".bin":
            cams = read_cameras_binary(model_dir / "cameras.bin")
            images = read_images_binary(model_dir / "images.bin")
            xyz, rgb, err = read_points3d_binary(model_dir / "points3D.bin")
        else:
            cams = read_cameras_text(model_dir / "cameras.txt")
            images = read_images_text(model_dir / "images.txt")
            xyz, rgb, err = read_points3d_text(model_dir / "points3D.txt")
    except OSError as e:
        raise SceneError(model_dir, f"cannot read COLMAP model ({e.strerror or e})") from None
    for im in images.values():
        if im.camera_id not in cams:
            raise SceneError(
                model_dir, f"image {im.name!r} refers to missing camera {im.camera_id}"
            )
    return ColmapModel(cams, images, xyz, rgb, err)


def read_images_text(path: Path) -> dict[int, ColmapImage]:
    # Image lines have 10+ fields and start with an integer id; 2D point lines have triples.
    images = {}
    lines = [
        ln
        for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if not ln.startswith("#")
    ]
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        f = line.split(maxsplit=9)
        try:
            iid = int(f[0])
            q = np.array([float(x) for x in f[1:5]])
            t = np.array([float(x) for x in f[5:8]])
            cid, name = int(f[8]), f[9]
        except (ValueError, IndexError):
            raise SceneError(path, f"malformed image line: {line[:60]!r}") from None
        images[iid] = ColmapImage(iid, q, t, cid, name)
        i += 2  # skip the POINTS2D line that follows every image line
    return images


DENSE_CLOUD = "points.ply"


def load_colmap(path: str | Path, dense: bool = True) -> Scene:
    """A COLMAP folder as a Scene: its 3D points (with colors) and its registered views.

    A ``points.ply`` next to the model (written by ``nsv import``'s densification) replaces the
    sparse points when ``dense`` is true."""
    root = Path(path)
    model = read_model(root)
    model_dir, _ = find_model_dir(root)
    images_dir = find_images_dir(root, model_dir)
    views = []
    for im in sorted(model.images.values(), key=lambda im: im.name):
        c = model.cameras[im.camera_id]
        fx, fy, cx, cy = c.intrinsics()
        cam = Camera.from_colmap(c.width, c.height, fx, fy, cx, cy, im.qvec, im.tvec)
        img = images_dir / im.name if images_dir is not None else None
        views.append(RegisteredView(im.name, cam, img))
    up = np.zeros(3)
    for v in views:
        up -= v.camera.R[1]  # camera "down" axis, in world coordinates, negated
    up = up / np.linalg.norm(up) if np.linalg.norm(up) > 1e-9 else np.array([0.0, 1.0, 0.0])
    dense_ply = root / DENSE_CLOUD
    if dense and dense_ply.is_file():
        from engine.scene.ply import load_ply_cloud

        cloud = load_ply_cloud(dense_ply)
        scene = finish_cloud(root, cloud.points, cloud.colors, cloud.normals, views=views, up=up)
        scene.sparse_points = len(model.xyz)  # type: ignore[attr-defined]
        return scene
    pts = model.xyz.astype(np.float32)
    colors = model.rgb.astype(np.float32) / 255.0
    return finish_cloud(root, pts, colors, None, views=views, up=up)


# ---------------------------------------------------------------------------------------------
# writing (used by tests and importers)


def write_model(
    out_dir: str | Path,
    cameras: list[ColmapCamera],
    images: list[ColmapImage],
    xyz: np.ndarray,
    rgb: np.ndarray,
    binary: bool = True,
) -> None:
    """Write a COLMAP model (no 2D-3D correspondences, empty tracks)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    err = np.zeros(len(xyz))
    if binary:
        with open(out / "cameras.bin", "wb") as f:
            f.write(struct.pack("<Q", len(cameras)))
            for c in cameras:
                mid, n = MODEL_IDS[c.model]
                f.write(struct.pack("<iiQQ", c.id, mid, c.width, c.height))
                f.write(struct.pack("<" + "d" * n, *c.params))
        with open(out / "images.bin", "wb") as f:
            f.write(struct.pack("<Q", len(images)))
            for im in images:
                f.write(struct.pack("<idddddddi", im.id, *im.qvec, *im.tvec, im.camera_id))
                f.write(im.name.encode() + b"\x00")
                f.write(struct.pack("<Q", 0))
        with open(out / "points3D.bin", "wb") as f:
            f.write(struct.pack("<Q", len(xyz)))
            for i, (p, c) in enumerate(zip(xyz, rgb, strict=True)):
                f.write(struct.pack("<QdddBBBdQ", i + 1, *p, *c, err[i], 0))
    else:
        with open(out / "cameras.txt", "w") as f:
            f.write("# Camera list with one line of data per camera:\n")
            for c in cameras:
                f.write(
                    f"{c.id} {c.model} {c.width} {c.height} {' '.join(repr(float(p)) for p in c.params)}\n"
                )
        with open(out / "images.txt", "w") as f:
            f.write("# Image list with two lines of data per image:\n")
            for im in images:
                vals = " ".join(repr(float(v)) for v in (*im.qvec, *im.tvec))
                f.write(f"{im.id} {vals} {im.camera_id} {im.name}\n\n")
        with open(out / "points3D.txt", "w") as f:
            f.write("# 3D point list with one line of data per point:\n")
            for i, (p, c) in enumerate(zip(xyz, rgb, strict=True)):
                f.write(
                    f"{i + 1} {float(p[0])!r} {float(p[1])!r} {float(p[2])!r} {c[0]} {c[1]} {c[2]} 0.0\n"
                )


def image_from_camera(image_id: int, camera_id: int, name: str, cam: Camera) -> ColmapImage:
    return ColmapImage(image_id, rotmat_to_qvec(cam.R), cam.t.copy(), camera_id, name)
