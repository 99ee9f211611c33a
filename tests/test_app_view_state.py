"""Issue 12, "Seeing the state", driven as a person uses the window: the tool bar shows the
active tool, the status bar shows zoom / cursor + pixel value / brush / candidate n of N, a text
prompt's detections are listed with check boxes (Enter accepts only the checked), the mask view
controls, refitting on resize until a zoom, and the contrast window of a 12-bit image."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from desktop_app.gui.canvas.tools import Tool
from fixtures_app import click_image, key, screen_point, wait_backend, wait_image


def _pixel(canvas, x: float, y: float) -> tuple[int, int, int]:
    """What the person sees at image pixel (x, y)."""
    p = screen_point(canvas, x, y)
    c = canvas.grab().toImage().pixelColor(p)
    return c.red(), c.green(), c.blue()


def _accept(qtbot, window) -> list[str]:
    qtbot.waitUntil(lambda: window.controller.candidates is not None, timeout=15_000)
    before = {o.id for o in window.controller.document.objects}
    key(qtbot, window.canvas, "Return")
    qtbot.waitUntil(lambda: len(window.controller.document.objects) > len(before), timeout=5_000)
    return [o.id for o in window.controller.document.objects if o.id not in before]


def test_tool_bar_and_status_widgets(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    canvas, bar, status = window.canvas, window.view_state.tool_bar, window.view_state.status
    buttons = {t: bar.widgetForAction(a) for t, a in bar.tool_actions.items()}
    assert set(buttons) == set(Tool)  # every tool the canvas has (rectangle too, if it exists)
    assert all(b.isVisible() for t, b in buttons.items() if t is not Tool.EXEMPLAR)
    assert not buttons[Tool.EXEMPLAR].isVisible()  # no exemplar tool without SAM 3 (tests/test_app_sam3.py)
    assert buttons[Tool.POINT].isChecked() and bar.active_tool_text() == "Points"

    key(qtbot, canvas, "W")  # the key moves the pressed button
    assert canvas.tool is Tool.BOX and buttons[Tool.BOX].isChecked() and not buttons[Tool.POINT].isChecked()
    qtbot.mouseClick(buttons[Tool.BRUSH], Qt.MouseButton.LeftButton)  # the button sets the tool
    assert canvas.tool is Tool.BRUSH and buttons[Tool.BRUSH].isChecked()
    assert status.brush.text() == f"brush {canvas.brush_size} px" and status.brush.isEnabled()
    key(qtbot, canvas, "]")
    assert status.brush.text() == f"brush {canvas.brush_size} px" and canvas.brush_size > 16
    qtbot.mouseClick(buttons[Tool.SELECT], Qt.MouseButton.LeftButton)
    assert canvas.tool is Tool.SELECT and not status.brush.isEnabled()

    assert status.zoom.text() == f"zoom {canvas.scale * 100:.0f}%"
    before = canvas.scale
    key(qtbot, canvas, "Ctrl+=")
    assert canvas.scale > before and status.zoom.text() == f"zoom {canvas.scale * 100:.0f}%"
    key(qtbot, canvas, "Ctrl+F")
    qtbot.mouseMove(canvas, screen_point(canvas, 55.5, 55.5))  # inside the red rectangle
    qtbot.waitUntil(lambda: status.cursor.text().startswith("x 55, y 55"))
    assert status.cursor.text() == "x 55, y 55 · RGB 220,30,30"

    # a point prompt's alternatives: "candidate 1/N · score", Tab steps
    key(qtbot, canvas, "Q")
    click_image(qtbot, canvas, 55, 55)
    qtbot.waitUntil(lambda: window.controller.candidates is not None, timeout=15_000)
    state = window.controller.candidates
    n = len(state.candidates)
    assert status.candidate.isVisible()
    assert status.candidate.text() == f"candidate 1/{n} · score {state.focused.score:.2f}"
    if n > 1:
        key(qtbot, canvas, "Tab")
        assert status.candidate.text().startswith(f"candidate 2/{n} · score ")
    key(qtbot, canvas, "Esc")
    assert not status.candidate.isVisible()


def test_shortcuts_help_lists_the_view_keys(qtbot, make_window):
    window = make_window([])
    window.actions_by_name["shortcuts"].trigger()  # F1 / Help → Keyboard shortcuts
    from desktop_app.gui.dialogs.shortcuts_dialog import shortcut_rows

    rows = {r.action: r.keys for r in shortcut_rows(window.all_actions())}
    assert rows["Hide all masks"] == "Ctrl+H" and rows["Outline only"] == "O"
    assert rows["Auto contrast (16-bit)"] == "Ctrl+Shift+A"
    assert "shortcuts" in window._dialogs


def test_mask_view_controls_and_refit(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    canvas = window.canvas
    click_image(qtbot, canvas, 55, 55)
    _accept(qtbot, window)
    window.controller.select([])
    plain = (220, 30, 30)
    tinted = _pixel(canvas, 55, 55)
    assert tinted != plain  # the mask is drawn over the red rectangle

    opacity = window.view_state.opacity
    opacity.slider.setValue(0)  # the slider to zero: the image shows through
    assert canvas.view_options.opacity == 0 and opacity.value.text() == "0%"
    assert _pixel(canvas, 55, 55) == plain
    opacity.slider.setValue(100)
    assert _pixel(canvas, 55, 55) == tinted

    key(qtbot, canvas, "Ctrl+H")  # hide all masks
    assert window.actions_by_name["hide_masks"].isChecked() and not canvas.view_options.show_objects
    assert _pixel(canvas, 55, 55) == plain
    key(qtbot, canvas, "Ctrl+H")
    assert _pixel(canvas, 55, 55) == tinted

    key(qtbot, canvas, "O")  # outline only: the inside is the image, the edge is drawn
    assert canvas.view_options.outline_only
    assert _pixel(canvas, 55, 55) == plain and _pixel(canvas, 20.5, 55) != plain
    key(qtbot, canvas, "O")

    # resizing refits until the person zooms; then the zoom is kept
    fitted = canvas.scale
    window.resize(window.width() + 300, window.height() + 200)
    qtbot.waitUntil(lambda: canvas.scale > fitted * 1.05)
    key(qtbot, canvas, "Ctrl+=")
    zoomed = canvas.scale
    window.resize(window.width() - 300, window.height() - 200)
    qtbot.wait(50)
    assert canvas.scale == zoomed
    key(qtbot, canvas, "Ctrl+F")  # fit again: and it follows resizes again
    refit = canvas.scale
    window.resize(window.width() + 200, window.height() + 150)
    qtbot.waitUntil(lambda: canvas.scale > refit * 1.05)


@pytest.fixture
def text_classic():
    """The classic backend, registered as "classic", answering text prompts with three
    detections whose decoded phrases carry tokenizer artefacts (as Grounding DINO's may)."""
    from inference.backends import registry
    from inference.results import BackendInfo, Candidate, Prediction, PredictionKind

    original = registry.backend_class("classic")

    class TextClassic(original):  # type: ignore[misc, valid-type]
        supports_text = True

        def info(self) -> BackendInfo:
            base = super().info()
            return BackendInfo(
                backend=base.backend,
                model="fake text",
                device="cpu",
                device_reason="test",
                supports_text=True,
                supports_points=True,
            )

        def predict(self, image, prompt, *, image_key=None, cancel=None, source=None):
            if prompt.text is None:
                return super().predict(image, prompt, image_key=image_key, cancel=cancel, source=source)
            h, w = image.shape[:2]

            def det(x0, y0, x1, y1, label, score):
                mask = np.zeros((h, w), bool)
                mask[y0:y1, x0:x1] = True
                return Candidate(mask=mask, score=0.8, box=(x0, y0, x1, y1), label=label, box_score=score)

            cands = (
                det(20, 30, 90, 80, "red [SEP]", 0.91),
                det(125, 65, 175, 115, "blue.", 0.74),
                det(100, 10, 120, 25, "red blue", 0.42),
            )
            return Prediction(
                candidates=cands,
                kind=PredictionKind.INSTANCES,
                image_key=image_key or "k",
                backend=self.name,
                model="fake text",
                image_size=(h, w),
            )

    registry.register_backend(TextClassic)
    yield
    registry.register_backend(original)


def test_candidate_list_accepts_only_checked(qtbot, make_window, synthetic_folder, text_classic):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    qtbot.waitUntil(lambda: window.controller.backend_info.supports_text)
    listing = window.view_state.candidates
    assert listing.hint.isVisible() and not listing.rows()

    key(qtbot, window.canvas, "Ctrl+T")
    qtbot.keyClicks(window.prompt_bar.field, "Red. Blue.")
    qtbot.keyClick(window.prompt_bar.field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(listing.rows()) == 3, timeout=15_000)
    # labelled with the prompt's phrases, never "red [SEP]" / "blue." / "red blue"
    assert listing.rows() == [("red", "0.91", True), ("blue", "0.74", True), ("red", "0.42", True)]
    status = window.view_state.status
    assert status.candidate.text() == "candidate 1/3 · score 0.91"

    # the person unticks the third detection (a click on its check box)
    tree = listing.tree
    rect = tree.visualItemRect(listing.item(2))
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() + 8, rect.center().y()))
    qtbot.waitUntil(lambda: listing.rows()[2][2] is False)
    state = window.controller.candidates
    assert not state.checked(2) and state.checked(0)
    overlays = window.canvas.scene().candidates
    assert [o.dimmed for o in overlays] == [False, False, True]
    assert listing.summary.text() == "2 of 3 checked: Enter accepts them"
    # clicking a row focuses that detection (as Tab does)
    rect = tree.visualItemRect(listing.item(1))
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.center().x() + 40, rect.center().y()))
    qtbot.waitUntil(lambda: window.controller.candidates.index == 1)
    assert status.candidate.text() == "candidate 2/3 · score 0.74"

    key(qtbot, window.canvas, "Return")  # Enter accepts only the checked ones
    qtbot.waitUntil(lambda: len(window.controller.document.objects) == 2)
    assert [o.label for o in window.controller.document.objects] == ["red", "blue"]
    assert window.controller.candidates is None and not listing.rows()
    names = window.label_list.names()
    assert "red" in names and "blue" in names
    assert not any("[" in n or n.endswith(".") or n == "red blue" for n in names)


