"""Label colours: a fixed, distinguishable palette; a label keeps its colour across sessions."""

from __future__ import annotations

import zlib

# Glasbey-like qualitative palette (RGB), readable on photos with a semi-transparent fill.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
)
CANDIDATE_COLOUR = (30, 144, 255)  # the live candidate mask: dodger blue
SELECTION_COLOUR = (255, 255, 255)


def label_colour(label: str, overrides: dict[str, tuple[int, int, int]] | None = None) -> tuple[int, int, int]:
    """The colour of ``label``: an explicit override, else a stable pick from :data:`PALETTE`."""
    if overrides and label in overrides:
        return overrides[label]
    return PALETTE[zlib.crc32(label.strip().lower().encode("utf-8")) % len(PALETTE)]
