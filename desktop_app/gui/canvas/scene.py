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
    from desktop_app.gui.canvas.overlays import OverlayCache
    from desktop_app.gui.canvas.view import ViewTransform


@dataclass(frozen=True, kw_only=True, eq=False)
class CandidateOverlay:
    """A mask to show as a candidate: ``focused`` is drawn strongest; ``label`` picks the colour."""

    mask: np.ndarray
    label: str | None = None
    focused: bool = True


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

    def to_screen(self, x: float, y: float) -> QPointF:
        return QPointF(*self.view.to_screen(x, y))
