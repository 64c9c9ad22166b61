"""Training the recurrent denoiser on path-traced sequences, with atomic checkpoints and resume.

Loss (Chaitanya et al. 2017): 0.8 spatial L1 + 0.1 HFEN (L1 of Laplacian-of-Gaussian
filtered images) + 0.1 temporal L1 (of frame-to-frame differences), all on log(1 + x) so
bright highlights don't dominate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine.checkpoint import save_model_folder
from engine.denoise.data import load_sequence
from engine.denoise.kpcn import KernelConfig, KernelDenoiser
from engine.denoise.model import DenoiserConfig, RecurrentDenoiser
from engine.denoise.reproject import reprojection_grid
from engine.distributed import average_gradients
from engine.errors import NsvError
from engine.training import TrainingConfig, TrainingJob

WEIGHTS = "denoiser.safetensors"
CONFIG = "denoiser.json"


@dataclass
class TrainConfig(TrainingConfig):
    steps: int = 2000
    batch: int = 4
    crop: int = 64
    frames: int = 6
    lr: float = 1e-3
    max_spp: int = 4  # inputs average 1..max_spp of the stored 1-spp samples (mostly 1)
    # Share of crops whose input imitates a high sample count (8..1024 spp): the reference
    # plus the stored samples' deviation from it scaled by sqrt(K / spp), so the model learns
    # to leave well-converged images alone (the viewer accumulates samples while still).
    high_spp: float = 0.2
    checkpoint_every: int = 200


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


HIGH_SPP = (8, 16, 32, 64, 128, 256, 1024)


def build_denoiser(cfg: DenoiserConfig | KernelConfig | None) -> RecurrentDenoiser | KernelDenoiser:
    """The network a configuration describes (the kernel predictor by default)."""
    if isinstance(cfg, DenoiserConfig):
        return RecurrentDenoiser(cfg)
    return KernelDenoiser(cfg)


def config_from_dict(d: dict) -> DenoiserConfig | KernelConfig:
    """The model configuration stored in denoiser.json (older files have no ``arch``)."""
    d = dict(d)
    if d.pop("arch", "recurrent") == "kernel":
        return KernelConfig(**d)
    return DenoiserConfig(**d)


def frame_inputs(seq: dict, t: int, spp: int, k0: int = 0):
    """(radiance, albedo, normal, depth) for frame t as (1, C, H, W), averaging ``spp`` samples;
    ``spp`` above the stored count K uses the frame's ``noisy_spp{spp}`` render when the data
    has one, else imitates it (``TrainConfig.high_spp``)."""
    K = seq["noisy"].shape[1]
    if spp <= K:
        noisy = seq["noisy"][t, k0 : k0 + spp].mean(0)
    elif f"noisy_spp{spp}" in seq:
        noisy = seq[f"noisy_spp{spp}"][t]
    else:
        ref = seq["reference"][t]
        noisy = (ref + (seq["noisy"][t].mean(0) - ref) * (K / spp) ** 0.5).clamp(min=0)

    def chw(x):
        return x.permute(2, 0, 1)[None] if x.ndim == 3 else x[None, None]

    return chw(noisy), chw(seq["albedo"][t]), chw(seq["normal"][t]), chw(seq["depth"][t])


class DenoiserTrainer(TrainingJob):
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
        super().__init__(cfg, out_dir)
        self.model = build_denoiser(model_cfg)
        self.model_cfg = self.model.cfg
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.modules = {"model": self.model}
        self.optimizers = {"": self.opt}
        self.kernel = _log_kernel("cpu")
        self._guides: dict[tuple[int, int, int], torch.Tensor] = {}

    def guide(self, i: int, t: int, spp: int) -> torch.Tensor:
        """OIDN's output (1, 3, H, W) for frame t of sequence i at ``spp`` (the model's
        ``guide``), computed on the whole frame once and kept (float16) for later crops."""
        key = (i, t, spp)
        if key not in self._guides:
            from engine.denoise.oidn import denoise_bchw

            r, a, n, _ = frame_inputs(self.seqs[i], t, spp)
            self._guides[key] = denoise_bchw(r, a, n, self.model.guide_quality(spp)).half()
        return self._guides[key].float()

    @property
    def losses(self) -> list[float]:
        return self.history.get("loss", [])

    def batch(self):
        """A batch of random crops of random sub-sequences: lists over time of inputs
        [radiance, albedo, normal, depth(, OIDN guide)] (B, C, h, w), references (B, 3, h, w) and cameras
        (world-to-camera (B, 4, 4), intrinsics (B, 4) relative to the crop)."""
        c, T = self.cfg.crop, self.cfg.frames
        guided = getattr(self.model.cfg, "oidn", False)
        ins, refs = [[] for _ in range(T)], [[] for _ in range(T)]
        cams = [([], []) for _ in range(T)]
        spps = []
        specs = []  # the global batch: every rank draws it, then builds its share
        for _ in range(self.cfg.batch):
            i = int(self.rng.integers(len(self.seqs)))
            seq = self.seqs[i]
            n, K, H, W, _ = seq["noisy"].shape
            t0 = int(self.rng.integers(0, n - T + 1))
            y, x = int(self.rng.integers(0, H - c + 1)), int(self.rng.integers(0, W - c + 1))
            spp = (
                1
                if self.rng.random() < 0.6
                else int(self.rng.integers(1, min(self.cfg.max_spp, K) + 1))
            )
            if self.rng.random() < self.cfg.high_spp:
                spp = int(HIGH_SPP[self.rng.integers(len(HIGH_SPP))])
            specs.append((i, t0, y, x, spp))
        for i, t0, y, x, spp in self.shard(specs):
            seq = self.seqs[i]
            spps.append(spp)
            for t in range(T):
                r, a, nn_, d = frame_inputs(seq, t0 + t, spp)
                crop = (slice(None), slice(None), slice(y, y + c), slice(x, x + c))
                frame = [r[crop], a[crop], nn_[crop], d[crop]]
                if guided:
                    frame.append(self.guide(i, t0 + t, spp)[crop])
                ins[t].append(frame)
                refs[t].append(seq["reference"][t0 + t].permute(2, 0, 1)[None][crop])
                cams[t][0].append(seq["cameras"][t0 + t])
                cams[t][1].append(seq["intrinsics"][t0 + t] - torch.tensor([0, 0, x, y]))
        ins = [[torch.cat([b[i] for b in frame]) for i in range(len(frame[0]))] for frame in ins]
        cams = [(torch.stack(w2c), torch.stack(k)) for w2c, k in cams]
        return ins, [torch.cat(r) for r in refs], cams, torch.tensor(spps, dtype=torch.float32)

    def train_step(self) -> dict[str, float]:
        ins, refs, cams, spp = self.batch()
        state, outs = None, []
        for t, (r, a, n, d, *guide) in enumerate(ins):
            motion = None
            if t > 0 and self.model.cfg.reproject:
                motion = reprojection_grid(d, *cams[t], ins[t - 1][3], *cams[t - 1])
            out, state = self.model(
                r,
                a,
                n,
                d,
                state if self.model.cfg.recurrent else None,
                motion,
                spp=spp,
                **({"guide": guide[0]} if guide else {}),
            )
            outs.append(out)
        loss = sequence_loss(outs, refs, self.kernel)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(list(self.model.parameters()))  # clip the global gradient
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        return {"loss": float(loss.detach())}

    def export(self) -> None:
        summary = {
            "steps": self.step,
            "seconds": round(self.seconds, 1),
            "train": asdict(self.cfg),
            "data": [f.name for f in self.files],
        }
        save_denoiser(self.model, self.out, summary)


def save_denoiser(model: RecurrentDenoiser | KernelDenoiser, folder: Path, summary: dict) -> None:
    save_model_folder(model, folder, WEIGHTS, CONFIG, summary)


def load_denoiser(folder: str | Path, device="cpu") -> RecurrentDenoiser | KernelDenoiser:
    folder = Path(folder)
    try:
        cfg = json.loads((folder / CONFIG).read_text())
        model = build_denoiser(config_from_dict(cfg["model"]))
        model.load_state_dict(load_file(str(folder / WEIGHTS), device=str(device)))
    except FileNotFoundError as e:
        raise NsvError(f"{folder}: no denoiser here ({Path(e.filename).name} missing)") from None
    except Exception as e:
        raise NsvError(f"{folder}: cannot load the denoiser ({type(e).__name__})") from None
    model.summary = cfg.get("summary", {})
    return model.to(device).eval()


FAST = "fast"  # subfolder of a denoiser folder: a cheaper model for frames while the camera moves


def load_denoisers(folder: str | Path, device="cpu"):
    """(the folder's denoiser, its fast companion in ``folder/fast`` or None). The viewer uses
    the fast one for fresh 1-spp frames (the camera is moving) and the main one as samples
    accumulate; both carry the same state (the previous output), so switching is seamless."""
    folder = Path(folder)
    main = load_denoiser(folder, device)
    fast = folder / FAST
    return main, (load_denoiser(fast, device) if (fast / WEIGHTS).is_file() else None)
