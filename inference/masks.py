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
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as coco_mask

# pycocotools' Cython decoder trips a NumPy 2 deprecation on every call; it is harmless noise.
warnings.filterwarnings(
    "ignore",
    message=r"__array__ implementation doesn't accept a copy keyword",
    category=DeprecationWarning,
    module=r"pycocotools(\..*)?$",
)

RLE = dict[str, Any]  # {"size": [h, w], "counts": str}
Ring = np.ndarray  # (N, 2) float64 xy vertices, not repeating the first vertex at the end
PolygonWithHoles = tuple[Ring, list[Ring]]


# -- RLE -------------------------------------------------------------------------------------
def mask_to_rle(mask: np.ndarray) -> RLE:
    """Compressed COCO RLE with ``counts`` as an ASCII string (JSON-ready).

    Accepts any 2-D array (bool, 0/1 integers, non-contiguous views); non-zero means inside.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    flags = mask if mask.dtype == np.bool_ else (mask != 0)
    # cv2.transpose gives the column-major layout pycocotools wants ~3x faster than asfortranarray
    column_major = cv2.transpose(np.ascontiguousarray(flags).view(np.uint8)).T
    encoded = coco_mask.encode(column_major)
    return {"size": [int(encoded["size"][0]), int(encoded["size"][1])], "counts": encoded["counts"].decode("ascii")}


def _compressed(rle: Any) -> dict[str, Any]:
    """Validate an RLE dict and return pycocotools' compressed form (bytes counts)."""
    return _validated(rle)[0]


