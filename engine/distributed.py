"""Training on several processes (``torchrun``): one per GPU, or several CPU processes with gloo.

Every rank draws the same global batch from the same seeded RNG and computes its share
(items ``rank::world``); gradients are averaged across ranks before each optimizer step, so a
run on N processes follows the single-process run with the same global batch (up to float
summation order). Rank 0 alone writes checkpoints and shows progress.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist


def init_from_env(device: torch.device | str = "cpu") -> tuple[int, int]:
    """(rank, world size). Joins the process group that ``torchrun`` describes in the
    environment (NCCL on CUDA, gloo on the CPU); (0, 1) when not launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
        # Left to the interpreter's teardown, the process group's threads could outlive it:
        # a rank that finished first then aborted ("terminate called without an active
        # exception", about one two-process run in ten).
        atexit.register(_leave)
    return dist.get_rank(), dist.get_world_size()


def _leave() -> None:
    """At exit: wait for the other ranks (rank 0 evaluates and writes after the last step),
    then close the process group while the interpreter is still whole."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def local_device(device: str | None) -> str | None:
    """Under torchrun on CUDA each process takes the GPU of its LOCAL_RANK."""
    if "LOCAL_RANK" in os.environ and (device or "").startswith("cuda") and ":" not in device:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return device


def average_gradients(params) -> None:
    """All-reduce the gradients of ``params`` to their mean over ranks (no-op alone)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    params = [p for p in params if p.requires_grad]
    for p in params:  # a parameter unused on this rank still takes part in the sum
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    if not grads:
        return
    # One flat buffer: one collective per step instead of one per tensor.
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_from_main(modules) -> None:
    """Give every rank rank 0's parameters and buffers (as DDP does when it starts), so runs
    agree even where initialisation drew different random numbers."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for m in modules:
            for t in [*m.parameters(), *m.buffers()]:
                dist.broadcast(t.data, 0)
