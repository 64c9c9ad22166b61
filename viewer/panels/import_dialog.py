"""File -> Import: runs ``engine.capture.importer`` on a thread with a cancellable progress dialog
that shows each stage and what it found; opens the scene when it finishes."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QVBoxLayout,
)

from engine.capture.importer import ImportOptions, import_capture
from engine.capture.progress import ImportCancelled, Progress, Step


class ImportDialog(QDialog):
    """Modeless: the rest of the window keeps working while the import runs."""

    step = Signal(object)  # Step, from the import thread
    finished_ok = Signal(str)  # the output folder
    failed = Signal(str)  # message ('' when cancelled)

    def __init__(self, source: Path, out: Path, options: ImportOptions, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Importing {source.name}")
        self.setMinimumWidth(520)
        self.source, self.out, self.options = source, out, options
        self.stage = QLabel("Starting ...")
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setMinimumHeight(120)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Cancel)
        self.buttons.rejected.connect(self.cancel)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"{source}  →  {out}"))
        lay.addWidget(self.stage)
        lay.addWidget(self.bar)
        lay.addWidget(self.log)
        lay.addWidget(self.buttons)
        self.progress = Progress(self.step.emit)  # emitted across threads: queued to the GUI
        self.step.connect(self._on_step, Qt.QueuedConnection)
        self.failed.connect(self._on_failed, Qt.QueuedConnection)
        self.finished_ok.connect(self._on_done, Qt.QueuedConnection)
        self.result: str | None = None
        self._settled = True  # False from start() until the outcome's slot has run
        self._thread = threading.Thread(target=self._run, name="nsv-import", daemon=True)

    def start(self) -> None:
        self.log.appendPlainText(f"importing {self.source}")
        self._settled = False
        self._thread.start()

    @property
    def running(self) -> bool:
        # The worker thread ends right after queueing its outcome: running lasts until the GUI
        # has handled it, so "not running" always comes with ``result`` set.
        return self._thread.is_alive() or not self._settled

    def _run(self) -> None:
        from engine.errors import NsvError

        try:
            import_capture(self.source, self.out, self.options, self.progress)
        except ImportCancelled:
            self.failed.emit("")
        except NsvError as e:
            self.failed.emit(str(e))
        except Exception as e:  # an unexpected bug still must not kill the viewer
            self.failed.emit(f"{type(e).__name__}: {e}")
        else:
            self.finished_ok.emit(str(self.out))

    def _on_step(self, s: Step) -> None:
        if s.stage == "found":
            self.log.appendPlainText(s.info)
            return
        self.stage.setText(s.stage + (f" — {s.info}" if s.info else ""))
        if s.total:
            self.bar.setRange(0, s.total)
            self.bar.setValue(s.done)
        else:
            self.bar.setRange(0, 0)  # busy indicator for stages of unknown length

    def cancel(self) -> None:
        if self.running:
            self.stage.setText("Cancelling ...")
            self.progress.cancel()
        else:
            self.reject()

    def _on_failed(self, message: str) -> None:
        self.result = None
        self._settled = True
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.stage.setText("Cancelled: nothing was written." if not message else "Import failed")
        if message:
            self.log.appendPlainText("error: " + message)
        self.buttons.setStandardButtons(QDialogButtonBox.Close)  # rejected -> cancel -> reject

    def _on_done(self, out: str) -> None:
        self.result = out
        self._settled = True
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.stage.setText(f"Done: {out}")
        self.accept()
