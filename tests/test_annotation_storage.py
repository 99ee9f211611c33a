"""Document JSON storage: round trip, header-only summaries, versions, atomic writes."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from desktop_app.core.annotation import atomic
from desktop_app.core.annotation.atomic import SaveError, write_bytes_atomic
from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus
from desktop_app.core.annotation.storage import (
    DocumentFileError,
    FutureVersionError,
    load_document,
    read_summary,
    save_document,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _doc(n_objects: int = 2, *, status: ImageStatus = ImageStatus.IN_PROGRESS) -> ImageDocument:
    doc = ImageDocument(image_name="cat 1.jpg", width=40, height=30, status=status)
    rng = np.random.default_rng(n_objects)
    for i in range(n_objects):
        mask = rng.random((30, 40)) < 0.3
        doc.add(
            AnnotationObject(
                label=["cat", "dog"][i % 2],
                mask=mask,
                score=0.5 + i / 10,
                source="text",
                prompt={"text": "cat.", "box": [1.5, 2, 3, 4]},
                hidden=i == 1,
                needs_review=True,
            )
        )
    return doc


def test_round_trip_keeps_everything(tmp_path):
    doc = _doc(3)
    path = save_document(doc, tmp_path / "a.json")
    back = load_document(path)
    assert (back.image_name, back.width, back.height, back.status) == ("cat 1.jpg", 40, 30, ImageStatus.IN_PROGRESS)
    assert len(back) == 3
    for a, b in zip(doc, back):
        assert (a.id, a.label, a.score, a.source, a.prompt, a.hidden, a.needs_review) == (
            b.id,
            b.label,
            b.score,
            b.source,
            b.prompt,
            b.hidden,
            b.needs_review,
        )
        assert np.array_equal(a.mask, b.mask)


def test_file_is_plain_json_with_header_first(tmp_path):
    path = save_document(_doc(2, status=ImageStatus.DONE), tmp_path / "a.json")
    data = json.loads(path.read_text())
    assert data["format"] == "langsam-studio" and data["version"] == 1
    assert data["objects"][0]["mask"]["size"] == [30, 40]
    first = path.read_text().splitlines()[0]
    assert '"status": "done"' in first and '"object_count": 2' in first and "counts" not in first


def test_empty_document_and_numpy_values_in_prompts(tmp_path):
    doc = ImageDocument(image_name="x.png", width=5, height=4)
    mask = np.zeros((4, 5), bool)
    mask[1, 1] = True
    doc.add(
        AnnotationObject(
            label="a", mask=mask, score=float("nan"), prompt={"point": np.array([1.0, 2.0]), "k": np.int64(3)}
        )
    )
    back = load_document(save_document(doc, tmp_path / "x.json"))
    assert back.objects[0].prompt == {"point": [1.0, 2.0], "k": 3}
    assert back.objects[0].score is None
    empty = ImageDocument(image_name="e.png", width=5, height=4, status=ImageStatus.DONE)
    back = load_document(save_document(empty, tmp_path / "e.json"))
    assert len(back) == 0 and back.status == ImageStatus.DONE


def test_summary_reads_only_the_header(tmp_path):
    path = save_document(_doc(4, status=ImageStatus.REVIEW), tmp_path / "a.json")
    # damage everything after the first line: a summary must not need it
    first = path.read_bytes().split(b"\n", 1)[0]
    path.write_bytes(first + b"\n this part is not JSON")
    s = read_summary(path, image_name="cat 1.jpg")
    assert (s.status, s.object_count, s.labels, s.error) == (ImageStatus.REVIEW, 4, ("cat", "dog"), None)
    with pytest.raises(DocumentFileError, match="damaged"):
        load_document(path)


def test_summary_of_missing_reformatted_and_broken_files(tmp_path):
    assert read_summary(tmp_path / "none.json", image_name="n").status == ImageStatus.NEW
    path = save_document(_doc(2, status=ImageStatus.DONE), tmp_path / "a.json")
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4))  # someone pretty-printed it
    s = read_summary(path, image_name="a")
    assert (s.status, s.object_count, s.error) == (ImageStatus.DONE, 2, None)
    path.write_text("{ not json")
    s = read_summary(path, image_name="a")
    assert s.error and "damaged" in s.error


def test_future_version_is_rejected_clearly(tmp_path):
    path = save_document(_doc(1), tmp_path / "a.json")
    data = json.loads(path.read_text())
    data["version"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(FutureVersionError, match="newer LangSAM Studio.*version 2.*Update"):
        load_document(path)
    assert "newer" in read_summary(path, image_name="a").error


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(format="labelme"), "not a LangSAM Studio annotation file"),
        (lambda d: d.update(version="1"), "no valid format version"),
        (lambda d: d.update(status="weird"), "unknown status"),
        (lambda d: d["image"].update(width=0), "invalid image size"),
        (lambda d: d["objects"][0].update(mask={"size": [3, 3], "counts": "0"}), "object 1"),
        (lambda d: d["objects"][0]["mask"].update(size=[40, 30]), "object 1"),
        (lambda d: d["objects"][0].pop("label"), "no label"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, change, message):
    path = save_document(_doc(1), tmp_path / "a.json")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DocumentFileError, match=message):
        load_document(path)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = save_document(_doc(1), tmp_path / "a.json")
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(SaveError, match="disk is full.*previous version of the file is unchanged"):
        save_document(_doc(3), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.json"]


def test_failure_while_writing_bytes_keeps_the_old_file(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def explode(handle):
        handle.write(b"partial new data")
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(SaveError, match="could not save"):
        atomic.write_atomic(target, explode)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_keeps_permissions_and_creates_folders(tmp_path):
    target = tmp_path / "sub" / "deeper" / "f.txt"
    write_bytes_atomic(target, b"one")
    assert target.read_bytes() == b"one"
    assert (target.stat().st_mode & 0o777) != 0o600  # not mkstemp's private mode
    os.chmod(target, 0o640)
    write_bytes_atomic(target, b"two")
    assert target.read_bytes() == b"two" and (target.stat().st_mode & 0o777) == 0o640
