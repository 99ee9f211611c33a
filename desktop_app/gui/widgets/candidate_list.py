"""The candidates on offer, as a list: a text prompt's detections with their label (the prompt
phrase each matched), score and a check box, so a person keeps some and drops others before
Enter (Enter accepts only the checked ones; the canvas draws unchecked ones faint). A point or
box prompt's alternatives are listed too (no check box: Enter takes the focused one).

Clicking a row focuses that candidate (as Tab does). The list never takes keyboard focus, so
Enter, Tab and Esc keep working on the canvas while a person ticks boxes with the mouse.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from desktop_app.core.prediction_policy import object_label, object_score
from desktop_app.gui.widgets.label_list import colour_icon
from inference.results import PredictionKind

HINT = "Run a text prompt (Ctrl+T): its detections are listed here to check before Enter accepts them."


class CandidateListWidget(QWidget):
    check_changed = Signal(int, bool)  # candidate index, checked
    focus_requested = Signal(int)  # candidate index
    accept_requested = Signal()
    discard_requested = Signal()

    COLUMNS = ("Label", "Score")

    def __init__(self, parent: QWidget | None = None, *, colour_for=None, fallback_label=None) -> None:
        super().__init__(parent)
        self._colour_for = colour_for or (lambda _label: (128, 128, 128))
        self._fallback = fallback_label or (lambda: "object")  # what accepting gives a detection without a phrase
        self._state = None
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid); padding: 4px;")
        self.tree = QTreeWidget()
        self.tree.setObjectName("candidate_tree")
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Enter / Tab / Esc stay with the canvas
        self.tree.setColumnWidth(0, 150)
        self.summary = QLabel("")
        self.accept_button = QPushButton("Accept checked (Enter)")
        self.accept_button.setObjectName("candidate_accept")
        self.all_button = QPushButton("All")
        self.none_button = QPushButton("None")
        self.discard_button = QPushButton("Discard (Esc)")
        for b in (self.accept_button, self.all_button, self.none_button, self.discard_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.all_button)
        buttons.addWidget(self.none_button)
        buttons.addStretch(1)
        buttons.addWidget(self.discard_button)
        buttons.addWidget(self.accept_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.hint)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.itemClicked.connect(lambda item, _col: self.focus_requested.emit(self.tree.indexOfTopLevelItem(item)))
        self.accept_button.clicked.connect(self.accept_requested)
        self.discard_button.clicked.connect(self.discard_requested)
        self.all_button.clicked.connect(lambda: self._check_all(True))
        self.none_button.clicked.connect(lambda: self._check_all(False))
        self.set_state(None)

    # -- showing -------------------------------------------------------------------------------
    def set_state(self, state) -> None:
        """Show ``state`` (the controller's ``CandidateState``; ``None``: nothing on offer)."""
        self._state = state
        instances = state is not None and state.kind is PredictionKind.INSTANCES
        with QSignalBlocker(self.tree):
            self.tree.clear()
            for i, cand in enumerate(() if state is None else state.candidates):
                if instances:  # the label accepting will give it (prediction_policy.object_label)
                    label = object_label(cand, text=state.prompt.text, fallback=self._fallback())
                else:
                    label = f"alternative {i + 1}"
                item = QTreeWidgetItem([label, f"{object_score(cand):.2f}"])
                rgb = self._colour_for(label) if instances else (255, 200, 0)
                item.setIcon(0, colour_icon("#{:02x}{:02x}{:02x}".format(*rgb)))
                item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                if instances:
                    flags |= Qt.ItemFlag.ItemIsUserCheckable
                item.setFlags(flags)
                if instances:
                    item.setCheckState(0, Qt.CheckState.Checked if state.checked(i) else Qt.CheckState.Unchecked)
                    if not state.checked(i):
                        for col in range(2):
                            item.setForeground(col, self.palette().placeholderText())
                self.tree.addTopLevelItem(item)
            if state is not None and state.candidates:
                # Qt takes a null item (clears the current one); the stub does not say so
                self.tree.setCurrentItem(self.tree.topLevelItem(state.index))  # type: ignore[arg-type]
        has = state is not None and bool(state.candidates)
        self.hint.setVisible(not has)
        self.tree.setVisible(has)
        for b in (self.all_button, self.none_button):
            b.setEnabled(instances)
        self.accept_button.setEnabled(has)
        self.discard_button.setEnabled(has)
        self.accept_button.setText("Accept checked (Enter)" if instances or not has else "Accept (Enter)")
        if instances:
            n = sum(1 for i in range(len(state.candidates)) if state.checked(i))
            self.summary.setText(f"{n} of {len(state.candidates)} checked: Enter accepts them")
        else:
            self.summary.setText("Tab: next alternative, Enter accepts it" if has else "")

    # -- reading (tests, screenshots) ----------------------------------------------------------
    def rows(self) -> list[tuple[str, str, bool | None]]:
        """(label, score, checked or None when not checkable) per row."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            assert item is not None  # i < topLevelItemCount()
            checkable = bool(item.flags() & Qt.ItemFlag.ItemIsUserCheckable)
            out.append(
                (item.text(0), item.text(1), (item.checkState(0) == Qt.CheckState.Checked) if checkable else None)
            )
        return out

    def item(self, index: int) -> QTreeWidgetItem | None:
        return self.tree.topLevelItem(index)

    # -- input ---------------------------------------------------------------------------------
    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0 and item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            self.check_changed.emit(self.tree.indexOfTopLevelItem(item), item.checkState(0) == Qt.CheckState.Checked)

    def _check_all(self, checked: bool) -> None:
        state = self._state
        if state is None:
            return
        for i in range(len(state.candidates)):
            if state.checked(i) != checked:
                self.check_changed.emit(i, checked)
                state = self._state  # the controller answered with a new state
