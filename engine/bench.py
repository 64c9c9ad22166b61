"""Rasterizer benchmark: time and points/s for given cloud sizes and resolutions."""

from __future__ import annotations

import time

import torch
from tqdm import tqdm

from engine.camera import Camera
from engine.device import describe, pick_device
from engine.points.rasterize import rasterize_points


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so a timer reads it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_cloud(n: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """(n, 3) float32 points on a noisy sphere shell of radius 1 (most points are visible)."""
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(n, 3, generator=g)
    p = p / p.norm(dim=1, keepdim=True) * (1 + 0.05 * torch.randn(n, 1, generator=g))
    return p.to(device)


def time_call(fn, device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def bench_rasterizer(
    points: list[int], sizes: list[tuple[int, int]], repeats: int = 5, device: str | None = None
) -> list[dict]:
    """One row per (points, size): median ms of a 1-px z-buffer at one scale, and points/s."""
    dev = pick_device(device)
    rows = []
    print(f"rasterizer on {describe(dev)}, torch {torch.__version__}")
    for n in points:
        cloud = random_cloud(n, dev)
        for w, h in tqdm(sizes, desc=f"{n:,} points", leave=False):
            cam = Camera.look_at([0, 0, -3], [0, 0, 0], [0, -1, 0], w, h, 50.0)
            ms = time_call(lambda cam=cam, cloud=cloud: rasterize_points(cloud, cam), dev, repeats)
            row = {
                "points": n,
                "width": w,
                "height": h,
                "ms": ms,
                "points_per_s": n / ms * 1e3,
                "device": describe(dev),
            }
            rows.append(row)
            tqdm.write(
                f"  {n:>11,} points  {w}x{h:<5} {ms:9.1f} ms  {row['points_per_s'] / 1e6:8.1f} M points/s"
            )
    return rows
