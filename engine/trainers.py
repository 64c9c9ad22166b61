"""Every model a user can train from the viewer's Train panel: each is a TrainingJob built from
its data (a data folder, or for ``on_scene`` trainers the open scene), an output folder and a
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
    # (data, out, steps, device, **on_scene): the job. On-scene trainers' data is the scene's
    # path; the panel also passes the loaded ``scene`` and its on-screen ``model`` (the fit also
    # ``pose_every``).
    build: Callable[..., TrainingJob]
    # The steps a run from the panel starts at: the train command's default (its config's
    # ``steps``; a test keeps them equal - the registry stays importable without PyTorch).
    steps: int
    on_scene: bool = False  # trains on the open scene (its photos), not on a data folder


def checkpoint_every(steps: int, least: int = 10, most: int = 250) -> int:
    """How often a run of ``steps`` started from the panel saves: four times in a short run,
    every ``most`` steps in a long one, never more often than every ``least`` steps."""
    return max(least, min(most, steps // 4))


def scene_fit_config(steps: int, pose_every: int = 0):
    """The Train panel's fit of the open scene: ``FitConfig`` defaults, evaluated eight times
    and checkpointed four times, but no more often than `nsv fit` does (an evaluation and a
    checkpoint of a million-point scene take seconds each); the default step count within
    `nsv fit`'s time budget, another exactly (as `nsv fit --steps`)."""
    from engine.npbg.fit import FitConfig

    d = FitConfig()
    return FitConfig(steps=steps, eval_every=max(25, min(d.eval_every, steps // 8)),
                     checkpoint_every=checkpoint_every(steps, 50, d.checkpoint_every),
                     pose_every=pose_every,
                     minutes=d.minutes if steps == d.steps else 0.0)  # fmt: skip


def _scene_fit(data: Path, out: Path, steps: int, device: str, scene=None, model=None,
               pose_every: int = 0) -> TrainingJob:  # fmt: skip
    """NPBG: fit descriptors and the network to the scene's photos, continuing ``model`` (the
    one on screen) when it fits these points, else as `nsv fit` does: a new network
    (``FIT_NETWORK``) trained from scratch with the descriptors."""
    from engine.npbg.fit import Fitter, make_target
    from engine.npbg.network import FIT_NETWORK
    from engine.open_path import load_scene

    scene = scene if scene is not None else load_scene(data)
    cfg = scene_fit_config(steps, pose_every)
    target = make_target(scene, cfg, device=device, name=str(data), net_cfg=FIT_NETWORK)
    if model is not None and model.points.shape == target.model.points.shape:
        target.model = model  # keep improving the model on screen
        model.fit_focal = target.views.focal
    return Fitter([target], cfg, out)


def _scene_preview(data: Path, out: Path, steps: int, device: str, scene=None,
                   model=None) -> TrainingJob:  # fmt: skip
    """The preview network shown while flying, distilled from the scene's fitted ``model``
    (default: the one in ``out``), stored in ``out``."""
    from engine.npbg.distill import DistillConfig, preview_distiller
    from engine.npbg.model import NeuralPointModel
    from engine.open_path import load_scene

    scene = scene if scene is not None else load_scene(data)
    model = model if model is not None else NeuralPointModel.load(out, device=device)
    cfg = DistillConfig(steps=steps, checkpoint_every=checkpoint_every(steps, 25))
    return preview_distiller(model, scene, out, cfg)


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
        Trainer("npbg", "Neural points: fit this scene", "the open scene's photos", _scene_fit,
                7000, on_scene=True),
        Trainer("npbg-preview", "Neural points: preview network for flying",
                "the open scene's fitted model", _scene_preview, 2000, on_scene=True),
        Trainer("denoiser", "Denoiser", "seq_*.safetensors from `nsv data denoise`", _denoiser,
                2000),
        Trainer("hologan", "HoloGAN", "objects.safetensors from `nsv data objects`", _hologan,
                4000),
        Trainer("rendernet", "RenderNet", "rendernet.safetensors from `nsv data voxels`",
                _rendernet, 3000),
    )
}  # fmt: skip
