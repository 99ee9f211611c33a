"""The real boto3 ``sagemaker-runtime`` client against the running server (endpoint_url=loopback)."""

from __future__ import annotations

import json

import pytest

from fixtures_server import encode_image, scene_image
from inference import protocol as P
from inference.prompts import Point, Prompt


@pytest.fixture(scope="module")
def runtime(classic_server):
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-a-secret", region_name="eu-west-1"
    )
    return session.client(
        "sagemaker-runtime",
        endpoint_url=classic_server.url,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30),
    )


def _click(x=96, y=120) -> Prompt:
    return Prompt(points=(Point(x=x, y=y),))


def test_invoke_endpoint_with_a_json_body(runtime):
    body, ctype, _ = P.encode_request(P.SegmentRequest(prompt=_click(), image=encode_image(scene_image(11))))
    out = runtime.invoke_endpoint(EndpointName="langsam-local", Body=body, ContentType=ctype, Accept="application/json")
    assert out["ContentType"] == "application/json" and out["InvokedProductionVariant"] == "local"
    pred = P.decode_response(out["Body"].read()).prediction
    assert pred.backend == "classic" and pred.best.mask[120, 96]


def test_invoke_endpoint_with_a_raw_image_and_custom_attributes(runtime):
    jpeg = encode_image(scene_image(12), "JPEG")
    body, ctype, headers = P.encode_request(P.SegmentRequest(prompt=_click(), image=jpeg), raw=True)
    out = runtime.invoke_endpoint(
        EndpointName="langsam-local", Body=body, ContentType=ctype, CustomAttributes=headers[P.CUSTOM_ATTRIBUTES_HEADER]
    )
    resp = P.decode_response(out["Body"].read())
    assert resp.image_id == P.content_id(jpeg) and resp.prediction.best.mask[120, 96]


def test_stateful_session_sends_the_image_once(runtime):
    png = encode_image(scene_image(13))
    body, ctype, headers = P.encode_request(P.SegmentRequest(prompt=_click(), image=png), raw=True)
    first = runtime.invoke_endpoint(
        EndpointName="langsam-local",
        Body=body,
        ContentType=ctype,
        CustomAttributes=headers[P.CUSTOM_ATTRIBUTES_HEADER],
        SessionId=P.NEW_SESSION,
    )
    session = first["NewSessionId"].split(";")[0]
    first["Body"].read()
    click = json.dumps({"prompt": {"points": [[100, 118, 1], [20, 20, 0]]}}).encode()
    out = runtime.invoke_endpoint(
        EndpointName="langsam-local", Body=click, ContentType="application/json", SessionId=session
    )
    assert out["ResponseMetadata"]["HTTPHeaders"]["x-langsam-image-cache"] == "hit"
    assert P.decode_response(out["Body"].read()).prediction.image_size == (240, 320)


def test_errors_surface_as_readable_model_errors(runtime):
    from botocore.exceptions import ClientError

    bad = json.dumps({"image": "@@", "prompt": {"points": [[1, 1]]}}).encode()
    with pytest.raises(ClientError) as err:
        runtime.invoke_endpoint(EndpointName="langsam-local", Body=bad, ContentType="application/json")
    e = err.value
    assert e.response["Error"]["Code"] == "ModelError"
    assert e.response["OriginalStatusCode"] == 400
    assert "not valid base64" in str(e) and "field: image" in str(e)  # readable in the exception text
    info = P.decode_error(json.dumps({k: v for k, v in e.response.items() if k.startswith("Original")}))
    assert (info.status, info.field, info.code) == (400, "image", "ValidationError")

    click = P.SegmentRequest(prompt=_click(9999, 5), image=encode_image(scene_image(14)))
    body, ctype, _ = P.encode_request(click)
    with pytest.raises(runtime.exceptions.ModelError) as err:
        runtime.invoke_endpoint(EndpointName="langsam-local", Body=body, ContentType=ctype)
    assert "outside" in str(err.value) and "prompt.points[0]" in str(err.value)


def test_oversized_body_is_a_validation_error(runtime):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as err:
        runtime.invoke_endpoint(
            EndpointName="langsam-local", Body=b"0" * (P.MAX_PAYLOAD_BYTES + 10), ContentType="application/json"
        )
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "asynchronous inference" in str(err.value)
