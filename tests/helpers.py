"""Test helpers: tiny scenes written to disk, and synthetic mouse input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.camera import Camera
from engine.scene.colmap import ColmapCamera, image_from_camera, write_model
from engine.scene.ply import save_ply_cloud


def write_cloud(path: Path, n: int = 20000, seed: int = 0) -> Path:
    """A colored, normal-carrying blob of points (a sphere shell plus a floor)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    cols = np.abs(p) * 0.8 + 0.1
    save_ply_cloud(path, p.astype(np.float32), cols.astype(np.float32), p.astype(np.float32))
    return path


def write_colmap_with_photos(
    root: Path, n_views: int = 6, n_points: int = 3000, arc: float = 1.0, room: bool = False
) -> tuple[Path, list[Camera]]:
    """A COLMAP text model of a sphere seen by a ring of cameras (spread over ``arc`` of the
    full circle), with PNG photos; ``room``: the sparse points also reach walls around the
    cameras (a phone capture's room)."""
    import imageio.v3 as iio

    from engine.points.render import PointCloudRenderer, PointRenderOptions
    from engine.scene.types import Scene

    rng = np.random.default_rng(7)
    # "Photos": a dense version of the sphere, splatted (a stand-in for a real capture).
    dense = rng.normal(size=(40000, 3))
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    stripes = 0.5 + 0.5 * np.sin(dense[:, 1:2] * 12)
    truth_cloud = Scene(
        points=dense.astype(np.float32),
        colors=(np.abs(dense) * 0.6 + 0.3 * stripes).astype(np.float32),
    )
    photographer = PointCloudRenderer(truth_cloud, "cpu")
    cams, images = [ColmapCamera(1, "PINHOLE", 160, 120, np.array([150.0, 150.0, 80.0, 60.0]))], []
    truth = []
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n_views):
        a = arc * 2 * np.pi * i / n_views
        cam = Camera.look_at([5 * np.cos(a), -1.0, 5 * np.sin(a)], [0, 0, 0], [0, -1, 0], 160, 120)
        cam = Camera(160, 120, 150.0, 150.0, 80.0, 60.0, cam.world_to_camera)
        truth.append(cam)
        images.append(image_from_camera(i + 1, 1, f"view_{i}.png", cam))
        photo = photographer.render(cam, PointRenderOptions("color", 3)).image
        iio.imwrite(root / "images" / f"view_{i}.png", photo)
    xyz = rng.normal(size=(n_points, 3))
    xyz /= np.linalg.norm(xyz, axis=1, keepdims=True)
    if room:  # a third of the points on a sphere of radius 12 around the ring (radius 5)
        xyz[: n_points // 3] *= 12.0
    rgb = (np.abs(xyz / np.linalg.norm(xyz, axis=1, keepdims=True)) * 255).astype(np.uint8)
    write_model(root / "sparse" / "0", cams, images, xyz, rgb, binary=False)
    return root, truth


def coverage(img: np.ndarray, background: int = 26) -> float:
    """Fraction of pixels that differ from the background grey."""
    return float((np.abs(img.astype(int) - background).max(-1) > 6).mean())


def nsv(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the command-line tool as a user would, in a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "nsv", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )


def assert_one_line_error(res: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit status 1 and one plain error line, last on stderr (progress bars may precede it),
    no traceback, containing every needle."""
    assert res.returncode == 1, res.stderr
    lines = [ln for ln in res.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("nsv: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in errors[0], errors[0]
