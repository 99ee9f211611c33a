"""Painting the canvas: the visible part of one pyramid level, overlay tiles, prompt, tool feedback."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainter, QPen

from desktop_app.gui.canvas.colours import CANDIDATE_COLOUR, SELECTION_COLOUR
from desktop_app.gui.canvas.overlays import OverlayStyle
from desktop_app.gui.canvas.tools import Tool

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.canvas.image_canvas import ImageCanvas

BACKGROUND = QColor(40, 42, 46)
POSITIVE = QColor(40, 220, 60)
NEGATIVE = QColor(235, 50, 50)
BOX_COLOUR = QColor(255, 200, 0)
TILE_BUDGET_S = 0.04  # at most this long colourising new overlay tiles per paint


def paint_canvas(canvas: "ImageCanvas", painter: QPainter) -> None:
    painter.fillRect(canvas.rect(), BACKGROUND)
    image = canvas.image
    if image is None:
        painter.setPen(QColor(170, 170, 170))
        painter.drawText(canvas.rect(), Qt.AlignmentFlag.AlignCenter, "Open an image to start (Ctrl+O)")
        return
    view = canvas.view
    w, h = canvas.width(), canvas.height()
    vx0, vy0, vx1, vy1 = view.visible_rect(w, h)
    x0, y0 = max(vx0, 0.0), max(vy0, 0.0)
    x1, y1 = min(vx1, float(image.width)), min(vy1, float(image.height))
    if x1 <= x0 or y1 <= y0:
        return
    pyramid = image.pyramid
    level = pyramid.level_for_scale(view.scale)
    f = 1 << level
    # copy just the visible, pixel-aligned part of the level: drawing a sub-rectangle of a huge
    # QImage would make Qt convert the whole image to its native format on every paint
    sx0, sy0 = int(x0 // f), int(y0 // f)
    level_image = pyramid.levels[level]
    sx1 = min(int(-(-x1 // f)), level_image.width())
    sy1 = min(int(-(-y1 // f)), level_image.height())
    part = level_image.copy(QRect(sx0, sy0, sx1 - sx0, sy1 - sy0))
    target = QRectF(QPointF(*view.to_screen(sx0 * f, sy0 * f)), QPointF(*view.to_screen(sx1 * f, sy1 * f)))
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, view.scale < 2.0)
    painter.drawImage(target, part)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)

    state = canvas.state
    visible = (x0, y0, x1, y1)
    overlays = canvas.overlays

    overlays.incomplete = False
    deadline = time.perf_counter() + TILE_BUDGET_S

    def draw(owner: str, mask, style: OverlayStyle) -> None:
        for tile in overlays.tiles(owner, mask, level=level, visible=visible, style=style, deadline=deadline):
            tx0, ty0, tx1, ty1 = tile.rect
            painter.drawImage(QRectF(QPointF(*view.to_screen(tx0, ty0)), QPointF(*view.to_screen(tx1, ty1))),
                              tile.image)

    document = state["document"]
    selection = set(state["selection"])
    stroke = canvas.stroke_mask
    if document is not None:
        for obj in document.objects:
            if obj.hidden:
                continue
            mask = obj.mask
            owner = obj.id
            if stroke is not None and stroke[0] == obj.id:
                mask, owner = stroke[1], "stroke"
            rgb = canvas.colour_for(obj.label)
            if obj.id in selection:
                style = OverlayStyle(rgb, fill_alpha=150, edge_alpha=255, edge_rgb=SELECTION_COLOUR, edge_width=2)
            else:
                style = OverlayStyle(rgb)
            draw(owner, mask, style)
    if stroke is not None and stroke[0] == "":
        draw("stroke", stroke[1], OverlayStyle(CANDIDATE_COLOUR, fill_alpha=140))
    for cand in state["candidates"]:
        rgb = canvas.colour_for(cand.label) if cand.label and not cand.focused else CANDIDATE_COLOUR
        style = (OverlayStyle(rgb, fill_alpha=130, edge_alpha=255, edge_rgb=(255, 255, 255), edge_width=2)
                 if cand.focused else OverlayStyle(rgb, fill_alpha=70, edge_alpha=200))
        draw(f"candidate:{id(cand.mask)}", cand.mask, style)

    if overlays.incomplete:
        QTimer.singleShot(0, canvas.update)  # the skipped tiles come in the next paint
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    _paint_prompt(canvas, painter, state)
    _paint_tool_feedback(canvas, painter, state)


def _paint_prompt(canvas: "ImageCanvas", painter: QPainter, state: dict) -> None:
    box = state["box"]
    if box is not None:
        pen = QPen(BOX_COLOUR, 2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(canvas.to_screen(box.x0, box.y0), canvas.to_screen(box.x1, box.y1)))
    for p in state["points"]:
        c = canvas.to_screen(p.x, p.y)
        colour = POSITIVE if p.positive else NEGATIVE
        painter.setPen(QPen(QColor(0, 0, 0), 1))
        painter.setBrush(QBrush(colour))
        painter.drawEllipse(c, 7, 7)
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(QPointF(c.x() - 4, c.y()), QPointF(c.x() + 4, c.y()))
        if p.positive:
            painter.drawLine(QPointF(c.x(), c.y() - 4), QPointF(c.x(), c.y() + 4))


def _paint_tool_feedback(canvas: "ImageCanvas", painter: QPainter, state: dict) -> None:
    drag = state["drag_box"]
    if drag is not None:
        painter.setPen(QPen(BOX_COLOUR, 1.5, Qt.PenStyle.DashLine))
        painter.setBrush(QColor(255, 200, 0, 40))
        painter.drawRect(QRectF(canvas.to_screen(drag[0], drag[1]), canvas.to_screen(drag[2], drag[3])).normalized())
    polygon = state["polygon"]
    cursor = state["cursor"]
    if polygon:
        pts = [canvas.to_screen(x, y) for x, y in polygon]
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        for a, b in zip(pts, pts[1:]):
            painter.drawLine(a, b)
        if cursor is not None:
            painter.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
            painter.drawLine(pts[-1], cursor)
        painter.setBrush(QColor(255, 255, 255))
        for p in pts:
            painter.drawEllipse(p, 3, 3)
    if cursor is not None and state["tool"] in (Tool.BRUSH, Tool.ERASER):
        r = canvas.brush_screen_radius()  # the brush size is in image pixels
        colour = QColor(255, 255, 255) if state["tool"] is Tool.BRUSH else QColor(255, 120, 120)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0), 3))
        painter.drawEllipse(cursor, r, r)
        painter.setPen(QPen(colour, 1.5))
        painter.drawEllipse(cursor, r, r)
