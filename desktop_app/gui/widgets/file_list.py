"""The folder's images with their state (new / in progress / review / done) and object count.

A filter box shows only one state (e.g. only 'review' after a batch run). The widget holds plain
:class:`FileEntry` rows; whoever owns the project folder feeds and updates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTreeView, QVBoxLayout, QWidget

from desktop_app.core.annotation.document import ImageStatus

STATUS_TEXT = {
    ImageStatus.NEW: "new",
    ImageStatus.IN_PROGRESS: "in progress",
    ImageStatus.REVIEW: "review",
    ImageStatus.DONE: "done",
}
STATUS_COLOUR = {
    ImageStatus.NEW: QColor("#9e9e9e"),
    ImageStatus.IN_PROGRESS: QColor("#1e88e5"),
    ImageStatus.REVIEW: QColor("#fb8c00"),
    ImageStatus.DONE: QColor("#43a047"),
}
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1
NAME_ROLE = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    name: str  # path relative to the project folder
    status: ImageStatus = ImageStatus.NEW
    object_count: int = 0


class FileTableModel(QAbstractTableModel):
    COLUMNS = ("Image", "State", "Objects")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._entries: list[FileEntry] = []
        self._row_of: dict[str, int] = {}
        self._current = ""
        self._notes: dict[str, str] = {}  # name -> a problem to show ("not saved", "cannot open")

    # -- data in ---------------------------------------------------------------------------
    def set_entries(self, entries: Sequence[FileEntry]) -> None:
        self.beginResetModel()
        self._entries = list(entries)
        self._row_of = {e.name: i for i, e in enumerate(self._entries)}
        self.endResetModel()

    def update_entry(self, entry: FileEntry) -> None:
        row = self._row_of.get(entry.name)
        if row is None:
            return
        self._entries[row] = entry
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def set_note(self, name: str, note: str) -> None:
        """Mark an image with a problem ('' clears it); kept when the entries are re-read."""
        if self._notes.get(name, "") == note:
            return
        if note:
            self._notes[name] = note
        else:
            self._notes.pop(name, None)
        row = self._row_of.get(name)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def note(self, name: str) -> str:
        return self._notes.get(name, "")

    def set_current(self, name: str) -> None:
        old = self._row_of.get(self._current)
        self._current = name
        for row in (old, self._row_of.get(name)):
            if row is not None:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def entry(self, name: str) -> FileEntry | None:
        row = self._row_of.get(name)
        return None if row is None else self._entries[row]

    def entries(self) -> list[FileEntry]:
        return list(self._entries)

    # -- Qt model --------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry = self._entries[index.row()]
        col = index.column()
        note = self._notes.get(entry.name, "")
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return f"⚠ {entry.name}" if note else entry.name
            if col == 1:
                return f"{STATUS_TEXT[entry.status]} · {note}" if note else STATUS_TEXT[entry.status]
            return str(entry.object_count) if entry.object_count else ""
        if role == Qt.ItemDataRole.ForegroundRole and note and col in (0, 1):
            return QColor("#c62828")
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return STATUS_COLOUR[entry.status]
        if role == Qt.ItemDataRole.FontRole and entry.name == self._current:
            from PySide6.QtGui import QFont

            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{entry.name}: {STATUS_TEXT[entry.status]}, {entry.object_count} object(s)" + (
                f" — {note}" if note else ""
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == STATUS_ROLE:
            return entry.status.value
        if role == NAME_ROLE:
            return entry.name
        return None


class _StatusFilter(QSortFilterProxyModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._status: ImageStatus | None = None

    def set_status(self, status: ImageStatus | None) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9
            self.beginFilterChange()
            self._status = status
            self.endFilterChange()
        else:
            self._status = status
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:
        if self._status is None:
            return True
        index = self.sourceModel().index(source_row, 0, source_parent)
        return index.data(STATUS_ROLE) == self._status.value


class FileListWidget(QWidget):
    """Emits :attr:`image_activated` with the entry's name when a person picks an image."""

    image_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = FileTableModel(self)
        self.proxy = _StatusFilter(self)
        self.proxy.setSourceModel(self.model)

        self.filter_box = QComboBox()
        self.filter_box.addItem("All images", None)
        for status in ImageStatus:
            self.filter_box.addItem(f"Only {STATUS_TEXT[status]}", status.value)
        self.filter_box.setToolTip("Show only the images in one state (e.g. 'review' after a batch run)")
        self.filter_box.currentIndexChanged.connect(self._filter_changed)
        self.summary = QLabel()

        self.view = QTreeView()
        self.view.setModel(self.proxy)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QTreeView.SelectionMode.SingleSelection)
        self.view.setSelectionBehavior(QTreeView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QTreeView.EditTrigger.NoEditTriggers)
        self.view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # letters (A/D) stay app shortcuts
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, header.ResizeMode.Stretch)
        header.setSectionResizeMode(1, header.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, header.ResizeMode.ResizeToContents)
        self.view.activated.connect(self._activated)
        self.view.clicked.connect(self._activated)

        top = QHBoxLayout()
        top.addWidget(self.filter_box, 1)
        top.addWidget(self.summary)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view)

    # -- API -------------------------------------------------------------------------------
    def set_entries(self, entries: Sequence[FileEntry]) -> None:
        self.model.set_entries(entries)
        self._update_summary()

    def update_entry(self, entry: FileEntry) -> None:
        self.model.update_entry(entry)
        self._update_summary()

    def set_current(self, name: str) -> None:
        self.model.set_current(name)
        self._select(name)

    def set_note(self, name: str, note: str) -> None:
        self.model.set_note(name, note)

    def set_status_filter(self, status: ImageStatus | None) -> None:
        index = self.filter_box.findData(None if status is None else status.value)
        self.filter_box.setCurrentIndex(max(index, 0))

    def status_filter(self) -> ImageStatus | None:
        value = self.filter_box.currentData()
        return None if value is None else ImageStatus(value)

    def visible_names(self) -> list[str]:
        """Names in the order shown, after filtering (what D / A walk through)."""
        return [self.proxy.index(r, 0).data(NAME_ROLE) for r in range(self.proxy.rowCount())]

    # -- internals -------------------------------------------------------------------------
    def _select(self, name: str) -> None:
        for r in range(self.proxy.rowCount()):
            index = self.proxy.index(r, 0)
            if index.data(NAME_ROLE) == name:
                self.view.setCurrentIndex(index)
                self.view.scrollTo(index)
                return
        self.view.clearSelection()

    def _activated(self, index: QModelIndex) -> None:
        name = index.data(NAME_ROLE)
        if name:
            self.image_activated.emit(name)

    def _filter_changed(self) -> None:
        self.proxy.set_status(self.status_filter())
        self._select(self.model._current)
        self._update_summary()

    def _update_summary(self) -> None:
        entries = self.model.entries()
        done = sum(1 for e in entries if e.status == ImageStatus.DONE)
        review = sum(1 for e in entries if e.status == ImageStatus.REVIEW)
        text = f"{done}/{len(entries)} done"
        if review:
            text += f", {review} to review"
        self.summary.setText(text)
