"""Latent mode: scrub a trained HoloGAN's shape (z1) and texture (z2) latents and its pose.

The view shows the newest frame; the controls submit every change to a latest-wins render
worker (stale slider positions are dropped, never queued), so the image follows a dragged slider
as fast as the model renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import NsvError

if TYPE_CHECKING:  # PyTorch and the models load when a model is opened, not with the window
    import torch

    from engine.latent.render import LatentOptions, LatentRenderer
from viewer.worker import RenderRequest, RenderWorker

N_DIRECTIONS = 3


ZOOMS = ("Whole multiples", "Fit to view")
FILTERS = ("Smooth", "Nearest")


class LatentView(QWidget):
    """Shows the generated image (at its own resolution) enlarged by the largest whole multiple
    that fits, or fitted to the view; smooth or nearest-neighbour upscaling. Dragging orbits
    (azimuth / elevation)."""

    orbit = Signal(float, float)  # degrees of azimuth, elevation

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumSize(256, 256)
        self.image: np.ndarray | None = None
        self._qimage: QImage | None = None
        self._last: QPointF | None = None
        self.message = "No HoloGAN model loaded"
        self.zoom = ZOOMS[0]
        self.smooth = True

    def set_display(self, zoom: str | None = None, smooth: bool | None = None) -> None:
        self.zoom = zoom if zoom is not None else self.zoom
        self.smooth = smooth if smooth is not None else self.smooth
        self.update()

    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget pixels."""
        ih, iw = self.image.shape[:2]
        scale = min(self.width() / iw, self.height() / ih)
        if self.zoom == ZOOMS[0] and scale >= 1:
            scale = float(int(scale))  # crisp: every model pixel the same size
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def set_image(self, rgb: np.ndarray) -> None:
        self.image = np.ascontiguousarray(rgb)
        h, w, _ = self.image.shape
        self._qimage = QImage(self.image.data, w, h, 3 * w, QImage.Format_RGB888)
        self.update()

    def paintEvent(self, e) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.black)
        if self._qimage is None:
            p.setPen(Qt.white)
            p.drawText(self.rect(), Qt.AlignCenter, self.message)
            return
        # Keeps the image's aspect (RenderNet's compare view is twice as wide as tall).
        p.setRenderHint(QPainter.SmoothPixmapTransform, self.smooth)
        p.drawImage(self.image_rect(), self._qimage)

    def mousePressEvent(self, e) -> None:
        self._last = e.position()

    def mouseMoveEvent(self, e) -> None:
        if self._last is None:
            return
        d = e.position() - self._last
        self._last = e.position()
        self.orbit.emit(-d.x() * 0.5, d.y() * 0.3)

    def mouseReleaseEvent(self, e) -> None:
        self._last = None


