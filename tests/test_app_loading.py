"""A person does not wait for the model: a click or a text prompt sent while the backend is still
loading is kept by the worker and answered once the backend is ready (never refused)."""

from __future__ import annotations

import time

import pytest

from fixtures_app import click_image, iou, wait_backend, wait_image

LOAD_S = 3.0


@pytest.fixture
def slow_backend_name():
    """The real classic backend with a load() that takes a while (as a model load does), registered
    as "classic" (the backend the app picks without weights) for this test only."""
    from inference.backends import registry

    original = registry.backend_class("classic")

    class SlowLoadingClassic(original):  # type: ignore[misc, valid-type]
        def load(self) -> None:
            time.sleep(LOAD_S)
            super().load()

    registry.register_backend(SlowLoadingClassic)
    yield "classic"
    registry.register_backend(original)


def test_click_while_loading_runs_when_ready(qtbot, make_window, synthetic_folder, slow_backend_name):
    from desktop_app.gui.worker import WAITING_FOR_BACKEND

    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    assert window.controller.backend_info is None  # still loading
    assert window.prompt_bar.field.isEnabled()  # a prompt is accepted while the model loads
    errors = []
    window.controller.error.connect(errors.append)
    click_image(qtbot, window.canvas, 55, 55)
    assert window.status_panel.message_text() == WAITING_FOR_BACKEND
    assert window.controller.backend_info is None  # the click really came before the backend
    wait_backend(qtbot, window, slow_backend_name, timeout=30_000)
    qtbot.waitUntil(lambda: window.controller.candidates is not None, timeout=30_000)
    assert errors == []
    mask = window.controller.candidates.candidates[0].mask
    assert iou(mask, synthetic_folder.truth["img1.png"]["red"]) > 0.9
