"""Temporal kernel-predicting denoiser (KPCN, Bako et al. 2017; multi-scale kernels, Vogels et
al. 2018; temporal reuse of the reprojected output as in Hasselgren et al. 2020).

Instead of predicting colours, a small U-Net predicts per-pixel filter weights that are applied
to the albedo-demodulated noisy radiance at four scales (full, 1/2, 1/4, 1/8 resolution,
5×5 kernels each, softmax-normalized) and per-pixel weights that blend each scale with the
next coarser one. The previous *denoised output*, reprojected into this frame with the depth and
both cameras, is filtered with a 3×3 kernel and blended in with a predicted per-pixel weight:
with a still camera the result accumulates over frames, on disocclusions it falls back to the
spatial filter. The sample count is an input, so the network learns to trust the input more as
samples accumulate (the viewer feeds it every spp from 1 up).

Within a scale every output pixel is a weighted average of real samples (re-modulated by the
albedo), and the scales are blended per pixel: the filter cannot invent colours, which is why
this generalizes to scenes unlike the training data better than a network that outputs colours.

With ``oidn`` (the *guided* model) Intel Open Image Denoise filters each frame spatially and the
network does what one frame cannot: it sees OIDN's output (the *guide*) with everything else
and predicts only the temporal part (the kernel over the reprojected previous output and its
blend). Trained on two scene kinds, a per-pixel choice between our kernels and OIDN learned
there favoured our kernels and lost on an unseen kind (model card), so the spatial result is
OIDN's, faded to the noisy input itself only at sample counts where the input is converged
(``CONVERGED_SPP``).

Interface as ``RecurrentDenoiser``: ``forward(radiance, albedo, normal, depth, state, motion,
spp, guide=None)`` -> (linear radiance (B, 3, H, W), state); the state is
``[previous output]``; ``guide`` (B, 3, H, W) is computed with OIDN when the model needs one and
none is given (training passes cached ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.denoise.oidn import denoise_bchw
from engine.denoise.reproject import warp
from engine.device import cpu_bf16
from engine.errors import NsvError

MIN_ALBEDO = 0.02  # below this the albedo says nothing useful (see ``demodulation``)
SCALES = 4
TAPS = 5  # spatial kernel size at every scale
TEMPORAL_TAPS = 3
# Guided model: the spatial result fades from OIDN's output to the noisy input between these
# sample counts (log-linear): near convergence OIDN only removes detail (measured on training
# kinds, model card).
CONVERGED_SPP = (256.0, 1024.0)
# Guided model: the filtered history may differ from the pixel's guide value by this factor
# (log) at most, so a bright light smeared by the reprojection or a firefly cannot be carried
# into its surroundings (clamping, as in temporal anti-aliasing). Chosen on validation
# sequences of the training kinds (model card): 0.3 beat 0.5, 0.7 and 1.0 and a clamp to the
# guide's 3×3-neighbourhood range.
HISTORY_TOLERANCE = 0.3


@dataclass
class KernelConfig:
    arch: str = "kernel"
    channels: list[int] = field(default_factory=lambda: [24, 32, 48])
    recurrent: bool = True  # reuse the previous output (False: a per-frame filter)
    reproject: bool = True  # the previous output is warped by the camera motion
    oidn: bool = False  # OIDN filters each frame; the network only reuses the previous output
    # Without OIDN: > 0 clamps the filtered history to within exp(±history_clamp) of this
    # frame's spatial result (0: no clamp). The guided model clamps to its guide
    # (HISTORY_TOLERANCE).
    history_clamp: float = 0.0
    # Guided model: inputs of fewer samples than this get OIDN's "fast" preset as their guide
    # (about half the time of "high" on a CPU, where fresh frames need speed and the temporal
    # part still carries the result above OIDN-high); from it on, "high" (0: always "high").
    fast_guide_below: int = 0


def demodulation(albedo: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) divisor: the albedo (floored) where a surface with an albedo was hit, 1
    elsewhere: the background (the environment itself), and surfaces whose albedo AOV is 0 -
    emitters, glass, metals - which dividing by a floor would turn into values 50x too bright
    for their neighbours' kernels."""
    has_albedo = (depth > 0) & (albedo.amax(1, keepdim=True) >= MIN_ALBEDO)
    return torch.where(has_albedo, albedo.clamp(min=MIN_ALBEDO), torch.ones_like(albedo))


