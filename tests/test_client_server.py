"""The real boto3 sagemaker-runtime client against the real inference server (classic backend).

Asynchronous inference is emulated the way SageMaker does it — read the input from S3 (moto),
run it on a real server, write the answer to the output location — behind the runtime client's
``before-call`` hook, because no local server implements ``/async-invocations``.
"""

from __future__ import annotations

import http.server
import threading
import time
import urllib.request
import uuid

import numpy as np
import pytest
from botocore.awsrequest import AWSResponse

from cloud.aws.errors import EndpointInvocationError, EndpointPayloadTooLargeError
from cloud.endpoint.client import REALTIME_LIMIT_BYTES, EndpointClient, runtime_config
from fixtures_deploy import MOTO_BUCKET
from fixtures_server import classic_factory, encode_image, run_server, scene_image


def runtime_for(url: str, *, read_timeout: float = 30.0):
    import boto3

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    return session.client("sagemaker-runtime", endpoint_url=url, config=runtime_config(read_timeout=read_timeout))


@pytest.fixture(scope="module")
def big_request_server():
    """The 'async endpoint': accepts requests up to 32 MiB, like a container behind InvokeEndpointAsync."""
    from inference.server.config import ServerConfig

    with run_server(backend_factory=classic_factory, config=ServerConfig(max_request_bytes=32 * 2**20)) as handle:
        yield handle


@pytest.fixture(scope="module")
def tiny_response_server():
    """A real-time endpoint whose answers cannot exceed 300 bytes (stands in for the 6 MiB limit)."""
    from inference.server.config import ServerConfig
    from inference.server.runner import RunnerLimits

    config = ServerConfig(limits=RunnerLimits(max_response_bytes=300))
    with run_server(backend_factory=classic_factory, config=config) as handle:
        yield handle


def emulate_async(runtime, s3, server_url: str, calls: list[dict]) -> None:
    """Answer InvokeEndpointAsync like SageMaker: S3 input -> container -> S3 output, a little later."""

    def before_call(params, **_):
        headers = params["headers"]
        location = headers["X-Amzn-SageMaker-InputLocation"]
        bucket, key = location[5:].split("/", 1)
        out_key = f"langsam-studio/async/output/{uuid.uuid4().hex}.out"
        fail_key = out_key.replace("/output/", "/failure/")
        calls.append(dict(headers))

        def work():
            time.sleep(0.3)  # the client polls before the answer exists
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            request = urllib.request.Request(
                f"{server_url}/invocations",
                data=body,
                method="POST",
                headers={"Content-Type": headers["X-Amzn-SageMaker-Content-Type"]},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    s3.put_object(Bucket=bucket, Key=out_key, Body=response.read(), ContentType="application/json")
            except urllib.error.HTTPError as err:
                s3.put_object(Bucket=bucket, Key=fail_key, Body=err.read())

        threading.Thread(target=work, daemon=True).start()
        parsed = {
            "InferenceId": "emulated",
            "OutputLocation": f"s3://{bucket}/{out_key}",
            "FailureLocation": f"s3://{bucket}/{fail_key}",
            "ResponseMetadata": {"HTTPStatusCode": 202},
        }
        return AWSResponse(None, 202, {}, None), parsed

    runtime.meta.events.register("before-call.sagemaker-runtime.InvokeEndpointAsync", before_call)


def _request(image: np.ndarray, **prompt):
    from inference.prompts import Box, Prompt
    from inference.protocol import SegmentRequest

    return SegmentRequest(
        prompt=Prompt(**prompt) if prompt else Prompt(box=Box(x0=40, y0=60, x1=160, y1=180)), image=encode_image(image)
    )


def test_segment_through_the_real_runtime_client(classic_server):
    client = EndpointClient("local", runtime=runtime_for(classic_server.url), endpoint_is_async=False)
    answer = client.segment(_request(scene_image(1)))
    assert answer.prediction.backend == "classic" and answer.prediction.image_size == (240, 320)
    assert answer.prediction.candidates and answer.prediction.candidates[0].mask.shape == (240, 320)
    raw = client.segment(_request(scene_image(1)), raw=True)  # image body, prompt in custom attributes
    assert raw.prediction.candidates[0].mask.shape == (240, 320)


def test_model_error_keeps_the_original_message_and_status(classic_server):
    from inference.prompts import Point

    client = EndpointClient("local", runtime=runtime_for(classic_server.url), endpoint_is_async=False)
    with pytest.raises(EndpointInvocationError) as info:
        client.segment(_request(scene_image(2), points=(Point(x=5000, y=10),)))
    err = info.value
    assert err.code == "model-error" and err.original_status == 400
    assert str(err).startswith("The model rejected the request (status 400): point 0")
    assert "outside" in str(err) and "Traceback" not in str(err) and "not retried" in err.fix
    assert '"code":"ValidationError"' in err.original_message.replace(" ", "")


def test_oversized_request_is_refused_before_sending_without_an_async_path(classic_server):
    client = EndpointClient("local", runtime=runtime_for(classic_server.url), endpoint_is_async=False)
    before = classic_server.worker.processed
    with pytest.raises(EndpointPayloadTooLargeError) as info:
        client.invoke(b"x" * (REALTIME_LIMIT_BYTES + 1), content_type="application/json")
    assert "6 MiB" in str(info.value) and "--async" in info.value.fix
    assert classic_server.worker.processed == before


def test_oversized_request_goes_through_s3_to_the_async_endpoint(classic_server, big_request_server, moto_clients):
    s3 = moto_clients.client("s3")
    runtime = runtime_for(classic_server.url)
    calls: list[dict] = []
    emulate_async(runtime, s3, big_request_server.url, calls)
    client = EndpointClient(
        "realtime",
        runtime=runtime,
        s3=s3,
        endpoint_is_async=False,
        async_endpoint_name="langsam-async",
        async_s3_prefix=f"s3://{MOTO_BUCKET}/async",
        poll_interval_s=0.1,
        async_timeout_s=60,
    )
    noise = np.random.default_rng(0).integers(0, 256, (1500, 1500, 3), dtype=np.uint8)
    request = _request(noise)
    from inference.protocol import encode_request

    body, content_type, _ = encode_request(request, max_bytes=2**30)
    assert len(body) > REALTIME_LIMIT_BYTES
    result = client.invoke(body, content_type=content_type)
    assert result.mode == "async" and result.endpoint == "langsam-async"
    assert calls[0]["X-Amzn-SageMaker-InputLocation"].startswith(f"s3://{MOTO_BUCKET}/async/input/")
    from inference.protocol import decode_response

    assert decode_response(result.body).prediction.image_size == (1500, 1500)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=MOTO_BUCKET, Prefix="async/").get("Contents", [])]
    assert keys == []  # the uploaded request is removed afterwards


