"""Coloured mask overlays rendered in tiles, per object and per display level, and cached.

Masks stay at full resolution in the document. To draw one, only the tiles that are visible at
the current zoom are colourised, at the resolution of the display level in use (a 1/8 level
touches 1/64 of the pixels), and kept in a byte-bounded LRU keyed by (object, mask version,
level, tile, style). Panning reuses tiles; editing a mask invalidates only the touched tiles.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from PySide6.QtGui import QImage

from inference.lru import ByteBoundedLRU
from inference.masks import mask_bbox

TILE = 256  # tile side in level pixels
DEFAULT_OVERLAY_CACHE_BYTES = 192 * 1024 * 1024


@dataclass(frozen=True)
class OverlayStyle:
    """Fill and outline colours of one overlay (RGB + alpha 0..255)."""

    rgb: tuple[int, int, int]
    fill_alpha: int = 110
    edge_alpha: int = 230
    edge_rgb: tuple[int, int, int] | None = None  # None: same as ``rgb``
    edge_width: int = 1


@dataclass(frozen=True)
class Tile:
    """One tile: its image and the image-pixel rectangle it covers (x0, y0, x1, y1)."""

    image: QImage
    rect: tuple[int, int, int, int]


class MaskVersions:
    """A serial number per mask array, so a replaced mask never reuses stale tiles."""

    def __init__(self) -> None:
        self._serials: dict[int, tuple[weakref.ref, int, tuple | None]] = {}
        self._next = 0

    def _entry(self, mask: np.ndarray) -> tuple[weakref.ref, int, tuple | None]:
        entry = self._serials.get(id(mask))
        if entry is None or entry[0]() is not mask:
            self._next += 1
            entry = (weakref.ref(mask, self._forget(id(mask))), self._next, None)
            self._serials[id(mask)] = entry
        return entry

    def _forget(self, key: int):
        def callback(_ref: weakref.ref) -> None:
            current = self._serials.get(key)
            if current is not None and current[0] is _ref:
                del self._serials[key]

        return callback

    def serial(self, mask: np.ndarray) -> int:
        return self._entry(mask)[1]

    def bbox(self, mask: np.ndarray) -> tuple[int, int, int, int] | None:
        """The mask's bbox, computed once per mask version (large masks take milliseconds)."""
        ref, serial, box = self._entry(mask)
        if box is None:
            box = mask_bbox(mask) or (0, 0, 0, 0)
            self._serials[id(mask)] = (ref, serial, box)
        return None if box == (0, 0, 0, 0) else box

    def touch(self, mask: np.ndarray, rect: tuple[int, int, int, int]) -> None:
        """``mask`` was edited in place inside ``rect``: grow its cached bbox (never shrinks)."""
        ref, serial, box = self._entry(mask)
        if box is not None and box != (0, 0, 0, 0):
            rect = (min(box[0], rect[0]), min(box[1], rect[1]), max(box[2], rect[2]), max(box[3], rect[3]))
        self._serials[id(mask)] = (ref, serial, rect)


