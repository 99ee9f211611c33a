"""Export from the running app (Ctrl+Shift+E): the written files load in pycocotools / labelme's
conventions and hold exactly the masks of the saved annotations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from desktop_app.core.annotation.document import AnnotationObject, ImageStatus
from desktop_app.core.annotation.project import ProjectFolder
from fixtures_app import click_image, key, wait_backend, wait_image


def _run_export(qtbot, dialog, fmt: str, scope: str = "folder") -> list[Path]:
    dialog.set_format(fmt)
    dialog.set_scope(scope)
    with qtbot.waitSignal(dialog.exported, timeout=30_000) as blocker:
        qtbot.mouseClick(dialog.export_button, _left())
    return blocker.args[0]


def _left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_export_formats_from_the_app(qtbot, make_window, synthetic_folder):
    folder, truth = synthetic_folder.folder, synthetic_folder.truth
    project = ProjectFolder(folder)
    earlier = project.load("img2.png")  # annotated in an earlier session
    earlier.add(AnnotationObject(label="green", mask=truth["img2.png"]["green"]))
    earlier.status = ImageStatus.DONE
    project.save(earlier)

    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    window.label_editor.add("red")  # becomes the active label
    click_image(qtbot, window.canvas, 55, 55)
    qtbot.waitUntil(lambda: window.controller.candidates is not None, timeout=15_000)
    key(qtbot, window.canvas, "Return")
    qtbot.waitUntil(lambda: len(window.controller.document.objects) == 1)

    key(qtbot, window.canvas, "Ctrl+Shift+E")
    dialog = window._dialogs["export"]
    assert dialog.isVisible()
    dialog.tolerance.setValue(0)  # exact pixel-edge polygons (the default simplifies; see test_export_options)
    saved = {n: ProjectFolder(folder).load(n) for n in ("img1.png", "img2.png")}  # flushed by the dialog
    assert [o.label for o in saved["img1.png"].objects] == ["red"]

    # COCO: pycocotools reads it; every annotation decodes to the saved mask exactly
    from pycocotools.coco import COCO

    (coco_path,) = _run_export(qtbot, dialog, "coco")
    coco = COCO(str(coco_path))
    names = {img["id"]: img["file_name"] for img in coco.dataset["images"]}
    assert sorted(names.values()) == ["img1.png", "img2.png"]
    cats = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    # the project's label order: the starting label, labels met in the folder, then added ones
    assert [cats[i] for i in sorted(cats)] == ["object", "green", "red"] == window.label_editor.labels.names
    anns = coco.dataset["annotations"]
    assert len(anns) == 2
    for ann in anns:
        doc = saved[names[ann["image_id"]]]
        (obj,) = doc.objects
        assert cats[ann["category_id"]] == obj.label
        assert np.array_equal(coco.annToMask(ann).astype(bool), obj.mask)

    # labelme: one JSON per image with labelme's fields; polygons rasterise to the masks
    paths = _run_export(qtbot, dialog, "labelme")
    assert sorted(p.name for p in paths) == ["img1.json", "img2.json"]
    for path in paths:
        data = json.loads(Path(path).read_text())
        doc = saved[Path(path).stem + ".png"]
        assert data["imageData"] is None and data["flags"] == {}
        assert (data["imageHeight"], data["imageWidth"]) == (doc.height, doc.width)
        assert (Path(path).parent / data["imagePath"]).resolve() == (folder / doc.image_name).resolve()
        (shape,) = data["shapes"]
        (obj,) = doc.objects
        assert shape["label"] == obj.label and shape["shape_type"] == "polygon"
        canvas = Image.new("L", (doc.width, doc.height), 0)  # labelme's shape_to_mask
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in shape["points"]], outline=1, fill=1)
        assert np.array_equal(np.asarray(canvas, dtype=bool), obj.mask)

    # PNG, current image only: the per-object mask PNG is the mask
    paths = _run_export(qtbot, dialog, "png", scope="current")
    object_pngs = [p for p in paths if p.suffix == ".png" and "img1" in p.name and "class" not in p.name]
    assert object_pngs, paths
    per_object = [np.asarray(Image.open(p)) > 0 for p in object_pngs]
    assert any(np.array_equal(m, saved["img1.png"].objects[0].mask) for m in per_object)

    # YOLO-seg: a label file per image with normalised polygons of the right class
    paths = _run_export(qtbot, dialog, "yolo")
    label_files = {p.name: p for p in paths if p.suffix == ".txt" and p.name.startswith("img")}
    line = label_files["img2.txt"].read_text().split()
    assert int(line[0]) == window.label_editor.labels.index_of("green")
    coords = np.array(line[1:], dtype=float).reshape(-1, 2)
    assert coords.min() >= 0 and coords.max() <= 1
    xs, ys = coords[:, 0] * 200, coords[:, 1] * 150
    assert 55 <= xs.min() <= 65 and 135 <= xs.max() <= 145 and 35 <= ys.min() <= 45 and 105 <= ys.max() <= 115
    dialog.close()