def test_twelve_bit_image_contrast_window(qtbot, make_window, tmp_path):
    from PIL import Image

    folder = tmp_path / "micro"
    folder.mkdir()
    rng = np.random.default_rng(1)
    raw = (800 + rng.integers(0, 100, size=(150, 200))).astype(np.uint16)
    raw[40:100, 60:140] = 3500  # a 12-bit cell, dark on a plain 16-bit display
    raw[0, 0] = 4095
    Image.fromarray(raw).save(folder / "cells.png")
    window = make_window([str(folder)])
    wait_image(qtbot, window, "cells.png")
    wait_backend(qtbot, window, "classic")
    canvas, controller = window.canvas, window.controller
    contrast = window.view_state.contrast
    encoded: list[str] = []
    original_encode = controller.worker.encode
    controller.worker.encode = lambda ref, *a, **k: (encoded.append(ref.key), original_encode(ref, *a, **k))[1]

    # auto-contrast: the cell is white on screen AND in the array the model is given
    assert window.view_state.contrast_action.isVisible() and contrast.state.text().startswith("auto")
    assert contrast.high.value() == 3500 and 800 <= contrast.low.value() < 810
    image = controller.image
    assert image.array[70, 100].tolist() == [255, 255, 255]
    assert controller.cache.get_or_load(image.path).array is image.array  # what the worker reads
    assert _pixel(canvas, 100, 70) == (255, 255, 255)
    qtbot.mouseMove(canvas, screen_point(canvas, 100.5, 70.5))
    qtbot.waitUntil(lambda: window.view_state.status.cursor.text() == "x 100, y 70 · value 3500")

    # the person types a window: re-mapped off the GUI thread, shown and re-encoded for the model
    threads: list[str] = []
    original_load = controller.cache.get_or_load

    def recording_load(path):
        threads.append(threading.current_thread().name)
        return original_load(path)

    controller.cache.get_or_load = recording_load
    contrast.high.setValue(4095)
    qtbot.waitUntil(lambda: controller.image.key != image.key)
    controller.cache.get_or_load = original_load
    assert threads and threading.main_thread().name not in threads, threads
    assert contrast.state.text() == "manual"
    assert controller.image.array[70, 100, 0] == round(
        (3500 - contrast.low.value()) / (4095 - contrast.low.value()) * 255
    )
    assert encoded and encoded[-1] == controller.image.key
    assert _pixel(canvas, 100, 70)[0] == controller.image.array[70, 100, 0]
    # a click now predicts on the re-mapped pixels
    click_image(qtbot, canvas, 100, 70)
    qtbot.waitUntil(lambda: controller.candidates is not None, timeout=15_000)

    key(qtbot, canvas, "Ctrl+Shift+A")  # back to auto (re-mapped in the loader's thread)
    qtbot.waitUntil(lambda: contrast.state.text().startswith("auto"))
    qtbot.waitUntil(lambda: controller.image.array[70, 100].tolist() == [255, 255, 255])
    assert controller.candidates is None
