"""Train panel: its Model list is the trainer registry (engine.trainers.TRAINERS). Fit neural
point descriptors to the open scene's photos in the background, with live loss / held-out PSNR
plots, while the viewport keeps rendering the model being trained; distil the scene's preview
network; or train any other model (denoiser, HoloGAN, RenderNet) on a data folder, with the
same Start / Pause / Stop and live loss plot."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import NsvError
from engine.trainers import TRAINERS

SCENE_FIT = "npbg"  # the Model combo's first entry: fit the open scene (NPBG)
SCENE_PREVIEW = "npbg-preview"  # distil the open scene's preview network (engine.npbg.distill)


class _FitSignals(QObject):
    ready = Signal(object)  # the Fitter, once photos are loaded and the model exists
    progress = Signal(dict)
    finished = Signal(str)  # output folder
    failed = Signal(str)


class FitPanel(QWidget):
    """Start / pause / stop NPBG fitting on the window's scene, or training of another model."""

    # The live preview costs the fit little: a half-resolution frame every 2 s (full quality
    # when paused, finished, or when the user moves the camera and stops).
    PREVIEW_EVERY_S = 2.0
    PREVIEW_SCALE = 0.5

    def __init__(self, window, parent=None) -> None:
        super().__init__(parent)
        self.window = window
        self.fitter = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._last_preview = 0.0
        self._t0 = 0.0
        self._first_step = 0
        self._busy = False
        self.signals = _FitSignals()
        self.signals.ready.connect(self._on_ready)
        self.signals.progress.connect(self._on_progress)
        self.signals.finished.connect(self._on_finished)
        self.signals.failed.connect(self._on_failed)

        self.model = QComboBox()
        for t in TRAINERS.values():
            self.model.addItem(t.label, t.key)
        self.model.currentIndexChanged.connect(self._on_model)
        self.data = QLineEdit(placeholderText="training data folder")
        self.out = QLineEdit(placeholderText="output folder (a run there is resumed)")
        data_row, out_row = QHBoxLayout(), QHBoxLayout()
        for row, edit, title in ((data_row, self.data, "Training data"),
                                 (out_row, self.out, "Output folder")):  # fmt: skip
            browse = QPushButton("Browse...")
            browse.clicked.connect(lambda _=False, e=edit, t=title: self._browse(e, t))
            row.addWidget(edit, 1)
            row.addWidget(browse)
        self.steps = QSpinBox(minimum=10, maximum=1_000_000, value=2000, singleStep=500)
        self.refine_poses = QCheckBox("Refine the photos' camera poses")
        self.refine_poses.setToolTip(
            "Every fifth of the run, align each training photo's camera to the rendering "
            "(small corrections; for captures whose poses are slightly off)"
        )
        self.start_btn = QPushButton("Start")
        self.pause_btn = QPushButton("Pause", checkable=True, enabled=False)
        self.stop_btn = QPushButton("Stop", enabled=False)
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.toggled.connect(self._on_pause)
        self.stop_btn.clicked.connect(self.stop)
        self.bar = QProgressBar(minimum=0, maximum=100, value=0)
        self.status = QLabel("Open a scene with photos (e.g. a COLMAP folder) to fit it.")
        self.status.setWordWrap(True)

        self.loss_plot = pg.PlotWidget(title="training loss")
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen((255, 170, 60), width=1.5))
        self.psnr_plot = pg.PlotWidget(title="held-out PSNR (dB)")
        self.psnr_curve = self.psnr_plot.plot(
            pen=pg.mkPen((80, 220, 120), width=2), symbol="o", symbolSize=5
        )
        for p in (self.loss_plot, self.psnr_plot):
            p.showGrid(x=True, y=True, alpha=0.3)
            p.setMinimumHeight(110)

        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Data", data_row)
        form.addRow("Output", out_row)
        form.addRow("Steps", self.steps)
        form.addRow("", self.refine_poses)
        self._rows = [data_row, out_row]
        self._form = form
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.pause_btn, self.stop_btn):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(self.psnr_plot, 1)
        self._on_model()

    @property
    def kind(self) -> str:
        return self.model.currentData()

    def _on_model(self, _index: int = 0) -> None:
        scene_fit = TRAINERS[self.kind].on_scene
        for row in self._rows:
            for i in range(row.count()):
                row.itemAt(i).widget().setVisible(not scene_fit)
            self._form.labelForField(row).setVisible(not scene_fit)
        self.psnr_plot.setVisible(scene_fit)
        self.refine_poses.setVisible(self.kind == SCENE_FIT)
        if not self.running:
            self.steps.setValue(TRAINERS[self.kind].steps)
            self.status.setText(
                "Open a scene with photos (e.g. a COLMAP folder) to fit it."
                if scene_fit
                else f"Data: {TRAINERS[self.kind].data_hint}."
            )

    def _browse(self, edit: QLineEdit, title: str) -> None:
        path = QFileDialog.getExistingDirectory(self, title, edit.text())
        if path:
            edit.setText(path)

    @property
    def running(self) -> bool:
        """True from Start until the GUI has handled the end (saved result or error)."""
        return self._busy or (self._thread is not None and self._thread.is_alive())

    # --- control ---------------------------------------------------------------------------
    def start(self) -> None:
        win = self.window
        scene = win.scene
        if self.running:
            return
        if not TRAINERS[self.kind].on_scene:
            self._start_job()
            return
        if scene is None or not any(v.has_image for v in scene.views):
            win.show_error("Fitting needs a scene with photos and cameras (a COLMAP folder).")
            return
        if self.kind == SCENE_PREVIEW:
            self._start_preview()
            return
        from engine.npbg.files import writable_model_dir

        out = writable_model_dir(win.scene_path)
        existing = win.viewport.neural.model if win.viewport.neural is not None else None
        pose_every = max(20, self.steps.value() // 5) if self.refine_poses.isChecked() else 0
        args = (
            scene,
            out,
            self.steps.value(),
            existing,
            win.device,
            str(win.scene_path),
            pose_every,
        )
        self._launch(self._run, args, f"Loading photos... (saving to {out})")

    def _start_preview(self) -> None:
        """Distil a preview network from the open scene's fitted model, in place."""
        from engine.npbg.files import find_fitted_model

        win = self.window
        neural = win.viewport.neural
        model_dir = find_fitted_model(win.scene_path)
        if neural is None or model_dir is None:
            win.show_error("Fit the scene first: the preview network learns from its network.")
            return
        on_scene = {"scene": win.scene, "model": neural.model}  # loaded already: not again
        args = (SCENE_PREVIEW, Path(str(win.scene_path)), model_dir, self.steps.value(),
                str(win.device), on_scene)  # fmt: skip
        self._launch(self._run_job, args, f"Loading photos... (saving to {model_dir})")

    def _start_job(self) -> None:
        data, out = self.data.text().strip(), self.out.text().strip()
        if not data or not out:
            self.window.show_error("Choose the training data folder and an output folder.")
            return
        args = (self.kind, Path(data), Path(out), self.steps.value(), str(self.window.device))
        self._launch(self._run_job, args, f"Loading {data} ...")

    def _launch(self, target, args: tuple, status: str) -> None:
        """Reset the controls and run ``target(*args)`` on the training thread."""
        self._stop.clear()
        self._pause.clear()
        self.pause_btn.setChecked(False)
        self._set_running(True)
        self.status.setText(status)
        self.bar.setMaximum(self.steps.value())
        self._thread = threading.Thread(target=target, args=args, name="nsv-train", daemon=True)
        self._t0 = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.status.setText("Stopping after the current step (a checkpoint is written)...")

    def _on_pause(self, paused: bool) -> None:
        (self._pause.set if paused else self._pause.clear)()
        self.pause_btn.setText("Resume" if paused else "Pause")
        if paused and self.kind == SCENE_FIT:
            self.window.viewport.settings_changed()  # paused: the CPU is free for full quality

    def _set_running(self, running: bool) -> None:
        self._busy = running
        self.start_btn.setEnabled(not running)
        self.pause_btn.setEnabled(running)
        self.stop_btn.setEnabled(running)
        self.steps.setEnabled(not running)
        self.refine_poses.setEnabled(not running)

    # --- worker thread ------------------------------------------------------------------------
    def _run(
        self, scene, out: Path, steps: int, existing, device, scene_path: str, pose_every: int = 0
    ) -> None:
        try:
            fitter = TRAINERS[SCENE_FIT].build(Path(scene_path), out, steps, device, scene=scene,
                                               model=existing, pose_every=pose_every)  # fmt: skip
            resumed = fitter.load_checkpoint() if existing is None else False
            if fitter.baseline is None:
                fitter.splat_baseline()
            self.fitter = fitter
            self.signals.ready.emit({"fitter": fitter, "resumed": resumed})
            fitter.run(
                steps, progress=False, callback=self._callback, stop=self._stop, pause=self._pause
            )
            fitter.finish(scene_path)
            self.signals.finished.emit(str(out))
        except Exception as e:
            self._failed(e, "fitting")

    def _run_job(self, kind: str, data: Path, out: Path, steps: int, device: str,
                 on_scene: dict | None = None) -> None:  # fmt: skip
        try:
            self._drive(TRAINERS[kind].build(data, out, steps, device, **(on_scene or {})), out)
        except Exception as e:
            self._failed(e, "training")

    def _drive(self, job, out: Path) -> None:
        """On the worker thread: continue an earlier run in ``out`` if there is one, train with
        the panel's stop / pause, report through the signals."""
        resumed = job.load_checkpoint()
        self.fitter = job
        self.signals.ready.emit({"fitter": job, "resumed": resumed})
        job.run(progress=False, callback=self._callback, stop=self._stop, pause=self._pause)
        self.signals.finished.emit(str(out))

    def _failed(self, e: Exception, what: str) -> None:
        """From the worker thread: a user error in its own words, anything else with a trace
        on stderr and its type in the panel."""
        if isinstance(e, NsvError):
            self.signals.failed.emit(str(e))
            return
        import traceback

        traceback.print_exception(e)
        self.signals.failed.emit(f"{what} failed: {type(e).__name__}: {e}")

    def _callback(self, fitter, info: dict) -> None:
        self.signals.progress.emit(info)

    # --- GUI thread -----------------------------------------------------------------------------
    def _on_ready(self, payload: dict) -> None:
        from engine.npbg.render import NeuralRenderer

        fitter = payload["fitter"]
        self._first_step = fitter.step
        if self.kind == SCENE_PREVIEW:
            resumed = f" (resumed at step {fitter.step})" if payload["resumed"] else ""
            self.status.setText(f"Distilling the preview network{resumed}...")
            return
        if self.kind != SCENE_FIT:
            label = TRAINERS[self.kind].label
            resumed = f" (resumed at step {fitter.step})" if payload["resumed"] else ""
            self.status.setText(f"Training {label}{resumed}...")
            return
        win = self.window
        model = fitter.targets[0].model
        if win.viewport.neural is None or win.viewport.neural.model is not model:
            win.viewport.set_neural(NeuralRenderer(model, win.viewport.renderer, win.scene.views))
            win.controls.sync_available(win.viewport.renderers)
        if win.viewport.mode.renderer != "neural":
            win.controls.set_mode("neural")  # show the live preview
        base = fitter.baseline or {}
        msg = "Resumed from checkpoint. " if payload["resumed"] else ""
        if base:
            msg += f"Splatting baseline: {base['psnr']:.2f} dB. "
        self.status.setText(msg + "Fitting...")
        self._redraw_plots()

    def _on_progress(self, info: dict) -> None:
        f = self.fitter
        if f is None:
            return
        self.bar.setValue(info["step"])
        elapsed = time.perf_counter() - self._t0
        done = max(1, info["step"] - self._first_step)  # steps run since Start
        eta = elapsed / done * max(0, self.bar.maximum() - info["step"])
        name = _loss_name(f.history)
        text = f"step {info['step']}/{self.bar.maximum()}, {name} {info[name]:.4f}, ETA {eta:.0f} s"
        if f.history.get("psnr"):
            text += f", held-out PSNR {f.history.psnr[-1]:.2f} dB"
        self.status.setText(text)
        now = time.perf_counter()
        if now - self._last_preview > self.PREVIEW_EVERY_S or "eval_psnr" in info:
            self._last_preview = now
            self._redraw_plots()
            vp = self.window.viewport
            if vp.mode.renderer == "neural" and not vp.is_moving():
                vp.preview(self.PREVIEW_SCALE)  # re-render with the latest weights

    def _redraw_plots(self) -> None:
        f = self.fitter
        if f is None:
            return
        h = f.history
        values = h.get(_loss_name(h), [])
        if values:
            y = np.asarray(values)
            k = min(25, len(y))  # running mean: the per-crop loss is noisy
            sm = np.convolve(y, np.ones(k) / k, mode="valid")
            self.loss_curve.setData(np.arange(k, len(y) + 1), sm)
        if h.get("psnr"):
            self.psnr_curve.setData(np.asarray(h.eval_step), np.asarray(h.psnr))

    def _on_finished(self, out: str) -> None:
        self._set_running(False)
        self._redraw_plots()
        f = self.fitter
        if self.kind == SCENE_PREVIEW:
            self.status.setText(f"Saved the preview network into {out} (step {f.step}; "
                                f"{f.match_db():.1f} dB vs the full network). The view uses it "
                                "while the camera moves.")  # fmt: skip
            self.window.viewport.settings_changed()
            return
        if self.kind != SCENE_FIT:
            self.status.setText(f"Saved the trained {TRAINERS[self.kind].label} to {out} "
                                f"(step {f.step}).")  # fmt: skip
            return
        msg = f"Saved the fitted scene to {out} (step {f.step})."
        if f.history.get("psnr"):
            msg += f" Held-out PSNR {f.history.psnr[-1]:.2f} dB"
            if f.baseline:
                msg += f" vs. splatting {f.baseline['psnr']:.2f} dB."
        self.status.setText(msg)
        self.window.viewport.settings_changed()

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.status.setText("Fitting failed: " + message)
        self.window.show_error(message)

    def shutdown(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=30)
        self._busy = False


def _loss_name(history: dict) -> str:
    """The loss a panel shows: "loss", or a GAN's generator loss."""
    for name in ("loss", "g"):
        if name in history:
            return name
    return next(iter(history), "loss")
