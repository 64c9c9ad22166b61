"""Fitting descriptors and the rendering network to photos, with atomic checkpoints and resume.

One :class:`Fitter` handles both stages of the NPBG protocol: pretraining the network across
several scenes (each with its own descriptors), and fitting one scene (descriptors, optionally
fine-tuning a pretrained network). Loss: (1 - w) * L1 + w * (1 - SSIM), w = 0.2 by default:
the paper's VGG perceptual loss needs pretrained VGG weights we cannot download here; SSIM is
the structural term that needs none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine.checkpoint import (
    load_optimizer_tensors,
    optimizer_tensors,
    read_checkpoint,
    write_checkpoint,
)
from engine.errors import NsvError
from engine.metrics import psnr, ssim, ssim_map
from engine.npbg.data import View, ViewSet
from engine.npbg.model import NeuralPointModel
from engine.points.rasterize import gather_features, rasterize_points

CHECKPOINT = "checkpoint.safetensors"


@dataclass
class FitConfig:
    steps: int = 2000
    crop: int = 256
    scale_min: float = 0.75
    scale_max: float = 1.25
    lr_descriptors: float = 0.05
    lr_network: float = 1e-3
    ssim_weight: float = 0.2
    train_network: bool = True
    max_side: int = 512
    holdout_every: int = 8
    eval_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0


@dataclass
class FitTarget:
    """One scene being fitted: its views and its model (the network may be shared)."""

    name: str
    views: ViewSet
    model: NeuralPointModel
    colors: torch.Tensor | None = None  # (N, 3) point colors, for the splatting baseline


@dataclass
class FitHistory:
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    seconds: float = 0.0


class Fitter:
    def __init__(self, targets: list[FitTarget], cfg: FitConfig, out_dir: str | Path) -> None:
        if not targets:
            raise ValueError("nothing to fit")
        self.targets = targets
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.net = targets[0].model.net
        params = [{"params": [t.model.descriptors for t in targets], "lr": cfg.lr_descriptors}]
        if cfg.train_network:
            params.append({"params": list(self.net.parameters()), "lr": cfg.lr_network})
        else:
            self.net.requires_grad_(False)
        self.opt = torch.optim.Adam(params)
        self.step = 0
        self.history = FitHistory()
        self.rng = np.random.default_rng(cfg.seed)
        self.baseline: dict | None = None
        self.paused = False

    # --- training ------------------------------------------------------------------------
    def train_step(self) -> float:
        t = self.targets[self.rng.integers(len(self.targets))]
        view = t.views.sample(self.rng, self.cfg.crop, (self.cfg.scale_min, self.cfg.scale_max))
        device = t.model.points.device
        target = view.image.to(device)[None]
        pred = t.model(view.camera)[None]
        w = self.cfg.ssim_weight
        loss = (1 - w) * F.l1_loss(pred, target) + w * (1 - ssim_map(pred, target).mean())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        with t.model.lock:
            self.opt.step()
        self.step += 1
        value = float(loss.detach())
        self.history.step.append(self.step)
        self.history.loss.append(value)
        return value

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Mean PSNR / SSIM of neural renders over every target's held-out views."""
        ps, ss = [], []
        for t in self.targets:
            for v in t.views.test:
                with t.model.lock:
                    pred = t.model(v.camera).clamp(0, 1)
                target = v.image.to(pred.device)
                ps.append(psnr(pred, target))
                ss.append(ssim(pred, target))
        if not ps:
            return {}
        res = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "views": len(ps)}
        self.history.eval_step.append(self.step)
        self.history.psnr.append(res["psnr"])
        self.history.ssim.append(res["ssim"])
        return res

    @torch.no_grad()
    def splat_baseline(self) -> dict:
        """Held-out PSNR / SSIM of plain point splatting of the point colors (best splat size of
        1, 2, 4, 8 px; empty pixels filled with the median border color of the training photos,
        i.e. the likely background) for comparison."""
        best = {}
        for size in (1, 2, 4, 8):
            ps, ss = [], []
            for t in self.targets:
                model = t.model
                col = t.colors if t.colors is not None else torch.full_like(model.points, 0.5)
                bg = background_color(t.views.train)
                for v in t.views.test:
                    (r,) = rasterize_points(model.points, v.camera, size)
                    img = gather_features(col.to(model.points.device), r)
                    img = torch.where(r.mask[None], img, bg.to(img.device)[:, None, None])
                    ps.append(psnr(img, v.image.to(img.device)))
                    ss.append(ssim(img, v.image.to(img.device)))
            if ps and (not best or np.mean(ps) > best["psnr"]):
                best = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "point_size": size}
        self.baseline = best
        return best

    def run(
        self,
        steps: int | None = None,
        progress: bool = True,
        callback: Callable[[Fitter, dict], None] | None = None,
        stop: threading.Event | None = None,
        pause: threading.Event | None = None,
    ) -> dict:
        """Train until ``steps`` total steps (cfg.steps by default), evaluating and writing
        atomic checkpoints on schedule. ``stop`` ends early (after a checkpoint); while
        ``pause`` is set the loop idles. ``callback(fitter, info)`` runs after every step."""
        from tqdm import tqdm

        total = steps or self.cfg.steps
        bar = tqdm(
            total=total, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True
        )
        last_eval: dict = {}
        t_start = time.perf_counter() - self.history.seconds
        try:
            while self.step < total:
                if stop is not None and stop.is_set():
                    break
                if pause is not None and pause.is_set():
                    self.paused = True  # acknowledged: no step is in flight
                    time.sleep(0.05)
                    t_start += 0.05
                    continue
                self.paused = False
                loss = self.train_step()
                info = {"step": self.step, "loss": loss}
                if self.step % self.cfg.eval_every == 0 or self.step == total:
                    last_eval = self.evaluate()
                    info.update({f"eval_{k}": v for k, v in last_eval.items()})
                self.history.seconds = time.perf_counter() - t_start
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                bar.update(1)
                post = {"loss": f"{loss:.4f}"}
                if last_eval:
                    post["held-out PSNR"] = f"{last_eval['psnr']:.2f}"
                bar.set_postfix(post, refresh=False)
                if callback is not None:
                    callback(self, info)
        finally:
            bar.close()
        self.history.seconds = time.perf_counter() - t_start
        self.save_checkpoint()
        return last_eval

    # --- checkpoints ---------------------------------------------------------------------
    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        for i, t in enumerate(self.targets):
            tensors[f"descriptors.{i}"] = t.model.descriptors.detach()
        tensors.update(optimizer_tensors(self.opt))
        return tensors

    def save_checkpoint(self) -> Path:
        """checkpoint.safetensors: weights, Adam moments and the training state (step,
        history, RNG) in one atomic file (see engine.checkpoint)."""
        state = {
            "step": self.step,
            "config": asdict(self.cfg),
            "history": asdict(self.history),
            "targets": [t.name for t in self.targets],
            "baseline": self.baseline,
            "rng": self.rng.bit_generator.state,
        }
        write_checkpoint(self.out_dir / CHECKPOINT, self._tensors(), state)
        return self.out_dir / CHECKPOINT

    def load_checkpoint(self) -> bool:
        """Resume from out_dir's checkpoint if there is one. Returns True if resumed."""
        ck = self.out_dir / CHECKPOINT
        if not ck.is_file():
            return False
        try:
            state, tensors = read_checkpoint(ck)
        except Exception as e:
            raise NsvError(f"{ck}: cannot read checkpoint ({type(e).__name__}: {e})") from None
        if state["targets"] != [t.name for t in self.targets]:
            raise NsvError(f"{ck}: checkpoint is for {state['targets']}, not this scene")
        self._check_compatible(ck, tensors)
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        with torch.no_grad():
            for i, t in enumerate(self.targets):
                t.model.descriptors.copy_(tensors[f"descriptors.{i}"])
        load_optimizer_tensors(self.opt, tensors)
        self.step = int(state["step"])
        self.history = FitHistory(**state["history"])
        self.baseline = state.get("baseline")
        self.rng.bit_generator.state = state["rng"]
        return True

    def _check_compatible(self, ck: Path, tensors: dict[str, torch.Tensor]) -> None:
        """Reject a checkpoint whose shapes don't match before anything is loaded."""
        for i, t in enumerate(self.targets):
            d = tensors.get(f"descriptors.{i}")
            want = tuple(t.model.descriptors.shape)
            if d is None or tuple(d.shape) != want:
                got = None if d is None else tuple(d.shape)
                raise NsvError(
                    f"{ck}: checkpoint has descriptors {got}, this scene needs {want} "
                    "(different point cloud or descriptor size)"
                )
        own = self.net.state_dict()
        theirs = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        bad = [k for k in own if k not in theirs or theirs[k].shape != own[k].shape]
        if bad or len(theirs) != len(own):
            raise NsvError(
                f"{ck}: checkpoint network does not match this configuration "
                f"({len(bad)} mismatched tensors, e.g. {bad[:1]})"
            )

    def export(self, scene_source: str | None = None) -> Path:
        """Write the fitted model of the first target (the scene being fitted)."""
        t = self.targets[0]
        summary = {
            "steps": self.step,
            "seconds": round(self.history.seconds, 1),
            "held_out_psnr": self.history.psnr[-1] if self.history.psnr else None,
            "held_out_ssim": self.history.ssim[-1] if self.history.ssim else None,
            "splat_baseline": self.baseline,
            "held_out_views": [v.name for v in t.views.test],
            "train_views": len(t.views.train),
            "config": asdict(self.cfg),
            "scene": scene_source,
        }
        t.model.save(self.out_dir, summary)
        return self.out_dir


