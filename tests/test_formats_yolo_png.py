"""YOLO-seg and PNG exports: layout, contents, round trips; the format registry."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument
from desktop_app.core.formats.common import FormatError
from desktop_app.core.formats.png import export_png, import_png
from desktop_app.core.formats.registry import EXPORTERS, FORMATS, get_exporter
from desktop_app.core.formats.yolo import export_yolo, import_yolo

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _kept(doc):
    return [o for o in doc.objects if o.mask.any()]


# -- YOLO -------------------------------------------------------------------------------------
def test_yolo_layout_and_lines(sample_project, tmp_path):
    out = tmp_path / "yolo"
    paths = export_yolo(
        sample_project.documents, images_dir=sample_project.images_dir, out_dir=out, labels=sample_project.labels
    )
    assert {p.relative_to(out).as_posix() for p in paths} == {
        "labels/b 1.txt",
        "labels/a.txt",
        "labels/c.txt",
        "classes.txt",
        "data.yaml",
    }
    assert (out / "classes.txt").read_text().split("\n")[:5] == ["dog", "cat", "unused", "donut", "speck"]
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "dog", 1: "cat", 2: "unused", 3: "donut", 4: "speck"}
    assert data["train"] == "images" and data["path"] == str(out.resolve())
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.jpg", "b 1.png", "c.png"]
    assert (out / "images" / "a.jpg").read_bytes() == (sample_project.images_dir / "a.jpg").read_bytes()
    assert (out / "labels" / "c.txt").read_text() == ""
    lines = (out / "labels" / "b 1.txt").read_text().splitlines()
    assert [int(line.split()[0]) for line in lines] == [1, 3, 1, 4, 0]
    rect = [float(v) for v in lines[0].split()[1:]]
    corners = np.array(sorted(zip(rect[::2], rect[1::2])))
    expected = np.array(sorted([(8 / 64, 5 / 48), (30 / 64, 5 / 48), (30 / 64, 20 / 48), (8 / 64, 20 / 48)]))
    assert np.abs(corners - expected).max() < 1e-6  # 6 decimals
    assert all(0.0 <= float(v) <= 1.0 for line in lines for v in line.split()[1:])


def test_yolo_round_trip_is_exact(sample_project, tmp_path):
    out = tmp_path / "yolo"
    export_yolo(
        sample_project.documents,
        images_dir=sample_project.images_dir,
        out_dir=out,
        labels=sample_project.labels,
        polygon_tolerance=0,  # exact pixel edges (the default simplifies; see test_export_options)
    )
    result = import_yolo(out)
    assert result.warnings == ()
    back = {d.image_name: d for d in result.documents}
    for doc in sample_project.documents:
        got = back[doc.image_name]
        assert (got.width, got.height) == (doc.width, doc.height)
        assert [o.label for o in got.objects] == [o.label for o in _kept(doc)]
        for a, b in zip(_kept(doc), got.objects):
            assert np.array_equal(a.mask, b.mask), a.label  # holes and pieces survive the bridges


def test_yolo_without_copying_points_at_the_image_folder(sample_project, tmp_path):
    out = tmp_path / "yolo"
    export_yolo(
        sample_project.documents, images_dir=sample_project.images_dir, out_dir=out, labels=None, copy_images=False
    )
    assert not (out / "images").exists()
    assert yaml.safe_load((out / "data.yaml").read_text())["train"] == str(sample_project.images_dir.resolve())
    result = import_yolo(out, images_dir=sample_project.images_dir)
    assert len(result.documents) == 3


def test_yolo_same_stem_images_do_not_collide(tmp_path):
    images = tmp_path / "img"
    images.mkdir()
    docs = []
    for name in ("x.jpg", "x.png"):
        Image.new("RGB", (8, 6)).save(images / name)
        doc = ImageDocument(image_name=name, width=8, height=6)
        doc.add(AnnotationObject(label=name, mask=np.ones((6, 8), bool)))
        docs.append(doc)
    export_yolo(docs, images_dir=images, out_dir=tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "labels").iterdir()) == ["x.txt", "x_png.txt"]
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == ["x.jpg", "x_png.png"]


def test_yolo_missing_image_is_a_clear_error(tmp_path):
    doc = ImageDocument(image_name="gone.png", width=4, height=4)
    with pytest.raises(FormatError, match="gone.png.*missing"):
        export_yolo([doc], images_dir=tmp_path, out_dir=tmp_path / "out")


def test_yolo_import_skips_bad_lines(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "images" / "a.png")
    (tmp_path / "classes.txt").write_text("thing\n")
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.4 0.2\n7 0 0 1 0 1 1\n0 0.1 0.1 0.2\n-1 0 0 1 0 1 1\n")
    result = import_yolo(tmp_path)
    (doc,) = result.documents
    assert len(doc) == 1 and doc.objects[0].bbox == (3, 4, 7, 6)  # the box line
    assert len(result.warnings) == 3


# -- PNG --------------------------------------------------------------------------------------
def test_png_files_and_values(sample_project, tmp_path):
    out = tmp_path / "png"
    paths = export_png(
        sample_project.documents, images_dir=sample_project.images_dir, out_dir=out, labels=sample_project.labels
    )
    names = {p.relative_to(out).as_posix() for p in paths}
    assert "masks/b 1/002_4_donut.png" in names and "semantic/c.png" in names and "classes.txt" in names
    assert (out / "classes.txt").read_text().splitlines() == ["_background_", "dog", "cat", "unused", "donut", "speck"]
    with Image.open(out / "masks" / "b 1" / "001_2_cat.png") as img:
        assert img.mode == "L" and set(np.unique(np.asarray(img)).tolist()) == {0, 255}
    with Image.open(out / "semantic" / "b 1.png") as img:
        assert img.mode == "P"
        classes = np.asarray(img)
        palette = img.getpalette()
    doc = sample_project.documents[0]
    assert classes[doc.objects[1].mask].tolist() == [4] * doc.objects[1].area  # donut = class 4
    assert classes[47, 0] == 1 and classes[47, 63] == 0  # dog in the corner; background
    assert palette[:6] == [0, 0, 0, *sample_project.labels.get("dog").rgb]
    with Image.open(out / "semantic" / "c.png") as img:
        assert not np.asarray(img).any()
        assert img.getpalette()[:6] == palette[:6]


def test_png_semantic_palette_covers_labels_met_later(tmp_path):
    images = tmp_path / "img"
    docs = []
    for i, label in enumerate(["first", "second"]):
        doc = ImageDocument(image_name=f"{i}.png", width=4, height=4)
        doc.add(AnnotationObject(label=label, mask=np.eye(4, dtype=bool)))
        docs.append(doc)
    export_png(docs, images_dir=images, out_dir=tmp_path / "out")
    with (
        Image.open(tmp_path / "out" / "semantic" / "0.png") as first,
        Image.open(tmp_path / "out" / "semantic" / "1.png") as second,
    ):
        assert first.getpalette()[:9] == second.getpalette()[:9]
        assert second.getpalette()[6:9] != [0, 0, 0]


def test_png_round_trip(sample_project, tmp_path):
    out = tmp_path / "png"
    export_png(
        sample_project.documents, images_dir=sample_project.images_dir, out_dir=out, labels=sample_project.labels
    )
    result = import_png(out, images_dir=sample_project.images_dir)
    back = {d.image_name: d for d in result.documents}
    for doc in sample_project.documents[:2]:
        got = back[doc.image_name]
        assert [o.label for o in got.objects] == [o.label for o in _kept(doc)]
        for a, b in zip(_kept(doc), got.objects):
            assert np.array_equal(a.mask, b.mask)
    semantic_only = tmp_path / "sem"
    export_png(
        sample_project.documents,
        images_dir=sample_project.images_dir,
        out_dir=semantic_only,
        labels=sample_project.labels,
        per_object=False,
    )
    doc = {d.image_name: d for d in import_png(semantic_only).documents}["a.png"]
    assert [o.label for o in doc.objects] == ["dog"]


def test_png_too_many_classes(tmp_path):
    doc = ImageDocument(image_name="a.png", width=2, height=2)
    doc.add(AnnotationObject(label="x", mask=np.ones((2, 2), bool)))
    with pytest.raises(FormatError, match="at most 255 classes"):
        export_png([doc], images_dir=tmp_path, out_dir=tmp_path / "o", labels=[f"l{i}" for i in range(300)])


# -- registry ---------------------------------------------------------------------------------
def test_registry_names_and_streaming(sample_project, tmp_path):
    assert set(EXPORTERS) == {"coco", "labelme", "yolo", "png", "voc"}
    assert all(f.title and f.description for f in FORMATS.values())
    with pytest.raises(FormatError, match="unknown export format 'tiff'.*coco"):
        get_exporter("tiff")
    for name in EXPORTERS:
        done: list[int] = []
        docs = (d for d in sample_project.documents)  # a generator: used once
        paths = get_exporter(name)(
            docs,
            images_dir=sample_project.images_dir,
            out_dir=tmp_path / name,
            labels=sample_project.labels,
            progress=done.append,
        )
        assert done == [1, 2, 3] and paths and all(p.is_file() for p in paths)
        assert not list((tmp_path / name).rglob("*.tmp"))


def test_yolo_rectangle_objects_are_four_corners_and_boxes_read_back_as_rectangles(tmp_path):
    Image.new("RGB", (40, 30)).save(tmp_path / "r.png")
    doc = ImageDocument(image_name="r.png", width=40, height=30)
    box = np.zeros((30, 40), bool)
    box[6:18, 8:32] = True
    doc.add(AnnotationObject(label="box", mask=box, kind="rectangle"))
    export_yolo([doc], images_dir=tmp_path, out_dir=tmp_path / "seg", polygon_tolerance=5)
    line = (tmp_path / "seg" / "labels" / "r.txt").read_text().split()
    assert line == ["0", "0.2", "0.2", "0.2", "0.6", "0.8", "0.6", "0.8", "0.2"]  # 4 corners, never simplified
    (back,) = import_yolo(tmp_path / "seg").documents
    assert np.array_equal(back.objects[0].mask, box) and back.objects[0].kind == "mask"  # a polygon line
    export_yolo([doc], images_dir=tmp_path, out_dir=tmp_path / "det", boxes_only=True)
    assert (tmp_path / "det" / "labels" / "r.txt").read_text() == "0 0.5 0.4 0.6 0.4\n"
    (back,) = import_yolo(tmp_path / "det").documents
    assert back.objects[0].kind == "rectangle" and back.objects[0].bbox == (8, 6, 32, 18)
