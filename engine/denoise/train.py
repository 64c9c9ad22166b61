"""Training the recurrent denoiser on path-traced sequences, with atomic checkpoints and resume.

Loss (Chaitanya et al. 2017): 0.8 spatial L1 + 0.1 HFEN (L1 of Laplacian-of-Gaussian
filtered images) + 0.1 temporal L1 (of frame-to-frame differences), all on log(1 + x) so
bright highlights don't dominate.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine.checkpoint import (
    load_optimizer_tensors,
    optimizer_tensors,
    read_checkpoint,
    save_model_folder,
    state_dict_mismatch,
    write_checkpoint,
)
from engine.denoise.data import load_sequence
from engine.denoise.model import DenoiserConfig, RecurrentDenoiser
from engine.denoise.reproject import reprojection_grid
from engine.errors import NsvError

WEIGHTS = "denoiser.safetensors"
CONFIG = "denoiser.json"


@dataclass
class TrainConfig:
    steps: int = 2000
    batch: int = 4
    crop: int = 64
    frames: int = 6
    lr: float = 1e-3
    max_spp: int = 4  # inputs average 1..max_spp of the stored 1-spp samples (mostly 1)
    checkpoint_every: int = 200
    seed: int = 0


def _log(x):
    return torch.log1p(x.clamp(min=0))


def _log_kernel(device) -> torch.Tensor:
    x = torch.arange(9, dtype=torch.float32, device=device) - 4
    xx, yy = torch.meshgrid(x, x, indexing="ij")
    s2 = 1.5**2
    r2 = (xx**2 + yy**2) / (2 * s2)
    k = -(1 - r2) * torch.exp(-r2)
    k = k - k.mean()
    return k.expand(3, 1, 9, 9).contiguous()


def hfen(a, b, kernel):
    return (
        (F.conv2d(a, kernel, padding=4, groups=3) - F.conv2d(b, kernel, padding=4, groups=3))
        .abs()
        .mean()
    )


def sequence_loss(outs: list[torch.Tensor], refs: list[torch.Tensor], kernel) -> torch.Tensor:
    spatial = sum(F.l1_loss(_log(o), _log(r)) for o, r in zip(outs, refs, strict=True)) / len(outs)
    grad = sum(hfen(_log(o), _log(r), kernel) for o, r in zip(outs, refs, strict=True)) / len(outs)
    temporal = sum(
        F.l1_loss(_log(outs[t]) - _log(outs[t - 1]), _log(refs[t]) - _log(refs[t - 1]))
        for t in range(1, len(outs))
    ) / max(len(outs) - 1, 1)
    return 0.8 * spatial + 0.1 * grad + 0.1 * temporal


def frame_inputs(seq: dict, t: int, spp: int, k0: int = 0):
    """(radiance, albedo, normal, depth) for frame t as (1, C, H, W), averaging ``spp`` samples."""
    noisy = seq["noisy"][t, k0 : k0 + spp].mean(0)

    def chw(x):
        return x.permute(2, 0, 1)[None] if x.ndim == 3 else x[None, None]

    return chw(noisy), chw(seq["albedo"][t]), chw(seq["normal"][t]), chw(seq["depth"][t])


class DenoiserTrainer:
    def __init__(
        self,
        data_dir: str | Path,
        out_dir: str | Path,
        cfg: TrainConfig,
        model_cfg: DenoiserConfig | None = None,
    ) -> None:
        self.files = sorted(Path(data_dir).glob("seq_*.safetensors"))
        if not self.files:
            raise NsvError(f"{data_dir}: no seq_*.safetensors sequences (run `nsv data denoise`)")
        self.seqs = [load_sequence(f) for f in self.files]
        self.cfg = cfg
        self.out = Path(out_dir)
        torch.manual_seed(cfg.seed)
        self.model = RecurrentDenoiser(model_cfg)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.step = 0
        self.losses: list[float] = []
        self.seconds = 0.0
        self.rng = np.random.default_rng(cfg.seed)
        self.kernel = _log_kernel("cpu")

    def batch(self):
        """A batch of random crops of random sub-sequences: lists over time of inputs
        [radiance, albedo, normal, depth] (B, C, h, w), references (B, 3, h, w) and cameras
        (world-to-camera (B, 4, 4), intrinsics (B, 4) relative to the crop)."""
        c, T = self.cfg.crop, self.cfg.frames
        ins, refs = [[] for _ in range(T)], [[] for _ in range(T)]
        cams = [([], []) for _ in range(T)]
        for _ in range(self.cfg.batch):
            seq = self.seqs[self.rng.integers(len(self.seqs))]
            n, K, H, W, _ = seq["noisy"].shape
            t0 = int(self.rng.integers(0, n - T + 1))
            y, x = int(self.rng.integers(0, H - c + 1)), int(self.rng.integers(0, W - c + 1))
            spp = (
                1
                if self.rng.random() < 0.6
                else int(self.rng.integers(1, min(self.cfg.max_spp, K) + 1))
            )
            for t in range(T):
                r, a, nn_, d = frame_inputs(seq, t0 + t, spp)
                crop = (slice(None), slice(None), slice(y, y + c), slice(x, x + c))
                ins[t].append([r[crop], a[crop], nn_[crop], d[crop]])
                refs[t].append(seq["reference"][t0 + t].permute(2, 0, 1)[None][crop])
                cams[t][0].append(seq["cameras"][t0 + t])
                cams[t][1].append(seq["intrinsics"][t0 + t] - torch.tensor([0, 0, x, y]))
        ins = [[torch.cat([b[i] for b in frame]) for i in range(4)] for frame in ins]
        cams = [(torch.stack(w2c), torch.stack(k)) for w2c, k in cams]
        return ins, [torch.cat(r) for r in refs], cams

    def train_step(self) -> float:
        ins, refs, cams = self.batch()
        state, outs = None, []
        for t, (r, a, n, d) in enumerate(ins):
            motion = None
            if t > 0 and self.model.cfg.reproject:
                motion = reprojection_grid(d, *cams[t], ins[t - 1][3], *cams[t - 1])
            out, state = self.model(r, a, n, d, state if self.model.cfg.recurrent else None, motion)
            outs.append(out)
        loss = sequence_loss(outs, refs, self.kernel)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        value = float(loss.detach())
        self.losses.append(value)
        return value

    def run(self, progress: bool = True, stop=None, until: int | None = None) -> None:
        """Train to cfg.steps (or stop early at step ``until`` / when ``stop`` is set)."""
        from tqdm import tqdm

        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not progress, unit="step")
        t0 = time.perf_counter() - self.seconds
        # Cosine decay over the whole run keeps resumed runs on the same schedule.
        sched_base = self.cfg.lr
        try:
            while self.step < min(self.cfg.steps, until or self.cfg.steps):
                if stop is not None and stop.is_set():
                    break
                for g in self.opt.param_groups:
                    g["lr"] = sched_base * 0.5 * (1 + np.cos(np.pi * self.step / self.cfg.steps))
                self.train_step()
                self.seconds = time.perf_counter() - t0
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(self.losses[-20:]):.4f}", refresh=False)
        finally:
            bar.close()
        self.save_checkpoint()

    # --- persistence -----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """One atomic checkpoint file (see engine.checkpoint), then the exported weights."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(optimizer_tensors(self.opt))
        state = {
            "step": self.step,
            "losses": self.losses,
            "seconds": self.seconds,
            "config": asdict(self.cfg),
            "model": asdict(self.model.cfg),
            "rng": self.rng.bit_generator.state,
        }
        write_checkpoint(self.out / "checkpoint.safetensors", tensors, state)
        summary = {
            "steps": self.step,
            "seconds": round(self.seconds, 1),
            "train": asdict(self.cfg),
            "data": [f.name for f in self.files],
        }
        save_denoiser(self.model, self.out, summary)

    def load_checkpoint(self) -> bool:
        ck = self.out / "checkpoint.safetensors"
        if not ck.is_file():
            return False
        try:
            state, tensors = read_checkpoint(ck)
            theirs = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
            if state_dict_mismatch(self.model.state_dict(), theirs):
                raise ValueError("the checkpoint's model does not match this configuration")
        except Exception as e:
            raise NsvError(f"{ck}: cannot resume ({type(e).__name__}: {e})") from None
        self.model.load_state_dict(theirs)
        load_optimizer_tensors(self.opt, tensors)
        self.step, self.losses, self.seconds = state["step"], state["losses"], state["seconds"]
        self.rng.bit_generator.state = state["rng"]
        return True


def save_denoiser(model: RecurrentDenoiser, folder: Path, summary: dict) -> None:
    save_model_folder(model, folder, WEIGHTS, CONFIG, summary)


def load_denoiser(folder: str | Path, device="cpu") -> RecurrentDenoiser:
    folder = Path(folder)
    try:
        cfg = json.loads((folder / CONFIG).read_text())
        model = RecurrentDenoiser(DenoiserConfig(**cfg["model"]))
        model.load_state_dict(load_file(str(folder / WEIGHTS), device=str(device)))
    except FileNotFoundError as e:
        raise NsvError(f"{folder}: no denoiser here ({Path(e.filename).name} missing)") from None
    except Exception as e:
        raise NsvError(f"{folder}: cannot load the denoiser ({type(e).__name__})") from None
    model.summary = cfg.get("summary", {})
    return model.to(device).eval()
