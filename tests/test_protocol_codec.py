"""The wire protocol: round trips both ways, compactness, the 6 MiB guard, field-naming errors."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from inference import protocol as P
from inference.prompts import Box, Point, Prompt
from inference.results import Candidate, Prediction, PredictionKind

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _blob(h: int, w: int, cx: int, cy: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _prediction(masks, *, kind=PredictionKind.ALTERNATIVES, logits=False, labels=None) -> Prediction:
    rng = np.random.default_rng(0)
    cands = tuple(
        Candidate(
            mask=m,
            score=0.5 + i / 10,
            box=(1.0, 2.0, 30.5, 40.0),
            label=labels[i] if labels else None,
            box_score=0.42 if labels else None,
            low_res_logits=rng.normal(0, 8, (256, 256)).astype(np.float32) if logits else None,
        )
        for i, m in enumerate(masks)
    )
    h, w = masks[0].shape
    return Prediction(
        candidates=cands,
        kind=kind,
        image_key="k",
        backend="classic",
        model="opencv",
        image_size=(h, w),
        timings={"predict_ms": 12.5},
    )


def test_json_request_round_trip_keeps_every_field():
    logits = np.random.default_rng(1).normal(0, 10, (256, 256)).astype(np.float32)
    prompt = Prompt(
        points=(Point(x=10, y=20.5), Point(x=3, y=4, positive=False)),
        box=Box(x0=1, y0=2, x1=30, y1=40),
        text="car. person.",
        mask_input=logits,
        multimask=False,
        box_threshold=0.4,
        text_threshold=0.2,
        max_detections=7,
        nms_iou=0.5,
    )
    req = P.SegmentRequest(
        prompt=prompt,
        image=PNG_MAGIC + b"rest",
        image_id="my-image-1",
        return_logits=True,
        backend="sam2",
        model="sam2.1_hiera_tiny",
    )
    body, ctype, headers = P.encode_request(req)
    assert ctype == "application/json" and headers == {}
    got = P.decode_request(body, content_type="application/json; charset=utf-8", headers={})
    assert got.image == req.image and got.image_id == "my-image-1" and got.return_logits
    assert (got.backend, got.model) == ("sam2", "sam2.1_hiera_tiny")
    g = got.prompt
    assert g.points == prompt.points and g.box == prompt.box and g.text == prompt.text
    assert (g.multimask, g.box_threshold, g.text_threshold, g.max_detections, g.nms_iou) == (False, 0.4, 0.2, 7, 0.5)
    # float16 on the wire: relative error ~1e-3 of the logit's magnitude
    assert np.allclose(g.mask_input, logits, rtol=2e-3, atol=2e-3)
    # compact: 256x256 float16 in base64 is ~175 kB, not a JSON list of 65536 floats
    assert len(body) < 180_000


def test_raw_image_request_uses_custom_attributes_within_1024_chars():
    req = P.SegmentRequest(prompt=Prompt(text="dog.", box_threshold=0.35), image=b"\xff\xd8\xff\xe0jpeg-bytes")
    body, ctype, headers = P.encode_request(req, raw=True)
    assert body == req.image and ctype == "image/jpeg"
    attrs = headers[P.CUSTOM_ATTRIBUTES_HEADER]
    assert len(attrs) <= 1024 and attrs.isascii()
    got = P.decode_request(body, content_type=ctype, headers={"x-amzn-sagemaker-custom-attributes": attrs})
    assert got.image == req.image and got.prompt.text == "dog." and got.prompt.box_threshold == 0.35
    # logits do not fit in a header: refused with advice, never cut
    big = P.SegmentRequest(
        prompt=Prompt(points=(Point(x=1, y=1),), mask_input=np.zeros((256, 256), np.float32)), image=b"\xff\xd8\xffx"
    )
    with pytest.raises(P.ProtocolError, match="JSON request") as err:
        P.encode_request(big, raw=True)
    assert err.value.field == "prompt"


def test_non_ascii_text_survives_the_header():
    req = P.SegmentRequest(prompt=Prompt(text="café chair."), image=PNG_MAGIC + b"x")
    body, ctype, headers = P.encode_request(req, raw=True)
    assert headers[P.CUSTOM_ATTRIBUTES_HEADER].isascii()
    assert P.decode_request(body, content_type=ctype, headers=headers).prompt.text == "café chair."


def test_request_over_6_mib_is_refused_before_sending():
    req = P.SegmentRequest(prompt=Prompt(points=(Point(x=1, y=1),)), image=PNG_MAGIC + bytes(5 * 2**20))
    with pytest.raises(P.PayloadTooLargeError, match="asynchronous inference"):
        P.encode_request(req)  # 5 MiB of image is ~6.7 MiB as base64
    body, _, _ = P.encode_request(req, raw=True)  # the same image raw fits
    assert len(body) <= P.MAX_PAYLOAD_BYTES


def test_response_round_trip_is_lossless_for_masks():
    h, w = 480, 640
    masks = [_blob(h, w, 100, 100, 40), _blob(h, w, 300, 200, 90) | _blob(h, w, 500, 400, 30), np.zeros((h, w), bool)]
    pred = _prediction(masks, kind=PredictionKind.INSTANCES, logits=True, labels=["car", "person", "dog"])
    body = P.encode_response(pred, image_id="abc123", return_logits=True, request_id="rid-1")
    got = P.decode_response(body)
    assert got.image_id == "abc123" and got.request_id == "rid-1" and got.protocol == P.PROTOCOL_VERSION
    gp = got.prediction
    assert gp.kind is PredictionKind.INSTANCES and gp.image_size == (h, w) and gp.backend == "classic"
    assert gp.timings["predict_ms"] == 12.5
    for a, b in zip(pred.candidates, gp.candidates):
        assert b.mask.dtype == bool and np.array_equal(a.mask, b.mask)
        assert b.label == a.label and b.box == a.box and abs(b.score - a.score) < 1e-4 and b.box_score == 0.42
        assert np.allclose(a.low_res_logits, b.low_res_logits, rtol=2e-3, atol=2e-2)
    without = P.decode_response(P.encode_response(pred, image_id="abc123"))
    assert all(c.low_res_logits is None for c in without.prediction.candidates)


def test_response_is_under_one_percent_of_raw_bool_masks():
    h, w = 1080, 1920
    masks = [_blob(h, w, 900, 500, 300), _blob(h, w, 400, 300, 120), _blob(h, w, 1500, 800, 200)]
    body = P.encode_response(_prediction(masks), image_id="x")
    raw = sum(m.nbytes for m in masks)
    assert len(body) / raw < 0.01, (len(body), raw)


def test_response_over_6_mib_is_refused_with_advice_never_truncated():
    rng = np.random.default_rng(3)
    noise = [rng.random((1000, 1000)) > 0.5 for _ in range(14)]  # noise RLE ~0.5 MB each
    pred = _prediction(noise, kind=PredictionKind.INSTANCES)
    with pytest.raises(P.PayloadTooLargeError) as err:
        P.encode_response(pred, image_id="x")
    msg = str(err.value)
    assert "asynchronous inference" in msg and "max_detections" in msg and "6 MiB" in msg
    assert err.value.status == 413 and err.value.code == "ResponseTooLarge"
    # and the limit is the exact boundary: the same prediction passes with room for it
    body = P.encode_response(pred, image_id="x", max_bytes=64 * 2**20)
    assert len(body) > P.MAX_PAYLOAD_BYTES and len(json.loads(body)["objects"]) == 14


def _json(obj) -> bytes:
    return json.dumps(obj).encode()


IMG = base64.b64encode(PNG_MAGIC + b"x").decode()


@pytest.mark.parametrize(
    "body, field",
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"\xff\xfe\x00", "body"),
        (b"[1, 2]", "body"),
        (_json({"image": IMG, "prompt": {"points": [[1, 2, 1]]}, "promt": 1}), "promt"),
        (_json({"image": "%%%not-base64%%%", "prompt": {"points": [[1, 2]]}}), "image"),
        (_json({"image": IMG, "prompt": {"points": [[1, 2, 5]]}}), "prompt.points[0]"),
        (_json({"image": IMG, "prompt": {"points": [["a", 2]]}}), "prompt.points[0]"),
        (_json({"image": IMG, "prompt": {"points": "here"}}), "prompt.points"),
        (_json({"image": IMG, "prompt": {"box": [1, 2, 3]}}), "prompt.box"),
        (_json({"image": IMG, "prompt": {"text": 5}}), "prompt.text"),
        (_json({"image": IMG, "prompt": {}}), "prompt"),
        (
            _json({"image": IMG, "prompt": {"text": "a."}, "options": {"box_threshold": "high"}}),
            "options.box_threshold",
        ),
        (b'{"image": "' + IMG.encode() + b'", "prompt": {"text": "a."}, "options": {"box_threshold": NaN}}', "body"),
        (_json({"image": IMG, "prompt": {"text": "a."}, "options": {"max_detections": 0}}), "options.max_detections"),
        (_json({"image": IMG, "prompt": {"text": "a."}, "options": {"multimask": "yes"}}), "options.multimask"),
        (_json({"image": IMG, "prompt": {"text": "a."}, "options": {"colour": 1}}), "options.colour"),
        (_json({"image_id": "bad id!", "prompt": {"text": "a."}}), "image_id"),
        (_json({"protocol": 99, "image": IMG, "prompt": {"text": "a."}}), "protocol"),
        (
            _json(
                {
                    "image": IMG,
                    "prompt": {
                        "points": [[1, 1]],
                        "mask_input": {"dtype": "float16", "shape": [256, 256], "data": "AAAA"},
                    },
                }
            ),
            "prompt.mask_input.data",
        ),
    ],
)
def test_bad_json_requests_name_the_field(body, field):
    with pytest.raises(P.ProtocolError) as err:
        P.decode_request(body, content_type="application/json")
    assert err.value.field == field, str(err.value)
    assert err.value.status == 400 and str(err.value)


def test_nan_in_logits_and_wrong_content_type_are_refused():
    nan = np.full((256, 256), np.nan, np.float16).tobytes()
    body = _json(
        {
            "image": IMG,
            "prompt": {
                "points": [[1, 1]],
                "mask_input": {"dtype": "float16", "shape": [256, 256], "data": base64.b64encode(nan).decode()},
            },
        }
    )
    with pytest.raises(P.ProtocolError, match="NaN") as err:
        P.decode_request(body, content_type="application/json")
    assert err.value.field == "prompt.mask_input"
    with pytest.raises(P.ProtocolError) as err:
        P.decode_request(b"a,b", content_type="text/csv")
    assert (err.value.status, err.value.field) == (415, "Content-Type")
    with pytest.raises(P.ProtocolError) as err:
        P.decode_request(PNG_MAGIC, content_type="image/png", headers={})
    assert err.value.field == P.CUSTOM_ATTRIBUTES_HEADER


def test_error_bodies_decode_directly_and_inside_a_sagemaker_model_error():
    body = P.encode_error(
        status=400, code="ValidationError", message="point 0 is outside", field="prompt.points[0]", request_id="r1"
    )
    obj = json.loads(body)
    assert "prompt.points[0]" in obj["message"]  # what botocore shows as the error message
    info = P.decode_error(body)
    assert (info.status, info.code, info.field, info.request_id) == (400, "ValidationError", "prompt.points[0]", "r1")
    wrapped = json.dumps(
        {"Message": "Received client error (400)", "OriginalStatusCode": 400, "OriginalMessage": body.decode()}
    )
    assert P.decode_error(wrapped) == info
    with pytest.raises(P.ProtocolError) as err:
        P.decode_response(body)
    assert err.value.field == "prompt.points[0]"
    assert P.decode_error(b"<html>oops</html>").message == "<html>oops</html>"
