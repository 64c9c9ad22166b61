"""The rendering network: a U-Net whose encoder takes the descriptor rasterization of each scale
at its matching level (as in NPBG), built from gated convolutions (Yu et al. 2019)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class NetworkConfig:
    """descriptor_dim: channels per point; num_scales: rasterization pyramid levels (the U-Net
    depth); channels: feature width at each level, finest first; gated: gated convolutions."""

    descriptor_dim: int = 8
    num_scales: int = 5
    channels: list[int] = field(default_factory=lambda: [16, 24, 32, 48, 64])
    gated: bool = True

    def __post_init__(self) -> None:
        if len(self.channels) != self.num_scales:
            raise ValueError("channels needs one entry per scale")


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
        return F.elu(f) * torch.sigmoid(g)


class Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, gated: bool) -> None:
        super().__init__(GatedConv(cin, cout, gated), GatedConv(cout, cout, gated))


class RenderingNetwork(nn.Module):
    """Multi-scale U-Net. ``forward(inputs)`` with inputs[s]: (B, D, H / 2**s, W / 2**s)
    descriptor images (H, W divisible by 2**(num_scales-1)) returns (B, 3, H, W) RGB in [0, 1]."""

    def __init__(self, cfg: NetworkConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or NetworkConfig()
        D, ch = cfg.descriptor_dim, cfg.channels
        self.enc = nn.ModuleList()
        for s in range(cfg.num_scales):
            cin = D if s == 0 else ch[s - 1] + D
            self.enc.append(Block(cin, ch[s], cfg.gated))
        self.dec = nn.ModuleList()
        for s in range(cfg.num_scales - 2, -1, -1):
            self.dec.append(Block(ch[s + 1] + ch[s], ch[s], cfg.gated))
        self.head = nn.Conv2d(ch[0], 3, 1)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
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
        return torch.sigmoid(self.head(x))
