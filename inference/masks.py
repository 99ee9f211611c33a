"""Mask codecs: COCO RLE (pycocotools), polygons with holes, bounding boxes.

Shared by the document format, the exporters, the wire protocol and the server.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from pycocotools import mask as coco_mask

RLE = dict  # {"size": [h, w], "counts": str}


def mask_to_rle(mask: np.ndarray) -> RLE:
    """Compressed COCO RLE with ``counts`` as an ASCII string (JSON-ready)."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    encoded = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8, copy=False)))
    return {"size": [int(encoded["size"][0]), int(encoded["size"][1])],
            "counts": encoded["counts"].decode("ascii")}


def rle_to_mask(rle: RLE) -> np.ndarray:
    """Decode compressed (string/bytes counts) or uncompressed (list counts) COCO RLE to (H, W) bool."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        compressed = coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    else:
        compressed = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return coco_mask.decode(compressed).astype(bool)


def rle_area(rle: RLE) -> int:
    counts = rle["counts"]
    compressed = {"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return int(coco_mask.area(compressed))


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight xyxy box (x1, y1 exclusive) of the true pixels, or ``None`` for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


Ring = np.ndarray  # (N, 2) float xy vertices


def mask_to_polygons(mask: np.ndarray, *, epsilon: float = 0.0, min_area: float = 1.0
                     ) -> list[tuple[Ring, list[Ring]]]:
    """Outer rings with their holes: ``[(outer, [hole, ...]), ...]`` in pixel xy coordinates.

    ``epsilon`` > 0 simplifies rings (Douglas-Peucker, in pixels). Vertices lie on pixel corners
    so that re-rasterising gives back the mask (up to the boundary convention).
    """
    m = np.ascontiguousarray(mask.astype(np.uint8))
    if not m.any():
        return []
    contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]
    result: list[tuple[Ring, list[Ring]]] = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole: collected under its parent
            continue
        outer = _ring(contour, epsilon)
        if outer is None or _ring_area(outer) < min_area and len(contour) > 2:
            continue
        holes = []
        child = hierarchy[i][2]
        while child != -1:
            hole = _ring(contours[child], epsilon)
            if hole is not None:
                holes.append(hole)
            child = hierarchy[child][0]
        result.append((outer, holes))
    return result


def _ring(contour: np.ndarray, epsilon: float) -> Ring | None:
    if epsilon > 0:
        contour = cv2.approxPolyDP(contour, epsilon, True)
    pts = contour.reshape(-1, 2).astype(np.float64)
    if len(pts) == 0:
        return None
    # findContours returns pixel centres; a single pixel or a line still needs >= 3 vertices
    if len(pts) < 3:
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        pts = np.array([[x0, y0], [x1 + 1, y0], [x1 + 1, y1 + 1], [x0, y1 + 1]], dtype=np.float64)
    return pts


def _ring_area(ring: Ring) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def polygons_to_mask(polygons: Sequence[tuple[Ring, Sequence[Ring]]] | Sequence[Ring], *,
                     height: int, width: int) -> np.ndarray:
    """Rasterise rings (outer rings, or ``(outer, holes)`` pairs) to an (H, W) bool mask."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    for item in polygons:
        if isinstance(item, tuple):
            outer, holes = item
        else:
            outer, holes = item, ()
        cv2.fillPoly(canvas, [np.round(np.asarray(outer)).astype(np.int32).reshape(-1, 1, 2)], 1)
        for hole in holes:
            hole_i = np.round(np.asarray(hole)).astype(np.int32).reshape(-1, 1, 2)
            cv2.fillPoly(canvas, [hole_i], 0)
            cv2.polylines(canvas, [hole_i], True, 1)  # hole boundary pixels belong to the object
    return canvas.astype(bool)
