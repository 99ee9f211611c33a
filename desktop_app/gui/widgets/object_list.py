"""The current image's objects: label (with colour), score, source, area, and a visibility box.

Selecting rows selects objects; the check box hides / shows one. Buttons ask for delete,
relabel, merge and subtract; the shortcuts for them (Delete, Ctrl+E, ...) are QActions in the
main window that act on :meth:`selected_ids`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.annotation.document import AnnotationObject
from desktop_app.gui.widgets.label_list import colour_icon

ID_ROLE = Qt.ItemDataRole.UserRole + 1
FALLBACK_COLOUR = "#808080"


class ObjectListWidget(QWidget):
    selection_changed = Signal(list)  # object ids
    visibility_changed = Signal(str, bool)  # object id, visible (only while its document is listed)
    visibility_changed_for = Signal(object, str, bool)  # the document listed when ticked, object id, visible
    delete_requested = Signal(list)
    relabel_requested = Signal(list)
    merge_requested = Signal(list)
    subtract_requested = Signal(list)

    COLUMNS = ("Label", "Score", "Source", "Area")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(self.COLUMNS))
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemChanged.connect(self._item_changed)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, header.ResizeMode.Stretch)
        for col in range(1, len(self.COLUMNS)):
            header.setSectionResizeMode(col, header.ResizeMode.ResizeToContents)

        buttons = QHBoxLayout()
        self.buttons: dict[str, QToolButton] = {}
        for key, text, tip, signal in (
            ("label", "Label…", "Change the label of the selected objects (Ctrl+E)", self.relabel_requested),
            ("merge", "Merge", "Merge the selected objects into the first one", self.merge_requested),
            ("subtract", "Subtract", "Cut the other selected objects out of the first one", self.subtract_requested),
            ("delete", "Delete", "Delete the selected objects (Delete)", self.delete_requested),
        ):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=signal: self._emit_for_selection(s))
            buttons.addWidget(button)
            self.buttons[key] = button
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        self._update_buttons()
        self._owner: object = None  # the document whose objects are listed

    # -- API -------------------------------------------------------------------------------
    def set_objects(
        self,
        objects: Sequence[AnnotationObject],
        *,
        colours: Mapping[str, str],
        selected: Sequence[str] = (),
        owner: object = None,
    ) -> None:
        """Show ``objects`` (of the document ``owner``); rows are updated in place when the same
        objects are listed (keeps the scroll position and never deletes an item whose signal is
        being delivered)."""
        self._owner = owner
        with QSignalBlocker(self.tree):
            if [o.id for o in objects] != self.ids():
                self.tree.clear()
                for obj in objects:
                    item = QTreeWidgetItem()
                    item.setData(0, ID_ROLE, obj.id)
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    for col in (1, 3):
                        item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.tree.addTopLevelItem(item)
            wanted = set(selected)
            for item, obj in zip(self._items(), objects):
                self._fill(item, obj, colours)
                item.setSelected(obj.id in wanted)
        self._update_buttons()

    @staticmethod
    def _fill(item: QTreeWidgetItem, obj: AnnotationObject, colours: Mapping[str, str]) -> None:
        item.setText(0, obj.label)
        item.setText(1, "" if obj.score is None else f"{obj.score:.2f}")
        item.setText(2, f"{obj.source} (review)" if obj.needs_review else obj.source)
        item.setText(3, str(obj.area))
        item.setIcon(0, colour_icon(colours.get(obj.label, FALLBACK_COLOUR)))
        item.setCheckState(0, Qt.CheckState.Unchecked if obj.hidden else Qt.CheckState.Checked)
        tip = f"{obj.label}, {obj.area} px, made by {obj.source}"
        if obj.needs_review:
            tip += " — needs review"
        item.setToolTip(0, tip + ". Untick to hide it.")

    def set_selection(self, ids: Sequence[str]) -> None:
        wanted = set(ids)
        with QSignalBlocker(self.tree):
            for item in self._items():
                item.setSelected(item.data(0, ID_ROLE) in wanted)
        self._update_buttons()

    def selected_ids(self) -> list[str]:
        """Selected object ids in list order (the first is the target of merge / subtract)."""
        return [item.data(0, ID_ROLE) for item in self._items() if item.isSelected()]

    def ids(self) -> list[str]:
        return [item.data(0, ID_ROLE) for item in self._items()]

    # -- internals -------------------------------------------------------------------------
    def _items(self) -> list[QTreeWidgetItem]:
        # topLevelItem(i) is None only for i out of range; the filter is for the type checker
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item for item in items if item is not None]

    def _selection_changed(self) -> None:
        self._update_buttons()
        self.selection_changed.emit(self.selected_ids())

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            # delivered after the item's own setData returns: the receiver may rebuild the list
            # the deferred slot checks that the same document is still listed: an image switch in
            # the same event-loop turn must not reach the next image's document
            object_id, visible = item.data(0, ID_ROLE), item.checkState(0) == Qt.CheckState.Checked
            owner = self._owner
            QTimer.singleShot(0, lambda: self._emit_visibility(owner, object_id, visible))

    def _emit_visibility(self, owner: object, object_id: str, visible: bool) -> None:
        if owner is not self._owner or object_id not in self.ids():
            return  # another image is listed now
        self.visibility_changed_for.emit(owner, object_id, visible)
        self.visibility_changed.emit(object_id, visible)

    def _emit_for_selection(self, signal) -> None:
        ids = self.selected_ids()
        if ids:
            signal.emit(ids)

    def _update_buttons(self) -> None:
        n = len(self.selected_ids())
        self.buttons["label"].setEnabled(n >= 1)
        self.buttons["delete"].setEnabled(n >= 1)
        self.buttons["merge"].setEnabled(n >= 2)
        self.buttons["subtract"].setEnabled(n >= 2)