def render_tile(mask: np.ndarray, *, level: int, tx: int, ty: int, style: OverlayStyle) -> Tile | None:
    """Colourise tile (tx, ty) of ``mask`` at display level ``level``; ``None`` if it is empty."""
    f = 1 << level
    h, w = mask.shape
    span = TILE * f
    x0, y0 = tx * span, ty * span
    x1, y1 = min(x0 + span, w), min(y0 + span, h)
    if x0 >= x1 or y0 >= y1:
        return None
    # one level pixel of margin so outlines do not stop at tile borders
    mx0, my0 = max(x0 - f, 0), max(y0 - f, 0)
    mx1, my1 = min(x1 + f, w), min(y1 + f, h)
    crop = mask[my0:my1:f, mx0:mx1:f]
    if not crop.any():
        return None
    crop_u8 = crop.view(np.uint8) if crop.flags.c_contiguous else np.ascontiguousarray(crop).view(np.uint8)
    eroded = cv2.erode(crop_u8, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    if style.edge_width > 1:
        eroded = cv2.erode(
            eroded, np.ones((3, 3), np.uint8), iterations=style.edge_width - 1, borderType=cv2.BORDER_REPLICATE
        )
    edge = crop_u8 > eroded
    oy, ox = (y0 - my0 + f - 1) // f, (x0 - mx0 + f - 1) // f
    th, tw = (y1 - y0 + f - 1) // f, (x1 - x0 + f - 1) // f
    fill = crop[oy : oy + th, ox : ox + tw]
    edge = edge[oy : oy + th, ox : ox + tw]
    th, tw = fill.shape
    code = fill.astype(np.uint8)
    code[edge] = 2
    lut = np.array(
        [
            (0, 0, 0, 0),
            _premultiplied(style.rgb, style.fill_alpha),
            _premultiplied(style.edge_rgb or style.rgb, style.edge_alpha),
        ],
        dtype=np.uint8,
    )
    rgba = lut[code]  # (th, tw, 4): one table look-up per pixel
    image = QImage(rgba.data, tw, th, tw * 4, QImage.Format.Format_RGBA8888_Premultiplied).copy()
    return Tile(image=image, rect=(x0, y0, x0 + tw * f, y0 + th * f))


def _premultiplied(rgb: tuple[int, int, int], alpha: int) -> tuple[int, int, int, int]:
    a = max(0, min(alpha, 255))
    return (rgb[0] * a // 255, rgb[1] * a // 255, rgb[2] * a // 255, a)


def tiles_covering(
    rect: tuple[float, float, float, float], *, level: int, width: int, height: int
) -> Iterator[tuple[int, int]]:
    """Tile indices at ``level`` that intersect the image-pixel rectangle ``rect`` (xyxy)."""
    span = TILE << level
    x0, y0, x1, y1 = rect
    x0, y0 = max(int(x0), 0), max(int(y0), 0)
    x1, y1 = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
    if x0 >= x1 or y0 >= y1:
        return
    for ty in range(y0 // span, (y1 - 1) // span + 1):
        for tx in range(x0 // span, (x1 - 1) // span + 1):
            yield tx, ty


class OverlayCache:
    """Rendered tiles in a :class:`~inference.lru.ByteBoundedLRU` (an empty tile is kept as ``None``)."""

    def __init__(self, *, max_bytes: int = DEFAULT_OVERLAY_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.versions = MaskVersions()
        self._tiles: ByteBoundedLRU[Tile | None] = ByteBoundedLRU(max_bytes=max_bytes)
        self.rendered = 0  # tiles colourised so far (tests, benchmarks)
        self.incomplete = False  # a paint skipped tiles to stay within its time budget

    def tiles(
        self,
        owner: str,
        mask: np.ndarray,
        *,
        level: int,
        visible: tuple[float, float, float, float],
        style: OverlayStyle,
        deadline: float | None = None,
    ) -> Iterator[Tile]:
        """The non-empty tiles of ``mask`` inside ``visible`` (image pixels), rendering as needed.

        Past ``deadline`` (``time.perf_counter()``) no new tile is rendered and ``incomplete`` is
        set: the caller paints again soon, so one paint never blocks the GUI for long.
        """
        box = self.versions.bbox(mask)
        if box is None:
            return
        rect = (max(visible[0], box[0]), max(visible[1], box[1]), min(visible[2], box[2]), min(visible[3], box[3]))
        serial = self.versions.serial(mask)
        h, w = mask.shape
        for tx, ty in tiles_covering(rect, level=level, width=w, height=h):
            key = (owner, serial, level, tx, ty, style)
            tile = self._tiles.get(key, _MISSING)
            if tile is _MISSING:
                if deadline is not None and time.perf_counter() > deadline:
                    self.incomplete = True
                    continue
                tile = render_tile(mask, level=level, tx=tx, ty=ty, style=style)
                self.rendered += 1
                self._tiles.put(key, tile, nbytes=_size(tile))
            if tile is not None:
                assert isinstance(tile, Tile)  # not _MISSING: a miss was rendered just above
                yield tile

    def invalidate(
        self, owner: str, mask: np.ndarray | None = None, rect: tuple[int, int, int, int] | None = None
    ) -> None:
        """Forget ``owner``'s tiles (only those meeting ``rect`` when given); ``mask`` edited in place."""
        if mask is not None and rect is not None:
            self.versions.touch(mask, rect)

        def doomed(key: Hashable) -> bool:
            assert isinstance(key, tuple)  # the keys are (owner, serial, level, tx, ty, style)
            if key[0] != owner:
                return False
            if rect is None:
                return True
            span, margin = TILE << key[2], 1 << key[2]
            tx, ty = key[3], key[4]
            return not (
                (tx + 1) * span <= rect[0] - margin
                or tx * span >= rect[2] + margin
                or (ty + 1) * span <= rect[1] - margin
                or ty * span >= rect[3] + margin
            )

        self._tiles.remove_where(doomed)

    def clear(self) -> None:
        self._tiles.clear()

    @property
    def nbytes(self) -> int:
        return self._tiles.nbytes


_MISSING: Final = object()  # not cached (``None`` is a cached empty tile)


def _size(tile: Tile | None) -> int:
    return 64 if tile is None else tile.image.sizeInBytes() + 64
