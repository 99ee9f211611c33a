"""Vertex editing: an object's outline (its mask's rings simplified within ~1 px, holes kept) with
draggable vertices, edited on the canvas and applied back to the mask as one undo step.

How a person uses it: select an object and press Ctrl+J (Edit → Edit vertices), or double-click it
with the Select tool. Then

* drag a vertex to move it;
* click on an edge (or Ctrl+click near one) to insert a vertex there (and drag it at once);
* right-click a vertex, or hover it and press Delete / Backspace, to delete it (a ring keeps 3);
* Enter (or Ctrl+J again) applies the outline: it is rasterised into the object's mask
  (``committed`` signal, the shell pushes one ``EditOutlineCommand``); Esc leaves without change.

The editor is one of the canvas's *interactions* (see :class:`ImageCanvas`): it gets the mouse
events first while it is active and paints over the canvas. It never edits the document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPen

from desktop_app.core.object_ops import (
    Outline,
    editable_outline,
    is_rectangle,
    nearest_edge,
    nearest_vertex,
    outline_to_mask,
)
from desktop_app.gui.canvas.tools import Tool

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.canvas.image_canvas import ImageCanvas

VERTEX_HIT_PX = 7.0  # screen pixels: a press this close to a vertex grabs it
EDGE_HIT_PX = 5.0  # a click this close to an edge inserts a vertex there
CTRL_EDGE_HIT_PX = 20.0  # Ctrl+click inserts on the nearest edge within this distance
OUTLINE = QColor(255, 255, 255)
SHADOW = QColor(0, 0, 0, 200)
VERTEX_FILL = QColor(255, 255, 255)
HOVER_FILL = QColor(255, 210, 0)


class VertexEditor(QObject):
    committed = Signal(str, object, str)  # object id, new mask, the object's kind after the edit
    message = Signal(str)  # a short sentence for the status bar
    active_changed = Signal(bool)

    def __init__(self, canvas: ImageCanvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.object_id: str | None = None
        self.outline: Outline | None = None
        self._mask_ref: np.ndarray | None = None  # the object's mask when editing began
        self._preview: np.ndarray | None = None  # the outline rasterised after the last edit
        self._dirty = False
        self._drag: tuple[int, int] | None = None  # (ring, vertex)
        self._hover: tuple[int, int] | None = None

    # -- state ---------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.object_id is not None

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def hovered_vertex(self) -> tuple[int, int] | None:
        return self._hover

    def start(self, object_id: str) -> bool:
        """Show ``object_id``'s outline with its vertices (ends any edit under way)."""
        doc = self.canvas._document  # the canvas's helper reads what the canvas draws
        self.cancel()
        try:
            obj = None if doc is None else doc.get(object_id)
        except KeyError:
            obj = None
        if obj is None or obj.hidden:
            self.message.emit("select a visible object to edit its vertices")
            return False
        outline = editable_outline(obj.mask)
        if not outline.rings:
            self.message.emit("this object has no pixels to outline")
            return False
        self.object_id, self.outline, self._mask_ref = obj.id, outline, obj.mask
        self._preview, self._dirty, self._drag, self._hover = obj.mask, False, None, None
        self.message.emit(f"editing '{obj.label}' ({outline.vertex_count} vertices): Enter applies, Esc cancels")
        self.active_changed.emit(True)
        self.canvas.update()
        return True

    def cancel(self) -> bool:
        """Leave without changing the object; ``False`` when not editing."""
        if not self.active:
            return False
        self._leave()
        return True

    def commit(self) -> bool:
        """Apply the edited outline (one ``committed`` signal) and leave; unchanged outlines just
        leave. ``False`` when not editing."""
        if not self.active or self.outline is None:
            return False
        doc = self.canvas._document
        if not self._dirty or doc is None:
            self._leave()
            return True
        mask = outline_to_mask(self.outline, height=doc.height, width=doc.width)
        if not mask.any():
            self.message.emit("the outline covers no pixel: move the vertices apart, or Esc to cancel")
            return True
        object_id = self.object_id
        assert object_id is not None
        try:
            old_kind = doc.get(object_id).kind
        except KeyError:
            self._leave()
            return True
        kind = "rectangle" if old_kind == "rectangle" and is_rectangle(mask) else "mask"
        self._leave()
        self.committed.emit(object_id, mask, kind)
        return True

    def document_changed(self) -> None:
        """The document changed (undo, another edit): an outline of an old mask is not kept."""
        if not self.active:
            return
        doc = self.canvas._document
        try:
            current = None if doc is None else doc.get(self.object_id or "")
        except KeyError:
            current = None
        if current is None or current.mask is not self._mask_ref or current.hidden:
            self._leave()
            self.message.emit("the object changed: vertex editing ended")

    def preview(self) -> tuple[str, np.ndarray] | None:
        """(object id, mask of the outline so far) for the canvas to draw instead of the object."""
        if not self.active or self._preview is None or not self._dirty:
            return None
        return self.object_id or "", self._preview

    def delete_hovered(self) -> bool:
        """Delete / Backspace: remove the vertex under the cursor. ``True`` whenever editing (the
        key never deletes the object being edited)."""
        if not self.active:
            return False
        if self._hover is not None:
            self._delete(*self._hover)
        else:
            self.message.emit("point at a vertex to delete it")
        return True

    def _leave(self) -> None:
        self.object_id, self.outline, self._mask_ref, self._preview = None, None, None, None
        self._dirty, self._drag, self._hover = False, None, None
        self.canvas.overlays.invalidate("stroke")
        self.active_changed.emit(False)
        self.canvas.update()

    # -- edits ---------------------------------------------------------------------------------
    def _edited(self) -> None:
        doc = self.canvas._document
        if self.outline is not None and doc is not None:
            self._dirty = True
            self._preview = outline_to_mask(self.outline, height=doc.height, width=doc.width)
        self.canvas.update()

    def _delete(self, ring: int, index: int) -> None:
        assert self.outline is not None
        if self.outline.delete_vertex(ring, index):
            self._hover = None
            self._edited()
        else:
            self.message.emit("a ring keeps at least 3 vertices")

    def _clamp(self, x: float, y: float) -> tuple[float, float]:
        doc = self.canvas._document
        if doc is None:
            return x, y
        return min(max(x, 0.0), float(doc.width)), min(max(y, 0.0), float(doc.height))

    def _vertex_at(self, x: float, y: float) -> tuple[int, int] | None:
        if self.outline is None:
            return None
        hit = nearest_vertex(self.outline, x, y)
        if hit is None or hit.distance * self.canvas.scale > VERTEX_HIT_PX:
            return None
        return hit.ring, hit.index

    # -- the canvas's interaction protocol -----------------------------------------------------
    def mouse_press(self, event: QMouseEvent, x: float, y: float) -> bool:
        if not self.active or self.outline is None:
            return False
        button = event.button()
        vertex = self._vertex_at(x, y)
        if button == Qt.MouseButton.RightButton:
            if vertex is not None:
                self._delete(*vertex)
            return True
        if button != Qt.MouseButton.LeftButton:
            return True
        if vertex is not None:
            self._drag = self._hover = vertex
            return True
        edge = nearest_edge(self.outline, x, y)
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        limit = CTRL_EDGE_HIT_PX if ctrl else EDGE_HIT_PX
        if edge is not None and edge.distance * self.canvas.scale <= limit:
            px, py = self._clamp(*edge.point)
            index = self.outline.insert_vertex(edge.ring, edge.index, px, py)
            self._drag = self._hover = (edge.ring, index)
            self._edited()
        return True

    def mouse_move(self, event: QMouseEvent, x: float, y: float) -> bool:
        if not self.active or self.outline is None:
            return False
        if self._drag is not None:
            self.outline.move_vertex(*self._drag, *self._clamp(x, y))
            self._dirty = True
        else:
            self._hover = self._vertex_at(x, y)
        self.canvas.update()
        return True

    def mouse_release(self, event: QMouseEvent, x: float, y: float) -> bool:
        if not self.active:
            return False
        if self._drag is not None and event.button() == Qt.MouseButton.LeftButton:
            self._drag = None
            self._edited()
        return True

    def mouse_double_click(self, event: QMouseEvent, x: float, y: float) -> bool:
        if self.active:
            return True
        if self.canvas.tool is Tool.SELECT and event.button() == Qt.MouseButton.LeftButton:
            object_id = self.canvas.object_at(x, y)
            if object_id is not None:
                return self.start(object_id)
        return False

    # -- painting ------------------------------------------------------------------------------
    def paint(self, painter: QPainter) -> None:
        if not self.active or self.outline is None:
            return
        to_screen = self.canvas.to_screen
        path = QPainterPath()
        path.setFillRule(Qt.FillRule.OddEvenFill)
        for ring in self.outline.rings:
            pts = [to_screen(float(px), float(py)) for px, py in ring]
            if len(pts) < 2:
                continue
            path.moveTo(pts[0])
            for p in pts[1:]:
                path.lineTo(p)
            path.closeSubpath()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(SHADOW, 3.5))
        painter.drawPath(path)
        painter.setPen(QPen(OUTLINE, 1.5))
        painter.drawPath(path)
        for ri, ring in enumerate(self.outline.rings):
            for vi, (px, py) in enumerate(ring):
                c = to_screen(float(px), float(py))
                hot = (ri, vi) == self._hover or (ri, vi) == self._drag
                r = 5.0 if hot else 3.5
                painter.setPen(QPen(SHADOW, 1.2))
                painter.setBrush(HOVER_FILL if hot else VERTEX_FILL)
                painter.drawRect(QRectF(QPointF(c.x() - r, c.y() - r), QPointF(c.x() + r, c.y() + r)))
        painter.restore()
