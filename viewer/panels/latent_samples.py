"""The Latent dock's sample grid: 16 random (z1, z2) seeds at the current pose to pick from."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QDialog, QGridLayout, QToolButton

if TYPE_CHECKING:
    from viewer.panels.latent import LatentPanel


class SampleGrid(QDialog):
    """A 4x4 grid of random (z1, z2) seeds at the current pose; clicking one picks it (locked
    latents keep their seed)."""

    def __init__(self, panel: LatentPanel, parent=None) -> None:
        import torch

        from engine.latent.hologan import latent_from_seed

        super().__init__(parent)
        self.setWindowTitle("Pick a sample")
        self.panel = panel
        rng = np.random.default_rng()
        lay = QGridLayout(self)
        r = panel.renderer
        cfg = r.cfg
        seeds = []
        for _ in range(16):
            s1 = panel.z1.seed.value() if panel.z1.lock.isChecked() else int(rng.integers(1e6))
            s2 = panel.z2.seed.value() if panel.z2.lock.isChecked() else int(rng.integers(1e6))
            seeds.append((s1, s2))
        z1 = torch.stack([latent_from_seed(a, cfg.z1) for a, _ in seeds])
        z2 = torch.stack([latent_from_seed(b, cfg.z2) for _, b in seeds])
        n = len(seeds)
        imgs = r.generate(z1, z2, [panel.azimuth.value()] * n, [panel.elevation.value()] * n)
        self._keep = []
        for i, (img, (s1, s2)) in enumerate(zip(imgs, seeds, strict=True)):
            rgb = np.ascontiguousarray((img.permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8))
            qimg = QImage(
                rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format_RGB888
            )
            self._keep.append(rgb)
            btn = QToolButton()
            btn.setIcon(QIcon(QPixmap.fromImage(qimg.scaled(96, 96))))
            btn.setIconSize(qimg.scaled(96, 96).size())
            btn.setToolTip(f"z1 seed {s1}, z2 seed {s2}")
            btn.clicked.connect(lambda _=False, a=s1, b=s2: self.pick(a, b))
            lay.addWidget(btn, i // 4, i % 4)

    def pick(self, s1: int, s2: int) -> None:
        self.panel.z1.seed.setValue(s1)
        self.panel.z2.seed.setValue(s2)
        self.accept()
