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


def read_dataset(path: str | Path, filename: str, made_by: str) -> dict[str, torch.Tensor]:
    """The tensors of a generated dataset: ``path`` is its file or the folder holding
    ``filename``; NsvError (one line naming the file) when it is missing or unreadable."""
    from engine.errors import NsvError

    p = Path(path)
    f = p / filename if p.is_dir() else p
    if not f.is_file():
        raise NsvError(f"{path}: no {filename} (run `{made_by}`)")
    try:
        return load_file(str(f))
    except Exception as e:
        raise NsvError(f"{f}: cannot read dataset ({type(e).__name__})") from None


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


def state_dict_mismatch(own: dict, theirs: dict) -> str | None:
    """The first tensor name that is missing, extra or differently shaped, or None."""
    bad = sorted(set(own) ^ set(theirs))
    bad += [k for k in own if k in theirs and own[k].shape != theirs[k].shape]
    return bad[0] if bad else None


def save_model_folder(model, folder: Path, weights: str, config: str, summary: dict) -> None:
    """Export ``model`` (with a dataclass ``cfg``): weights as safetensors, config + training
    summary as JSON, both written atomically."""
    from dataclasses import asdict

    from engine.images import atomic_save_tensors, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(
        {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, folder / weights
    )
    atomic_write_text(
        folder / config, json.dumps({"model": asdict(model.cfg), "summary": summary}, indent=1)
    )


def load_model_folder(folder, weights: str, config: str, build, kind: str, device="cpu"):
    """Inverse of :func:`save_model_folder`: ``build(config_dict)`` makes the module, the
    weights load through safetensors only, and a file of another architecture is rejected with
    a clear message before anything is loaded. Returns the module in eval mode, no grads."""
    from engine.errors import NsvError

    folder = Path(folder)
    try:
        meta = json.loads((folder / config).read_text())
        model = build(meta["model"])
    except FileNotFoundError:
        raise NsvError(f"{folder}: no {kind} here ({config} missing)") from None
    except (KeyError, TypeError, ValueError) as e:
        raise NsvError(f"{folder / config}: not a {kind} config ({e})") from None
    try:
        sd = load_file(str(folder / weights))
    except Exception as e:
        raise NsvError(f"{folder / weights}: cannot read weights ({type(e).__name__})") from None
    bad = state_dict_mismatch(model.state_dict(), sd)
    if bad:
        raise NsvError(
            f"{folder / weights}: weights are for another architecture (mismatch in {bad})"
        )
    model.load_state_dict(sd)
    model.summary = meta.get("summary", {})
    return model.to(device).eval().requires_grad_(False)
