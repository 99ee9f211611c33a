"""Export options: polygon simplification (figures as assertions), train/val(/test) split,
YOLO boxes only, Pascal VOC XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument
from desktop_app.core.formats.common import FormatError, parse_split, split_of
from desktop_app.core.formats.registry import get_exporter
from inference.masks import (
    DEFAULT_POLYGON_TOLERANCE,
    mask_to_polygons,
    mask_to_simple_polygons,
    polygons_to_mask,
    simplify_ring,
)


def _disk(size, r):
    yy, xx = np.mgrid[:size, :size]
    return (xx + 0.5 - size / 2) ** 2 + (yy + 0.5 - size / 2) ** 2 <= r * r


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def _vertices(polygons):
    return sum(len(o) + sum(len(h) for h in hs) for o, hs in polygons)


# -- simplification -----------------------------------------------------------------------------
@pytest.mark.parametrize(("r", "min_ratio"), [(100, 10), (400, 20)])
def test_default_tolerance_gives_few_vertices_and_high_iou(r, min_ratio):
    mask = _disk(2 * r + 40, r)
    exact, simple = mask_to_polygons(mask), mask_to_simple_polygons(mask)
    assert _vertices(exact) / _vertices(simple) >= min_ratio  # measured 14.6x and 29x
    back = polygons_to_mask(simple, height=mask.shape[0], width=mask.shape[1])
    assert _iou(back, mask) >= 0.99  # measured 0.995 / 0.999


def test_small_and_thin_shapes_never_drop_below_the_iou_floor():
    small = _disk(60, 20)
    line = np.zeros((200, 200), bool)
    for t in np.linspace(0, 1, 1000):
        x, y = int(20 + 150 * t), int(30 + 140 * t)
        line[y - 1 : y + 2, x - 1 : x + 2] = True
    speck = np.zeros((10, 10), bool)
    speck[4, 4] = True
    for mask in (small, line, speck):
        simple = mask_to_simple_polygons(mask)
        assert _iou(polygons_to_mask(simple, height=mask.shape[0], width=mask.shape[1]), mask) >= 0.98
        assert all(len(o) >= 3 for o, _ in simple)


def test_holes_stay_holes_and_rectangles_stay_exact():
    ring = _disk(300, 120) & ~_disk(300, 60)
    ((outer, holes),) = mask_to_simple_polygons(ring)
    assert len(holes) == 1 and len(outer) < 60 and len(holes[0]) < 40
    assert _iou(polygons_to_mask([(outer, holes)], height=300, width=300), ring) >= 0.98
    rect = np.zeros((50, 60), bool)
    rect[5:40, 8:50] = True
    ((outer, holes),) = mask_to_simple_polygons(rect)
    assert len(outer) == 4 and np.array_equal(polygons_to_mask([(outer, holes)], height=50, width=60), rect)
    tiny = np.array([[0, 0], [1, 0], [1, 1]], float)
    assert np.array_equal(simplify_ring(tiny, 5.0), tiny)  # never fewer than 3 vertices


def test_exporters_take_the_tolerance_and_rle_stays_exact(tmp_path):
    mask = _disk(240, 100)
    doc = ImageDocument(image_name="d.png", width=240, height=240)
    doc.add(AnnotationObject(label="disk", mask=mask))
    coco = get_exporter("coco")
    (simple,) = coco([doc], images_dir=tmp_path, out_dir=tmp_path / "s", segmentation="polygon")
    (exact,) = coco([doc], images_dir=tmp_path, out_dir=tmp_path / "e", segmentation="polygon", polygon_tolerance=0)
    (rle,) = coco([doc], images_dir=tmp_path, out_dir=tmp_path / "r")
    n_simple = len(json.loads(simple.read_text())["annotations"][0]["segmentation"][0]) // 2
    n_exact = len(json.loads(exact.read_text())["annotations"][0]["segmentation"][0]) // 2
    assert n_exact >= 10 * n_simple and DEFAULT_POLYGON_TOLERANCE == 1.0
    from inference.masks import rle_to_mask

    assert np.array_equal(rle_to_mask(json.loads(rle.read_text())["annotations"][0]["segmentation"]), mask)
    get_exporter("yolo")([doc], images_dir=tmp_path, out_dir=tmp_path / "y", copy_images=False)
    assert len((tmp_path / "y" / "labels" / "d.txt").read_text().split()) - 1 == 2 * n_simple


# -- split ----------------------------------------------------------------------------------------
def test_parse_split_forms_and_errors():
    assert parse_split("80/20") == {"train": 0.8, "val": 0.2}
    assert parse_split("70,20,10") == pytest.approx({"train": 0.7, "val": 0.2, "test": 0.1})
    assert parse_split(None) is None and parse_split("") is None
    for bad in ("80", "a/b", "0/100", "-1/2", "1/2/3/4"):
        with pytest.raises(FormatError):
            parse_split(bad)


def test_split_is_deterministic_by_name_and_seed():
    names = [f"img{i}.jpg" for i in range(2000)]
    split = parse_split("70/20/10")
    a = [split_of(n, split, seed=1) for n in names]
    assert a == [split_of(n, split, seed=1) for n in names]  # same run, same parts
    assert a[:500] == [split_of(n, split, seed=1) for n in names[:500]]  # independent of the others
    assert a != [split_of(n, split, seed=2) for n in names]  # the seed reshuffles
    counts = {p: a.count(p) / len(a) for p in ("train", "val", "test")}
    assert counts == pytest.approx({"train": 0.7, "val": 0.2, "test": 0.1}, abs=0.04)


def _docs(n=12):
    docs = []
    for i in range(n):
        doc = ImageDocument(image_name=f"im{i}.png", width=40, height=30)
        m = np.zeros((30, 40), bool)
        m[5 : 10 + i, 3:20] = True
        doc.add(AnnotationObject(label="a" if i % 2 else "b", mask=m))
        docs.append(doc)
    return docs


def _write_images(folder, docs):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        Image.new("RGB", (doc.width, doc.height)).save(folder / doc.image_name)


def test_coco_split_files(tmp_path):
    docs = _docs()
    paths = get_exporter("coco")(docs, images_dir=tmp_path, out_dir=tmp_path / "c", split="70/20/10", seed=3)
    assert [p.name for p in paths] == ["annotations_train.json", "annotations_val.json", "annotations_test.json"]
    parts = {p.name: json.loads(p.read_text()) for p in paths}
    names = [img["file_name"] for data in parts.values() for img in data["images"]]
    assert sorted(names) == sorted(d.image_name for d in docs)  # every image exactly once
    split = parse_split("70/20/10")
    for part, data in zip(("train", "val", "test"), parts.values()):
        assert all(split_of(img["file_name"], split, seed=3) == part for img in data["images"])
        assert [c["name"] for c in data["categories"]] == ["b", "a"]  # every file has all categories
        ids = {img["id"] for img in data["images"]}
        assert all(a["image_id"] in ids for a in data["annotations"])


def test_yolo_split_layout_and_data_yaml(tmp_path):
    docs = _docs()
    _write_images(tmp_path / "imgs", docs)
    out = tmp_path / "y"
    get_exporter("yolo")(docs, images_dir=tmp_path / "imgs", out_dir=out, split="80/20", seed=0)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert (data["train"], data["val"]) == ("images/train", "images/val") and data["names"] == {0: "b", 1: "a"}
    split = parse_split("80/20")
    for doc in docs:
        part = split_of(doc.image_name, split)
        stem = doc.image_name[:-4]
        assert (out / "images" / part / doc.image_name).is_file()
        assert (out / "labels" / part / f"{stem}.txt").is_file()
    assert {p.parent.name for p in (out / "labels").rglob("*.txt")} <= {"train", "val"}


def test_yolo_boxes_only(tmp_path):
    doc = ImageDocument(image_name="x.png", width=100, height=50)
    m = np.zeros((50, 100), bool)
    m[10:30, 20:60] = True
    m[12, 70] = True  # a second piece widens the box
    doc.add(AnnotationObject(label="thing", mask=m))
    out = tmp_path / "det"
    get_exporter("yolo")([doc], images_dir=tmp_path, out_dir=out, copy_images=False, boxes_only=True)
    (line,) = (out / "labels" / "x.txt").read_text().splitlines()
    cls, cx, cy, w, h = line.split()
    assert cls == "0"
    assert [float(v) for v in (cx, cy, w, h)] == pytest.approx([45.5 / 100, 20 / 50, 51 / 100, 20 / 50])
    assert "task: detect" in (out / "data.yaml").read_text()


# -- Pascal VOC -----------------------------------------------------------------------------------
def test_voc_xml_is_valid_with_one_bndbox_per_object(tmp_path):
    docs = _docs(4)
    extra = np.zeros((30, 40), bool)
    extra[0:3, 37:40] = True  # touches the right border
    docs[0].add(AnnotationObject(label="corner & <b>", mask=extra))
    docs[1].add(AnnotationObject(label="empty", mask=np.zeros((30, 40), bool)))
    _write_images(tmp_path / "imgs", docs)
    out = tmp_path / "voc"
    paths = get_exporter("voc")(docs, images_dir=tmp_path / "imgs", out_dir=out, split="50/50", seed=7)
    xmls = sorted((out / "Annotations").glob("*.xml"))
    assert [p.name for p in xmls] == ["im0.xml", "im1.xml", "im2.xml", "im3.xml"]
    root = ET.parse(out / "Annotations" / "im0.xml").getroot()
    assert root.tag == "annotation" and root.findtext("filename") == "im0.png"
    assert [root.findtext(f"size/{k}") for k in ("width", "height", "depth")] == ["40", "30", "3"]
    objects = root.findall("object")
    assert [o.findtext("name") for o in objects] == ["b", "corner & <b>"]
    assert all(o.findtext("difficult") == "0" for o in objects)
    box = objects[0].find("bndbox")
    assert [int(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")] == [4, 6, 20, 10]  # 1-based, inclusive
    box = objects[1].find("bndbox")
    assert [int(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")] == [38, 1, 40, 3]
    assert len(ET.parse(out / "Annotations" / "im1.xml").getroot().findall("object")) == 1  # empty mask: none
    train = (out / "ImageSets" / "Main" / "train.txt").read_text().split()
    val = (out / "ImageSets" / "Main" / "val.txt").read_text().split()
    assert sorted(train + val) == ["im0", "im1", "im2", "im3"]
    assert (out / "labels.txt").read_text().split("\n")[:3] == ["b", "corner & <b>", "a"]  # order met
    assert out / "labels.txt" in paths
