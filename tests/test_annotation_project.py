"""Label sets and project folders: listing, load-or-new, summaries, persistence."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus
from desktop_app.core.annotation.labels import LabelError, LabelSet, ProjectFileError
from desktop_app.core.annotation.project import ProjectFolder, image_size, natural_sorted
from desktop_app.core.annotation.storage import DocumentFileError
from desktop_app.core.palette import new_label_color

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# -- labels -----------------------------------------------------------------------------------
def test_label_set_edits_and_order():
    labels = LabelSet(["cat", "dog"])
    assert labels.names == ["cat", "dog"]
    cat, dog = labels.get("cat").color, labels.get("dog").color
    assert cat == new_label_color("cat") and dog == new_label_color("dog", taken=[cat]) and cat != dog
    labels.add("bird", color="#FF0000")
    assert labels.get("bird").color == "#ff0000" and labels.get("bird").rgb == (255, 0, 0)
    assert labels.add("cat") is labels.get("cat")  # no duplicate
    labels.rename("dog", "puppy")
    assert labels.names == ["cat", "puppy", "bird"] and labels.get("puppy").color == dog
    labels.recolour("cat", (0, 128, 255))
    assert labels.get("cat").color == "#0080ff"
    labels.move("bird", 0)
    assert labels.names == ["bird", "cat", "puppy"]
    labels.delete("cat")
    assert labels.names == ["bird", "puppy"] and "cat" not in labels


def test_label_set_errors():
    labels = LabelSet(["cat", "dog"])
    with pytest.raises(LabelError, match="already exists"):
        labels.rename("cat", "dog")
    with pytest.raises(LabelError, match="no label 'fish'"):
        labels.delete("fish")
    with pytest.raises(LabelError, match="#rrggbb"):
        labels.recolor("cat", "red")
    with pytest.raises(LabelError, match="empty"):
        labels.add("   ")


def test_palette_colours_stay_distinct_past_the_palette():
    labels = LabelSet([f"c{i}" for i in range(45)])
    colours = [label.color for label in labels]
    assert len(set(colours)) == 45


def test_label_set_persists_and_keeps_other_keys(tmp_path):
    path = tmp_path / ".langsam" / "project.json"
    assert len(LabelSet.load(path)) == 0
    labels = LabelSet(["cat", "dog"])
    labels.recolor("dog", "#123456")
    labels.save(path)
    data = json.loads(path.read_text())
    data["app_setting"] = 5
    path.write_text(json.dumps(data))
    labels.add("bird")
    labels.save(path)
    assert LabelSet.load(path) == labels
    assert json.loads(path.read_text())["app_setting"] == 5


def test_label_file_errors(tmp_path):
    path = tmp_path / "project.json"
    path.write_text("{broken")
    with pytest.raises(ProjectFileError, match="not valid JSON"):
        LabelSet.load(path)
    path.write_text(json.dumps({"format": "langsam-studio-project", "version": 9, "labels": []}))
    with pytest.raises(ProjectFileError, match="newer LangSAM Studio"):
        LabelSet.load(path)
    path.write_text(
        json.dumps({"format": "langsam-studio-project", "version": 1, "labels": [{"name": "a", "color": "blue"}]})
    )
    with pytest.raises(ProjectFileError, match="label 1 is invalid"):
        LabelSet.load(path)


# -- project folders --------------------------------------------------------------------------
def _folder(tmp_path, names=("img10.png", "img2.png", "Img1.jpg")):
    for name in names:
        Image.new("RGB", (12, 8), (10, 20, 30)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    return ProjectFolder(tmp_path)


def test_images_are_listed_naturally_and_filtered(tmp_path):
    project = _folder(tmp_path)
    assert project.images() == ["Img1.jpg", "img2.png", "img10.png"]
    assert natural_sorted(["a10", "a9", "A1", "b"]) == ["A1", "a9", "a10", "b"]


def test_load_or_new_and_save(tmp_path):
    project = _folder(tmp_path)
    doc = project.load("img2.png")
    assert (doc.width, doc.height, doc.status, len(doc)) == (12, 8, ImageStatus.NEW, 0)
    assert project.summary("img2.png").status == ImageStatus.NEW
    mask = np.zeros((8, 12), bool)
    mask[2:5, 3:9] = True
    doc.add(AnnotationObject(label="cat", mask=mask))
    doc.status = ImageStatus.DONE
    path = project.save(doc)
    assert path == tmp_path / ".langsam" / "img2.png.json"
    back = project.load("img2.png")
    assert back.status == ImageStatus.DONE and np.array_equal(back.objects[0].mask, mask)
    s = project.summary("img2.png")
    assert (s.status, s.object_count, s.labels) == (ImageStatus.DONE, 1, ("cat",))


def test_summary_cache_sees_changes(tmp_path):
    project = _folder(tmp_path)
    doc = ImageDocument(image_name="img2.png", width=12, height=8, status=ImageStatus.IN_PROGRESS)
    project.save(doc)
    assert project.summary("img2.png").object_count == 0
    other = ProjectFolder(tmp_path)  # e.g. a batch run in another process saves the file
    doc.add(AnnotationObject(label="a", mask=np.ones((8, 12), bool)))
    doc.status = ImageStatus.REVIEW
    time.sleep(0.01)
    other.save(doc)
    s = project.summary("img2.png")
    assert (s.status, s.object_count) == (ImageStatus.REVIEW, 1)


def test_size_mismatch_and_exif_rotation(tmp_path):
    project = _folder(tmp_path)
    project.save(ImageDocument(image_name="img2.png", width=99, height=8, status=ImageStatus.DONE))
    with pytest.raises(DocumentFileError, match="99x8 image but 'img2.png' is now 12x8"):
        project.load("img2.png", size=(12, 8))
    img = Image.new("RGB", (30, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown as 20x30
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert image_size(tmp_path / "rot.jpg") == (20, 30)
    assert (project.load("rot.jpg").width, project.load("rot.jpg").height) == (20, 30)


def test_labels_live_in_the_project_file(tmp_path):
    project = _folder(tmp_path)
    assert len(project.load_labels()) == 0
    project.save_labels(LabelSet(["a", "b"]))
    assert project.project_file == tmp_path / ".langsam" / "project.json"
    assert project.load_labels().names == ["a", "b"]


def test_summaries_of_thousands_of_images_are_fast(tmp_path):
    project = ProjectFolder(tmp_path)
    meta = tmp_path / ".langsam"
    doc = ImageDocument(image_name="x.png", width=400, height=300, status=ImageStatus.DONE)
    rng = np.random.default_rng(0)
    for i in range(20):
        doc.add(AnnotationObject(label=f"l{i % 3}", mask=rng.random((300, 400)) < 0.5))
    from desktop_app.core.annotation.storage import document_to_bytes

    payload = document_to_bytes(doc)  # ~20 noisy masks: a large file
    assert len(payload) > 200_000
    meta.mkdir()
    (meta / "img0.png.json").write_bytes(payload)
    names = [f"img{i}.png" for i in range(2000)]
    for name in names[1:]:  # hard links: 2000 files to open, one payload on disk
        os.link(meta / "img0.png.json", meta / f"{name}.json")
    start = time.perf_counter()
    summaries = project.summaries(names)
    elapsed = time.perf_counter() - start
    assert all(s.object_count == 20 and s.status == ImageStatus.DONE for s in summaries)
    assert elapsed < 2.0, f"2000 summaries took {elapsed:.2f}s"
