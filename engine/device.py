"""Device selection: CUDA when present and working, CPU otherwise."""

from __future__ import annotations

import os

import torch

from engine.memory import keep_freed_memory  # noqa: F401  (re-exported)


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


def cpu_bf16() -> bool:
    """Whether CPU inference may run convolutions in bfloat16: the CPU computes it natively
    (AVX-512 BF16 or AMX; elsewhere oneDNN emulates it, slower than fp32), and
    ``NSV_CPU_BF16`` is not ``0``."""
    if os.environ.get("NSV_CPU_BF16", "1") == "0":
        return False
    cpu = getattr(torch, "cpu", None)
    native = [
        getattr(cpu, f, None) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return any(f() for f in native if f is not None)
