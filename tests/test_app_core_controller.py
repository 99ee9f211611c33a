"""A person at the canvas with the classic backend: click, drag a box, accept, brush, polygon,
merge/subtract/hide/label, undo/redo, latest-wins. Masks are checked against the known objects."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from desktop_app.gui.canvas import Tool
from fixtures_app_core import drag, iou, open_image, scene_objects, screen_point

pytest.importorskip("pytestqt")


@pytest.fixture
def classic(qtbot, core_app, scene_path):
    canvas, controller = core_app
    with qtbot.waitSignal(controller.backend_changed, timeout=30_000):
        controller.set_backend("classic")
    open_image(qtbot, controller, scene_path)
    return canvas, controller


def _click(qtbot, canvas, x, y, button=Qt.MouseButton.LeftButton, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.mouseClick(canvas, button, modifier, screen_point(canvas, x, y))


def _wait_candidates(qtbot, controller):
    with qtbot.waitSignal(
        controller.candidates_changed, timeout=30_000, check_params_cb=lambda state: state is not None
    ) as blocker:
        pass
    return blocker.args[0]


def test_click_accept_gives_the_object(qtbot, classic):
    canvas, controller = classic
    truth = scene_objects()
    controller.set_active_label("ball")
    with qtbot.waitSignal(
        controller.candidates_changed, timeout=30_000, check_params_cb=lambda s: s is not None
    ) as blocker:
        _click(qtbot, canvas, 80, 80)
    state = blocker.args[0]
    assert iou(state.focused.mask, truth["disk"]) > 0.85
    assert [p.positive for p in controller.prompt_points] == [True]
    with qtbot.waitSignal(controller.document_changed, timeout=5_000):
        qtbot.keyClick(canvas, Qt.Key.Key_Return)
    doc = controller.document
    assert len(doc) == 1 and doc.objects[0].label == "ball" and doc.objects[0].source == "points"
    assert iou(doc.objects[0].mask, truth["disk"]) > 0.85
    assert controller.candidates is None and controller.prompt_points == []
    assert controller.selected_ids == [doc.objects[0].id]
    canvas.grab().save(str(canvas.property("shot") or "/tmp/app_core_click.png"))


def test_box_drag_then_negative_click(qtbot, classic):
    canvas, controller = classic
    truth = scene_objects()
    qtbot.keyClick(canvas, Qt.Key.Key_W)
    assert canvas.tool is Tool.BOX
    with qtbot.waitSignal(controller.candidates_changed, timeout=30_000, check_params_cb=lambda s: s is not None) as b:
        drag(qtbot, canvas, screen_point(canvas, 164, 34), screen_point(canvas, 296, 116))
    assert iou(b.args[0].focused.mask, truth["rect"]) > 0.85
    # a right click adds a negative point to the box prompt and refines it
    with qtbot.waitSignal(controller.candidates_changed, timeout=30_000, check_params_cb=lambda s: s is not None):
        _click(qtbot, canvas, 120, 130, button=Qt.MouseButton.RightButton)
    assert [p.positive for p in controller.prompt_points] == [False]
    qtbot.keyClick(canvas, Qt.Key.Key_F)
    assert iou(controller.document.objects[0].mask, truth["rect"]) > 0.85
    assert controller.document.objects[0].source == "box"


def test_latest_prompt_wins(qtbot, classic):
    """Click the disk, Esc, click the bar, all before any answer: only the bar's mask lands."""
    canvas, controller = classic
    truth = scene_objects()
    seen = []
    controller.candidates_changed.connect(lambda s: seen.append(s))
    _click(qtbot, canvas, 80, 80)
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    _click(qtbot, canvas, 150, 182)
    qtbot.waitUntil(lambda: any(s is not None for s in seen), timeout=30_000)
    qtbot.wait(300)
    landed = [s for s in seen if s is not None]
    assert len(landed) == 1
    assert iou(landed[0].focused.mask, truth["bar"]) > 0.85


