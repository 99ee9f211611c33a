"""A person's session with the classic backend (no weights): open a folder, click and drag,
accept, label with digit keys, walk with D / A, then restart the app and find every mask again."""

from __future__ import annotations

import numpy as np

from desktop_app.core.annotation.document import ImageStatus
from desktop_app.core.annotation.project import ProjectFolder
from fixtures_app import click_image, drag_image, iou, key, wait_backend, wait_image


def _accept_candidate(qtbot, window) -> list[str]:
    qtbot.waitUntil(lambda: window.controller.candidates is not None, timeout=15_000)
    before = {o.id for o in window.controller.document.objects}
    window.canvas.setFocus()
    key(qtbot, window.canvas, "Return")
    qtbot.waitUntil(lambda: len(window.controller.document.objects) > len(before), timeout=5_000)
    return [o.id for o in window.controller.document.objects if o.id not in before]


def test_annotate_navigate_restart(qtbot, make_window, synthetic_folder):
    folder, truth = synthetic_folder.folder, synthetic_folder.truth
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    # file list: natural order and every image new
    assert window.file_list.visible_names() == ["img1.png", "img2.png", "img10.png"]
    assert {e.status for e in window.file_list.model.entries()} == {ImageStatus.NEW}

    # two labels besides the starting one: digit 2 = red, 3 = blue
    window.label_editor.add("red")
    window.label_editor.add("blue")
    assert window.label_list.names() == ["object", "red", "blue"]

    # a positive click on the red rectangle, accept, label it with key 2
    canvas = window.canvas
    click_image(qtbot, canvas, 55, 55)
    (red_id,) = _accept_candidate(qtbot, window)
    key(qtbot, canvas, "2")
    red = window.controller.document.get(red_id)
    assert red.label == "red"
    assert iou(red.mask, truth["img1.png"]["red"]) > 0.9

    # the box tool (W) around the blue disk, accept, label with 3
    key(qtbot, canvas, "W")
    drag_image(qtbot, canvas, (118, 58), (182, 122))
    (blue_id,) = _accept_candidate(qtbot, window)
    key(qtbot, canvas, "3")
    blue = window.controller.document.get(blue_id)
    assert blue.label == "blue" and blue.source == "box"
    assert iou(blue.mask, truth["img1.png"]["blue"]) > 0.85
    assert window.object_list.ids() == [red_id, blue_id]
    entry = window.file_list.model.entry("img1.png")
    assert entry.status == ImageStatus.IN_PROGRESS and entry.object_count == 2

    # D: next image (saving first); the file on disk holds both objects exactly
    key(qtbot, canvas, "D")
    wait_image(qtbot, window, "img2.png")
    saved = ProjectFolder(folder).load("img1.png")
    by_id = {o.id: o for o in saved.objects}
    assert np.array_equal(by_id[red_id].mask, red.mask) and by_id[red_id].label == "red"
    assert np.array_equal(by_id[blue_id].mask, blue.mask) and by_id[blue_id].label == "blue"
    assert saved.status == ImageStatus.IN_PROGRESS

    # one object on img2 with the active label (blue, from the last digit key)
    key(qtbot, canvas, "Q")
    click_image(qtbot, canvas, 100, 75)
    (green_id,) = _accept_candidate(qtbot, window)
    green = window.controller.document.get(green_id)
    assert green.label == "blue"
    assert iou(green.mask, truth["img2.png"]["green"]) > 0.9
    window.label_editor.rename("blue", "thing")  # renaming a class relabels the image's objects
    assert window.controller.document.get(green_id).label == "thing"
    key(qtbot, canvas, "Ctrl+Return")  # mark done
    assert window.controller.document.status == ImageStatus.DONE

    # A: back to img1, objects restored from disk
    key(qtbot, canvas, "A")
    wait_image(qtbot, window, "img1.png")
    assert [o.id for o in window.controller.document.objects] == [red_id, blue_id]
    assert window.object_list.ids() == [red_id, blue_id]

    # Undo / redo through the real shortcuts
    n = len(window.controller.document.objects)
    click_image(qtbot, canvas, 55, 55)
    _accept_candidate(qtbot, window)
    key(qtbot, canvas, "Ctrl+Z")
    assert len(window.controller.document.objects) == n
    key(qtbot, canvas, "Ctrl+Shift+Z")
    assert len(window.controller.document.objects) == n + 1
    key(qtbot, canvas, "Delete")  # the new object is selected: Delete removes it
    assert len(window.controller.document.objects) == n

    on_screen = {o.id: (o.label, o.mask.copy()) for o in window.controller.document.objects}
    window.close()  # saves what the last throttle interval had not written yet
    expected = {
        name: {o.id: (o.label, o.mask.copy()) for o in ProjectFolder(folder).load(name).objects}
        for name in ("img1.png", "img2.png")
    }
    assert expected["img1.png"].keys() == on_screen.keys() and len(on_screen) == n

    # restart: the last folder and image come back, every mask identical
    again = make_window([])
    wait_image(qtbot, again, "img1.png")
    assert again.label_list.names() == ["object", "red", "thing"]
    entries = {e.name: e for e in again.file_list.model.entries()}
    assert entries["img2.png"].status == ImageStatus.DONE and entries["img1.png"].object_count == n
    for name in ("img1.png", "img2.png"):
        if name != again.current_name:
            key(qtbot, again.canvas, "D")
            wait_image(qtbot, again, name)
        got = {o.id: (o.label, o.mask) for o in again.controller.document.objects}
        assert got.keys() == expected[name].keys()
        for oid, (label, mask) in expected[name].items():
            assert got[oid][0] == label
            assert np.array_equal(got[oid][1], mask)


def test_review_filter_walks_only_review_images(qtbot, make_window, synthetic_folder):
    from desktop_app.core.annotation.document import AnnotationObject

    project = ProjectFolder(synthetic_folder.folder)
    doc = project.load("img10.png")
    doc.add(
        AnnotationObject(
            label="yellow", mask=synthetic_folder.truth["img10.png"]["yellow"], source="batch", needs_review=True
        )
    )
    doc.status = ImageStatus.REVIEW
    project.save(doc)

    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    window.actions_by_name["filter_review"].trigger()
    assert window.file_list.visible_names() == ["img10.png"]
    window.open_image("img10.png")
    wait_image(qtbot, window, "img10.png")
    key(qtbot, window.canvas, "D")  # nothing after it in the filtered list
    assert window.current_name == "img10.png"
    key(qtbot, window.canvas, "Ctrl+Return")
    assert window.controller.document.status == ImageStatus.DONE
    assert not any(o.needs_review for o in window.controller.document.objects)
    window.flush_saves()
    assert project.summary("img10.png").status == ImageStatus.DONE
