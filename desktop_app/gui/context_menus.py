"""Right-click menus on the canvas and on the object list.

On an object (canvas or list row): change label, hide / show, delete, duplicate, copy, edit
vertices, bring to front. On the empty canvas: paste, select all, fit to window. The entries are
the window's own QActions (so they show their keys and do exactly what the keys do); a right-click
on an object that is not selected selects it first.

On the canvas the right button also means "negative point" (Points, Box) and "erase" (Brush), so
the mouse opens the menu only with the Select and Rectangle tools; the keyboard's menu key
(or Shift+F10) opens it with any tool. While vertices are edited, the right button deletes a
vertex instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QAction, QContextMenuEvent
from PySide6.QtWidgets import QMenu, QWidget

from desktop_app.gui.canvas.tools import Tool

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.main_window import MainWindow

MENU_TOOLS = (Tool.SELECT, Tool.RECTANGLE)


class ContextMenus(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.canvas = window.canvas
        self.menu: QMenu | None = None  # the menu on screen (tests read it)
        self.canvas.installEventFilter(self)
        tree = window.object_list.tree
        tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tree.customContextMenuRequested.connect(self._on_list_menu)

    # -- which actions ---------------------------------------------------------------------------
    def object_actions(self) -> list[QAction | None]:
        a, c = self.window.actions_by_name, self.window.controller.actions
        return [
            a["relabel"],
            c.toggle_hidden,
            c.delete,
            None,
            a["duplicate"],
            a["copy"],
            None,
            a["edit_vertices"],
            a["bring_to_front"],
        ]

    def empty_actions(self) -> list[QAction | None]:
        a = self.window.actions_by_name
        return [a["paste"], a["select_all"], None, self.canvas.actions.fit]

    def _popup(self, actions: list[QAction | None], parent: QWidget, at: QPoint) -> QMenu:
        if self.menu is not None:
            self.menu.close()
            self.menu.deleteLater()
        menu = QMenu(parent)
        menu.setObjectName("object_context_menu")
        for action in actions:
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
        self.menu = menu
        menu.popup(parent.mapToGlobal(at))
        return menu

    # -- canvas ----------------------------------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if obj is not self.canvas or event.type() != QEvent.Type.ContextMenu:
            return False
        assert isinstance(event, QContextMenuEvent)
        if self.canvas.vertex_editor.active:
            return True  # the right button deletes vertices
        by_mouse = event.reason() == QContextMenuEvent.Reason.Mouse
        if by_mouse and self.canvas.tool not in MENU_TOOLS:
            return False  # a negative point / erase: no menu
        self.show_canvas_menu(event.pos(), by_mouse=by_mouse)
        return True

    def show_canvas_menu(self, pos: QPoint, *, by_mouse: bool = True) -> QMenu:
        controller = self.window.controller
        object_id = None
        if by_mouse:
            object_id = self.canvas.object_at(*self.canvas.to_image(pos.toPointF()))
            if object_id is not None and object_id not in controller.selected_ids:
                controller.select([object_id])
        elif controller.selected_ids:
            object_id = controller.selected_ids[0]
        if object_id is not None:
            return self._popup(self.object_actions(), self.canvas, pos)
        return self._popup(self.empty_actions(), self.canvas, pos)

    # -- object list -----------------------------------------------------------------------------
    def _on_list_menu(self, pos: QPoint) -> None:
        tree = self.window.object_list.tree
        item = tree.itemAt(pos)
        if item is None:
            self._popup(self.empty_actions()[:2], tree.viewport(), pos)
            return
        if not item.isSelected():
            tree.clearSelection()
            item.setSelected(True)  # the list's selection_changed selects it on the canvas too
        self._popup(self.object_actions(), tree.viewport(), pos)