def test_brush_eraser_and_undo_redo(qtbot, classic):
    canvas, controller = classic
    truth = scene_objects()
    _click(qtbot, canvas, 230, 75)
    _wait_candidates(qtbot, controller)
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    obj = controller.document.objects[0]
    before = obj.mask.copy()
    assert iou(before, truth["rect"]) > 0.85
    # brush a stroke below the rectangle onto the selected object
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    canvas.set_brush_size(6)
    with qtbot.waitSignal(controller.document_changed, timeout=5_000):
        drag(qtbot, canvas, screen_point(canvas, 180, 130), screen_point(canvas, 280, 130))
    brushed = controller.document.get(obj.id).mask
    added = brushed & ~before
    assert added[128:133, 185:275].all() and 550 < added.sum() < 800  # a 6-image-px line, whatever the zoom
    assert not (before & ~brushed).any()
    # erase a hole in the middle of the rectangle
    qtbot.keyClick(canvas, Qt.Key.Key_E)
    with qtbot.waitSignal(controller.document_changed, timeout=5_000):
        drag(qtbot, canvas, screen_point(canvas, 200, 75), screen_point(canvas, 260, 75))
    erased = controller.document.get(obj.id).mask
    assert not erased[73:78, 205:255].any() and erased[45:60, 205:255].all()
    # undo twice, redo once: masks come back exactly
    stack = controller.history.stack
    assert stack.count() == 3
    stack.undo()
    assert np.array_equal(controller.document.get(obj.id).mask, brushed)
    stack.undo()
    assert np.array_equal(controller.document.get(obj.id).mask, before)
    stack.redo()
    assert np.array_equal(controller.document.get(obj.id).mask, brushed)
    # the history stores compressed diffs, far smaller than one raw mask
    assert controller.history.nbytes < before.size // 4


