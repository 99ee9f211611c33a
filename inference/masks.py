"""Mask codecs: COCO RLE (pycocotools), polygons with holes, bounding boxes.

Shared by the document format, the exporters, the wire protocol and the server.

Polygon convention (the COCO one, which pycocotools rasterises): vertices are pixel *corners*;
pixel ``(row r, column c)`` is the unit square ``[c, c+1] x [r, r+1]`` and belongs to a polygon
when its centre ``(c + 0.5, r + 0.5)`` lies inside. :func:`mask_to_polygons` traces the cracks
between pixels, so ``polygons_to_mask(mask_to_polygons(m))`` gives back ``m`` exactly (with
``epsilon=0``), and an axis-aligned rectangle of pixels becomes a 4-vertex ring.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence, Union

import cv2
import numpy as np
from pycocotools import mask as coco_mask

# pycocotools' Cython decoder trips a NumPy 2 deprecation on every call; it is harmless noise.
warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy keyword",
                        category=DeprecationWarning, module=r"pycocotools(\..*)?$")

RLE = dict  # {"size": [h, w], "counts": str}
Ring = np.ndarray  # (N, 2) float64 xy vertices, not repeating the first vertex at the end
PolygonWithHoles = tuple[Ring, list[Ring]]


# -- RLE -------------------------------------------------------------------------------------
def mask_to_rle(mask: np.ndarray) -> RLE:
    """Compressed COCO RLE with ``counts`` as an ASCII string (JSON-ready).

    Accepts any 2-D array (bool, 0/1 integers, non-contiguous views); non-zero means inside.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    encoded = coco_mask.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return {"size": [int(encoded["size"][0]), int(encoded["size"][1])],
            "counts": encoded["counts"].decode("ascii")}


def _compressed(rle: Any) -> dict:
    """Validate an RLE dict and return pycocotools' compressed form (bytes counts)."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("an RLE mask must be an object with 'size' and 'counts'")
    size = rle["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)):
        raise ValueError(f"RLE 'size' must be [height, width] non-negative integers, got {size!r}")
    h, w = int(size[0]), int(size[1])
    counts = rle["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != h * w:
            raise ValueError(f"uncompressed RLE counts must be non-negative integers summing to {h}x{w}")
        return coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("compressed RLE counts must be an ASCII string") from None
    if not isinstance(counts, bytes):
        raise ValueError(f"RLE 'counts' must be a string or a list, got {type(counts).__name__}")
    runs = _decode_counts(counts)
    if any(r < 0 for r in runs) or sum(runs) != h * w:
        raise ValueError(f"the RLE mask is corrupt: its runs do not cover the {h}x{w} mask exactly")
    return {"size": [h, w], "counts": counts}


def _decode_counts(counts: bytes) -> list[int]:
    """Run lengths of COCO's compressed RLE string (5-bit groups, continuation and sign bits,
    runs after the second stored as differences), read here to validate them before pycocotools
    decodes into a buffer of the declared size."""
    runs: list[int] = []
    pos, n = 0, len(counts)
    while pos < n:
        value, shift, more = 0, 0, True
        while more:
            if pos >= n:
                raise ValueError("the RLE mask is corrupt: its counts string ends mid-number")
            c = counts[pos] - 48
            if not 0 <= c < 64:
                raise ValueError("the RLE mask is corrupt: its counts string has invalid characters")
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def rle_to_mask(rle: RLE) -> np.ndarray:
    """Decode compressed (string/bytes counts) or uncompressed (list counts) COCO RLE to (H, W) bool.

    Raises ``ValueError`` when the RLE is malformed or does not cover exactly ``size`` pixels.
    """
    compressed = _compressed(rle)
    h, w = compressed["size"]
    if h == 0 or w == 0:
        return np.zeros((h, w), dtype=bool)
    try:
        mask = coco_mask.decode(compressed)
    except ValueError as exc:
        raise ValueError(f"the RLE mask is corrupt: {exc}") from None
    if mask.shape != (h, w):
        raise ValueError(f"the RLE mask is corrupt: decoded {mask.shape}, expected {(h, w)}")
    return mask.astype(bool)


def rle_area(rle: RLE) -> int:
    """Number of pixels inside, without decoding."""
    return int(coco_mask.area(_compressed(rle)))


def rle_bbox(rle: RLE) -> tuple[int, int, int, int] | None:
    """Tight xyxy box (exclusive max) of an RLE mask without decoding; ``None`` when empty."""
    compressed = _compressed(rle)
    if int(coco_mask.area(compressed)) == 0:
        return None
    x, y, w, h = (int(round(v)) for v in coco_mask.toBbox(compressed))
    return x, y, x + w, y + h


# -- boxes -----------------------------------------------------------------------------------
def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight xyxy box (x1, y1 exclusive) of the true pixels, or ``None`` for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def xyxy_to_xywh(box: Sequence[float]) -> list[float]:
    """COCO's ``[x, y, width, height]`` from an xyxy box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


