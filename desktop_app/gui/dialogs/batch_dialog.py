"""Inference -> Batch: choose one text prompt to run over every image of the folder, then start.

The dialog only configures: Run checks the prompt and that the backend can run text prompts,
emits ``start_requested(BatchSettings)`` and closes. The run itself lives in the window's
:class:`desktop_app.gui.batch_runner.BatchRunner` (a background thread, progress and Cancel in
the status bar, results arriving in the file list as "review"), so the person keeps annotating.
The engine is :func:`desktop_app.core.batch.run_batch`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.batch import BatchResult, run_batch
from inference.prompts import DEFAULT_BOX_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_TEXT_THRESHOLD

if TYPE_CHECKING:
    from inference.prompts import Prompt

__all__ = ["BatchDialog", "BatchResult", "BatchSettings", "run_batch"]


@dataclass(frozen=True, kw_only=True)
class BatchSettings:
    """What the person chose: the prompt and whether images marked done are left alone."""

    prompt: Prompt
    skip_done: bool = True


class BatchDialog(QDialog):
    """Emits ``start_requested(BatchSettings)`` when Run is pressed with a usable prompt and a
    backend that can run it; the dialog then closes. Otherwise it says why and stays open."""

    start_requested = Signal(object)

    def __init__(
        self,
        *,
        project,
        text: str = "",
        check_ready: Callable[[], str | None] = lambda: None,
        busy: Callable[[], str | None] = lambda: None,
        parent: QWidget | None = None,
    ) -> None:
        """``check_ready()``: None, or why text prompts cannot run now. ``busy()``: None, or why
        no batch can start now (one is running)."""
        super().__init__(parent)
        self.setWindowTitle("Batch: text prompt over the folder")
        self.project = project
        self.check_ready = check_ready
        self.busy = busy

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
        self.info = QLabel(
            f"{count} image(s) in {project.folder}. The batch runs in the background: keep annotating; "
            "progress and Cancel are in the status bar. New objects are added and marked for review. "
            "The image you are editing, and any with changes not yet saved, are left alone."
        )
        self.info.setWordWrap(True)
        self.log = QLabel("")
        self.log.setWordWrap(True)
        self.log.setStyleSheet("color:#611a15;")
        self.run_button = QPushButton("Run in background")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.clicked.connect(self.reject)
        buttons = QDialogButtonBox()
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.info)
        layout.addWidget(self.log)
        layout.addWidget(buttons)
        self.resize(560, 300)

    def log_text(self) -> str:
        return self.log.text()

    def start(self) -> None:
        """Check, then hand the settings to the window (which runs them) and close."""
        from inference.prompts import Prompt, normalise_text

        problem = self.busy()
        if problem:
            self.log.setText(problem)
            return
        try:
            text = normalise_text(self.text.text())
        except ValueError as exc:
            self.log.setText(str(exc))
            return
        if not text:
            self.log.setText("Type what to segment first, e.g. 'cup. spoon.'")
            return
        problem = self.check_ready()
        if problem:
            self.log.setText(f"The batch cannot run: {problem}")
            return
        prompt = Prompt(
            text=text,
            box_threshold=self.box_threshold.value(),
            text_threshold=self.text_threshold.value(),
            max_detections=self.max_objects.value(),
        )
        self.log.setText("")
        self.accept()
        self.start_requested.emit(BatchSettings(prompt=prompt, skip_done=self.skip_done.isChecked()))
