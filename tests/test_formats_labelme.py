"""labelme export: files pass the checks of labelme's LabelFile loader and give back the masks
under labelme's own rasterisation (PIL polygon with outline; mask shapes pasted at their box)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument
from desktop_app.core.formats.common import FormatError
from desktop_app.core.formats.labelme import export_labelme, import_labelme, object_shapes, shape_to_mask

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

LABELME_KEYS = {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}


def check_like_labelme(json_path: Path) -> dict:
    """The checks labelme's LabelFile.load and _load_shape_json_obj make (labelme 5.x-6.x)."""
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert set(data) >= LABELME_KEYS
    assert data["imageData"] is None
    image_file = json_path.parent / data["imagePath"]  # labelme joins it to the JSON's folder
    assert image_file.is_file(), image_file
    with Image.open(image_file) as img:
        assert img.size == (data["imageWidth"], data["imageHeight"])
    assert isinstance(data["flags"], dict)
    for shape in data["shapes"]:
        assert isinstance(shape["label"], str)
        assert isinstance(shape["points"], list) and shape["points"]
        assert all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in shape["points"]
        )
        assert isinstance(shape["shape_type"], str)
        assert isinstance(shape["flags"], dict)
        assert shape["group_id"] is None or isinstance(shape["group_id"], int)
        assert isinstance(shape["description"], str)
        if shape["shape_type"] == "polygon":
            assert len(shape["points"]) >= 3
        if shape["shape_type"] == "mask":
            crop = np.asarray(Image.open(io.BytesIO(base64.b64decode(shape["mask"])))).astype(bool)
            (x1, y1), (x2, y2) = np.asarray(shape["points"]).round().astype(int)
            assert crop.shape == (y2 - y1 + 1, x2 - x1 + 1)  # labelme's crop for integer corners
        else:
            assert shape["mask"] is None
    return data


def _iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def test_export_passes_labelme_checks_and_round_trips(sample_project, tmp_path):
    out = tmp_path / "labelme"
    paths = export_labelme(
        sample_project.documents, images_dir=sample_project.images_dir, out_dir=out, labels=sample_project.labels
    )
    assert sorted(p.name for p in paths) == ["a.json", "b 1.json", "c.json"]
    data = check_like_labelme(out / "b 1.json")
    assert data["imagePath"] == "../images/b 1.png"
    kinds = [(s["label"], s["shape_type"], s["group_id"]) for s in data["shapes"]]
    assert kinds == [
        ("cat", "polygon", None),
        ("donut", "mask", None),
        ("cat", "polygon", 3),
        ("cat", "polygon", 3),
        ("speck", "mask", None),
        ("dog", "polygon", None),
    ]
    assert check_like_labelme(out / "c.json")["shapes"] == []

    result = import_labelme([out])
    assert result.warnings == ()
    back = {d.image_name: d for d in result.documents}
    doc1 = back["../images/b 1.png"]
    original = [o for o in sample_project.documents[0].objects]
    assert [o.label for o in doc1.objects] == [o.label for o in original]
    for a, b in zip(original, doc1.objects):
        if a.label in ("cat", "donut", "speck"):  # rectangles, pieces, masks: exact
            assert np.array_equal(a.mask, b.mask), a.label
        else:  # a curved outline through pixel centres
            assert _iou(a.mask, b.mask) > 0.97


def test_mask_mode_is_exact_and_polygon_mode_drops_holes(sample_project, tmp_path):
    donut = sample_project.documents[0].objects[1]
    shapes = object_shapes(donut, mode="mask")
    assert [s["shape_type"] for s in shapes] == ["mask"]
    assert np.array_equal(shape_to_mask(shapes[0], height=48, width=64), donut.mask)
    (poly,) = object_shapes(donut, mode="polygon", epsilon=0)
    filled = shape_to_mask(poly, height=48, width=64)
    assert filled.sum() > donut.mask.sum()  # the hole is filled: why "auto" picks a mask shape
    assert (filled | donut.mask).sum() == filled.sum()


def test_writing_into_the_image_folder_gives_plain_image_names(sample_project):
    export_labelme(
        sample_project.documents[:1],
        images_dir=sample_project.images_dir,
        out_dir=sample_project.images_dir,
        labels=None,
        shape_type="mask",
    )
    data = check_like_labelme(sample_project.images_dir / "b 1.json")
    assert data["imagePath"] == "b 1.png"


def test_tiny_pieces_in_forced_polygon_mode_still_have_three_points():
    mask = np.zeros((10, 10), bool)
    mask[4, 4] = True
    obj = AnnotationObject(label="dot", mask=mask)
    (shape,) = object_shapes(obj, mode="polygon")
    assert len(shape["points"]) >= 3
    assert np.array_equal(shape_to_mask(shape, height=10, width=10), mask)


