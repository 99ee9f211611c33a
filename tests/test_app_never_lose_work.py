"""Issue 8, the GUI side: never lose or misroute a person's work, and always say what went wrong.

Every test drives the real window like a person (keys, clicks, buttons) and then checks both
what is on disk and what is on screen.
"""

from __future__ import annotations

import errno
import json
import sys

import numpy as np
import pytest

from desktop_app.core.annotation.document import AnnotationObject
from desktop_app.core.annotation.project import ProjectFolder
from desktop_app.core.navigation import NavState
from fixtures_app import click_image, key, wait_backend, wait_image

pytestmark = pytest.mark.gui


# -- helpers -----------------------------------------------------------------------------------
def _accept_click(qtbot, window, x, y) -> str:
    n = len(window.controller.document.objects)
    window.activateWindow()
    window.raise_()
    window.canvas.setFocus()
    click_image(qtbot, window.canvas, x, y)
    qtbot.waitUntil(lambda: window.controller.candidates is not None, timeout=15_000)
    key(qtbot, window.canvas, "Return")
    qtbot.waitUntil(lambda: len(window.controller.document.objects) == n + 1, timeout=5_000)
    return window.controller.document.objects[-1].id


def _on_disk(folder, name) -> list[str]:
    path = folder / ".langsam" / f"{name}.json"
    if not path.exists():
        return []
    return [o.id for o in ProjectFolder(folder).load(name).objects]


def _wait_failed(qtbot, window, name, timeout=10_000):
    qtbot.waitUntil(
        lambda: window.navigation.nav.status.state is NavState.FAILED and window.navigation.nav.status.name == name,
        timeout=timeout,
    )


