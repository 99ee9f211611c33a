"""Painting the canvas: the visible part of one pyramid level, overlay tiles, prompt, tool feedback.

Reads only the :class:`~desktop_app.gui.canvas.scene.CanvasScene` it is given, never the widget.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen

from desktop_app.gui.canvas.colours import CANDIDATE_COLOUR, SELECTION_COLOUR, label_colour
from desktop_app.gui.canvas.overlays import OverlayStyle
from desktop_app.gui.canvas.scene import CanvasScene
from desktop_app.gui.canvas.tools import Tool

BACKGROUND = QColor(40, 42, 46)
POSITIVE = QColor(40, 220, 60)
NEGATIVE = QColor(235, 50, 50)
BOX_COLOUR = QColor(255, 200, 0)
TILE_BUDGET_S = 0.04  # at most this long colourising new overlay tiles per paint


def paint_canvas(scene: CanvasScene, painter: QPainter) -> bool:
    """Draw ``scene``; ``True`` when overlay tiles were skipped to stay within the time budget
    (the caller paints again soon and they come in then)."""
    rect = QRect(0, 0, scene.width, scene.height)
    painter.fillRect(rect, BACKGROUND)
    image = scene.image
    if image is None:
        painter.setPen(QColor(170, 170, 170))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "Open an image to start (Ctrl+O)")
        return False
    view = scene.view
    w, h = scene.width, scene.height
    vx0, vy0, vx1, vy1 = view.visible_rect(w, h)
    x0, y0 = max(vx0, 0.0), max(vy0, 0.0)
    x1, y1 = min(vx1, float(image.width)), min(vy1, float(image.height))
    if x1 <= x0 or y1 <= y0:
        return False
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

    visible = (x0, y0, x1, y1)
    overlays = scene.overlays

    overlays.incomplete = False
    deadline = time.perf_counter() + TILE_BUDGET_S

    def draw(owner: str, mask, style: OverlayStyle) -> None:
        for tile in overlays.tiles(owner, mask, level=level, visible=visible, style=style, deadline=deadline):
            tx0, ty0, tx1, ty1 = tile.rect
            painter.drawImage(
                QRectF(QPointF(*view.to_screen(tx0, ty0)), QPointF(*view.to_screen(tx1, ty1))), tile.image
            )

    document = scene.document
    selection = scene.selection
    stroke = scene.stroke
    options = scene.view_options
    if document is not None:
        for obj in document.objects:
            if obj.hidden or not options.show_objects:
                continue
            mask = obj.mask
            owner = obj.id
            if stroke is not None and stroke[0] == obj.id:
                mask, owner = stroke[1], "stroke"
            rgb = label_colour(obj.label, scene.label_colours)
            if obj.id in selection:
                style = OverlayStyle(rgb, fill_alpha=150, edge_alpha=255, edge_rgb=SELECTION_COLOUR, edge_width=2)
            else:
                style = OverlayStyle(rgb)
            draw(owner, mask, options.style(style))
    if stroke is not None and stroke[0] == "":
        draw("stroke", stroke[1], OverlayStyle(CANDIDATE_COLOUR, fill_alpha=140))
    for cand in scene.candidates:
        rgb = label_colour(cand.label, scene.label_colours) if cand.label and not cand.focused else CANDIDATE_COLOUR
        style = (
            OverlayStyle(rgb, fill_alpha=130, edge_alpha=255, edge_rgb=(255, 255, 255), edge_width=2)
            if cand.focused
            else OverlayStyle(rgb, fill_alpha=70, edge_alpha=200)
        )
        if cand.dimmed:  # unchecked in the candidate list: a faint grey outline, Enter skips it
            style = OverlayStyle(
                (150, 150, 150),
                fill_alpha=18,
                edge_alpha=150 if cand.focused else 90,
                edge_rgb=(255, 255, 255) if cand.focused else None,
                edge_width=style.edge_width,
            )
        draw(f"candidate:{id(cand.mask)}", cand.mask, options.style(style) if options.outline_only else style)

    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    _paint_prompt(scene, painter)
    _paint_tool_feedback(scene, painter)
    return overlays.incomplete


def _paint_prompt(scene: CanvasScene, painter: QPainter) -> None:
    box = scene.box
    if box is not None:
        pen = QPen(BOX_COLOUR, 2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(scene.to_screen(box.x0, box.y0), scene.to_screen(box.x1, box.y1)))
    for p in scene.points:
        c = scene.to_screen(p.x, p.y)
        colour = POSITIVE if p.positive else NEGATIVE
        painter.setPen(QPen(QColor(0, 0, 0), 1))
        painter.setBrush(QBrush(colour))
        painter.drawEllipse(c, 7, 7)
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(QPointF(c.x() - 4, c.y()), QPointF(c.x() + 4, c.y()))
        if p.positive:
            painter.drawLine(QPointF(c.x(), c.y() - 4), QPointF(c.x(), c.y() + 4))


def _paint_tool_feedback(scene: CanvasScene, painter: QPainter) -> None:
    drag = scene.drag_box
    if drag is not None:
        painter.setPen(QPen(BOX_COLOUR, 1.5, Qt.PenStyle.DashLine))
        painter.setBrush(QColor(255, 200, 0, 40))
        painter.drawRect(QRectF(scene.to_screen(drag[0], drag[1]), scene.to_screen(drag[2], drag[3])).normalized())
    polygon = scene.polygon
    cursor = scene.cursor
    if polygon:
        pts = [scene.to_screen(x, y) for x, y in polygon]
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        for a, b in zip(pts, pts[1:]):
            painter.drawLine(a, b)
        if cursor is not None:
            painter.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
            painter.drawLine(pts[-1], cursor)
        painter.setBrush(QColor(255, 255, 255))
        for p in pts:
            painter.drawEllipse(p, 3, 3)
    if cursor is not None and scene.tool in (Tool.BRUSH, Tool.ERASER):
        r = scene.brush_screen_radius  # the brush size is in image pixels
        colour = QColor(255, 255, 255) if scene.tool is Tool.BRUSH else QColor(255, 120, 120)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0), 3))
        painter.drawEllipse(cursor, r, r)
        painter.setPen(QPen(colour, 1.5))
        painter.drawEllipse(cursor, r, r)
