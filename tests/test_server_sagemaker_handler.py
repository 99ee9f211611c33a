"""The SageMaker handler (model_fn/input_fn/predict_fn/output_fn) and the model directory layout.

``ToolkitContext`` stands in for TorchServe's ``ts.context.Context`` (not installed in this
environment): it offers the three calls the handler makes, with TorchServe's signatures. The
real DLC stack runs the handler end to end in the packaging engineer's tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures_server import encode_image, scene_image
from inference import protocol as P
from inference import sagemaker_handler as H
from inference.errors import WeightsMissingError
from inference.prompts import Point, Prompt


class ToolkitContext:
    """TorchServe's context calls used by the handler: request headers in, status/headers out."""

    def __init__(self, headers: dict[str, str] | None = None) -> None:
        self.request_headers = dict(headers or {})
        self.status = (200, "")
        self.response_headers: dict[str, str] = {}

    def get_all_request_header(self, idx: int) -> dict[str, str]:
        return self.request_headers

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.status = (code, phrase)

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.response_headers[key] = value


def _invoke(model, body, content_type, *, headers=None, accept="application/json"):
    """What the toolkit does per request (JSON bodies arrive decoded to str)."""
    ctx = ToolkitContext(headers)
    data = body.decode("utf-8") if content_type == "application/json" else body
    out_body, out_type = H.output_fn(H.predict_fn(H.input_fn(data, content_type, ctx), model, ctx), accept, ctx)
    return ctx, out_body, out_type