def _validated(rle: Any) -> tuple[dict[str, Any], np.ndarray | None]:
    """Validate an RLE dict: pycocotools' compressed form (bytes counts), and the run lengths
    when they were read to check them (compressed string counts)."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("an RLE mask must be an object with 'size' and 'counts'")
    size = rle["size"]
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
    ):
        raise ValueError(f"RLE 'size' must be [height, width] non-negative integers, got {size!r}")
    h, w = int(size[0]), int(size[1])
    counts = rle["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != h * w:
            raise ValueError(f"uncompressed RLE counts must be non-negative integers summing to {h}x{w}")
        compressed: dict[str, Any] = coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        return compressed, None
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("compressed RLE counts must be an ASCII string") from None
    if not isinstance(counts, bytes):
        raise ValueError(f"RLE 'counts' must be a string or a list, got {type(counts).__name__}")
    return {"size": [h, w], "counts": counts}, _checked_runs(counts, h, w)


def _checked_runs(counts: bytes, h: int, w: int) -> np.ndarray:
    """The run lengths of a compressed counts string, each within [0, h*w] and summing to h*w."""
    runs = _decode_counts(counts)
    # each run within [0, h*w] too: pycocotools keeps runs as uint32 and its decoder does not
    # bound-check, so huge runs whose int64 sum wraps around to h*w would overflow its buffer
    if (runs < 0).any() or (runs.size and int(runs.max()) > h * w) or int(runs.sum()) != h * w:
        raise ValueError(f"the RLE mask is corrupt: its runs do not cover the {h}x{w} mask exactly")
    return runs


def _decode_counts(counts: bytes) -> np.ndarray:
    """Run lengths of COCO's compressed RLE string (5-bit groups, continuation and sign bits,
    runs after the second stored as differences), read here to validate them before pycocotools
    decodes into a buffer of the declared size. Vectorised (one pass per digit position, at most
    12): a noisy 1024x768 mask of 170 kB takes ~1.5 ms."""
    raw = np.frombuffer(counts, dtype=np.uint8)
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if raw.min() < 48 or raw.max() >= 48 + 64:
        raise ValueError("the RLE mask is corrupt: its counts string has invalid characters")
    chars = raw - np.uint8(48)
    last = chars < 0x20  # a character without the continuation bit ends a number
    if not last[-1]:
        raise ValueError("the RLE mask is corrupt: its counts string ends mid-number")
    ends = np.flatnonzero(last)
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > 12:  # 60 bits: more cannot be a run length of any real mask
        raise ValueError("the RLE mask is corrupt: a run length is out of range")
    digits = (chars & 0x1F).astype(np.int64)
    values = digits[starts]  # a copy (fancy indexing)
    for k in range(1, longest):  # the k-th 5-bit group of the numbers that have one
        has = np.flatnonzero(lengths > k)
        values[has] += digits[starts[has] + k] << (5 * k)
    sign = (chars[ends] >> 4).astype(np.int64) & 1  # the last group's 0x10 bit: negative
    values -= sign << (5 * lengths)
    runs: np.ndarray = values.copy()
    # from the third run on, each is stored as the difference to the run two places before
    runs[2::2] = np.cumsum(values[2::2])
    runs[3::2] = values[1] + np.cumsum(values[3::2]) if values.size > 3 else runs[3::2]
    return runs


def rle_to_mask(rle: RLE) -> np.ndarray:
    """Decode compressed (string/bytes counts) or uncompressed (list counts) COCO RLE to (H, W) bool.

    Raises ``ValueError`` when the RLE is malformed or does not cover exactly ``size`` pixels.
    """
    compressed, runs = _validated(rle)
    h, w = compressed["size"]
    if h == 0 or w == 0:
        return np.zeros((h, w), dtype=bool)
    if runs is not None:  # validated already: expand them (faster than pycocotools parsing them again)
        inside = np.zeros(runs.size, dtype=bool)
        inside[1::2] = True  # COCO runs alternate, starting outside
        # column-major like pycocotools' output: the same (h, w) Fortran-ordered array
        by_column: np.ndarray = np.repeat(inside, runs).reshape(w, h)
        decoded: np.ndarray = by_column.T
        return decoded
    try:
        mask: np.ndarray = coco_mask.decode(compressed)
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
def mask_to_polygons(mask: np.ndarray, *, epsilon: float = 0.0, min_area: float = 0.0) -> list[PolygonWithHoles]:
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
    hierarchy = hierarchy[0].tolist()
    offset = np.array([x0, y0], dtype=np.int64)
    rings = _clean_rings(contours, offset)  # vectorised over all contours: masks may have 100k

    def to_ring(i: int) -> Ring | None:
        ring = rings[i]
        if ring is None:
            return None
        if epsilon > 0:
            ring = _simplify(ring, epsilon)
            if ring is None:
                return None
        if min_area > 0 and ring_area(ring) < min_area:
            return None
        return ring

    result: list[PolygonWithHoles] = []
    for i in range(len(contours)):
        if hierarchy[i][3] != -1:  # a hole: collected under its parent
            continue
        outer = to_ring(i)
        if outer is None:
            continue
        holes: list[Ring] = []
        child = hierarchy[i][2]
        while child != -1:
            hole = to_ring(child)
            if hole is not None:
                holes.append(hole)
            child = hierarchy[child][0]
        result.append((outer, holes))
    return result


def _ring_neighbours(ring_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the previous and next vertex of each vertex within its own (cyclic) ring."""
    n = len(ring_id)
    idx = np.arange(n)
    is_start = np.ones(n, dtype=bool)
    is_start[1:] = ring_id[1:] != ring_id[:-1]
    is_end = np.ones(n, dtype=bool)
    is_end[:-1] = is_start[1:]
    starts, ends = idx[is_start], idx[is_end]
    prev, nxt = idx - 1, idx + 1
    prev[starts] = ends
    nxt[ends] = starts
    return prev, nxt


def _clean_rings(contours: Sequence[np.ndarray], offset: np.ndarray) -> list[np.ndarray | None]:
    """Map the upscaled contours onto pixel corners, drop repeated and collinear vertices;
    ``None`` for a ring left with fewer than 3 vertices."""
    lengths = np.fromiter((len(c) for c in contours), dtype=np.int64, count=len(contours))
    pts = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.int64)
    pts = (pts - 1 + 1) // 2 + offset  # -1 undoes the pad; (p + 1) // 2 maps onto the corner
    ring_id = np.repeat(np.arange(len(contours)), lengths)
    prev, _ = _ring_neighbours(ring_id)
    keep = np.any(pts != pts[prev], axis=1)
    pts, ring_id = pts[keep], ring_id[keep]
    if len(pts):
        prev, nxt = _ring_neighbours(ring_id)
        d_in, d_out = pts - pts[prev], pts[nxt] - pts
        cross = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
        dot = d_in[:, 0] * d_out[:, 0] + d_in[:, 1] * d_out[:, 1]
        turn = (cross != 0) | (dot < 0)  # a reversal (spike) is a real vertex
        pts, ring_id = pts[turn], ring_id[turn]
    counts = np.bincount(ring_id, minlength=len(contours))
    pieces = np.split(pts.astype(np.float64), np.cumsum(counts)[:-1])
    return [piece if len(piece) >= 3 else None for piece in pieces]


