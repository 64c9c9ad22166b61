"""The rendering network: a U-Net whose encoder takes the descriptor rasterization of each scale
at its matching level (as in NPBG), built from gated convolutions (Yu et al. 2019).

Two layouts share the code. ``fold_finest=False`` is the paper's: every pyramid level, the
finest included, is convolved. ``fold_finest=True`` is the fast one used on CPUs: the finest
level is never convolved at full resolution; its descriptors are folded 2x2 into channels
(pixel_unshuffle, which loses nothing) and joined to the next level, and the head predicts the
2x2 block of RGB pixels per half-resolution pixel (pixel_shuffle). Full-resolution convolutions
were about two thirds of the cost, so this is several times faster at the same detail."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class NetworkConfig:
    """descriptor_dim: channels per point; num_scales: rasterization pyramid levels; channels:
    feature width of each convolved level, finest first (num_scales entries, or num_scales - 1
    with fold_finest); gated: gated convolutions; convs: convolutions per U-Net block;
    pixel_head (with fold_finest): width of a per-pixel head at full resolution that sees the
    unfolded decoder features and the pixel's own descriptor (1×1 convolutions, cheap); 0: the
    half-resolution head predicts each 2×2 block of pixels directly."""

    descriptor_dim: int = 8
    num_scales: int = 5
    channels: list[int] = field(default_factory=lambda: [16, 24, 32, 48, 64])
    gated: bool = True
    convs: int = 2
    fold_finest: bool = False
    pixel_head: int = 0

    def __post_init__(self) -> None:
        levels = self.num_scales - (1 if self.fold_finest else 0)
        if len(self.channels) != levels or levels < 1:
            raise ValueError(
                f"channels needs {levels} entries (one per convolved level), "
                f"got {len(self.channels)}"
            )
        if self.convs < 1:
            raise ValueError("convs must be at least 1")
        if self.pixel_head and not self.fold_finest:
            raise ValueError("pixel_head needs fold_finest")


# The network `nsv fit` (and the viewer's Fit panel) trains for a new capture, from scratch:
# plain convolutions (about half the cost of gated ones) reading 16-channel descriptors.
# Held-out, 4,000 steps against the bundled pretrained gated network with 8 at 3,500 (about
# the same fit time): stitch_toy 27.42 vs 26.88 dB, room 29.18 vs 28.65, phone2 27.50 vs 27.58
# (assets/RESULTS.md, session 19). One convolution a block, not two: a fit step 1.17x as fast
# and no worse per step (stitch_toy, 6,500 steps: 28.68 dB / SSIM 0.8987 against 28.50 /
# 0.8989; session 25).
FIT_NETWORK = NetworkConfig(descriptor_dim=16, gated=False, convs=1)


# GatedConv copies the gate's halves before ELU / sigmoid when viewing on a CPU (a switch for
# A/B timing; a fit's step is no faster with it: 211-215 vs 213-219 ms, so training keeps views).
CONTIGUOUS_HALVES = True


class GatedConv(nn.Module):
    """y = ELU(conv_f(x)) * sigmoid(conv_g(x)): the gate lets the network ignore empty pixels."""

    def __init__(self, cin: int, cout: int, gated: bool = True) -> None:
        super().__init__()
        self.gated = gated
        self.conv = nn.Conv2d(cin, cout * (2 if gated else 1), 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if not self.gated:
            return F.elu(y)
        f, g = y.chunk(2, dim=1)
        cl = torch.channels_last
        if (
            CONTIGUOUS_HALVES
            and not torch.is_grad_enabled()
            and y.device.type == "cpu"
            and y.is_contiguous(memory_format=cl)
        ):
            # The halves of a channels_last output are strided views, on which ELU and the
            # sigmoid run far slower in bfloat16 (11 vs 1.2 ms for 24 x 288 x 232 on the
            # 2-core EPYC); copied to contiguous channels_last first they are fast. Same values.
            f, g = f.contiguous(memory_format=cl), g.contiguous(memory_format=cl)
        return F.elu(f) * torch.sigmoid(g)


class Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, gated: bool, convs: int = 2) -> None:
        layers = [GatedConv(cin, cout, gated)]
        layers += [GatedConv(cout, cout, gated) for _ in range(convs - 1)]
        super().__init__(*layers)


class RenderingNetwork(nn.Module):
    """Multi-scale U-Net. ``forward(inputs)`` with inputs[s]: (B, D, H / 2**s, W / 2**s)
    descriptor images (H, W divisible by 2**(num_scales-1)) returns (B, 3, H, W) RGB in [0, 1]."""

    def __init__(self, cfg: NetworkConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or NetworkConfig()
        D, ch = cfg.descriptor_dim, cfg.channels
        first_in = 5 * D if cfg.fold_finest else D  # folded 2x2 finest level + its own level
        self.enc = nn.ModuleList()
        for s in range(len(ch)):
            cin = first_in if s == 0 else ch[s - 1] + D
            self.enc.append(Block(cin, ch[s], cfg.gated, cfg.convs))
        self.dec = nn.ModuleList()
        for s in range(len(ch) - 2, -1, -1):
            self.dec.append(Block(ch[s + 1] + ch[s], ch[s], cfg.gated, cfg.convs))
        if cfg.pixel_head:
            # Half-resolution features become pixel_head features per pixel (a 1×1 projection
            # to 4 × pixel_head, unfolded 2×2), joined with the pixel's own descriptor.
            self.unfold = nn.Conv2d(ch[0], 4 * cfg.pixel_head, 1)
            self.head = nn.Sequential(
                nn.Conv2d(cfg.pixel_head + D, cfg.pixel_head, 1),
                nn.ELU(),
                nn.Conv2d(cfg.pixel_head, 3, 1),
            )
        else:
            self.head = nn.Conv2d(ch[0], 12 if cfg.fold_finest else 3, 1)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        finest = inputs[0]
        if self.cfg.fold_finest:
            inputs = [torch.cat([F.pixel_unshuffle(inputs[0], 2), inputs[1]], 1), *inputs[2:]]
        if inputs[0].device.type == "cpu":
            # oneDNN's convolutions are about a quarter faster on NHWC tensors on CPUs.
            inputs = [x.contiguous(memory_format=torch.channels_last) for x in inputs]
        skips = []
        x = None
        for s, block in enumerate(self.enc):
            x = inputs[s] if s == 0 else torch.cat([F.avg_pool2d(x, 2), inputs[s]], 1)
            x = block(x)
            skips.append(x)
        for i, block in enumerate(self.dec):
            skip = skips[-2 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        if self.cfg.pixel_head:
            x = F.elu(F.pixel_shuffle(self.unfold(x), 2))
            x = self.head(torch.cat([x, finest.to(memory_format=torch.channels_last)], 1))
        else:
            x = self.head(x)
            if self.cfg.fold_finest:
                x = F.pixel_shuffle(x, 2)
        return torch.sigmoid(x).contiguous()


@torch.no_grad()
def widen_descriptors(net: RenderingNetwork, dim: int) -> RenderingNetwork:
    """A copy of ``net`` that reads ``dim``-channel descriptors (``dim`` >= its own) and
    renders exactly as ``net`` does from their first channels: the weights the new channels
    meet start at zero. So a network pretrained for 8-channel descriptors can start the
    training of one for a fit with more."""
    old = net.cfg.descriptor_dim
    if dim < old:
        raise ValueError(f"cannot narrow {old}-channel descriptors to {dim}")
    wide = RenderingNetwork(replace(net.cfg, descriptor_dim=dim))
    own = net.state_dict()
    # Where each old input channel of a descriptor-reading convolution lands in the new one;
    # every other layer keeps its shape.
    moved: dict[str, torch.Tensor] = {}
    for s, block in enumerate(net.enc):
        cin = block[0].conv.in_channels
        if s == 0 and net.cfg.fold_finest:  # 4 unshuffled pixels per channel, then level 1
            idx = torch.cat([torch.arange(4 * old), 4 * dim + torch.arange(old)])
        else:  # the coarser features (or nothing), then the level's descriptors
            idx = torch.arange(cin)
        moved[f"enc.{s}.0.conv.weight"] = idx
    if net.cfg.pixel_head:
        moved["head.0.weight"] = torch.arange(net.head[0].in_channels)
    state = {}
    for k, v in wide.state_dict().items():
        if k in moved:
            w = torch.zeros_like(v)
            w[:, moved[k]] = own[k]
            state[k] = w
        else:
            state[k] = own[k]
    wide.load_state_dict(state)
    return wide


def bf16_runner(net: nn.Module, levels: list[torch.Tensor]) -> torch.Tensor:
    """Run ``net`` on CPU ``levels`` with its convolutions in bfloat16 (for
    ``NeuralPointModel.forward``'s ``runner``); the output (1, 3, H, W) in float32. Only the
    network: the rasterizer's projection must stay in float32."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return net(levels).float()


class Bf16Networks:
    """Viewing copies of networks with their weights already in bfloat16 (channels-last): under
    autocast every convolution casts its weights again on every frame, and the copies run the
    stitch_toy preview network at 453x572 in 31-33 instead of 38-50 ms on the 2-core EPYC
    (outputs within one 8-bit level). When the network's weights have changed since the last
    frame (their tensors' version counters: an optimizer step or ``load_state_dict`` bumps
    them), they are copied into the copy first, so a fit in progress is drawn as it stands."""

    def __init__(self) -> None:
        self._copies: dict[int, tuple[nn.Module, int, nn.Module]] = {}
        self._lock = threading.Lock()

    def run(self, net: nn.Module, levels: list[torch.Tensor]) -> torch.Tensor:
        """levels[s]: (1, D, H / 2**s, W / 2**s) on the CPU, float32 or already bfloat16 (the
        renderer gathers from bf16 descriptors) -> (1, 3, H, W) float32."""
        with self._lock:
            fast = self._current(net)
            return fast([x.to(torch.bfloat16) for x in levels]).float()

    @torch.no_grad()
    def _current(self, net: nn.Module) -> nn.Module:
        version = sum(p._version for p in net.parameters())
        entry = self._copies.get(id(net))
        if entry is not None and entry[0] is net and entry[1] == version:
            return entry[2]
        if entry is not None and entry[0] is net:
            fast = entry[2]
            for dst, src in zip(fast.parameters(), net.parameters(), strict=True):
                dst.copy_(src)
        else:
            fast = copy.deepcopy(net).to(torch.bfloat16).to(memory_format=torch.channels_last)
            fast.eval().requires_grad_(False)
        self._copies[id(net)] = (net, version, fast)
        return fast
