"""A fast preview network for a fitted neural point scene, distilled from the scene's own
network.

The full rendering network gives the best picture but costs several hundred milliseconds per
frame on a CPU. The viewer shows a *preview network* (the folded layout, several times faster:
``NetworkConfig.fold_finest``) while the camera moves and the full one once it stops. The
preview network reads the same rasterized descriptors and is trained to reproduce the full
network's output (not the photos), so the picture does not change character when the camera
stops; it starts from a pretrained fast network. Training views are crops of the fit's
training cameras (held-out photos' cameras stay unseen), turned by a few degrees so the views a
user flies through are covered too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.camera import Camera, rotation_about
from engine.metrics import ssim_map
from engine.navigation import capture_focus
from engine.npbg.data import ViewSet
from engine.npbg.model import NeuralPointModel, pad_camera
from engine.npbg.network import RenderingNetwork, widen_descriptors
from engine.training import History, TrainingConfig, TrainingJob


@dataclass
class DistillConfig(TrainingConfig):
    # The bundled fast network is ungated (session 16): 2,000 steps from it match stitch_toy's
    # full network at 33.3 dB along an orbit at full size, 1,000 at 31.9 (2.7 vs 5.5 min here).
    steps: int = 2000
    crop: int = 256
    lr: float = 1e-3
    max_side: int = 512
    jitter_deg: float = 12.0  # views turned up to this far from the photo cameras
    # Half the views orbit the point the photos look at by up to this far (yaw; half of it in
    # pitch) and dolly 0.8-1.5x: where a user flies (the viewer orbits that point from a
    # photo's view). 0: photo cameras only.
    orbit_deg: float = 0.0
    ssim_weight: float = 0.2


class PreviewDistiller(TrainingJob):
    """Trains ``student`` (a RenderingNetwork) on ``model``'s rasterized descriptors to
    reproduce ``model.net``'s images; export stores it as ``model.preview`` in ``model_dir``.
    Checkpoints go to ``model_dir / "preview_run"`` (the model folder keeps the fit's)."""

    def __init__(
        self,
        model: NeuralPointModel,
        views: ViewSet,
        student: RenderingNetwork,
        cfg: DistillConfig,
        model_dir: str | Path,
    ) -> None:
        super().__init__(cfg, Path(model_dir) / "preview_run", model.points.device)
        self.model_dir = Path(model_dir)
        self.model = model  # the teacher: read under no_grad, never trained here
        self.views = views
        self.student = student.to(model.points.device).train()
        self.model_cfg = student.cfg
        self.opt = torch.optim.Adam(self.student.parameters(), cfg.lr)
        self.modules = {"student": self.student}
        self.optimizers = {"": self.opt}
        self.history = History(loss=[], match_db=[])
        # Continuing the model's own preview network: its earlier steps and time, summed into
        # the summary the export writes.
        self.earlier = {"steps": 0, "seconds": 0.0}
        cams = [v.camera for v in views.train]
        self.focus = capture_focus(cams)
        up = -np.mean([c.R[1] for c in cams], axis=0)  # the photos' own up
        self.up = up / max(float(np.linalg.norm(up)), 1e-9)

    def _camera(self) -> Camera:
        """A random crop of a photo camera, turned by up to ``jitter_deg`` about its centre, or
        half the time (``orbit_deg``) orbited about the point the photos look at."""
        cam = self.views.sample(self.rng, self.cfg.crop).camera
        if self.cfg.orbit_deg > 0 and self.focus is not None and self.rng.random() < 0.5:
            return self._orbited(cam)
        a = math.radians(self.cfg.jitter_deg)
        turn = rotation_about(np.array([0.0, 1.0, 0.0]), float(self.rng.uniform(-a, a)))
        turn = rotation_about(np.array([1.0, 0.0, 0.0]), float(self.rng.uniform(-a, a))) @ turn
        m = np.eye(4)
        m[:3, :3] = turn
        return cam.with_pose(m @ cam.world_to_camera)

    def _orbited(self, cam: Camera) -> Camera:
        a = math.radians(self.cfg.orbit_deg)
        yaw, pitch = self.rng.uniform(-a, a), self.rng.uniform(-a / 2, a / 2)
        dolly = math.exp(self.rng.uniform(math.log(0.8), math.log(1.5)))
        return orbit_camera(cam, self.focus, self.up, float(yaw), float(pitch), dolly)

    def train_step(self) -> dict[str, float]:
        cam = pad_camera(self._camera(), 2 ** (self.model.config.num_scales - 1))
        with torch.no_grad(), self.model.lock:
            inputs = self.model.rasterize(cam)
            target = self.model.net(inputs)
        pred = self.student(inputs)
        w = self.cfg.ssim_weight
        loss = (1 - w) * F.l1_loss(pred, target) + w * (1 - ssim_map(pred, target).mean())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_step(self.opt)
        mse = F.mse_loss(pred.detach(), target).item()
        self.history.match_db.append(-10 * math.log10(max(mse, 1e-10)))
        return {"loss": float(loss.detach())}

    def extra_state(self) -> dict:
        return {"earlier": self.earlier}

    def load_extra_state(self, state: dict) -> None:
        # The run's own record: the model folder's summary already counts exported steps.
        self.earlier = state.get("earlier", {"steps": 0, "seconds": 0.0})

    def match_db(self) -> float:
        """How closely the preview network matches the full one lately (PSNR on the last 50
        training crops, dB)."""
        return float(np.mean(self.history.match_db[-50:] or [0.0]))

    def export(self) -> None:
        """Write the model folder again with the preview network (atomically)."""
        if not self.is_main:
            return
        with self.model.lock:
            self.model.preview = self.student
            summary = dict(getattr(self.model, "summary", {}) or {})
            summary["preview"] = {
                "steps": self.earlier["steps"] + self.step,
                "seconds": round(self.earlier["seconds"] + self.seconds, 1),
                "psnr_vs_full_network": self.match_db(),
            }
            self.model.save(self.model_dir, summary)


def orbit_camera(
    cam: Camera, pivot: np.ndarray, up: np.ndarray, yaw: float, pitch: float, dolly: float
) -> Camera:
    """``cam`` orbited about ``pivot`` (3,) as the viewer's orbit does: ``yaw`` radians about
    ``up``, ``pitch`` about its right axis, its distance to the pivot times ``dolly``. The pivot
    stays at the same pixel."""
    q = rotation_about(up, yaw) @ rotation_about(cam.R[0], pitch)
    eye = pivot + q @ (cam.position - pivot) * dolly
    rot = cam.R @ q.T  # rows (right, down, forward) turned with the orbit
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, -rot @ eye
    return cam.with_pose(m)


CONTINUE = "model"  # ``preview_distiller``'s network: the model's own preview network


def preview_distiller(
    model: NeuralPointModel,
    scene,
    model_dir: str | Path,
    cfg: DistillConfig,
    network: str | Path | None = None,
) -> PreviewDistiller:
    """The distillation job for a fitted ``model`` of ``scene`` (its photo cameras, at the fit's
    resolution), starting from the fast pretrained ``network`` (default: the bundled one), or
    with ``network="model"`` from the model's own preview network (a longer distillation)."""
    import copy

    from engine.assets import PRETRAINED_PREVIEW
    from engine.errors import NsvError
    from engine.npbg.fit import load_network, network_file

    earlier = None
    if network == CONTINUE:
        if model.preview is None:
            raise NsvError(f"{model_dir}: the model has no preview network to continue")
        student = copy.deepcopy(model.preview)
        earlier = (getattr(model, "summary", {}) or {}).get("preview", {})
    else:
        network = Path(network) if network is not None else PRETRAINED_PREVIEW
        if not network_file(network).is_file():
            raise NsvError(f"{network}: no fast pretrained network there")
        student = load_network(network)
    c, m = student.cfg, model.config
    if c.descriptor_dim < m.descriptor_dim and c.num_scales == m.num_scales:
        # A fit with wider descriptors: the pretrained network starts out reading their first
        # channels and learns the rest.
        student = widen_descriptors(student, m.descriptor_dim)
        c = student.cfg
    if (c.descriptor_dim, c.num_scales) != (m.descriptor_dim, m.num_scales):
        raise NsvError(f"{network}: made for {c.descriptor_dim}-channel descriptors and "
                       f"{c.num_scales} scales; the model has {m.descriptor_dim} and "
                       f"{m.num_scales}")  # fmt: skip
    fit_cfg = (getattr(model, "summary", {}) or {}).get("config", {})
    # The fit's hold-out split: held-out photos' cameras stay unseen, so `nsv eval` judges the
    # preview network on views it was never trained at (not even on the full network's output).
    views = ViewSet(scene, fit_cfg.get("max_side", cfg.max_side), fit_cfg.get("holdout_every", 8))
    job = PreviewDistiller(model, views, student, cfg, model_dir)
    if earlier:
        job.earlier = {"steps": int(earlier.get("steps", 0)),
                       "seconds": float(earlier.get("seconds", 0.0))}  # fmt: skip
    return job
