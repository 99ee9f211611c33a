"""Issue 11, app part: SAM 3 chosen in the Backend menu answers the text prompt (detections
labelled with their phrase, its notes in the notification bar) and the Exemplar tool (X): drag a
box around one example, Shift+drag a counter-example, every similar object comes back as
candidates; Esc drops the examples; the tool exists only while the backend takes exemplars.

The tiny random SAM 3 checkpoint (tests/fixtures_sam3.py) is loaded through the real worker:
choosing "SAM 3" in the menu asks the registry for ``sam3``, and the registry here gives the real
backend on that checkpoint inside a wrapper that records every Prompt it receives. Random weights
make the masks meaningless: these tests check the flow, what is sent and what is shown.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop_app.gui.canvas.tools import Tool
from fixtures_app import key, wait_backend, wait_image
from fixtures_app_core import drag, screen_point
from inference.prompts import Box, Exemplar, Prompt

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.slow


class RecordingBackend:
    """The real backend, with every prompt it is asked recorded (in the worker thread)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.prompts: list[Prompt] = []

    def predict(self, image, prompt, **kwargs):
        self.prompts.append(prompt)
        return self.inner.predict(image, prompt, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def recorded(monkeypatch, tiny_sam3_dir):
    """The SAM 3 backends the registry creates (normally with the installed weights; here the tiny
    random checkpoint), each wrapped in a :class:`RecordingBackend`."""
    import inference.backends.registry as registry

    real_create = registry.create_backend
    made: list[RecordingBackend] = []

    def create(name, **options):
        if name != "sam3":
            return real_create(name, **options)
        backend = RecordingBackend(real_create("sam3", device="cpu", checkpoint=str(tiny_sam3_dir)))
        made.append(backend)
        return backend

    monkeypatch.setattr(registry, "create_backend", create)
    return made


def _choose(qtbot, window, name: str) -> None:
    window.backend_menu.backend_actions[name].trigger()  # Inference → Backend → …
    wait_backend(qtbot, window, name, timeout=120_000)


def _drag(qtbot, canvas, a, b, *, shift: bool = False) -> None:
    drag(
        qtbot,
        canvas,
        screen_point(canvas, *a),
        screen_point(canvas, *b),
        modifier=Qt.KeyboardModifier.ShiftModifier if shift else None,
    )


def _candidates(qtbot, window, after: int):
    """Wait for the answer to the prompt after the first ``after`` ones: the candidates shown."""
    qtbot.waitUntil(
        lambda: (
            window.controller.candidates is not None
            and window.controller.prompting.request_id == 0
            and len(_recorder(window).prompts) > after
        ),
        timeout=60_000,
    )
    return window.controller.candidates


def _recorder(window) -> RecordingBackend:
    return window.controller.worker._scheduler._backend


def _zero_thresholds(window) -> None:
    """Random weights score low: keep every detection (the bar's values go with each prompt)."""
    window.prompt_bar.box_threshold.setValue(0.0)
    window.prompt_bar.text_threshold.setValue(0.0)
    window.prompt_bar.max_detections.setValue(4)


def test_sam3_in_the_menu_text_prompt_and_its_notes(qtbot, make_window, synthetic_folder, recorded):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    assert "sam3" in window.backend_menu.backend_actions  # from the registry of choices
    assert "SAM 3" in window.backend_menu.backend_actions["sam3"].text()
    _choose(qtbot, window, "sam3")
    assert window.settings.backend == "sam3" and len(recorded) == 1
    assert window.prompt_bar.field.isEnabled()  # SAM 3 answers text

    _zero_thresholds(window)
    window.prompt_bar.set_text("red box. blue disk.")
    window.prompt_bar.run()  # Enter in the prompt bar
    state = _candidates(qtbot, window, 0)
    sent = recorded[0].prompts[-1]
    assert sent.text == "red box. blue disk." and sent.exemplars == () and sent.box_threshold == 0.0
    assert state.source == "text" and 1 <= len(state.candidates) <= 4
    assert {state.label_of(c) for c in state.candidates} <= {"red box", "blue disk"}
    assert all(c.label in ("red box", "blue disk") for c in state.candidates)
    rows = window.view_state.candidates.rows()  # the candidate list: one checked row per detection
    assert len(rows) == len(state.candidates) and {label for label, _, _ in rows} <= {"red box", "blue disk"}
    assert all(checked for _, _, checked in rows)
    n = len(state.candidates)
    if n > 1:
        key(qtbot, window.canvas, "Tab")
        assert window.controller.candidates.index == 1
    key(qtbot, window.canvas, "Return")
    doc = window.controller.document
    qtbot.waitUntil(lambda: window.controller.candidates is None)
    assert {o.label for o in doc.objects} <= {"red box", "blue disk"}
    assert all(o.source == "text" and o.prompt["backend"] == "sam3" for o in doc.objects)

    # a phrase longer than SAM 3's text tokens: cut, and said in the notification bar
    window.prompt_bar.set_text(" ".join(["very"] * 40) + " red box.")
    window.prompt_bar.run()
    _candidates(qtbot, window, 1)
    bar = window.notification_bar
    qtbot.waitUntil(lambda: bar.isVisible() and bar.note is not None)
    assert "text tokens" in bar.note.text and "only its beginning was used" in bar.note.text


def test_exemplar_tool_positive_negative_escape_and_accept(qtbot, make_window, synthetic_folder, recorded):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    canvas, controller = window.canvas, window.controller
    tools = window.view_state.tool_bar
    button = tools.widgetForAction(tools.tool_actions[Tool.EXEMPLAR])
    # classic: no exemplar tool, and its key does nothing
    assert not button.isVisible() and not tools.tool_actions[Tool.EXEMPLAR].isEnabled()
    key(qtbot, canvas, "X")
    assert canvas.tool is Tool.POINT

    _choose(qtbot, window, "sam3")
    qtbot.waitUntil(button.isVisible)  # the tool bar lays its buttons out on the next event
    assert tools.tool_actions[Tool.EXEMPLAR].isEnabled()
    key(qtbot, canvas, "X")
    assert canvas.tool is Tool.EXEMPLAR and button.isChecked() and tools.active_tool_text() == "Exemplar"
    _zero_thresholds(window)
    rec = _recorder(window)

    # drag a box around the red rectangle (20..90 x 30..80): every similar object is asked for
    _drag(qtbot, canvas, (20, 30), (90, 80))
    state = _candidates(qtbot, window, 0)
    sent = rec.prompts[-1]
    assert sent.text is None and len(sent.exemplars) == 1
    (ex,) = sent.exemplars
    assert isinstance(ex, Exemplar) and ex.positive
    assert abs(ex.box.x0 - 20.5) <= 1 and abs(ex.box.y0 - 30.5) <= 1
    assert abs(ex.box.x1 - 90.5) <= 1 and abs(ex.box.y1 - 80.5) <= 1
    assert sent.box_threshold == 0.0 and sent.max_detections == 4 and not sent.has_geometry
    assert state.source == "exemplar" and len(state.candidates) >= 1
    assert len(window.view_state.candidates.rows()) == len(state.candidates)
    assert canvas.exemplar_tool.exemplars == (ex,)

    # Shift+drag: a counter-example, added to the first; the prompt re-runs with both
    _drag(qtbot, canvas, (125, 65), (175, 115), shift=True)
    _candidates(qtbot, window, 1)
    sent = rec.prompts[-1]
    assert [e.positive for e in sent.exemplars] == [True, False]
    assert sent.exemplars[0] == ex
    assert abs(sent.exemplars[1].box.x0 - 125.5) <= 1 and abs(sent.exemplars[1].box.y1 - 115.5) <= 1
    assert controller.exemplars == list(sent.exemplars) == list(canvas.exemplar_tool.exemplars)
    # Enter in the prompt bar now: the text with the exemplars given so far
    window.prompt_bar.set_text("red box")
    window.prompt_bar.run()
    _candidates(qtbot, window, 2)
    assert rec.prompts[-1].text == "red box" and rec.prompts[-1].exemplars == sent.exemplars
    window.prompt_bar.set_text("")

    # Esc: the examples and the candidates are gone; the next box starts afresh, with the bar's text
    key(qtbot, canvas, "Esc")
    assert controller.candidates is None and controller.exemplars == [] and canvas.exemplar_tool.exemplars == ()
    window.prompt_bar.set_text("red box")
    _drag(qtbot, canvas, (20, 30), (90, 80))
    state = _candidates(qtbot, window, 3)
    sent = rec.prompts[-1]
    assert sent.text == "red box" and [e.positive for e in sent.exemplars] == [True]
    assert state.source == "text"

    # Enter accepts the checked candidates; the examples go with them
    before = len(controller.document.objects)
    key(qtbot, canvas, "Return")
    qtbot.waitUntil(lambda: controller.candidates is None)
    added = controller.document.objects[before:]
    non_empty = sum(1 for c in state.candidates if c.mask.any())
    assert len(added) == non_empty
    assert all(o.label == "red box" and o.prompt["exemplars"][0][4] == 1 for o in added)
    assert controller.exemplars == [] and canvas.exemplar_tool.exemplars == ()

    # back to classic: the tool falls back to Box and is hidden again
    _choose(qtbot, window, "classic")
    qtbot.waitUntil(lambda: not button.isVisible())
    assert canvas.tool is Tool.BOX
    assert not tools.tool_actions[Tool.EXEMPLAR].isEnabled()


def test_exemplar_only_objects_are_saved_as_exemplar(qtbot, make_window, synthetic_folder, recorded):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    _choose(qtbot, window, "sam3")
    canvas, controller = window.canvas, window.controller
    _zero_thresholds(window)
    controller.set_active_label("widget")
    key(qtbot, canvas, "X")
    _drag(qtbot, canvas, (125, 65), (175, 115))
    state = _candidates(qtbot, window, 0)
    key(qtbot, canvas, "F")  # the focused one only; the rest and the example stay on offer
    added = list(controller.document.objects)
    assert len(added) <= 1
    if added:
        assert added[0].source == "exemplar" and added[0].label == "widget"
        assert added[0].prompt["exemplars"] == [list(state.prompt.exemplars[0])]
        assert added[0].prompt["box_threshold"] == 0.0
    if len(state.candidates) > 1:
        assert controller.candidates is not None and len(controller.exemplars) == 1


def test_exemplar_tool_hidden_for_sam2(qtbot, make_window, synthetic_folder, sam2_backend):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    with qtbot.waitSignal(window.controller.backend_changed, timeout=120_000):
        window.controller.worker.use_backend(sam2_backend)
    tools = window.view_state.tool_bar
    action = tools.tool_actions[Tool.EXEMPLAR]
    assert not tools.widgetForAction(action).isVisible() and not action.isEnabled()
    assert all(tools.widgetForAction(a).isVisible() for t, a in tools.tool_actions.items() if t is not Tool.EXEMPLAR)
    key(qtbot, window.canvas, "X")
    assert window.canvas.tool is Tool.POINT
    # never sent to a backend without exemplars
    window.controller.prompting.add_exemplar(Box(x0=10, y0=10, x1=50, y1=50))
    assert window.controller.exemplars == []


def test_shortcuts_help_lists_the_exemplar_key(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    key(qtbot, window.canvas, "F1")
    dialog = window._dialogs["shortcuts"]
    rows = {r.action: r for r in dialog.rows}
    assert rows["Exemplar"].keys == "X" and rows["Exemplar"].group == "Tools"
    assert "SAM 3" in rows["Exemplar"].tip and "Shift+drag" in rows["Exemplar"].tip
    from desktop_app.gui.dialogs.shortcuts_dialog import MOUSE_HELP

    assert "Exemplar" in MOUSE_HELP


def test_remote_backends_offer_the_tool_when_they_run_sam3():
    from desktop_app.core.backend_choices import Capability
    from desktop_app.gui.widgets.tool_bar import capabilities_of
    from inference.results import BackendInfo

    def info(backend: str, exemplars: bool) -> BackendInfo:
        return BackendInfo(
            backend=backend,
            model="m",
            device="cpu",
            device_reason="",
            supports_text=True,
            supports_points=True,
            supports_exemplars=exemplars,
        )

    assert Capability.EXEMPLARS in capabilities_of(info("sam3", True))
    assert Capability.EXEMPLARS in capabilities_of(info("server", True))  # its /info says it runs SAM 3
    assert Capability.EXEMPLARS not in capabilities_of(info("server", False))
    assert Capability.EXEMPLARS not in capabilities_of(info("classic", True))  # a local entry is the truth
    assert Capability.EXEMPLARS not in capabilities_of(info("sam2", False))
