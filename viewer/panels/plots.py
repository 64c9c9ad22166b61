"""Live frame-time plot (pyqtgraph)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget


class FrameTimePlot(QWidget):
    """Rolling plot of the last ``history`` frame times in milliseconds."""

    def __init__(self, history: int = 300, parent=None) -> None:
        super().__init__(parent)
        self.samples: deque[float] = deque(maxlen=history)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("left", "frame time (ms)")
        self.plot.setLabel("bottom", "frame")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setMouseEnabled(x=False, y=False)
        self.curve = self.plot.plot(pen=pg.mkPen((80, 190, 255), width=2))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def add(self, ms: float) -> None:
        self.samples.append(float(ms))
        self.curve.setData(np.arange(len(self.samples)), np.asarray(self.samples))