def test_polygon_merge_subtract_hide_label_delete(qtbot, classic):
    canvas, controller = classic
    truth = scene_objects()
    controller.set_active_label("bar")
    qtbot.keyClick(canvas, Qt.Key.Key_P)
    for x, y in [(60, 160), (260, 160), (260, 205), (60, 205)]:
        _click(qtbot, canvas, x, y)
    with qtbot.waitSignal(controller.document_changed, timeout=5_000):
        qtbot.keyClick(canvas, Qt.Key.Key_Return)
    bar = controller.document.objects[0]
    assert bar.source == "polygon" and iou(bar.mask, truth["bar"]) > 0.9
    # a second manual object overlapping the bar: a polygon over its left part
    for x, y in [(40, 150), (120, 150), (120, 215), (40, 215)]:
        _click(qtbot, canvas, x, y)
    qtbot.mouseDClick(canvas, Qt.MouseButton.LeftButton, pos=screen_point(canvas, 40, 215))
    assert len(controller.document) == 2
    other = controller.document.objects[1]
    # select tool: click the bar, Ctrl+click the other, merge
    qtbot.keyClick(canvas, Qt.Key.Key_V)
    _click(qtbot, canvas, 200, 182)
    assert controller.selected_ids == [bar.id]
    _click(qtbot, canvas, 50, 210, modifier=Qt.KeyboardModifier.ControlModifier)
    assert controller.selected_ids == [bar.id, other.id]
    qtbot.keyClick(canvas, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert len(controller.document) == 1
    merged = controller.document.objects[0].mask
    assert np.array_equal(merged, bar.mask | other.mask)
    controller.history.stack.undo()
    assert len(controller.document) == 2
    # subtract: bar minus the other
    controller.select([bar.id, other.id])
    controller.subtract_selected()
    cut = controller.document.get(bar.id).mask
    assert np.array_equal(cut, bar.mask & ~other.mask)
    # hide, relabel, delete; each undoable
    controller.select([other.id])
    qtbot.keyClick(canvas, Qt.Key.Key_H)
    assert controller.document.get(other.id).hidden
    assert canvas.object_at(50, 210) is None  # hidden objects are not hit
    controller.change_label_selected("shadow")
    assert controller.document.get(other.id).label == "shadow"
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert [o.id for o in controller.document.objects] == [bar.id]
    for _ in range(3):
        controller.history.stack.undo()
    restored = controller.document.get(other.id)
    assert not restored.hidden and restored.label == "bar" and np.array_equal(restored.mask, other.mask)


def test_undo_history_is_memory_bounded(qtbot, classic):
    from desktop_app.gui.commands import ReplaceMaskCommand

    canvas, controller = classic
    history = controller.history
    qtbot.keyClick(canvas, Qt.Key.Key_P)
    for x, y in [(10, 10), (100, 10), (100, 100), (10, 100)]:
        _click(qtbot, canvas, x, y)
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    obj_id = controller.document.objects[0].id
    history.stack.max_bytes = 40_000
    rng = np.random.default_rng(1)
    for _ in range(150):  # random speckle edits compress badly: about 1-2 kB each
        mask = controller.document.get(obj_id).mask.copy()
        mask[rng.integers(0, 240, 200), rng.integers(0, 320, 200)] ^= True
        history.push(ReplaceMaskCommand(history, object_id=obj_id, mask=mask))
    assert history.nbytes <= 40_000
    assert 5 < history.stack.count() < 150
    assert history.stack.undoLimit() >= 100
    final = controller.document.get(obj_id).mask.copy()
    while history.stack.canUndo():
        history.stack.undo()
    while history.stack.canRedo():
        history.stack.redo()
    assert np.array_equal(controller.document.get(obj_id).mask, final)


def test_bad_image_is_a_message(qtbot, core_app, tmp_path):
    canvas, controller = core_app
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with qtbot.waitSignal(controller.error, timeout=10_000) as blocker:
        controller.load_image(str(bad))
    assert "broken.png" in blocker.args[0]
    assert controller.document is None


@pytest.mark.gui  # builds a canvas in a subprocess
def test_gui_thread_never_imports_torch():
    """Importing the core and running the classic backend keeps torch out of the process."""
    import subprocess
    import sys

    code = (
        "import os, sys, time\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from desktop_app.gui.canvas import ImageCanvas\n"
        "from desktop_app.gui.controller import AnnotationController\n"
        "c = AnnotationController(canvas=ImageCanvas())\n"
        "infos = []\n"
        "c.backend_changed.connect(infos.append)\n"
        "c.set_backend('classic')\n"
        "t = time.time()\n"
        "while not infos and time.time() - t < 30: app.processEvents()\n"
        "c.shutdown()\n"
        "print(bool(infos), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "False"], out.stderr[-2000:]


def test_brush_size_is_in_image_pixels(qtbot, classic):
    """Zooming does not change what a stroke covers; the cursor circle scales with the zoom; [ ] resize."""
    canvas, controller = classic
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    canvas.set_brush_size(8)
    strokes = []
    for scale in (1.0, 3.0):
        here = screen_point(canvas, 230, 150)
        canvas.set_zoom(scale, anchor=(here.x(), here.y()))  # image point (230, 150) stays in view
        assert abs(canvas.brush_screen_radius() - 4 * scale) < 1e-6
        with qtbot.waitSignal(controller.document_changed, timeout=5_000):
            drag(qtbot, canvas, screen_point(canvas, 220, 150), screen_point(canvas, 240, 150))
        strokes.append(controller.document.objects[-1].mask.copy())
        controller.history.stack.undo()
    a, b = strokes  # mouse positions are whole screen pixels: allow a one-image-pixel shift
    assert a.any() and (a & b).sum() / (a | b).sum() > 0.85 and abs(int(a.sum()) - int(b.sum())) < 0.15 * a.sum()
    rows = np.flatnonzero(strokes[0].any(axis=1))
    assert rows.max() - rows.min() + 1 in (8, 9)  # the diameter, in image pixels
    size = canvas.brush_size
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size > size
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < size