# -- polygons --------------------------------------------------------------------------------
def mask_to_polygons(mask: np.ndarray, *, epsilon: float = 0.0, min_area: float = 0.0
                     ) -> list[PolygonWithHoles]:
    """Outer rings with their holes: ``[(outer, [hole, ...]), ...]`` in pixel-corner xy coordinates.

    Pieces are 8-connected (pixels touching at a corner form one piece). Rings follow the pixel
    edges (collinear vertices removed), so re-rasterising with :func:`polygons_to_mask` is exact.
    ``epsilon`` > 0 simplifies rings (Douglas-Peucker, in pixels); ``min_area`` drops outer rings
    (and holes) whose polygon area in pixels is below it.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    box = mask_bbox(mask != 0)
    if box is None:
        return []
    x0, y0, x1, y1 = box
    crop = np.asarray(mask[y0:y1, x0:x1] != 0, dtype=np.uint8)
    # Tracing the 2x nearest-neighbour upscale makes every piece at least 2 sub-pixels wide.
    # Its border pixels' centres sit a quarter pixel inside the true pixel edges, so
    # (p + 1) // 2 maps each one onto the pixel corner it belongs to (also for holes).
    up = np.pad(np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1), 1)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]
    offset = np.array([x0, y0], dtype=np.int64)

    def to_ring(contour: np.ndarray) -> Ring | None:
        pts = (contour.reshape(-1, 2).astype(np.int64) - 1 + 1) // 2 + offset  # -1 undoes the pad
        ring = _simplify(_drop_collinear(pts), epsilon)
        if ring is None or ring_area(ring) < max(min_area, 1e-9):
            return None
        return ring

    result: list[PolygonWithHoles] = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole: collected under its parent
            continue
        outer = to_ring(contour)
        if outer is None:
            continue
        holes: list[Ring] = []
        child = hierarchy[i][2]
        while child != -1:
            hole = to_ring(contours[child])
            if hole is not None:
                holes.append(hole)
            child = hierarchy[child][0]
        result.append((outer, holes))
    return result


def _drop_collinear(pts: np.ndarray) -> np.ndarray:
    """Remove repeated vertices and vertices in the middle of a straight run."""
    keep = np.any(pts != np.roll(pts, 1, axis=0), axis=1)
    pts = pts[keep] if keep.any() else pts[:1]
    if len(pts) < 3:
        return pts
    prev_d = pts - np.roll(pts, 1, axis=0)
    next_d = np.roll(pts, -1, axis=0) - pts
    cross = prev_d[:, 0] * next_d[:, 1] - prev_d[:, 1] * next_d[:, 0]
    dot = prev_d[:, 0] * next_d[:, 0] + prev_d[:, 1] * next_d[:, 1]
    turn = (cross != 0) | (dot < 0)  # a reversal (spike) is a real vertex
    return pts[turn]


def _simplify(pts: np.ndarray, epsilon: float) -> Ring | None:
    if len(pts) < 3:
        return None
    if epsilon > 0:
        approx = cv2.approxPolyDP(pts.reshape(-1, 1, 2).astype(np.int32), float(epsilon), True)
        approx = approx.reshape(-1, 2)
        if len(approx) >= 3:
            pts = approx
    return np.asarray(pts, dtype=np.float64)


def ring_area(ring: Ring) -> float:
    """Unsigned polygon area (shoelace) in square pixels."""
    ring = np.asarray(ring, dtype=np.float64)
    if len(ring) < 3:
        return 0.0
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


PolygonInput = Union[Sequence[PolygonWithHoles], Sequence[Ring]]


def polygons_to_mask(polygons: PolygonInput, *, height: int, width: int) -> np.ndarray:
    """Rasterise rings (outer rings, or ``(outer, holes)`` pairs) to an (H, W) bool mask.

    Pixel-corner convention (a pixel is inside when its centre is); the result is the union of
    the items, each item being its outer ring minus its holes. Rings may extend past the image.
    A ring with fewer than 3 vertices covers nothing.
    """
    canvas = np.zeros((height, width), dtype=bool)
    if height == 0 or width == 0:
        return canvas
    for item in polygons:
        if isinstance(item, tuple):
            outer, holes = item
        else:
            outer, holes = item, ()
        outer_arr = _as_ring(outer)
        if outer_arr is None:
            continue
        lo = np.floor(outer_arr.min(axis=0)).astype(int)
        hi = np.ceil(outer_arr.max(axis=0)).astype(int)
        bx0, by0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        bx1, by1 = min(int(hi[0]), width), min(int(hi[1]), height)
        if bx1 <= bx0 or by1 <= by0:
            continue
        origin = np.array([bx0, by0], dtype=np.float64)
        local = _fill_ring(outer_arr - origin, height=by1 - by0, width=bx1 - bx0)
        for hole in holes:
            hole_arr = _as_ring(hole)
            if hole_arr is not None:
                local &= ~_fill_ring(hole_arr - origin, height=by1 - by0, width=bx1 - bx0)
        canvas[by0:by1, bx0:bx1] |= local
    return canvas


def _as_ring(ring: Any) -> np.ndarray | None:
    arr = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    if len(arr) < 3 or not np.isfinite(arr).all():
        return None
    return arr


def _fill_ring(ring: np.ndarray, *, height: int, width: int) -> np.ndarray:
    # pycocotools treats a 4-number list as a box, so a triangle is the smallest polygon it gets
    rles = coco_mask.frPyObjects([ring.ravel().tolist()], height, width)
    return coco_mask.decode(rles[0]).astype(bool)


def join_rings(polygons: Sequence[PolygonWithHoles]) -> Ring | None:
    """One ring that encodes several pieces and their holes, joined by zero-width bridges.

    For formats that allow a single polygon per object (YOLO-seg) or no holes (COCO polygons).
    Each bridge is walked there and back, so it cancels out under the even-odd rule that
    pycocotools, OpenCV and :func:`polygons_to_mask` use: the result rasterises like the input.
    """
    rings: list[np.ndarray] = []
    for outer, holes in polygons:
        rings.append(np.asarray(outer, dtype=np.float64))
        rings.extend(np.asarray(h, dtype=np.float64) for h in holes)
    rings = [r for r in rings if len(r) >= 3]
    if not rings:
        return None
    joined = rings[0]
    for ring in rings[1:]:
        i, j = _closest_pair(joined, ring)
        rotated = np.concatenate([ring[j:], ring[:j + 1]])  # starts and ends at vertex j
        joined = np.concatenate([joined[:i + 1], rotated, joined[i:]])
    return joined


def _closest_pair(a: np.ndarray, b: np.ndarray, *, limit: int = 1500) -> tuple[int, int]:
    """Indices of (nearly) the closest vertices of two rings; samples long rings to bound memory."""
    ia = np.unique(np.linspace(0, len(a) - 1, min(len(a), limit)).round().astype(int))
    ib = np.unique(np.linspace(0, len(b) - 1, min(len(b), limit)).round().astype(int))
    d = ((a[ia][:, None, :] - b[ib][None, :, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return int(ia[i]), int(ib[j])


def ring_to_flat(ring: Ring, *, decimals: int = 2) -> list[float]:
    """``[x0, y0, x1, y1, ...]`` as COCO and YOLO write polygons."""
    flat = np.round(np.asarray(ring, dtype=np.float64).ravel(), decimals)
    return [float(v) if not float(v).is_integer() else float(int(v)) for v in flat]


def flat_to_ring(flat: Sequence[float]) -> Ring:
    values = [float(v) for v in flat]
    if len(values) % 2 or not all(math.isfinite(v) for v in values):
        raise ValueError("a polygon needs an even number of finite coordinates")
    return np.asarray(values, dtype=np.float64).reshape(-1, 2)
