"""NeRF-style captures: ``transforms.json`` (Blender synthetic, instant-ngp, nerfstudio).

``transform_matrix`` is camera-to-world in the OpenGL/Blender camera convention (x right, y up,
camera looks down -z); ours is OpenCV's (see ``engine.camera``), so
``world_to_camera = inv(c2w @ diag(1, -1, -1, 1))``. World coordinates are kept as they are.

Intrinsics come from ``fl_x``/``fl_y``/``cx``/``cy``/``w``/``h`` (top level or per frame, per
frame wins) or from ``camera_angle_x`` (and ``camera_angle_y``) with the size read from the
image. Distortion (``k1``, ``k2``, ``k3``, ``k4``, ``p1``, ``p2``) is kept on the view; opening
the folder uses the pinhole part, ``nsv import`` undistorts the photos. A Blender-style folder
with ``transforms_train.json`` / ``_val`` / ``_test`` opens all splits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.camera import Camera
from engine.errors import SceneError
from engine.scene.types import RegisteredView, Scene

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
SPLITS = ("transforms.json", "transforms_train.json", "transforms_val.json", "transforms_test.json")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG", ".exr", ".webp")


@dataclass
class NerfFrame:
    """One frame of a transforms file, in our convention."""

    name: str  # path relative to the capture folder, with extension
    camera: Camera
    image_path: Path | None
    distortion: dict[str, float] = field(default_factory=dict)


@dataclass
class NerfCapture:
    root: Path
    frames: list[NerfFrame]
    ply_path: Path | None  # the capture's own point cloud (nerfstudio ply_file_path)
    files: list[Path]  # the transforms files read
    skipped: list[str] = field(default_factory=list)  # listed images that are not on disk


def transform_files(folder: Path) -> list[Path]:
    return [folder / n for n in SPLITS if (folder / n).is_file()]


def is_nerf_capture(path: Path) -> bool:
    return (path.is_dir() and bool(transform_files(path))) or (
        path.is_file() and path.suffix == ".json" and path.name.startswith("transforms")
    )


def _resolve_image(root: Path, file_path: str) -> Path | None:
    p = (root / file_path).resolve() if not Path(file_path).is_absolute() else Path(file_path)
    if p.is_file():
        return p
    for suf in IMAGE_SUFFIXES:  # Blender synthetic writes paths without an extension
        q = p.with_name(p.name + suf)
        if q.is_file():
            return q
    return None


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def _matrix(json_path: Path, i: int, m) -> np.ndarray:
    try:
        a = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        raise SceneError(
            json_path, f"frame {i}: transform_matrix is not a numeric matrix"
        ) from None
    if a.shape == (3, 4):
        a = np.vstack([a, [0, 0, 0, 1]])
    if a.shape != (4, 4) or not np.isfinite(a).all():
        raise SceneError(
            json_path, f"frame {i}: transform_matrix must be a finite 4x4 matrix, got {a.shape}"
        )
    R = a[:3, :3]
    scale = np.cbrt(np.linalg.det(R)) if np.linalg.det(R) > 0 else 0.0
    if scale <= 1e-9 or not np.allclose(R.T @ R, scale**2 * np.eye(3), atol=1e-3 * scale**2):
        raise SceneError(json_path, f"frame {i}: transform_matrix is not a rotation + translation")
    if abs(scale - 1.0) > 1e-6:  # uniformly scaled camera axes: normalise the rotation
        a = a.copy()
        a[:3, :3] = R / scale
    return a


def read_transforms(path: str | Path, strict: bool = False) -> NerfCapture:
    """Read every transforms file of a capture folder (or the one file given). Frames whose
    image is missing (common after a capture is pruned) are skipped and listed in
    ``skipped``; with ``strict`` (or when none is left) they are an error."""
    path = Path(path)
    files = transform_files(path) if path.is_dir() else [path]
    root = path if path.is_dir() else path.parent
    if not files:
        raise SceneError(path, "no transforms.json here")
    frames: list[NerfFrame] = []
    ply_path = None
    missing: list[str] = []
    for jf in files:
        try:
            meta = json.loads(jf.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise SceneError(jf, f"cannot read file ({e})") from None
        except json.JSONDecodeError as e:
            raise SceneError(jf, f"not valid JSON (line {e.lineno}: {e.msg})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list):
            raise SceneError(jf, "no 'frames' list: not a NeRF transforms file")
        if meta.get("ply_file_path") and ply_path is None:
            p = root / meta["ply_file_path"]
            ply_path = p if p.is_file() else None
        for i, fr in enumerate(meta["frames"]):
            if not isinstance(fr, dict) or "file_path" not in fr or "transform_matrix" not in fr:
                raise SceneError(jf, f"frame {i}: needs 'file_path' and 'transform_matrix'")
            c2w = _matrix(jf, i, fr["transform_matrix"])
            img = _resolve_image(root, str(fr["file_path"]))
            if img is None:
                missing.append(str(fr["file_path"]))
                continue

            def get(key, _fr=fr, _meta=meta):
                return _fr.get(key, _meta.get(key))

            w, h = get("w"), get("h")
            if w is None or h is None:
                w, h = _image_size(img)
            w, h = int(w), int(h)
            fx, fy = get("fl_x"), get("fl_y")
            if fx is None and get("camera_angle_x") is not None:
                fx = 0.5 * w / math.tan(0.5 * float(get("camera_angle_x")))
            if fy is None and get("camera_angle_y") is not None:
                fy = 0.5 * h / math.tan(0.5 * float(get("camera_angle_y")))
            if fx is None and fy is None:
                raise SceneError(jf, f"frame {i}: no focal length (fl_x or camera_angle_x)")
            fx = float(fx if fx is not None else fy)
            fy = float(fy if fy is not None else fx)
            cx = float(get("cx") if get("cx") is not None else w / 2)
            cy = float(get("cy") if get("cy") is not None else h / 2)
            w2c = np.linalg.inv(c2w @ GL_TO_CV)
            cam = Camera(w, h, fx, fy, cx, cy, w2c)
            dist = {k: float(get(k)) for k in DISTORTION_KEYS if get(k)}
            try:
                name = img.relative_to(root.resolve()).as_posix()
            except ValueError:
                name = img.name
            frames.append(NerfFrame(name, cam, img, dist))
    if missing and (strict or not frames):
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise SceneError(
            files[0],
            f"{len(missing)} of {len(missing) + len(frames)} images are missing ({shown}); "
            "check that the image folder sits next to the transforms file",
        )
    if not frames:
        raise SceneError(files[0], "the transforms file lists no frames")
    return NerfCapture(root, frames, ply_path, files, missing)


def write_transforms(path: str | Path, views: list[RegisteredView], ply_file: str | None = None):
    """Write a nerfstudio-style transforms.json (per-frame intrinsics) for ``views``; image paths
    are relative to the file's folder. Reading it back gives the same cameras."""
    path = Path(path)
    frames = []
    for v in views:
        c = v.camera
        c2w = np.linalg.inv(c.world_to_camera) @ GL_TO_CV
        rel = v.image_path.resolve().relative_to(path.parent.resolve()) if v.image_path else v.name
        frames.append(
            {
                "file_path": Path(rel).as_posix(),
                "transform_matrix": c2w.tolist(),
                "fl_x": c.fx,
                "fl_y": c.fy,
                "cx": c.cx,
                "cy": c.cy,
                "w": c.width,
                "h": c.height,
            }
        )
    meta: dict = {"camera_model": "OPENCV", "frames": frames}
    if ply_file:
        meta["ply_file_path"] = ply_file
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(path)


def load_nerf(path: str | Path, points: np.ndarray | None = None, colors=None) -> Scene:
    """A NeRF capture as a Scene. Points come from ``points``/``colors`` when given, else from
    the capture's ``ply_file_path``; without either the caller must provide them (see
    ``engine.capture.importer.nerf_points``)."""
    cap = read_transforms(path)
    views = [RegisteredView(f.name, f.camera, f.image_path) for f in cap.frames]
    normals = None
    if points is None and cap.ply_path is not None:
        from engine.scene.ply import load_ply_cloud

        cloud = load_ply_cloud(cap.ply_path)
        points, colors, normals = cloud.points, cloud.colors, cloud.normals
    if points is None:
        raise SceneError(cap.files[0], "the capture has no point cloud yet")
    up = np.zeros(3)
    for v in views:
        up -= v.camera.R[1]
    up = up / np.linalg.norm(up) if np.linalg.norm(up) > 1e-9 else np.array([0.0, 1.0, 0.0])
    from engine.scene.ply import finish_cloud

    scene = finish_cloud(cap.root, points, colors, normals, views=views, up=up)
    scene.name = cap.root.name
    scene.skipped_images = len(cap.skipped)
    return scene
