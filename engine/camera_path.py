"""Camera paths: keyframes, smooth interpolation, and their JSON files (ours and nerfstudio's).

A path is a list of keyframes (a camera pose, a vertical field of view, and the time to the
next keyframe). Positions follow a Catmull-Rom spline through the keyframes (smooth, passes
through each), orientations a quaternion slerp, the field of view a linear blend.

Our file: ``{"format": "nsv-camera-path", "width", "height", "fps", "keyframes": [{
"camera_to_world": 4x4 (OpenCV axes: x right, y down, z forward), "fov": degrees,
"duration": seconds}]}``. nerfstudio's ``camera_path.json`` (a dense list of frames with
OpenGL ``camera_to_world``, looking down -Z with +Y up) is read and written too; each of its
frames becomes a keyframe lasting one frame, so its frames are rendered exactly.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.camera import Camera, qvec_to_rotmat, rotmat_to_qvec
from engine.errors import NsvError

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # flips y and z: OpenGL camera axes <-> OpenCV


@dataclass
class Keyframe:
    camera_to_world: np.ndarray  # (4, 4), OpenCV camera axes
    fov: float  # vertical, degrees
    duration: float = 1.0  # seconds until the next keyframe

    @staticmethod
    def from_camera(camera: Camera, duration: float = 1.0) -> Keyframe:
        return Keyframe(camera.camera_to_world.copy(), camera.fov_y_deg, duration)


@dataclass
class CameraPath:
    keyframes: list[Keyframe] = field(default_factory=list)
    width: int = 960
    height: int = 540
    fps: float = 30.0

    # --- timing ------------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        """Seconds from the first keyframe to the last (the last one's duration is unused)."""
        return float(sum(k.duration for k in self.keyframes[:-1]))

    @property
    def num_frames(self) -> int:
        if not self.keyframes:
            return 0
        return max(1, round(self.duration * self.fps) + 1)

    def _segment(self, t: float) -> tuple[int, float]:
        """(keyframe index i, fraction in [0, 1] towards keyframe i + 1) at time t."""
        t = min(max(t, 0.0), self.duration)
        for i, k in enumerate(self.keyframes[:-1]):
            if t <= k.duration or i == len(self.keyframes) - 2:
                return i, (t / k.duration if k.duration > 0 else 1.0)
            t -= k.duration
        return 0, 0.0

    # --- interpolation -----------------------------------------------------------------------
    def camera_at(self, t: float, width: int | None = None, height: int | None = None) -> Camera:
        """The camera at time ``t`` seconds (clamped to the path), at ``width`` x ``height``."""
        if not self.keyframes:
            raise ValueError("the path has no keyframes")
        W, H = width or self.width, height or self.height
        ks = self.keyframes
        if len(ks) == 1:
            return _camera(ks[0].camera_to_world, ks[0].fov, W, H)
        i, s = self._segment(t)
        p = [
            ks[min(max(j, 0), len(ks) - 1)].camera_to_world[:3, 3] for j in (i - 1, i, i + 1, i + 2)
        ]
        pos = _catmull_rom(*p, s)
        q0 = rotmat_to_qvec(ks[i].camera_to_world[:3, :3])
        q1 = rotmat_to_qvec(ks[i + 1].camera_to_world[:3, :3])
        c2w = np.eye(4)
        c2w[:3, :3] = qvec_to_rotmat(_slerp(q0, q1, s))
        c2w[:3, 3] = pos
        fov = ks[i].fov + (ks[i + 1].fov - ks[i].fov) * s
        return _camera(c2w, fov, W, H)

    def cameras(
        self, width: int | None = None, height: int | None = None, fps: float | None = None
    ):
        """Every frame's camera at ``fps`` (the path's own by default)."""
        fps = fps or self.fps
        n = max(1, round(self.duration * fps) + 1) if self.keyframes else 0
        return [self.camera_at(i / fps, width, height) for i in range(n)]

    # --- files -------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": "nsv-camera-path",
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "keyframes": [
                {
                    "camera_to_world": k.camera_to_world.tolist(),
                    "fov": k.fov,
                    "duration": k.duration,
                }
                for k in self.keyframes
            ],
        }

    def to_nerfstudio(self) -> dict:
        """nerfstudio's ``camera_path.json``: every frame at ``fps``, OpenGL camera axes."""
        frames = self.cameras()
        return {
            "render_width": self.width,
            "render_height": self.height,
            "fps": self.fps,
            "seconds": self.duration,
            "camera_type": "perspective",
            "camera_path": [
                {
                    "camera_to_world": (c.camera_to_world @ GL_TO_CV).ravel().tolist(),
                    "fov": c.fov_y_deg,
                    "aspect": self.width / self.height,
                }
                for c in frames
            ],
        }

    def save(self, path: str | Path, nerfstudio: bool = False) -> None:
        """Write atomically; ``nerfstudio`` writes its ``camera_path.json`` format instead."""
        path = Path(path)
        data = self.to_nerfstudio() if nerfstudio else self.to_json()
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    @staticmethod
    def load(path: str | Path) -> CameraPath:
        """Our JSON or nerfstudio's ``camera_path.json``; a bad file is one plain NsvError."""
        path = Path(path)
        if not path.is_file():
            raise NsvError(f"{path}: no such camera path file")
        if path.stat().st_size > 64 * 2**20:
            raise NsvError(f"{path}: too large for a camera path ({path.stat().st_size:,} bytes)")
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            where = f" (line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
            raise NsvError(f"{path}: not a JSON file{where}") from None
        if not isinstance(data, dict):
            raise NsvError(f"{path}: expected a JSON object with keyframes or camera_path")
        if "camera_path" in data:
            return _from_nerfstudio(path, data)
        if "keyframes" in data:
            return _from_ours(path, data)
        raise NsvError(f"{path}: no 'keyframes' (nsv) or 'camera_path' (nerfstudio) list")