def test_response_too_large_switches_to_async_or_explains(tiny_response_server, big_request_server, moto_clients):
    s3 = moto_clients.client("s3")
    request = _request(scene_image(3))
    plain = EndpointClient("small", runtime=runtime_for(tiny_response_server.url), endpoint_is_async=False)
    with pytest.raises(EndpointPayloadTooLargeError) as info:
        plain.segment(request)
    assert info.value.code == "payload-too-large" and "--async" in info.value.fix

    runtime = runtime_for(tiny_response_server.url)
    calls: list[dict] = []
    emulate_async(runtime, s3, big_request_server.url, calls)
    client = EndpointClient(
        "small",
        runtime=runtime,
        s3=s3,
        endpoint_is_async=False,
        async_endpoint_name="langsam-async",
        async_s3_prefix=f"s3://{MOTO_BUCKET}/async",
        poll_interval_s=0.1,
        async_timeout_s=60,
    )
    answer = client.segment(request)
    assert answer.prediction.image_size == (240, 320) and len(calls) == 1


def test_async_failure_location_is_reported(big_request_server, moto_clients):
    from inference.prompts import Point

    s3 = moto_clients.client("s3")
    runtime = runtime_for(big_request_server.url)
    emulate_async(runtime, s3, big_request_server.url, [])
    client = EndpointClient(
        "langsam-async",
        runtime=runtime,
        s3=s3,
        endpoint_is_async=True,
        async_s3_prefix=f"s3://{MOTO_BUCKET}/async",
        poll_interval_s=0.1,
        async_timeout_s=60,
    )
    with pytest.raises(EndpointInvocationError) as info:
        client.segment(_request(scene_image(4), points=(Point(x=9999, y=1),)))
    assert "outside" in str(info.value) and "asynchronous request failed" in str(info.value)


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    posts = 0
    answered = threading.Event()  # set when the first request's (late) answer has been sent

    def do_POST(self):  # noqa: N802 - http.server's naming
        type(self).posts += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(2.5)  # the scenario: slower than the client's 1 s read timeout
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")
        except OSError:
            pass
        finally:
            type(self).answered.set()

    def log_message(self, *args):
        pass


def test_read_timeout_is_explained_and_never_retried():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = EndpointClient("slow", runtime=runtime_for(url, read_timeout=1.0), endpoint_is_async=False)
        started = time.monotonic()
        with pytest.raises(EndpointInvocationError) as info:
            client.invoke(b"{}", content_type="application/json")
        assert time.monotonic() - started < 2.4
        assert info.value.code == "client-read-timeout" and "1 s" in str(info.value)
        # a retry would follow the timeout at once, long before the first request is answered
        assert _SlowHandler.answered.wait(30)
        assert _SlowHandler.posts == 1  # no hidden retry of a request that may still be running
    finally:
        server.shutdown()
        server.server_close()
