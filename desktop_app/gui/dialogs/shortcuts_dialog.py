"""Help -> Keyboard shortcuts: a table built from the live QActions, so it cannot drift."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True, kw_only=True)
class ShortcutRow:
    group: str
    action: str
    keys: str  # "Ctrl+Z, Ctrl+Shift+Z" in the platform's native text
    tip: str = ""


def _clean(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".…")


def shortcut_rows(actions: Iterable[QAction]) -> list[ShortcutRow]:
    """One row per action that has at least one shortcut; an action's group is its
    ``property("group")`` (set by the action table) or 'Other'."""
    rows: list[ShortcutRow] = []
    seen: set[int] = set()
    for action in actions:
        if id(action) in seen or action.isSeparator():
            continue
        seen.add(id(action))
        keys = [k for k in action.shortcuts() if not k.isEmpty()]
        if not keys:
            continue
        group = action.property("group") or "Other"
        name = action.property("help_text") or action.text()  # e.g. "Undo", not "Undo Add cup"
        rows.append(
            ShortcutRow(
                group=str(group),
                action=_clean(str(name)),
                keys=", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys),
                tip=action.toolTip() if action.toolTip() != action.text() else "",
            )
        )
    rows.sort(key=lambda r: (r.group, r.action))
    return rows


MOUSE_HELP = (
    "<b>Mouse on the image</b> — Points tool: left click = object, right click or Shift+click = "
    "background (each click refines the mask). Box tool: drag a box, then click to refine. "
    "Polygon: click vertices, Enter or double-click closes. Brush / Eraser: drag (right button does "
    "the opposite). Select: click an object, Ctrl/Shift+click adds. Exemplar (SAM 3 only): drag a box "
    "around one object and every object like it is found, Shift+drag: not like this. "
    "Pan: middle-drag, Space+drag or "
    "the wheel; zoom: Ctrl+wheel."
)


class ShortcutsDialog(QDialog):
    def __init__(self, actions: Sequence[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.rows = shortcut_rows(actions)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter, e.g. 'undo' or 'Ctrl'")
        self.search.textChanged.connect(self._filter)
        self.table = QTableWidget(len(self.rows), 3)
        self.table.setHorizontalHeaderLabels(["Group", "Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        for r, row in enumerate(self.rows):
            for c, text in enumerate((row.group, row.action, row.keys)):
                item = QTableWidgetItem(text)
                if row.tip:
                    item.setToolTip(row.tip)
                self.table.setItem(r, c, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.table)
        mouse = QLabel(MOUSE_HELP)
        mouse.setWordWrap(True)
        layout.addWidget(mouse)
        layout.addWidget(buttons)
        self.resize(600, 680)

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for r, row in enumerate(self.rows):
            hay = f"{row.group} {row.action} {row.keys} {row.tip}".lower()
            self.table.setRowHidden(r, bool(needle) and needle not in hay)
