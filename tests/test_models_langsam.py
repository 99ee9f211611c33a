"""Lang-SAM backend and the ``from inference import LangSAM`` drop-in."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fixtures_models import make_test_image
from inference.cancel import CancelToken
from inference.errors import Cancelled, PromptError, WeightsMissingError
from inference.prompts import Point, Prompt
from inference.results import PredictionKind


@pytest.fixture(scope="module")
def text_run(langsam_backend):
    image = make_test_image(30, height=90, width=120)
    cache = langsam_backend.gdino.backbone_cache
    calls, runs = cache.calls, langsam_backend.encoder_runs
    first = langsam_backend.predict(image, Prompt(text="car. person", max_detections=7))
    second = langsam_backend.predict(image, Prompt(text="Dog", max_detections=5, box_threshold=0.35))
    return image, first, second, cache.calls - calls, langsam_backend.encoder_runs - runs


def test_text_prompt_gives_capped_instances_inside_the_image(text_run):
    image, first, *_ = text_run
    assert first.kind is PredictionKind.INSTANCES and first.backend == "langsam"
    assert len(first.candidates) == 7  # random weights detect far more than 7: the cap applies
    assert first.timings["detections_before_selection"] > 7
    box_scores = [c.box_score for c in first.candidates]
    assert box_scores == sorted(box_scores, reverse=True)
    for c in first.candidates:
        assert isinstance(c.label, str) and c.label
        assert c.mask.shape == (90, 120) and c.mask.dtype == bool
        assert c.low_res_logits.shape == (256, 256)
        x0, y0, x1, y1 = c.box
        assert 0 <= x0 < x1 <= 120 and 0 <= y0 < y1 <= 90
        assert 0.3 < c.box_score <= 1.0 and np.isfinite(c.score)


def test_second_text_prompt_reuses_both_image_encoders(text_run):
    *_, second, backbone_runs, sam_runs = text_run
    assert backbone_runs == 1 and sam_runs == 1
    assert second.timings["embedding_cached"] == 1.0
    assert all(c.box_score > 0.35 for c in second.candidates) and len(second.candidates) == 5


def test_zero_detections_is_an_empty_answer_not_an_error(langsam_backend):
    pred = langsam_backend.predict(make_test_image(30, height=90, width=120), Prompt(text="car", box_threshold=1.0))
    assert pred.candidates == () and pred.best is None and pred.kind is PredictionKind.INSTANCES


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_nms_leaves_no_overlapping_detections(langsam_backend, text_run):
    pred = langsam_backend.predict(text_run[0], Prompt(text="car", max_detections=12, nms_iou=0.1))
    boxes = [c.box for c in pred.candidates]
    assert len(boxes) == 12
    assert max(_iou(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]) <= 0.1


def test_geometry_prompts_use_the_same_sam(langsam_backend, text_run):
    runs = langsam_backend.encoder_runs
    pred = langsam_backend.predict(text_run[0], Prompt(points=(Point(x=30, y=30),)))
    assert pred.kind is PredictionKind.ALTERNATIVES and len(pred.candidates) == 3
    assert langsam_backend.encoder_runs == runs


def test_cancel_stops_grounding_dino_inside_its_forward(langsam_backend):
    """The token is checked before each Swin/BERT/encoder/decoder layer, not only between steps:
    a superseded text prompt (or closing the app) does not wait for a forward of seconds."""
    image = make_test_image(seed=7)
    token = CancelToken()
    token.cancel("a newer prompt")
    calls = []
    swin = next(m for m in langsam_backend.gdino.model.modules() if type(m).__name__ == "SwinLayer")
    handle = swin.register_forward_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(Cancelled, match="a newer prompt"):
            langsam_backend.detect([image], ["a cat."], cancel=token)
    finally:
        handle.remove()
    assert calls == []  # stopped before the first Swin layer ran
    assert len(langsam_backend.detect([image], ["a cat."])) == 1  # an uncancelled call still works


def test_empty_text_is_rejected(langsam_backend):
    with pytest.raises(PromptError, match="empty"):
        langsam_backend.predict(make_test_image(31), Prompt(text=" . "))


# -- the LangSAM drop-in -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compat(tiny_sam2_checkpoint, tiny_gdino_dir):
    from inference import LangSAM

    return LangSAM(
        "sam2.1_hiera_tiny",
        sam_ckpt_path=str(tiny_sam2_checkpoint),
        gdino_model_ckpt_path=str(tiny_gdino_dir),
        device="cpu",
    )


@pytest.fixture(scope="module")
def compat_image():
    return Image.fromarray(make_test_image(40, height=72, width=100))


@pytest.fixture(scope="module")
def lang_sam_reference(tiny_sam2_checkpoint, tiny_gdino_dir, compat_image):
    """Lang-SAM v0.2.3's predict, step for step, on the raw sam2 / transformers components.

    Loaded once per module: the Grounding DINO forward and SAM 2's ``set_image_batch`` do not
    depend on the threshold, so they run once and each call post-processes and decodes (Lang-SAM
    repeats them per call with the same result).
    """
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    from inference.sam2_model import build_sam2_model

    processor = AutoProcessor.from_pretrained(tiny_gdino_dir, local_files_only=True)
    model = AutoModelForZeroShotObjectDetection.from_pretrained(tiny_gdino_dir, local_files_only=True).eval()
    inputs = processor(images=[compat_image], text=["car."], padding=True, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    predictor = SAM2ImagePredictor(
        build_sam2_model("sam2.1_hiera_tiny", checkpoint=tiny_sam2_checkpoint, device="cpu", postprocessing=False)
    )
    predictor.set_image_batch([np.asarray(compat_image)])

    def run(box_threshold, text_threshold=0.25):
        r = processor.post_process_grounded_object_detection(
            outputs,
            inputs.input_ids,
            box_threshold,
            text_threshold=text_threshold,
            target_sizes=[compat_image.size[::-1]],
        )[0]
        r = {"scores": r["scores"].numpy(), "boxes": r["boxes"].numpy(), "labels": r["text_labels"]}
        if r["labels"]:
            masks, scores, _ = predictor.predict_batch(box_batch=[r["boxes"]], multimask_output=False)
            r["masks"] = masks[0].squeeze(1) if masks[0].ndim > 3 else masks[0]
            r["mask_scores"] = np.squeeze(scores[0])
        return r

    return run


def _threshold_for(compat, image, count):
    """A box threshold that keeps exactly ``count`` detections of 'car' on ``image``."""
    dets = compat.backend.detect([np.array(image)], ["car."], box_threshold=0.0)[0]  # no SAM work
    scores = np.sort(dets.scores)[::-1]
    assert scores[count - 1] > scores[count], "ties in the random model's scores"
    return float((scores[count - 1] + scores[count]) / 2)


@pytest.fixture()
def small_box_batch(monkeypatch):
    """SAM_BOX_BATCH = 5, so the batch limit is exercised with few (cheap) boxes."""
    import inference.backends.langsam_backend as module

    monkeypatch.setattr(module, "SAM_BOX_BATCH", 5)
    return 5


@pytest.mark.parametrize("count", [1, 5])  # 5 = the (patched) batch limit: still one decoder call
def test_compat_matches_lang_sam_exactly(compat, compat_image, lang_sam_reference, small_box_batch, count):
    threshold = _threshold_for(compat, compat_image, count)
    ours = compat.predict([compat_image], ["car"], box_threshold=threshold)[0]
    ref = lang_sam_reference(threshold)
    assert ours["labels"] == ref["labels"] == ours["text_labels"]
    np.testing.assert_array_equal(ours["boxes"], ref["boxes"])
    np.testing.assert_array_equal(ours["scores"], ref["scores"])
    np.testing.assert_array_equal(ours["masks"], ref["masks"])
    np.testing.assert_array_equal(ours["mask_scores"], np.atleast_1d(ref["mask_scores"]))
    # Lang-SAM's shape defect for one detection (0-d mask_scores) is fixed
    assert ours["mask_scores"].shape == (count,) and ours["masks"].shape == (count, 72, 100)


def test_backend_text_prompt_matches_lang_sam_exactly(langsam_backend, compat, compat_image, lang_sam_reference):
    """The backend's answer (clipped boxes, sorted by score) has Lang-SAM's masks bit for bit.

    Random boxes reach outside the image: SAM must get them unclipped, as Lang-SAM gives them.
    """
    dets = compat.backend.detect([np.array(compat_image)], ["car."], box_threshold=0.0)[0]
    boxes = dets.boxes[np.argsort(-dets.scores, kind="stable")]
    outside = np.flatnonzero((boxes[:, :2] < 0).any(1) | (boxes[:, 2] > 100) | (boxes[:, 3] > 72))
    count = max(int(outside[0]) + 1, 3)  # the best few detections, one of them reaching outside
    assert count <= 40
    threshold = _threshold_for(compat, compat_image, count)
    ref = lang_sam_reference(threshold)
    pred = langsam_backend.predict(np.array(compat_image), Prompt(text="car", box_threshold=threshold))
    order = np.argsort(-ref["scores"], kind="stable")
    assert [c.box_score for c in pred.candidates] == [float(v) for v in ref["scores"][order]]
    np.testing.assert_array_equal(np.stack([c.mask for c in pred.candidates]), ref["masks"][order].astype(bool))
    np.testing.assert_array_equal(
        np.array([c.score for c in pred.candidates], np.float32), np.atleast_1d(ref["mask_scores"])[order]
    )
    clipped = np.clip(ref["boxes"][order], 0, [100, 72, 100, 72])
    np.testing.assert_array_equal(np.array([c.box for c in pred.candidates], np.float32), clipped)


def test_more_boxes_than_one_decoder_call_agree_within_float_rounding(
    compat, compat_image, lang_sam_reference, small_box_batch
):
    count = small_box_batch + 3
    threshold = _threshold_for(compat, compat_image, count)
    ours = compat.predict([compat_image], ["car"], box_threshold=threshold)[0]
    ref = lang_sam_reference(threshold)
    np.testing.assert_array_equal(ours["boxes"], ref["boxes"])
    np.testing.assert_allclose(ours["mask_scores"], ref["mask_scores"], rtol=0, atol=1e-4)
    assert (ours["masks"] != ref["masks"]).mean() < 1e-3


def test_compat_shapes_and_dtypes_for_zero_one_and_many(compat, compat_image):
    one, six = _threshold_for(compat, compat_image, 1), _threshold_for(compat, compat_image, 6)
    for threshold, n in ((1.0, 0), (one, 1), (six, 6)):
        result = compat.predict(compat_image, "car.", box_threshold=threshold)  # bare image and string
        assert len(result) == 1
        r = result[0]
        assert set(r) == {"boxes", "scores", "labels", "text_labels", "masks", "mask_scores"}
        assert r["boxes"].shape == (n, 4) and r["boxes"].dtype == np.float32
        assert r["scores"].shape == (n,) and r["scores"].dtype == np.float32
        assert r["masks"].shape == (n, 72, 100) and r["masks"].dtype == np.float32
        assert set(np.unique(r["masks"])) <= {0.0, 1.0}
        assert r["mask_scores"].shape == (n,) and r["mask_scores"].dtype == np.float32
        assert len(r["labels"]) == n and all(isinstance(s, str) for s in r["labels"])


def test_compat_several_images_one_dict_each(compat, compat_image):
    other = Image.fromarray(make_test_image(41, height=50, width=60)).convert("RGBA")
    results = compat.predict([compat_image, other], ["car", "person."], box_threshold=1.0)
    assert len(results) == 2
    assert results[1]["masks"].shape[1:] == (50, 60)


def test_compat_rejects_bad_input_with_clear_messages(compat, compat_image):
    with pytest.raises(ValueError, match="empty"):
        compat.predict([compat_image], [""])
    with pytest.raises(ValueError, match="2 images but 3 text prompts"):
        compat.predict([compat_image, compat_image], ["a", "b", "c"])
    with pytest.raises(ValueError, match="box_threshold"):
        compat.predict(compat_image, "car", box_threshold=1.5)


def test_compat_never_downloads_missing_weights(tiny_sam2_checkpoint):
    from inference import LangSAM

    with pytest.raises(WeightsMissingError, match="langsam-studio models download grounding-dino-base"):
        LangSAM("sam2.1_hiera_tiny", sam_ckpt_path=str(tiny_sam2_checkpoint), device="cpu")
    with pytest.raises(ValueError, match="unknown sam_type"):
        LangSAM("vit_h")
