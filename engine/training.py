"""The training job every trainer shares: the step loop with a progress bar, stop / pause,
a cosine learning-rate schedule, atomic checkpoints of modules + optimizers + RNG + history,
resume that continues the same run, several processes under ``torchrun`` (engine.distributed),
and the command-line conventions around it (refuse to overwrite a run, Ctrl+C saves a
checkpoint).

A trainer subclasses :class:`TrainingJob`, builds its modules and optimizers, and implements
``train_step`` (one optimisation step, returning its losses by name) and ``export`` (write the
user-facing model folder). Everything else lives here once.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import asdict, dataclass
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
from engine.distributed import average_gradients, broadcast_from_main, init_from_env
from engine.errors import NsvError

CHECKPOINT = "checkpoint.safetensors"


class History(dict):
    """Per-step values by name (lists of floats); ``h.loss`` is ``h["loss"]``."""

    def __getattr__(self, name: str) -> list:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class TrainingConfig:
    """What every TrainingJob reads from its config; each trainer's config extends it (and may
    change these defaults)."""

    steps: int = 1000
    checkpoint_every: int = 250  # 0: only at the end
    seed: int = 0
    # A time budget in minutes of training (the job's own clock; 0: none): once the pace of
    # steps BUDGET_FROM..BUDGET_AT is known, ``steps`` is lowered to what fits, the rest of the
    # run's other work (``TrainingJob.budget_reserve``) included, and set again from the pace
    # of BUDGET_AT..BUDGET_AGAIN (never above the steps asked for). Decided that early, the
    # cosine schedule over the new total hardly differs for the steps already taken.
    minutes: float = 0.0


class TrainingJob:
    """Subclasses set, in ``__init__`` (after ``super().__init__``): ``modules`` (checkpoint
    prefix -> nn.Module), ``optimizers`` (tensor-name prefix -> optimizer) and ``model_cfg`` (a
    dataclass: a checkpoint of another architecture is refused); ``cosine_lr`` decays every
    optimizer's learning rate over ``cfg.steps``. ``cfg`` is a ``TrainingConfig``."""

    cosine_lr = True
    export_on_checkpoint = True  # write the user-facing model with every checkpoint
    # Steps: the pace is read over BUDGET_FROM..BUDGET_AT (warmed up) and again over
    # BUDGET_AT..BUDGET_AGAIN, which may give back steps a passing load took at the first.
    BUDGET_FROM, BUDGET_AT, BUDGET_AGAIN = 50, 250, 1000

    def __init__(self, cfg, out_dir: str | Path, device="cpu") -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.step = 0
        self.seconds = 0.0
        self.history = History()
        self.last_eval: dict = {}
        # Same seed on every rank: all draw the same global batch and keep their share.
        self.rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.rank, self.world = init_from_env(device)
        self.modules: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.model_cfg = None
        self.paused = False
        self._until = cfg.steps
        self._asked = cfg.steps  # what a time budget may lower steps from, never raise above

    @property
    def is_main(self) -> bool:
        """Rank 0 (or the only process): writes checkpoints, shows progress."""
        return self.rank == 0

    def say(self, *args) -> None:
        """print() on rank 0 only (one report per run under torchrun), above a progress bar
        if one is showing rather than into it."""
        if self.is_main:
            from tqdm import tqdm

            tqdm.write(" ".join(str(a) for a in args))

    def shard(self, items: list) -> list:
        """This rank's share of a global batch (all of it in a single process)."""
        if len(items) % self.world:
            raise NsvError(
                f"a batch of {len(items)} does not split over {self.world} processes; "
                "choose a batch that is a multiple of the process count"
            )
        return items[self.rank :: self.world]

    def optimizer_step(self, opt: torch.optim.Optimizer) -> None:
        """Average the gradients over ranks, then step (a plain step in one process)."""
        average_gradients([p for g in opt.param_groups for p in g["params"]])
        opt.step()

    # --- to implement ----------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        raise NotImplementedError

    def export(self) -> None:
        """Write the user-facing model (weights + config + summary) to ``self.out``."""
        raise NotImplementedError

    def after_step(self) -> dict:
        """Per-step hook (sample grids, evaluation); what it returns joins the step's info
        (for the callback and the progress bar)."""
        return {}

    def budget_reserve(self) -> float:
        """Seconds the rest of the run will spend outside its steps (evaluations, work at the
        end), for ``cfg.minutes``."""
        return 0.0

    def _keep_to_budget(self, pace: float, until: int | None) -> None:
        """Set ``cfg.steps`` to what ends the run within ``cfg.minutes`` at ``pace`` seconds a
        step: at most the steps asked for, at least one more than taken."""
        left = self.cfg.minutes * 60 - self.seconds - self.budget_reserve()
        fits = min(self._asked, self.step + max(1, int(left / pace)))
        if fits != self.cfg.steps:
            self.say(
                f"at {pace * 1000:.0f} ms a step on this machine, {fits:,} steps fit in "
                f"--minutes {self.cfg.minutes:g} ({self.cfg.steps:,} planned)"
            )
            self.cfg.steps = fits
            self._until = min(fits, until or fits)

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
    ) -> dict:
        """Train to ``cfg.steps`` (or stop at step ``until`` / when ``stop`` is set; wait while
        ``pause`` is set). ``callback(job, info)`` after every step (info: step, losses and
        what ``after_step`` returned). Ends with a checkpoint; returns ``last_eval``."""
        from tqdm import tqdm

        self._until = min(self.cfg.steps, until or self.cfg.steps)
        broadcast_from_main(self.modules.values())
        bar = tqdm(
            total=self._until, initial=self.step, disable=not (progress and self.is_main),
            unit="step", dynamic_ncols=True,
        )  # fmt: skip
        t0 = time.perf_counter() - self.seconds
        paced: dict[int, float] = {}  # step -> this run's clock, where the pace is read
        marks = (self.BUDGET_FROM, self.BUDGET_AT, self.BUDGET_AGAIN)
        try:
            while self.step < self._until:
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
                # One process only: ranks pacing themselves apart would leave each other's
                # collectives waiting.
                if self.cfg.minutes > 0 and self.world == 1 and self.step in marks:
                    if paced:  # the pace since the last mark this run passed
                        before = max(paced)
                        pace = (self.seconds - paced[before]) / (self.step - before)
                        self._keep_to_budget(pace, until)
                        bar.total = self._until
                    paced[self.step] = self.seconds
                info = {"step": self.step, **losses, **self.after_step()}
                every = self.cfg.checkpoint_every  # 0: only at the end
                if every and self.step % every == 0:
                    self.save_checkpoint()
                bar.update(1)
                post = {k: f"{np.mean(self.history[k][-20:]):.4f}" for k in losses}
                if self.last_eval.get("psnr") is not None:
                    post["held-out PSNR"] = f"{self.last_eval['psnr']:.2f}"
                bar.set_postfix(post, refresh=False)
                if callback is not None:
                    callback(self, info)
        finally:
            bar.close()
        self.save_checkpoint()
        return self.last_eval

    # --- persistence -----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """One atomic checkpoint file (engine.checkpoint), then the exported model. Only rank 0
        writes."""
        if not self.is_main:
            return
        tensors = {}
        for prefix, module in self.modules.items():
            tensors.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
        for prefix, opt in self.optimizers.items():
            tensors.update({f"{prefix}{k}": v for k, v in optimizer_tensors(opt).items()})
        state = {
            "step": self.step,
            "seconds": self.seconds,
            "steps": self.cfg.steps,  # as lowered by a time budget
            "history": self.history,
            "config": asdict(self.cfg),
            "model": asdict(self.model_cfg) if self.model_cfg is not None else None,
            "rng": self.rng.bit_generator.state,
        }
        state.update(self.extra_state())
        write_checkpoint(self.out / CHECKPOINT, tensors, state)
        if self.export_on_checkpoint:
            self.export()

    def check_checkpoint(self, path: Path, state: dict, tensors: dict) -> None:
        """Refuse (NsvError) a checkpoint that is not this run's, before anything is loaded."""

    def extra_state(self) -> dict:
        """More JSON state for the checkpoint (see ``load_extra_state``)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def load_checkpoint(self) -> bool:
        """Continue the run in ``self.out``; False when there is none."""
        ck = self.out / CHECKPOINT
        if not ck.is_file():
            return False
        self._base_lrs()
        try:
            state, tensors = read_checkpoint(ck)
        except Exception as e:
            raise NsvError(f"{ck}: cannot read the checkpoint ({type(e).__name__}: {e})") from None
        self.check_checkpoint(ck, state, tensors)
        try:
            if self.model_cfg is not None and state.get("model") != asdict(self.model_cfg):
                raise ValueError("the checkpoint's model does not match this configuration")
            parts = []
            for prefix, module in self.modules.items():
                n = len(prefix) + 1
                sd = {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
                if state_dict_mismatch(module.state_dict(), sd):
                    raise ValueError(f"the {prefix} weights do not match this configuration")
                parts.append((module, sd))
        except ValueError as e:
            raise NsvError(f"{ck}: cannot resume ({e})") from None
        for module, sd in parts:
            module.load_state_dict(sd)
        for prefix, opt in self.optimizers.items():
            n = len(prefix)
            load_optimizer_tensors(
                opt, {k[n:]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        self.step, self.seconds = state["step"], state["seconds"]
        if self.cfg.minutes > 0 and state.get("steps"):  # the budget's total, on its schedule
            self.cfg.steps = min(self.cfg.steps, int(state["steps"]))
        self.history = History(state["history"])
        self.rng.bit_generator.state = state["rng"]
        self.load_extra_state(state)
        return True


# --- command-line conventions, shared by every training command -----------------------------
def check_writable(out: Path) -> None:
    parent = out if out.exists() else out.parent
    if not parent.exists() or not os.access(parent, os.W_OK):
        raise NsvError(f"{out}: cannot write here; choose another --out folder")


def start_or_resume(job, out: Path, resume: bool, instead: str = "choose another --out") -> None:
    """``resume`` loads the checkpoint in ``out``; without it an existing run is refused rather
    than overwritten (the message offers ``instead`` as the other way out)."""
    if resume:
        if not job.load_checkpoint():
            raise NsvError(f"{out}: no checkpoint to resume from")
        job.say(f"resumed at step {job.step}")
    elif (out / CHECKPOINT).exists():
        raise NsvError(
            f"{out}: a training run is already there; pass --resume to continue it, or {instead}"
        )


def run_interruptible(job) -> tuple[bool, object]:
    """(True, ``job.run()``); on Ctrl+C or SIGTERM (a scheduler's preemption, ``kill``) save a
    checkpoint and return (False, None)."""
    import signal

    def on_term(*_args) -> None:
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return True, job.run()
    except KeyboardInterrupt:
        job.save_checkpoint()
        job.say(f"interrupted at step {job.step}; checkpoint saved, continue with --resume")
        return False, None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
