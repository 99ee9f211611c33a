"""What one paint of the canvas reads: a typed snapshot the canvas hands to the painter.

:mod:`desktop_app.gui.canvas.painting` draws a :class:`CanvasScene` and never reaches into the
canvas widget; the canvas builds a fresh scene for every paint event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF

from desktop_app.gui.canvas.tools import Tool
from inference.prompts import Box, Point

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.core.annotation.document import ImageDocument
    from desktop_app.gui.canvas.loading import LoadedImage
    from desktop_app.gui.canvas.overlays import OverlayCache, OverlayStyle
    from desktop_app.gui.canvas.view import ViewTransform


@dataclass(frozen=True, kw_only=True, eq=False)
class CandidateOverlay:
    """A mask to show as a candidate: ``focused`` is drawn strongest; ``label`` picks the colour."""

    mask: np.ndarray
    label: str | None = None
    focused: bool = True
    dimmed: bool = False  # a detection a person unchecked: shown faint, Enter skips it


@dataclass(frozen=True, kw_only=True)
class ViewOptions:
    """How object masks are drawn (the View controls): opacity 0..1 scales fill and outline,
    ``show_objects`` False hides every object, ``outline_only`` draws outlines without fill."""

    opacity: float = 1.0
    show_objects: bool = True
    outline_only: bool = False

    def style(self, style: OverlayStyle) -> OverlayStyle:
        from dataclasses import replace

        o = min(max(self.opacity, 0.0), 1.0)
        fill = 0 if self.outline_only else round(style.fill_alpha * o)
        edge = round(style.edge_alpha * (max(o, 0.35) if self.outline_only else o))
        width = max(style.edge_width, 2) if self.outline_only else style.edge_width
        return replace(style, fill_alpha=fill, edge_alpha=edge, edge_width=width)


@dataclass(frozen=True, kw_only=True, eq=False)
class CanvasScene:
    """Everything a paint draws, in image pixels unless noted (``cursor`` is in screen pixels)."""

    width: int  # the widget's size in screen pixels
    height: int
    view: ViewTransform
    overlays: OverlayCache  # the tile cache the paint fills
    image: LoadedImage | None = None
    document: ImageDocument | None = None
    selection: frozenset[str] = frozenset()
    candidates: tuple[CandidateOverlay, ...] = ()
    label_colours: Mapping[str, str] | None = None  # the label set's colours, name -> "#rrggbb"
    stroke: tuple[str, np.ndarray] | None = None  # (object id or "", working mask) during a stroke
    points: tuple[Point, ...] = ()
    box: Box | None = None
    drag_box: tuple[float, float, float, float] | None = None
    polygon: tuple[tuple[float, float], ...] = ()
    cursor: QPointF | None = None
    tool: Tool = Tool.POINT
    brush_screen_radius: float = 0.0
    view_options: ViewOptions = ViewOptions()

    def to_screen(self, x: float, y: float) -> QPointF:
        return QPointF(*self.view.to_screen(x, y))
