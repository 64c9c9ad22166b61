"""The models a user can train from the viewer's Train panel besides fitting the open scene
(which is NPBG's Fitter): each is a TrainingJob built from a data folder, an output folder and a
step count. The CLI's train commands expose every option; this is the short form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry itself is light: the viewer lists it before PyTorch loads
    from engine.training import TrainingJob


@dataclass(frozen=True)
class Trainer:
    key: str
    label: str
    data_hint: str  # what the data folder must hold, and how to make it
    build: Callable[[Path, Path, int, str], TrainingJob]  # (data, out, steps, device)


def checkpoint_every(steps: int, least: int = 10) -> int:
    """How often a run of ``steps`` started from the panel saves: four times in a short run,
    every 250 steps in a long one, never more often than every ``least`` steps."""
    return max(least, min(250, steps // 4))


def scene_fit_config(steps: int, pose_every: int = 0):
    """The Train panel's fit of the open scene: ``FitConfig`` defaults, evaluated eight times
    (at most every 250 steps) and checkpointed four times."""
    from engine.npbg.fit import FitConfig

    return FitConfig(steps=steps, eval_every=max(25, min(250, steps // 8)),
                     checkpoint_every=checkpoint_every(steps, 50), pose_every=pose_every)  # fmt: skip


def _denoiser(data: Path, out: Path, steps: int, device: str) -> TrainingJob:
    from engine.denoise.kpcn import KernelConfig
    from engine.denoise.train import DenoiserTrainer, TrainConfig

    # The bundled main model's layout: OIDN filters each frame, the network learns the
    # temporal part (see assets/denoiser/MODEL_CARD.md).
    cfg = TrainConfig(steps=steps, checkpoint_every=checkpoint_every(steps))
    return DenoiserTrainer(data, out, cfg, KernelConfig(oidn=True))


def _hologan(data: Path, out: Path, steps: int, device: str) -> TrainingJob:
    from engine.latent.train import HoloGANTrainConfig, HoloGANTrainer

    every = checkpoint_every(steps)
    cfg = HoloGANTrainConfig(steps=steps, checkpoint_every=every, sample_every=every)
    return HoloGANTrainer(data, out, cfg, device=device)


def _rendernet(data: Path, out: Path, steps: int, device: str) -> TrainingJob:
    from engine.latent.rendernet import RenderNetTrainConfig, RenderNetTrainer

    cfg = RenderNetTrainConfig(steps=steps, checkpoint_every=checkpoint_every(steps))
    return RenderNetTrainer(data, out, cfg, device=device)


TRAINERS: dict[str, Trainer] = {
    t.key: t
    for t in (
        Trainer("denoiser", "Denoiser", "seq_*.safetensors from `nsv data denoise`", _denoiser),
        Trainer("hologan", "HoloGAN", "objects.safetensors from `nsv data objects`", _hologan),
        Trainer(
            "rendernet", "RenderNet", "rendernet.safetensors from `nsv data voxels`", _rendernet
        ),
    )
}
