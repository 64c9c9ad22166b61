"""The allocator setting the ``nsv`` entry point applies (free of PyTorch: it runs before the
window shows)."""

from __future__ import annotations

import ctypes
import os
import sys


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
