"""Training checkpoints as one atomic safetensors file: tensors (weights, optimizer moments)
plus the JSON training state in the file's metadata. A kill at any moment leaves either the
previous or the new checkpoint on disk, never a mix; loading never executes code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state as flat tensors named ``optim.<index>.<name>``."""
    out = {}
    for idx, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"optim.{idx}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return out


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of :func:`optimizer_tensors` (hyper-parameters stay as configured)."""
    state = opt.state_dict()
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state["state"].setdefault(int(idx), {})[name] = v
    opt.load_state_dict(state)


def write_checkpoint(path: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Atomically write ``tensors`` with ``state`` (JSON-serialisable) in the metadata, plus a
    readable ``<name>.json`` copy of the state beside it (not used for resuming)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state)
    tmp = path.with_name(path.name + ".tmp")
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(flat, str(tmp), metadata={"state": text})
    os.replace(tmp, path)
    side = path.with_suffix(".json")
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, side)


def read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(state, tensors) of a checkpoint written by :func:`write_checkpoint`. Raises on
    unreadable, truncated or foreign files (the caller turns that into a one-line error)."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if "state" not in meta:
        raise ValueError("no training state in the file (not an nsv checkpoint)")
    return json.loads(meta["state"]), load_file(str(path))