def test_import_groups_shapes_and_skips_bad_ones(tmp_path):
    data = {
        "version": "5.4.1",
        "flags": {},
        "imagePath": "x.jpg",
        "imageData": None,
        "imageHeight": 20,
        "imageWidth": 30,
        "shapes": [
            {
                "label": "car",
                "points": [[1, 1], [5, 1], [5, 5], [1, 5]],
                "shape_type": "polygon",
                "group_id": 1,
                "flags": {},
            },
            {"label": "car", "points": [[10, 10], [14, 14]], "shape_type": "rectangle", "group_id": 1},
            {"label": "tree", "points": [[20, 5], [22, 5]], "shape_type": "circle"},
            {"label": "line", "points": [[0, 0], [3, 3]], "shape_type": "line"},
            {"points": [[0, 0]], "shape_type": "point"},
        ],
    }
    (tmp_path / "x.json").write_text(json.dumps(data))
    (tmp_path / "broken.json").write_text("{")
    result = import_labelme([tmp_path])
    (doc,) = result.documents
    assert [o.label for o in doc.objects] == ["car", "tree"]
    assert doc.objects[0].area == 25 + 25  # labelme fills polygon and rectangle inclusively
    assert len(result.warnings) == 3 and any("broken.json" in w for w in result.warnings)


def test_bad_shape_type_option(tmp_path):
    with pytest.raises(FormatError, match="auto, polygon or mask"):
        export_labelme(
            [ImageDocument(image_name="a.png", width=2, height=2)],
            images_dir=tmp_path,
            out_dir=tmp_path,
            shape_type="circle",
        )


def _rect_doc(tmp_path):
    from PIL import Image as PILImage

    PILImage.new("RGB", (40, 30)).save(tmp_path / "r.png")
    doc = ImageDocument(image_name="r.png", width=40, height=30)
    box = np.zeros((30, 40), bool)
    box[5:17, 8:31] = True
    brushed = np.zeros((30, 40), bool)
    brushed[20:28, 2:12] = True
    brushed[20, 11] = False  # a rectangle someone erased a pixel of: the mask is the truth
    doc.add(AnnotationObject(label="box", mask=box, kind="rectangle", score=0.5))
    doc.add(AnnotationObject(label="box", mask=brushed, kind="rectangle"))
    return doc


def test_rectangle_objects_export_as_labelme_rectangles_and_come_back_as_rectangles(tmp_path):
    doc = _rect_doc(tmp_path)
    (path,) = export_labelme([doc], images_dir=tmp_path, out_dir=tmp_path / "lm")
    data = check_like_labelme(path)
    rect, other = data["shapes"]
    # labelme's convention: 2 points, the inclusive corner pixels (labelme fills them inclusively)
    assert rect["shape_type"] == "rectangle" and rect["points"] == [[8.0, 5.0], [30.0, 16.0]]
    assert rect["group_id"] is None and rect["description"] == "score=0.500"
    assert other["shape_type"] == "polygon"  # not a rectangle any more: written as its outline
    result = import_labelme([path])
    assert result.warnings == ()
    (back,) = result.documents
    assert [o.kind for o in back.objects] == ["rectangle", "mask"]
    assert np.array_equal(back.objects[0].mask, doc.objects[0].mask)
    assert back.objects[0].bbox == (8, 5, 31, 17)


def test_rectangle_objects_in_forced_modes_and_foreign_rectangles(tmp_path):
    obj = _rect_doc(tmp_path).objects[0]
    (poly,) = object_shapes(obj, mode="polygon")
    assert poly["shape_type"] == "polygon" and len(poly["points"]) == 4
    assert np.array_equal(shape_to_mask(poly, height=30, width=40), obj.mask)
    (mask_shape,) = object_shapes(obj, mode="mask")
    assert mask_shape["shape_type"] == "mask"
    # a rectangle drawn in labelme (float corners, reversed) is a rectangle; grouped with a
    # polygon it is part of a mask
    data = {
        "version": "5.5.0",
        "flags": {},
        "imagePath": "r.png",
        "imageData": None,
        "imageHeight": 30,
        "imageWidth": 40,
        "shapes": [
            {"label": "a", "points": [[20.4, 12.6], [3.2, 2.1]], "shape_type": "rectangle", "group_id": None},
            {"label": "b", "points": [[1, 1], [3, 3]], "shape_type": "rectangle", "group_id": 7},
            {"label": "b", "points": [[10, 10], [14, 10], [12, 14]], "shape_type": "polygon", "group_id": 7},
        ],
    }
    (tmp_path / "r.json").write_text(json.dumps(data))
    (doc,) = import_labelme([tmp_path / "r.json"]).documents
    assert [(o.label, o.kind) for o in doc.objects] == [("a", "rectangle"), ("b", "mask")]