def network_file(path: str | Path) -> Path:
    """The weights file of a pretrained network folder (or the file itself)."""
    path = Path(path)
    if path.is_dir():
        name = "network.safetensors"
        path = path / (name if (path / name).is_file() else "model.safetensors")
    return path


def network_config_of(path: str | Path):
    """The NetworkConfig recorded beside a pretrained network (``network.json`` from
    ``nsv pretrain`` or a fitted scene's ``config.json``), or None when there is none."""
    import json

    from engine.npbg.network import NetworkConfig

    path = network_file(path)
    for name in ("network.json", "config.json"):
        meta = path.parent / name
        if meta.is_file():
            try:
                return NetworkConfig(**json.loads(meta.read_text())["network"])
            except Exception:
                raise NsvError(f"{meta}: not a network description") from None
    return None


def load_network_weights(model: NeuralPointModel, path: str | Path) -> None:
    """Load a pretrained rendering network (``network.safetensors`` from ``nsv pretrain``, or a
    fitted scene's ``model.safetensors``) into ``model``."""
    path = network_file(path)
    try:
        tensors = load_file(str(path))
        net = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        model.net.load_state_dict(net)
    except FileNotFoundError:
        raise NsvError(f"{path}: no such network file") from None
    except Exception as e:
        raise NsvError(f"{path}: cannot load network weights ({type(e).__name__}: {e})") from None


def make_target(
    scene, cfg: FitConfig, net=None, device="cpu", name: str | None = None, net_cfg=None
) -> FitTarget:
    """A FitTarget for a loaded Scene: views split, descriptors initialised from colors."""
    from engine.npbg.network import RenderingNetwork

    views = ViewSet(scene, cfg.max_side, cfg.holdout_every)
    model = NeuralPointModel.create(scene.points, scene.colors, net_cfg, seed=cfg.seed)
    if net is not None:
        model.net = net
    elif net_cfg is not None:
        model.net = RenderingNetwork(net_cfg)
    model = model.to(device)
    colors = torch.from_numpy(scene.colors_or_default()).to(device)
    return FitTarget(name or str(scene.source), views, model, colors)


def background_color(views: list[View]) -> torch.Tensor:
    """(3,) median color of the photos' one-pixel borders: the likely background."""
    border = []
    for v in views:
        im = v.image
        border += [im[:, 0, :], im[:, -1, :], im[:, :, 0], im[:, :, -1]]
    return torch.cat(border, dim=1).median(dim=1).values
