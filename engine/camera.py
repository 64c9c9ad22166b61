"""Cameras: the one convention used across the whole engine, and its converters.

Convention (the same as OpenCV and COLMAP, written down here once):

* Camera frame: +X right, +Y down, +Z forward (the viewing direction).
* Pose: ``world_to_camera`` is a (4, 4) float64 rigid transform, ``x_cam = R @ x_world + t``.
* Intrinsics in pixels: ``u = fx * X / Z + cx``, ``v = fy * Y / Z + cy``.
* Pixels: image row ``i``, column ``j`` covers ``[j, j+1) x [i, i+1)`` in (u, v); its centre is
  ``(j + 0.5, i + 0.5)``. A point lands in pixel ``(floor(v), floor(u))``. Row 0 is the top.

OpenGL differs by a flip of Y and Z (camera looks down -Z, +Y up) and by normalized device
coordinates; ``gl_view_matrix`` and ``gl_projection_matrix`` convert. COLMAP needs no conversion
beyond quaternion -> matrix (``from_colmap``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

# Flips OpenCV camera axes (x right, y down, z forward) to OpenGL's (x right, y up, z back).
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def qvec_to_rotmat(qvec: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), COLMAP's order -> (3, 3) rotation matrix."""
    w, x, y, z = np.asarray(qvec, dtype=np.float64) / np.linalg.norm(qvec)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotmat_to_qvec(R: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    K = (
        np.array(
            [
                [R[0, 0] - R[1, 1] - R[2, 2], 0, 0, 0],
                [R[1, 0] + R[0, 1], R[1, 1] - R[0, 0] - R[2, 2], 0, 0],
                [R[2, 0] + R[0, 2], R[2, 1] + R[1, 2], R[2, 2] - R[0, 0] - R[1, 1], 0],
                [R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1], R.trace()],
            ]
        )
        / 3.0
    )
    vals, vecs = np.linalg.eigh(K)
    q = vecs[[3, 0, 1, 2], np.argmax(vals)]
    return -q if q[0] < 0 else q


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about ``axis`` (right-handed, Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * (K @ K)


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera: intrinsics in pixels and a world-to-camera pose (see module docstring)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    world_to_camera: np.ndarray = field(default_factory=lambda: np.eye(4))
    near: float = 0.01
    far: float = 1.0e4

    # --- construction -------------------------------------------------------------------
    @staticmethod
    def from_fov(width: int, height: int, fov_y_deg: float, world_to_camera=None, **kw) -> Camera:
        """Camera with square pixels, principal point at the image centre, vertical FOV in degrees."""
        f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
        w2c = np.eye(4) if world_to_camera is None else np.asarray(world_to_camera, np.float64)
        return Camera(width, height, f, f, width / 2, height / 2, w2c, **kw)

    @staticmethod
    def from_colmap(
        width: int, height: int, fx: float, fy: float, cx: float, cy: float, qvec, tvec
    ) -> Camera:
        """COLMAP's (qvec, tvec) is already world-to-camera in our convention."""
        w2c = np.eye(4)
        w2c[:3, :3] = qvec_to_rotmat(qvec)
        w2c[:3, 3] = np.asarray(tvec, dtype=np.float64)
        return Camera(width, height, float(fx), float(fy), float(cx), float(cy), w2c)

    @staticmethod
    def look_at(eye, target, up, width: int, height: int, fov_y_deg: float = 50.0) -> Camera:
        """Camera at ``eye`` looking at ``target``; ``up`` is the world direction shown as up."""
        eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
        fwd = target - eye
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, up)
        if np.linalg.norm(right) < 1e-9:  # looking straight along up: pick any right
            right = np.cross(fwd, [1.0, 0.0, 0.0] if abs(fwd[0]) < 0.9 else [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        return Camera.from_fov(width, height, fov_y_deg, pose_from_axes(eye, right, down, fwd))

    # --- properties ---------------------------------------------------------------------
    @property
    def R(self) -> np.ndarray:
        return self.world_to_camera[:3, :3]

    @property
    def t(self) -> np.ndarray:
        return self.world_to_camera[:3, 3]

    @property
    def camera_to_world(self) -> np.ndarray:
        c2w = np.eye(4)
        c2w[:3, :3] = self.R.T
        c2w[:3, 3] = -self.R.T @ self.t
        return c2w

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates, (3,)."""
        return -self.R.T @ self.t

    @property
    def forward(self) -> np.ndarray:
        """Viewing direction in world coordinates, (3,)."""
        return self.R[2].copy()

    @property
    def fov_y_deg(self) -> float:
        return math.degrees(2 * math.atan(0.5 * self.height / self.fy))

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    # --- derived cameras ----------------------------------------------------------------
    def resized(self, width: int, height: int) -> Camera:
        """Same view at another resolution: intrinsics scale with the image, pose unchanged."""
        sx, sy = width / self.width, height / self.height
        return replace(
            self,
            width=int(width),
            height=int(height),
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=self.cx * sx,
            cy=self.cy * sy,
        )

    def scaled(self, factor: float) -> Camera:
        """Resolution multiplied by ``factor`` (rounded, at least 1 px)."""
        return self.resized(max(1, round(self.width * factor)), max(1, round(self.height * factor)))

    def with_fov_y(self, fov_y_deg: float) -> Camera:
        f = 0.5 * self.height / math.tan(math.radians(fov_y_deg) / 2)
        return replace(self, fx=f * self.fx / self.fy, fy=f)

    def with_pose(self, world_to_camera: np.ndarray) -> Camera:
        return replace(self, world_to_camera=np.asarray(world_to_camera, np.float64))

    # --- projection ---------------------------------------------------------------------
    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) as (u, v) and depth Z (N,)."""
        pc = np.asarray(points, np.float64) @ self.R.T + self.t
        z = pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([self.fx * pc[:, 0] / z + self.cx, self.fy * pc[:, 1] / z + self.cy], 1)
        return uv, z

    def pixel_ray(self, u: float, v: float) -> tuple[np.ndarray, np.ndarray]:
        """World-space ray (origin (3,), unit direction (3,)) through pixel coordinate (u, v)."""
        d_cam = np.array([(u - self.cx) / self.fx, (v - self.cy) / self.fy, 1.0])
        d = self.R.T @ d_cam
        return self.position, d / np.linalg.norm(d)

    # --- OpenGL ---------------------------------------------------------------------------
    def gl_view_matrix(self) -> np.ndarray:
        """(4, 4) OpenGL view matrix (camera looks down -Z, +Y up)."""
        return CV_TO_GL @ self.world_to_camera

    def gl_projection_matrix(self) -> np.ndarray:
        """(4, 4) OpenGL projection matching our intrinsics exactly (row 0 of the image on top)."""
        n, f, W, H = self.near, self.far, self.width, self.height
        return np.array(
            [
                [2 * self.fx / W, 0, 1 - 2 * self.cx / W, 0],
                [0, 2 * self.fy / H, 2 * self.cy / H - 1, 0],
                [0, 0, -(f + n) / (f - n), -2 * f * n / (f - n)],
                [0, 0, -1, 0],
            ]
        )

    @staticmethod
    def from_gl(view: np.ndarray, proj: np.ndarray, width: int, height: int) -> Camera:
        """Inverse of ``gl_view_matrix`` / ``gl_projection_matrix``."""
        fx, fy = proj[0, 0] * width / 2, proj[1, 1] * height / 2
        cx, cy = (1 - proj[0, 2]) * width / 2, (proj[1, 2] + 1) * height / 2
        c, d = proj[2, 2], proj[2, 3]
        near, far = d / (c - 1), d / (c + 1)
        return Camera(width, height, fx, fy, cx, cy, CV_TO_GL @ np.asarray(view), near, far)

    # --- serialization --------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "world_to_camera": self.world_to_camera.tolist(),
            "near": self.near,
            "far": self.far,
            "convention": "opencv: x right, y down, z forward; world_to_camera",
        }

    @staticmethod
    def from_dict(d: dict) -> Camera:
        w2c = np.asarray(d["world_to_camera"], dtype=np.float64)
        if w2c.shape != (4, 4) or not np.isfinite(w2c).all():
            raise ValueError("world_to_camera must be a finite 4x4 matrix")
        return Camera(
            int(d["width"]),
            int(d["height"]),
            float(d["fx"]),
            float(d["fy"]),
            float(d["cx"]),
            float(d["cy"]),
            w2c,
            float(d.get("near", 0.01)),
            float(d.get("far", 1.0e4)),
        )


def pose_from_axes(eye, right, down, forward) -> np.ndarray:
    """World-to-camera (4, 4) from the camera centre and its axes expressed in world coordinates."""
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([right, down, forward])
    w2c[:3, 3] = -w2c[:3, :3] @ np.asarray(eye, np.float64)
    return w2c
