"""The text prompt: what to segment ("cup. spoon."), run with Enter; Ctrl+T focuses it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QWidget)

from inference.prompts import DEFAULT_BOX_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_TEXT_THRESHOLD


class PromptBar(QWidget):
    """Emits :attr:`run_requested` (text, box threshold, text threshold, max detections) on Enter
    or Run."""

    run_requested = Signal(str, float, float, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.field = QLineEdit()
        self.field.setPlaceholderText("What to segment, e.g. 'cup. spoon.' — Enter runs it (Ctrl+T)")
        self.field.setClearButtonEnabled(True)
        self.field.returnPressed.connect(self.run)
        self.box_threshold = self._spin(DEFAULT_BOX_THRESHOLD, "Detection threshold: boxes scoring below it are dropped")
        self.text_threshold = self._spin(DEFAULT_TEXT_THRESHOLD, "Text threshold: how well a box must match a phrase")
        self.max_detections = QSpinBox()
        self.max_detections.setRange(1, 500)
        self.max_detections.setValue(DEFAULT_MAX_DETECTIONS)
        self.max_detections.setToolTip("Keep at most this many detections (the best scoring)")
        self.run_button = QPushButton("Segment")
        self.run_button.setToolTip("Run the text prompt on this image (Enter)")
        self.run_button.clicked.connect(self.run)
        self.run_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(QLabel("Text:"))
        layout.addWidget(self.field, 1)
        layout.addWidget(QLabel("box ≥"))
        layout.addWidget(self.box_threshold)
        layout.addWidget(QLabel("text ≥"))
        layout.addWidget(self.text_threshold)
        layout.addWidget(QLabel("max"))
        layout.addWidget(self.max_detections)
        layout.addWidget(self.run_button)

    @staticmethod
    def _spin(value: float, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0.0, 1.0)
        spin.setSingleStep(0.05)
        spin.setDecimals(2)
        spin.setValue(value)
        spin.setToolTip(tip)
        return spin

    def focus(self) -> None:
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def text(self) -> str:
        return self.field.text()

    def set_text(self, text: str) -> None:
        self.field.setText(text)

    def set_text_supported(self, supported: bool, *, reason: str = "") -> None:
        """Grey the bar out when the backend cannot answer text (e.g. classic, no weights)."""
        for widget in (self.field, self.run_button):
            widget.setEnabled(supported)
        self.field.setPlaceholderText(
            "What to segment, e.g. 'cup. spoon.' — Enter runs it (Ctrl+T)" if supported
            else (reason or "Text prompts need the Lang-SAM models (Models… in the Inference menu)"))

    def run(self) -> None:
        text = self.field.text().strip()
        if text:
            self.run_requested.emit(text, self.box_threshold.value(), self.text_threshold.value(),
                                    self.max_detections.value())
