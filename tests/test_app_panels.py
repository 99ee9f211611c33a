"""The side panels as a person uses them: object list (select, hide, merge, subtract, relabel with
Ctrl+E), label list (colours saved with the folder), Ctrl+O on an image, Ctrl+T + Enter."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog

from desktop_app.core.annotation.document import AnnotationObject
from desktop_app.core.annotation.labels import LabelSet
from desktop_app.core.annotation.project import ProjectFolder
from fixtures_app import key, wait_backend, wait_image


def _seed(folder, truth):
    project = ProjectFolder(folder)
    project.save_labels(LabelSet(["red", "blue"]))
    doc = project.load("img1.png")
    doc.add(AnnotationObject(label="red", mask=truth["img1.png"]["red"], id="r1"))
    doc.add(AnnotationObject(label="blue", mask=truth["img1.png"]["blue"], id="b1"))
    both = truth["img1.png"]["red"].copy()
    both[60:100, 60:170] = True
    doc.add(AnnotationObject(label="red", mask=both, id="big"))
    project.save(doc)
    return project


def _row_rect(tree, row: int):
    return tree.visualItemRect(tree.topLevelItem(row))


def test_object_list_actions(qtbot, make_window, synthetic_folder):
    folder, truth = synthetic_folder.folder, synthetic_folder.truth
    project = _seed(folder, truth)
    window = make_window([str(folder / "img1.png")])  # an image path opens its folder
    wait_image(qtbot, window, "img1.png")
    assert window.project.folder == folder
    tree = window.object_list.tree
    assert window.object_list.ids() == ["r1", "b1", "big"]

    # click a row: the object is selected in the controller (and on the canvas)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=_row_rect(tree, 1).center())
    assert window.controller.selected_ids == ["b1"]
    # untick it: hidden, saved
    item = tree.topLevelItem(1)
    item.setCheckState(0, Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: window.controller.document.get("b1").hidden)
    window.flush_saves()
    assert project.load("img1.png").get("b1").hidden

    # Ctrl+E with the object list focused: pick "red" in the dialog
    def answer():
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, QInputDialog)
        dialog.setTextValue("red")
        dialog.accept()

    QTimer.singleShot(200, answer)
    tree.setFocus()
    key(qtbot, tree, "Ctrl+E")
    assert window.controller.document.get("b1").label == "red"
    window.activateWindow()  # the modal dialog took the activation (offscreen does not give it back)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)

    # subtract: select 'big' then 'r1' (Ctrl+click) and press Ctrl+Shift+M while the list has focus
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=_row_rect(tree, 2).center())
    qtbot.mouseClick(
        tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, _row_rect(tree, 0).center()
    )
    assert window.controller.selected_ids == ["r1", "big"] or window.controller.selected_ids == ["big", "r1"]
    window.controller.select(["big", "r1"])  # the first selected is the one cut
    key(qtbot, tree, "Ctrl+Shift+M")
    big = window.controller.document.get("big").mask
    expected = np.zeros_like(big)
    expected[60:100, 60:170] = True
    expected &= ~truth["img1.png"]["red"]
    assert np.array_equal(big, expected)

    # merge with the list's button: r1 + b1 -> r1, b1 removed
    window.controller.select(["r1", "b1"])
    qtbot.mouseClick(window.object_list.buttons["merge"], Qt.MouseButton.LeftButton)
    doc = window.controller.document
    assert [o.id for o in doc.objects] == ["r1", "big"]
    assert np.array_equal(doc.get("r1").mask, truth["img1.png"]["red"] | truth["img1.png"]["blue"])
    # Delete from the list
    window.controller.select(["big"])
    key(qtbot, tree, "Delete")
    assert [o.id for o in window.controller.document.objects] == ["r1"]
    window.close()
    saved = ProjectFolder(folder).load("img1.png")
    assert [o.id for o in saved.objects] == ["r1"]
    assert np.array_equal(saved.get("r1").mask, truth["img1.png"]["red"] | truth["img1.png"]["blue"])


def test_label_colours_belong_to_the_folder(qtbot, make_window, synthetic_folder):
    folder = synthetic_folder.folder
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    window.label_editor.add("car")
    window.label_editor.recolour("car", "#123456")
    key(qtbot, window.canvas, "2")
    assert window.controller.active_label == "car"
    window.label_editor.delete("object")
    assert ProjectFolder(folder).load_labels().names == ["car"]
    assert ProjectFolder(folder).load_labels().get("car").color == "#123456"
    assert window.label_list.names() == ["car"]


def test_ctrl_t_focuses_prompt_and_enter_asks_the_backend(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    window.prompt_bar.set_text_supported(True)  # as with Lang-SAM loaded
    key(qtbot, window.canvas, "Ctrl+T")
    assert window.prompt_bar.field.hasFocus()
    with qtbot.waitSignal(window.prompt_bar.run_requested) as blocker:
        qtbot.keyClicks(window.prompt_bar.field, "red square")
        qtbot.keyClick(window.prompt_bar.field, Qt.Key.Key_Return)
    assert blocker.args[0] == "red square"
    # the classic backend cannot read text: the person is told so, nothing is added
    qtbot.waitUntil(lambda: window.status_panel.error_text() != "", timeout=10_000)
    assert "Traceback" not in window.status_panel.error_text()
    assert window.controller.document.objects == []
    assert window.canvas.hasFocus()  # Enter now accepts on the canvas
