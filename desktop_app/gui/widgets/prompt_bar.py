"""The text prompt: what to segment ("cup. spoon."), run with Enter; Ctrl+T focuses it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.gui.widgets.assistant_bar import AssistantBar
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
        self.box_threshold = self._spin(
            DEFAULT_BOX_THRESHOLD, "Detection threshold: boxes scoring below it are dropped"
        )
        self.text_threshold = self._spin(DEFAULT_TEXT_THRESHOLD, "Text threshold: how well a box must match a phrase")
        self.max_detections = QSpinBox()
        self.max_detections.setRange(1, 500)
        self.max_detections.setValue(DEFAULT_MAX_DETECTIONS)
        self.max_detections.setToolTip("Keep at most this many detections (the best scoring)")
        self.run_button = QPushButton("Segment")
        self.run_button.setToolTip("Run the text prompt on this image (Enter)")
        self.run_button.clicked.connect(self.run)
        self.run_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # the prompt assistant: an instruction in words -> phrases in the field, edited before they run
        self.assistant = AssistantBar()
        self.assistant.hide()
        self.assistant.phrases_ready.connect(self.use_assistant_answer)
        self.field.installEventFilter(self.assistant)  # Esc in the field cancels a running question
        self.assistant_button = QToolButton()
        self.assistant_button.setText("Assistant…")
        self.assistant_button.setCheckable(True)
        self.assistant_button.setToolTip(
            "Describe what to find in words; an AI assistant (Settings → OpenAI) "
            "suggests the phrases, which you can edit before they run"
        )
        self.assistant_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.assistant_button.toggled.connect(self.show_assistant)
        self.field.setMinimumWidth(180)  # room for a few phrases next to the thresholds and buttons

        layout = QHBoxLayout()
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
        layout.addWidget(self.assistant_button)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addLayout(layout)
        outer.addWidget(self.assistant)

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
            "What to segment, e.g. 'cup. spoon.' — Enter runs it (Ctrl+T)"
            if supported
            else (reason or "Text prompts need the Lang-SAM models (Models… in the Inference menu)")
        )

    def show_assistant(self, on: bool = True) -> None:
        """Show (and focus) or hide the assistant's row; hiding cancels a running question."""
        if self.assistant_button.isChecked() != on:
            self.assistant_button.setChecked(on)  # comes back here through toggled
            return
        self.assistant.setVisible(on)
        if on:
            self.assistant.instruction.setFocus(Qt.FocusReason.OtherFocusReason)
        else:
            self.assistant.cancel(quiet=True)

    def use_assistant_answer(self, answer) -> None:
        """Put the assistant's phrases (and its threshold, if it suggested one) in the fields for
        editing; nothing runs until Enter."""
        self.field.setText(answer.prompt_text())
        threshold = answer.suggested_box_threshold()
        if threshold is not None:
            self.box_threshold.setValue(threshold)
        self.field.setFocus(Qt.FocusReason.OtherFocusReason)
        self.field.deselect()
        self.field.end(False)

    def run(self) -> None:
        text = self.field.text().strip()
        if text:
            self.run_requested.emit(
                text, self.box_threshold.value(), self.text_threshold.value(), self.max_detections.value()
            )
