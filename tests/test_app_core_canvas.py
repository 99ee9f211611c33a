"""The canvas on its own: zoom (Ctrl+wheel, Ctrl++/-, Ctrl+0, Ctrl+F), pan (middle drag,
Space+drag), an 8000x6000 image that opens and pans with short repaints, and what is drawn."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from desktop_app.core.annotation.document import AnnotationObject
from desktop_app.gui.canvas.image_canvas import CandidateOverlay
from fixtures_app_core import drag, open_image, screen_point
from inference.prompts import Box, Point

pytest.importorskip("pytestqt")

BIG_W, BIG_H = 8000, 6000


@pytest.fixture(scope="module")
def big_image_path(tmp_path_factory):
    from PIL import Image

    yy, xx = np.mgrid[0:BIG_H, 0:BIG_W].astype(np.float32)
    rgb = np.stack([xx / BIG_W * 255, yy / BIG_H * 255, ((xx + yy) % 512) / 2], axis=-1).astype(np.uint8)
    rgb[2000:4000, 3000:6000] = (220, 30, 30)
    path = tmp_path_factory.mktemp("big") / "big.bmp"  # uncompressed: quick to write
    Image.fromarray(rgb).save(path)
    return str(path)


def _wheel(widget, pos: QPoint, delta: int, modifiers=Qt.KeyboardModifier.ControlModifier) -> None:
    ev = QWheelEvent(
        QPointF(pos),
        QPointF(widget.mapToGlobal(pos)),
        QPoint(0, 0),
        QPoint(0, delta),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)


def _repaint_ms(canvas) -> float:
    start = time.perf_counter()
    canvas.repaint()
    return (time.perf_counter() - start) * 1000


def test_big_image_opens_zooms_and_pans_smoothly(qtbot, core_app, big_image_path):
    canvas, controller = core_app
    started = time.perf_counter()
    doc = open_image(qtbot, controller, big_image_path)
    open_s = time.perf_counter() - started
    assert (doc.width, doc.height) == (BIG_W, BIG_H)
    assert len(canvas.image.pyramid.levels) >= 4  # 8000 -> 4000 -> 2000 -> 1000
    assert open_s < 30
    # one big object (full-resolution mask) selected, drawn in tiles
    mask = np.zeros((BIG_H, BIG_W), dtype=bool)
    mask[2000:4000, 3000:6000] = True
    from desktop_app.gui.commands import AddObjectsCommand

    controller.history.push(AddObjectsCommand(controller.history, objects=[AnnotationObject(label="red", mask=mask)]))
    fit_scale = canvas.scale
    assert fit_scale < 0.1
    times = [_repaint_ms(canvas)]
    # Ctrl+wheel zooms about the cursor: the image point under it stays put
    anchor = screen_point(canvas, 4500, 3000)
    before = canvas.to_image(QPointF(anchor))
    for _ in range(12):
        _wheel(canvas, anchor, 120)
        times.append(_repaint_ms(canvas))
    after = canvas.to_image(QPointF(anchor))
    assert canvas.scale > fit_scale * 10
    assert abs(before[0] - after[0]) < 2 and abs(before[1] - after[1]) < 2
    # Ctrl+0: 100 %; then pan with the middle button and with Space+drag
    qtbot.keyClick(canvas, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale == pytest.approx(1.0)
    times.append(_repaint_ms(canvas))
    ox = canvas.view.ox
    drag(qtbot, canvas, QPoint(400, 240), QPoint(300, 240), button=Qt.MouseButton.MiddleButton)
    assert canvas.view.ox == pytest.approx(ox - 100)
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    drag(qtbot, canvas, QPoint(300, 300), QPoint(300, 200))
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.view.oy == pytest.approx(canvas.view.oy, abs=0) and len(controller.document) == 1
    for _ in range(20):
        canvas.pan_by(-37, -23)
        times.append(_repaint_ms(canvas))
    # Ctrl+- / Ctrl++ / Ctrl+F
    qtbot.keyClick(canvas, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale == pytest.approx(0.8)
    qtbot.keyClick(canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale == pytest.approx(fit_scale)
    times.append(_repaint_ms(canvas))
    worst = max(times[1:])  # the first paint at fit includes colourising the level's tiles
    assert worst < 150, f"a repaint of the 8000x6000 image took {worst:.0f} ms"
    canvas.grab().save("/tmp/app_core_big.png")


def test_middle_drag_pans_by_the_drag(qtbot, core_app, scene_path):
    canvas, controller = core_app
    open_image(qtbot, controller, scene_path)
    ox, oy = canvas.view.ox, canvas.view.oy
    drag(qtbot, canvas, QPoint(300, 200), QPoint(340, 230), button=Qt.MouseButton.MiddleButton)
    assert (canvas.view.ox - ox, canvas.view.oy - oy) == pytest.approx((40, 30))
    assert controller.candidates is None and controller.prompt_points == []  # panning prompts nothing


def test_draws_objects_candidate_and_prompt(qtbot, core_app, scene_path):
    canvas, controller = core_app
    doc = open_image(qtbot, controller, scene_path)
    yy, xx = np.mgrid[0 : doc.height, 0 : doc.width]
    obj_mask = (xx >= 170) & (xx < 290) & (yy >= 40) & (yy < 110)
    hidden_mask = (xx >= 10) & (xx < 40) & (yy >= 200) & (yy < 230)
    doc.add(AnnotationObject(label="box", mask=obj_mask))
    doc.add(AnnotationObject(label="ghost", mask=hidden_mask, hidden=True))
    canvas.objects_changed()
    cand = ((xx - 80) ** 2 + (yy - 80) ** 2) <= 40**2
    canvas.set_candidates([CandidateOverlay(mask=cand)])
    canvas.set_prompt(
        points=[Point(x=80, y=80), Point(x=150, y=180, positive=False)], box=Box(x0=30, y0=30, x1=130, y1=130)
    )
    shot = canvas.grab().toImage()
    shot.save("/tmp/app_core_draw.png")

    def rgb(x, y):
        c = shot.pixelColor(screen_point(canvas, x, y))
        return c.red(), c.green(), c.blue()

    def rgb_plain(x, y):
        return tuple(int(v) for v in canvas.image.array[y, x])

    assert rgb(230, 75) != rgb_plain(230, 75)  # the object is tinted
    hidden_px = rgb(25, 215)
    assert max(hidden_px) - min(hidden_px) <= 3  # the hidden one is not: the grey stays grey
    r, g, b = rgb(95, 95)
    assert b > rgb_plain(95, 95)[2] + 30  # the candidate is tinted blue
    r, g, b = rgb(81, 82)  # the positive point: green
    assert g > 150 and r < 120
    r, g, b = rgb(151, 182)
    assert r > 150 and g < 120  # the negative point: red
