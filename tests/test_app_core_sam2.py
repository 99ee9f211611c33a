"""The whole core with a random-weight SAM 2.1 hiera-tiny (and a small random Grounding DINO):
clicks through the canvas, multimask candidates, refinement with the previous logits, accept,
undo, a text prompt's detections; the GUI loop never stalls while the encoder runs.

Random weights make the masks meaningless, so these tests check the flow and the shapes; the
mask quality is checked with the classic backend in test_app_core_controller.py."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from desktop_app.core.prediction_policy import canonical_label, text_phrases
from fixtures_app_core import open_image, screen_point
from inference.results import PredictionKind
from test_app_core_worker import STALL_LIMIT_S, LoopWatch

pytest.importorskip("pytestqt")


def _use(qtbot, controller, backend):
    with qtbot.waitSignal(controller.backend_changed, timeout=120_000):
        controller.worker.use_backend(backend)


def test_sam2_clicks_refine_accept_undo(qtbot, core_app, scene_path, sam2_backend):
    canvas, controller = core_app
    _use(qtbot, controller, sam2_backend)
    keys = []
    controller.worker.encoded.connect(keys.append)
    watch = LoopWatch(qtbot)
    doc = open_image(qtbot, controller, scene_path)
    image_key = controller.image.key
    qtbot.waitUntil(lambda: image_key in keys, timeout=180_000)  # the image on screen is encoded at once
    worst = watch.stop()
    assert worst < STALL_LIMIT_S, f"the GUI loop stalled {worst * 1000:.0f} ms while the encoder ran"
    assert sam2_backend.is_encoded(image_key)

    controller.set_active_label("thing")
    runs = sam2_backend.encoder_runs
    with qtbot.waitSignal(controller.candidates_changed, timeout=60_000, check_params_cb=lambda s: s is not None) as b:
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=screen_point(canvas, 80, 80))
    first = b.args[0]
    assert first.kind is PredictionKind.ALTERNATIVES and first.source == "points"
    assert len(first.candidates) == 3 and first.index == 0  # one click: multimask
    assert all(c.mask.shape == (doc.height, doc.width) for c in first.candidates)
    scores = [c.score for c in first.candidates]
    assert scores == sorted(scores, reverse=True)
    # Tab focuses the next guess; its logits feed the next click
    with qtbot.waitSignal(controller.candidates_changed, timeout=5_000) as b:
        qtbot.keyClick(canvas, Qt.Key.Key_Tab)
    assert b.args[0].index == 1 and b.args[0].focused is first.candidates[1]
    assert controller.prompting.logits is first.candidates[1].low_res_logits
    # a negative Shift+click refines: one mask, previous logits as mask_input
    with qtbot.waitSignal(controller.candidates_changed, timeout=60_000, check_params_cb=lambda s: s is not None) as b:
        qtbot.mouseClick(
            canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, screen_point(canvas, 150, 182)
        )
    second = b.args[0]
    assert len(second.candidates) == 1
    assert [p.positive for p in controller.prompt_points] == [True, False]
    assert sam2_backend.encoder_runs == runs  # clicks never re-run the encoder
    with qtbot.waitSignal(controller.document_changed, timeout=5_000):
        qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert len(doc) == 1 and doc.objects[0].label == "thing"
    assert np.array_equal(doc.objects[0].mask, second.focused.mask)
    recorded = doc.objects[0].prompt["points"]
    assert [p[2] for p in recorded] == [1, 0] and abs(recorded[0][0] - 80.5) < 1 and abs(recorded[1][1] - 182.5) < 1
    controller.history.stack.undo()
    assert len(doc) == 0
    controller.history.stack.redo()
    assert np.array_equal(doc.objects[0].mask, second.focused.mask)
    canvas.grab().save("/tmp/app_core_sam2.png")


def test_text_prompt_detections_accept_one_then_all(qtbot, core_app, scene_path, langsam_backend):
    canvas, controller = core_app
    _use(qtbot, controller, langsam_backend)
    doc = open_image(qtbot, controller, scene_path)
    # random weights: a zero threshold guarantees detections to review
    with qtbot.waitSignal(controller.candidates_changed, timeout=180_000, check_params_cb=lambda s: s is not None) as b:
        controller.run_text("red disk. blue box.", box_threshold=0.0, text_threshold=0.0, max_detections=4)
    state = b.args[0]
    assert state.kind is PredictionKind.INSTANCES and state.source == "text"
    n = len(state.candidates)
    assert 2 <= n <= 4
    assert all(c.label for c in state.candidates)
    qtbot.keyClick(canvas, Qt.Key.Key_Tab)
    focused = controller.candidates.focused
    qtbot.keyClick(canvas, Qt.Key.Key_F)  # accept the focused detection only
    added = [o for o in doc.objects]
    kept_masks = [c for c in [focused] if c.mask.any()]
    assert len(added) == len(kept_masks)
    if added:
        # saved with the prompt phrase the raw decoded label stands for, never the raw string
        expected = canonical_label(focused.label, text_phrases("red disk. blue box."))
        assert added[0].label == expected and expected in ("red disk", "blue box")
        assert added[0].source == "text"
        assert added[0].prompt["text"] == "red disk. blue box."
    assert len(controller.candidates.candidates) == n - 1
    qtbot.keyClick(canvas, Qt.Key.Key_Return)  # the rest, all at once
    non_empty = sum(1 for c in state.candidates if c.mask.any())
    assert len(doc) == non_empty and controller.candidates is None
    phrases = text_phrases("red disk. blue box.")
    assert {o.label for o in doc.objects} <= {canonical_label(c.label, phrases) for c in state.candidates}
