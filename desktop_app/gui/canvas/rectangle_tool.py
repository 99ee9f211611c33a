"""The Rectangle tool (key R): drag a rectangle; it becomes an object whose mask is the rectangle
(snapped to the pixel grid) and whose ``kind`` is "rectangle" (for detection datasets).

One of the canvas's *interactions* (see :class:`ImageCanvas`): it gets the mouse events first
while the Rectangle tool is on and draws the rectangle being dragged. It emits ``drawn`` with the
snapped xyxy box; the shell turns it into an undoable "Add" (it never edits the document).
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen

from desktop_app.core.object_ops import snapped_rectangle
from desktop_app.gui.canvas.box_drag import BoxDragTool, Corners
from desktop_app.gui.canvas.tools import Tool

RECT_COLOUR = QColor(0, 220, 255)


class RectangleTool(BoxDragTool):
    tool = Tool.RECTANGLE
    drawn = Signal(object)  # (x0, y0, x1, y1) image pixels, x1/y1 exclusive, inside the image

    def _snapped(self, corners: Corners | None = None) -> tuple[int, int, int, int] | None:
        image = self.canvas.image
        corners = corners or self._drag
        if corners is None or image is None:
            return None
        return snapped_rectangle(*corners, width=image.width, height=image.height)

    def _finished(self, corners: Corners) -> None:
        box = self._snapped(corners)
        if box is not None:
            self.drawn.emit(box)

    def paint(self, painter: QPainter) -> None:
        box = self._snapped()
        if box is None:
            return
        x0, y0, x1, y1 = box
        painter.save()
        painter.setPen(QPen(RECT_COLOUR, 1.5, Qt.PenStyle.DashLine))
        painter.setBrush(QColor(0, 220, 255, 40))
        painter.drawRect(QRectF(self.canvas.to_screen(x0, y0), self.canvas.to_screen(x1, y1)).normalized())
        painter.restore()
