"""Qt-free editing geometry (desktop_app.core.object_ops) and the object ``kind`` in storage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument
from desktop_app.core.annotation.storage import (
    DamagedDocumentError,
    document_from_bytes,
    document_to_bytes,
    load_document,
    save_document,
)
from desktop_app.core.object_ops import (
    copy_objects,
    editable_outline,
    is_rectangle,
    nearest_edge,
    nearest_vertex,
    outline_to_mask,
    paste_copies,
    rectangle_mask,
    snapped_rectangle,
)

H, W = 60, 80


def _rect(x0, y0, x1, y1, w=W, h=H):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_outline_of_a_rectangle_is_its_corners_and_rasterises_back_exactly():
    outline = editable_outline(_rect(10, 5, 40, 30))
    assert len(outline.rings) == 1 and sorted(map(tuple, outline.rings[0].tolist())) == [
        (10, 5),
        (10, 30),
        (40, 5),
        (40, 30),
    ]
    assert np.array_equal(outline_to_mask(outline, height=H, width=W), _rect(10, 5, 40, 30))
    hit = nearest_vertex(outline, 39.4, 29.6)
    assert (hit.point, round(hit.distance, 3)) == ((40.0, 30.0), round(np.hypot(0.6, 0.4), 3))
    edge = nearest_edge(outline, 25, 4)
    assert edge.point == (25.0, 5.0) and edge.distance == 1.0


def test_outline_keeps_holes_and_edits():
    frame = _rect(10, 10, 70, 50) & ~_rect(30, 20, 50, 40)
    outline = editable_outline(frame)
    assert outline.hole == [False, True]
    assert np.array_equal(outline_to_mask(outline, height=H, width=W), frame)
    hole = 1
    assert outline.delete_vertex(hole, 0) and len(outline.rings[hole]) == 3
    assert not outline.delete_vertex(hole, 0)  # a ring keeps 3 vertices
    blob = editable_outline(np.pad(np.ones((1, 1), bool), ((5, H - 6), (5, W - 6))))
    assert blob.rings and outline_to_mask(blob, height=H, width=W).sum() == 1


def test_rectangles_snap_to_the_pixel_grid_and_clip():
    assert snapped_rectangle(40.4, 30.6, 10.2, 5.4, width=W, height=H) == (10, 5, 40, 31)
    assert snapped_rectangle(-5, -5, 500, 500, width=W, height=H) == (0, 0, W, H)
    assert snapped_rectangle(3.2, 3.2, 3.4, 9, width=W, height=H) is None
    assert is_rectangle(rectangle_mask((1, 2, 5, 9), width=W, height=H))
    assert not is_rectangle(_rect(0, 0, 5, 5) | _rect(10, 10, 12, 12))


def test_paste_same_size_keeps_positions_other_size_clips_never_scales():
    a = AnnotationObject(label="a", mask=_rect(10, 10, 30, 30), kind="rectangle", score=0.5, source="rectangle")
    b = AnnotationObject(label="b", mask=_rect(60, 40, 80, 60))
    copies = copy_objects([a, b])
    same = paste_copies(copies, width=W, height=H)
    assert [np.array_equal(o.mask, x.mask) for o, x in zip(same.objects, (a, b))] == [True, True]
    assert {o.id for o in same.objects}.isdisjoint({a.id, b.id})
    assert same.objects[0].kind == "rectangle" and same.objects[0].score == 0.5
    smaller = paste_copies(copies, width=20, height=25)
    (clipped,) = smaller.objects
    assert (smaller.clipped, smaller.dropped) == (1, 1)
    assert np.array_equal(clipped.mask, _rect(10, 10, 20, 25, w=20, h=25)) and clipped.kind == "rectangle"
    assert "clipped" in smaller.describe() and "left out" in smaller.describe()


def test_kind_is_saved_read_and_validated(tmp_path):
    doc = ImageDocument(image_name="x.png", width=W, height=H)
    doc.add(AnnotationObject(label="box", mask=_rect(1, 1, 9, 9), kind="rectangle"))
    doc.add(AnnotationObject(label="blob", mask=_rect(20, 20, 30, 30)))
    path = save_document(doc, tmp_path / "x.json")
    back = load_document(path)
    assert [o.kind for o in back.objects] == ["rectangle", "mask"]
    # a file written before the field existed reads as masks
    data = json.loads(document_to_bytes(doc))
    for entry in data["objects"]:
        del entry["kind"]
    old = document_from_bytes(json.dumps(data).encode(), source="old")
    assert [o.kind for o in old.objects] == ["mask", "mask"]
    for bad, message in ((5, "'kind' must be a text"), ("circle", "unknown kind")):
        data["objects"][0]["kind"] = bad
        with pytest.raises(DamagedDocumentError, match=message):
            document_from_bytes(json.dumps(data).encode(), source="bad")
    with pytest.raises(ValueError):
        AnnotationObject(label="x", mask=_rect(0, 0, 2, 2), kind="polygon")
