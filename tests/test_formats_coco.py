"""COCO export (RLE and polygons), read back by pycocotools and by our importer."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from desktop_app.core.formats.coco import export_coco, import_coco
from desktop_app.core.formats.common import FormatError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _load_coco(path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress
        return COCO(str(path))


def _expected(project):
    return [(doc.image_name, obj.label, obj.mask) for doc in project.documents for obj in doc.objects if obj.mask.any()]


@pytest.mark.parametrize("segmentation", ["rle", "polygon"])
def test_pycocotools_reads_the_exact_masks(sample_project, tmp_path, segmentation):
    out = tmp_path / "out"
    paths = export_coco(
        sample_project.documents,
        images_dir=sample_project.images_dir,
        out_dir=out,
        labels=sample_project.labels,
        segmentation=segmentation,
        polygon_tolerance=0,  # exact pixel edges (the default simplifies; see test_export_options)
    )
    assert paths == [out / "annotations.json"]
    coco = _load_coco(paths[0])
    cats = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert cats == {1: "dog", 2: "cat", 3: "unused", 4: "donut", 5: "speck"}
    images = {img["file_name"]: img for img in coco.loadImgs(coco.getImgIds())}
    assert set(images) == {"b 1.png", "a.jpg", "c.png"}
    assert (images["a.jpg"]["width"], images["a.jpg"]["height"]) == (64, 48)
    got = []
    for img in coco.loadImgs(coco.getImgIds()):
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            mask = coco.annToMask(ann).astype(bool)
            assert ann["area"] == mask.sum() and ann["iscrowd"] == 0
            ys, xs = np.nonzero(mask)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
            got.append((img["file_name"], cats[ann["category_id"]], mask))
    expected = _expected(sample_project)
    assert [(n, lab) for n, lab, _ in got] == [(n, lab) for n, lab, _ in expected]
    for (_, _, a), (_, _, b) in zip(got, expected):
        assert np.array_equal(a, b)  # holes, pieces, single pixels, borders: all exact


def test_polygon_segmentation_is_lists_of_coordinates(sample_project, tmp_path):
    (path,) = export_coco(
        sample_project.documents,
        images_dir=sample_project.images_dir,
        out_dir=tmp_path,
        labels=None,
        segmentation="polygon",
    )
    data = json.loads(path.read_text())
    assert all(
        isinstance(a["segmentation"], list) and all(len(p) >= 6 for p in a["segmentation"]) for a in data["annotations"]
    )
    rect = data["annotations"][0]
    (flat,) = rect["segmentation"]  # a rectangle of pixels is its 4 corners
    assert sorted(zip(flat[::2], flat[1::2])) == [(8.0, 5.0), (8.0, 20.0), (30.0, 5.0), (30.0, 20.0)]
    assert rect["score"] == 0.9
    assert [c["name"] for c in data["categories"]] == ["cat", "donut", "speck", "dog"]


@pytest.mark.parametrize("segmentation", ["rle", "polygon"])
def test_import_round_trip(sample_project, tmp_path, segmentation):
    (path,) = export_coco(
        sample_project.documents,
        images_dir=sample_project.images_dir,
        out_dir=tmp_path,
        labels=sample_project.labels,
        segmentation=segmentation,
        polygon_tolerance=0,  # exact pixel edges (the default simplifies; see test_export_options)
    )
    result = import_coco(path)
    assert result.warnings == ()
    assert result.labels.names == ["dog", "cat", "unused", "donut", "speck"]
    assert [d.image_name for d in result.documents] == ["b 1.png", "a.jpg", "c.png"]
    for original, back in zip(sample_project.documents, result.documents):
        kept = [o for o in original.objects if o.mask.any()]
        assert [o.label for o in back.objects] == [o.label for o in kept]
        for a, b in zip(kept, back.objects):
            assert np.array_equal(a.mask, b.mask)


def test_import_reads_foreign_coco_and_reports_problems(tmp_path):
    data = {
        "images": [{"id": 7, "file_name": "x.jpg", "width": 10, "height": 8}, {"id": 8}],
        "categories": [{"id": 3, "name": "box"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 4, 3]},  # detection only
            {
                "id": 2,
                "image_id": 7,
                "category_id": 3,
                "segmentation": {"size": [8, 10], "counts": [10, 5, 65]},
                "iscrowd": 1,
            },
            {"id": 3, "image_id": 99, "category_id": 3, "bbox": [0, 0, 1, 1]},
            {"id": 4, "image_id": 7, "category_id": 42, "bbox": [0, 0, 1, 1]},
            {"id": 5, "image_id": 7, "category_id": 3, "segmentation": [[0, 0, 1, 1]]},
        ],
    }
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(data))
    result = import_coco(path)
    (doc,) = result.documents
    assert len(doc) == 2
    assert doc.objects[0].bbox == (1, 2, 5, 5) and doc.objects[0].area == 12
    assert doc.objects[1].area == 5 and doc.objects[1].bbox == (1, 2, 2, 7)
    assert len(result.warnings) == 4
    assert any("unknown image id 99" in w for w in result.warnings)
    assert any("unknown category 42" in w for w in result.warnings)


def test_bad_options_and_files(tmp_path):
    with pytest.raises(FormatError, match="'rle' or 'polygon'"):
        export_coco([], images_dir=tmp_path, out_dir=tmp_path, segmentation="mask")
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(FormatError, match="no 'images' list"):
        import_coco(tmp_path / "x.json")
    with pytest.raises(FormatError, match="does not exist"):
        import_coco(tmp_path / "missing.json")
    (tmp_path / "file").write_text("")
    with pytest.raises(FormatError, match="not a folder"):
        export_coco([], images_dir=tmp_path, out_dir=tmp_path / "file")


def test_rectangle_objects_are_exact_boxes_and_round_trip(tmp_path):
    from desktop_app.core.annotation.document import AnnotationObject, ImageDocument

    doc = ImageDocument(image_name="r.png", width=40, height=30)
    box = np.zeros((30, 40), bool)
    box[5:17, 8:31] = True
    doc.add(AnnotationObject(label="box", mask=box, kind="rectangle"))
    for segmentation in ("polygon", "rle"):
        (path,) = export_coco([doc], images_dir=tmp_path, out_dir=tmp_path / segmentation, segmentation=segmentation)
        (ann,) = json.loads(path.read_text())["annotations"]
        assert ann["bbox"] == [8, 5, 23, 12] and ann["area"] == 23 * 12
        if segmentation == "polygon":  # the 4 pixel corners, not a traced and simplified outline
            assert ann["segmentation"] == [[8, 5, 8, 17, 31, 17, 31, 5]]
        assert np.array_equal(_load_coco(path).annToMask(ann).astype(bool), box)
        (back,) = import_coco(path).documents
        (obj,) = back.objects
        assert obj.bbox == (8, 5, 31, 17) and np.array_equal(obj.mask, box)
    # a detection-only annotation (bbox, no segmentation) is a rectangle; a polygon is a mask
    data = json.loads((tmp_path / "polygon" / "annotations.json").read_text())
    data["annotations"].append({**data["annotations"][0], "id": 2, "segmentation": []})
    (tmp_path / "mixed.json").write_text(json.dumps(data))
    (back,) = import_coco(tmp_path / "mixed.json").documents
    assert [o.kind for o in back.objects] == ["mask", "rectangle"]
    assert np.array_equal(back.objects[1].mask, box)
