"""Batch (Ctrl+B) with a tiny random-weight Lang-SAM installed as local model copies: every image
not marked done (nor open in the editor) gets the detections as objects to review, exactly the
masks the backend gives, computed by the app's one inference worker (no second copy of the
models). The background behaviour itself is in tests/test_app_batch_background.py."""

from __future__ import annotations

import numpy as np
import pytest

from desktop_app.core.annotation.document import AnnotationObject, ImageStatus
from desktop_app.core.annotation.project import ProjectFolder
from fixtures_app import key, wait_backend, wait_image

pytestmark = pytest.mark.slow


@pytest.fixture
def local_tiny_models(tiny_sam2_checkpoint, tiny_gdino_dir):
    """The random models registered as local copies, the way Models -> 'Use local file' does."""
    from inference.weights import WeightsStore

    store = WeightsStore()
    store.set_override("sam2.1_hiera_tiny", tiny_sam2_checkpoint)
    store.set_override("grounding-dino-tiny", tiny_gdino_dir)
    return store


def test_batch_marks_results_for_review(qtbot, make_window, synthetic_folder, local_tiny_models, langsam_backend):
    from desktop_app.gui.settings import AppSettings
    from inference.images import load_image
    from inference.prompts import Prompt

    folder, truth = synthetic_folder.folder, synthetic_folder.truth
    project = ProjectFolder(folder)
    for name, label in (("img2.png", "green"), ("img10.png", "yellow")):  # finished earlier
        done = project.load(name)
        done.add(AnnotationObject(label=label, mask=truth[name][label]))
        done.status = ImageStatus.DONE
        project.save(done)
    AppSettings().backend = "langsam"  # the batch runs on the interactive worker's backend

    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    wait_backend(qtbot, window, "langsam", timeout=240_000)
    window.open_image("img2.png")  # the image on screen is left alone by a batch: show one marked done
    wait_image(qtbot, window, "img2.png")
    shared = window.controller.worker._loop.backend
    window.prompt_bar.set_text("red square.")
    key(qtbot, window.canvas, "Ctrl+B")
    dialog = window._dialogs["batch"]
    assert dialog.isVisible() and dialog.text.text() == "red square."
    dialog.max_objects.setValue(2)
    with qtbot.waitSignal(window.batch_runner.ended, timeout=240_000) as blocker:
        qtbot.mouseClick(dialog.run_button, _left())
    how, result = blocker.args
    assert how == "finished", window.batch_runner.last_notification.full_text
    assert result.skipped == ("img2.png", "img10.png") and result.changed == ("img1.png",)
    assert result.problems == () and result.left_alone == ()
    # no second copy of the models: the worker's one backend did the work and is still loaded
    assert window.controller.worker._loop.backend is shared and shared.loaded

    # on disk: review state, needs_review objects, exactly the backend's masks for that prompt
    for name in ("img1.png",):
        doc = ProjectFolder(folder).load(name)
        assert doc.status == ImageStatus.REVIEW
        expected = langsam_backend.predict(
            load_image(folder / name),
            Prompt(text="red square.", box_threshold=0.3, text_threshold=0.25, max_detections=2),
        )
        wanted = [c for c in expected.candidates if c.mask.any()]
        assert 1 <= len(doc.objects) == len(wanted) <= 2
        for obj, cand in zip(doc.objects, wanted):
            assert obj.needs_review and obj.source == "text"  # the kind of prompt; needs_review: unattended
            assert np.array_equal(obj.mask, cand.mask)
            assert obj.label == "red square"  # always a prompt phrase (core/prediction_policy.py), never raw
    for name in ("img2.png", "img10.png"):
        untouched = ProjectFolder(folder).load(name)
        assert untouched.status == ImageStatus.DONE and len(untouched.objects) == 1

    # the window shows it: list states, labels, the image reloaded when opened, review filter
    entries = {e.name: e for e in window.file_list.model.entries()}
    assert entries["img1.png"].status == ImageStatus.REVIEW and entries["img2.png"].status == ImageStatus.DONE
    window.open_image("img1.png")
    wait_image(qtbot, window, "img1.png")
    assert len(window.controller.document.objects) == entries["img1.png"].object_count
    assert window.controller.document.status == ImageStatus.REVIEW
    assert window.object_list.ids() == [o.id for o in ProjectFolder(folder).load("img1.png").objects]
    assert set(window.controller.document.labels()) <= set(window.label_editor.labels.names)
    window.actions_by_name["filter_review"].trigger()
    assert window.file_list.visible_names() == ["img1.png"]


def test_batch_without_weights_explains(qtbot, make_window, synthetic_folder):
    window = make_window([str(synthetic_folder.folder)])
    wait_image(qtbot, window, "img1.png")
    key(qtbot, window.canvas, "Ctrl+B")
    dialog = window._dialogs["batch"]
    dialog.text.setText("cup.")
    qtbot.mouseClick(dialog.run_button, _left())
    assert dialog.isVisible() and not window.batch_runner.running  # nothing starts; the dialog says why
    log = dialog.log_text()
    assert "not installed" in log and "Traceback" not in log
    assert all(
        ProjectFolder(synthetic_folder.folder).summary(n).status == ImageStatus.NEW for n in synthetic_folder.names
    )
    dialog.reject()


def _left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