def _slider(lo: int, hi: int, value: int) -> QSlider:
    s = QSlider(Qt.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    return s


class _LatentControls(QGroupBox):
    """Seed, randomize, lock, interpolation target, and principal-direction sliders for one
    latent (z1 or z2)."""

    def __init__(self, title: str, on_change, random_label: str = "Randomize") -> None:
        super().__init__(title)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.random_btn = QPushButton(random_label)
        self.lock = QCheckBox("Lock")
        self.target = QSpinBox(minimum=0, maximum=2**31 - 1, value=1)
        self.mix = _slider(0, 100, 0)
        self.dirs = [_slider(-100, 100, 0) for _ in range(N_DIRECTIONS)]
        form = QFormLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.seed, 1)
        row.addWidget(self.random_btn)
        row.addWidget(self.lock)
        form.addRow("Seed", row)
        row2 = QHBoxLayout()
        row2.addWidget(self.target)
        row2.addWidget(self.mix, 1)
        form.addRow("Slerp to seed", row2)
        # Under each direction slider, where it leads: thumbnails at STRIP_VALUES.
        self.strips = [QLabel() for _ in self.dirs]
        for i, (d, strip) in enumerate(zip(self.dirs, self.strips, strict=True)):
            strip.setToolTip(f"Direction {i + 1} from one end of the slider to the other")
            box = QVBoxLayout()
            box.setSpacing(1)
            box.addWidget(d)
            box.addWidget(strip)
            form.addRow(f"Direction {i + 1}", box)
        self.random_btn.clicked.connect(self.randomize)
        for w in (self.seed, self.target):
            w.valueChanged.connect(on_change)
        for s in (self.mix, *self.dirs):
            s.valueChanged.connect(on_change)
        self.rng = np.random.default_rng()

    def randomize(self) -> None:
        if not self.lock.isChecked():
            self.seed.setValue(int(self.rng.integers(0, 1_000_000)))

    def vector(
        self, dim: int, directions: torch.Tensor | None, override: tuple[int, float] | None = None
    ) -> torch.Tensor:
        """The latent the controls describe; ``override`` = (direction index, slider value in
        [-1, 1]) replaces one slider's value (for its thumbnails)."""
        from engine.latent.hologan import latent_from_seed, slerp

        z = latent_from_seed(self.seed.value(), dim)
        t = self.mix.value() / 100.0
        if t > 0:
            z = slerp(z, latent_from_seed(self.target.value(), dim), t)
        if directions is not None:
            for i, (s, d) in enumerate(zip(self.dirs, directions, strict=False)):
                v = s.value() / 100.0
                if override is not None and override[0] == i:
                    v = override[1]
                z = z + v * 1.5 * d
        return z.clamp(-1.5, 1.5)


STRIP_VALUES = (-1.0, -0.5, 0.0, 0.5, 1.0)


class _StripRenderer:
    """Renders every direction slider's thumbnails for the strip worker: ``render(None, opts)``
    with opts = (LatentOptions, [(z1 batch, z2 batch) per strip]) -> Frame whose image is the
    strips stacked (one row of thumbnails each)."""

    def __init__(self, renderer: LatentRenderer) -> None:
        self.renderer = renderer

    def render(self, camera, opts):
        import time

        from engine.frame import Frame

        t0 = time.perf_counter()
        pose, batches = opts
        rows = [self.renderer.strip(z1, z2, pose) for z1, z2 in batches]
        ms = (time.perf_counter() - t0) * 1000
        return Frame(np.concatenate(rows, 0), camera, ms, 0, str(self.renderer.device))


class ViewDriver(QWidget):
    """What the HoloGAN and RenderNet tabs share: the newest state goes to a latest-wins
    worker, and finished frames are shown in the shared view while this tab is active. A
    subclass provides ``options()``, ``ready()``, the ``azimuth`` / ``elevation`` sliders and a
    ``status`` label."""

    status_prefix = ""

    @property
    def device(self):
        """The torch device (resolved on first use: importing torch waits until then)."""
        if callable(self._device):
            self._device = self._device()
        return self._device

    def __init__(self, view: LatentView, device="cpu", parent=None) -> None:
        super().__init__(parent)
        self.view = view
        self._device = device  # a device, or a function giving it (resolved when first used)
        self.renderer = None
        self.worker = RenderWorker()
        self.worker.frame_ready.connect(self._on_frame)
        self.worker.failed.connect(lambda m: self.status.setText(m))
        self._req = 0
        self.shown_id = -1
        self.active = True  # only the visible tab may draw into the shared view

    def ready(self) -> bool:
        return self.renderer is not None

    def request(self, *_) -> None:
        if not self.ready():
            return
        self._req += 1
        self.worker.submit(RenderRequest(self._req, self.renderer, None, self.options()))

    def _on_frame(self, result) -> None:
        if not self.active or result.id < self.shown_id:
            return  # an older frame finishing late never replaces a newer one
        self.shown_id = result.id
        self.view.set_image(result.frame.image)
        f = result.frame
        self.status.setText(f"{self.status_prefix}{f.render_ms:.1f} ms per frame ({f.device})")

    def orbit(self, d_az: float, d_el: float) -> None:
        self.azimuth.setValue(round(self.azimuth.value() + d_az) % 360)
        self.elevation.setValue(round(self.elevation.value() + d_el))

    @property
    def settled(self) -> bool:
        return self.worker.idle and self.shown_id == self._req

    def shutdown(self) -> None:
        self.worker.stop()


