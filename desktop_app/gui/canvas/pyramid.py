"""A display pyramid: the image at full, 1/2, 1/4, ... resolution as QImages.

The canvas paints from the coarsest level that still has at least one image pixel per screen
pixel, and only the visible part of it, so an 8000x6000 image pans as smoothly as a small one.
Built off the GUI thread (QImage, unlike QPixmap, may be made in any thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from PySide6.QtGui import QImage

MIN_LEVEL_SIDE = 1024  # stop halving once the longer side is at most this


@dataclass(frozen=True, kw_only=True, eq=False)
class DisplayPyramid:
    """``levels[i]`` is the image downscaled by ``2**i``; ``arrays[i]`` keeps its pixels alive."""

    width: int
    height: int
    levels: tuple[QImage, ...] = field(repr=False)
    arrays: tuple[np.ndarray, ...] = field(repr=False)

    def level_for_scale(self, scale: float) -> int:
        """The coarsest level whose resolution is still >= ``scale`` (screen px per image px)."""
        if scale <= 0:
            return len(self.levels) - 1
        level = int(math.floor(-math.log2(scale))) if scale < 1 else 0
        return max(0, min(level, len(self.levels) - 1))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays[1:])  # level 0 shares the decoded image


def _qimage(rgb: np.ndarray) -> QImage:
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)


def build_pyramid(rgb: np.ndarray, *, min_side: int = MIN_LEVEL_SIDE) -> DisplayPyramid:
    """Halve ``rgb`` (H, W, 3 uint8) with area averaging until the longer side <= ``min_side``."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    base = np.ascontiguousarray(rgb)
    arrays = [base]
    current = base
    while max(current.shape[:2]) > min_side and min(current.shape[:2]) >= 2:
        h, w = current.shape[:2]
        current = cv2.resize(current, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        arrays.append(np.ascontiguousarray(current))
    return DisplayPyramid(
        width=int(base.shape[1]),
        height=int(base.shape[0]),
        levels=tuple(_qimage(a) for a in arrays),
        arrays=tuple(arrays),
    )
