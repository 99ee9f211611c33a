"""The status bar: backend, model, device (and why the GPU is not used), background work, and the
bell that opens the message history (errors themselves are shown in full by the notification
bar above the canvas: :mod:`desktop_app.gui.widgets.notifications`)."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QStatusBar, QWidget

from desktop_app.gui.widgets.notifications import BellButton, Level, NotificationCenter


class StatusPanel(QStatusBar):
    def __init__(self, parent: QWidget | None = None, *, center: NotificationCenter | None = None) -> None:
        super().__init__(parent)
        self.center = center or NotificationCenter(self)
        self.bell = BellButton(self.center)
        self.backend_label = QLabel("backend: –")
        self.device_label = QLabel("device: –")
        self._where = ""  # a remote backend's "server http://gpu:8765" ('' when local)
        self.save_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.work_label = QLabel("")
        # passing messages; errors go to the notification center (bar above the canvas + bell)
        self.message_label = QLabel("")
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(lambda: self.message_label.setText(""))
        self.message_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.addWidget(self.message_label, 1)
        self.addPermanentWidget(self.bell)
        self.addPermanentWidget(self.work_label)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.save_label)
        self.addPermanentWidget(self.backend_label)
        self.addPermanentWidget(self.device_label)

    def set_backend(self, *, backend: str, model: str, device: str, device_reason: str, where: str = "") -> None:
        """``where``: a remote backend's place (``"server http://gpu:8765"``); the device label
        then says where inference runs, and :meth:`note_remote_call` adds each call's round trip."""
        self.backend_label.setText(f"{backend} · {model}" if model else backend)
        self.backend_label.setToolTip(f"Backend {backend}, model {model or '–'}")
        self._where = where
        self.device_label.setToolTip(device_reason)
        if where:
            self.device_label.setText(f"remote: {where}")
            return
        self.device_label.setText(f"device: {device}")
        if device_reason and not device.startswith(("cuda", "mps")):
            self.device_label.setText(f"device: {device} — {device_reason}")  # why the GPU is not used

    def note_remote_call(self, *, round_trip_ms: float | None = None, error: str = "") -> None:
        """A remote backend's last call: its round trip, or that it failed (the full message is
        in the notification bar). Nothing for a local backend."""
        if not self._where:
            return
        if error:
            self.device_label.setText(f"remote: {self._where} · failed")
            self.device_label.setToolTip(error)
        elif round_trip_ms is not None:
            self.device_label.setText(f"remote: {self._where} · {round_trip_ms:.0f} ms")

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

    def show_error(self, text: str, *, hint: str = "", actions=(), key: str | None = None):
        """A problem for the person: kept, in full, until dismissed (see the notification bar)."""
        return self.center.notify(text, level=Level.ERROR, hint=hint, actions=actions, key=key)

    def error_text(self) -> str:
        """The newest open error's full text ('' when none is open)."""
        notes = [n for n in self.center.open_notes() if n.level is Level.ERROR]
        return notes[-1].full_text if notes else ""
