"""Device selection: CUDA when present and working, CPU otherwise."""

from __future__ import annotations

import os

import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to compute on. ``prefer`` (or $NSV_DEVICE) may be 'cpu', 'cuda' or 'cuda:N'."""
    prefer = prefer or os.environ.get("NSV_DEVICE")
    if prefer:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} requested but CUDA is not available")
        return dev
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def describe(device: torch.device) -> str:
    """Short human-readable name, e.g. 'CPU (2 threads)' or 'CUDA: NVIDIA H100'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"