def _simplify(pts: np.ndarray, epsilon: float) -> Ring | None:
    return simplify_ring(pts, epsilon)


DEFAULT_POLYGON_TOLERANCE = 1.0  # pixels: exported polygons stay within a pixel of the mask's edge


def simplify_ring(ring: Ring, tolerance: float) -> Ring:
    """Douglas-Peucker (``cv2.approxPolyDP``, closed) with ``tolerance`` in pixels.

    A traced ring is a pixel staircase; its true edge runs through the middle of the unit
    steps. So the staircase's unit-step corners are replaced by the midpoints of their edges
    (corners between two edges of 2+ pixels, like a rectangle's, are kept) before simplifying:
    at the same tolerance that gives about half the vertices and a better fit than simplifying
    the corners themselves (``python -m bench polygons`` compares both).

    Never loses a ring: when the result would have fewer than 3 vertices or no area (a sliver,
    a speck), the ring is returned unchanged, so a hole stays a hole and a speck stays an
    object. ``tolerance`` <= 0 returns the ring as is.
    """
    pts = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    if tolerance <= 0 or len(pts) <= 3:
        return pts
    nxt = np.roll(pts, -1, axis=0)
    edge_out = np.abs(nxt - pts).sum(axis=1)  # edges are axis-aligned: length = |dx| + |dy|
    edge_in = np.roll(edge_out, 1)
    keep_corner = (edge_in >= 2) & (edge_out >= 2)
    both = np.stack([pts, (pts + nxt) / 2], axis=1).reshape(-1, 2)
    keep = np.stack([keep_corner, np.ones(len(pts), dtype=bool)], axis=1).reshape(-1)
    smooth = both[keep]
    approx = cv2.approxPolyDP(smooth.reshape(-1, 1, 2).astype(np.float32), float(tolerance), True)
    simplified: np.ndarray = approx.reshape(-1, 2).astype(np.float64)
    if len(simplified) < 3 or ring_area(simplified) <= 0:
        return pts
    return simplified


def simplify_polygons(polygons: Sequence[PolygonWithHoles], tolerance: float) -> list[PolygonWithHoles]:
    """:func:`simplify_ring` on every outer ring and hole (holes stay holes, none is dropped)."""
    return [
        (simplify_ring(outer, tolerance), [simplify_ring(h, tolerance) for h in holes]) for outer, holes in polygons
    ]


MIN_SIMPLIFIED_IOU = 0.98


def mask_to_simple_polygons(
    mask: np.ndarray, *, tolerance: float = DEFAULT_POLYGON_TOLERANCE, min_iou: float = MIN_SIMPLIFIED_IOU
) -> list[PolygonWithHoles]:
    """:func:`mask_to_polygons` simplified with ``tolerance`` pixels, as the exporters write them.

    The result is rasterised back and compared with the mask: when its IoU is below
    ``min_iou`` (a thin stroke loses a third of its width at one pixel), the tolerance is
    halved, twice, and then the exact rings are returned. So an object never drifts further
    from its mask than ``min_iou`` says. ``tolerance`` <= 0: the exact rings.
    """
    exact = mask_to_polygons(mask)
    if tolerance <= 0 or not exact:
        return exact
    box = mask_bbox(mask != 0)
    assert box is not None  # exact is not empty
    pad = int(math.ceil(tolerance)) + 1
    x0, y0 = max(box[0] - pad, 0), max(box[1] - pad, 0)
    x1, y1 = min(box[2] + pad, mask.shape[1]), min(box[3] + pad, mask.shape[0])
    crop = mask[y0:y1, x0:x1] != 0
    shift = np.array([x0, y0], dtype=np.float64)
    t = float(tolerance)
    for _ in range(3):
        simple = simplify_polygons(exact, t)
        local = [(o - shift, [h - shift for h in hs]) for o, hs in simple]
        back = polygons_to_mask(local, height=y1 - y0, width=x1 - x0)
        union = np.count_nonzero(back | crop)
        if union == 0 or np.count_nonzero(back & crop) / union >= min_iou:
            return simple
        t /= 2
    return exact