class LatentPanel(ViewDriver):
    """Controls for Latent mode; drives a ``LatentView``."""

    def __init__(self, view: LatentView, device="cpu", parent=None) -> None:
        super().__init__(view, device, parent)
        self.renderer: LatentRenderer | None = None
        self.directions = (None, None)

        self.model_label = QLabel("no model")
        self.model_label.setWordWrap(True)
        open_btn = QPushButton("Open model...")
        open_btn.clicked.connect(self.open_model_dialog)
        self.azimuth = _slider(0, 359, 30)
        self.elevation = _slider(-10, 60, 25)
        self.scale = _slider(70, 130, 100)
        pose = QGroupBox("Pose (or drag the image)")
        pf = QFormLayout(pose)
        pf.addRow("Azimuth", self.azimuth)
        pf.addRow("Elevation", self.elevation)
        pf.addRow("Scale", self.scale)
        self.z1 = _LatentControls("Shape z1 (3D generator)", self.request, "Random shape")
        self.z2 = _LatentControls("Texture z2 (2D renderer)", self.request, "Random texture")
        self.zoom = QComboBox()
        self.zoom.addItems(ZOOMS)
        self.filter = QComboBox()
        self.filter.addItems(FILTERS)
        self.zoom.currentTextChanged.connect(lambda z: self.view.set_display(zoom=z))
        self.filter.currentTextChanged.connect(
            lambda f: self.view.set_display(smooth=f == FILTERS[0])
        )
        display = QHBoxLayout()
        display.addWidget(QLabel("Display"))
        display.addWidget(self.zoom, 1)
        display.addWidget(self.filter, 1)
        self.strip_worker = RenderWorker()
        self.strip_worker.frame_ready.connect(self._on_strips)
        self._strip_req = 0
        self._strip_shown = -1
        self.z2.seed.setValue(7)
        all_btn = QPushButton("Randomize unlocked")
        all_btn.clicked.connect(self.randomize)
        grid_btn = QPushButton("Sample grid...")
        grid_btn.clicked.connect(self.show_grid)
        png_btn = QPushButton("Export PNG...")
        png_btn.clicked.connect(self.export_png_dialog)
        gif_btn = QPushButton("Export turntable...")
        gif_btn.clicked.connect(self.export_turntable_dialog)
        self.status = QLabel("")
        for s in (self.azimuth, self.elevation, self.scale):
            s.valueChanged.connect(self.request)

        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self.model_label, 1)
        top.addWidget(open_btn)
        lay.addLayout(top)
        lay.addWidget(pose)
        lay.addLayout(display)
        lay.addWidget(self.z1)
        lay.addWidget(self.z2)
        buttons = QGridLayout()
        buttons.addWidget(all_btn, 0, 0)
        buttons.addWidget(grid_btn, 0, 1)
        buttons.addWidget(png_btn, 1, 0)
        buttons.addWidget(gif_btn, 1, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addStretch(1)
        self.setEnabled(True)

    # --- model ------------------------------------------------------------------------------
    def load_model(self, folder: str | Path) -> None:
        from engine.latent.render import LatentRenderer
        from engine.latent.train import load_generator

        G = load_generator(folder, self.device)
        self.renderer = LatentRenderer(G, self.device)
        self.directions = self.renderer.principal_directions(N_DIRECTIONS)
        s = getattr(G, "summary", {})
        self.model_label.setText(
            f"HoloGAN {G.cfg.res}x{G.cfg.res} — {Path(folder).name}"
            + (f" ({s.get('total_steps', s['steps'])} steps)" if "steps" in s else "")
        )
        self.view.message = ""
        self.request()

    def open_model_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "HoloGAN model folder (hologan.json)")
        if folder:
            try:
                self.load_model(folder)
            except NsvError as e:
                self.status.setText(str(e))

    # --- state -> request -----------------------------------------------------------------
    def request(self, *_) -> None:
        super().request()
        if self.ready():
            self.request_strips()

    def request_strips(self) -> None:
        """Re-render every direction's thumbnails in the background (latest wins)."""
        import torch

        cfg = self.renderer.cfg
        base1 = self.z1.vector(cfg.z1, self.directions[0])
        base2 = self.z2.vector(cfg.z2, self.directions[1])
        batches = []
        for i in range(N_DIRECTIONS):
            z1 = [self.z1.vector(cfg.z1, self.directions[0], (i, v)) for v in STRIP_VALUES]
            batches.append((torch.stack(z1), base2.expand(len(z1), -1)))
        for i in range(N_DIRECTIONS):
            z2 = [self.z2.vector(cfg.z2, self.directions[1], (i, v)) for v in STRIP_VALUES]
            batches.append((base1.expand(len(z2), -1), torch.stack(z2)))
        self._strip_req += 1
        self.strip_worker.submit(
            RenderRequest(self._strip_req, _StripRenderer(self.renderer), None,
                          (self.options(), batches))
        )  # fmt: skip

    def _on_strips(self, result) -> None:
        if result.id < self._strip_shown:
            return
        self._strip_shown = result.id
        img = result.frame.image
        h = img.shape[0] // (2 * N_DIRECTIONS)
        labels = self.z1.strips + self.z2.strips
        self._strip_images = []
        for k, label in enumerate(labels):
            row = np.ascontiguousarray(img[k * h : (k + 1) * h])
            self._strip_images.append(row)  # QImage does not own its buffer
            q = QImage(row.data, row.shape[1], h, 3 * row.shape[1], QImage.Format_RGB888)
            t = 36  # thumbnail side in the panel
            label.setPixmap(QPixmap.fromImage(q).scaled(t * len(STRIP_VALUES), t))

    @property
    def strips_settled(self) -> bool:
        return self.strip_worker.idle and self._strip_shown == self._strip_req

    def shutdown(self) -> None:
        super().shutdown()
        self.strip_worker.stop()

    def options(self, size: int | None = None) -> LatentOptions:
        from engine.latent.render import LatentOptions

        cfg = self.renderer.cfg
        size = size or cfg.res  # the view enlarges it (see LatentView.set_display)
        return LatentOptions(
            self.z1.vector(cfg.z1, self.directions[0]),
            self.z2.vector(cfg.z2, self.directions[1]),
            float(self.azimuth.value()),
            float(self.elevation.value()),
            self.scale.value() / 100.0,
            size,
        )

    def randomize(self) -> None:
        self.z1.randomize()
        self.z2.randomize()

    # --- grid, export -----------------------------------------------------------------------
    def show_grid(self) -> None:
        if self.renderer is None:
            return
        from viewer.panels.latent_samples import SampleGrid

        SampleGrid(self, self).open()

    def export_png(self, path: str | Path, size: int = 512) -> None:
        import imageio.v3 as iio

        frame = self.renderer.render(None, self.options(size))
        iio.imwrite(path, frame.image)

    def export_turntable(self, path: str | Path, frames: int = 36, size: int = 256) -> None:
        import imageio.v3 as iio

        opts = self.options(size)
        images = []
        for i in range(frames):
            opts.azimuth = 360.0 * i / frames
            images.append(self.renderer.render(None, opts).image)
        if str(path).lower().endswith(".gif"):
            iio.imwrite(path, np.stack(images), duration=80, loop=0)
        else:
            iio.imwrite(path, np.stack(images), fps=12)

    def export_png_dialog(self) -> None:
        if self.renderer is not None:
            path, _ = QFileDialog.getSaveFileName(self, "Export PNG", "latent.png", "PNG (*.png)")
            if path:
                self.export_png(path)

    def export_turntable_dialog(self) -> None:
        if self.renderer is not None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export turntable", "turntable.gif", "GIF (*.gif);;MP4 (*.mp4)"
            )
            if path:
                self.export_turntable(path)
