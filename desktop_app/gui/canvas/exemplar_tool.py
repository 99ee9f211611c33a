"""The Exemplar tool (key X, SAM 3 only): drag a box around ONE instance and every similar object
in the image comes back as candidates; Shift+drag marks a counter-example ("not like this").

One of the canvas's *interactions* (see :class:`ImageCanvas`): it gets the mouse events first
while the Exemplar tool is on, draws the box being dragged, and draws the exemplars of the
current prompt (green: positive, red dashed: negative) for as long as the controller keeps them
(until the candidates are accepted or discarded), whichever tool is on. It emits
``drawn(Box, positive)``; the controller adds the exemplar to the prompt and re-runs it (it never
runs a model or edits the document).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen

from desktop_app.gui.canvas.box_drag import BoxDragTool, Corners
from desktop_app.gui.canvas.tools import Tool
from inference.prompts import Box, Exemplar

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.canvas.image_canvas import ImageCanvas

POSITIVE_COLOUR = QColor(40, 220, 60)  # the point prompt's positive green
NEGATIVE_COLOUR = QColor(235, 50, 50)  # and its negative red
MIN_SIDE = 1.0  # image pixels: a smaller box is a slip, not an exemplar


class ExemplarTool(BoxDragTool):
    tool = Tool.EXEMPLAR
    drawn = Signal(object, bool)  # Box (image pixels, clipped to the image), positive

    def __init__(self, canvas: ImageCanvas) -> None:
        super().__init__(canvas)
        self._drag_positive = True
        self._exemplars: tuple[Exemplar, ...] = ()

    # -- state ---------------------------------------------------------------------------------
    @property
    def exemplars(self) -> tuple[Exemplar, ...]:
        """The exemplars drawn on the canvas (the controller's current prompt)."""
        return self._exemplars

    def set_exemplars(self, exemplars: Sequence[Exemplar]) -> None:
        self._exemplars = tuple(exemplars)
        self.canvas.update()

    def cancel(self) -> bool:
        """Drop the box being dragged (the exemplars already given stay: Esc again drops them)."""
        return super().cancel()

    def _box(self, corners: Corners | None = None) -> Box | None:
        image = self.canvas.image
        corners = corners or self._drag
        if corners is None or image is None:
            return None
        return Box.from_corners(*corners).clipped(width=image.width, height=image.height)

    def _started(self, event: QMouseEvent) -> None:
        self._drag_positive = not (event.modifiers() & Qt.KeyboardModifier.ShiftModifier)

    def _finished(self, corners: Corners) -> None:
        box = self._box(corners)
        if box is not None and box.x1 - box.x0 >= MIN_SIDE and box.y1 - box.y0 >= MIN_SIDE:
            self.drawn.emit(box, self._drag_positive)

    # -- the canvas's interaction protocol (BoxDragTool) ---------------------------------------
    def paint(self, painter: QPainter) -> None:
        if not self._exemplars and self._drag is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for ex in self._exemplars:
            self._draw(painter, ex.box, positive=ex.positive, width=2.5)
        box = self._box()
        if box is not None:
            self._draw(painter, box, positive=self._drag_positive, width=1.5, fill=True)
        painter.restore()

    def _draw(self, painter: QPainter, box: Box, *, positive: bool, width: float, fill: bool = False) -> None:
        colour = POSITIVE_COLOUR if positive else NEGATIVE_COLOUR
        rect = QRectF(self.canvas.to_screen(box.x0, box.y0), self.canvas.to_screen(box.x1, box.y1)).normalized()
        painter.setPen(QPen(QColor(0, 0, 0, 160), width + 2))  # a dark halo: visible on any image
        painter.drawRect(rect)
        painter.setPen(QPen(colour, width, Qt.PenStyle.SolidLine if positive else Qt.PenStyle.DashLine))
        if fill:
            painter.setBrush(QColor(colour.red(), colour.green(), colour.blue(), 40))
        painter.drawRect(rect)
        # a badge on the corner, like a point prompt's: + for an example, - for a counter-example
        c = rect.topLeft()
        painter.setPen(QPen(QColor(0, 0, 0), 1))
        painter.setBrush(colour)
        painter.drawEllipse(c, 7, 7)
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(QPointF(c.x() - 4, c.y()), QPointF(c.x() + 4, c.y()))
        if positive:
            painter.drawLine(QPointF(c.x(), c.y() - 4), QPointF(c.x(), c.y() + 4))
        painter.setBrush(Qt.BrushStyle.NoBrush)
