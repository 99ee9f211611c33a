"""Inference -> Batch: run one text prompt over every image of the folder.

Reading and saving run in a background thread; every prediction goes through the app's ONE
inference worker and its loaded backend (``predict(image, prompt, cancel)`` is
:meth:`desktop_app.gui.worker.InferenceWorker.predict_blocking`), queued below interactive prompts, so
no second copy of the models is loaded. Each image's new objects are added with ``needs_review`` and
the image's state becomes REVIEW, saved atomically right away, so cancelling or a crash keeps
every image finished so far. The dialog is modal: the folder is not edited while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from desktop_app.core.annotation.document import AnnotationObject, ImageStatus
from desktop_app.gui.dialogs.background import BackgroundTask
from inference.cancel import CancelToken


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    images_done: int
    objects_added: int
    labels: tuple[str, ...]  # every label the run produced (to add to the label set)
    skipped: tuple[str, ...] = ()  # images left alone (marked done)
    problems: tuple[str, ...] = ()  # one sentence per image that failed
    changed: tuple[str, ...] = field(default=())  # images whose annotations were written


def run_batch(*, project, image_names: list[str], text: str, predict: Callable[..., Any],
              box_threshold: float = 0.3, text_threshold: float = 0.25, max_objects: int = 20,
              skip_done: bool = True,
              report: Callable[..., None] = lambda *a: None, cancel: CancelToken | None = None,
              ) -> BatchResult:
    """The batch itself, Qt-free. ``project`` is a :class:`ProjectFolder`; ``predict(image, prompt,
    cancel=token)`` answers with a Prediction (the shared worker's backend)."""
    from inference.errors import InferenceError
    from inference.images import load_image
    from inference.prompts import Prompt, normalise_text

    cancel = cancel or CancelToken()
    prompt_text = normalise_text(text)
    prompt = Prompt(text=prompt_text, box_threshold=box_threshold, text_threshold=text_threshold,
                    max_detections=max(1, int(max_objects)))
    total = len(image_names)
    report(0, total, "starting…")
    done = added = 0
    labels: list[str] = []
    skipped: list[str] = []
    problems: list[str] = []
    changed: list[str] = []
    for i, name in enumerate(image_names):
        cancel.raise_if_cancelled()
        report(i, total, name)
        try:
            summary = project.summary(name)
            if skip_done and summary.status == ImageStatus.DONE:
                skipped.append(name)
                continue
            image = load_image(project.image_path(name))
            doc = project.load(name, size=(image.shape[1], image.shape[0]))
            prediction = predict(image, prompt, cancel=cancel)
        except InferenceError as exc:
            if cancel.cancelled:
                raise
            problems.append(f"{name}: {exc}")
            continue
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        for candidate in prediction.candidates:
            if not candidate.mask.any():
                continue
            label = (candidate.label or prompt_text.rstrip(".")).strip() or "object"
            doc.add(AnnotationObject(
                label=label, mask=candidate.mask, score=float(candidate.score), source="batch",
                prompt={"text": prompt_text, "box": list(candidate.box),
                        "box_score": candidate.box_score},
                needs_review=True))
            added += 1
            if label not in labels:
                labels.append(label)
        doc.status = ImageStatus.REVIEW
        project.save(doc)
        changed.append(name)
        done += 1
    report(total, total, "finished")
    return BatchResult(images_done=done, objects_added=added, labels=tuple(labels),
                       skipped=tuple(skipped), problems=tuple(problems), changed=tuple(changed))


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
        for spin, value in ((self.box_threshold, 0.30), (self.text_threshold, 0.25)):
            spin.setRange(0.0, 1.0)
            spin.setSingleStep(0.05)
            spin.setValue(value)
        self.max_objects = QSpinBox()
        self.max_objects.setRange(1, 500)
        self.max_objects.setValue(20)
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
        from inference.prompts import normalise_text

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
        box_t, text_t, skip = self.box_threshold.value(), self.text_threshold.value(), self.skip_done.isChecked()
        max_objects = self.max_objects.value()
        self.run_button.setEnabled(False)
        for widget in (self.text, self.box_threshold, self.text_threshold, self.max_objects, self.skip_done):
            widget.setEnabled(False)
        self.log.setPlainText(f"Running '{text}' over {len(names)} image(s)…")

        def job(report, cancel):
            return run_batch(project=project, image_names=names, text=text, predict=predict,
                             box_threshold=box_t, text_threshold=text_t, max_objects=max_objects, skip_done=skip,
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
