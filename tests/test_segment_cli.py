"""``langsam-studio segment`` end to end with the classic backend (no weights needed)."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from desktop_app.cli import segment_command
from desktop_app.cli.main import main
from desktop_app.core.formats.registry import FORMATS

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _scene(path, *, offset: int = 0) -> np.ndarray:
    """A dark picture with a yellow rectangle; returns the rectangle's mask."""
    img = np.full((60, 80, 3), 30, np.uint8)
    truth = np.zeros((60, 80), bool)
    truth[15:45, 20 + offset : 60 + offset] = True
    img[truth] = (230, 200, 40)
    Image.fromarray(img).save(path)
    return truth


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def _coco(path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


@pytest.fixture
def scenes(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    truths = {"img2.png": _scene(folder / "img2.png"), "img10.png": _scene(folder / "img10.png", offset=5)}
    return folder, truths


def test_box_prompt_on_a_folder_to_coco(scenes, tmp_path, capsys):
    folder, truths = scenes
    out = tmp_path / "out"
    code = main(
        ["segment", str(folder), "--box", "15,10,70,50", "--backend", "classic", "--format", "coco", "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "segmented 2 images, found 2 objects" in captured.out
    assert "segment (classic)" in captured.err  # the progress bar
    coco = _coco(out / "annotations.json")
    images = coco.loadImgs(coco.getImgIds())
    assert [img["file_name"] for img in images] == ["img2.png", "img10.png"]  # natural order
    for img in images:
        (ann,) = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        assert coco.loadCats(ann["category_id"])[0]["name"] == "object"
        assert _iou(coco.annToMask(ann).astype(bool), truths[img["file_name"]]) > 0.9
        assert 0.0 <= ann["score"] <= 1.0


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_point_prompt_to_every_format(scenes, tmp_path, capsys, fmt):
    folder, _ = scenes
    out = tmp_path / fmt
    code = main(
        [
            "segment",
            str(folder / "img2.png"),
            "--point",
            "40,30",
            "--point",
            "5,5,0",
            "--label",
            "sign",
            "--format",
            fmt,
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "found 1 object" in captured.out
    assert any(out.rglob("*"))
    if fmt == "labelme":
        data = json.loads((out / "img2.json").read_text())
        assert [s["label"] for s in data["shapes"]] == ["sign"]
        assert data["imagePath"].endswith("photos/img2.png")


def test_images_from_two_folders_keep_their_relative_paths(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _scene(tmp_path / "a" / "x.png")
    _scene(tmp_path / "b" / "x.png")
    code = main(
        [
            "segment",
            str(tmp_path / "a" / "x.png"),
            str(tmp_path / "b"),
            "--box",
            "15,10,70,50",
            "--format",
            "coco",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            "--backend",
            "classic",
        ]
    )
    assert code == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert [i["file_name"] for i in data["images"]] == ["a/x.png", "b/x.png"]


def test_corrupt_image_is_skipped_with_a_warning_and_exit_1(scenes, tmp_path, capsys):
    folder, _ = scenes
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    code = main(
        [
            "segment",
            str(folder),
            "--box",
            "15,10,70,50",
            "--backend",
            "classic",
            "--format",
            "coco",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "skipped" in captured.err and "broken.jpg" in captured.err and "Traceback" not in captured.err
    assert "1 image was skipped" in captured.err
    data = json.loads((out / "annotations.json").read_text())
    assert len(data["images"]) == 2 and len(data["annotations"]) == 2  # the others still exported


def test_box_outside_the_image_is_reported_per_image(scenes, tmp_path, capsys):
    folder, _ = scenes
    code = main(
        [
            "segment",
            str(folder / "img2.png"),
            "--box",
            "500,500,600,600",
            "--backend",
            "classic",
            "--format",
            "png",
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "lies outside the 80x60 image" in captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--point", "12;30"], "expected x,y"),
        (["--point", "1,2,5"], "must be 1 (positive) or 0"),
        (["--point", "nan,3"], "expected x,y"),
        (["--box", "1,2,3"], "x0,y0,x1,y1"),
        (["--box", "5,5,5,9"], "no area"),
        (["--box-threshold", "1.5", "--text", "cat"], "between 0 and 1"),
        (["--max-detections", "0", "--text", "cat"], "positive whole number"),
        (["--point", "1,2", "--format", "tiff"], "invalid choice"),
    ],
)
def test_bad_syntax_exits_2_with_a_message(scenes, tmp_path, capsys, argv, message):
    folder, _ = scenes
    base = ["segment", str(folder), "--out", str(tmp_path / "o")]
    if "--format" not in argv:
        base += ["--format", "coco"]
    with pytest.raises(SystemExit) as info:
        main(base + argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "no prompt"),
        (["--text", "  . "], "empty"),
        (["--point", "3,4,0"], "only negative points"),
        (["--text", "cat.", "--backend", "classic"], "cannot find objects from text"),
        (["--point", "3,4", "--backend", "nonsense"], "unknown backend 'nonsense'"),
    ],
)
def test_unusable_requests_exit_2(scenes, tmp_path, capsys, argv, message):
    folder, _ = scenes
    code = main(["segment", str(folder), "--format", "coco", "--out", str(tmp_path / "o"), *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_no_images_found(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    code = main(
        ["segment", str(tmp_path / "empty"), "--point", "1,1", "--format", "coco", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "has no images" in err and "no images found" in err
    code = main(
        ["segment", str(tmp_path / "missing.png"), "--point", "1,1", "--format", "coco", "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_missing_weights_give_the_weights_message_and_exit_3(scenes, tmp_path, capsys):
    folder, _ = scenes  # LANGSAM_STUDIO_HOME is an empty temp folder: no weights installed
    code = main(
        [
            "segment",
            str(folder),
            "--point",
            "40,30",
            "--backend",
            "sam2",
            "--format",
            "coco",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "sam2" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_default_backend_without_weights_is_classic(monkeypatch):
    assert segment_command.default_backend("cat.") == "langsam"
    assert segment_command.default_backend(None) == "classic"  # no weights in the temp home


def test_export_failure_exits_4(scenes, tmp_path, capsys):
    folder, _ = scenes
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(
        [
            "segment",
            str(folder),
            "--point",
            "40,30",
            "--backend",
            "classic",
            "--format",
            "coco",
            "--out",
            str(blocker),
            "--no-progress",
        ]
    )
    assert code == 4 and "is not a folder" in capsys.readouterr().err


def test_cli_format_list_matches_the_registry():
    assert set(segment_command.FORMAT_NAMES) == set(FORMATS)
