"""SAM 3 backend on a tiny random checkpoint in the Hub layout, loaded with local_files_only.

Random weights: detection scores sit around 0.25, so tests that want detections use a low
``box_threshold``; outputs are meaningless, shapes, caching and plumbing are real.
"""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_models import make_test_image
from inference.cancel import CancelToken
from inference.errors import BackendUnavailableError, Cancelled, PromptError, WeightsMissingError
from inference.prompts import Box, Exemplar, Point, Prompt
from inference.results import PredictionKind

H, W = 96, 128
EX = Exemplar(box=Box(x0=10, y0=10, x1=50, y1=40))


def _check_instances(pred, *, labels=None):
    assert pred.kind is PredictionKind.INSTANCES and pred.backend == "sam3" and pred.image_size == (H, W)
    scores = [c.score for c in pred.candidates]
    assert scores == sorted(scores, reverse=True)
    for c in pred.candidates:
        assert c.mask.shape == (H, W) and c.mask.dtype == bool
        assert c.low_res_logits.dtype == np.float32 and c.low_res_logits.shape == (64, 64)
        x0, y0, x1, y1 = c.box
        assert 0 <= x0 <= x1 <= W and 0 <= y0 <= y1 <= H
        assert c.box_score == c.score
        if labels is not None:
            assert c.label in labels


def test_text_prompt_with_several_phrases_labels_each_detection(sam3_backend):
    pred = sam3_backend.predict(make_test_image(30), Prompt(text="Car. red person.", box_threshold=0.0))
    _check_instances(pred, labels={"car", "red person"})
    assert {c.label for c in pred.candidates} == {"car", "red person"}
    assert len(pred.candidates) == 40  # 20 queries per phrase, threshold 0
    assert pred.messages == ()


def test_thresholds_and_detection_cap(sam3_backend):
    image = make_test_image(30)
    raw = sam3_backend.detect(image, Prompt(text="car", box_threshold=0.0))
    cut = float(np.median(raw.scores))
    pred = sam3_backend.predict(image, Prompt(text="car", box_threshold=cut))
    assert all(c.score > cut for c in pred.candidates) and 0 < len(pred.candidates) < 20
    capped = sam3_backend.predict(image, Prompt(text="car", box_threshold=0.0, max_detections=3))
    assert [c.score for c in capped.candidates] == sorted(raw.scores.tolist(), reverse=True)[:3]


def test_mask_nms_removes_overlapping_masks(sam3_backend):
    image = make_test_image(30)
    plain = sam3_backend.detect(image, Prompt(text="car", box_threshold=0.0))
    nms = sam3_backend.detect(image, Prompt(text="car", box_threshold=0.0, nms_iou=0.3))
    assert 0 < len(nms.scores) < len(plain.scores)
    low = nms.logits > 0  # sigmoid > 0.5
    for i in range(len(low)):
        for j in range(i + 1, len(low)):
            inter = np.logical_and(low[i], low[j]).sum()
            union = np.logical_or(low[i], low[j]).sum()
            assert union == 0 or inter / union <= 0.3


def test_exemplars_alone_and_with_text_and_negative(sam3_backend):
    image = make_test_image(31)
    alone = sam3_backend.predict(image, Prompt(exemplars=(EX,), box_threshold=0.0, max_detections=5))
    _check_instances(alone)
    assert len(alone.candidates) == 5 and all(c.label is None for c in alone.candidates)
    text = sam3_backend.detect(image, Prompt(text="car", box_threshold=0.0))
    neg = sam3_backend.detect(
        image, Prompt(text="car", box_threshold=0.0, exemplars=(Exemplar(box=EX.box, positive=False),))
    )
    pos = sam3_backend.detect(image, Prompt(text="car", box_threshold=0.0, exemplars=(EX,)))
    assert set(neg.labels) == {"car"}
    # the exemplar (and its label) reaches the model: scores change with it and with its sign
    assert not np.allclose(np.sort(text.scores), np.sort(neg.scores))
    assert not np.allclose(np.sort(pos.scores), np.sort(neg.scores))


