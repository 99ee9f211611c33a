"""Endpoint-client branches the local server cannot produce: the service's own errors (Stubber)."""

from __future__ import annotations

import io

import pytest
from botocore.response import StreamingBody

from cloud.aws.errors import EndpointInvocationError
from cloud.endpoint.client import EndpointClient, runtime_config
from test_deploy_preflight import stubbed

LOG_ARN = "arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/Endpoints/ep:log-stream:AllTraffic/i-0abc"


def _ok(stub, body: bytes = b'{"ok":1}') -> None:
    stub.add_response(
        "invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"}
    )


def test_runtime_config_never_retries_and_waits_longer_than_sagemaker():
    config = runtime_config()
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert config.read_timeout > 60


def test_model_error_carries_status_message_and_log_stream():
    rt, stub = stubbed("sagemaker-runtime")
    original = '{"protocol":1,"error":{"status":500,"code":"InferenceError","message":"CUDA out of memory"}}'
    stub.add_client_error(
        "invoke_endpoint",
        "ModelError",
        'Received server error (500) from primary with message "CUDA out of memory"',
        424,
        modeled_fields={"OriginalStatusCode": 500, "OriginalMessage": original, "LogStreamArn": LOG_ARN},
    )
    client = EndpointClient("ep", runtime=rt, endpoint_is_async=False)
    with pytest.raises(EndpointInvocationError) as info:
        client.invoke(b"{}", content_type="application/json")
    err = info.value
    assert (err.original_status, err.original_message, err.log_stream_arn) == (500, original, LOG_ARN)
    assert "CUDA out of memory" in str(err) and LOG_ARN in str(err) and err.code == "model-error"

    from cloud.aws.logs import stream_from_arn

    assert stream_from_arn(LOG_ARN) == ("/aws/sagemaker/Endpoints/ep", "AllTraffic/i-0abc")


def test_timeout_inside_the_container_is_named():
    rt, stub = stubbed("sagemaker-runtime")
    stub.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received server error (0) from primary with message "
        '"Your invocation timed out while waiting for a response from container primary."',
        424,
        modeled_fields={
            "OriginalStatusCode": 0,
            "OriginalMessage": "Your invocation timed out while waiting for a response from container primary.",
        },
    )
    with pytest.raises(EndpointInvocationError) as info:
        EndpointClient("ep", runtime=rt, endpoint_is_async=False).invoke(b"{}", content_type="application/json")
    assert info.value.code == "invocation-timeout" and "--async" in info.value.fix


def test_throttling_is_retried_visibly_other_errors_are_not():
    rt, stub = stubbed("sagemaker-runtime")
    stub.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 400)
    stub.add_client_error("invoke_endpoint", "ModelNotReadyException", "not ready", 429)
    _ok(stub)
    sleeps: list[float] = []
    client = EndpointClient("ep", runtime=rt, endpoint_is_async=False, sleep=sleeps.append)
    result = client.invoke(b"{}", content_type="application/json")
    assert result.body == b'{"ok":1}' and result.throttled_retries == 2 and sleeps == [0.5, 1.0]
    stub.add_client_error("invoke_endpoint", "ValidationError", "Endpoint ep of account 1 not found.", 400)
    with pytest.raises(EndpointInvocationError) as info:
        client.invoke(b"{}", content_type="application/json")
    assert info.value.code == "endpoint-missing"
    stub.add_client_error(
        "invoke_endpoint", "AccessDeniedException", "User is not authorized to perform: sagemaker:InvokeEndpoint", 403
    )
    with pytest.raises(EndpointInvocationError) as info:
        client.invoke(b"{}", content_type="application/json")
    assert info.value.code == "access-denied"
    stub.assert_no_pending_responses()


def test_async_endpoint_is_detected_and_used_for_every_call():
    rt, rt_stub = stubbed("sagemaker-runtime")
    sm, sm_stub = stubbed("sagemaker")
    s3, s3_stub = stubbed("s3")
    sm_stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": "ep",
            "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/ep",
            "EndpointConfigName": "cfg",
            "EndpointStatus": "InService",
            "CreationTime": "2026-01-01T00:00:00Z",
            "LastModifiedTime": "2026-01-01",
        },
    )
    sm_stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": "cfg",
            "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/cfg",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
            "CreationTime": "2026-01-01",
            "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://b/out"}},
        },
    )
    s3_stub.add_response("put_object", {})
    rt_stub.add_response(
        "invoke_endpoint_async", {"OutputLocation": "s3://b/out/1.out", "FailureLocation": "s3://b/failure/1.out"}
    )
    s3_stub.add_client_error("get_object", "NoSuchKey", "missing", 404)
    s3_stub.add_client_error("get_object", "NoSuchKey", "missing", 404)
    s3_stub.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(b"done"), 4), "ContentType": "text/plain"},
        {"Bucket": "b", "Key": "out/1.out"},
    )
    s3_stub.add_response("delete_object", {})
    client = EndpointClient(
        "ep", runtime=rt, s3=s3, sagemaker=sm, async_s3_prefix="s3://b/async", poll_interval_s=0, sleep=lambda _: None
    )
    result = client.invoke(b"{}", content_type="application/json")
    assert (result.mode, result.body, result.output_location) == ("async", b"done", "s3://b/out/1.out")
    for stub in (rt_stub, sm_stub, s3_stub):
        stub.assert_no_pending_responses()