def ring_area(ring: Ring) -> float:
    """Unsigned polygon area (shoelace) in square pixels."""
    ring = np.asarray(ring, dtype=np.float64)
    if len(ring) < 3:
        return 0.0
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


PolygonInput = Sequence[PolygonWithHoles] | Sequence[Ring]


def polygons_to_mask(polygons: PolygonInput, *, height: int, width: int) -> np.ndarray:
    """Rasterise rings (outer rings, or ``(outer, holes)`` pairs) to an (H, W) bool mask.

    Pixel-corner convention, as pycocotools: a pixel is inside when its centre is (centres on
    an edge count for the side the edge faces, left/top edges inclusive). Each item is filled
    with the even-odd rule over its outer ring and holes (so holes cut it, and bridges of
    :func:`join_rings` cancel); the result is the union of the items. Rings may extend past the
    image; a ring with fewer than 3 vertices covers nothing.
    """
    canvas = np.zeros((height, width), dtype=bool)
    if height <= 0 or width <= 0:
        return canvas
    for item in polygons:
        outer, holes = item if isinstance(item, tuple) else (item, ())
        rings = [np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in (outer, *holes)]
        lengths = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
        pts = np.concatenate(rings)
        ring_id = np.repeat(np.arange(len(rings)), lengths)
        bad = np.bincount(ring_id, weights=~np.isfinite(pts).all(axis=1), minlength=len(rings)) > 0
        usable = (lengths >= 3) & ~bad
        if not usable[0]:  # no outer ring: nothing to fill
            continue
        if not usable.all():
            keep = usable[ring_id]
            pts, ring_id = pts[keep], ring_id[keep]
        outer_pts = pts[ring_id == 0]
        lo = np.floor(outer_pts.min(axis=0)).astype(int)
        hi = np.ceil(outer_pts.max(axis=0)).astype(int)
        bx0, by0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        bx1, by1 = min(int(hi[0]), width), min(int(hi[1]), height)
        if bx1 <= bx0 or by1 <= by0:
            continue
        local = pts - np.array([bx0, by0], dtype=np.float64)
        canvas[by0:by1, bx0:bx1] |= _fill_even_odd(local, ring_id, height=by1 - by0, width=bx1 - bx0)
    return canvas


def _fill_even_odd(starts: np.ndarray, ring_id: np.ndarray, *, height: int, width: int) -> np.ndarray:
    """Scanline fill at pixel centres, vectorised over every edge of every ring."""
    _, nxt = _ring_neighbours(ring_id)
    ends = starts[nxt]
    y_lo, y_hi = np.minimum(starts[:, 1], ends[:, 1]), np.maximum(starts[:, 1], ends[:, 1])
    # rows whose centre r + 0.5 lies in [y_lo, y_hi): half-open, so a vertex counts once
    first = np.clip(np.ceil(y_lo - 0.5), 0, height).astype(np.int64)
    last = np.clip(np.ceil(y_hi - 0.5), 0, height).astype(np.int64)
    n_rows = last - first
    keep = n_rows > 0  # also drops horizontal edges
    if not keep.any():
        return np.zeros((height, width), dtype=bool)
    x0, y0 = starts[keep, 0], starts[keep, 1]
    slope = (ends[keep, 0] - x0) / (ends[keep, 1] - y0)
    counts = n_rows[keep]
    edge = np.repeat(np.arange(len(counts)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = np.repeat(first[keep], counts) + offsets
    xs = x0[edge] + (rows + 0.5 - y0[edge]) * slope[edge]
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # crossings pair up per row (closed rings cross each row an even number of times)
    left = np.clip(np.ceil(xs[0::2] - 0.5), 0, width).astype(np.int64)
    right = np.clip(np.ceil(xs[1::2] - 0.5), 0, width).astype(np.int64)
    pair_rows = rows[0::2]
    size = height * (width + 1)
    diff = np.bincount(pair_rows * (width + 1) + left, minlength=size) - np.bincount(
        pair_rows * (width + 1) + right, minlength=size
    )
    return np.cumsum(diff.reshape(height, width + 1)[:, :width], axis=1) > 0


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
        rotated = np.concatenate([ring[j:], ring[: j + 1]])  # starts and ends at vertex j
        joined = np.concatenate([joined[: i + 1], rotated, joined[i:]])
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
