"""Import into a project (desktop_app.core.importing and ``langsam-studio import``): every
format round-trips through its exporter, merges never replace, bad files are one clear line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from desktop_app.cli.main import main as cli_main
from desktop_app.core.annotation.document import AnnotationObject, ImageStatus
from desktop_app.core.annotation.project import ProjectFolder
from desktop_app.core.formats.common import FormatError
from desktop_app.core.formats.registry import get_exporter
from desktop_app.core.importing import import_annotations

EXACT = {
    "coco": {"segmentation": "rle"},
    "png": {},
    "yolo": {"polygon_tolerance": 0},
    "labelme": {"shape_type": "mask"},
}


def _iou(a, b):
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0


def _export(sample_project, tmp_path, fmt, **options):
    out = tmp_path / f"export-{fmt}"
    get_exporter(fmt)(
        sample_project.documents, images_dir=sample_project.images_dir, out_dir=out, labels=None, **options
    )
    if fmt == "coco":
        return out / "annotations.json"
    return out


def _fresh_project(sample_project, tmp_path):
    """The same images in a new folder, without annotations."""
    folder = tmp_path / "target"
    folder.mkdir(parents=True)
    for doc in sample_project.documents:
        shutil.copy(sample_project.images_dir / doc.image_name, folder / doc.image_name)
    return ProjectFolder(folder)


def _kept(doc):
    return [o for o in doc.objects if o.mask.any()]


@pytest.mark.parametrize("fmt", ["coco", "labelme", "yolo", "png"])
def test_exact_round_trip_into_a_project(sample_project, tmp_path, fmt):
    source = _export(sample_project, tmp_path, fmt, **EXACT[fmt])
    project = _fresh_project(sample_project, tmp_path)
    summary = import_annotations(project, fmt, source)
    assert summary.problems == []
    expected = sum(len(_kept(d)) for d in sample_project.documents)
    assert summary.objects_added == expected and summary.duplicates_skipped == 0
    reopened = ProjectFolder(project.folder)
    for doc in sample_project.documents:
        kept = _kept(doc)
        if not kept:
            assert reopened.load(doc.image_name).objects == []
            continue
        got = reopened.load(doc.image_name)  # validated by storage on load
        assert got.status == ImageStatus.IN_PROGRESS
        assert sorted(o.label for o in got.objects) == sorted(o.label for o in kept)
        for a in kept:  # the PNG semantic map and labelme groups may reorder; match by mask
            assert any(b.label == a.label and np.array_equal(a.mask, b.mask) for b in got.objects), (fmt, a.label)
        assert all(o.source == "import" for o in got.objects)
    assert set(summary.labels_added) == {o.label for d in sample_project.documents for o in _kept(d)}
    assert set(summary.labels_added) <= set(reopened.load_labels().names)


@pytest.mark.parametrize("fmt", ["coco-polygon", "labelme", "yolo"])
def test_simplified_polygons_round_trip_within_tolerance(sample_project, tmp_path, fmt):
    name, options = ("coco", {"segmentation": "polygon"}) if fmt == "coco-polygon" else (fmt, {})
    source = _export(sample_project, tmp_path, name, **options)  # default tolerance
    project = _fresh_project(sample_project, tmp_path)
    import_annotations(project, name, source)
    got = ProjectFolder(project.folder).load("b 1.png")
    original = _kept(sample_project.documents[0])
    for a in original:
        best = max(_iou(a.mask, b.mask) for b in got.objects if b.label == a.label)
        # the masks are tiny (64x48, a 1-pixel speck): simplification may move a pixel or two
        assert best >= (0.98 if a.mask.sum() > 300 else 0.5), (fmt, a.label, best)


def test_merge_adds_skips_identical_and_keeps_existing(sample_project, tmp_path):
    project = _fresh_project(sample_project, tmp_path)
    doc = project.load("b 1.png")
    mine = AnnotationObject(label="mine", mask=sample_project.documents[0].objects[0].mask)
    same_as_import = AnnotationObject(label="cat", mask=sample_project.documents[0].objects[0].mask)
    doc.add(mine)
    doc.add(same_as_import)
    doc.status = ImageStatus.DONE
    project.save(doc)

    source = _export(sample_project, tmp_path, "coco")
    first = import_annotations(project, "coco", source)
    total = sum(len(_kept(d)) for d in sample_project.documents)
    assert (first.objects_added, first.duplicates_skipped) == (total - 1, 1)
    got = ProjectFolder(project.folder).load("b 1.png")
    assert [o.id for o in got.objects[:2]] == [mine.id, same_as_import.id]  # kept, in place, same ids
    assert got.status == ImageStatus.DONE  # the person's state is theirs
    assert len(got.objects) == 2 + len(_kept(sample_project.documents[0])) - 1

    again = import_annotations(ProjectFolder(project.folder), "coco", source)  # idempotent
    assert (again.objects_added, again.duplicates_skipped, again.images_changed) == (0, total, [])
    assert f"added 0 object(s) to 0 image(s); {total} already present" in again.lines()[0]


def test_wrong_sizes_and_unknown_images_are_skipped_and_named(sample_project, tmp_path):
    project = _fresh_project(sample_project, tmp_path)
    data = {
        "images": [
            {"id": 1, "file_name": "b 1.png", "width": 640, "height": 480},  # not its size
            {"id": 2, "file_name": "nowhere.png", "width": 64, "height": 48},
            {"id": 3, "file_name": "huge.png", "width": 100000, "height": 100000},
            {"id": 4, "file_name": "a.jpg", "width": 64, "height": 48},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [480, 640], "counts": "0"}},
            {"id": 2, "image_id": 4, "category_id": 1, "segmentation": {"size": [10, 10], "counts": [100]}},
            {"id": 3, "image_id": 4, "category_id": 1, "bbox": [2, 2, 5, 5]},
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(data))
    summary = import_annotations(project, "coco", path)
    text = "\n".join(summary.problems)
    assert "made for a 640x480 image but 'b 1.png' is 64x48" in text
    assert "'nowhere.png' is not an image of the folder" in text
    assert "100000x100000" in text
    assert "RLE size [10, 10]" in text
    assert all("foreign.json" in p for p in summary.problems)
    assert summary.objects_added == 1 and summary.images_changed == ["a.jpg"]


@pytest.mark.parametrize(
    ("fmt", "make", "message"),
    [
        ("coco", lambda p: p.write_text("{not json"), "invalid JSON at line 1"),
        ("coco", lambda p: p.write_text('{"images": 3}'), "has no 'images' list"),
        ("coco", lambda p: p.write_bytes(b"\xff\xfe\x00"), "not UTF-8"),
        ("coco", lambda p: p.write_text('{"images": [], "x": NaN}'), "NaN"),
        ("coco", lambda p: p.write_text("[" * 100000 + "]" * 100000), "nested too deeply"),
        ("yolo", lambda p: p.mkdir(), "neither classes.txt nor data.yaml"),
        ("png", lambda p: p.mkdir(), "has no classes.txt"),
        ("yolo", lambda p: p.write_text("x"), "is a file"),
    ],
)
def test_unreadable_sources_raise_one_clear_error(sample_project, tmp_path, fmt, make, message):
    project = _fresh_project(sample_project, tmp_path)
    source = tmp_path / "bad-source"
    make(source)
    with pytest.raises(FormatError, match=message) as info:
        import_annotations(project, fmt, source)
    assert "\n" not in str(info.value) and "bad-source" in str(info.value)


def test_bad_files_inside_a_folder_are_reported_not_raised(sample_project, tmp_path):
    project = _fresh_project(sample_project, tmp_path)
    source = _export(sample_project, tmp_path, "labelme")
    (source / "broken.json").write_text("{")
    (source / "other.json").write_text('{"shapes": [], "imagePath": "b 1.png", "imageWidth": 640, "imageHeight": 1}')
    summary = import_annotations(project, "labelme", source)
    assert any("broken.json" in p and "invalid JSON" in p for p in summary.problems)
    assert any("other.json" in p and "640x1" in p for p in summary.problems)
    assert summary.objects_added > 0

    yolo = _export(sample_project, tmp_path, "yolo")
    (yolo / "labels" / "b 1.txt").write_text("0 0.1 0.1 0.5 nan 0.2 0.9\n7 0.1 0.1 0.2 0.2\nzz\n")
    png = _export(sample_project, tmp_path, "png")
    next((png / "masks").rglob("*.png")).write_bytes(b"not a png")
    summary = import_annotations(_fresh_project(sample_project, tmp_path / "2"), "yolo", yolo)
    assert sum("b 1.txt' line" in p for p in summary.problems) == 3
    summary = import_annotations(_fresh_project(sample_project, tmp_path / "3"), "png", png)
    assert any("not a PNG mask" in p for p in summary.problems)


def test_split_exports_import_back(sample_project, tmp_path):
    coco = tmp_path / "coco-split"
    get_exporter("coco")(sample_project.documents, images_dir=sample_project.images_dir, out_dir=coco, split="50/50")
    yolo = tmp_path / "yolo-split"
    get_exporter("yolo")(
        sample_project.documents, images_dir=sample_project.images_dir, out_dir=yolo, split="50/50", polygon_tolerance=0
    )
    total = sum(len(_kept(d)) for d in sample_project.documents)
    for fmt, source, root in (("coco", coco, tmp_path / "c"), ("yolo", yolo, tmp_path / "y")):
        summary = import_annotations(_fresh_project(sample_project, root), fmt, source)
        assert summary.objects_added == total, fmt


# -- the CLI ------------------------------------------------------------------------------------
def test_cli_import_merges_and_says_counts(sample_project, tmp_path, capsys):
    project = _fresh_project(sample_project, tmp_path)
    source = _export(sample_project, tmp_path, "coco")
    argv = ["import", "--format", "coco", "--images", str(project.folder), str(source)]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "added 6 object(s) to 2 image(s); 0 already present" in out
    assert "new labels: cat, dog, donut, speck" in out
    assert cli_main(argv) == 0
    assert "added 0 object(s) to 0 image(s); 6 already present" in capsys.readouterr().out
    assert (project.folder / ".langsam" / "b 1.png.json").is_file()


def test_cli_import_errors_are_one_line_with_exit_codes(sample_project, tmp_path, capsys):
    project = _fresh_project(sample_project, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")

    def run(*argv):
        try:
            code = cli_main(["import", *argv])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        err = capsys.readouterr().err.strip()
        return code, err

    code, err = run("--format", "coco", "--images", str(project.folder), str(bad))
    assert code == 1 and err.startswith("error: ") and "bad.json" in err and "\n" not in err
    code, err = run("--format", "coco", "--images", str(tmp_path / "nope"), str(bad))
    assert code == 2 and err == f"error: --images '{tmp_path / 'nope'}' is not a folder"
    code, err = run("--format", "coco", "--images", str(project.folder), str(tmp_path / "missing.json"))
    assert code == 2 and "does not exist" in err
    code, err = run("--format", "tiff", "--images", str(project.folder), str(bad))
    assert code == 2 and err.startswith("error: argument --format") and "\n" not in err
    only_wrong = tmp_path / "wrong.json"
    only_wrong.write_text(json.dumps({"images": [{"id": 1, "file_name": "zzz.png", "width": 5, "height": 5}]}))
    code, err = run("--format", "coco", "--images", str(project.folder), str(only_wrong))
    assert code == 1
    assert err.splitlines()[0].startswith("warning: ") and "zzz.png" in err
    assert err.splitlines()[-1].startswith("error: nothing from")
