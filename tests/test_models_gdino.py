"""Grounding DINO: random checkpoints, offline loading, the backbone cache, thresholds, selection."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from fixtures_models import make_test_image
from inference.errors import WeightsMissingError
from inference.gdino_model import Detections, GroundingDino


@pytest.fixture(scope="module")
def gdino(tiny_gdino_dir):
    return GroundingDino(directory=tiny_gdino_dir, device="cpu")


def test_test_tokenizer_keeps_the_ids_grounding_dino_hard_codes(tiny_gdino_dir):
    lines = (tiny_gdino_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 1030
    assert (lines[101], lines[102], lines[1012], lines[1029]) == ("[CLS]", "[SEP]", ".", "?")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gdino_dir, local_files_only=True)
    ids = tok("a car. person?")["input_ids"]
    assert ids[0] == 101 and ids[-1] == 102 and 1012 in ids and 1029 in ids and 100 not in ids


def test_loads_offline_without_network(tiny_gdino_dir, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("network access while loading a local model")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model = GroundingDino(directory=tiny_gdino_dir, device="cpu", cache_backbone=False)
    assert model.backbone_cache is None
    assert (tiny_gdino_dir / "preprocessor_config.json").is_file()


def test_cached_backbone_gives_bit_identical_outputs_and_skips_the_swin(gdino):
    image = make_test_image(20)
    pixels = gdino.preprocess_images([image])
    cache = gdino.backbone_cache
    cache.enabled = False
    try:
        reference = gdino.forward(pixels, gdino.tokenize(["dog."]))
    finally:
        cache.enabled = True
    calls, hits, projections = cache.calls, cache.hits, cache.projection_hits
    first = gdino.forward(pixels, gdino.tokenize(["car. person."]))
    second = gdino.forward(pixels, gdino.tokenize(["dog."]))
    assert cache.calls == calls + 1 and cache.hits == hits + 1  # second prompt skipped the backbone
    levels = gdino.model.config.num_feature_levels
    assert cache.projection_hits == projections + levels  # ... and the input projections of its maps
    assert torch.equal(second.logits, reference.logits)
    assert torch.equal(second.pred_boxes, reference.pred_boxes)
    assert not torch.equal(first.logits[..., :3], second.logits[..., :3])  # the text does matter
    # another image is another key
    other = gdino.preprocess_images([make_test_image(21)])
    gdino.forward(other, gdino.tokenize(["dog."]))
    assert cache.calls == calls + 2
    # equal content in a new tensor object is still a hit; an in-place edit is a new key
    gdino.forward({k: v.clone() for k, v in other.items()}, gdino.tokenize(["dog."]))
    assert cache.calls == calls + 2
    other["pixel_values"][0, 0, 0, 0] += 1.0
    gdino.forward(other, gdino.tokenize(["dog."]))
    assert cache.calls == calls + 3


def test_split_preprocessing_equals_the_processor_lang_sam_calls(gdino):
    from PIL import Image

    image = make_test_image(22)
    joint = gdino.processor(images=[Image.fromarray(image)], text=["car. person."], padding=True, return_tensors="pt")
    split = {**gdino.preprocess_images([image]), **gdino.tokenize(["car. person."])}
    assert set(joint) == set(split)
    for name in joint:
        assert torch.equal(joint[name], split[name]), name


def test_thresholds_filter_detections(gdino):
    image = make_test_image(23)
    loose, strict = (gdino.detect([image], ["car."], box_threshold=t, text_threshold=0.25)[0] for t in (0.3, 0.9))
    assert len(loose) >= len(strict)
    assert loose.boxes.shape == (len(loose), 4) and loose.boxes.dtype == np.float32
    assert loose.scores.dtype == np.float32 and len(loose.labels) == len(loose)
    assert (loose.scores > 0.3).all() and (strict.scores > 0.9).all()
    none = gdino.detect([image], ["car."], box_threshold=1.0)[0]
    assert len(none) == 0 and none.boxes.shape == (0, 4) and none.labels == ()  # not ("",)


def test_missing_folder_is_weights_missing(tmp_path):
    with pytest.raises(WeightsMissingError, match="does not exist"):
        GroundingDino(directory=tmp_path / "nowhere")
    with pytest.raises(WeightsMissingError, match="config.json"):
        GroundingDino(directory=tmp_path)


def _dets(boxes, scores):
    return Detections(
        boxes=np.array(boxes, np.float32).reshape(-1, 4),
        scores=np.array(scores, np.float32),
        labels=tuple(f"l{i}" for i in range(len(scores))),
    )


def test_selection_clips_boxes_and_drops_boxes_outside():
    from inference.backends.langsam_backend import select_detections

    dets = _dets([[-10, -5, 50, 40], [90, 10, 130, 200], [150, 10, 160, 20]], [0.5, 0.9, 0.8])
    out = select_detections(dets, width=100, height=80)
    assert out.labels == ("l1", "l0")  # the third box lies outside the image
    np.testing.assert_array_equal(out.boxes, [[90, 10, 100, 80], [0, 0, 50, 40]])
    raw = select_detections(dets, width=100, height=80, clip=False)
    assert len(raw) == 3 and raw.boxes.min() == -10


def test_selection_caps_keeping_the_highest_scores_and_applies_nms():
    from inference.backends.langsam_backend import select_detections

    dets = _dets([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [0.4, 0.6, 0.5, 0.3])
    top2 = select_detections(dets, width=100, height=100, max_detections=2)
    assert top2.labels == ("l1", "l2")
    assert top2.scores.tolist() == pytest.approx([0.6, 0.5])
    nms = select_detections(dets, width=100, height=100, nms_iou=0.5)
    assert nms.labels == ("l1", "l2", "l3")  # l0 overlaps l1 (IoU 0.81) and scores lower
    empty = select_detections(_dets([], []), width=10, height=10, nms_iou=0.5, max_detections=3)
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)
