"""Qt-free geometry of object editing: an object's outline as editable rings, rectangles, and
copies of objects that can be pasted onto another image.

* Outline editing (vertex editing): :func:`editable_outline` turns a mask into rings (outer rings
  and holes) simplified within ~1 pixel (``inference.masks.mask_to_simple_polygons``:
  ``cv2.approxPolyDP`` on the exact pixel-edge rings); :func:`outline_to_mask` rasterises the
  edited rings back (even-odd per piece, holes cut). Rings are in pixel-corner coordinates.
* Rectangles: :func:`rectangle_mask` covers the pixels between two corners snapped to the grid.
* Copy / paste: :class:`ObjectCopy` keeps an object's mask as its bbox crop and where it was;
  :func:`paste_copies` places copies onto an image: same size = same positions; another size =
  the same pixel positions, **clipped** to the new image (never scaled), and copies left with no
  pixel are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from desktop_app.core.annotation.document import AnnotationObject, new_object_id
from inference.masks import mask_bbox, mask_to_simple_polygons, polygons_to_mask

OUTLINE_TOLERANCE = 1.0  # pixels: the editable outline stays within about a pixel of the mask


# -- outlines ----------------------------------------------------------------------------------
@dataclass(kw_only=True, eq=False)
class Outline:
    """Editable rings of one object: ``rings[i]`` is an (N, 2) float array of xy pixel corners;
    ``piece[i]`` says which piece (outer ring + its holes) ring ``i`` belongs to, ``hole[i]``
    whether it is a hole."""

    rings: list[np.ndarray] = field(default_factory=list)
    piece: list[int] = field(default_factory=list)
    hole: list[bool] = field(default_factory=list)

    def copy(self) -> Outline:
        return Outline(rings=[r.copy() for r in self.rings], piece=list(self.piece), hole=list(self.hole))

    @property
    def vertex_count(self) -> int:
        return sum(len(r) for r in self.rings)

    def pieces(self) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        out: dict[int, tuple[np.ndarray | None, list[np.ndarray]]] = {}
        for ring, p, h in zip(self.rings, self.piece, self.hole):
            outer, holes = out.get(p, (None, []))
            if h:
                holes.append(ring)
            else:
                outer = ring
            out[p] = (outer, holes)
        return [(o, hs) for o, hs in out.values() if o is not None]

    # -- edits (each returns False when refused) --------------------------------------------
    def move_vertex(self, ring: int, index: int, x: float, y: float) -> None:
        self.rings[ring][index] = (x, y)

    def insert_vertex(self, ring: int, after: int, x: float, y: float) -> int:
        """Insert (x, y) on the edge from vertex ``after`` to the next one; returns its index."""
        r = self.rings[ring]
        self.rings[ring] = np.insert(r, after + 1, (x, y), axis=0)
        return after + 1

    def delete_vertex(self, ring: int, index: int) -> bool:
        """Remove a vertex; a ring keeps at least 3 (deleting from a triangle is refused)."""
        r = self.rings[ring]
        if len(r) <= 3:
            return False
        self.rings[ring] = np.delete(r, index, axis=0)
        return True


def editable_outline(mask: np.ndarray, *, tolerance: float = OUTLINE_TOLERANCE) -> Outline:
    """The mask's outline, simplified within ``tolerance`` pixels, holes kept."""
    outline = Outline()
    for p, (outer, holes) in enumerate(mask_to_simple_polygons(mask, tolerance=tolerance)):
        for ring, is_hole in ((outer, False), *((h, True) for h in holes)):
            outline.rings.append(np.asarray(ring, dtype=np.float64).reshape(-1, 2).copy())
            outline.piece.append(p)
            outline.hole.append(is_hole)
    return outline


def outline_to_mask(outline: Outline, *, height: int, width: int) -> np.ndarray:
    """Rasterise the edited outline (pixel centres inside, holes cut), clipped to the image."""
    return polygons_to_mask(outline.pieces(), height=height, width=width)


@dataclass(frozen=True)
class VertexHit:
    ring: int
    index: int  # the vertex, or for an edge the vertex it starts from
    distance: float
    point: tuple[float, float]  # the vertex, or the closest point on the edge


def nearest_vertex(outline: Outline, x: float, y: float) -> VertexHit | None:
    best: VertexHit | None = None
    for ri, ring in enumerate(outline.rings):
        if not len(ring):
            continue
        d = np.hypot(ring[:, 0] - x, ring[:, 1] - y)
        i = int(np.argmin(d))
        if best is None or d[i] < best.distance:
            best = VertexHit(ri, i, float(d[i]), (float(ring[i, 0]), float(ring[i, 1])))
    return best


