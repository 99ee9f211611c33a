"""The prompt assistant's row under the text prompt: a person writes an instruction ("every
damaged car part, not reflections"), the assistant (OpenAI or an OpenAI-compatible server)
suggests phrases, and they land in the text field for editing; nothing runs until the person
presses Enter there.

The asking runs in a Python thread (the answer comes back through a queued signal); a busy
indicator shows meanwhile and Esc or Cancel drops the answer. The image is sent only while
"Let the assistant see the image" is checked, and a notice says so whenever it is. The policy
lives in the core (:mod:`desktop_app.core.assistant_config`, :mod:`inference.assistant`): this
widget only collects the inputs and shows the outcome.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget

from inference.cancel import CancelReason, CancelToken

PLACEHOLDER = "Describe what to find, e.g. 'every damaged car part, not reflections' — Enter asks"


class _Relay(QObject):
    """Carries the thread's outcome to the GUI thread (queued signals)."""

    answered = Signal(int, object)  # request id, AssistantAnswer
    failed = Signal(int, str)  # request id, the message for the person


class AssistantBar(QWidget):
    """Signals: :attr:`phrases_ready` (an :class:`inference.assistant.AssistantAnswer`) when an
    answer arrives that was not cancelled; :attr:`busy_changed`."""

    phrases_ready = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.instruction = QLineEdit()
        self.instruction.setPlaceholderText(PLACEHOLDER)
        self.instruction.setClearButtonEnabled(True)
        self.instruction.returnPressed.connect(self.ask)
        self.instruction.installEventFilter(self)
        self.see_image = QCheckBox("Let the assistant see the image")
        self.see_image.setToolTip(
            "Also send the open image (a JPEG at most 768 px on its longest side), "
            "so the phrases fit what is really there"
        )
        self.see_image.toggled.connect(self._show_image_notice)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate
        self.busy.setTextVisible(False)
        self.busy.setFixedWidth(70)
        self.busy.setMaximumHeight(12)
        self.busy.hide()
        self.ask_button = QPushButton("Ask")
        self.ask_button.setToolTip(
            "Ask the assistant for phrases (Enter); they are put in the text field for you to edit before anything runs"
        )
        self.ask_button.clicked.connect(self.ask)
        self.ask_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop waiting; the answer is ignored (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button.hide()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.PlainText)
        self.notice.hide()
        self.image_notice = QLabel()  # shown whenever the image would be sent
        self.image_notice.setWordWrap(True)
        self.image_notice.setTextFormat(Qt.TextFormat.PlainText)
        self.image_notice.setStyleSheet("background: #fff4ce; color: #4d3800; padding: 2px 4px;")
        self.image_notice.hide()

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Assistant:"))
        row.addWidget(self.instruction, 1)
        row.addWidget(self.see_image)
        row.addWidget(self.busy)
        row.addWidget(self.ask_button)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 2)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.image_notice)
        layout.addWidget(self.notice)

        self._relay = _Relay(self)
        self._relay.answered.connect(self._on_answered)
        self._relay.failed.connect(self._on_failed)
        self._request = 0
        self._token: CancelToken | None = None
        self._labels: Callable[[], Sequence[str]] = tuple
        self._image: Callable[[], Any] = lambda: None
        self._settings: Callable[[], Mapping[str, Any] | None] = lambda: None
        self._secret_store: Callable[[], Any] = lambda: None
        self._asker: Callable[..., Any] | None = None

    # -- wiring ----------------------------------------------------------------------------
    def configure(
        self,
        *,
        labels: Callable[[], Sequence[str]] | None = None,
        image: Callable[[], Any] | None = None,
        settings: Callable[[], Mapping[str, Any] | None] | None = None,
        secret_store: Callable[[], Any] | None = None,
        asker: Callable[..., Any] | None = None,
    ) -> None:
        """Where the inputs come from, each read on the GUI thread when a question is asked:
        ``labels()`` the project's label names (offered to the model), ``image()`` the open
        image's path (sent only when the box is checked), ``settings()`` the stored non-secret
        settings (None: the settings file), ``secret_store()`` the app's secret store (None: a
        new one). ``asker`` replaces :func:`desktop_app.core.assistant_config.ask` (tests)."""
        if labels is not None:
            self._labels = labels
        if image is not None:
            self._image = image
        if settings is not None:
            self._settings = settings
        if secret_store is not None:
            self._secret_store = secret_store
        if asker is not None:
            self._asker = asker

    @property
    def busy_now(self) -> bool:
        return self._token is not None

    # -- asking ----------------------------------------------------------------------------
    def ask(self) -> None:
        text = " ".join(self.instruction.text().split())
        if not text:
            self._say("Write what to find first, e.g. 'every damaged car part, not reflections'.")
            return
        if self.busy_now:
            self.cancel(quiet=True)  # the newer question wins
        image = None
        if self.see_image.isChecked():
            image = self._image()
            if image is None:
                self._say("No image is open to show the assistant: open one, or uncheck the box.")
                return
        labels = [str(name) for name in self._labels()]
        stored = self._settings()
        store = self._secret_store()
        asker = self._asker
        self._request += 1
        request, token = self._request, CancelToken()
        self._token = token
        relay = self._relay

        def work() -> None:
            from desktop_app.core.assistant_config import ask, resolve_config
            from inference.errors import Cancelled, StudioError

            try:
                config = resolve_config(stored=stored, secret_store=store)
                answer = (asker or ask)(config, text, labels=labels, image=image, cancel=token)
            except Cancelled:
                return
            except StudioError as exc:
                self._emit(relay.failed, request, str(exc))
                return
            except Exception as exc:  # a bug: say so, details on stderr
                traceback.print_exc()
                self._emit(relay.failed, request, f"The assistant failed unexpectedly ({type(exc).__name__}: {exc}).")
                return
            self._emit(relay.answered, request, answer)

        self._set_busy(True)
        self._show_image_notice(self.see_image.isChecked())
        self._say(
            "Asking the assistant… (Esc cancels)"
            + (" The image is sent with this question." if image is not None else "")
        )
        threading.Thread(target=work, name="prompt-assistant", daemon=True).start()

    @staticmethod
    def _emit(signal: Any, request: int, value: Any) -> None:
        try:
            signal.emit(request, value)
        except RuntimeError:  # the window closed meanwhile
            pass

    def cancel(self, quiet: bool = False) -> None:
        """Stop waiting: the answer, if it still comes, is dropped. Does nothing when idle."""
        if self._token is None:
            return
        self._token.cancel(CancelReason.USER)
        self._token = None
        self._request += 1
        self._set_busy(False)
        if not quiet:
            self._say("Cancelled: the assistant's answer will be ignored. You can type the phrases yourself.")

    def _on_answered(self, request: int, answer: Any) -> None:
        if request != self._request or self._token is None:
            return  # cancelled or superseded
        self._token = None
        self._set_busy(False)
        count = len(answer.prompt_phrases())
        text = (
            f"{count} suggested phrase{'s' * (count != 1)} in the text field: edit them, then Enter runs "
            f"{'them' if count != 1 else 'it'}."
        )
        if answer.notes:
            text += f" Note: {answer.notes}"
        self._say(text)
        self.phrases_ready.emit(answer)

    def _on_failed(self, request: int, message: str) -> None:
        if request != self._request or self._token is None:
            return
        self._token = None
        self._set_busy(False)
        self._say(message, error=True)

    # -- showing ---------------------------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.ask_button.setVisible(not busy)
        self.busy_changed.emit(busy)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.notice.setStyleSheet("color: #b00020;" if error else "")
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def _show_image_notice(self, on: bool) -> None:
        """While the box is checked, a standing notice names who receives the image."""
        if on:
            from desktop_app.core.assistant_config import configured_base_url
            from inference.assistant import MAX_IMAGE_SIDE, server_name

            where = server_name(configured_base_url(stored=self._settings()))
            self.image_notice.setText(
                f"The open image is sent to {where} with each question "
                f"(a JPEG, at most {MAX_IMAGE_SIDE} px). Uncheck the box to keep it here."
            )
        self.image_notice.setVisible(on)

    # -- Esc -------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        """Esc in the instruction field (or a field that installed this filter) cancels a running
        question before any window shortcut (the canvas's Esc) sees it."""
        escape = (
            event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress)
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
        )
        if escape and self.busy_now:
            if event.type() == QEvent.Type.ShortcutOverride:
                event.accept()  # deliver Esc as a key press to the field, not to the shortcut
                return False
            self.cancel()
            return True
        return super().eventFilter(watched, event)
