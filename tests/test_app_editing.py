"""Editing shapes (issue 12) as a person does it: the Rectangle tool, vertex editing, copy /
paste / duplicate across images, select all, redo keys, context menus, drag and drop, and File →
Open Recent. Real mouse and key events on the real window; assertions on the document, the files
on disk and the screen."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from desktop_app.core.annotation.project import ProjectFolder
from desktop_app.core.object_ops import outline_to_mask
from fixtures_app import IMAGE_H, IMAGE_W, drag_image, key, screen_point, wait_backend, wait_image


def _rect(x0, y0, x1, y1, w=IMAGE_W, h=IMAGE_H):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _draw_rectangle(qtbot, window, a, b) -> str:
    doc = window.controller.document
    before = {o.id for o in doc.objects}
    key(qtbot, window.canvas, "R")
    drag_image(qtbot, window.canvas, a, b)
    (new,) = [o.id for o in doc.objects if o.id not in before]
    return new


def _right_click(qtbot, widget, pos: QPoint) -> None:
    """A right click through the window system (as a mouse does): Qt then sends the widget its
    mouse events and the context-menu event."""
    top = widget.window()
    qtbot.mouseClick(top.windowHandle(), Qt.MouseButton.RightButton, pos=widget.mapTo(top, pos))


def _menu_click(qtbot, menu, text: str) -> None:
    qtbot.waitUntil(menu.isVisible, timeout=2_000)
    (action,) = [a for a in menu.actions() if a.text().replace("&", "") == text]
    assert action.isEnabled(), text
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())


def _hover(canvas, x: float, y: float) -> None:
    """A real mouse move (no button) over image point (x, y)."""
    from PySide6.QtGui import QMouseEvent

    pos = QPointF(screen_point(canvas, x, y))
    QApplication.sendEvent(
        canvas,
        QMouseEvent(
            QMouseEvent.Type.MouseMove,
            pos,
            canvas.mapToGlobal(pos),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        ),
    )


def _pixel(canvas, x: float, y: float) -> QColor:
    image = canvas.grab().toImage()
    p = screen_point(canvas, x, y)
    return QColor(image.pixel(p.x(), p.y()))


def test_rectangle_tool_and_vertex_editing(qtbot, make_window, synthetic_folder):
    folder = synthetic_folder.folder
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    canvas, controller = window.canvas, window.controller

    # R: drag a rectangle over the red block -> an object that IS the rectangle, marked as one
    rid = _draw_rectangle(qtbot, window, (20, 30), (90, 80))
    obj = controller.document.get(rid)
    assert obj.kind == "rectangle" and obj.source == "rectangle"
    assert np.array_equal(obj.mask, _rect(20, 30, 90, 80))
    window.flush_saves()
    raw = (folder / ".langsam" / "img1.png.json").read_text()
    assert '"kind": "rectangle"' in raw
    assert ProjectFolder(folder).load("img1.png").get(rid).kind == "rectangle"

    # V, double-click the object: its outline shows 4 draggable vertices (the corners)
    key(qtbot, canvas, "V")
    qtbot.mouseDClick(canvas, Qt.MouseButton.LeftButton, pos=screen_point(canvas, 55, 55))
    editor = canvas.vertex_editor
    assert editor.active and editor.object_id == rid
    (ring,) = editor.outline.rings
    assert sorted(map(tuple, ring.tolist())) == [(20, 30), (20, 80), (90, 30), (90, 80)]
    # on screen: a vertex square at the corner, the label fill inside
    assert _pixel(canvas, 90, 80).lightness() > 200

    steps = controller.history.stack.count()
    # drag the bottom-right corner out, insert a vertex on the top edge by dragging it up,
    # right-click the bottom-left corner to delete it
    drag_image(qtbot, canvas, (90, 80), (110, 100))
    drag_image(qtbot, canvas, (55, 30), (55, 10))
    _right_click(qtbot, canvas, screen_point(canvas, 20, 80))
    assert len(editor.outline.rings[0]) == 4  # 4 + 1 inserted - 1 deleted
    expected = outline_to_mask(editor.outline, height=IMAGE_H, width=IMAGE_W)
    assert controller.document.get(rid).mask is obj.mask  # nothing applied yet
    key(qtbot, canvas, "Return")  # apply
    assert not editor.active
    edited = controller.document.get(rid)
    assert np.array_equal(edited.mask, expected)
    assert edited.mask[90, 100] and edited.mask[15, 55]  # the dragged corner and the new vertex
    assert not edited.mask[75, 25] and not edited.mask[5, 55]  # the deleted corner's triangle
    assert edited.kind == "mask"  # no longer a rectangle
    assert controller.history.stack.count() == steps + 1  # ONE undo step

    # undo / redo with every redo key
    key(qtbot, canvas, "Ctrl+Z")
    assert np.array_equal(controller.document.get(rid).mask, _rect(20, 30, 90, 80))
    assert controller.document.get(rid).kind == "rectangle"
    key(qtbot, canvas, "Ctrl+Y")
    assert np.array_equal(controller.document.get(rid).mask, expected)
    key(qtbot, canvas, "Ctrl+Z")
    key(qtbot, canvas, "Ctrl+Shift+Z")
    assert np.array_equal(controller.document.get(rid).mask, expected)
    window.flush_saves()
    saved = ProjectFolder(folder).load("img1.png").get(rid)
    assert np.array_equal(saved.mask, expected) and saved.kind == "mask"

    # Ctrl+J on the selected object, Delete on a hovered vertex, Esc: nothing changes
    controller.select([rid])
    key(qtbot, canvas, "Ctrl+J")
    assert editor.active
    n = len(editor.outline.rings[0])
    vx, vy = editor.outline.rings[0][0]
    _hover(canvas, vx, vy)
    assert editor.hovered_vertex == (0, 0)
    key(qtbot, canvas, "Delete")  # deletes the vertex, not the object
    assert len(editor.outline.rings[0]) == n - 1
    assert rid in [o.id for o in controller.document.objects]
    key(qtbot, canvas, "Escape")
    assert not editor.active
    assert np.array_equal(controller.document.get(rid).mask, expected)
    assert controller.history.stack.count() == steps + 1


def test_vertex_editing_keeps_holes(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    canvas, controller = window.canvas, window.controller
    ring = _rect(40, 40, 160, 120) & ~_rect(70, 60, 130, 100)  # a frame with a hole
    from desktop_app.core.annotation.document import AnnotationObject
    from desktop_app.gui.commands import AddObjectsCommand

    obj = AnnotationObject(label="frame", mask=ring, source="brush")
    controller.history.push(AddObjectsCommand(controller.history, objects=[obj]))
    key(qtbot, canvas, "V")
    qtbot.mouseDClick(canvas, Qt.MouseButton.LeftButton, pos=screen_point(canvas, 50, 50))
    editor = canvas.vertex_editor
    assert editor.outline.hole == [False, True]
    drag_image(qtbot, canvas, (130, 100), (140, 110))  # pull the hole's corner
    key(qtbot, canvas, "Return")
    mask = controller.document.get(obj.id).mask
    assert not mask[80, 100]  # the hole is still a hole
    assert not mask[104, 134]  # ... and it grew towards the dragged corner
    assert mask[45, 45] and mask[115, 150]


def test_copy_paste_duplicate_across_images(qtbot, make_window, synthetic_folder):
    folder = synthetic_folder.folder
    small = np.full((80, 100, 3), 128, dtype=np.uint8)
    Image.fromarray(small).save(folder / "small.png")  # a smaller image after img10.png
    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    canvas, controller = window.canvas, window.controller
    a = _draw_rectangle(qtbot, window, (20, 30), (90, 70))
    b = _draw_rectangle(qtbot, window, (120, 100), (190, 140))
    controller.select([])
    key(qtbot, canvas, "Ctrl+A")
    assert controller.selected_ids == [a, b]
    assert set(window.object_list.selected_ids()) == {a, b}
    key(qtbot, canvas, "Ctrl+C")
    masks = {o.label: o.mask.copy() for o in controller.document.objects}
    source = [controller.document.get(a).mask.copy(), controller.document.get(b).mask.copy()]

    # D: the next image (same size): Ctrl+V keeps the positions
    key(qtbot, canvas, "D")
    wait_image(qtbot, window, "img2.png")
    key(qtbot, canvas, "Ctrl+V")
    pasted = controller.document.objects
    assert len(pasted) == 2 and {o.id for o in pasted}.isdisjoint({a, b})
    assert all(np.array_equal(o.mask, m) for o, m in zip(pasted, source))
    assert all(o.kind == "rectangle" for o in pasted)
    assert controller.selected_ids == [o.id for o in pasted]  # the pasted objects are selected
    assert window.object_list.ids() == [o.id for o in pasted]

    # Ctrl+D duplicates the selection in place; Ctrl+Z takes it back
    key(qtbot, canvas, "Ctrl+D")
    assert len(controller.document.objects) == 4
    assert np.array_equal(controller.document.objects[2].mask, source[0])
    key(qtbot, canvas, "Ctrl+Z")
    assert len(controller.document.objects) == 2
    window.flush_saves()
    on_disk = ProjectFolder(folder).load("img2.png")
    assert [np.array_equal(o.mask, m) for o, m in zip(on_disk.objects, source)] == [True, True]

    # a smaller image: the copies are clipped at its edge (never scaled); one falls outside
    key(qtbot, canvas, "D")
    wait_image(qtbot, window, "img10.png")
    key(qtbot, canvas, "D")
    wait_image(qtbot, window, "small.png")
    key(qtbot, canvas, "Ctrl+V")
    (clipped,) = controller.document.objects
    assert clipped.mask.shape == (80, 100)
    assert np.array_equal(clipped.mask, _rect(20, 30, 90, 70, w=100, h=80))
    message = window.status_panel.message_text()
    assert "pasted 1 object" in message and "left out" in message, message

    # a text field keeps Ctrl+A / Ctrl+C for its text
    window.prompt_bar.set_text("cup. spoon.")
    window.prompt_bar.focus()
    controller.select([])
    key(qtbot, window.prompt_bar.field, "Ctrl+A")
    assert controller.selected_ids == []
    assert window.prompt_bar.field.selectedText() == "cup. spoon."
    assert masks  # (the copies above were taken from the first image)


def test_context_menus_on_canvas_and_object_list(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    canvas, controller = window.canvas, window.controller
    a = _draw_rectangle(qtbot, window, (20, 30), (90, 80))
    b = _draw_rectangle(qtbot, window, (60, 50), (120, 100))  # overlaps a, on top of it
    menus = window.editing.context_menus

    # Points tool: the right button is a negative point, no menu
    key(qtbot, canvas, "Q")
    controller.discard_prompt()
    menus.menu = None
    _right_click(qtbot, canvas, screen_point(canvas, 150, 20))
    assert menus.menu is None
    controller.discard_prompt()

    # Select tool: right-click on a (not selected) object selects it and offers the object actions
    key(qtbot, canvas, "V")
    controller.select([])
    _right_click(qtbot, canvas, screen_point(canvas, 30, 40))
    menu = menus.menu
    texts = [x.text().replace("&", "") for x in menu.actions() if not x.isSeparator()]
    assert texts == [
        "Change label of selection…",
        "Hide / show selected",
        "Delete selected",
        "Duplicate objects",
        "Copy objects",
        "Edit vertices",
        "Bring to front",
    ]
    assert controller.selected_ids == [a]
    _menu_click(qtbot, menu, "Bring to front")
    assert [o.id for o in controller.document.objects] == [b, a]
    assert canvas.object_at(80, 70) == a  # a is on top now

    # (each right click at another place: two at one place would make a double-click)
    _right_click(qtbot, canvas, screen_point(canvas, 40, 60))
    _menu_click(qtbot, menus.menu, "Duplicate objects")
    assert len(controller.document.objects) == 3
    dup = controller.document.objects[-1].id
    _right_click(qtbot, canvas, screen_point(canvas, 25, 75))
    _menu_click(qtbot, menus.menu, "Delete selected")
    assert [o.id for o in controller.document.objects] == [b, a]

    # empty canvas: paste, select all, fit
    _right_click(qtbot, canvas, screen_point(canvas, 180, 10))
    texts = [x.text().replace("&", "") for x in menus.menu.actions() if not x.isSeparator()]
    assert texts == ["Paste objects", "Select all objects", "Fit to window"]
    _menu_click(qtbot, menus.menu, "Select all objects")
    assert controller.selected_ids == [b, a]
    assert dup not in controller.selected_ids

    # the keyboard's menu key works with any tool
    key(qtbot, canvas, "Q")
    from PySide6.QtGui import QContextMenuEvent

    at = QPoint(5, 5)
    QApplication.sendEvent(canvas, QContextMenuEvent(QContextMenuEvent.Reason.Keyboard, at, canvas.mapToGlobal(at)))
    assert menus.menu.isVisible() and "Edit vertices" in [x.text().replace("&", "") for x in menus.menu.actions()]
    menus.menu.close()

    # the object list: right-click a row -> the same actions; hide it
    tree = window.object_list.tree
    item = tree.topLevelItem(0)  # b
    controller.select([a])  # a right-click on a row that is not selected selects that row only
    tinted = _pixel(canvas, 115, 95)  # b alone covers this pixel
    _right_click(qtbot, tree.viewport(), tree.visualItemRect(item).center())
    assert controller.selected_ids == [b]
    _menu_click(qtbot, menus.menu, "Hide / show selected")
    assert controller.document.get(b).hidden
    assert _pixel(canvas, 115, 95) != tinted  # and it is gone from the screen
    qtbot.waitUntil(lambda: tree.topLevelItem(0).checkState(0) == Qt.CheckState.Unchecked, timeout=2_000)
    window.flush_saves()
    assert ProjectFolder(synthetic_folder.folder).load("img1.png").get(b).hidden


def _drop(window, paths) -> bool:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    target = window.windowHandle()
    pos = QPointF(window.canvas.mapTo(window, window.canvas.rect().center()))
    enter = QDragEnterEvent(
        pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(target, enter)
    accepted = enter.isAccepted()
    if accepted:
        drop = QDropEvent(
            pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(target, drop)
    return accepted


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")  # Qt 6 has no other
def test_drag_and_drop_and_recent_folders(qtbot, make_window, synthetic_folder, tmp_path):
    from fixtures_app import make_synthetic_folder

    first = synthetic_folder.folder
    second = make_synthetic_folder(tmp_path / "second").folder
    window = make_window([str(first)])
    wait_image(qtbot, window, "img1.png")

    # a text file is refused (the drag is not accepted); an image opens its folder at that image
    (tmp_path / "notes.txt").write_text("x")
    assert not _drop(window, [tmp_path / "notes.txt"])
    assert _drop(window, [second / "img2.png"])
    wait_image(qtbot, window, "img2.png")
    assert window.project.folder.resolve() == second.resolve()
    # a folder opens as a project
    assert _drop(window, [first])
    wait_image(qtbot, window, "img1.png")
    assert window.project.folder.resolve() == first.resolve()

    # File -> Open Recent: newest first
    recent = window.editing.recent
    assert recent.folders[:2] == [str(first.resolve()), str(second.resolve())]
    file_menu = window.menuBar().actions()[0].menu()
    assert recent.menu.menuAction() in file_menu.actions()
    recent.menu.popup(window.mapToGlobal(QPoint(20, 20)))
    _menu_click(qtbot, recent.menu, f"2 {second.name}")
    wait_image(qtbot, window, "img1.png")
    qtbot.waitUntil(lambda: window.project.folder.resolve() == second.resolve(), timeout=5_000)
    assert recent.folders[0] == str(second.resolve())

    # a folder that disappeared is greyed, and "Remove missing folders" drops it
    import shutil

    shutil.rmtree(first)
    recent.menu.popup(window.mapToGlobal(QPoint(20, 20)))
    qtbot.waitUntil(recent.menu.isVisible, timeout=2_000)
    entries = {x.data(): x for x in recent.menu.actions() if x.data()}
    assert not entries[str(first.resolve())].isEnabled()
    assert "(missing)" in entries[str(first.resolve())].text()
    _menu_click(qtbot, recent.menu, "Remove missing folders (1)")
    assert str(first.resolve()) not in recent.folders
    # one that vanishes after the menu was built: a message, and it is removed
    recent.add(str(tmp_path / "gone"))
    recent.open(str(tmp_path / "gone"))
    assert "no longer exists" in window.status_panel.error_text()
    assert str(tmp_path / "gone") not in recent.folders

    # kept in the settings file for the next start
    from desktop_app.gui.settings import AppSettings

    assert AppSettings().recent_folders == recent.folders
    assert json.loads(AppSettings()._qs.value("session/recent_folders"))[0] == str(second.resolve())


def test_shortcuts_help_lists_the_editing_keys(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    key(qtbot, window.canvas, "F1")
    rows = {(r.group, r.action): (r.keys, r.tip) for r in window._dialogs["shortcuts"].rows}
    for group, action, keys in (
        ("Edit", "Copy objects", "Ctrl+C"),
        ("Edit", "Paste objects", "Ctrl+V"),
        ("Edit", "Duplicate objects", "Ctrl+D"),
        ("Edit", "Select all objects", "Ctrl+A"),
        ("Edit", "Edit vertices", "Ctrl+J"),
        ("Tools", "Rectangle", "R"),
        ("Edit", "Redo", "Ctrl+Shift+Z, Ctrl+Y"),
    ):
        assert rows[(group, action)][0] == keys, (action, rows.get((group, action)))
    assert "Enter applies" in rows[("Edit", "Edit vertices")][1]
