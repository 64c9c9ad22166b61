"""Training / evaluation sequences for the denoiser, path traced with Mitsuba.

Each sequence is a procedural variation of the Cornell box (wall colors, checkerboard textures,
light size and power, block sizes and placement, an extra sphere of random material, and
optionally a scanned mesh such as the Stanford bunny) seen along a short camera path (or a still
camera). Every frame stores ``K`` independent 1-spp samples with their auxiliary
buffers and a high-spp reference, so inputs of 1, 2, 4 ... spp can be formed by averaging.
Sequences are written as safetensors (float16), one file each.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine.camera import Camera
from engine.errors import NsvError

FOV_Y = 40.0  # vertical field of view of every generated camera, degrees


def camera_path(
    rng: np.random.Generator, frames: int, width: int, height: int, still: bool = False
) -> list[Camera]:
    """A smooth orbit / dolly around the box opening, or a still camera."""
    az0, az1 = rng.uniform(-0.35, 0.35, 2)
    el0, el1 = rng.uniform(-0.15, 0.2, 2)
    d0, d1 = rng.uniform(3.0, 4.2, 2)
    cams = []
    for i in range(frames):
        t = 0.0 if still else i / max(frames - 1, 1)
        az, el, dist = az0 + (az1 - az0) * t, el0 + (el1 - el0) * t, d0 + (d1 - d0) * t
        eye = [
            dist * math.sin(az) * math.cos(el),
            dist * math.sin(el),
            dist * math.cos(az) * math.cos(el),
        ]
        cams.append(Camera.look_at(eye, [0, 0, 0], [0, 1, 0], width, height, FOV_Y))
    return cams


def render_sequence(
    scene_dict: dict,
    cams: list[Camera],
    samples: int,
    ref_spp: int,
    seed: int,
    extra_spp: tuple[int, ...] = (),
) -> dict[str, torch.Tensor]:
    """Path trace a sequence. Returns tensors (float16):
    noisy (T, K, H, W, 3): K independent 1-spp radiance samples per frame;
    albedo, normal (T, H, W, 3) and depth (T, H, W): aux buffers averaged over the K samples;
    reference (T, H, W, 3); cameras (T, 4, 4) float32 world-to-camera; intrinsics (T, 4)
    float32 fx, fy, cx, cy in pixels; with ``extra_spp``, ``noisy_spp{N}`` (T, H, W, 3): an
    independent N-spp render per frame (to judge the denoiser at high sample counts)."""
    from engine.mitsuba_scene import MitsubaScene

    W, H = cams[0].width, cams[0].height
    ms = MitsubaScene(None, W, H, scene_dict=scene_dict)
    noisy, alb, nrm, dep, ref = [], [], [], [], []
    extra: dict[int, list] = {n: [] for n in extra_spp}
    for t, cam in enumerate(cams):
        for j, n in enumerate(extra_spp):
            extra[n].append(ms.render(cam, n, seed=seed * 100_000 + t * 100 + 50 + j).radiance)
        frames = [ms.render(cam, 1, seed=seed * 100_000 + t * 100 + k) for k in range(samples)]
        noisy.append(np.stack([f.radiance for f in frames]))
        alb.append(np.mean([f.albedo for f in frames], 0))
        nrm.append(np.mean([f.normal for f in frames], 0))
        dep.append(np.mean([f.depth for f in frames], 0))
        ref.append(ms.render(cam, ref_spp, seed=seed * 100_000 + t * 100 + 99).radiance)

    def h(x):
        return torch.from_numpy(np.clip(np.asarray(x, np.float32), 0, 6e4)).half()

    out = {f"noisy_spp{n}": h(v) for n, v in extra.items()}
    return out | {
        "noisy": h(noisy),
        "albedo": h(alb),
        "normal": torch.from_numpy(np.asarray(nrm, np.float32)).half(),
        "depth": h(dep),
        "reference": h(ref),
        "cameras": torch.from_numpy(np.stack([c.world_to_camera for c in cams]).astype(np.float32)),
        "intrinsics": torch.tensor([[c.fx, c.fy, c.cx, c.cy] for c in cams], dtype=torch.float32),
    }


def write_dataset(
    out: str | Path,
    sequences: int,
    frames: int = 8,
    size: int = 128,
    samples: int = 4,
    ref_spp: int = 256,
    seed: int = 0,
    still_every: int = 4,
    progress: bool = True,
    meshes: list[str | Path] | None = None,
    kinds: tuple[str, ...] = ("cornell",),
    extra_spp: tuple[int, ...] = (),
) -> list[Path]:
    """Generate ``sequences`` sequences into ``out``/seq_XXXX.safetensors, cycling through the
    scene ``kinds`` (``engine.denoise.scenes.KINDS``). ``meshes``: mesh files the kinds place
    (see ``random_box_dict``); ``extra_spp``: see ``render_sequence``."""
    from tqdm import tqdm

    from engine.denoise.scenes import KINDS, scene_dict
    from engine.mitsuba_scene import choose_variant

    out = Path(out)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise NsvError(f"unknown scene kind {bad[0]!r}; expected one of {', '.join(KINDS)}")
    out.mkdir(parents=True, exist_ok=True)
    choose_variant()
    paths = []
    for i in tqdm(range(sequences), desc="path tracing sequences", disable=not progress):
        path = out / f"seq_{i:04d}.safetensors"
        paths.append(path)
        if path.is_file():
            continue  # resumable: finished sequences are kept
        rng = np.random.default_rng(seed * 7919 + i)
        kind = kinds[i % len(kinds)]
        d = scene_dict(kind, rng, [Path(m) for m in meshes or []], out)
        cams = camera_path(rng, frames, size, size, still=(still_every and i % still_every == 0))
        tensors = render_sequence(d, cams, samples, ref_spp, seed * 7919 + i, extra_spp)
        tmp = path.with_name(path.name + ".tmp")
        save_file(
            tensors,
            str(tmp),
            metadata={
                "still": str(bool(still_every and i % still_every == 0)),
                "kind": kind,
                "mesh": d["mesh"]["filename"] if "mesh" in d else "",
            },
        )
        tmp.replace(path)
    return paths


def load_sequence(path: str | Path) -> dict[str, torch.Tensor]:
    seq = {k: v.float() for k, v in load_file(str(path)).items()}
    if "intrinsics" not in seq:  # sequences written before intrinsics were stored
        T, _, H, W, _ = seq["noisy"].shape
        f = 0.5 * H / math.tan(math.radians(FOV_Y) / 2)
        seq["intrinsics"] = torch.tensor([[f, f, W / 2, H / 2]] * T, dtype=torch.float32)
    return seq
