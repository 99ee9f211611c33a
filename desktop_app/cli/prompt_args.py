"""The one parser of prompt geometry typed on a command line: ``x,y[,1|0]`` points,
``x0,y0,x1,y1`` boxes and ``x0,y0,x1,y1[,1|0]`` exemplar boxes, in image pixels.

Each ``parse_*`` raises :class:`PromptArgError` naming what was typed (``name``: ``point`` for
an argparse type, ``--point`` for a command that refuses after parsing); the commands turn it
into their own error (``argparse.ArgumentTypeError``, a refusal with an exit code).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from inference.prompts import Box, Exemplar, Point

POINT_SHAPE = "x,y or x,y,1 (positive) or x,y,0 (negative), in pixels"
BOX_SHAPE = "x0,y0,x1,y1 in pixels"
EXEMPLAR_SHAPE = "x0,y0,x1,y1 (positive) or x0,y0,x1,y1,0 (negative), in pixels"


class PromptArgError(ValueError):
    """A malformed value; ``shape`` is set (what was expected) when it is not the right numbers."""

    def __init__(self, message: str, *, name: str, text: str, shape: str | None = None) -> None:
        super().__init__(message)
        self.name, self.text, self.shape = name, text, shape


def numbers(text: str, *, name: str, counts: tuple[int, ...], shape: str) -> list[float]:
    """``text``'s comma-separated finite numbers (spaces ignored), as many as one of ``counts``."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) not in counts or not all(math.isfinite(v) for v in values):
        raise PromptArgError(f"{name} {text!r}: expected {shape}", name=name, text=text, shape=shape)
    return values


def _polarity(values: list[float], index: int, *, name: str, text: str, which: str) -> bool:
    """Positive unless the optional value at ``index`` is 0 (it must be 1 or 0)."""
    if len(values) <= index:
        return True
    if values[index] not in (0.0, 1.0):
        raise PromptArgError(
            f"{name} {text!r}: the {which} value must be 1 (positive) or 0 (negative)", name=name, text=text
        )
    return values[index] == 1.0


def _corners(values: list[float], *, name: str, text: str) -> Box:
    from inference.prompts import Box

    x0, y0, x1, y1 = values[:4]
    if x0 == x1 or y0 == y1:
        raise PromptArgError(f"{name} {text!r} has no area", name=name, text=text)
    return Box.from_corners(x0, y0, x1, y1)


def parse_point(text: str, *, name: str = "point") -> Point:
    """``x,y`` (positive), ``x,y,1`` or ``x,y,0`` (negative)."""
    from inference.prompts import Point

    values = numbers(text, name=name, counts=(2, 3), shape=POINT_SHAPE)
    positive = _polarity(values, 2, name=name, text=text, which="third")
    return Point(x=values[0], y=values[1], positive=positive)


def parse_box(text: str, *, name: str = "box") -> Box:
    """``x0,y0,x1,y1`` (any two opposite corners), with an area."""
    return _corners(numbers(text, name=name, counts=(4,), shape=BOX_SHAPE), name=name, text=text)


def parse_exemplar(text: str, *, name: str = "exemplar") -> Exemplar:
    """``x0,y0,x1,y1[,1|0]``: an example box for SAM 3 (positive unless the fifth value is 0)."""
    from inference.prompts import Exemplar

    values = numbers(text, name=name, counts=(4, 5), shape=EXEMPLAR_SHAPE)
    positive = _polarity(values, 4, name=name, text=text, which="fifth")
    return Exemplar(box=_corners(values, name=name, text=text), positive=positive)
