"""Captures with known poses, for testing the importers: a textured scene photographed from a
ring of cameras, written as a photo folder, a video and a NeRF ``transforms.json``.

The true cameras go to ``truth.json`` (image name -> camera dict, our convention), which
``nsv import --reference`` and the tests compare recovered poses against.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from engine.camera import Camera
from engine.synthetic.scenes import Material, SceneObject, random_objects


def capture_objects(seed: int) -> list[SceneObject]:
    """``random_objects`` re-dressed in non-repeating random-cell textures (periodic stripes
    and checkers give feature matching too many look-alike candidates)."""
    rng = np.random.default_rng(seed + 1000)
    objs = random_objects(seed)
    out = []
    for i, o in enumerate(objs):
        freq = 9.0 if i == 0 else float(rng.uniform(14, 24))
        mat = Material(4, o.material.c0, o.material.c1, freq, 0.15, 30.0)
        out.append(SceneObject(o.mesh, mat))
    return out


def ring_cameras(
    n: int, width: int, height: int, radius: float = 3.6, elevation_deg: float = 32.0,
    fov_y_deg: float = 50.0, arc_deg: float = 360.0, jitter: float = 0.0, seed: int = 0,
) -> list[Camera]:  # fmt: skip
    """``n`` cameras on a circle around the origin (+Y up), looking at the scene centre."""
    rng = np.random.default_rng(seed)
    cams = []
    el = math.radians(elevation_deg)
    for i in range(n):
        az = math.radians(arc_deg) * i / (n if arc_deg >= 360 else max(n - 1, 1))
        r = radius * (1 + jitter * rng.uniform(-1, 1))
        eye = np.array(
            [r * math.cos(el) * math.cos(az), r * math.sin(el), r * math.cos(el) * math.sin(az)]
        )
        target = np.array([0.0, 0.35, 0.0])
        cams.append(Camera.look_at(eye, target, [0, 1, 0], width, height, fov_y_deg))
    return cams


def write_capture(
    out_dir: str | Path, kinds=("photos", "video", "nerf"), views: int = 24,
    width: int = 320, height: int = 240, seed: int = 0, video_frames: int = 48,
) -> dict:  # fmt: skip
    """Render the capture. Writes ``photos/``, ``video.mp4`` (+ ``video_truth.json``, frame k as
    ``frame_{k:04d}.jpg``), ``nerf/transforms.json`` + ``nerf/images/`` and ``truth.json``."""
    import imageio.v3 as iio

    from engine.scene.nerf import write_transforms
    from engine.scene.types import RegisteredView
    from engine.synthetic.render import MeshRenderer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    renderer = MeshRenderer(capture_objects(seed))

    def shoot(cam: Camera) -> np.ndarray:
        return (np.clip(renderer.render(cam), 0, 1) * 255 + 0.5).astype(np.uint8)

    cams = ring_cameras(views, width, height, jitter=0.05, seed=seed)
    truth = {f"view_{i:03d}.png": c.to_dict() for i, c in enumerate(cams)}
    written: dict = {"views": views}
    if "photos" in kinds:
        (out / "photos").mkdir(exist_ok=True)
        for i, c in enumerate(cams):
            iio.imwrite(out / "photos" / f"view_{i:03d}.png", shoot(c))
    if "nerf" in kinds:
        (out / "nerf" / "images").mkdir(parents=True, exist_ok=True)
        nviews = []
        for i, c in enumerate(cams):
            p = out / "nerf" / "images" / f"view_{i:03d}.png"
            iio.imwrite(p, shoot(c))
            nviews.append(RegisteredView(p.name, c, p))
        write_transforms(out / "nerf" / "transforms.json", nviews)
    if "video" in kinds:
        import imageio_ffmpeg

        vcams = ring_cameras(video_frames, width, height, arc_deg=300.0, seed=seed)
        writer = imageio_ffmpeg.write_frames(
            str(out / "video.mp4"), (width, height), fps=12, quality=8, macro_block_size=8
        )
        writer.send(None)
        for c in vcams:
            writer.send(np.ascontiguousarray(shoot(c)))
        writer.close()
        vt = {f"frame_{i:04d}.jpg": c.to_dict() for i, c in enumerate(vcams)}
        (out / "video_truth.json").write_text(json.dumps(vt))
        written["video_frames"] = video_frames
    (out / "truth.json").write_text(json.dumps(truth))
    return written


def read_truth(path: str | Path) -> dict[str, Camera]:
    return {k: Camera.from_dict(v) for k, v in json.loads(Path(path).read_text()).items()}
