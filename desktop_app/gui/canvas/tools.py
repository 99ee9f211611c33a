"""The canvas's tools (modes) and their keyboard shortcuts."""

from __future__ import annotations

from enum import Enum


class Tool(str, Enum):
    """What a left-drag / click on the canvas does."""

    POINT = "point"  # SAM points: left = positive, right or Shift+left = negative
    BOX = "box"  # SAM box: drag a box, then optionally add points
    POLYGON = "polygon"  # manual object: click vertices, Enter / double-click closes
    BRUSH = "brush"  # paint onto the selected object's mask ([ and ] change the size)
    ERASER = "eraser"  # erase from the selected object's mask
    SELECT = "select"  # click selects objects (Ctrl/Shift+click adds), drag pans
    RECTANGLE = "rectangle"  # manual rectangle object (detection datasets): drag its corners
    EXEMPLAR = "exemplar"  # SAM 3: drag a box around one example, every similar object comes back (Shift: not this)

    @property
    def shortcut(self) -> str:
        return TOOL_SHORTCUTS[self]

    @property
    def title(self) -> str:  # type: ignore[override]  # deliberately shadows str.title on this str-valued enum
        return TOOL_TITLES[self]


TOOL_SHORTCUTS: dict[Tool, str] = {
    Tool.POINT: "Q",
    Tool.BOX: "W",
    Tool.POLYGON: "P",
    Tool.BRUSH: "B",
    Tool.ERASER: "E",
    Tool.SELECT: "V",
    Tool.RECTANGLE: "R",
    Tool.EXEMPLAR: "X",  # offered only while the backend takes exemplars (SAM 3)
}
TOOL_TITLES: dict[Tool, str] = {
    Tool.POINT: "Points",
    Tool.BOX: "Box",
    Tool.POLYGON: "Polygon",
    Tool.BRUSH: "Brush",
    Tool.ERASER: "Eraser",
    Tool.SELECT: "Select / pan",
    Tool.RECTANGLE: "Rectangle",
    Tool.EXEMPLAR: "Exemplar",
}
