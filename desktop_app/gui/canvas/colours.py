"""Canvas colours. A label's colour is :mod:`desktop_app.core.palette`'s (the one policy, shared
with the label set); the candidate and selection colours are the canvas's own."""

from __future__ import annotations

from collections.abc import Mapping

from desktop_app.core.palette import hex_to_rgb, label_color

CANDIDATE_COLOUR = (30, 144, 255)  # the live candidate mask: dodger blue
SELECTION_COLOUR = (255, 255, 255)


def label_colour(label: str, assigned: Mapping[str, str] | None = None) -> tuple[int, int, int]:
    """The RGB colour of ``label`` given the label set's colours (``name -> "#rrggbb"``): its
    own when it is in the set, else the one the set will give it when it is added."""
    return hex_to_rgb(label_color(label, assigned or {}))