@pytest.fixture(scope="module")
def classic_model(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("model")
    H.write_model_dir_config(model_dir, backend="classic", device="cpu")
    return H.model_fn(str(model_dir))


def test_json_request_through_the_four_functions(classic_model):
    body, ctype, _ = P.encode_request(
        P.SegmentRequest(prompt=Prompt(points=(Point(x=96, y=120),)), image=encode_image(scene_image(31)))
    )
    ctx, out, out_type = _invoke(classic_model, body, ctype)
    assert ctx.status[0] == 200 and out_type == "application/json"
    pred = P.decode_response(out).prediction
    assert pred.backend == "classic" and pred.best.mask[120, 96]


def test_raw_image_custom_attributes_and_session(classic_model):
    jpeg = encode_image(scene_image(32), "JPEG")
    body, ctype, headers = P.encode_request(
        P.SegmentRequest(prompt=Prompt(points=(Point(x=96, y=120),)), image=jpeg), raw=True
    )
    lower = {k.lower(): v for k, v in headers.items()}  # header case is whatever the front end passes
    ctx, out, _ = _invoke(classic_model, body, ctype, headers={**lower, P.SESSION_HEADER.lower(): P.NEW_SESSION})
    assert ctx.status[0] == 200
    session = ctx.response_headers[P.NEW_SESSION_HEADER].split(";")[0]
    assert ctx.response_headers[P.SESSION_HEADER] == ctx.response_headers[P.NEW_SESSION_HEADER]
    click = json.dumps({"prompt": {"points": [[100, 118, 1]]}}).encode()
    ctx2, out2, _ = _invoke(classic_model, click, "application/json", headers={P.SESSION_HEADER: session})
    assert ctx2.status[0] == 200 and ctx2.response_headers["X-LangSAM-Image-Cache"] == "hit"
    assert P.decode_response(out2).image_id == P.content_id(jpeg)


@pytest.mark.parametrize(
    "body, ctype, accept, status, field",
    [
        (b'{"image": 1', "application/json", "application/json", 400, "body"),
        (b"x,y", "text/csv", "application/json", 415, "Content-Type"),
        (json.dumps({"image": "@@", "prompt": {"points": [[1, 1]]}}).encode(), "application/json", None, 400, "image"),
        (
            json.dumps({"image_id": "unknown1", "prompt": {"points": [[1, 1]]}}).encode(),
            "application/json",
            "*/*",
            404,
            "image_id",
        ),
    ],
)
def test_bad_requests_get_a_4xx_json_body_without_traceback(classic_model, body, ctype, accept, status, field):
    ctx, out, out_type = _invoke(classic_model, body, ctype, accept=accept)
    assert ctx.status[0] == status and out_type == "application/json"
    info = P.decode_error(out)
    assert info.field == field and info.status == status and "Traceback" not in out.decode()


def test_unsupported_accept_is_406(classic_model):
    body, ctype, _ = P.encode_request(
        P.SegmentRequest(prompt=Prompt(points=(Point(x=96, y=120),)), image=encode_image(scene_image(33)))
    )
    ctx, out, _ = _invoke(classic_model, body, ctype, accept="image/png")
    assert ctx.status[0] == 406 and P.decode_error(out).field == "Accept"


def test_without_a_context_the_status_is_still_known(classic_model):
    failed = H.predict_fn(H.input_fn("{", "application/json"), classic_model)
    assert H.handler_status(failed) == 400
    body, _ = H.output_fn(failed, "application/json")
    assert P.decode_error(body).field == "body"


def test_model_dir_layout_errors_name_what_is_missing(tmp_path):
    with pytest.raises(WeightsMissingError, match="langsam-config.json is missing"):
        H.resolve_model_dir(tmp_path)
    H.write_model_dir_config(tmp_path, backend="sam2", model="sam2.1_hiera_tiny")
    with pytest.raises(WeightsMissingError, match=r"exactly one SAM 2 checkpoint \(\*\.pt\).*found 0"):
        H.resolve_model_dir(tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "a.pt").write_bytes(b"x")
    (tmp_path / "weights" / "b.pt").write_bytes(b"x")
    with pytest.raises(WeightsMissingError, match="found 2 .*a.pt, b.pt"):
        H.resolve_model_dir(tmp_path)
    (tmp_path / "weights" / "sam2.1_hiera_tiny.pt").write_bytes(b"x")  # the model's own name wins
    spec = H.resolve_model_dir(tmp_path, device="cpu")
    assert spec.backend == "sam2" and spec.options["checkpoint"].endswith("weights/sam2.1_hiera_tiny.pt")
    H.write_model_dir_config(tmp_path, backend="langsam", checkpoint="weights/a.pt")
    with pytest.raises(WeightsMissingError, match="grounding-dino-"):
        H.resolve_model_dir(tmp_path)
    (tmp_path / "weights" / "grounding-dino-tiny").mkdir()
    spec = H.resolve_model_dir(tmp_path / "code")  # TorchServe may hand over model_dir/code
    assert spec.options["gdino_path"].endswith("weights/grounding-dino-tiny")
    with pytest.raises(ValueError, match="inside the model directory"):
        H.model_dir_config(backend="sam2", checkpoint="/abs/x.pt")
    (tmp_path / "code").mkdir()
    assert H.resolve_model_dir(tmp_path / "code").backend == "langsam"


def test_langsam_model_dir_becomes_backend_options(tmp_path):
    """The langsam wiring without loading: explicit checkpoint and Grounding DINO directory."""
    (tmp_path / "weights" / "grounding-dino-tiny").mkdir(parents=True)
    (tmp_path / "weights" / "sam2.1_hiera_tiny.pt").write_bytes(b"x")
    H.write_model_dir_config(
        tmp_path, backend="langsam", model="sam2.1_hiera_tiny", gdino_model="grounding-dino-tiny", device="cpu"
    )
    backend, limits = H.create_backend_from_model_dir(tmp_path)
    assert backend.name == "langsam" and not backend.loaded
    assert str(backend.gdino_path) == str(tmp_path / "weights" / "grounding-dino-tiny")
    assert str(backend.checkpoint) == str(tmp_path / "weights" / "sam2.1_hiera_tiny.pt")
    assert backend.gdino_model_id == "grounding-dino-tiny" and backend.device_preference == "cpu"
    assert limits == H.RunnerLimits()


@pytest.mark.slow
def test_sam2_model_dir_with_random_weights_answers_clicks(tmp_path, tiny_sam2_checkpoint):
    """The real layout the packager writes, with random hiera-tiny weights: model_fn loads it
    offline and clicks on one image reuse its embedding."""
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "sam2.1_hiera_tiny.pt").symlink_to(tiny_sam2_checkpoint)  # a copy works the same, slower
    H.write_model_dir_config(tmp_path, backend="sam2", model="sam2.1_hiera_tiny", device="cpu")
    model = H.model_fn(str(tmp_path))
    assert (model.info().backend, model.info().model) == ("sam2", "sam2.1_hiera_tiny")
    png = encode_image(scene_image(34, height=160, width=200))
    first = P.SegmentRequest(prompt=Prompt(points=(Point(x=60, y=80),)), image=png, return_logits=True)
    ctx, out, _ = _invoke(model, P.encode_request(first)[0], "application/json")
    assert ctx.status[0] == 200, out
    resp = P.decode_response(out)
    pred = resp.prediction
    assert pred.kind.value == "alternatives" and pred.candidates and pred.image_size == (160, 200)
    assert all(c.low_res_logits is not None and np.isfinite(c.low_res_logits).all() for c in pred.candidates)
    assert ctx.response_headers["X-LangSAM-Embedding-Cache"] == "miss"
    refine = P.SegmentRequest(
        prompt=Prompt(
            points=(Point(x=60, y=80), Point(x=150, y=20, positive=False)),
            mask_input=pred.best.low_res_logits,
            multimask=False,
        ),
        image_id=resp.image_id,
    )
    ctx, out, _ = _invoke(model, P.encode_request(refine)[0], "application/json")
    assert ctx.status[0] == 200, out
    assert ctx.response_headers["X-LangSAM-Embedding-Cache"] == "hit"
    assert model.backend.encoder_runs == 1
    text = P.SegmentRequest(prompt=Prompt(text="car."), image_id=resp.image_id)
    ctx, out, _ = _invoke(model, P.encode_request(text)[0], "application/json")
    assert ctx.status[0] == 400 and P.decode_error(out).field == "prompt.text"
