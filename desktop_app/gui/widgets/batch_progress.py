"""The status bar's view of a background batch: "Batch: 12/40" with a small bar and Cancel.

It only shows what :class:`desktop_app.gui.batch_runner.BatchRunner` tells it and emits
``cancel_requested``; hidden when no batch runs.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget


class BatchProgressWidget(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("batch_progress")
        self.label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(120)
        self.bar.setMaximumHeight(14)
        self.bar.setTextVisible(False)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop the batch after the current image; finished images keep their results")
        self.cancel_button.clicked.connect(self._cancel)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 0, 4, 0)
        row.setSpacing(6)
        row.addWidget(self.label)
        row.addWidget(self.bar)
        row.addWidget(self.cancel_button)
        self.hide()

    def start(self, total: int, prompt_text: str) -> None:
        self.setToolTip(f"Batch '{prompt_text}' over {total} image(s): results arrive as 'review'")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self.set_progress(0, total, "")
        self.show()

    def set_progress(self, done: int, total: int, current: str) -> None:
        self.label.setText(f"Batch: {done}/{total} ·")
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        if current:
            self.label.setToolTip(f"now: {current}")

    def text(self) -> str:
        """ "Batch: 12/40" (what the label shows, without the separator)."""
        return self.label.text().rstrip(" ·")

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.cancel_requested.emit()

    def stop(self) -> None:
        self.hide()
