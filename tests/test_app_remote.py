"""The window against our server in a subprocess over real HTTP (issue 9 part 5): a person picks
"Own server", clicks, presses Tab, refines with a negative click and accepts — the masks are the
ones the local backend gives; the server dies — an error in words, the window keeps answering;
one menu action goes back to local and nothing is lost."""

from __future__ import annotations

import re
import threading

import keyring
import numpy as np
from keyring.backend import KeyringBackend

from desktop_app.gui.worker import InferenceWorker
from fixtures_app import click_image, iou, key, wait_backend, wait_image
from fixtures_server import SERVER_TEST_TOKEN, ServeProcess, classic_factory, loaded_classic, run_server
from inference.backends.remote import RemoteBackend, is_kept_logits_placeholder
from inference.images import load_image
from inference.prompts import Point, Prompt


def _remote(window) -> RemoteBackend:
    worker = window.controller.worker
    assert isinstance(worker, InferenceWorker)
    backend = worker.scheduler.backend
    assert isinstance(backend, RemoteBackend)
    return backend


def _answer(qtbot, window, before) -> None:
    """Wait for candidates newer than ``before`` (the previous candidate state)."""
    qtbot.waitUntil(
        lambda: window.controller.candidates is not None and window.controller.candidates is not before,
        timeout=20_000,
    )


def test_annotate_through_our_server_then_back_to_local_after_it_dies(qtbot, make_window, synthetic_folder):
    folder, truth = synthetic_folder.folder, synthetic_folder.truth
    server = ServeProcess().start()
    try:
        window = make_window([str(folder)])
        wait_image(qtbot, window, "img1.png")
        wait_backend(qtbot, window, "classic")

        # Inference -> Backend -> Own server, with the URL from Settings -> Remote
        window.settings.set_value("remote/server_url", server.url)
        window.backend_menu.backend_actions["server"].trigger()
        qtbot.waitUntil(
            lambda: window.controller.backend_info is not None and server.url in window.controller.backend_info.device,
            timeout=60_000,
        )
        canvas = window.canvas
        click_image(qtbot, canvas, 100, 100)  # the background: three guesses
        _answer(qtbot, window, None)
        first = window.controller.candidates
        assert len(first.candidates) == 3
        assert all(is_kept_logits_placeholder(c.low_res_logits) for c in first.candidates)  # kept remotely
        # the status bar says where inference runs and the last round trip
        assert re.fullmatch(
            rf"remote: server {re.escape(server.url)} · \d+ ms", window.status_panel.device_label.text()
        )
        key(qtbot, canvas, "Tab")  # the next guess
        assert window.controller.candidates.index != first.index
        tabbed = window.controller.candidates
        focused = tabbed.focused.mask

        # a negative click refines the focused guess: its logits are named, not sent
        click_image(qtbot, canvas, 55, 55, right=True)
        _answer(qtbot, window, tabbed)
        backend = _remote(window)
        # two clicks in hundredths of a pixel + the reference: a few hundred bytes (the logits
        # themselves would be 175 kB; bench/bench_remote.py measures the figure)
        assert backend.last_bytes_sent < 400, backend.last_bytes_sent
        assert backend.notice == ""  # the server still had the logits
        refined = window.controller.candidates.focused.mask
        clicks = [Point(x=x, y=y, positive=bool(pos)) for x, y, pos in window.controller.candidates.prompt.points]
        assert len(clicks) == 2 and not clicks[1].positive  # where the clicks landed on the image

        # exactly what the local backend answers for the same clicks on the same image
        local = loaded_classic()
        image = load_image(folder / "img1.png")
        guesses = local.predict(image, Prompt(points=(clicks[0],))).candidates
        guess = next(c for c in guesses if np.array_equal(c.mask, focused)).low_res_logits
        expected = local.predict(
            image,
            Prompt(
                points=tuple(clicks),
                mask_input=guess.astype(np.float16).astype(np.float32),  # as the server kept them
                multimask=False,
            ),
        )
        assert np.array_equal(refined, expected.candidates[0].mask)
        key(qtbot, canvas, "Escape")  # not this one
        qtbot.waitUntil(lambda: window.controller.candidates is None, timeout=5_000)

        click_image(qtbot, canvas, 55, 55)  # the red rectangle
        _answer(qtbot, window, None)
        window.canvas.setFocus()
        key(qtbot, canvas, "Return")
        qtbot.waitUntil(lambda: len(window.controller.document.objects) == 1, timeout=5_000)
        red = window.controller.document.objects[0]
        assert iou(red.mask, truth["img1.png"]["red"]) > 0.9

        # the server dies: the next click fails in words, the window keeps answering
        server.kill()
        click_image(qtbot, canvas, 150, 90)
        qtbot.waitUntil(lambda: server.url in window.status_panel.error_text(), timeout=30_000)
        assert "Traceback" not in window.status_panel.error_text()
        assert window.status_panel.device_label.text() == f"remote: server {server.url} · failed"
        assert "cannot be reached" in window.status_panel.device_label.toolTip()  # the reason in words
        assert window.controller.document.objects[0] is red

        # one action back to local; the accepted object is still there, clicks work again
        window.backend_menu.backend_actions["classic"].trigger()
        qtbot.waitUntil(
            lambda: (
                window.controller.backend_info is not None
                and window.controller.backend_info.backend == "classic"
                and server.url not in window.controller.backend_info.device
            ),
            timeout=30_000,
        )
        assert window.status_panel.device_label.text().startswith("device: ")  # local again
        click_image(qtbot, canvas, 150, 90)  # the blue disk
        _answer(qtbot, window, None)
        key(qtbot, canvas, "Return")
        qtbot.waitUntil(lambda: len(window.controller.document.objects) == 2, timeout=5_000)
        blue = window.controller.document.objects[1]
        assert np.array_equal(window.controller.document.objects[0].mask, red.mask)
        assert iou(blue.mask, truth["img1.png"]["blue"]) > 0.85
    finally:
        server.stop()


