"""The project's classes with their colours; the active one is what new objects get.

Digit keys 1-9 pick the label in that row (the QActions live in the main window's action table,
so the shortcuts help lists them). Add / rename / recolour / delete ask the person here and
report the decision by signal; the owner of the label set applies it.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

NAME_ROLE = Qt.ItemDataRole.UserRole + 1


def colour_icon(colour: str, *, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


class LabelListWidget(QWidget):
    label_activated = Signal(str)  # a person picked the active label
    add_requested = Signal(str)  # new label name
    rename_requested = Signal(str, str)  # old, new
    recolour_requested = Signal(str, str)  # name, "#rrggbb"
    delete_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._labels: list[tuple[str, str]] = []
        self._active = ""
        self.list = QListWidget()
        self.list.setIconSize(QSize(14, 14))
        self.list.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.list.itemClicked.connect(self._clicked)
        self.list.itemDoubleClicked.connect(lambda item: self.ask_rename(item.data(NAME_ROLE)))

        buttons = QHBoxLayout()
        for text, tip, slot in (
            ("+", "Add a label", self.ask_add),
            ("Rename", "Rename the selected label (objects keep it)", self._rename_selected),
            ("Colour", "Change the selected label's colour", self._recolour_selected),
            ("−", "Delete the selected label", self._delete_selected),
        ):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)

    # -- API -------------------------------------------------------------------------------
    def set_labels(self, labels: Sequence[tuple[str, str]], *, active: str | None = None) -> None:
        """``labels`` are (name, '#rrggbb') in shortcut order: row 1 is key 1."""
        self._labels = list(labels)
        if active is not None:
            self._active = active
        self.list.clear()
        for i, (name, colour) in enumerate(self._labels):
            key = f"{i + 1}  " if i < 9 else "    "
            item = QListWidgetItem(colour_icon(colour), f"{key}{name}")
            item.setData(NAME_ROLE, name)
            item.setToolTip(f"{name} ({colour})" + (f" — press {i + 1}" if i < 9 else ""))
            self.list.addItem(item)
        self._show_active()

    def set_active(self, name: str) -> None:
        self._active = name
        self._show_active()

    def active(self) -> str:
        return self._active

    def names(self) -> list[str]:
        return [name for name, _ in self._labels]

    def name_at(self, position: int) -> str | None:
        """Label for digit key ``position`` (1-based), ``None`` if there is none."""
        return self._labels[position - 1][0] if 1 <= position <= len(self._labels) else None

    # -- asking the person -----------------------------------------------------------------
    def ask_add(self) -> None:
        name, ok = QInputDialog.getText(self, "Add label", "Name of the new label:")
        if ok and name.strip():
            self.add_requested.emit(name.strip())

    def ask_rename(self, old: str | None) -> None:
        if not old:
            return
        new, ok = QInputDialog.getText(self, "Rename label", f"New name for '{old}':", text=old)
        if ok and new.strip() and new.strip() != old:
            self.rename_requested.emit(old, new.strip())

    def ask_recolour(self, name: str | None) -> None:
        if not name:
            return
        current = dict(self._labels).get(name, "#ffffff")
        colour = QColorDialog.getColor(QColor(current), self, f"Colour of '{name}'")
        if colour.isValid():
            self.recolour_requested.emit(name, colour.name())

    def ask_delete(self, name: str | None) -> None:
        if not name:
            return
        self.delete_requested.emit(name)  # the label editor asks what to do with its objects

    # -- internals -------------------------------------------------------------------------
    def _selected_name(self) -> str | None:
        item = self.list.currentItem()
        return item.data(NAME_ROLE) if item is not None else (self._active or None)

    def _rename_selected(self) -> None:
        self.ask_rename(self._selected_name())

    def _recolour_selected(self) -> None:
        self.ask_recolour(self._selected_name())

    def _delete_selected(self) -> None:
        self.ask_delete(self._selected_name())

    def _clicked(self, item: QListWidgetItem) -> None:
        name = item.data(NAME_ROLE)
        if name:
            self._active = name
            self._show_active()
            self.label_activated.emit(name)

    def _show_active(self) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            font = item.font()
            is_active = item.data(NAME_ROLE) == self._active
            font.setBold(is_active)
            item.setFont(font)
            if is_active:
                self.list.setCurrentItem(item)