def apply_kernel(img: torch.Tensor, weights: torch.Tensor, size: int) -> torch.Tensor:
    """Per-pixel filtering. img (B, C, H, W); weights (B, size², H, W), summing to 1 over
    taps (row-major offsets). Returns (B, C, H, W). A loop over taps keeps memory at a few
    image-sized buffers instead of an unfold of size² copies; accumulating in place (one fused
    multiply-add per tap, no temporaries) is 4x faster at 720p and autograd handles it."""
    r = size // 2
    H, W = img.shape[-2:]
    padded = F.pad(img, (r, r, r, r), mode="replicate")
    out = torch.zeros_like(img)
    k = 0
    for dy in range(size):
        for dx in range(size):
            out.addcmul_(weights[:, k : k + 1], padded[:, :, dy : dy + H, dx : dx + W])
            k += 1
    return out


def _conv(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.LeakyReLU(0.1, inplace=True))


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class KernelDenoiser(nn.Module):
    IN = 15  # log radiance 3, albedo 3, normal 3, depth 1, previous output 3, valid 1, spp 1
    GUIDE_IN = 3  # log OIDN output (``cfg.oidn``), after the others

    def __init__(self, cfg: KernelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or KernelConfig()
        c0, c1, c2 = cfg.channels
        cin = self.IN + (self.GUIDE_IN if cfg.oidn else 0)
        # The U-Net runs at half resolution (2×2 pixels folded into channels): 4× cheaper.
        self.stem = nn.Sequential(_conv(4 * cin, c0, 1), _conv(c0, c0))
        self.down1 = nn.Sequential(_conv(c0, c1), _conv(c1, c1))
        self.down2 = nn.Sequential(_conv(c1, c2), _conv(c2, c2))
        self.up1 = nn.Sequential(_conv(c2 + c1, c1, 1), _conv(c1, c1))
        self.up0 = nn.Sequential(_conv(c1 + c0, c0, 1), _conv(c0, c0))
        T2, t2 = TAPS * TAPS, TEMPORAL_TAPS * TEMPORAL_TAPS
        # Full resolution (via pixel shuffle): spatial taps, scale blend, temporal taps + blend.
        # (The guided model uses only the temporal ones; one layout keeps warm starts simple.)
        self.head0 = nn.Conv2d(c0, 4 * (T2 + 1 + t2 + 1), 1)
        self.head1 = nn.Conv2d(c0, T2 + 1, 1)  # 1/2: taps + blend with 1/4
        self.head2 = nn.Conv2d(c1, T2 + 1, 1)  # 1/4: taps + blend with 1/8
        self.head3 = nn.Conv2d(c2, T2, 1)  # 1/8: taps

    @property
    def multiple(self) -> int:
        return 8

    @property
    def label(self) -> str:
        """What the viewer's status line calls this denoiser."""
        return "temporal kernels + OIDN guide" if self.cfg.oidn else "temporal kernels"

    def guide_quality(self, spp: int) -> str:
        """OIDN's preset for the guide of an input of ``spp`` samples per pixel."""
        return "fast" if spp < self.cfg.fast_guide_below else "high"

    def _guide(self, radiance, albedo, normal, spp) -> torch.Tensor:
        """OIDN's output (B, 3, H, W) at each item's preset (``spp``: int or (B,) tensor)."""
        counts = torch.as_tensor(spp).reshape(-1).expand(radiance.shape[0]).tolist()
        return torch.cat(
            [
                denoise_bchw(radiance[b : b + 1], albedo[b : b + 1], normal[b : b + 1], q)
                for b, q in enumerate(self.guide_quality(int(c)) for c in counts)
            ]
        )

    def load_compatible(self, state: dict[str, torch.Tensor]) -> None:
        """Warm start from a model without the guide (``cfg.oidn`` False): its weights fill
        the matching slices and the guide's input weights start at zero (ignored)."""
        own = self.state_dict()
        for k, v in state.items():
            if k not in own:
                raise NsvError(f"unexpected weight {k!r} for this denoiser")
            w = own[k]
            if w.shape == v.shape:
                w.copy_(v)
            elif k == "stem.0.0.weight":  # input channels: the guide's come last (unshuffled)
                w.zero_()
                w[:, : v.shape[1]] = v
            else:
                raise NsvError(
                    f"weight {k!r} has shape {tuple(v.shape)}, expected {tuple(w.shape)}"
                )

    def _input_widths(self, channels: list[int]) -> dict[str, list[int]]:
        """Per convolution, the widths of the feature blocks its input is made of (in order)."""
        c0, c1, c2 = channels
        cin = 4 * (self.IN + (self.GUIDE_IN if self.cfg.oidn else 0))
        return {
            "stem.0.0": [cin], "stem.1.0": [c0], "down1.0.0": [c0], "down1.1.0": [c1],
            "down2.0.0": [c1], "down2.1.0": [c2], "up1.0.0": [c2, c1], "up1.1.0": [c1],
            "up0.0.0": [c1, c0], "up0.1.0": [c0],
            "head0": [c0], "head1": [c0], "head2": [c1], "head3": [c2],
        }  # fmt: skip

    def load_wider(self, state: dict[str, torch.Tensor], channels: list[int]) -> None:
        """Warm start from the same model with narrower levels ``channels`` (Net2Net-style):
        its weights fill the leading part of each feature block, the new channels' outgoing
        weights start at zero, so the output is unchanged until training uses them."""
        if any(n < o for n, o in zip(self.cfg.channels, channels, strict=True)):
            raise NsvError(f"channels {channels} are wider than this model's {self.cfg.channels}")
        old, new = self._input_widths(channels), self._input_widths(self.cfg.channels)
        own = self.state_dict()
        for k, v in state.items():
            layer, kind = k.rsplit(".", 1)
            if k not in own or layer not in old:
                raise NsvError(f"unexpected weight {k!r} for this denoiser")
            w = own[k]
            if kind == "bias":
                w[: v.shape[0]] = v  # new channels keep their initial bias
                continue
            rows = v.shape[0]
            w[:rows] = 0  # kept channels ignore the new ones at first
            i = j = 0
            for a, b in zip(old[layer], new[layer], strict=True):
                w[:rows, j : j + a] = v[:, i : i + a]
                i, j = i + a, j + b

    def forward(self, radiance, albedo, normal, depth, state=None, motion=None, spp=1, guide=None):
        """One frame: radiance, albedo, normal (B, 3, H, W), depth (B, 1, H, W) z-depth, H and W
        multiples of ``multiple``; state: None or [previous output (B, 3, H, W)]; motion:
        (grid, valid) from ``reprojection_grid`` (None: a still camera); spp: samples per pixel
        of ``radiance`` (int or (B,) tensor); guide: OIDN's output (B, 3, H, W) for models with
        ``cfg.oidn`` (computed here when None). Returns (denoised (B, 3, H, W), [output])."""
        B, _, H, W = radiance.shape
        div = demodulation(albedo, depth)
        demod = radiance.clamp(min=0) / div
        if state is not None and self.cfg.recurrent:
            prev = state[0]
            if motion is not None and self.cfg.reproject:
                grid, valid = motion
                prev = warp(prev, grid, valid)
            else:
                valid = torch.ones_like(depth)
            prev = prev / div
        else:
            prev, valid = torch.zeros_like(demod), torch.zeros_like(depth)
        spp_t = torch.as_tensor(spp, dtype=radiance.dtype, device=radiance.device)
        spp_map = (torch.log2(spp_t.clamp(min=1)) / 10).reshape(-1, 1, 1, 1).expand(B, 1, H, W)
        d = depth / (depth.flatten(1).amax(1).view(-1, 1, 1, 1) + 1e-6)
        x = [torch.log1p(demod), albedo, normal, d, torch.log1p(prev), valid, spp_map]
        if self.cfg.oidn:
            if guide is None:
                guide = self._guide(radiance, albedo, normal, spp)
            guide = guide.clamp(min=0) / div
            x.append(torch.log1p(guide))
        x = torch.cat(x, 1)
        recurrent = state is not None and self.cfg.recurrent
        T2, t2 = TAPS * TAPS, TEMPORAL_TAPS * TEMPORAL_TAPS
        if self.cfg.oidn:
            lo, hi = (math.log2(x) for x in CONVERGED_SPP)
            share = ((torch.log2(spp_t.clamp(min=1)) - lo) / (hi - lo)).clamp(0, 1)
            out = guide + share.reshape(-1, 1, 1, 1) * (demod - guide)
            if recurrent:
                # Only the temporal taps and blend are used: the head computes just those
                # channels (10 of 36 per pixel; the 144-channel half-resolution map and its
                # pixel shuffle were a third of the network's time at 720p).
                # The features go back to NCHW before the head (24 channels, not its 40).
                d0 = self._unet(x)[0].contiguous()
                first = 4 * (T2 + 1)
                h = F.conv2d(d0, self.head0.weight[first:], self.head0.bias[first:])
                kt, b = F.pixel_shuffle(h, 2).split([t2, 1], 1)
        else:
            d0, d1, e2 = self._unet(x)
            # Per-pixel maps in NCHW: softmax over channels and the tap loop are several times
            # slower on NHWC tensors. The features are made NCHW before the heads (24 channels,
            # not the 144 + 26 the heads make): the heads' output copy and pixel shuffle were
            # 94 of 225 ms at 720p, now 40.
            d0 = d0.contiguous()
            h0 = F.pixel_shuffle(self.head0(d0), 2)
            k0, a0, kt, b = h0.split([T2, 1, t2, 1], 1)
            out = self._spatial(demod, d0, d1, e2, k0, a0)
        if recurrent:
            t = apply_kernel(prev, kt.softmax(1), TEMPORAL_TAPS)
            # The history stays within a factor of this frame's own estimate (the guide, or
            # our spatial result): a reprojected light or a firefly is not carried on.
            tol = HISTORY_TOLERANCE if self.cfg.oidn else self.cfg.history_clamp
            if tol > 0:
                anchor = guide if self.cfg.oidn else out
                lo, hi = anchor * math.exp(-tol), anchor * math.exp(tol) + 1e-3
                t = torch.minimum(torch.maximum(t, lo), hi)
            beta = torch.sigmoid(b) * valid
            out = out + beta * (t - out)
        out = out.clamp(min=0) * div
        return out, [out]

    def _unet(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs (B, IN(+GUIDE_IN), H, W) -> decoder features d0 (H/2), d1 (H/4) and the
        bottleneck e2 (H/8)."""
        if x.device.type == "cpu":
            # oneDNN's convolutions run about twice as fast on NHWC tensors on CPUs (720p);
            # folding an NHWC tensor keeps it NHWC (one copy fewer: 29 -> 20 ms at 720p).
            x = F.pixel_unshuffle(x.contiguous(memory_format=torch.channels_last), 2)
            x = x.contiguous(memory_format=torch.channels_last)
            if not self.training and cpu_bf16():
                # Inference in bf16 where the CPU has it natively: a 720p frame 6-10% faster,
                # held-out PSNR within 0.002 dB (model card). Kernels and filtering stay fp32.
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    feats = self._levels(x)
                return tuple(f.float() for f in feats)
        else:
            x = F.pixel_unshuffle(x, 2)
        return self._levels(x)

    def _levels(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The U-Net on the folded inputs (B, 4·C, H/2, W/2) -> (d0, d1, e2)."""
        e0 = self.stem(x)  # H/2
        e1 = self.down1(F.avg_pool2d(e0, 2))  # H/4
        e2 = self.down2(F.avg_pool2d(e1, 2))  # H/8
        d1 = self.up1(torch.cat([_up(e2, e1.shape[-2:]), e1], 1))
        d0 = self.up0(torch.cat([_up(d1, e0.shape[-2:]), e0], 1))
        return d0, d1, e2

    def _spatial(self, demod, d0, d1, e2, k0, a0) -> torch.Tensor:
        """Multi-scale kernels over the demodulated noisy input (B, 3, H, W) -> (B, 3, H, W)."""
        k1, a1 = self.head1(d0).contiguous().split([TAPS * TAPS, 1], 1)
        k2, a2 = self.head2(d1).contiguous().split([TAPS * TAPS, 1], 1)
        k3 = self.head3(e2).contiguous()
        # The noisy input at four scales, each filtered by its kernels, coarse to fine.
        c = [demod]
        for _ in range(SCALES - 1):
            c.append(F.avg_pool2d(c[-1], 2))
        kernels = [k0, k1, k2, k3]
        f = [apply_kernel(ci, ki.softmax(1), TAPS) for ci, ki in zip(c, kernels, strict=True)]
        # Scales are combined in log space (Vogels et al.: swap a scale's low frequencies for
        # the coarser result): in linear space a bright light's smeared low band minus the
        # coarser estimate goes negative and leaves black rings around it.
        out = torch.log1p(f[3])
        for fi, a in ((f[2], a2), (f[1], a1), (f[0], a0)):
            a = torch.sigmoid(a)
            lf = torch.log1p(fi)
            low = _up(F.avg_pool2d(lf, 2), fi.shape[-2:])
            out = lf + a * (_up(out, fi.shape[-2:]) - low)
        return torch.expm1(out.clamp(max=20))