def nearest_edge(outline: Outline, x: float, y: float) -> VertexHit | None:
    """The closest point on any edge (``index`` = the edge's first vertex)."""
    best: VertexHit | None = None
    p = np.array([x, y], dtype=np.float64)
    for ri, ring in enumerate(outline.rings):
        if len(ring) < 2:
            continue
        a, b = ring, np.roll(ring, -1, axis=0)
        ab = b - a
        length2 = (ab**2).sum(axis=1)
        t = np.where(length2 > 0, ((p - a) * ab).sum(axis=1) / np.where(length2 > 0, length2, 1), 0.0).clip(0, 1)
        closest = a + ab * t[:, None]
        d = np.hypot(*(closest - p).T)
        i = int(np.argmin(d))
        if best is None or d[i] < best.distance:
            best = VertexHit(ri, i, float(d[i]), (float(closest[i, 0]), float(closest[i, 1])))
    return best


# -- rectangles --------------------------------------------------------------------------------
def snapped_rectangle(
    x0: float, y0: float, x1: float, y1: float, *, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """Corners rounded to the pixel grid and clipped to the image, xyxy (x1/y1 exclusive);
    ``None`` when no pixel is covered."""
    ax, bx = sorted((x0, x1))
    ay, by = sorted((y0, y1))
    rx0, ry0 = max(0, min(width, round(ax))), max(0, min(height, round(ay)))
    rx1, ry1 = max(0, min(width, round(bx))), max(0, min(height, round(by)))
    if rx1 <= rx0 or ry1 <= ry0:
        return None
    return rx0, ry0, rx1, ry1


def rectangle_mask(box: tuple[int, int, int, int], *, width: int, height: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def is_rectangle(mask: np.ndarray) -> bool:
    """Whether the mask is exactly one filled axis-aligned rectangle."""
    box = mask_bbox(mask)
    if box is None:
        return False
    x0, y0, x1, y1 = box
    return int(np.count_nonzero(mask)) == (x1 - x0) * (y1 - y0)


# -- copy / paste ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, eq=False)
class ObjectCopy:
    """One copied object: its fields, its mask's bbox crop and where the crop was."""

    label: str
    kind: str
    score: float | None
    source: str
    prompt: dict[str, Any] | None
    crop: np.ndarray = field(repr=False)  # bool, the mask inside its bbox
    origin: tuple[int, int]  # x0, y0 of the bbox in the image it was copied from
    image_size: tuple[int, int]  # (width, height) of that image

    @classmethod
    def of(cls, obj: AnnotationObject) -> ObjectCopy | None:
        box = obj.bbox
        if box is None:
            return None
        x0, y0, x1, y1 = box
        return cls(
            label=obj.label,
            kind=obj.kind,
            score=obj.score,
            source=obj.source,
            prompt=obj.prompt,
            crop=obj.mask[y0:y1, x0:x1].copy(),
            origin=(x0, y0),
            image_size=(obj.mask.shape[1], obj.mask.shape[0]),
        )


def copy_objects(objects: Iterable[AnnotationObject]) -> list[ObjectCopy]:
    return [c for c in (ObjectCopy.of(o) for o in objects) if c is not None]


@dataclass(frozen=True)
class PasteResult:
    objects: list[AnnotationObject]
    clipped: int  # copies that lost pixels past the image's edge
    dropped: int  # copies with no pixel left inside the image

    def describe(self) -> str:
        n = len(self.objects)
        text = f"pasted {n} object{'s' if n != 1 else ''}"
        if self.clipped:
            text += f"; {self.clipped} clipped at the image's edge (the image is smaller)"
        if self.dropped:
            text += f"; {self.dropped} left out (entirely outside this image)"
        return text


def paste_copies(copies: Sequence[ObjectCopy], *, width: int, height: int) -> PasteResult:
    """New objects (new ids) at the copies' pixel positions on a ``width`` x ``height`` image."""
    objects: list[AnnotationObject] = []
    clipped = dropped = 0
    for c in copies:
        x0, y0 = c.origin
        ch, cw = c.crop.shape
        ix0, iy0 = max(x0, 0), max(y0, 0)
        ix1, iy1 = min(x0 + cw, width), min(y0 + ch, height)
        mask = np.zeros((height, width), dtype=bool)
        if ix1 > ix0 and iy1 > iy0:
            mask[iy0:iy1, ix0:ix1] = c.crop[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        kept = int(np.count_nonzero(mask))
        if kept == 0:
            dropped += 1
            continue
        if kept < int(np.count_nonzero(c.crop)):
            clipped += 1
        kind = c.kind if c.kind != "rectangle" or is_rectangle(mask) else "mask"
        objects.append(
            AnnotationObject(
                label=c.label,
                mask=mask,
                id=new_object_id(),
                kind=kind,
                score=None if c.score is None or not math.isfinite(c.score) else c.score,
                source=c.source,
                prompt=c.prompt,
            )
        )
    return PasteResult(objects=objects, clipped=clipped, dropped=dropped)
