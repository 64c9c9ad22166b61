"""Device selection: CUDA when present and working, CPU otherwise."""

from __future__ import annotations

import ctypes
import os
import sys

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


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the OS.

    By default glibc serves every allocation above 32 MB with a fresh ``mmap`` and unmaps it on
    free, so each operation on a large image tensor (a 720p denoiser feature map, a 1080p
    network activation) page-faults its whole output in again: on a 2-core CPU that was about
    half of the denoiser's time at 720p. With mmap off and a high trim threshold the heap keeps
    those pages (the resident size stays near the peak of the run, which these workloads
    reach anyway). Called by the ``nsv`` entry point, not on import: a library should not change
    its host's allocator. Linux/glibc only; ``NSV_KEEP_FREED_MEMORY=0`` skips it. Returns
    whether the setting was applied."""
    if os.environ.get("NSV_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc: nothing to tune
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # from glibc's malloc.h
    # One arena: a thread's own arena (the viewer renders on a worker thread) would still
    # unmap and fault in its large blocks.
    return (
        bool(mallopt(m_mmap_max, 0))
        and bool(mallopt(m_trim_threshold, 1 << 30))
        and bool(mallopt(m_arena_max, 1))
    )


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
