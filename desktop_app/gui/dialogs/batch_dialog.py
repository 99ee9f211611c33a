"""Inference -> Batch: run one text prompt over every image of the folder.

The engine is :func:`desktop_app.core.batch.run_batch` (Qt-free: which images, the objects, the
saving); this dialog asks for the prompt, runs the engine in a background thread and shows its
progress. Every prediction goes through the app's ONE inference worker and its loaded backend
(``predict(image, prompt, cancel)`` is :meth:`desktop_app.gui.worker.InferenceWorker.predict_blocking`),
queued below interactive prompts, so no second copy of the models is loaded. The dialog is modal:
the folder is not edited while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from desktop_app.core.batch import BatchResult, run_batch
from desktop_app.gui.dialogs.background import BackgroundTask
from inference.prompts import DEFAULT_BOX_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_TEXT_THRESHOLD

__all__ = ["BatchDialog", "BatchResult", "run_batch"]


class BatchDialog(QDialog):
    """Emits ``batch_finished(BatchResult)`` (also after a cancel: the partial result)."""

    batch_finished = Signal(object)

    def __init__(self, *, project, predict: Callable[..., Any], text: str = "",
                 check_ready: Callable[[], str | None] = lambda: None,
                 parent: QWidget | None = None) -> None:
        """``predict(image, prompt, cancel=token)``: blocking, from a background thread (the shared
        worker). ``check_ready()``: None, or why text prompts cannot run now (shown, nothing starts)."""
        super().__init__(parent)
        self.setWindowTitle("Batch: text prompt over the folder")
        self.setModal(True)
        self.project = project
        self.predict = predict
        self.check_ready = check_ready
        self.result: BatchResult | None = None
        self._partial = {"done": 0}
        self.task = BackgroundTask(self)
        self.task.progress.connect(self._progress)
        self.task.finished.connect(self._finished)
        self.task.failed.connect(self._failed)
        self.task.cancelled.connect(self._cancelled)

        self.text = QLineEdit(text)
        self.text.setPlaceholderText("e.g. 'cup. spoon.'")
        self.box_threshold = QDoubleSpinBox()
        self.text_threshold = QDoubleSpinBox()
        for spin, value in ((self.box_threshold, DEFAULT_BOX_THRESHOLD), (self.text_threshold, DEFAULT_TEXT_THRESHOLD)):
            spin.setRange(0.0, 1.0)
            spin.setSingleStep(0.05)
            spin.setValue(value)
        self.max_objects = QSpinBox()
        self.max_objects.setRange(1, 500)
        self.max_objects.setValue(DEFAULT_MAX_DETECTIONS)
        self.max_objects.setToolTip("Keep at most this many detections per image (the best scoring)")
        self.skip_done = QCheckBox("Leave images marked done alone")
        self.skip_done.setChecked(True)
        form = QFormLayout()
        form.addRow("Text prompt:", self.text)
        form.addRow("Box threshold:", self.box_threshold)
        form.addRow("Text threshold:", self.text_threshold)
        form.addRow("At most, per image:", self.max_objects)
        form.addRow("", self.skip_done)
        count = len(project.images())
        self.info = QLabel(f"{count} image(s) in {project.folder}. New objects are added and marked "
                           "for review; the file list can show only those images.")
        self.info.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, max(count, 1))
        self.progress_bar.setValue(0)
        self.current = QLabel("")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumHeight(120)
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QDialogButtonBox()
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.info)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.current)
        layout.addWidget(self.log)
        layout.addWidget(buttons)
        self.resize(560, 380)

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        from inference.prompts import Prompt, normalise_text

        if self.task.running:
            return
        try:
            text = normalise_text(self.text.text())
        except ValueError as exc:
            self.log.setPlainText(str(exc))
            return
        if not text:
            self.log.setPlainText("Type what to segment first, e.g. 'cup. spoon.'")
            return
        problem = self.check_ready()
        if problem:
            self._end(f"The batch cannot run: {problem}")
            self.batch_finished.emit(None)
            return
        names = self.project.images()
        project, predict = self.project, self.predict
        prompt = Prompt(text=text, box_threshold=self.box_threshold.value(),
                        text_threshold=self.text_threshold.value(), max_detections=self.max_objects.value())
        skip = self.skip_done.isChecked()
        self.run_button.setEnabled(False)
        for widget in (self.text, self.box_threshold, self.text_threshold, self.max_objects, self.skip_done):
            widget.setEnabled(False)
        self.log.setPlainText(f"Running '{text}' over {len(names)} image(s)…")

        def job(report, cancel):
            return run_batch(project=project, image_names=names, prompt=prompt, predict=predict, skip_done=skip,
                             report=report, cancel=cancel)

        self.task.start(job, name="batch")

    def cancel(self) -> None:
        if self.task.running:
            self.cancel_button.setEnabled(False)
            self.current.setText("Cancelling after the current image…")
            self.task.cancel("the batch was cancelled")
        else:
            self.reject()

    def _progress(self, done: int, total: int, text: str) -> None:
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
        self._partial["done"] = done
        self.current.setText(text)

    def _end(self, message: str) -> None:
        self.log.appendPlainText(message)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Close")
        self.cancel_button.clicked.disconnect()
        self.cancel_button.clicked.connect(self.accept)

    def _finished(self, result: BatchResult) -> None:
        self.result = result
        lines = [f"Done: {result.objects_added} object(s) on {result.images_done} image(s), "
                 "marked for review."]
        if result.skipped:
            lines.append(f"{len(result.skipped)} image(s) marked done were left alone.")
        lines += result.problems
        self._end("\n".join(lines))
        self.batch_finished.emit(result)

    def _failed(self, message: str) -> None:
        self._end(f"The batch stopped: {message}")
        self.batch_finished.emit(None)

    def _cancelled(self, message: str) -> None:
        self._end(f"{message[:1].upper()}{message[1:]}. Images finished before that are saved.")
        self.batch_finished.emit(None)

    def reject(self) -> None:
        if self.task.running:
            self.cancel()
            return
        super().reject()

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name): Esc cancels, never abandons
        if event.key() == Qt.Key.Key_Escape and self.task.running:
            self.cancel()
            return
        super().keyPressEvent(event)
