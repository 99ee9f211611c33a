"""The controller's key actions: Enter, F, Tab, Esc, Delete, Ctrl+M, Ctrl+Shift+M, H.

:func:`build_controller_actions` makes them (added to the canvas, so they work while it has the
focus; the main window widens most to the whole window) and decides what Enter, Esc and Delete
mean right now: an unfinished polygon or vertex edit first, then the prompt and the selection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from desktop_app.gui.canvas.tools import Tool

if TYPE_CHECKING:
    from desktop_app.gui.controller import AnnotationController  # imports this module at run time


@dataclass(frozen=True)
class ControllerActions:
    """QActions for the shell's menus (already added to the canvas)."""

    accept: QAction  # Enter: accept the candidate (all detections of a text prompt)
    accept_one: QAction  # F: accept the focused candidate only
    next_candidate: QAction  # Tab
    discard: QAction  # Esc
    delete: QAction  # Delete / Backspace
    merge: QAction  # Ctrl+M
    subtract: QAction  # Ctrl+Shift+M
    toggle_hidden: QAction  # H

    def all(self) -> list[QAction]:
        return [
            self.accept,
            self.accept_one,
            self.next_candidate,
            self.discard,
            self.delete,
            self.merge,
            self.subtract,
            self.toggle_hidden,
        ]


def build_controller_actions(controller: AnnotationController) -> ControllerActions:
    canvas = controller.canvas

    def action(text: str, keys: Sequence[str], slot: Callable[[], object]) -> QAction:
        act = QAction(text, canvas)
        act.setShortcuts([QKeySequence(k) for k in keys])
        act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        act.triggered.connect(slot)
        canvas.addAction(act)
        return act

    def on_enter() -> None:
        if canvas.commit_interaction():  # vertex editing: apply the edited outline
            return
        if canvas.tool is Tool.POLYGON and canvas.polygon_in_progress:
            canvas.finish_polygon()
        else:
            controller.accept()

    def on_escape() -> None:
        if not canvas.cancel_polygon():
            controller.discard_prompt()

    def on_delete() -> None:
        if not canvas.remove_last_vertex():
            controller.delete_selected()

    return ControllerActions(
        accept=action("Accept", ["Return", "Enter"], on_enter),
        accept_one=action("Accept focused candidate", ["F"], controller.offer.accept_one),
        next_candidate=action("Next candidate", ["Tab"], controller.offer.next),
        discard=action("Discard prompt", ["Esc"], on_escape),
        delete=action("Delete selected", ["Delete", "Backspace"], on_delete),
        merge=action("Merge selected", ["Ctrl+M"], controller.merge_selected),
        subtract=action("Subtract from first selected", ["Ctrl+Shift+M"], controller.subtract_selected),
        toggle_hidden=action("Hide / show selected", ["H"], controller.toggle_hidden_selected),
    )