def test_clicks_box_and_refinement(sam3_backend):
    image = make_test_image(32)
    first = sam3_backend.predict(image, Prompt(points=(Point(x=40, y=30),)))
    assert first.kind is PredictionKind.ALTERNATIVES and len(first.candidates) == 3
    for c in first.candidates:
        assert c.mask.shape == (H, W) and c.mask.dtype == bool and c.low_res_logits.shape == (64, 64)
    pts = (Point(x=40, y=30), Point(x=100, y=80, positive=False))
    refined = sam3_backend.predict(image, Prompt(points=pts, mask_input=first.best.low_res_logits, multimask=False))
    plain = sam3_backend.predict(image, Prompt(points=pts, multimask=False))
    assert len(refined.candidates) == len(plain.candidates) == 1
    assert not np.array_equal(refined.candidates[0].low_res_logits, plain.candidates[0].low_res_logits)
    box = sam3_backend.predict(image, Prompt(box=Box(x0=10, y0=12, x1=70, y1=60), multimask=False))
    assert len(box.candidates) == 1 and box.candidates[0].box == (10.0, 12.0, 70.0, 60.0)
    # SAM 2-sized logits (256) are accepted too: the decoder resizes them
    resized = sam3_backend.predict(image, Prompt(points=pts, mask_input=np.zeros((256, 256), np.float32)))
    assert len(resized.candidates) == 3


def test_vit_runs_once_for_all_prompt_kinds(sam3_backend):
    """Text, exemplars, clicks, box, refinement and a repeated phrase: one ViT pass, one text pass per phrase."""
    image = make_test_image(33)
    key = sam3_backend.image_key(image)
    calls = []
    handle = sam3_backend.runtime.detector.vision_encoder.backbone.register_forward_hook(lambda *_: calls.append(1))
    text_runs = sam3_backend.runtime.text_runs
    expected_text_runs = 2 + ("visual" not in sam3_backend.runtime.text_cache)  # "bicycle", "dog" (+ "visual")
    try:
        assert not sam3_backend.is_encoded(key)
        assert sam3_backend.encode(image) == key and sam3_backend.is_encoded(key)
        preds = [
            sam3_backend.predict(image, Prompt(text="bicycle", box_threshold=0.0)),
            sam3_backend.predict(image, Prompt(text="bicycle. dog", box_threshold=0.0), image_key=key),
            sam3_backend.predict(image, Prompt(exemplars=(EX,), box_threshold=0.0)),
            sam3_backend.predict(image, Prompt(points=(Point(x=5, y=5),))),
            sam3_backend.predict(image, Prompt(box=Box(x0=1, y0=1, x1=60, y1=50))),
        ]
        preds.append(
            sam3_backend.predict(image, Prompt(points=(Point(x=5, y=5),), mask_input=preds[3].best.low_res_logits))
        )
    finally:
        handle.remove()
    assert len(calls) == 1
    assert all(p.timings["embedding_cached"] == 1.0 and p.timings["encode"] == 0.0 for p in preds)
    assert sam3_backend.runtime.text_runs - text_runs == expected_text_runs  # each phrase once
    # the tracker uses the detector's ViT: one set of weights
    assert sam3_backend.runtime.tracker.vision_encoder.backbone is sam3_backend.runtime.detector.vision_encoder.backbone


def test_shared_vit_gives_upstream_features(sam3_backend, tiny_sam3_dir):
    """Our one-pass encoding equals Sam3Model.get_vision_features and Sam3TrackerModel.get_image_embeddings."""
    import torch
    from transformers import Sam3Processor, Sam3TrackerModel

    image = make_test_image(34)
    runtime = sam3_backend.runtime
    pixels = Sam3Processor.from_pretrained(tiny_sam3_dir, local_files_only=True)(images=image, return_tensors="pt")[
        "pixel_values"
    ]
    assert torch.allclose(runtime.pixel_values(image), pixels, atol=1e-6)
    tracker = Sam3TrackerModel.from_pretrained(tiny_sam3_dir, local_files_only=True).eval()
    state = sam3_backend.embedding(image, sam3_backend.image_key(image))
    with torch.inference_mode():
        vision = runtime.detector.get_vision_features(pixel_values=pixels)
        embeddings = tracker.get_image_embeddings(pixels)
    for ours, theirs in zip(state.vision.fpn_hidden_states, vision.fpn_hidden_states):
        assert torch.allclose(ours, theirs, atol=1e-6)
    for ours, theirs in zip(state.tracker_embeddings, embeddings):
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_cancel_inside_the_vit_caches_nothing(sam3_backend):
    image = make_test_image(35)
    key = sam3_backend.image_key(image)
    token = CancelToken()
    layers = sam3_backend.runtime.detector.vision_encoder.backbone.layers
    seen = []

    def cancel_at_layer_1(module, _inputs):
        seen.append(module)
        token.cancel()

    handle = layers[1].register_forward_pre_hook(cancel_at_layer_1, prepend=True)
    runs = sam3_backend.encoder_runs
    try:
        with pytest.raises(Cancelled):
            sam3_backend.predict(image, Prompt(text="car"), cancel=token)
    finally:
        handle.remove()
    assert seen and sam3_backend.encoder_runs == runs and not sam3_backend.is_encoded(key)
    pred = sam3_backend.predict(image, Prompt(points=(Point(x=5, y=5),)))  # works afterwards
    assert pred.timings["embedding_cached"] == 0.0