def _add_bad_files(folder):
    good = (folder / "img1.png").read_bytes()
    (folder / "img3_corrupt.png").write_bytes(good[:16] + bytes(range(256)) * 8)
    (folder / "img4_truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "img5_empty.png").write_bytes(b"")
    (folder / "img6_text.jpg").write_text("this is not a picture\n")
    return ["img3_corrupt.png", "img4_truncated.png", "img5_empty.png", "img6_text.jpg"]


class _Disk:
    """The lowest write of a document fails while ``error`` is set (ENOSPC, EACCES …)."""

    def __init__(self, monkeypatch):
        import desktop_app.core.annotation.project as project_module
        from desktop_app.core.annotation.atomic import SaveError

        self.error: int | None = None
        real = project_module.write_bytes_atomic

        def write(path, data):
            if self.error is not None:
                why = "the disk is full" if self.error == errno.ENOSPC else "permission denied"
                raise SaveError(self.error, f"could not save '{path}': {errno.errorcode[self.error]} ({why})")
            return real(path, data)

        monkeypatch.setattr(project_module, "write_bytes_atomic", write)


def _answer_modal(qtbot, button_text: str, seen: list):
    """Click ``button_text`` on the next modal message box (as a person would)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    def poll():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            for b in box.buttons():
                if b.text().replace("&", "") == button_text:
                    b.click()
                    return
        QTimer.singleShot(20, poll)

    QTimer.singleShot(20, poll)


# -- 1. navigation as one state machine ---------------------------------------------------------
def test_failed_images_are_shown_as_failed_and_edits_never_reach_the_previous_image(
    qtbot, make_window, synthetic_folder
):
    folder = synthetic_folder.folder
    bad = _add_bad_files(folder)
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    assert window.file_list.visible_names() == ["img1.png", "img2.png", *bad, "img10.png"]

    key(qtbot, window.canvas, "D")
    wait_image(qtbot, window, "img2.png")
    for name in bad:
        key(qtbot, window.canvas, "D")
        _wait_failed(qtbot, window, name)
        # on screen: the canvas says the truth, the file list marks it, nothing is editable
        assert window.navigation.empty.isVisible() and window.navigation.empty.kind == "failed"
        assert f"{name} could not be opened" in window.navigation.empty.text()
        assert window.file_list.model.note(name) == "cannot open"
        assert window.canvas.image is None and window.controller.document is None
        # a click and Enter on the failed image: nothing reaches img2
        click_image(qtbot, window.canvas, 100, 75)
        key(qtbot, window.canvas, "Return")
        qtbot.wait(150)
        assert window.controller.document is None
        assert "Unexpected" not in window.status_panel.error_text()
    key(qtbot, window.canvas, "D")
    wait_image(qtbot, window, "img10.png")
    assert not window.navigation.empty.isVisible()
    assert _on_disk(folder, "img2.png") == []  # nothing was misrouted to the image before

    # back onto a failed image with A: failed again, still skippable
    key(qtbot, window.canvas, "A")
    _wait_failed(qtbot, window, "img6_text.jpg")

    # fast D then A before the next image appears: the A counts (the last one wins)
    window.open_image("img1.png")
    wait_image(qtbot, window, "img1.png")
    key(qtbot, window.canvas, "D")
    key(qtbot, window.canvas, "A")
    qtbot.wait(400)
    wait_image(qtbot, window, "img1.png")
    assert window.navigation.nav.status.state is NavState.SHOWING
    assert window.file_list.model._current == "img1.png"
    _accept_click(qtbot, window, 55, 55)
    window.flush_saves()
    assert len(_on_disk(folder, "img1.png")) == 1 and _on_disk(folder, "img2.png") == []


def test_screenshot_failed_state(qtbot, make_window, synthetic_folder, tmp_path):
    import os

    folder = synthetic_folder.folder
    _add_bad_files(folder)
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    window.open_image("img4_truncated.png")
    _wait_failed(qtbot, window, "img4_truncated.png")
    os.makedirs("/tmp/work", exist_ok=True)
    window.grab().save("/tmp/work/shot-failed.png")


# -- 3. failed saves ----------------------------------------------------------------------------
def test_full_disk_keeps_work_marks_it_retries_and_asks_on_close(
    qtbot, make_window, synthetic_folder, monkeypatch, tmp_path
):
    folder = synthetic_folder.folder
    disk = _Disk(monkeypatch)
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    window.autosaver.retry_delays_ms = (300,)
    first = _accept_click(qtbot, window, 55, 55)
    window.flush_saves()
    assert _on_disk(folder, "img1.png") == [first]

    disk.error = errno.ENOSPC
    second = _accept_click(qtbot, window, 150, 90)
    qtbot.waitUntil(lambda: window.file_list.model.note("img1.png") == "not saved", timeout=5_000)
    assert "not saved" in window.windowTitle()
    assert "disk is full" in window.notification_bar.text_label.text()
    assert "kept in memory" in window.notification_bar.text_label.text()
    assert _on_disk(folder, "img1.png") == [first]  # the old file is intact

    # D then A: the object is still there (kept in memory, not read back from disk)
    key(qtbot, window.canvas, "D")
    wait_image(qtbot, window, "img2.png")
    key(qtbot, window.canvas, "A")
    wait_image(qtbot, window, "img1.png")
    assert [o.id for o in window.controller.document.objects] == [first, second]
    assert window.object_list.ids() == [first, second]

    # space freed: the retry timer saves it, the marks go away
    disk.error = None
    qtbot.waitUntil(lambda: _on_disk(folder, "img1.png") == [first, second], timeout=10_000)
    qtbot.waitUntil(lambda: window.file_list.model.note("img1.png") == "", timeout=5_000)
    qtbot.waitUntil(lambda: "not saved" not in window.windowTitle(), timeout=5_000)
    assert not window.notification_bar.isVisible()

    # closing with unsaved work asks; Cancel keeps the window open
    disk.error = errno.ENOSPC
    third = _accept_click(qtbot, window, 100, 20)
    qtbot.waitUntil(lambda: window.file_list.model.note("img1.png") == "not saved", timeout=5_000)
    seen: list = []
    _answer_modal(qtbot, "Cancel", seen)
    window.close()
    assert seen and "not saved" in seen[0] and window.isVisible()
    # Save again after freeing space: saved, then closed
    disk.error = None
    _answer_modal(qtbot, "Save again", [])
    window.close()
    assert not window.isVisible()
    assert _on_disk(folder, "img1.png") == [first, second, third]


def test_read_only_folder_offers_another_folder(qtbot, make_window, synthetic_folder, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    folder = synthetic_folder.folder
    disk = _Disk(monkeypatch)
    disk.error = errno.EACCES
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    oid = _accept_click(qtbot, window, 55, 55)
    qtbot.waitUntil(
        lambda: window.notification_bar.button("Save annotations to another folder…") is not None, timeout=5_000
    )
    assert "permission denied" in window.notification_bar.text_label.text()
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(other))
    disk.error = None  # writes elsewhere work (the patch only simulates the folder)
    window.notification_bar.button("Save annotations to another folder…").click()
    qtbot.waitUntil(lambda: (other / "img1.png.json").exists(), timeout=5_000)
    data = json.loads((other / "img1.png.json").read_text())
    assert [o["id"] for o in data["objects"]] == [oid]
    assert window.settings.annotation_folders[str(folder.resolve())] == str(other.resolve())
    qtbot.waitUntil(lambda: window.file_list.model.note("img1.png") == "", timeout=5_000)
    assert (
        not window.notification_bar.isVisible()
        or "img1.png is not saved" not in window.notification_bar.text_label.text()
    )


# -- 10. notifications ----------------------------------------------------------------------------
def test_notifications_keep_full_text_history_and_the_unexpected_error_report(
    qtbot, make_window, synthetic_folder, monkeypatch
):
    from desktop_app.gui import app as app_module

    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    long = "the model server answered with something long: " + "x" * 240 + " END"
    window.show_error(long, hint="Check the server address in the settings.")
    qtbot.wait(300)
    assert long in window.notification_bar.text_label.text().replace("\u200b", "")  # never cut
    assert window.width() <= 1400  # a long word wraps, it does not widen the window
    assert "Check the server address" in window.notification_bar.text_label.text()
    for i in range(60):
        window.status_panel.center.notify(f"message {i}")
    assert len(window.status_panel.center.history()) == 50
    dialog = window.status_panel.bell.show_history()
    texts = dialog.texts()
    assert len(texts) == 50 and "message 59" in texts[0]
    window.grab().save("/tmp/work/shot-notifications-window.png")
    dialog.grab().save("/tmp/work/shot-notifications.png")
    dialog.close()
    window.notification_bar.dismiss_button.click()
    assert window.status_panel.error_text() == "" or long not in window.status_panel.error_text()

    # an unexpected error: says what failed and claims "saved" only when it was
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    app_module._install_excepthook()
    try:
        raise KeyError("abc123")
    except KeyError:
        sys.excepthook(*sys.exc_info())
    text = window.status_panel.error_text()
    assert "KeyError" in text and "Your annotations were saved" in text

    disk = _Disk(monkeypatch)
    wait_backend(qtbot, window, "classic")
    window.autosaver.retry_delays_ms = ()
    disk.error = errno.ENOSPC
    _accept_click(qtbot, window, 55, 55)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    text = window.status_panel.error_text()
    assert "RuntimeError" in text and "were saved" not in text and "could NOT be saved" in text
    assert "img1.png" in text
    disk.error = None
    window.autosaver.flush()


# -- 5. undo kept per image -------------------------------------------------------------------
def test_undo_survives_leaving_and_coming_back(qtbot, make_window, synthetic_folder):
    folder = synthetic_folder.folder
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    oid = _accept_click(qtbot, window, 55, 55)
    key(qtbot, window.canvas, "D")
    wait_image(qtbot, window, "img2.png")
    key(qtbot, window.canvas, "A")
    wait_image(qtbot, window, "img1.png")
    assert window.object_list.ids() == [oid]
    key(qtbot, window.canvas, "Ctrl+Z")
    assert window.controller.document.objects == []
    assert window.object_list.ids() == []
    window.flush_saves()
    assert _on_disk(folder, "img1.png") == []
    key(qtbot, window.canvas, "Ctrl+Shift+Z")
    assert [o.id for o in window.controller.document.objects] == [oid]


# -- 6. deferred slots ------------------------------------------------------------------------------
def test_visibility_toggle_and_image_switch_in_one_turn(qtbot, make_window, synthetic_folder):
    from PySide6.QtCore import Qt

    folder = synthetic_folder.folder
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    oid = _accept_click(qtbot, window, 55, 55)
    key(qtbot, window.canvas, "D")
    wait_image(qtbot, window, "img2.png")
    other = _accept_click(qtbot, window, 100, 75)
    window.flush_saves()
    # untick img2's object and switch to img1 in the same event-loop turn
    item = window.object_list.tree.topLevelItem(0)
    item.setCheckState(0, Qt.CheckState.Unchecked)
    window.open_image("img1.png")
    wait_image(qtbot, window, "img1.png")
    qtbot.wait(100)
    doc1 = window.controller.document
    assert [o.id for o in doc1.objects] == [oid] and not doc1.get(oid).hidden
    assert "Unexpected" not in window.status_panel.error_text()
    window.flush_saves()
    assert _on_disk(folder, "img2.png") == [other]


# -- 4. empty folder ------------------------------------------------------------------------------
def test_empty_folder_clears_the_canvas(qtbot, make_window, synthetic_folder, tmp_path):
    folder = synthetic_folder.folder
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    oid = _accept_click(qtbot, window, 55, 55)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert window.navigation.open_folder(str(empty))
    assert window.canvas.image is None and window.controller.document is None
    assert window.autosaver.document is None
    assert window.navigation.empty.kind == "empty-folder" and "No images" in window.navigation.empty.text()
    assert window.object_list.ids() == []
    click_image(qtbot, window.canvas, 100, 75)
    key(qtbot, window.canvas, "Return")
    key(qtbot, window.canvas, "Ctrl+Z")
    qtbot.wait(200)
    window.flush_saves()
    assert _on_disk(folder, "img1.png") == [oid]
    assert not (empty / ".langsam").exists() or not any((empty / ".langsam").glob("*.json"))


# -- 2. the pixel limit ----------------------------------------------------------------------------
def test_image_past_the_pixel_limit_says_so_and_opens_anyway(qtbot, make_window, synthetic_folder, monkeypatch):
    from PIL import Image

    folder = synthetic_folder.folder
    Image.new("1", (20000, 20000)).save(folder / "img5_huge.png")  # 400 M pixels, a ~60 KB file
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    window.open_image("img5_huge.png")
    _wait_failed(qtbot, window, "img5_huge.png")
    assert window.navigation.nav.status.too_large
    assert "20000x20000" in window.navigation.empty.text() and "limit" in window.navigation.empty.text()
    assert window.navigation.empty.button("Open anyway") is not None
    assert window.file_list.model.note("img5_huge.png") == "too large"
    assert "Unexpected" not in window.status_panel.error_text()

    # a low limit for the others: "Open anyway" opens it (and only it)
    window.controller.cache.max_pixels = 100 * 100
    window.controller.cache.clear()
    window.open_image("img2.png")
    _wait_failed(qtbot, window, "img2.png")
    window.navigation.empty.button("Open anyway").click()
    wait_image(qtbot, window, "img2.png")
    assert window.canvas.image is not None and not window.navigation.empty.isVisible()
    assert window.file_list.model.note("img2.png") == ""
    key(qtbot, window.canvas, "D")  # still guarded
    qtbot.wait(50)


# -- 7. damaged / mismatched annotation file --------------------------------------------------------
def test_resized_image_keeps_the_old_annotations_as_a_backup(qtbot, make_window, synthetic_folder):
    from PIL import Image

    folder = synthetic_folder.folder
    project = ProjectFolder(folder)
    doc = project.load("img1.png")
    for x in (10, 60, 110):
        m = np.zeros((doc.height, doc.width), dtype=bool)
        m[10:40, x : x + 30] = True
        doc.add(AnnotationObject(label="object", mask=m, source="brush"))
    project.save(doc)
    Image.new("RGB", (300, 200), (120, 120, 120)).save(folder / "img1.png")  # the image was replaced

    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    backups = list((folder / ".langsam" / "backups").glob("img1.png.json.*"))
    assert len(backups) == 1
    assert len(json.loads(backups[0].read_text())["objects"]) == 3
    note = window.status_panel.center.latest_open()
    assert note is not None and str(backups[0]) in note.text
    assert window.notification_bar.button("Open backup") is not None
    assert window.controller.document.objects == []
    _accept_click(qtbot, window, 150, 100)
    window.flush_saves()
    assert len(_on_disk(folder, "img1.png")) == 1
    assert len(json.loads(backups[0].read_text())["objects"]) == 3  # never overwritten


# -- 8. two windows on one folder ----------------------------------------------------------------
def test_second_window_does_not_silently_overwrite(qtbot, make_window, synthetic_folder):
    folder = synthetic_folder.folder
    a = make_window([str(folder)])
    wait_image(qtbot, a, "img1.png")
    b = make_window([str(folder)])
    wait_image(qtbot, b, "img1.png")
    wait_backend(qtbot, a, "classic")
    wait_backend(qtbot, b, "classic")
    theirs = _accept_click(qtbot, a, 55, 55)
    a.flush_saves()
    assert _on_disk(folder, "img1.png") == [theirs]
    mine = _accept_click(qtbot, b, 150, 90)
    qtbot.waitUntil(lambda: b.notification_bar.button("Keep mine") is not None, timeout=5_000)
    assert "changed by another window" in b.notification_bar.text_label.text()
    assert _on_disk(folder, "img1.png") == [theirs]  # not overwritten
    assert b.file_list.model.note("img1.png") == "not saved"
    b.notification_bar.button("Keep mine").click()
    qtbot.waitUntil(lambda: _on_disk(folder, "img1.png") == [mine], timeout=5_000)
    backups = list((folder / ".langsam" / "backups").glob("img1.png.json.replaced-*"))
    assert backups and theirs in backups[0].read_text()


# -- 9. deleting a label that objects use -----------------------------------------------------------
def test_deleting_a_used_label_asks_and_it_does_not_come_back(qtbot, make_window, synthetic_folder):
    folder = synthetic_folder.folder
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    window.label_editor.add("red")
    red = _accept_click(qtbot, window, 55, 55)
    key(qtbot, window.canvas, "D")
    wait_image(qtbot, window, "img2.png")
    green = _accept_click(qtbot, window, 100, 75)  # also "red" (the active label)
    window.flush_saves()

    seen: list = []
    _answer_modal(qtbot, "Cancel", seen)
    window.label_list.ask_delete("red")
    assert seen and "used by 1 object" in seen[0] and "red" in window.label_list.names()

    _answer_modal(qtbot, "Relabel them to 'object'", seen)
    window.label_list.ask_delete("red")
    assert "red" not in window.label_list.names()
    assert window.controller.document.get(green).label == "object"
    window.flush_saves()
    assert {o.label for o in ProjectFolder(folder).load("img1.png").objects} == {"object"}
    # the label does not come back: not on the next image, not after re-reading the folder
    window.actions_by_name["prev_image"].trigger()  # A (the modal box left the focus elsewhere)
    wait_image(qtbot, window, "img1.png")
    assert window.controller.document.get(red).label == "object"
    window.navigation.refresh_file_list()
    assert "red" not in window.label_list.names()
    assert "red" not in ProjectFolder(folder).load_labels().names
