"""A canvas interaction that drags a box with the left button while its tool is on.

The Rectangle tool and the Exemplar tool are both this: press starts a box at the cursor, moving
stretches it (the canvas repaints), release ends it; Esc (:meth:`BoxDragTool.cancel`) drops it.
Subclasses say which tool they belong to and what a finished drag becomes (:meth:`_finished`);
see :class:`~desktop_app.gui.canvas.image_canvas.ImageCanvas` for the interaction protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QMouseEvent

from desktop_app.gui.canvas.tools import Tool

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.canvas.image_canvas import ImageCanvas

Corners = tuple[float, float, float, float]  # image pixels: where the drag started, where it is


class BoxDragTool(QObject):
    tool: ClassVar[Tool]  # the canvas tool that turns this interaction on

    def __init__(self, canvas: ImageCanvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self._drag: Corners | None = None

    @property
    def dragging(self) -> bool:
        return self._drag is not None

    def cancel(self) -> bool:
        """Drop the box being dragged; whether there was one."""
        had = self._drag is not None
        self._drag = None
        self.canvas.update()
        return had

    def _started(self, event: QMouseEvent) -> None:
        """A drag began (the press's modifiers are still in ``event``)."""

    def _finished(self, corners: Corners) -> None:
        """A drag ended at ``corners`` (the drag is already dropped and the canvas repainting)."""
        raise NotImplementedError

    # -- the canvas's interaction protocol -----------------------------------------------------
    def mouse_press(self, event: QMouseEvent, x: float, y: float) -> bool:
        if self.canvas.tool is not self.tool or self.canvas.image is None:
            return False
        if event.button() != Qt.MouseButton.LeftButton:
            return False  # the right button opens the context menu
        self._drag = (x, y, x, y)
        self._started(event)
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
        corners = (self._drag[0], self._drag[1], x, y)
        self._drag = None
        self.canvas.update()
        self._finished(corners)
        return True

    def mouse_double_click(self, event: QMouseEvent, x: float, y: float) -> bool:
        return False
