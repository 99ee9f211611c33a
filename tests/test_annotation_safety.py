"""Never lose or misroute a person's work: hostile/damaged files, backups, concurrent writers,
stale temp files, failed writes. Every test checks what is on disk afterwards."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop_app.core.annotation import atomic
from desktop_app.core.annotation.atomic import SaveError, clean_stale_temp_files
from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus
from desktop_app.core.annotation.project import BACKUP_DIR, META_DIR, ProjectFolder
from desktop_app.core.annotation.storage import (
    DamagedDocumentError,
    DocumentChangedOnDisk,
    DocumentFileError,
    FutureVersionError,
    ImageSizeMismatchError,
    load_document,
    read_summary,
    save_document,
)
from inference.errors import StudioError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
W, H = 12, 8


def _encode_runs(runs: list[int]) -> str:
    """COCO's compressed RLE string for arbitrary run lengths (pycocotools' rleToString)."""
    out = []
    for i, run in enumerate(runs):
        x = run - runs[i - 2] if i > 2 else run
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | (0x20 if more else 0)) + 48))
    return "".join(out)


def _header_file(width: int, height: int, objects: list[dict], **extra) -> bytes:
    data = {
        "format": "langsam-studio",
        "version": 1,
        "status": "in_progress",
        "object_count": len(objects),
        "labels": [],
        "image": {"name": "img.png", "width": width, "height": height},
        "objects": objects,
        **extra,
    }
    return json.dumps(data).encode()


def _project(tmp_path, names=("img.png",)) -> ProjectFolder:
    for name in names:
        Image.new("RGB", (W, H), (10, 20, 30)).save(tmp_path / name)
    return ProjectFolder(tmp_path)


def _doc(name="img.png", label="cat", rows=slice(1, 4)) -> ImageDocument:
    doc = ImageDocument(image_name=name, width=W, height=H, status=ImageStatus.IN_PROGRESS)
    mask = np.zeros((H, W), bool)
    mask[rows, 2:6] = True
    doc.add(AnnotationObject(label=label, mask=mask, score=0.9))
    return doc


def _backups(project: ProjectFolder) -> list[Path]:
    folder = project.meta_dir / BACKUP_DIR
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _object(**changes):
    entry = {
        "id": "o1",
        "label": "cat",
        "score": 0.5,
        "source": "text",
        "prompt": {"text": "cat"},
        "hidden": False,
        "needs_review": False,
        "mask": {"size": [H, W], "counts": _encode_runs([10, 5, W * H - 15])},
    }
    entry.update(changes)
    return entry


# -- 1. validation before any decoder ---------------------------------------------------------
HUGE_RLE = _header_file(
    100000, 100000, [{"id": "x", "label": "a", "mask": {"size": [100000, 100000], "counts": _encode_runs([0, 10**10])}}]
)
HUGE_RLE_SMALL_HEADER = _header_file(
    W, H, [{"id": "x", "label": "a", "mask": {"size": [100000, 100000], "counts": _encode_runs([0, 10**10])}}]
)


def test_crafted_huge_rle_is_refused_in_a_subprocess_without_crashing(tmp_path):
    assert len(HUGE_RLE) < 400  # the kind of few-hundred-byte file that used to SIGSEGV
    for i, content in enumerate((HUGE_RLE, HUGE_RLE_SMALL_HEADER)):
        path = tmp_path / f"{i}.json"
        path.write_bytes(content)
        code = (
            "import sys\n"
            "from desktop_app.core.annotation.storage import load_document, DamagedDocumentError\n"
            "try:\n"
            f"    load_document({str(path)!r}, expected_size=None)\n"
            "except DamagedDocumentError as exc:\n"
            "    print('REFUSED', exc); sys.exit(0)\n"
            "print('LOADED'); sys.exit(3)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])  # no SIGSEGV
        assert "REFUSED" in done.stdout and str(path) in done.stdout
        assert path.read_bytes() == content


def test_run_lengths_whose_int64_sum_wraps_around_are_refused(tmp_path):
    # 100 + 64 * 2**58 == 100 (mod 2**64): a sum-only check passes it, pycocotools would overflow
    runs = [100] + [2**58 + 7] * 64
    wrapped = np.array(runs[:1] + [r for r in runs[1:]], dtype=np.int64)
    assert int(wrapped.sum()) != sum(runs)
    path = tmp_path / "a.json"
    path.write_bytes(_header_file(10, 10, [{"label": "a", "mask": {"size": [10, 10], "counts": _encode_runs(runs)}}]))
    with pytest.raises(DamagedDocumentError, match="object 1"):
        load_document(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (json.dumps({"format": "langsam-studio", "x": json.loads("[" * 200 + "]" * 200)}).encode(), "nested more than"),
        (_header_file(W, H, [], status=["in_progress"]), "invalid status"),
        (_header_file(W, H, [], status={"a": 1}), "invalid status"),
        (_header_file(W, H, [])[:-1] + b', "version": 1.0}', "no valid format version"),
        (_header_file("12", H, []), "invalid image size"),
        (_header_file(True, H, []), "invalid image size"),
        (_header_file(-4, H, []), "invalid image size"),
        (_header_file(W, H, []).replace(b'"height": 8', b'"height": ' + b"9" * 5000), "damaged"),
        (_header_file(W, H, []).replace(b'"height": 8', b'"height": NaN'), "NaN"),
        (_header_file(W, H, []).replace(b'"height": 8', b'"height": 1e400'), "invalid image size"),
        (_header_file(W, H, []).replace(b'"objects": []', b'"objects": {"a": 1}'), "must be a list"),
        (_header_file(65536, 65536, []), "more than LangSAM Studio can hold"),
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (_header_file(W, H, [_object()]).replace(b'"score": 0.5', b'"score": 1e999'), "invalid score"),
        (b'{"format": "langsam-studio", "version": 1, "image": ', "invalid JSON"),
    ],
)
def test_hostile_headers_raise_only_document_file_errors(tmp_path, content, message):
    path = tmp_path / "a.json"
    path.write_bytes(content)
    with pytest.raises(DamagedDocumentError, match=message) as info:
        load_document(path)
    assert str(path) in str(info.value)
    summary = read_summary(path, image_name="a")  # never raises either
    assert summary.error is None or isinstance(summary.error, str)
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"score": float("nan")}, "number NaN"),
        ({"score": 10**400}, "invalid score"),
        ({"score": "0.5"}, "invalid score"),
        ({"score": True}, "invalid score"),
        ({"label": ["cat"]}, "no label"),
        ({"id": 5}, "'id' must be a text"),
        ({"hidden": "yes"}, "'hidden' must be true or false"),
        ({"prompt": [1, 2]}, "'prompt' must be a JSON object"),
        ({"mask": "abc"}, "not an RLE object"),
        ({"mask": {"size": [H, W], "counts": 12}}, "counts must be a string or a list"),
        ({"mask": {"size": [H, W], "counts": {"a": 1}}}, "counts must be a string or a list"),
        ({"mask": {"size": [H, W], "counts": [10, 5, W * H]}}, "run lengths do not cover"),
        ({"mask": {"size": [H, W], "counts": [10, -5, W * H - 5]}}, "run lengths are invalid"),
        ({"mask": {"size": [H, W], "counts": [10.0, 5, W * H - 15]}}, "run lengths are invalid"),
        ({"mask": {"size": [H, W], "counts": _encode_runs([10, 5, W * H])}}, "corrupt"),
        ({"mask": {"size": [H, W], "counts": "é"}}, "not a valid RLE string"),
        ({"mask": {"size": [H, W + 1], "counts": _encode_runs([W * H + H])}}, "mask is 13x8 but the image is 12x8"),
        ({"mask": {"size": [H, "12"], "counts": "0"}}, "but the image is 12x8"),
        ({"mask": {"size": [10**20, 10**20], "counts": "0"}}, "but the image is 12x8"),
    ],
)
def test_hostile_objects_raise_only_document_file_errors(tmp_path, changes, message):
    path = tmp_path / "a.json"
    content = _header_file(W, H, [_object(**changes)])
    path.write_bytes(content)
    with pytest.raises(DamagedDocumentError, match=message):
        load_document(path)
    assert path.read_bytes() == content


def test_valid_hand_made_file_still_loads(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(_header_file(W, H, [_object(), _object(id="o2", mask={"size": [H, W], "counts": [0, W * H]})]))
    doc = load_document(path, expected_size=(W, H))
    assert [o.area for o in doc.objects] == [5, W * H]


def test_file_over_the_size_limit_is_not_read(tmp_path, monkeypatch):
    from desktop_app.core.annotation import storage

    monkeypatch.setattr(storage, "MAX_DOCUMENT_BYTES", 1000)
    path = tmp_path / "a.json"
    path.write_bytes(_header_file(W, H, [_object()] * 10))
    with pytest.raises(DamagedDocumentError, match="larger than any annotation file"):
        load_document(path)


# -- 2. mismatch / damaged files are moved aside, never overwritten ----------------------------
def test_size_mismatch_is_moved_aside_with_original_bytes(tmp_path):
    project = _project(tmp_path)
    path = project.annotation_path("img.png")
    path.parent.mkdir()
    original = _header_file(99, 8, [])
    path.write_bytes(original)
    with pytest.raises(ImageSizeMismatchError, match="99x8 image but 'img.png' is now 12x8"):
        project.load("img.png")  # the size comes from the image file's header
    assert path.read_bytes() == original  # load never moves or changes anything

    opened = project.open_document("img.png")
    assert opened.backup is not None and "99x8" in opened.problem
    assert opened.backup.parent == tmp_path / META_DIR / BACKUP_DIR
    assert opened.backup.name.startswith("img.png.json.other-size-")
    assert opened.backup.read_bytes() == original
    assert not path.exists()
    doc = opened.document
    assert (doc.width, doc.height, doc.status, len(doc)) == (W, H, ImageStatus.NEW, 0)
    doc.add(_doc().objects[0])
    project.save(doc)
    assert load_document(path).objects[0].label == "cat" and opened.backup.read_bytes() == original


@pytest.mark.parametrize("content", [b'{"format": "langsam-studio", "vers', HUGE_RLE_SMALL_HEADER, b"\x00" * 50])
def test_damaged_file_is_moved_aside_by_open_document(tmp_path, content):
    project = _project(tmp_path)
    path = project.annotation_path("img.png")
    path.parent.mkdir()
    path.write_bytes(content)
    opened = project.open_document("img.png")
    assert (
        opened.backup.name.startswith("img.png.json.damaged-")
        and "damaged" in opened.problem
        or "object 1" in opened.problem
    )
    assert opened.backup.read_bytes() == content and not path.exists()
    assert project.summary("img.png").status == ImageStatus.NEW


def test_save_after_a_failed_load_moves_the_damaged_file_aside_first(tmp_path):
    project = _project(tmp_path)
    path = project.annotation_path("img.png")
    path.parent.mkdir()
    path.write_bytes(b"not json")
    with pytest.raises(DamagedDocumentError):
        project.load("img.png")
    project.save(_doc())  # e.g. the GUI started a fresh document after showing the error
    [backup] = _backups(project)
    assert backup.read_bytes() == b"not json" and project.last_backups["img.png"] == backup
    assert load_document(path).objects[0].label == "cat"


def test_save_without_load_never_overwrites_a_damaged_or_mismatched_file(tmp_path):
    project = _project(tmp_path, names=("a.png", "b.png"))
    project.meta_dir.mkdir()
    project.annotation_path("a.png").write_bytes(b"{ broken")
    project.annotation_path("b.png").write_bytes(_header_file(99, 8, []))
    ProjectFolder(tmp_path).save(_doc("a.png"))
    ProjectFolder(tmp_path).save(_doc("b.png"))
    contents = sorted(p.read_bytes() for p in _backups(project))
    assert contents == sorted([b"{ broken", _header_file(99, 8, [])])
    assert load_document(project.annotation_path("a.png")).objects[0].label == "cat"


def test_backup_names_never_collide(tmp_path):
    project = _project(tmp_path)
    paths = []
    for i in range(3):
        project.save(_doc(label=f"l{i}"))
        paths.append(project.move_aside("img.png", "My Reason!"))
    assert len(set(paths)) == 3 and all(p.name.startswith("img.png.json.my-reason-") for p in paths)
    assert [load_document(p).objects[0].label for p in paths] == ["l0", "l1", "l2"]
    assert project.move_aside("img.png") is None


def test_future_version_is_neither_moved_nor_overwritten_unless_forced(tmp_path):
    project = _project(tmp_path)
    path = project.annotation_path("img.png")
    path.parent.mkdir()
    newer = _header_file(W, H, []).replace(b'"version": 1', b'"version": 7')
    path.write_bytes(newer)
    with pytest.raises(FutureVersionError):
        project.open_document("img.png")
    with pytest.raises(FutureVersionError, match="not overwritten"):
        project.save(_doc())
    assert path.read_bytes() == newer and _backups(project) == []
    project.save(_doc(), force=True)
    [backup] = _backups(project)
    assert backup.read_bytes() == newer and "newer-version" in backup.name


# -- 3. concurrent writers -------------------------------------------------------------------
def test_change_on_disk_is_detected_and_save_can_be_forced(tmp_path):
    mine, theirs = _project(tmp_path), ProjectFolder(tmp_path)
    mine.save(_doc(label="first"))
    doc = mine.load("img.png")
    other = theirs.load("img.png")
    other.add(_doc(label="theirs").objects[0])
    theirs.save(other)
    their_bytes = mine.annotation_path("img.png").read_bytes()

    doc.add(_doc(label="mine").objects[0])
    with pytest.raises(DocumentChangedOnDisk, match="changed on disk") as info:
        mine.save(doc)
    assert isinstance(info.value, StudioError) and info.value.image_name == "img.png"
    assert info.value.path == mine.annotation_path("img.png")
    assert mine.annotation_path("img.png").read_bytes() == their_bytes  # not overwritten

    mine.save(doc, force=True)
    [backup] = _backups(mine)
    assert backup.read_bytes() == their_bytes and backup.name.startswith("img.png.json.replaced-")
    assert mine.last_backups["img.png"] == backup
    assert [o.label for o in load_document(mine.annotation_path("img.png")).objects] == ["first", "mine"]
    mine.save(doc)  # later saves of the same session need no force
    with pytest.raises(DocumentChangedOnDisk):
        theirs.save(other)  # and now the other writer is the one told


def test_file_created_by_someone_else_after_loading_a_new_image_is_not_overwritten(tmp_path):
    mine, theirs = _project(tmp_path), ProjectFolder(tmp_path)
    doc = mine.load("img.png")
    assert doc.status == ImageStatus.NEW
    theirs.save(_doc(label="theirs"))
    doc.add(_doc().objects[0])
    with pytest.raises(DocumentChangedOnDisk):
        mine.save(doc)
    assert load_document(mine.annotation_path("img.png")).objects[0].label == "theirs"


def test_same_content_rewritten_by_a_sync_tool_is_not_a_conflict(tmp_path):
    project = _project(tmp_path)
    project.save(_doc())
    doc = project.load("img.png")
    path = project.annotation_path("img.png")
    content = path.read_bytes()
    path.unlink()
    path.write_bytes(content)  # new inode and time, same bytes
    os.utime(path, ns=(1, 1))
    project.save(doc)
    assert _backups(project) == []


def test_deleting_with_an_empty_new_document_also_respects_changes(tmp_path):
    mine, theirs = _project(tmp_path), ProjectFolder(tmp_path)
    mine.save(_doc())
    doc = mine.load("img.png")
    theirs.save(_doc(label="theirs"))
    doc.objects.clear()
    doc.status = ImageStatus.NEW
    with pytest.raises(DocumentChangedOnDisk):
        mine.save(doc)
    assert mine.annotation_path("img.png").exists()


# -- 4. stale temp files ---------------------------------------------------------------------
def test_stale_temp_files_are_removed_when_the_folder_is_opened(tmp_path):
    meta = tmp_path / META_DIR
    meta.mkdir()
    old = time.time() - 3600
    stale = meta / ".img.png.json.ab_c1234.tmp"
    stale_project = meta / ".project.json.zz99zz99.tmp"
    fresh = meta / ".img.png.json.q1w2e3r4.tmp"  # a writer in another process is busy with it
    foreign = [
        meta / "notes.tmp",
        meta / ".img.png.json.tmp",
        meta / ".img.png.json.ABCDEFGH.tmp",
        meta / ".picture.png.12345678.tmp",
    ]
    for path in [stale, stale_project, fresh, *foreign]:
        path.write_bytes(b"partial")
    for path in [stale, stale_project, *foreign]:
        os.utime(path, (old, old))
    project = _project(tmp_path)
    assert sorted(project.removed_temp_files) == sorted([stale, stale_project])
    assert not stale.exists() and not stale_project.exists()
    assert fresh.exists() and all(p.exists() for p in foreign)


def test_temp_name_pattern_matches_what_write_atomic_creates(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(Path(src))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", spy)
    atomic.write_bytes_atomic(tmp_path / "x.json", b"{}")
    [tmp] = seen
    assert atomic._TEMP_NAME.match(tmp.name)["target"] == "x.json"
    tmp.write_bytes(b"left behind")
    os.utime(tmp, (0, 0))
    assert clean_stale_temp_files(tmp_path, target_suffix=".json") == [tmp]


# -- 5. / 6. atomic writes -------------------------------------------------------------------
def test_atomic_write_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    import stat

    kinds = []
    real_fsync = os.fsync

    def spy(fd):
        kinds.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    save_document(_doc(), tmp_path / "a.json")
    assert kinds == (["file", "dir"] if os.name == "posix" else ["file"])


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_disk_full_keeps_the_old_file_and_raises_save_error(tmp_path, monkeypatch, where):
    project = _project(tmp_path)
    path = project.save(_doc(label="old"))
    before = path.read_bytes()
    doc = project.load("img.png")
    doc.add(_doc(label="new").objects[0])

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", disk_full)
    else:  # the lowest write call: the file object's write of the temp file
        real_fdopen = os.fdopen

        class Full:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                self.handle.write(data[: len(data) // 2])
                disk_full()

            def __getattr__(self, name):
                return getattr(self.handle, name)

        monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(SaveError, match="disk is full.*previous version of the file is unchanged"):
        project.save(doc)
    assert path.read_bytes() == before
    assert sorted(os.listdir(project.meta_dir)) == ["img.png.json"]  # no temp file left
    monkeypatch.undo()
    project.save(doc)  # the state is still consistent: a retry saves without a false conflict
    assert [o.label for o in load_document(path).objects] == ["old", "new"]


def test_every_problem_is_a_document_file_error_subclass():
    assert issubclass(DamagedDocumentError, DocumentFileError)
    assert issubclass(ImageSizeMismatchError, DamagedDocumentError)
    assert issubclass(DocumentChangedOnDisk, StudioError)
