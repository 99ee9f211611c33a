"""One rule turns a prediction into annotation objects: the same text prompt saves the same
objects (labels, scores, masks, provenance) from the canvas, the segment CLI and the batch engine.

The unit tests pin the rule with hand-made predictions; the end-to-end test runs one prompt
through all three entry points on the tiny random-weight Lang-SAM of fixtures_models (one shared
loaded backend, so any difference comes from the entry points, not the model).
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from desktop_app.core.prediction_policy import PromptRecord, chosen_candidates, objects_from_prediction, text_phrases
from inference.prompts import DEFAULT_BOX_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_TEXT_THRESHOLD, Box, Point, Prompt
from inference.results import Candidate, Prediction, PredictionKind


def _mask(x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((20, 30), bool)
    mask[2:10, x0:x1] = True
    return mask


def _prediction(kind: PredictionKind, *candidates: Candidate) -> Prediction:
    return Prediction(
        candidates=candidates, kind=kind, image_key="k", backend="langsam", model="tiny", image_size=(20, 30)
    )


def test_text_detections_all_become_objects_scored_by_detection():
    cands = (
        Candidate(mask=_mask(0, 5), score=0.9, box=(0, 2, 5, 10), label=" cup ", box_score=0.6),
        Candidate(mask=_mask(5, 5), score=0.8, box=(5, 2, 5, 10), label="spoon", box_score=0.5),  # empty
        Candidate(mask=_mask(10, 20), score=0.7, box=(10, 2, 20, 10), label=None, box_score=0.4),
    )
    prompt = Prompt(text="Cup. Spoon", box_threshold=0.2)
    objects = objects_from_prediction(
        prediction=_prediction(PredictionKind.INSTANCES, *cands),
        prompt=prompt,
        fallback_label="thing",
        needs_review=True,
    )
    assert [o.label for o in objects] == ["cup", "thing"]  # empty mask dropped; no phrase: the caller's label
    assert [o.score for o in objects] == [0.6, 0.4]  # detection confidence, not SAM's IoU estimate
    assert all(o.source == "text" and o.needs_review for o in objects)
    assert objects[0].prompt == {
        "backend": "langsam",
        "model": "tiny",
        "text": "cup. spoon.",
        "box_threshold": 0.2,
        "text_threshold": DEFAULT_TEXT_THRESHOLD,
        "max_detections": DEFAULT_MAX_DETECTIONS,
        "mask_score": 0.9,
        "detection_box": [0.0, 2.0, 5.0, 10.0],
        "detection_score": 0.6,
    }
    json.dumps(objects[0].prompt)  # JSON-able as it is


def test_one_phrase_prompt_labels_an_unlabelled_detection_with_the_phrase():
    cand = Candidate(mask=_mask(0, 5), score=0.9, box=(0, 2, 5, 10), label="", box_score=0.6)
    (obj,) = objects_from_prediction(
        prediction=_prediction(PredictionKind.INSTANCES, cand), prompt=Prompt(text="red cup"), fallback_label="thing"
    )
    assert obj.label == "red cup" and not obj.needs_review
    assert text_phrases("Car.  red Person. .") == ["car", "red person"]


def test_point_prompt_gives_the_best_guess_with_the_callers_label():
    cands = (
        Candidate(mask=_mask(0, 5), score=0.5, box=(0, 2, 5, 10)),
        Candidate(mask=_mask(0, 9), score=0.9, box=(0, 2, 9, 10)),
    )
    prediction = _prediction(PredictionKind.ALTERNATIVES, *cands)
    prompt = Prompt(points=(Point(x=3, y=4), Point(x=1, y=1, positive=False)), box=Box(x0=0, y0=0, x1=9, y1=9))
    assert chosen_candidates(prediction) == [cands[1]]
    (obj,) = objects_from_prediction(prediction=prediction, prompt=prompt, fallback_label="thing")
    assert (obj.label, obj.score, obj.source) == ("thing", 0.9, "box")
    assert obj.prompt == {
        "backend": "langsam",
        "model": "tiny",
        "points": [[3.0, 4.0, 1], [1.0, 1.0, 0]],
        "box": [0.0, 0.0, 9.0, 9.0],
        "mask_score": 0.9,
    }
    record = PromptRecord.of(prompt=Prompt(points=(Point(x=3, y=4),)), prediction=prediction)
    assert record.source == "points"


def test_defaults_come_from_one_place(qtbot):
    from desktop_app.gui.controller import AnnotationController
    from desktop_app.gui.dialogs.batch_dialog import BatchDialog
    from desktop_app.gui.widgets.prompt_bar import PromptBar
    from inference import protocol

    bar = PromptBar()
    qtbot.addWidget(bar)
    shown = (bar.box_threshold.value(), bar.text_threshold.value(), bar.max_detections.value())
    assert shown == (DEFAULT_BOX_THRESHOLD, DEFAULT_TEXT_THRESHOLD, DEFAULT_MAX_DETECTIONS) == (0.3, 0.25, 50)
    defaults = AnnotationController.run_text.__kwdefaults__
    assert (defaults["box_threshold"], defaults["text_threshold"], defaults["max_detections"]) == shown
    prompt = Prompt(text="a.")
    assert (prompt.box_threshold, prompt.text_threshold, prompt.max_detections) == shown
    body = json.dumps({"image": base64.b64encode(_png()).decode(), "prompt": {"text": "a."}})
    decoded = protocol.decode_request(body, content_type="application/json").prompt  # no options sent
    assert (decoded.box_threshold, decoded.text_threshold, decoded.max_detections) == shown

    class _Project:
        folder = "f"

        def images(self):
            return []

    dialog = BatchDialog(project=_Project())
    qtbot.addWidget(dialog)
    assert (dialog.box_threshold.value(), dialog.text_threshold.value(), dialog.max_objects.value()) == shown


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# -- the same prompt through the three entry points ---------------------------------------------
TEXT = "red disk. blue box."
OPTIONS = {"box_threshold": 0.0, "text_threshold": 0.0, "max_detections": 3}  # random weights: let boxes through


def _saved_objects(doc, tmp_path, name: str) -> list[dict]:
    """The objects as saved in the document file, without what differs by nature (id, review flag)."""
    from desktop_app.core.annotation.storage import save_document

    path = save_document(doc, tmp_path / f"{name}.json")
    objects = json.loads(path.read_text(encoding="utf-8"))["objects"]
    for obj in objects:
        obj.pop("id")
        obj.pop("needs_review")
    return objects


@pytest.mark.slow
def test_one_text_prompt_saves_the_same_objects_everywhere(qtbot, core_app, tmp_path, monkeypatch, langsam_backend):
    from PIL import Image

    from desktop_app.cli.main import main
    from desktop_app.core.annotation.project import ProjectFolder
    from desktop_app.core.batch import run_batch
    from desktop_app.core.formats import registry as formats
    from fixtures_app_core import open_image, scene_image
    from inference.backends import registry

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(scene_image()).save(folder / "scene.png")

    # 1. the canvas: run the prompt, Enter accepts every detection
    canvas, controller = core_app
    with qtbot.waitSignal(controller.backend_changed, timeout=120_000):
        controller.worker.use_backend(langsam_backend)
    doc = open_image(qtbot, controller, str(folder / "scene.png"))
    with qtbot.waitSignal(controller.candidates_changed, timeout=180_000, check_params_cb=lambda s: s is not None):
        controller.run_text(TEXT, **OPTIONS)
    controller.accept()
    gui = _saved_objects(doc, tmp_path, "gui")

    # 2. `langsam-studio segment`, on the same loaded backend; the documents it exports are kept
    monkeypatch.setattr(
        registry, "create_backend", lambda name, **options: langsam_backend if name == "langsam" else pytest.fail(name)
    )
    exported = []
    monkeypatch.setattr(formats, "get_exporter", lambda name: lambda docs, **kw: exported.extend(docs) or [])
    code = main(
        [
            "segment",
            str(folder),
            "--text",
            TEXT,
            "--box-threshold",
            "0",
            "--text-threshold",
            "0",
            "--max-detections",
            "3",
            "--format",
            "coco",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert code == 0 and len(exported) == 1
    cli = _saved_objects(exported[0], tmp_path, "cli")

    # 3. the batch engine, with the project folder's own saving
    project = ProjectFolder(folder)
    result = run_batch(
        project=project,
        image_names=["scene.png"],
        prompt=Prompt(text=TEXT, **OPTIONS),
        predict=lambda image, prompt, *, cancel=None: langsam_backend.predict(image, prompt, cancel=cancel),
    )
    assert result.changed == ("scene.png",) and result.problems == ()
    saved = ProjectFolder(folder).load("scene.png")
    assert all(o.needs_review for o in saved.objects) and not any(o.needs_review for o in doc.objects)
    batch = _saved_objects(saved, tmp_path, "batch")

    assert 1 <= len(gui) <= 3
    assert gui == cli == batch
    first = gui[0]
    assert first["source"] == "text" and first["prompt"]["text"] == TEXT
    assert first["prompt"]["backend"] == "langsam" and first["score"] == first["prompt"]["detection_score"]
    assert (first["prompt"]["box_threshold"], first["prompt"]["max_detections"]) == (0.0, 3)