def test_zero_detections_keep_full_resolution_shapes(sam3_backend):
    image = make_test_image(36)
    dets = sam3_backend.detect(image, Prompt(text="car", box_threshold=1.0))
    assert dets.masks.shape == (0, H, W) and dets.masks.dtype == bool
    assert dets.scores.shape == (0,) and dets.boxes.shape == (0, 4) and dets.logits.shape == (0, 64, 64)
    assert dets.labels == ()
    pred = sam3_backend.predict(image, Prompt(text="car", box_threshold=1.0, nms_iou=0.5))
    assert pred.candidates == () and pred.best is None and pred.kind is PredictionKind.INSTANCES


def test_long_prompt_is_truncated_with_a_message(sam3_backend):
    pred = sam3_backend.predict(make_test_image(37), Prompt(text="red " * 50 + "car", box_threshold=0.0))
    assert len(pred.candidates) == 20
    assert len(pred.messages) == 1 and "32" in pred.messages[0] and "beginning" in pred.messages[0]
    assert sam3_backend.count_text_tokens("red " * 50 + "car. dog") > 32
    sam3_backend.check_text_tokens("red " * 50 + "car")  # truncated with a message, never refused


def test_text_embeddings_are_cached_per_phrase(sam3_backend):
    runtime = sam3_backend.runtime
    first = runtime.text("green truck")
    runs = runtime.text_runs
    assert runtime.text("green truck") is first and runtime.text_runs == runs


@pytest.mark.parametrize(
    "prompt, field",
    [
        (Prompt(text="car", points=(Point(x=5, y=5),)), "points"),
        (Prompt(exemplars=(EX,), box=Box(x0=1, y0=1, x1=9, y1=9)), "box"),
        (Prompt(exemplars=(Exemplar(box=Box(x0=10, y0=10, x1=5, y1=20)),)), "exemplars[0]"),
        (Prompt(exemplars=(EX, Exemplar(box=Box(x0=500, y0=10, x1=600, y1=20)))), "exemplars[1]"),
        (Prompt(points=(Point(x=5, y=5),), mask_input=np.zeros((64, 32), np.float32)), "mask_input"),
        (Prompt(text="  . "), "text"),
    ],
)
def test_bad_prompts_name_the_field(sam3_backend, prompt, field):
    with pytest.raises(PromptError) as err:
        sam3_backend.predict(make_test_image(38), prompt)
    assert err.value.field == field


def test_other_backends_refuse_exemplars():
    from inference.backends import create_backend

    backend = create_backend("classic")
    with pytest.raises(PromptError) as err:
        backend.predict(make_test_image(39), Prompt(exemplars=(EX,)))
    assert err.value.field == "exemplars"


def test_missing_keys_are_an_error_not_random_weights(tmp_path):
    from inference.random_sam3 import write_random_sam3
    from inference.sam3_model import load_sam3

    folder = write_random_sam3(
        tmp_path / "sam3", drop_keys=("detector_model.text_projection.", "tracker_model.mask_decoder.conv_s0.")
    )
    with pytest.raises(BackendUnavailableError) as err:
        load_sam3(folder)
    assert "text_projection" in str(err.value)
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BackendUnavailableError):
        load_sam3(folder)
    with pytest.raises(WeightsMissingError):
        load_sam3(tmp_path / "nowhere")


def test_layout_check_and_catalog(tiny_sam3_dir, tmp_path):
    from inference.weights.catalog import get_model
    from inference.weights.store import WeightsStore

    spec = get_model("sam3")
    assert spec.licence == "SAM License" and spec.gated and spec.licence_url.startswith("https://huggingface.co/")
    store = WeightsStore(cache_dir=tmp_path / "models")
    assert store.set_override("sam3", tiny_sam3_dir) == tiny_sam3_dir.resolve()
    assert store.local_path("sam3") == tiny_sam3_dir.resolve()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "sam3_video"}')
    (broken / "model.safetensors").write_bytes((tiny_sam3_dir / "model.safetensors").read_bytes())
    with pytest.raises(Exception, match="tokenizer"):
        store.set_override("sam3", broken)
    (broken / "config.json").write_text('{"model_type": "grounding-dino"}')
    with pytest.raises(Exception, match="sam3_video"):
        store.set_override("sam3", broken)


def test_registry_and_info(sam3_backend):
    from inference.backends.registry import backend_names

    assert "sam3" in backend_names()
    info = sam3_backend.info()
    assert info.backend == "sam3" and info.supports_text and info.supports_points and info.device == "cpu"
