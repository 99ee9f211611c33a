"""The Rectangle tool (key R): drag a rectangle; it becomes an object whose mask is the rectangle
(snapped to the pixel grid) and whose ``kind`` is "rectangle" (for detection datasets).

One of the canvas's *interactions* (see :class:`ImageCanvas`): it gets the mouse events first
while the Rectangle tool is on and draws the rectangle being dragged. It emits ``drawn`` with the
snapped xyxy box; the shell turns it into an undoable "Add" (it never edits the document).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen

from desktop_app.core.object_ops import snapped_rectangle
from desktop_app.gui.canvas.tools import Tool

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.canvas.image_canvas import ImageCanvas

RECT_COLOUR = QColor(0, 220, 255)


class RectangleTool(QObject):
    drawn = Signal(object)  # (x0, y0, x1, y1) image pixels, x1/y1 exclusive, inside the image

    def __init__(self, canvas: ImageCanvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self._drag: tuple[float, float, float, float] | None = None

    @property
    def dragging(self) -> bool:
        return self._drag is not None

    def cancel(self) -> bool:
        had = self._drag is not None
        self._drag = None
        self.canvas.update()
        return had

    def _snapped(self) -> tuple[int, int, int, int] | None:
        image = self.canvas.image
        if self._drag is None or image is None:
            return None
        return snapped_rectangle(*self._drag, width=image.width, height=image.height)

    # -- the canvas's interaction protocol -----------------------------------------------------
    def mouse_press(self, event: QMouseEvent, x: float, y: float) -> bool:
        if self.canvas.tool is not Tool.RECTANGLE or self.canvas.image is None:
            return False
        if event.button() != Qt.MouseButton.LeftButton:
            return False  # the right button opens the context menu
        self._drag = (x, y, x, y)
        return True

    def mouse_move(self, event: QMouseEvent, x: float, y: float) -> bool:
        if self._drag is None:
            return False
        self._drag = (self._drag[0], self._drag[1], x, y)
        self.canvas.update()
        return True

    def mouse_release(self, event: QMouseEvent, x: float, y: float) -> bool:
        if self._drag is None or event.button() != Qt.MouseButton.LeftButton:
            return False
        self._drag = (self._drag[0], self._drag[1], x, y)
        box = self._snapped()
        self._drag = None
        self.canvas.update()
        if box is not None:
            self.drawn.emit(box)
        return True

    def mouse_double_click(self, event: QMouseEvent, x: float, y: float) -> bool:
        return False

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
