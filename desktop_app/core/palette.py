"""The one label-colour policy: which colour a label name gets, in the label set and on the canvas.

A name starts at a palette slot picked by a hash of the name (case and spacing ignored) and takes
the first colour from there that no other label uses (base colours first, then lighter shades).
The label set assigns a new label exactly this colour, and the canvas shows a label that is not
in the set yet (a detected phrase before it is accepted) in the colour the set would give it, so
accepting a phrase never changes its colour.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping

# Distinct on light and dark images and for the common colour-vision deficiencies first
# (Okabe-Ito), then Tableau-style hues; cycled with a lighter shade when exhausted.
DEFAULT_PALETTE: tuple[str, ...] = (
    "#e69f00",
    "#56b4e9",
    "#009e73",
    "#f0e442",
    "#0072b2",
    "#d55e00",
    "#cc79a7",
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#469990",
    "#9a6324",
    "#800000",
    "#808000",
    "#000075",
)
SHADES = 4  # the base colours, then three ever lighter rounds


def palette_color(index: int) -> str:
    """The ``index``-th palette colour ("#rrggbb"); lighter shades after the base colours."""
    base = DEFAULT_PALETTE[index % len(DEFAULT_PALETTE)]
    round_ = index // len(DEFAULT_PALETTE)
    if round_ == 0:
        return base
    t = min(0.25 * round_, 0.75)
    r, g, b = (int(round(c + (255 - c) * t)) for c in hex_to_rgb(base))
    return f"#{r:02x}{g:02x}{b:02x}"


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def name_slot(name: str) -> int:
    """The palette slot a name starts from: stable across runs, case and spacing ignored."""
    key = " ".join(name.split()).lower()
    return zlib.crc32(key.encode("utf-8")) % len(DEFAULT_PALETTE)


def new_label_color(name: str, *, taken: Collection[str] = ()) -> str:
    """The colour a label named ``name`` gets when it joins a set whose labels use ``taken``."""
    used = {c.lower() for c in taken}
    n = len(DEFAULT_PALETTE)
    start = name_slot(name)
    for k in range(n * SHADES):
        color = palette_color((start + k) % n + (k // n) * n)
        if color not in used:
            return color
    return palette_color(start)  # every colour in use: share the name's own


def label_color(name: str, assigned: Mapping[str, str]) -> str:
    """``name``'s colour given the label set's colours (``name -> "#rrggbb"``): its own if it is
    in the set, else the one the set would give it (:func:`new_label_color`)."""
    color = assigned.get(name)
    return color if color is not None else new_label_color(name, taken=assigned.values())