def _camera(c2w: np.ndarray, fov: float, W: int, H: int) -> Camera:
    return Camera.from_fov(W, H, fov, np.linalg.inv(c2w))


def _catmull_rom(p0, p1, p2, p3, s: float) -> np.ndarray:
    """Uniform Catmull-Rom between p1 and p2 (p0, p3 the neighbours)."""
    s2, s3 = s * s, s * s * s
    return 0.5 * (
        2 * p1
        + (-p0 + p2) * s
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s2
        + (-p0 + 3 * p1 - 3 * p2 + p3) * s3
    )


def _slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    q0, q1 = q0 / np.linalg.norm(q0), q1 / np.linalg.norm(q1)
    d = float(np.dot(q0, q1))
    if d < 0:  # the short way round
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + s * (q1 - q0)
        return q / np.linalg.norm(q)
    th = math.acos(min(d, 1.0))
    return (math.sin((1 - s) * th) * q0 + math.sin(s * th) * q1) / math.sin(th)


def _matrix(path: Path, value, where: str) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise NsvError(f"{path}: {where}: camera_to_world is not a list of numbers") from None
    if m.size != 16 or not np.isfinite(m).all():
        raise NsvError(f"{path}: {where}: camera_to_world needs 16 finite numbers, got {m.size}")
    m = m.reshape(4, 4)
    if abs(np.linalg.det(m[:3, :3])) < 1e-6:
        raise NsvError(f"{path}: {where}: camera_to_world has a degenerate rotation")
    return m


def _number(path: Path, d: dict, key: str, where: str, default=None, lo=0.0, hi=math.inf) -> float:
    v = d.get(key, default)
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise NsvError(f"{path}: {where}: '{key}' must be a number") from None
    if not (lo < v < hi):
        raise NsvError(f"{path}: {where}: '{key}' = {v} is out of range")
    return v


def _size(path: Path, d: dict, wkey: str, hkey: str) -> tuple[int, int]:
    w = int(_number(path, d, wkey, "top level", 960, 0, 16385))
    h = int(_number(path, d, hkey, "top level", 540, 0, 16385))
    return w, h


def _from_ours(path: Path, data: dict) -> CameraPath:
    ks = data["keyframes"]
    if not isinstance(ks, list) or not ks:
        raise NsvError(f"{path}: 'keyframes' must be a non-empty list")
    out = []
    for i, k in enumerate(ks):
        where = f"keyframe {i + 1}"
        if not isinstance(k, dict):
            raise NsvError(f"{path}: {where} is not an object")
        c2w = _matrix(path, k.get("camera_to_world"), where)
        out.append(Keyframe(c2w, _number(path, k, "fov", where, 50, 0, 180),
                            _number(path, k, "duration", where, 1.0, -1e-9, 1e6)))  # fmt: skip
    w, h = _size(path, data, "width", "height")
    return CameraPath(out, w, h, _number(path, data, "fps", "top level", 30, 0, 1000))


def _from_nerfstudio(path: Path, data: dict) -> CameraPath:
    frames = data["camera_path"]
    if not isinstance(frames, list) or not frames:
        raise NsvError(f"{path}: 'camera_path' must be a non-empty list")
    fps = _number(path, data, "fps", "top level", 24, 0, 1000)
    out = []
    for i, f in enumerate(frames):
        where = f"camera_path frame {i + 1}"
        if not isinstance(f, dict):
            raise NsvError(f"{path}: {where} is not an object")
        c2w = _matrix(path, f.get("camera_to_world"), where) @ GL_TO_CV
        out.append(Keyframe(c2w, _number(path, f, "fov", where, 50, 0, 180), 1.0 / fps))
    w, h = _size(path, data, "render_width", "render_height")
    return CameraPath(out, w, h, fps)