class _ThreadRecordingKeyring(KeyringBackend):
    """A real keyring backend (in memory) that notes which thread reads it."""

    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}
        self.read_on: list[str] = []

    def get_password(self, service, username):
        self.read_on.append(threading.current_thread().name)
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        self.passwords.pop((service, username), None)


def test_choosing_a_token_protected_server_reads_the_keyring_off_the_gui_thread(
    qtbot, make_window, synthetic_folder, monkeypatch
):
    """The token lives in the OS keyring, which may block (a locked keychain asks to be
    unlocked): switching to the server reads it in the worker thread, never in the window's."""
    from desktop_app.core.secrets import default_store, reset_default_store
    from inference.server.config import ServerConfig

    monkeypatch.delenv("LANGSAM_SERVER_TOKEN", raising=False)
    previous = keyring.get_keyring()
    recording = _ThreadRecordingKeyring()
    keyring.set_keyring(recording)
    reset_default_store()
    try:
        config = ServerConfig(timeout_s=30.0, token=SERVER_TEST_TOKEN)
        with run_server(backend_factory=classic_factory, config=config) as server:
            window = make_window([str(synthetic_folder.folder)])
            wait_image(qtbot, window, "img1.png")
            wait_backend(qtbot, window, "classic")
            default_store().set("remote/server_token", SERVER_TEST_TOKEN)  # Settings -> Remote -> Save
            window.settings.set_value("remote/server_url", server.url)
            recording.read_on.clear()
            window.backend_menu.backend_actions["server"].trigger()
            qtbot.waitUntil(
                lambda: (
                    window.controller.backend_info is not None and server.url in window.controller.backend_info.device
                ),
                timeout=30_000,
            )
            gui_thread = threading.main_thread().name
            assert recording.read_on and gui_thread not in recording.read_on, recording.read_on
            click_image(qtbot, window.canvas, 55, 55)  # the token was accepted: clicks are answered
            _answer(qtbot, window, None)
    finally:
        keyring.set_keyring(previous)
        reset_default_store()
