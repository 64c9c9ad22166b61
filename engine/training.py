"""The training job every trainer shares: the step loop with a progress bar, stop / pause,
a cosine learning-rate schedule, atomic checkpoints of modules + optimizers + RNG + history,
resume that continues the same run, and the command-line conventions around it (refuse to
overwrite a run, Ctrl+C saves a checkpoint).

A trainer subclasses :class:`TrainingJob`, builds its modules and optimizers, and implements
``train_step`` (one optimisation step, returning its losses by name) and ``export`` (write the
user-facing model folder). Everything else lives here once.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from engine.checkpoint import (
    load_optimizer_tensors,
    optimizer_tensors,
    read_checkpoint,
    state_dict_mismatch,
    write_checkpoint,
)
from engine.errors import NsvError

CHECKPOINT = "checkpoint.safetensors"


class TrainingJob:
    """Subclasses set, in ``__init__`` (after ``super().__init__``): ``modules`` (checkpoint
    prefix -> nn.Module), ``optimizers`` (tensor-name prefix -> optimizer) and ``model_cfg`` (a
    dataclass: a checkpoint of another architecture is refused); ``cosine_lr`` decays every
    optimizer's learning rate over ``cfg.steps``. ``cfg`` needs ``steps``,
    ``checkpoint_every`` and ``seed``."""

    cosine_lr = True

    def __init__(self, cfg, out_dir: str | Path) -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.step = 0
        self.seconds = 0.0
        self.history: dict[str, list[float]] = {}
        self.rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.modules: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.model_cfg = None
        self.paused = False

    # --- to implement ----------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        raise NotImplementedError

    def export(self) -> None:
        """Write the user-facing model (weights + config + summary) to ``self.out``."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Per-step hook (e.g. sample grids)."""

    # --- the loop --------------------------------------------------------------------------
    def _base_lrs(self) -> list[list[float]]:
        """The configured learning rates, taken before any decay or resume changes them."""
        if getattr(self, "_base", None) is None:
            self._base = [[g["lr"] for g in o.param_groups] for o in self.optimizers.values()]
        return self._base

    def _set_lr(self) -> None:
        if not self.cosine_lr:
            return
        # Cosine over the whole run: a resumed run stays on the same schedule.
        f = 0.5 * (1 + math.cos(math.pi * self.step / self.cfg.steps))
        for opt, base in zip(self.optimizers.values(), self._base_lrs(), strict=True):
            for g, lr in zip(opt.param_groups, base, strict=True):
                g["lr"] = lr * f

    def run(
        self,
        progress: bool = True,
        stop: threading.Event | None = None,
        until: int | None = None,
        pause: threading.Event | None = None,
        callback=None,
    ) -> None:
        """Train to ``cfg.steps`` (or stop at step ``until`` / when ``stop`` is set; wait while
        ``pause`` is set). ``callback(job, losses)`` after every step. Ends with a checkpoint."""
        from tqdm import tqdm

        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not progress, unit="step")
        t0 = time.perf_counter() - self.seconds
        try:
            while self.step < min(self.cfg.steps, until or self.cfg.steps):
                if stop is not None and stop.is_set():
                    break
                if pause is not None and pause.is_set():
                    self.paused = True
                    time.sleep(0.05)
                    t0 += 0.05  # paused time is not training time
                    continue
                self.paused = False
                self._set_lr()
                losses = self.train_step()
                self.step += 1
                for k, v in losses.items():
                    self.history.setdefault(k, []).append(float(v))
                self.seconds = time.perf_counter() - t0
                self.after_step()
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                bar.update(1)
                bar.set_postfix(
                    {k: f"{np.mean(v[-20:]):.4f}" for k, v in self.history.items()}, refresh=False
                )
                if callback is not None:
                    callback(self, losses)
        finally:
            bar.close()
        self.save_checkpoint()

    # --- persistence -----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """One atomic checkpoint file (engine.checkpoint), then the exported model."""
        tensors = {}
        for prefix, module in self.modules.items():
            tensors.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
        for prefix, opt in self.optimizers.items():
            tensors.update({f"{prefix}{k}": v for k, v in optimizer_tensors(opt).items()})
        state = {
            "step": self.step,
            "seconds": self.seconds,
            "history": self.history,
            "config": asdict(self.cfg),
            "model": asdict(self.model_cfg) if self.model_cfg is not None else None,
            "rng": self.rng.bit_generator.state,
        }
        write_checkpoint(self.out / CHECKPOINT, tensors, state)
        self.export()

    def load_checkpoint(self) -> bool:
        """Continue the run in ``self.out``; False when there is none."""
        ck = self.out / CHECKPOINT
        if not ck.is_file():
            return False
        self._base_lrs()
        try:
            state, tensors = read_checkpoint(ck)
            if self.model_cfg is not None and state.get("model") != asdict(self.model_cfg):
                raise ValueError("the checkpoint's architecture differs from this configuration")
            parts = []
            for prefix, module in self.modules.items():
                n = len(prefix) + 1
                sd = {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
                if state_dict_mismatch(module.state_dict(), sd):
                    raise ValueError(f"the {prefix} weights do not match this configuration")
                parts.append((module, sd))
        except Exception as e:
            raise NsvError(f"{ck}: cannot resume ({type(e).__name__}: {e})") from None
        for module, sd in parts:
            module.load_state_dict(sd)
        for prefix, opt in self.optimizers.items():
            n = len(prefix)
            load_optimizer_tensors(
                opt, {k[n:]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        self.step, self.seconds, self.history = state["step"], state["seconds"], state["history"]
        self.rng.bit_generator.state = state["rng"]
        return True


# --- command-line conventions, shared by every training command -----------------------------
def check_writable(out: Path) -> None:
    parent = out if out.exists() else out.parent
    if not parent.exists() or not os.access(parent, os.W_OK):
        raise NsvError(f"{out}: cannot write here; choose another --out folder")


def start_or_resume(job, out: Path, resume: bool) -> None:
    """``resume`` loads the checkpoint in ``out``; without it an existing run is refused rather
    than overwritten."""
    if resume:
        if not job.load_checkpoint():
            raise NsvError(f"{out}: no checkpoint to resume from")
        print(f"resumed at step {job.step}")
    elif (out / CHECKPOINT).exists():
        raise NsvError(
            f"{out}: a training run is already there; pass --resume to continue it, "
            "or choose another --out"
        )


def run_interruptible(job) -> tuple[bool, object]:
    """(True, ``job.run()``); on Ctrl+C save a checkpoint and return (False, None)."""
    try:
        return True, job.run()
    except KeyboardInterrupt:
        job.save_checkpoint()
        print(f"interrupted at step {job.step}; checkpoint saved, continue with --resume")
        return False, None
