"""The status bar: backend, model, device (and why the GPU is not used), background work."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QStatusBar, QWidget


class StatusPanel(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend_label = QLabel("backend: –")
        self.device_label = QLabel("device: –")
        self.save_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.work_label = QLabel("")
        self.error_label = QLabel("")  # problems stay visible longer than passing messages
        self.error_label.setStyleSheet("color: #c62828;")
        self.error_label.setWordWrap(False)
        self._error_timer = QTimer(self)
        self._error_timer.setSingleShot(True)
        self._error_timer.timeout.connect(lambda: (self.error_label.setText(""), self.error_label.hide()))
        # our own message label: QStatusBar.showMessage would hide the error label while it shows
        self.message_label = QLabel("")
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(lambda: self.message_label.setText(""))
        for label in (self.error_label, self.message_label):  # long texts are clipped, never widen the window
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.addWidget(self.error_label, 2)
        self.addWidget(self.message_label, 1)
        self.error_label.hide()  # shown only while there is a problem to read
        self.addPermanentWidget(self.work_label)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.save_label)
        self.addPermanentWidget(self.backend_label)
        self.addPermanentWidget(self.device_label)

    def set_backend(self, *, backend: str, model: str, device: str, device_reason: str) -> None:
        self.backend_label.setText(f"{backend} · {model}" if model else backend)
        self.backend_label.setToolTip(f"Backend {backend}, model {model or '–'}")
        self.device_label.setText(f"device: {device}")
        self.device_label.setToolTip(device_reason)
        if device_reason and not device.startswith(("cuda", "mps")):
            self.device_label.setText(f"device: {device} — {device_reason}")  # why the GPU is not used

    def set_work(self, text: str, *, done: int | None = None, total: int | None = None) -> None:
        """Show background work; ``total=0`` means busy without a known length; '' hides it."""
        self.work_label.setText(text)
        if not text:
            self.progress.hide()
            return
        if total is None:
            self.progress.hide()
            return
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done or 0)
        self.progress.show()

    def set_saved(self, text: str) -> None:
        self.save_label.setText(text)

    def message(self, text: str, *, timeout_ms: int = 6000) -> None:
        self.message_label.setText(text)
        self._message_timer.start(timeout_ms)

    def message_text(self) -> str:
        return self.message_label.text()

    def show_error(self, text: str, *, timeout_ms: int = 20000) -> None:
        """A problem for the person: shown in red until the next one or ``timeout_ms``."""
        self.error_label.setText(f"⚠ {text}")
        self.error_label.setToolTip(text)
        self.error_label.show()
        self._error_timer.start(timeout_ms)

    def error_text(self) -> str:
        return self.error_label.toolTip() if self.error_label.text() else ""
