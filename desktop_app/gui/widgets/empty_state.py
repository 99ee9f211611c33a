"""What the canvas says when it shows no image: why, and what the person can do.

An :class:`EmptyState` covers its canvas (a child widget kept at the canvas's size), so it
also keeps clicks from reaching a canvas that shows nothing. States: an image that failed to
open (with its reason, "Skip" and, past the pixel limit, "Open anyway"), an empty folder,
no folder yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class EmptyState(QFrame):
    def __init__(self, canvas: QWidget) -> None:
        super().__init__(canvas)
        self.setObjectName("empty_state")
        self.setStyleSheet(
            "#empty_state { background: rgb(40, 42, 46); }"
            "QLabel { color: rgb(215, 215, 215); }"
            "QLabel#empty_title { font-size: 16pt; font-weight: bold; }"
        )
        self.title_label = QLabel()
        self.title_label.setObjectName("empty_title")
        self.text_label = QLabel()
        for label in (self.title_label, self.text_label):
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._buttons = QHBoxLayout()
        self._buttons.addStretch(1)
        self._buttons.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(40, 40, 40, 40)
        box.addStretch(1)
        box.addWidget(self.title_label)
        box.addSpacing(8)
        box.addWidget(self.text_label)
        box.addSpacing(12)
        box.addLayout(self._buttons)
        box.addStretch(2)
        self.buttons: list[QPushButton] = []
        self.kind = ""
        canvas.installEventFilter(self)
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if watched is self.parent() and event.type() == QEvent.Type.Resize:
            self._cover()
        return False

    def _cover(self) -> None:
        """Take the size of the canvas (the parent given to ``__init__``, never None)."""
        canvas = self.parentWidget()
        assert canvas is not None
        self.setGeometry(0, 0, canvas.width(), canvas.height())

    def show_state(
        self, kind: str, title: str, text: str, actions: Sequence[tuple[str, Callable[[], None]]] = ()
    ) -> None:
        """Cover the canvas with ``title``, ``text`` and action buttons; ``kind`` names the state
        ("failed", "empty-folder", …) for whoever asks."""
        self.kind = kind
        self.title_label.setText(title)
        from desktop_app.gui.widgets.notifications import wrappable

        self.text_label.setText(wrappable(text))
        for button in self.buttons:
            self._buttons.removeWidget(button)
            button.deleteLater()
        self.buttons = []
        for i, (label, callback) in enumerate(actions):
            button = QPushButton(label)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys (D / A) stay with the window
            button.clicked.connect(lambda _=False, cb=callback: cb())
            self._buttons.insertWidget(1 + i, button)
            self.buttons.append(button)
        self._cover()
        self.show()
        self.raise_()

    def clear(self) -> None:
        self.kind = ""
        self.hide()

    def button(self, text: str) -> QPushButton | None:
        return next((b for b in self.buttons if b.text() == text), None)

    def text(self) -> str:
        text = f"{self.title_label.text()}\n{self.text_label.text()}".replace("\u200b", "")
        return text if self.isVisible() else ""
