"""Help -> Keyboard shortcuts, Inference -> Models (no weights, offline, local copies, cancel and
resume), and the start: the sample on a fresh install, the window up fast without torch."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from fixtures_app import key, wait_backend, wait_image

ROOT = Path(__file__).resolve().parent.parent


def test_shortcuts_help_lists_every_bound_action(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    key(qtbot, window.canvas, "F1")
    dialog = window._dialogs["shortcuts"]
    assert dialog.isVisible()
    bound = {}
    for action in window.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
        if keys:
            name = action.property("help_text") or action.text()
            bound[str(name).replace("&", "").rstrip(".…")] = ", ".join(keys)
    listed = {row.action: row.keys for row in dialog.rows}
    assert listed == bound
    for expected in (
        "Next image",
        "Previous image",
        "Open image",
        "Open folder",
        "Export",
        "Undo",
        "Redo",
        "Text prompt",
        "Batch over folder",
        "Change label of selection",
        "Use label 1",
        "Accept",
        "Discard prompt",
        "Points",
        "Box",
        "Polygon",
        "Fit to window",
    ):
        assert expected in listed, expected
    assert listed["Next image"] == "D"
    # Redo: Ctrl+Shift+Z, and Ctrl+Y where that is the habit (Windows / Linux), one action
    assert listed["Redo"] == ("Ctrl+Shift+Z" if sys.platform == "darwin" else "Ctrl+Shift+Z, Ctrl+Y")

    # no key is bound twice in a way Qt would find ambiguous (window-wide actions)
    seen: dict[str, str] = {}
    for action in window.findChildren(QAction):
        if action.shortcutContext() != Qt.ShortcutContext.WindowShortcut:
            continue
        for k in action.shortcuts():
            text = k.toString()
            assert text not in seen, f"{text} is bound to {seen.get(text)} and {action.text()}"
            seen[text] = action.text()
    dialog.search.setText("undo")
    visible = [r for r in range(dialog.table.rowCount()) if not dialog.table.isRowHidden(r)]
    assert [dialog.table.item(r, 1).text() for r in visible] == ["Undo"]


def test_models_dialog_without_weights(qtbot, make_window, synthetic_folder, tmp_path):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "classic")  # no weights: the classic backend answers
    assert not window.prompt_bar.field.isEnabled()
    window.actions_by_name["models"].trigger()
    dialog = window._dialogs["models"]
    states = {
        dialog.table.item(r, 0).data(Qt.ItemDataRole.UserRole): dialog.table.item(r, 3).text()
        for r in range(dialog.table.rowCount())
    }
    assert "sam2.1_hiera_small" in states and "grounding-dino-base" in states
    assert set(states.values()) == {"not installed"}

    # offline download: a sentence saying what to do, never a traceback
    dialog.select_model("grounding-dino-tiny")
    with qtbot.waitSignal(dialog.task.ended, timeout=30_000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    message = dialog.message.toPlainText()
    assert "offline" in message and "by hand" in message and "Traceback" not in message
    assert dialog.state_of("grounding-dino-tiny") == "missing"

    # a local copy that does not exist is refused with the reason
    assert not dialog.use_local("sam2.1_hiera_tiny", str(tmp_path / "nope.pt"))
    assert "does not exist" in dialog.message.toPlainText()
    # a file that is not a PyTorch checkpoint at all is refused at once, with the reason
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert not dialog.use_local("sam2.1_hiera_tiny", str(garbage))
    assert "not a PyTorch checkpoint" in dialog.message.toPlainText()
    # a checkpoint-shaped file (a zip with data.pkl) that is not SAM 2 passes the cheap header check,
    # then fails to load: the window explains and falls back to the classic backend
    import zipfile

    bogus = tmp_path / "bogus.pt"
    with zipfile.ZipFile(bogus, "w") as archive:
        archive.writestr("bogus/data.pkl", b"not a pickle")
    assert dialog.use_local("sam2.1_hiera_tiny", str(bogus))
    assert dialog.state_of("sam2.1_hiera_tiny") == "override"
    qtbot.waitUntil(
        lambda: (
            getattr(window, "_requested_backend", "") == "classic"
            and window.controller.backend_info.backend == "classic"
        ),
        timeout=60_000,
    )
    assert "classic backend meanwhile" in window.status_panel.error_text()
    assert "not a readable SAM 2 checkpoint" in window.status_panel.error_text()
    dialog.close()


@pytest.fixture
def registered_test_model(file_server):
    from inference.weights import ModelSpec, RemoteFile, register_model, unregister_model

    data = os.urandom(3 * 1024 * 1024 + 123)
    file_server.files["/test-sam.pt"] = data
    spec = ModelSpec(
        id="test-sam",
        display_name="Test SAM",
        kind="sam2",
        layout="file",
        size_bytes=len(data),
        size_exact=True,
        licence="MIT",
        hub_repo="test/test-sam",
        files=(RemoteFile(name="test-sam.pt", size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()),),
        urls=(file_server.url("/test-sam.pt"),),
        description="a test download",
    )
    register_model(spec)
    yield spec, data
    unregister_model(spec.id)


def test_models_dialog_download_cancel_resume(qtbot, file_server, registered_test_model):
    from desktop_app.gui.dialogs.models_dialog import ModelsDialog
    from inference.weights import WeightsStore

    spec, data = registered_test_model
    store = WeightsStore()
    dialog = ModelsDialog(store=store)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.select_model(spec.id)
    assert dialog.download_button.text() == "Download"

    # the person presses Cancel once the first megabyte is on disk (a direct connection runs in the
    # download thread, so the moment is exact rather than a race with the local server)
    def cancel_after_first_chunk(done: int, _total: int, _text: str) -> None:
        if done > 0:
            dialog.cancel_download()

    dialog.task.progress.connect(cancel_after_first_chunk, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(dialog.task.cancelled, timeout=30_000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
        assert dialog.cancel_button.isEnabled() and not dialog.download_button.isEnabled()
    dialog.task.progress.disconnect(cancel_after_first_chunk)
    assert "cancelled" in dialog.message.toPlainText() and "resume" in dialog.message.toPlainText()
    assert dialog.state_of(spec.id) == "partial"
    partial = store.partial_path(spec.id).stat().st_size
    assert 0 < partial < len(data)
    assert dialog.download_button.text() == "Resume download"

    with qtbot.waitSignal(dialog.weights_changed, timeout=30_000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert dialog.state_of(spec.id) == "installed"
    assert store.target_path(spec.id).read_bytes() == data
    assert ("GET", "/test-sam.pt", f"bytes={partial}-") in file_server.requests  # resumed, not restarted
    dialog.close()


def test_first_start_opens_the_sample_outside_the_package(qtbot, make_window):
    from desktop_app.gui.app import SAMPLE_IMAGE
    from desktop_app.gui.settings import AppSettings, settings_dir

    window = make_window([])
    wait_image(qtbot, window, SAMPLE_IMAGE.name)
    assert window.project.folder.resolve() == (settings_dir() / "sample").resolve()
    assert not (SAMPLE_IMAGE.parent / ".langsam").exists()
    assert AppSettings().first_run_done
    window.close()
    # the second start restores that folder, not a new copy of the sample
    again = make_window([])
    wait_image(qtbot, again, SAMPLE_IMAGE.name)
    assert again.project.folder.resolve() == (settings_dir() / "sample").resolve()


START_PROBE = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop_app.gui.app import create_window
window = create_window(sys.argv[1:])
window.show()
app.processEvents()
shown, cpu = time.perf_counter() - t0, time.process_time() - c0
end = time.perf_counter() + 3
while time.perf_counter() < end and window.current_name is None:
    app.processEvents(); time.sleep(0.01)
print(json.dumps({"shown": shown, "cpu": cpu, "torch": "torch" in sys.modules, "image": window.current_name}))
window.close()
"""


@pytest.mark.gui  # shows the window in a subprocess
def test_window_shows_the_folder_without_importing_torch(tmp_path, synthetic_folder):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANGSAM_STUDIO_HOME=str(tmp_path / "home"))
    out = subprocess.run(
        [sys.executable, "-c", START_PROBE, str(synthetic_folder.folder)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["image"] == "img1.png"
    assert result["torch"] is False  # the classic backend and the GUI never import torch
    # The 2 s start-up goal is measured in bench/bench_startup.py, not here: this machine is noisy.
