"""Messages a person can read: a bar above the canvas and a history behind a bell.

:class:`NotificationCenter` keeps the last :data:`HISTORY_SIZE` notifications. An error stays in
the :class:`NotificationBar` (full text, word-wrapped, never cut) until the person dismisses it
or its cause is resolved (``key``: a later notification or :meth:`NotificationCenter.resolve`
with the same key replaces it, e.g. "save:img1.png" once that image is saved). Each one may carry
what the person can do: a ``hint`` sentence and action buttons. :class:`BellButton` (in the
status bar) shows how many errors are open and opens :class:`NotificationHistory`.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

HISTORY_SIZE = 50
_BREAK_EVERY = 40  # long words (paths, ids) get invisible break points so wrapping never widens the window


def wrappable(text: str) -> str:
    """``text`` with zero-width spaces inside very long words (QLabel wraps only at spaces)."""
    out = []
    for word in text.split(" "):
        if len(word) > _BREAK_EVERY:
            word = "\u200b".join(word[i : i + _BREAK_EVERY] for i in range(0, len(word), _BREAK_EVERY))
        out.append(word)
    return " ".join(out)


_ids = itertools.count(1)


class Level(Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(eq=False, kw_only=True)
class Notification:
    text: str
    level: Level = Level.ERROR
    hint: str = ""  # what the person can do
    actions: Sequence[tuple[str, Callable[[], None]]] = ()
    key: str | None = None
    id: int = field(default_factory=lambda: next(_ids))
    at: float = field(default_factory=time.time)
    open: bool = True  # shown in the bar until dismissed or resolved

    @property
    def full_text(self) -> str:
        if not self.hint:
            return self.text
        text = self.text.rstrip()
        return text + (" " if text.endswith((".", "!", "?")) else ". ") + self.hint


class NotificationCenter(QObject):
    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._history: deque[Notification] = deque(maxlen=HISTORY_SIZE)

    def notify(
        self,
        text: str,
        *,
        level: Level = Level.ERROR,
        hint: str = "",
        actions: Sequence[tuple[str, Callable[[], None]]] = (),
        key: str | None = None,
        show: bool | None = None,
    ) -> Notification:
        """``show``: put it in the bar (default: errors and warnings; info only goes to the history,
        unless it is news the person waits for, e.g. a finished batch)."""
        if key is not None:
            for old in self._history:
                if old.key == key:
                    old.open = False
        note = Notification(
            text=text,
            level=level,
            hint=hint,
            actions=tuple(actions),
            key=key,
            open=level is not Level.INFO if show is None else show,
        )
        self._history.append(note)
        self.changed.emit()
        return note

    def dismiss(self, note: Notification) -> None:
        note.open = False
        self.changed.emit()

    def resolve(self, key: str) -> None:
        """The cause of the notifications with ``key`` is gone (e.g. the image was saved)."""
        hit = False
        for note in self._history:
            if note.key == key and note.open:
                note.open, hit = False, True
        if hit:
            self.changed.emit()

    def history(self) -> list[Notification]:
        """Oldest first, at most :data:`HISTORY_SIZE`."""
        return list(self._history)

    def open_notes(self) -> list[Notification]:
        return [n for n in self._history if n.open]

    def latest_open(self) -> Notification | None:
        notes = self.open_notes()
        return notes[-1] if notes else None


class NotificationBar(QFrame):
    """The newest open error or warning, in full, with its actions and a Dismiss button."""

    STYLE = {
        Level.ERROR: "background:#fdecea; color:#611a15; border-bottom:1px solid #e57373;",
        Level.WARNING: "background:#fff4e5; color:#663c00; border-bottom:1px solid #ffb74d;",
        Level.INFO: "background:#e8f4fd; color:#0d3c61; border-bottom:1px solid #90caf9;",
    }

    def __init__(self, center: NotificationCenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.center = center
        self.setObjectName("notification_bar")
        self.text_label = QLabel()
        self.text_label.setWordWrap(True)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.text_label.setMinimumWidth(200)
        self.more_label = QLabel()
        self._buttons = QHBoxLayout()
        self.dismiss_button = QToolButton()
        self.dismiss_button.setText("Dismiss")
        self.dismiss_button.setToolTip("Hide this message (it stays in the history behind the bell)")
        self.dismiss_button.clicked.connect(self._dismiss)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.text_label, 1)
        row.addLayout(self._buttons)
        row.addWidget(self.more_label)
        row.addWidget(self.dismiss_button)
        self._note: Notification | None = None
        self.action_buttons: list[QPushButton] = []
        center.changed.connect(self.refresh)
        self.hide()

    @property
    def note(self) -> Notification | None:
        return self._note

    def refresh(self) -> None:
        note = self.center.latest_open()
        self._note = note
        for button in self.action_buttons:
            button.deleteLater()
        self.action_buttons = []
        if note is None:
            self.hide()
            return
        icon = "⚠" if note.level is Level.ERROR else "ℹ"
        self.text_label.setText(wrappable(f"{icon} {note.full_text}"))
        self.text_label.setToolTip(note.full_text)
        self.setStyleSheet(f"#notification_bar {{{self.STYLE.get(note.level, '')}}}")
        for text, callback in note.actions:
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, n=note, cb=callback: self._run(n, cb))
            self._buttons.addWidget(button)
            self.action_buttons.append(button)
        others = len(self.center.open_notes()) - 1
        self.more_label.setText(f"+{others} more" if others > 0 else "")
        self.more_label.setMinimumWidth(self.more_label.sizeHint().width())
        self.show()

    def button(self, text: str) -> QPushButton | None:
        return next((b for b in self.action_buttons if b.text() == text), None)

    def _run(self, note: Notification, callback: Callable[[], None]) -> None:
        self.center.dismiss(note)
        callback()

    def _dismiss(self) -> None:
        if self._note is not None:
            self.center.dismiss(self._note)


class NotificationHistory(QDialog):
    """The last :data:`HISTORY_SIZE` messages, newest first, each in full."""

    def __init__(self, center: NotificationCenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Messages")
        self.resize(640, 420)
        self.center = center
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        self.clear_button = buttons.addButton("Dismiss all", QDialogButtonBox.ButtonRole.ActionRole)
        self.clear_button.clicked.connect(self._dismiss_all)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        center.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        for note in reversed(self.center.history()):
            stamp = time.strftime("%H:%M:%S", time.localtime(note.at))
            state = "" if not note.open else "  (open)"
            item = QListWidgetItem(f"{stamp}  {note.level.value}{state}\n{wrappable(note.full_text)}")
            item.setData(Qt.ItemDataRole.UserRole, note.full_text)
            if note.level is Level.ERROR:
                item.setForeground(Qt.GlobalColor.darkRed)
            self.list.addItem(item)

    def texts(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def _dismiss_all(self) -> None:
        for note in self.center.open_notes():
            note.open = False
        self.center.changed.emit()


class BellButton(QToolButton):
    """The status bar's way into the history; shows how many messages are still open."""

    def __init__(self, center: NotificationCenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.center = center
        self.setAutoRaise(True)
        self.setToolTip("Messages: the last 50, in full")
        self.clicked.connect(self.show_history)
        self.dialog: NotificationHistory | None = None
        center.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        n = len([x for x in self.center.open_notes() if x.level is not Level.INFO])
        self.setText(f"Messages ({n})" if n else "Messages")
        self.setStyleSheet("color:#c62828; font-weight:bold;" if n else "")

    def show_history(self) -> NotificationHistory:
        if self.dialog is None:
            self.dialog = NotificationHistory(self.center, self.window())
        self.dialog.refresh()
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog
