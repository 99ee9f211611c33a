"""ImageCanvas: a QWidget that paints the image, the objects, the candidate and the prompt.

The canvas draws and turns mouse/keyboard input into signals; it never runs a model and never
edits the document (the controller does, through undo commands). It reads the document it is
given at paint time. See docs/adr/0005-canvas-and-worker.md for why it paints itself.

Signals (all coordinates in image pixels):

* ``point_clicked(x, y, positive)`` — point tool, or a click in box mode
* ``box_drawn(Box)`` — box tool drag
* ``polygon_finished(list[(x, y)])`` — polygon tool, closed by Enter / double-click
* ``stroke_finished(object_id, mask, erase)`` — brush / eraser; ``object_id`` "" = a new object
* ``object_clicked(object_id | None, extend)`` — select tool click (``extend``: Ctrl/Shift held)
* ``exemplar_tool.drawn(Box, positive)`` — exemplar tool drag (SAM 3; Shift held: negative)
* ``cursor_moved(x, y)``, ``zoom_changed(scale)``, ``tool_changed(Tool)``, ``brush_size_changed(int)``
* ``view_options_changed(ViewOptions)`` — mask opacity, show/hide all, outline only
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QWidget

from desktop_app.core.annotation.document import ImageDocument
from desktop_app.core.annotation.labels import normalise_color
from desktop_app.gui.canvas.colours import label_colour
from desktop_app.gui.canvas.exemplar_tool import ExemplarTool
from desktop_app.gui.canvas.loading import LoadedImage
from desktop_app.gui.canvas.overlays import OverlayCache
from desktop_app.gui.canvas.rectangle_tool import RectangleTool
from desktop_app.gui.canvas.scene import CandidateOverlay, CanvasScene, ViewOptions
from desktop_app.gui.canvas.tools import Tool
from desktop_app.gui.canvas.vertex_editing import VertexEditor
from desktop_app.gui.canvas.view import ZOOM_STEP, ViewTransform
from inference.prompts import Box, Point

DEFAULT_BRUSH_SIZE = 16  # image pixels (diameter): zooming does not change what a stroke covers
CLICK_SLOP = 4  # screen pixels a press may move and still count as a click


@dataclass(frozen=True)
class CanvasActions:
    """QActions the shell puts into menus/toolbars (already added to the canvas)."""

    zoom_in: QAction
    zoom_out: QAction
    fit: QAction
    actual_size: QAction
    brush_bigger: QAction
    brush_smaller: QAction
    tools: dict[Tool, QAction]
    tool_group: QActionGroup

    def all(self) -> list[QAction]:
        return [
            self.zoom_in,
            self.zoom_out,
            self.fit,
            self.actual_size,
            self.brush_bigger,
            self.brush_smaller,
            *self.tools.values(),
        ]


class ImageCanvas(QWidget):
    point_clicked = Signal(float, float, bool)
    box_drawn = Signal(object)
    polygon_finished = Signal(object)
    stroke_finished = Signal(str, object, bool)
    object_clicked = Signal(object, bool)
    cursor_moved = Signal(float, float)
    zoom_changed = Signal(float)
    tool_changed = Signal(object)
    brush_size_changed = Signal(int)
    view_options_changed = Signal(object)

    # the canvas's QActions by role; shadows QWidget.actions() (the flat list) on purpose, the shell reads it
    actions: CanvasActions  # type: ignore[assignment]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(200, 150)
        self.view = ViewTransform()
        self.overlays = OverlayCache()
        self._image: LoadedImage | None = None
        self._document: ImageDocument | None = None
        self._selection: tuple[str, ...] = ()
        self._candidates: tuple[CandidateOverlay, ...] = ()
        self._points: tuple[Point, ...] = ()
        self._box: Box | None = None
        self._tool = Tool.POINT
        self._colours: dict[str, str] = {}  # the label set's colours, name -> "#rrggbb"
        self._brush_size = DEFAULT_BRUSH_SIZE
        self._fit_pending = True  # fit on every resize until the person zooms
        self._view_options = ViewOptions()
        # interaction state
        self._space = False
        self._pan_from: QPointF | None = None
        self._press: QPointF | None = None
        self._drag_box: tuple[float, float, float, float] | None = None
        self._polygon: list[tuple[float, float]] = []
        self._stroke: tuple[str, np.ndarray, bool, tuple[float, float]] | None = None
        self._cursor: QPointF | None = None
        self.actions = self._make_actions()
        # interactions get the mouse first while they are active and paint on top (issue 12)
        self.vertex_editor = VertexEditor(self)  # an object's outline with draggable vertices
        self.rectangle_tool = RectangleTool(self)  # Tool.RECTANGLE
        self.exemplar_tool = ExemplarTool(self)  # Tool.EXEMPLAR (SAM 3): draws the prompt's exemplars too
        self._interactions = (self.vertex_editor, self.rectangle_tool, self.exemplar_tool)

    # -- data in -------------------------------------------------------------------------------
    def set_image(self, image: LoadedImage | None, *, fit: bool = True) -> None:
        """Show ``image`` (``None`` clears); drops the prompt, candidates and tool state."""
        self._image = image
        self._candidates, self._points, self._box = (), (), None
        self._polygon, self._stroke, self._drag_box = [], None, None
        self.vertex_editor.cancel()
        self.rectangle_tool.cancel()
        self.exemplar_tool.cancel()
        self.exemplar_tool.set_exemplars(())
        self.overlays.clear()
        self._fit_pending = fit or self._fit_pending  # fit=False keeps the view (and whether it fits)
        if fit:
            self.fit_to_window()
        self.update()

    @property
    def image(self) -> LoadedImage | None:
        return self._image

    def set_document(self, document: ImageDocument | None) -> None:
        """The document whose objects are drawn (read at paint time)."""
        self._document = document
        self.vertex_editor.cancel()
        self.update()

    def objects_changed(self) -> None:
        """Call after the document changed: repaints (tiles of unchanged masks are reused)."""
        self.vertex_editor.document_changed()
        self.update()

    def set_selection(self, object_ids: Sequence[str]) -> None:
        self._selection = tuple(object_ids)
        self.update()

    def set_candidates(self, candidates: Sequence[CandidateOverlay]) -> None:
        """The live candidate mask(s); an empty sequence hides them."""
        for old in self._candidates:
            if not any(c.mask is old.mask for c in candidates):
                self.overlays.invalidate(f"candidate:{id(old.mask)}")
        self._candidates = tuple(candidates)
        self.update()

    def set_prompt(self, *, points: Sequence[Point] = (), box: Box | None = None) -> None:
        """The prompt geometry to draw (green + positive, red - negative, the box dashed)."""
        self._points, self._box = tuple(points), box
        self.update()

    def set_label_colours(self, colours: Mapping[str, str | tuple[int, int, int]]) -> None:
        """The label set's colours (name -> "#rrggbb" or RGB); a label not in the set is drawn in
        the colour the set will give it (:mod:`desktop_app.core.palette`)."""
        self._colours = {name: normalise_color(colour) for name, colour in colours.items()}
        self.update()

    def colour_for(self, label: str) -> tuple[int, int, int]:
        return label_colour(label, self._colours)

    @property
    def view_options(self) -> ViewOptions:
        return self._view_options

    def set_view_options(self, options: ViewOptions) -> None:
        """Mask opacity, show/hide all, outline only: the old tiles are dropped, all redrawn."""
        if options == self._view_options:
            return
        self._view_options = options
        self.overlays.clear()
        self.view_options_changed.emit(options)
        self.update()

    # -- tools ---------------------------------------------------------------------------------
    @property
    def tool(self) -> Tool:
        return self._tool

    def set_tool(self, tool: Tool) -> None:
        tool = Tool(tool)
        if tool is not Tool.POLYGON:
            self._polygon = []
        if tool is not self._tool:
            self.vertex_editor.commit()  # another tool: the vertex edit so far is applied
            self.rectangle_tool.cancel()
            self.exemplar_tool.cancel()
        self._tool = tool
        self.actions.tools[tool].setChecked(True)
        self._update_cursor()
        self.tool_changed.emit(tool)
        self.update()

    @property
    def brush_size(self) -> int:
        """The brush/eraser diameter in IMAGE pixels."""
        return self._brush_size

    def brush_screen_radius(self) -> float:
        """The brush circle's radius on screen at the current zoom (what the cursor shows)."""
        return self._brush_size / 2 * self.view.scale

    def set_brush_size(self, size: int) -> None:
        self._brush_size = int(min(max(size, 1), 500))
        self.brush_size_changed.emit(self._brush_size)
        self.update()

    @property
    def polygon_in_progress(self) -> bool:
        return bool(self._polygon)

    def finish_polygon(self) -> bool:
        """Close the polygon being drawn (>= 3 vertices): emits ``polygon_finished``."""
        if len(self._polygon) < 3:
            return False
        vertices, self._polygon = list(self._polygon), []
        self.polygon_finished.emit(vertices)
        self.update()
        return True

    def remove_last_vertex(self) -> bool:
        """Backspace while drawing a polygon (Delete / Backspace on a vertex while editing vertices)."""
        if self.vertex_editor.delete_hovered():
            return True
        if not self._polygon:
            return False
        self._polygon.pop()
        self.update()
        return True

    def commit_interaction(self) -> bool:
        """Enter while editing vertices: apply the edited outline (``False`` when not editing)."""
        return self.vertex_editor.commit()

    def cancel_polygon(self) -> bool:
        """Esc: drop the polygon being drawn, the rectangle being dragged, or the vertex edit."""
        if self.vertex_editor.cancel() or self.rectangle_tool.cancel() or self.exemplar_tool.cancel():
            return True
        had = bool(self._polygon)
        self._polygon = []
        self.update()
        return had

    # -- zoom ----------------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        return self.view.scale

    def fit_to_window(self) -> None:
        if self._image is not None:
            self.view.fit(
                image_w=self._image.width, image_h=self._image.height, view_w=self.width(), view_h=self.height()
            )
            self._fit_pending = True  # keeps fitting when the window is resized, until a zoom
            self.zoom_changed.emit(self.view.scale)
        self.update()

    def set_zoom(self, scale: float, *, anchor: tuple[float, float] | None = None) -> None:
        """Zoom to ``scale`` screen px per image px about ``anchor`` (default: the centre)."""
        self._fit_pending = False
        self.view.zoom_to(scale, anchor=anchor or (self.width() / 2, self.height() / 2))
        self._clamp_view()
        self.zoom_changed.emit(self.view.scale)
        self.update()

    def zoom_in(self) -> None:
        self.set_zoom(self.view.scale * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.view.scale / ZOOM_STEP)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def pan_by(self, dx: float, dy: float) -> None:
        self.view.pan(dx, dy)
        self._clamp_view()
        self.update()

    def to_image(self, pos: QPointF) -> tuple[float, float]:
        return self.view.to_image(pos.x(), pos.y())

    def to_screen(self, x: float, y: float) -> QPointF:
        return QPointF(*self.view.to_screen(x, y))

    def _clamp_view(self) -> None:
        if self._image is not None:
            self.view.keep_visible(
                image_w=self._image.width, image_h=self._image.height, view_w=self.width(), view_h=self.height()
            )

    def _make_actions(self) -> CanvasActions:
        def action(text: str, keys: Sequence[str], slot: Callable[[], None]) -> QAction:
            act = QAction(text, self)
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        group = QActionGroup(self)
        group.setExclusive(True)
        tools: dict[Tool, QAction] = {}
        for tool in Tool:

            def select(_checked: bool = False, t: Tool = tool) -> None:
                self.set_tool(t)

            act = action(tool.title, [tool.shortcut], select)
            act.setCheckable(True)
            act.setChecked(tool is self._tool)
            group.addAction(act)
            tools[tool] = act
        return CanvasActions(
            zoom_in=action("Zoom in", ["Ctrl++", "Ctrl+="], self.zoom_in),
            zoom_out=action("Zoom out", ["Ctrl+-"], self.zoom_out),
            fit=action("Fit to window", ["Ctrl+F"], self.fit_to_window),
            actual_size=action("Actual size (100%)", ["Ctrl+0"], self.actual_size),
            brush_bigger=action("Bigger brush", ["]"], lambda: self.set_brush_size(round(self._brush_size * 1.25) + 1)),
            brush_smaller=action("Smaller brush", ["["], lambda: self.set_brush_size(round(self._brush_size / 1.25))),
            tools=tools,
            tool_group=group,
        )

    # -- painting ------------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._fit_pending:
            self.fit_to_window()
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802
        from desktop_app.gui.canvas.painting import paint_canvas

        painter = QPainter(self)
        try:
            incomplete = paint_canvas(self.scene(), painter)
            for interaction in self._interactions:
                interaction.paint(painter)
        finally:
            painter.end()
        if incomplete:
            QTimer.singleShot(0, self.update)  # the skipped overlay tiles come in the next paint

    def scene(self) -> CanvasScene:
        """A snapshot of what a paint draws (see :mod:`desktop_app.gui.canvas.painting`)."""
        return CanvasScene(
            width=self.width(),
            height=self.height(),
            view=self.view,
            overlays=self.overlays,
            image=self._image,
            document=self._document,
            selection=frozenset(self._selection),
            candidates=self._candidates,
            label_colours=self._colours,
            stroke=self.stroke_mask or self.vertex_editor.preview(),
            points=self._points,
            box=self._box,
            drag_box=self._drag_box,
            polygon=tuple(self._polygon),
            cursor=self._cursor,
            tool=self._tool,
            brush_screen_radius=self.brush_screen_radius(),
            view_options=self._view_options,
        )

    # -- mouse ---------------------------------------------------------------------------------
    def _inside(self, x: float, y: float) -> bool:
        return self._image is not None and 0 <= x < self._image.width and 0 <= y < self._image.height

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        button = event.button()
        self._press = pos
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if self._image is None:
            return
        x, y = self.to_image(pos)
        if any(i.mouse_press(event, x, y) for i in self._interactions):
            self.update()
            return
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        tool = self._tool
        if tool is Tool.POINT and self._inside(x, y):
            if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
                self.point_clicked.emit(x, y, button == Qt.MouseButton.LeftButton and not shift)
        elif tool is Tool.BOX:
            if button == Qt.MouseButton.LeftButton and not shift:
                self._drag_box = (x, y, x, y)
            elif self._inside(x, y) and button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
                self.point_clicked.emit(x, y, False)
        elif tool is Tool.POLYGON and button == Qt.MouseButton.LeftButton:
            self._polygon.append((min(max(x, 0.0), self._image.width), min(max(y, 0.0), self._image.height)))
        elif tool in (Tool.BRUSH, Tool.ERASER) and button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            erase = (tool is Tool.ERASER) != (button == Qt.MouseButton.RightButton)
            self._start_stroke(x, y, erase=erase)
        elif tool is Tool.SELECT and button == Qt.MouseButton.LeftButton:
            self._pan_from = pos  # a drag pans; a click (release without moving) selects
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        self._cursor = pos
        x, y = self.to_image(pos)
        if self._image is not None:
            self.cursor_moved.emit(x, y)
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self.pan_by(delta.x(), delta.y())
            return
        if any(i.mouse_move(event, x, y) for i in self._interactions):
            return
        if self._drag_box is not None:
            self._drag_box = (self._drag_box[0], self._drag_box[1], x, y)
        elif self._stroke is not None:
            self._continue_stroke(x, y)
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        moved = self._press is not None and (pos - self._press).manhattanLength() > CLICK_SLOP
        if self._pan_from is not None:
            self._pan_from = None
            self._update_cursor()
            if (
                self._tool is Tool.SELECT
                and not moved
                and not self._space
                and event.button() == Qt.MouseButton.LeftButton
            ):
                x, y = self.to_image(pos)
                extend = bool(
                    event.modifiers() & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier)
                )
                self.object_clicked.emit(self.object_at(x, y), extend)
            return
        if any(i.mouse_release(event, *self.to_image(pos)) for i in self._interactions):
            self._press = None
            self.update()
            return
        if self._drag_box is not None and event.button() == Qt.MouseButton.LeftButton:
            ax, ay, _, _ = self._drag_box
            bx, by = self.to_image(pos)
            self._drag_box = None
            if moved and self._image is not None:
                box = Box.from_corners(ax, ay, bx, by).clipped(width=self._image.width, height=self._image.height)
                if box.x1 - box.x0 >= 1 and box.y1 - box.y0 >= 1:
                    self.box_drawn.emit(box)
            elif self._inside(bx, by):
                self.point_clicked.emit(bx, by, True)
        elif self._stroke is not None:
            self._finish_stroke()
        self._press = None
        self.update()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if any(i.mouse_double_click(event, *self.to_image(event.position())) for i in self._interactions):
            return
        if self._tool is Tool.POLYGON and event.button() == Qt.MouseButton.LeftButton:
            self.finish_polygon()
            return
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        delta = event.angleDelta()
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = delta.y() / 120.0
            pos = event.position()
            self.set_zoom(self.view.scale * (ZOOM_STEP**steps), anchor=(pos.x(), pos.y()))
        elif event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.pan_by(delta.y() / 2.0, 0.0)
        else:
            self.pan_by(delta.x() / 2.0, delta.y() / 2.0)
        event.accept()

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._cursor = None
        self.update()
        super().leaveEvent(event)

    # -- keys ----------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key == Qt.Key.Key_Backspace and self._polygon:
            self._polygon.pop()
            self.update()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._pan_from = None
            self._update_cursor()
            return
        super().keyReleaseEvent(event)

    def _update_cursor(self) -> None:
        shape = {
            Tool.SELECT: Qt.CursorShape.ArrowCursor,
            Tool.BRUSH: Qt.CursorShape.BlankCursor,
            Tool.ERASER: Qt.CursorShape.BlankCursor,
        }.get(self._tool, Qt.CursorShape.CrossCursor)
        self.setCursor(shape)

    # -- hit testing ---------------------------------------------------------------------------
    def object_at(self, x: float, y: float) -> str | None:
        """The id of the topmost visible object covering image pixel (x, y)."""
        if self._document is None or not self._inside(x, y):
            return None
        ix, iy = int(x), int(y)
        for obj in reversed(self._document.objects):
            if not obj.hidden and obj.mask[iy, ix]:
                return obj.id
        return None

    # -- brush ---------------------------------------------------------------------------------
    def _brush_radius_px(self) -> int:
        """Half the brush diameter in image pixels, rounded up (for invalidation rectangles)."""
        return (self._brush_size + 1) // 2

    def _start_stroke(self, x: float, y: float, *, erase: bool) -> None:
        if self._image is None or self._document is None:
            return
        target = self._selection[0] if self._selection else ""
        if target:
            try:
                base = self._document.get(target).mask.copy()
            except KeyError:
                return
        elif erase:
            return  # nothing to erase from
        else:
            base = np.zeros((self._image.height, self._image.width), dtype=bool)
        self._stroke = (target, base, erase, (x, y))
        self._paint_segment(x, y, x, y)

    def _continue_stroke(self, x: float, y: float) -> None:
        assert self._stroke is not None
        _, _, _, (px, py) = self._stroke
        self._paint_segment(px, py, x, y)

    def _paint_segment(self, ax: float, ay: float, bx: float, by: float) -> None:
        assert self._stroke is not None
        target, mask, erase, _ = self._stroke
        r = self._brush_radius_px()
        canvas = mask.view(np.uint8)
        cv2.line(
            canvas,
            (int(round(ax)), int(round(ay))),
            (int(round(bx)), int(round(by))),
            0 if erase else 1,
            thickness=self._brush_size,
            lineType=cv2.LINE_8,
        )
        self._stroke = (target, mask, erase, (bx, by))
        rect = (int(min(ax, bx)) - r - 1, int(min(ay, by)) - r - 1, int(max(ax, bx)) + r + 2, int(max(ay, by)) + r + 2)
        self.overlays.invalidate("stroke", mask, rect)

    def _finish_stroke(self) -> None:
        assert self._stroke is not None
        target, mask, erase, _ = self._stroke
        self._stroke = None
        self.overlays.invalidate("stroke")
        self.stroke_finished.emit(target, mask, erase)

    @property
    def stroke_mask(self) -> tuple[str, np.ndarray] | None:
        """(object id, working mask) while a brush/eraser stroke is under way."""
        return None if self._stroke is None else (self._stroke[0], self._stroke[1])
