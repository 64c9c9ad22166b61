"""A training run with a time budget (TrainingConfig.minutes) lowers its step count to what
fits once it knows this machine's pace, and a resumed run keeps to the lowered count."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from engine.training import TrainingConfig, TrainingJob


@dataclass
class _Cfg(TrainingConfig):
    pass


@dataclass
class _Model:
    width: int = 1


class _SlowJob(TrainingJob):
    """One parameter, a step that takes ``pause`` seconds, a reserve of ``reserve`` seconds."""

    def __init__(self, cfg, out, pause: float, reserve: float = 0.0) -> None:
        super().__init__(cfg, out)
        self.w = torch.nn.Linear(1, 1)
        self.modules = {"w": self.w}
        self.optimizers = {"": torch.optim.SGD(self.w.parameters(), lr=0.01)}
        self.model_cfg = _Model()
        self.pause, self.reserve = pause, reserve
        self.later = pause  # the pause after the first reading of the pace

    def train_step(self) -> dict[str, float]:
        time.sleep(self.pause if self.step < self.BUDGET_AT else self.later)
        loss = self.w(torch.ones(1, 1)).square().mean()
        self.optimizers[""].zero_grad()
        loss.backward()
        self.optimizers[""].step()
        return {"loss": float(loss.detach())}

    def budget_reserve(self) -> float:
        return self.reserve

    def export(self) -> None:
        pass


def test_a_run_over_its_time_budget_takes_fewer_steps_and_a_resumed_one_keeps_to_them(tmp_path):
    # 3,000 steps of >= 4 ms would take 12 s or more; the budget is 3 s, 0.5 of it reserved.
    cfg = _Cfg(steps=3000, checkpoint_every=0, minutes=3 / 60)
    job = _SlowJob(cfg, tmp_path / "run", pause=0.004, reserve=0.5)
    job.run(progress=False)
    # Sleeping alone, 3,000 steps take 12 s: about 600 fit (the machine's own work only lowers it).
    assert TrainingJob.BUDGET_AT < job.step == job.cfg.steps < 1000

    again = _SlowJob(_Cfg(steps=3000, checkpoint_every=0, minutes=3 / 60), tmp_path / "run", 0.0)
    assert again.load_checkpoint()
    assert again.cfg.steps == job.step  # the schedule the run was on, not 3,000
    # Without a budget a run takes exactly its steps.
    exact = _SlowJob(_Cfg(steps=300, checkpoint_every=0), tmp_path / "exact", pause=0.004)
    exact.run(progress=False)
    assert exact.step == exact.cfg.steps == 300


def test_steps_a_passing_load_took_at_the_first_reading_come_back_at_the_second(tmp_path):
    # 4 ms a step while the pace is first read (a load that passes), then 1 ms: the first
    # reading fits ~2,500 of 4,000 steps in 10 s, the second all of them (never more).
    cfg = _Cfg(steps=4000, checkpoint_every=0, minutes=10 / 60)
    job = _SlowJob(cfg, tmp_path / "run", pause=0.004)
    job.later = 0.001
    lowered = []
    job.run(progress=False, callback=lambda j, info: lowered.append(j.cfg.steps))
    assert min(lowered) < 4000  # lowered at the first reading ...
    assert job.step == job.cfg.steps == 4000  # ... and given back at the second


def test_a_step_count_given_on_the_command_line_is_run_exactly_unless_minutes_are_too():
    import argparse

    from nsv.npbg import _fit_args, _fit_config

    def cfg(*argv: str):
        p = argparse.ArgumentParser()
        _fit_args(p)
        return _fit_config(p.parse_args(list(argv)))

    assert cfg().minutes > 0  # the default: within the budget
    for argv in (["--steps", "900"], ["--steps=900"], ["--step", "900"]):
        assert cfg(*argv).minutes == 0 and cfg(*argv).steps == 900, argv
    assert cfg("--steps", "900", "--minutes", "5").minutes == 5
    assert cfg("--steps", "900", "--min=5").minutes == 5
