"""The prompt assistant in the app's prompt bar (pytest-qt), against the local OpenAI-compatible
server of tests/fixtures_openai.py with the real openai client."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from fixtures_app import key, wait_backend, wait_image
from fixtures_openai import answer, error

KEY = "sk-gui-secret-1122334455"


@pytest.fixture(autouse=True)
def _env(monkeypatch, openai_server):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "gui-model")


def _open(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")
    window.prompt_bar.set_text_supported(True)  # as with Lang-SAM loaded
    return window


def _ask(qtbot, bar, instruction: str) -> None:
    bar.show_assistant(True)
    assert bar.assistant.isVisible() and bar.assistant.instruction.hasFocus()
    qtbot.keyClicks(bar.assistant.instruction, instruction)
    qtbot.keyClick(bar.assistant.instruction, Qt.Key.Key_Return)


def test_phrases_appear_for_editing_then_enter_runs_them(qtbot, make_window, synthetic_folder, openai_server):
    window = _open(qtbot, make_window, synthetic_folder)
    window.label_editor.add("car")
    bar = window.prompt_bar
    openai_server.respond(
        answer(
            {"phrase": "red sedan", "label": "car"},
            "traffic light",
            {"phrase": "person", "box_threshold": 0.2},
            notes="Reflections left out.",
        )
    )
    runs = []
    bar.run_requested.connect(lambda *args: runs.append(args))
    _ask(qtbot, bar, "every car and the people, not reflections")
    qtbot.waitUntil(lambda: bar.text() != "", timeout=10_000)
    assert bar.text() == "car. traffic light. person."  # the label's name replaces the mapped phrase
    assert bar.box_threshold.value() == pytest.approx(0.2)
    assert bar.field.hasFocus() and runs == []  # shown for editing; nothing ran
    assert "edit them" in bar.assistant.notice.text() and "Reflections left out." in bar.assistant.notice.text()
    assert not bar.assistant.busy.isVisible()
    request = openai_server.requests[-1]
    assert request["json"]["model"] == "gui-model"
    assert '"car"' in request["json"]["messages"][-1]["content"]  # the project's labels were offered
    assert isinstance(request["json"]["messages"][-1]["content"], str)  # no image: the box is off

    qtbot.keyClick(bar.field, Qt.Key.Key_End)
    qtbot.keyClicks(bar.field, " dog.")  # the person edits the suggestion
    with qtbot.waitSignal(bar.run_requested) as blocker:
        qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert blocker.args[0] == "car. traffic light. person. dog."


def test_esc_cancels_a_slow_answer(qtbot, make_window, synthetic_folder, openai_server):
    window = _open(qtbot, make_window, synthetic_folder)
    bar = window.prompt_bar
    bar.set_text("cup.")
    openai_server.respond(answer("never shown", delay=1.0))
    _ask(qtbot, bar, "the cups")
    qtbot.waitUntil(lambda: bar.assistant.busy.isVisible(), timeout=5_000)
    assert bar.assistant.cancel_button.isVisible() and not bar.assistant.ask_button.isVisible()
    qtbot.keyClick(bar.assistant.instruction, Qt.Key.Key_Escape)
    assert not bar.assistant.busy_now and not bar.assistant.busy.isVisible()
    assert "Cancelled" in bar.assistant.notice.text()
    end = time.monotonic() + 1.5  # the late answer arrives meanwhile and is dropped
    while time.monotonic() < end:
        qtbot.wait(50)
    assert bar.text() == "cup."
    assert "Cancelled" in bar.assistant.notice.text()

    # Esc on the canvas (the window's Discard action) cancels too; typing by hand still works
    _ask(qtbot, bar, " again")
    qtbot.waitUntil(lambda: bar.assistant.busy_now, timeout=5_000)
    window.canvas.setFocus()
    key(qtbot, window.canvas, "Esc")
    assert not bar.assistant.busy_now
    bar.field.setFocus()
    bar.field.clear()
    with qtbot.waitSignal(bar.run_requested) as blocker:
        qtbot.keyClicks(bar.field, "saucer")
        qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert blocker.args[0] == "saucer"


def test_image_notice_when_the_box_is_on(qtbot, make_window, synthetic_folder, openai_server):
    window = _open(qtbot, make_window, synthetic_folder)
    bar = window.prompt_bar
    notice = bar.assistant.image_notice
    bar.show_assistant(True)
    assert not notice.isVisible()
    bar.assistant.see_image.setChecked(True)
    assert notice.isVisible() and f"image is sent to 127.0.0.1:{openai_server.port}" in notice.text()
    openai_server.respond(answer("square", delay=0.5))
    _ask(qtbot, bar, "the squares")
    qtbot.waitUntil(lambda: bar.assistant.busy_now, timeout=5_000)
    assert "image is sent with this question" in bar.assistant.notice.text() and notice.isVisible()
    qtbot.waitUntil(lambda: bar.text() == "square.", timeout=10_000)
    assert notice.isVisible()  # still said after the answer
    content = openai_server.requests[-1]["json"]["messages"][-1]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    bar.assistant.see_image.setChecked(False)
    assert not notice.isVisible()


def test_errors_are_shown_without_the_key(qtbot, make_window, synthetic_folder, openai_server):
    window = _open(qtbot, make_window, synthetic_folder)
    bar = window.prompt_bar
    bar.set_text("cup.")
    openai_server.respond(error(401, f"Incorrect API key provided: {KEY}"))
    _ask(qtbot, bar, "the cups")
    qtbot.waitUntil(lambda: "rejected the API key" in bar.assistant.notice.text(), timeout=10_000)
    assert KEY not in bar.assistant.notice.text()
    assert bar.text() == "cup." and not bar.assistant.busy_now
    bar.show_assistant(False)
    assert not bar.assistant.isVisible()
