"""Interactive camera navigation: orbit, pan, zoom and fly, independent of any GUI toolkit.

The navigator keeps a pose (camera-to-world rotation and eye position), a pivot distance along
the viewing direction, and a world up vector. Orbit rotates the eye about the pivot, fly mode
rotates the view about the eye; both use the same state, so switching modes never jumps.
Motion in fly mode is ``velocity * dt``, so it does not depend on the frame rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.camera import Camera, pose_from_axes, rotation_about

# Pitch is kept this far (radians) from straight up/down so orbit never flips over the pole.
_POLE_MARGIN = math.radians(2.0)


@dataclass
class Navigator:
    """Mutable camera state driven by user input. ``camera(width, height)`` gives the view."""

    eye: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, -3.0]))
    # Rows are the camera's right, down and forward axes in world coordinates.
    axes: np.ndarray = field(default_factory=lambda: np.eye(3))
    distance: float = 3.0
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    fov_y_deg: float = 50.0
    near: float = 0.01
    far: float = 1.0e4
    # Explicit intrinsics of a registered view we jumped to; cleared by any navigation.
    exact: Camera | None = None
    _home: tuple | None = None

    # --- state ------------------------------------------------------------------------
    @property
    def pivot(self) -> np.ndarray:
        return self.eye + self.axes[2] * self.distance

    def camera(self, width: int, height: int) -> Camera:
        w2c = pose_from_axes(self.eye, *self.axes)
        if self.exact is not None:
            # Keep the registered intrinsics (principal point, aspect) at the requested size.
            cam = self.exact.resized(width, height).with_pose(w2c)
        else:
            cam = Camera.from_fov(width, height, self.fov_y_deg, w2c)
        return Camera(
            cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy, w2c, self.near, self.far
        )

    def look_at(self, eye, target, up=None) -> None:
        if up is not None:
            self.up = np.asarray(up, np.float64) / np.linalg.norm(up)
        cam = Camera.look_at(eye, target, self.up, 2, 2)
        self.eye = np.asarray(eye, np.float64).copy()
        self.axes = cam.R.copy()
        self.distance = float(np.linalg.norm(np.asarray(target, np.float64) - self.eye))
        self.exact = None

    def frame_points(self, center, radius: float, direction=None) -> None:
        """Look at a sphere (centre, radius) so it fills the view; keeps the direction if given."""
        radius = max(float(radius), 1e-6)
        fwd = self.axes[2] if direction is None else np.asarray(direction, np.float64)
        fwd = fwd / np.linalg.norm(fwd)
        dist = radius / math.sin(math.radians(self.fov_y_deg) / 2) * 1.05
        center = np.asarray(center, np.float64)
        self.look_at(center - fwd * dist, center)
        # A near plane close to the scene keeps depth-buffer precision for the GL path.
        self.near, self.far = max(dist - radius * 4, dist * 0.02), dist + radius * 10

    def set_home(self) -> None:
        # The clip planes too: framing the whole cloud (F) moves the near plane out with the
        # eye, and back home it would cut away what lies close to a photo's view.
        self._home = (self.eye.copy(), self.axes.copy(), self.distance, self.fov_y_deg,
                      self.near, self.far)  # fmt: skip

    def reset(self) -> None:
        if self._home is not None:
            eye, axes, dist, fov, self.near, self.far = self._home
            self.eye, self.axes, self.distance, self.fov_y_deg = eye.copy(), axes.copy(), dist, fov
            self.exact = None

    def jump_to(self, cam: Camera, pivot_distance: float | None = None) -> None:
        """Show exactly what a registered camera saw (intrinsics included)."""
        self.eye = cam.position.copy()
        self.axes = cam.R.copy()
        if pivot_distance is not None:
            self.distance = float(pivot_distance)
        self.exact = cam
        self.fov_y_deg = cam.fov_y_deg

    # --- input ------------------------------------------------------------------------
    def orbit(self, d_yaw: float, d_pitch: float) -> None:
        """Turn the view by (yaw right, pitch up) radians while the eye circles the pivot."""
        pivot = self.pivot
        rot = self._rotation(d_yaw, d_pitch)
        self.axes = self.axes @ rot.T
        self.eye = pivot - self.axes[2] * self.distance
        self.exact = None

    def look(self, d_yaw: float, d_pitch: float) -> None:
        """Rotate the view about the eye (fly-mode mouse look)."""
        self.axes = self.axes @ self._rotation(d_yaw, d_pitch).T
        self.exact = None

    def pan(self, dx_px: float, dy_px: float, viewport_height: int) -> None:
        """Move eye and pivot so that scene points at the pivot depth follow the mouse."""
        world_per_px = 2 * self.distance * math.tan(math.radians(self.fov_y_deg) / 2)
        world_per_px /= max(viewport_height, 1)
        self.eye = (
            self.eye - self.axes[0] * dx_px * world_per_px - self.axes[1] * dy_px * world_per_px
        )
        self.exact = None

    def zoom(self, steps: float) -> None:
        """Dolly toward the pivot; one step (a wheel notch) moves 15% of the distance."""
        pivot = self.pivot
        self.distance = float(np.clip(self.distance * 0.85**steps, 1e-4, 1e6))
        self.eye = pivot - self.axes[2] * self.distance
        self.exact = None

    def fly(self, move: np.ndarray, speed: float, dt: float) -> None:
        """Translate by ``move`` = (right, up, forward) in [-1, 1] at ``speed`` units/s for dt s."""
        move = np.asarray(move, np.float64)
        if not move.any() or dt <= 0:
            return
        direction = self.axes[0] * move[0] + self.up * move[1] + self.axes[2] * move[2]
        norm = np.linalg.norm(direction)
        if norm > 0:
            self.eye = self.eye + direction / norm * speed * dt
        self.exact = None

    def _rotation(self, d_yaw: float, d_pitch: float) -> np.ndarray:
        # Positive yaw turns the view right, positive pitch tilts it up. Pitch is clamped so
        # forward never crosses the up axis.
        cur = math.asin(float(np.clip(np.dot(self.axes[2], self.up), -1, 1)))
        lim = math.pi / 2 - _POLE_MARGIN
        d_pitch = float(np.clip(cur + d_pitch, -lim, lim)) - cur
        r_pitch = rotation_about(self.axes[0], d_pitch)
        r_yaw = rotation_about(self.up, -d_yaw)
        return r_yaw @ r_pitch


def home_navigator(scene, fov_y_deg: float = 50.0) -> Navigator:
    """The default view of a scene: a photo's view for captures taken from inside their cloud
    (``_capture_start``), else framed whole, seen from where its cameras look from (COLMAP) or
    from the front and a little above (plain clouds). Also set as the reset view."""
    nav = Navigator(up=np.asarray(scene.up, np.float64), fov_y_deg=fov_y_deg)
    center, radius = scene.bounds()
    start = None if scene.home_camera is not None else _capture_start(scene, center, radius)
    if start is not None:
        cam, pivot = start
        nav.jump_to(cam, pivot_distance=pivot)
        nav.exact = None
        nav.fov_y_deg = cam.fov_y_deg
        nav.near, nav.far = pivot * 0.01, pivot * 1000
        nav.set_home()
        return nav
    if scene.views:
        # Frame the cameras too, so their frustums are in view from the start.
        eyes = np.array([v.camera.position for v in scene.views])
        radius = max(radius, float(np.linalg.norm(eyes - center, axis=1).max()))
        fwd = np.mean([v.camera.forward for v in scene.views], axis=0)
        if np.linalg.norm(fwd) < 0.9:  # cameras all around: look the way the first one does
            fwd = scene.views[0].camera.forward
    else:
        # Front (-Z is toward a Y-up scan's viewer) and 20 degrees above.
        side = np.cross(nav.up, [1.0, 0.0, 0.0])
        if np.linalg.norm(side) < 1e-6:
            side = np.cross(nav.up, [0.0, 0.0, 1.0])
        side /= np.linalg.norm(side)
        fwd = side * math.cos(math.radians(20)) - nav.up * math.sin(math.radians(20))
    nav.frame_points(center, radius, direction=fwd)
    home = scene.home_camera
    if home is not None:  # the scene file's own camera (e.g. a Mitsuba sensor)
        nav.jump_to(home, pivot_distance=float(np.dot(center - home.position, home.forward)))
        nav.exact = None
        nav.fov_y_deg = home.fov_y_deg
    nav.set_home()
    return nav


# A capture is taken from inside its cloud when its cameras' median distance from the cloud's
# centre is at most this many times the cloud's (robust) radius: a room around a phone
# capture's object, a sweep of a room; an object photographed from around it is not.
_INSIDE = 1.25
# Forward-facing: less than this share of the points lies behind the cameras.
_BEHIND_SHARE = 0.05


def _capture_start(scene, center: np.ndarray, radius: float) -> tuple[Camera, float] | None:
    """For a capture taken from inside its cloud, (a photo camera, pivot distance) to start
    at; None where framing the whole cloud is the better first view.

    Framing the cloud of a 360-degree phone capture (whose points reach the walls of the room
    around the object) or of a sweep of a room puts the eye outside the room or far behind the
    photographer, looking at the backs of walls: views no photo saw, which a fitted neural
    scene renders as noise. There the home view is what a photo saw (the first photo of an
    orbit, the middle one of a sweep), and orbiting circles the point the cameras look at.
    """
    if not scene.views or scene.num_points == 0:
        return None
    cams = [v.camera for v in scene.views]
    eyes = np.array([c.position for c in cams])
    if np.median(np.linalg.norm(eyes - center, axis=1)) > _INSIDE * radius:
        return None  # an object photographed from around it: frame it all
    fwds = np.array([c.forward for c in cams])
    pts = scene.points
    if len(pts) > 200_000:
        pts = pts[:: len(pts) // 200_000]
    # Forward-facing: the photos look roughly one way and (almost) every point lies ahead of
    # them - a sweep of a room (its photos' directions spread up to ~60 degrees).
    mean_fwd = fwds.mean(axis=0)
    ahead = (pts - eyes.mean(axis=0)) @ (mean_fwd / max(np.linalg.norm(mean_fwd), 1e-9))
    forward_facing = np.linalg.norm(mean_fwd) >= 0.5 and np.mean(ahead < 0) < _BEHIND_SHARE
    if forward_facing:
        cam = cams[int(np.argmin(np.linalg.norm(eyes - eyes.mean(axis=0), axis=1)))]
    else:
        cam = cams[0]
    # Pivot: where the cameras' optical axes meet, if in front of this one; else the median
    # depth of the points in front of it.
    focus = None if forward_facing else capture_focus(cams)
    depth = float("nan") if focus is None else float(np.dot(focus - cam.position, cam.forward))
    if not depth > 0:
        z = (pts - cam.position) @ cam.forward
        z = z[z > 0]
        depth = float(np.median(z)) if len(z) else 1.0
    return cam, depth


def capture_focus(cams) -> np.ndarray | None:
    """The point nearest every camera's optical axis (least squares), (3,): what a capture's
    photos look at. None where the axes are (nearly) parallel."""
    eyes = np.array([c.position for c in cams])
    fwds = np.array([c.forward for c in cams])
    proj = np.eye(3)[None] - fwds[:, :, None] * fwds[:, None, :]  # (V, 3, 3)
    a, b = proj.sum(axis=0), np.einsum("vij,vj->i", proj, eyes)
    if len(cams) < 2 or np.linalg.cond(a) > 1e6:
        return None
    return np.linalg.solve(a, b)


# Frustums of cameras closer to the eye than this many frustum depths are drawn (and picked)
# proportionally smaller: from a photo's own view its neighbours' full-size frustums would
# cover the picture with lines.
FRUSTUM_FULL_SIZE_BEYOND = 10.0


def frustum_scale(distance: float, depth: float) -> float:
    """How much of its size a camera's frustum is drawn at, ``distance`` from the eye."""
    return min(1.0, distance / (FRUSTUM_FULL_SIZE_BEYOND * depth))


def frustum_depth(scene) -> float:
    """Depth at which camera frustums are drawn: a tenth of the typical camera distance."""
    center, radius = scene.bounds()
    if not scene.views:
        return radius * 0.1
    d = [np.linalg.norm(v.camera.position - center) for v in scene.views]
    return float(np.median(d)) * 0.1
