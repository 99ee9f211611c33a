"""SAM 2 backend: shapes, the embedding cache, refinement, validation, cancellation, weights errors."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from fixtures_models import make_test_image
from inference.cancel import CancelToken
from inference.errors import BackendUnavailableError, Cancelled, PromptError, WeightsMissingError
from inference.prompts import Box, Point, Prompt
from inference.results import PredictionKind


@pytest.fixture(scope="module")
def clicked(sam2_backend):
    """One image, three clicks: the encoder must run once for all of them."""
    image = make_test_image(1)
    runs_before = sam2_backend.encoder_runs
    first = sam2_backend.predict(image, Prompt(points=(Point(x=40, y=30),)))
    second = sam2_backend.predict(
        image,
        Prompt(
            points=(Point(x=40, y=30), Point(x=100, y=80, positive=False)),
            mask_input=first.best.low_res_logits,
            multimask=False,
        ),
    )
    third = sam2_backend.predict(
        image, Prompt(points=(Point(x=40, y=30), Point(x=100, y=80, positive=False)), multimask=False)
    )
    return image, first, second, third, sam2_backend.encoder_runs - runs_before


def test_multimask_click_gives_three_alternatives_with_full_resolution_masks(clicked):
    image, first, *_ = clicked
    assert first.kind is PredictionKind.ALTERNATIVES
    assert first.backend == "sam2" and first.model == "sam2.1_hiera_tiny"
    assert first.image_size == (96, 128)
    assert len(first.candidates) == 3
    scores = [c.score for c in first.candidates]
    assert scores == sorted(scores, reverse=True)
    for c in first.candidates:
        assert c.mask.shape == (96, 128) and c.mask.dtype == bool
        assert c.low_res_logits.shape == (256, 256) and c.low_res_logits.dtype == np.float32
        assert np.isfinite(c.score)
        x0, y0, x1, y1 = c.box
        assert 0 <= x0 <= x1 <= 128 and 0 <= y0 <= y1 <= 96
    assert first.timings["embedding_cached"] == 0.0 and first.timings["encode"] > 0


def test_encoder_runs_once_for_several_clicks(clicked, sam2_backend):
    image, first, second, third, runs = clicked
    assert runs == 1
    assert second.timings["embedding_cached"] == 1.0 and second.timings["encode"] == 0.0
    assert sam2_backend.is_encoded(first.image_key)
    assert first.image_key == second.image_key == sam2_backend.image_key(image)


def test_single_mask_and_mask_input_refinement_changes_the_output(clicked):
    _, first, refined, plain, _ = clicked
    assert len(refined.candidates) == 1 and len(plain.candidates) == 1
    # same points, with and without the previous logits: the logits must matter
    assert not np.array_equal(refined.candidates[0].low_res_logits, plain.candidates[0].low_res_logits)


def test_box_prompt_keeps_the_box_and_reuses_the_embedding(clicked, sam2_backend):
    image = clicked[0]
    runs = sam2_backend.encoder_runs
    pred = sam2_backend.predict(image, Prompt(box=Box(x0=10, y0=12, x1=70, y1=60), multimask=False))
    assert sam2_backend.encoder_runs == runs
    assert len(pred.candidates) == 1
    assert pred.candidates[0].box == (10.0, 12.0, 70.0, 60.0)


def test_neck_position_encoding_is_served_as_a_view_with_upstream_values(clicked, sam2_backend):
    import torch

    encoding = sam2_backend.sam_model.image_encoder.neck.position_encoding
    x = torch.zeros(1, 256, 256, 256)
    ours = encoding(x)
    upstream = type(encoding).forward(encoding, x)  # sam2's own code: a repeated copy
    assert torch.equal(ours, upstream) and ours.shape == (1, 256, 256, 256)
    assert ours.data_ptr() == encoding.cache[(256, 256)].data_ptr() != upstream.data_ptr()


def test_trunk_position_embedding_is_memoised_with_upstream_values(sam2_backend):
    import torch

    trunk = sam2_backend.sam_model.image_encoder.trunk
    first = trunk._get_pos_embed((256, 256))
    assert trunk._get_pos_embed((256, 256)) is first  # computed once per grid size
    assert torch.equal(first, type(trunk)._get_pos_embed(trunk, (256, 256)))
    other = trunk._get_pos_embed((64, 96))
    assert other.shape == (1, 64, 96, trunk.pos_embed.shape[1])


def test_encode_prefetches_and_predict_reuses(sam2_backend):
    image = make_test_image(2)
    key = sam2_backend.image_key(image)
    assert not sam2_backend.is_encoded(key)
    assert sam2_backend.encode(image) == key
    assert sam2_backend.is_encoded(key)
    runs = sam2_backend.encoder_runs
    assert sam2_backend.encode(image, image_key=key) == key  # cheap the second time
    pred = sam2_backend.predict(image, Prompt(points=(Point(x=5, y=5),)), image_key=key)
    assert sam2_backend.encoder_runs == runs
    assert pred.timings["embedding_cached"] == 1.0


@pytest.mark.parametrize(
    "prompt, field",
    [
        (Prompt(points=(Point(x=500, y=5),)), "points[0]"),
        (Prompt(box=Box(x0=10, y0=10, x1=10, y1=20)), "box"),
        (Prompt(), "points"),
        (Prompt(points=(Point(x=5, y=5),), mask_input=np.zeros((64, 64), np.float32)), "mask_input"),
        (Prompt(text="car"), "text"),
    ],
)
def test_bad_prompts_are_rejected_before_any_work(sam2_backend, prompt, field):
    runs = sam2_backend.encoder_runs
    with pytest.raises(PromptError) as err:
        sam2_backend.predict(make_test_image(3), prompt)
    assert err.value.field == field
    assert sam2_backend.encoder_runs == runs


def test_cancel_mid_encode_from_another_thread(sam2_backend):
    image = make_test_image(4)
    token = CancelToken()
    started = threading.Event()
    handle = sam2_backend.sam_model.image_encoder.trunk.blocks[1].register_forward_pre_hook(lambda *_: started.set())
    canceller = threading.Thread(target=lambda: (started.wait(60), token.cancel("a newer click")))
    canceller.start()
    try:
        with pytest.raises(Cancelled, match="a newer click"):
            sam2_backend.predict(image, Prompt(points=(Point(x=5, y=5),)), cancel=token)
    finally:
        handle.remove()
        canceller.join()
    assert not sam2_backend.is_encoded(sam2_backend.image_key(image))
    # the backend is still usable afterwards, and an already-cancelled token stops at once
    done = CancelToken()
    done.cancel()
    with pytest.raises(Cancelled):
        sam2_backend.encode(image, cancel=done)


def test_missing_explicit_checkpoint_names_the_path(tmp_path):
    from inference.backends import create_backend

    backend = create_backend("sam2", device="cpu", model="sam2.1_hiera_tiny", checkpoint=tmp_path / "nope.pt")
    with pytest.raises(WeightsMissingError) as err:
        backend.ensure_loaded()
    assert "nope.pt" in str(err.value) and "sam2.1_hiera_tiny" in str(err.value)


def test_missing_store_weights_say_how_to_download():
    from inference.backends import create_backend

    backend = create_backend("sam2", device="cpu", model="sam2.1_hiera_small")
    with pytest.raises(WeightsMissingError) as err:
        backend.ensure_loaded()
    assert "langsam-studio models download sam2.1_hiera_small" in str(err.value)


def test_wrong_size_or_corrupt_checkpoint_is_a_clear_error(tiny_sam2_checkpoint, tmp_path):
    from inference.sam2_model import build_sam2_model

    with pytest.raises(BackendUnavailableError, match="does not fit sam2.1_hiera_small"):
        build_sam2_model("sam2.1_hiera_small", checkpoint=tiny_sam2_checkpoint, device="cpu")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(BackendUnavailableError, match="not a readable SAM 2 checkpoint"):
        build_sam2_model("sam2.1_hiera_tiny", checkpoint=broken, device="cpu")
    with pytest.raises(BackendUnavailableError, match="unknown SAM 2 model"):
        build_sam2_model("sam3_huge", checkpoint=broken, device="cpu")


def test_loading_never_touches_the_network(tiny_sam2_checkpoint, monkeypatch):
    from inference.sam2_model import build_sam2_model

    def refuse(*_args, **_kwargs):
        raise AssertionError("network access while loading a local checkpoint")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model = build_sam2_model("sam2.1_hiera_t", checkpoint=tiny_sam2_checkpoint, device="cpu")
    # build_sam2-style post-processing on by default, Lang-SAM's way without it
    assert model.sam_mask_decoder.dynamic_multimask_via_stability is True
    plain = build_sam2_model("sam2.1_hiera_tiny", checkpoint=tiny_sam2_checkpoint, device="cpu", postprocessing=False)
    assert plain.sam_mask_decoder.dynamic_multimask_via_stability is False


def test_catalog_ids_map_to_sam2_configs():
    from inference.sam2_model import sam2_config_name

    assert sam2_config_name("sam2.1_hiera_tiny") == "configs/sam2.1/sam2.1_hiera_t.yaml"
    assert sam2_config_name("sam2.1_hiera_small") == "configs/sam2.1/sam2.1_hiera_s.yaml"
    assert sam2_config_name("sam2.1_hiera_base_plus") == "configs/sam2.1/sam2.1_hiera_b+.yaml"
    assert sam2_config_name("sam2.1_hiera_l") == "configs/sam2.1/sam2.1_hiera_l.yaml"
