"""Live frame-time plot (pyqtgraph)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

REDRAW_MS = 250  # the plot redraws at most 4 times a second


class FrameTimePlot(QWidget):
    """Rolling plot of the last ``history`` frame times in milliseconds."""

    def __init__(self, history: int = 300, busy=None, parent=None) -> None:
        """``busy()``: True while the redraw should wait (the camera is moving)."""
        super().__init__(parent)
        self.samples: deque[float] = deque(maxlen=history)
        self._busy = busy or (lambda: False)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("left", "frame time (ms)")
        self.plot.setLabel("bottom", "frame")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setMouseEnabled(x=False, y=False)
        # Fixed ranges that grow with the data: one sample reads as one point at its time
        # (autoranging on one value zoomed to "frame (x0.001)" from -400 to 400).
        self.plot.enableAutoRange(False)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setXRange(0, 30, padding=0)
        self.plot.setYRange(0, 50, padding=0)
        self.curve = self.plot.plot(pen=pg.mkPen((80, 190, 255), width=2), symbol="o",
                                    symbolSize=4, symbolBrush=(80, 190, 255))  # fmt: skip
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

        # Redrawing a pyqtgraph plot costs 50-100 ms of the GUI thread on a small CPU; per
        # frame it took a core from the renderer (frame-time spikes while moving).
        self._redraw = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._redraw.timeout.connect(self.redraw)

    def add(self, ms: float) -> None:
        self.samples.append(float(ms))
        if not self._redraw.isActive():
            self._redraw.start()

    def redraw(self) -> None:
        if self._busy():  # a redraw mid-drag shows as a frame-time spike: draw after it
            self._redraw.start()
            return
        y = np.asarray(self.samples)
        self.curve.setData(np.arange(len(y)), y)
        # The x axis spans the samples (at least 30 frames), y from 0 to a rounded-up maximum.
        self.plot.setXRange(0, max(30, len(y) - 1), padding=0)
        top = float(np.percentile(y, 99)) * 1.15 if len(y) else 50.0
        step = 10 ** np.floor(np.log10(max(top, 1.0)))
        self.plot.setYRange(0, max(step, np.ceil(top / step) * step), padding=0)


class ErrorPlot(QWidget):
    """relMSE against the reference vs. samples per pixel (log-log): noisy, ours (denoised) and
    Intel OIDN's per-frame result when there is one (the OIDN-guided model computes it anyway)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setLogMode(x=True, y=True)
        self.plot.setLabel("left", "relMSE vs reference")
        self.plot.setLabel("bottom", "samples per pixel")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.addLegend()
        self.noisy = self.plot.plot(pen=pg.mkPen((240, 120, 80), width=2), name="noisy")
        self.denoised = self.plot.plot(pen=pg.mkPen((80, 200, 255), width=2), name="ours")
        self.oidn = self.plot.plot(pen=pg.mkPen((170, 170, 170), width=2), name="Intel OIDN")
        self.curves = {"noisy": self.noisy, "denoised": self.denoised, "oidn": self.oidn}
        self.points: dict[str, dict[int, float]] = {k: {} for k in self.curves}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def add(self, error) -> None:
        """error: engine.frame.ErrorPoint (relMSE of noisy / denoised / OIDN at its spp); spp 1
        starts new curves."""
        spp = int(error.spp)
        if spp == 1:
            self.points = {k: {} for k in self.curves}
        for name in self.curves:
            value = getattr(error, name)
            if value is not None and value > 0:
                self.points[name][spp] = float(value)
        for name, curve in self.curves.items():
            pts = sorted(self.points[name].items())
            if pts:
                curve.setData(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
            else:
                curve.setData([], [])
