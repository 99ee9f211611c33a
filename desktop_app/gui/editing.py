"""Shape editing features of the window (issue 12), assembled in one place so the main window
only calls :func:`install_editing`:

* vertex editing (``canvas.vertex_editor``) → one ``EditOutlineCommand`` per applied edit;
* the Rectangle tool (R, ``canvas.rectangle_tool``) → an object of kind "rectangle";
* copy / paste / duplicate / select all / bring to front (Edit menu; keys in ``ACTION_SPECS``);
* context menus (:mod:`desktop_app.gui.context_menus`), drag and drop
  (:mod:`desktop_app.gui.drag_drop`), File → Open Recent (:mod:`desktop_app.gui.recent_folders`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt

from desktop_app.core.annotation.document import AnnotationObject
from desktop_app.core.object_ops import copy_objects, paste_copies, rectangle_mask
from desktop_app.gui.clipboard import ObjectClipboard
from desktop_app.gui.commands import AddObjectsCommand, BringToFrontCommand, EditOutlineCommand
from desktop_app.gui.context_menus import ContextMenus
from desktop_app.gui.drag_drop import DropOpener
from desktop_app.gui.recent_folders import RecentFolders

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.main_window import MainWindow


class EditingFeatures(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.controller = window.controller
        self.canvas = window.canvas
        self.clipboard = ObjectClipboard()
        slots = {
            "copy": self.copy,
            "paste": self.paste,
            "duplicate": self.duplicate,
            "select_all": self.select_all,
            "edit_vertices": self.toggle_vertex_editing,
            "bring_to_front": self.bring_to_front,
        }
        for name, slot in slots.items():
            window.actions_by_name[name].triggered.connect(lambda _=False, f=slot: f())
        editor = self.canvas.vertex_editor
        editor.committed.connect(self._on_outline_committed)
        editor.message.connect(self._say)
        self.canvas.rectangle_tool.drawn.connect(self._on_rectangle)
        self.context_menus = ContextMenus(window)
        self.drops = DropOpener(window)
        self.recent = RecentFolders(window)

    def _say(self, text: str) -> None:
        self.window.status_panel.message(text)

    def _selected(self) -> list[AnnotationObject]:
        doc = self.controller.document
        if doc is None:
            return []
        wanted = set(self.controller.selected_ids)
        return [o for o in doc.objects if o.id in wanted]  # in document (drawing) order

    # -- clipboard -------------------------------------------------------------------------------
    def copy(self) -> None:
        objects = self._selected()
        if not objects:
            self._say("select objects to copy (click them with the Select tool, or Ctrl+A)")
            return
        doc = self.controller.document
        n = self.clipboard.copy(objects, image_name=None if doc is None else doc.image_name)
        self._say(f"copied {n} object{'s' if n != 1 else ''}: Ctrl+V pastes them here or on another image")

    def paste(self) -> None:
        doc, history = self.controller.document, self.controller.history
        if doc is None or history is None:
            return
        if not len(self.clipboard):
            self._say("nothing to paste: copy objects first (Ctrl+C)")
            return
        result = self.clipboard.paste(width=doc.width, height=doc.height)
        if result.objects:
            n = len(result.objects)
            history.push(
                AddObjectsCommand(history, objects=result.objects, text=f"Paste {n} object{'s' if n != 1 else ''}")
            )
        self._say(result.describe())

    def duplicate(self) -> None:
        doc, history = self.controller.document, self.controller.history
        objects = self._selected()
        if doc is None or history is None or not objects:
            self._say("select objects to duplicate")
            return
        result = paste_copies(copy_objects(objects), width=doc.width, height=doc.height)
        if result.objects:
            n = len(result.objects)
            history.push(
                AddObjectsCommand(history, objects=result.objects, text=f"Duplicate {n} object{'s' if n != 1 else ''}")
            )
            self._say(f"duplicated {n} object{'s' if n != 1 else ''} in place (the copies are selected)")

    def select_all(self) -> None:
        doc = self.controller.document
        if doc is not None:
            self.controller.select([o.id for o in doc.objects])

    def bring_to_front(self) -> None:
        history = self.controller.history
        ids = [o.id for o in self._selected()]
        if history is not None and ids:
            history.push(BringToFrontCommand(history, object_ids=ids))

    # -- shapes ----------------------------------------------------------------------------------
    def toggle_vertex_editing(self) -> None:
        editor = self.canvas.vertex_editor
        if editor.active:
            editor.commit()
            return
        ids = self.controller.selected_ids
        if len(ids) != 1:
            self._say("select one object to edit its vertices")
            return
        self.controller.discard_prompt()
        if editor.start(ids[0]):
            self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_outline_committed(self, object_id: str, mask: np.ndarray, kind: str) -> None:
        history = self.controller.history
        if history is None:
            return
        try:
            command = EditOutlineCommand(history, object_id=object_id, mask=mask, object_kind=kind)
        except KeyError:
            return
        if command.changes_anything:
            history.push(command)
            self.controller.select([object_id])

    def _on_rectangle(self, box: tuple[int, int, int, int]) -> None:
        doc, history = self.controller.document, self.controller.history
        if doc is None or history is None:
            return
        x0, y0, x1, y1 = box
        obj = AnnotationObject(
            label=self.controller.active_label,
            kind="rectangle",
            source="rectangle",
            mask=rectangle_mask(box, width=doc.width, height=doc.height),
            prompt={"rectangle": [x0, y0, x1, y1]},
        )
        history.push(AddObjectsCommand(history, objects=[obj], text=f"Add rectangle {obj.label}"))


def install_editing(window: MainWindow) -> EditingFeatures:
    return EditingFeatures(window)
