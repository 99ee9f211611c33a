"""Deploy, wait and smoke-test failure branches with botocore's Stubber (ml.g5 included: moto lacks it)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from botocore.stub import ANY

from cloud.aws.errors import DeployError
from cloud.aws.logs import LogTail
from cloud.deploy.resources import Ledger, apply, rollback
from cloud.deploy.spec import DeploySpec
from cloud.deploy.wait import smoke_test, wait_for_endpoint
from cloud.endpoint.client import EndpointClient
from cloud.timeouts import effective_timeouts, size_timeouts
from test_deploy_preflight import stubbed

ROLE = "arn:aws:iam::111122223333:role/SageMakerRole"
NOW = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)


def spec(**changes) -> DeploySpec:
    base = dict(
        name="langsam-g5",
        image_uri="763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:tag",
        role_arn=ROLE,
        model_data_url="s3://models/langsam-studio/langsam-g5/abc/model.tar.gz",
        timeouts=size_timeouts(load_seconds=140),
        region="us-east-1",
        instance_type="ml.g5.xlarge",
    )
    base.update(changes)
    return DeploySpec(**base)


def not_found(stub, op: str, what: str) -> None:
    stub.add_client_error(op, "ValidationException", f"Could not find {what} 'arn:aws:sagemaker:x'.", 400)


def endpoint(status: str, config: str, reason: str | None = None) -> dict:
    out = {
        "EndpointName": "langsam-g5",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/langsam-g5",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    if reason:
        out["FailureReason"] = reason
    return out


def test_spec_sizes_timeouts_from_the_measured_start_and_names_carry_a_hash():
    s = spec()
    env = s.environment()
    assert int(env["TS_DEFAULT_STARTUP_TIMEOUT"]) >= 2 * 140 and int(env["SAGEMAKER_TS_RESPONSE_TIMEOUT"]) > 140
    assert all(len(v.encode()) <= 1024 for v in env.values())
    assert s.production_variant()["ContainerStartupHealthCheckTimeoutInSeconds"] >= 2 * 140
    assert 60 <= s.production_variant()["ModelDataDownloadTimeoutInSeconds"] <= 3600
    assert s.model_name == spec().model_name and s.model_name.startswith("langsam-g5-m-")
    changed = spec(instance_type="ml.g5.2xlarge")
    assert changed.model_name == s.model_name and changed.endpoint_config_name != s.endpoint_config_name
    huge = size_timeouts(load_seconds=5000, archive_bytes=10**12)
    assert huge.health_check == 3600 and huge.download == 3600 and huge.startup == 3600


def test_the_timeouts_the_deploy_sets_are_the_ones_the_dry_run_reads_back():
    sized = spec().timeouts
    assert sized.measured and sized.load_seconds == 140 and "measured load of 140 s" in sized.startup_source
    back = effective_timeouts(spec().environment(), health_check=sized.health_check)
    assert (back.startup, back.response, back.health_check) == (sized.startup, sized.response, sized.health_check)
    assert type(back) is type(sized) and back.download is None  # one Timeouts type for both jobs


def test_quota_error_on_create_endpoint_is_explained_and_rolled_back_in_order():
    sm, stub = stubbed("sagemaker")
    s = spec()
    not_found(stub, "describe_model", "model")
    stub.add_response(
        "create_model",
        {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"},
        {"ModelName": s.model_name, "PrimaryContainer": ANY, "ExecutionRoleArn": ROLE, "Tags": ANY},
    )
    not_found(stub, "describe_endpoint_config", "endpoint configuration")
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"},
        {"EndpointConfigName": s.endpoint_config_name, "ProductionVariants": [s.production_variant()], "Tags": ANY},
    )
    not_found(stub, "describe_endpoint", "endpoint")
    stub.add_client_error(
        "create_endpoint",
        "ResourceLimitExceeded",
        "The account-level service limit "
        "'ml.g5.xlarge for endpoint usage' is 0 Instances, with current utilization of 0 Instances "
        "and a request delta of 1 Instances.",
        400,
    )
    ledger = Ledger()
    with pytest.raises(DeployError) as info:
        apply(sm, s, ledger)
    assert info.value.code == "quota" and "Service Quotas" in str(info.value)
    assert ledger.created == [("model", s.model_name), ("endpoint-config", s.endpoint_config_name)]
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": s.endpoint_config_name})
    stub.add_response("delete_model", {}, {"ModelName": s.model_name})
    done = rollback(sm, ledger)
    assert done == [f"deleted endpoint-config {s.endpoint_config_name}", f"deleted model {s.model_name}"]
    stub.assert_no_pending_responses()


def test_changed_spec_updates_the_endpoint_and_rollback_switches_back():
    sm, stub = stubbed("sagemaker")
    s = spec(instance_type="ml.g5.2xlarge")
    stub.add_response(
        "describe_model",
        {"ModelName": s.model_name, "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m", "CreationTime": NOW},
    )
    not_found(stub, "describe_endpoint_config", "endpoint configuration")
    stub.add_response(
        "create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"}
    )
    stub.add_response("describe_endpoint", endpoint("InService", "langsam-g5-c-00000000"))
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/e"},
        {"EndpointName": "langsam-g5", "EndpointConfigName": s.endpoint_config_name},
    )
    ledger = Ledger()
    applied = apply(sm, s, ledger)
    assert (applied.endpoint_action, applied.previous_config) == ("updated", "langsam-g5-c-00000000")
    assert not applied.model_created and applied.config_created
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/e"},
        {"EndpointName": "langsam-g5", "EndpointConfigName": "langsam-g5-c-00000000"},
    )
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": s.endpoint_config_name})
    rollback(sm, ledger)
    stub.assert_no_pending_responses()


def test_failed_endpoint_is_recreated_and_a_busy_one_is_left_alone():
    sm, stub = stubbed("sagemaker")
    s = spec()
    stub.add_response(
        "describe_model",
        {"ModelName": s.model_name, "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m", "CreationTime": NOW},
    )
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": s.endpoint_config_name,
            "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c",
            "ProductionVariants": [s.production_variant()],
            "CreationTime": NOW,
        },
    )
    stub.add_response("describe_endpoint", endpoint("Failed", s.endpoint_config_name, "CannotStartContainerError"))
    stub.add_response("delete_endpoint", {})
    not_found(stub, "describe_endpoint", "endpoint")
    stub.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/e"})
    assert apply(sm, s, Ledger(), poll=0).endpoint_action == "recreated"
    stub.add_response(
        "describe_model",
        {"ModelName": s.model_name, "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m", "CreationTime": NOW},
    )
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": s.endpoint_config_name,
            "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c",
            "ProductionVariants": [s.production_variant()],
            "CreationTime": NOW,
        },
    )
    stub.add_response("describe_endpoint", endpoint("Updating", "langsam-g5-c-11111111"))
    with pytest.raises(DeployError) as info:
        apply(sm, s, Ledger())
    assert info.value.code == "endpoint-busy"


@pytest.mark.parametrize(
    "message, code",
    [
        (
            "User: arn:aws:iam::1:user/ana is not authorized to perform: iam:PassRole on resource: " + ROLE,
            "passrole-denied",
        ),
        (
            "Could not access model data at https://s3.amazonaws.com/models/x/model.tar.gz. "
            f'Please ensure that the role "{ROLE}" exists and that its trust relationship policy allows '
            'the action "sts:AssumeRole" for the service principal "sagemaker.amazonaws.com". '
            'Also ensure that the role has "s3:GetObject" permissions and that the object is located in us-east-1.',
            "model-data-unreadable",
        ),
        (
            f"Could not assume role {ROLE}. Please ensure that the role exists and allows principal "
            "'sagemaker.amazonaws.com' to assume the role.",
            "role-untrusted",
        ),
    ],
)
def test_create_model_errors_are_explained(message, code):
    sm, stub = stubbed("sagemaker")
    not_found(stub, "describe_model", "model")
    stub.add_client_error(
        "create_model", "AccessDeniedException" if "PassRole" in message else "ValidationException", message, 400
    )
    ledger = Ledger()
    with pytest.raises(DeployError) as info:
        apply(sm, spec(), ledger)
    assert info.value.code == code and ledger.created == []


def _logs_with(lines):
    logs, stub = stubbed("logs")
    events = [
        {"logStreamName": "AllTraffic/i-1", "timestamp": 1_700_000_000_000 + i, "message": m, "eventId": str(i)}
        for i, m in enumerate(lines)
    ]
    return logs, stub, events


def test_wait_explains_a_failed_endpoint_with_its_logs_and_survives_throttling():
    sm, stub = stubbed("sagemaker")
    logs, log_stub, events = _logs_with(["Installing requirements", "ModuleNotFoundError: No module named 'sam2'"])
    stub.add_response("describe_endpoint", endpoint("Creating", "cfg"))
    log_stub.add_client_error(
        "filter_log_events", "ResourceNotFoundException", "The specified log group does not exist.", 400
    )
    stub.add_client_error("describe_endpoint", "ThrottlingException", "Rate exceeded", 400)
    stub.add_response(
        "describe_endpoint",
        endpoint(
            "Failed",
            "cfg",
            "The primary container for production variant AllTraffic did not pass the ping health "
            "check. Please check CloudWatch logs for this endpoint.",
        ),
    )
    log_stub.add_response("filter_log_events", {"events": events})
    log_stub.add_response("filter_log_events", {"events": []})
    said: list[str] = []
    seen: list[str] = []
    with pytest.raises(DeployError) as info:
        wait_for_endpoint(
            sm,
            "langsam-g5",
            expected_config="cfg",
            tail=LogTail(logs, "langsam-g5"),
            poll_s=0,
            say=said.append,
            on_log=lambda line: seen.append(line.message),
            sleep=lambda _: None,
        )
    err = info.value
    assert err.code == "ping-failed" and "--startup-timeout" in err.fix
    assert "No module named 'sam2'" in str(err) and "Python import fails" in str(err)
    assert seen == ["Installing requirements", "ModuleNotFoundError: No module named 'sam2'"]
    assert any("no log group yet" in s for s in said) and any("Creating" in s for s in said)


@pytest.mark.parametrize(
    "reason, code",
    [
        (
            "CannotStartContainerError. Please ensure the model container for variant AllTraffic starts correctly",
            "cannot-start-container",
        ),
        (
            "Unable to provision requested ML compute capacity. Please retry using a different ML instance type. "
            "We currently do not have sufficient capacity for ml.g5.xlarge",
            "capacity",
        ),
    ],
)
def test_wait_failure_reasons(reason, code):
    sm, stub = stubbed("sagemaker")
    stub.add_response("describe_endpoint", endpoint("Failed", "cfg", reason))
    with pytest.raises(DeployError) as info:
        wait_for_endpoint(sm, "langsam-g5", expected_config="cfg", poll_s=0, sleep=lambda _: None)
    assert info.value.code == code


def test_wait_detects_an_update_that_sagemaker_rolled_back():
    sm, stub = stubbed("sagemaker")
    stub.add_response("describe_endpoint", endpoint("Updating", "old"))
    stub.add_response(
        "describe_endpoint",
        endpoint(
            "InService", "old", "Request to service failed. If failure persists after retry, contact customer support."
        ),
    )
    with pytest.raises(DeployError) as info:
        wait_for_endpoint(sm, "langsam-g5", expected_config="new", poll_s=0, sleep=lambda _: None)
    assert "rolled it back to old" in str(info.value)


def _answer() -> bytes:
    from inference.protocol import encode_response
    from inference.results import Candidate, Prediction, PredictionKind

    mask = np.zeros((64, 64), dtype=bool)
    mask[16:48, 16:48] = True
    prediction = Prediction(
        candidates=(Candidate(mask=mask, score=0.9, box=(16, 16, 48, 48)),),
        kind=PredictionKind.ALTERNATIVES,
        image_key="k",
        backend="sam2",
        model="tiny",
        image_size=(64, 64),
    )
    return encode_response(prediction, image_id="k")


def _model_error(stub, status: int, message: str) -> None:
    stub.add_client_error(
        "invoke_endpoint",
        "ModelError",
        f'Received server error ({status}) from primary with message "{message}"',
        424,
        modeled_fields={
            "OriginalStatusCode": status,
            "OriginalMessage": message,
            "LogStreamArn": "arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/Endpoints/langsam-g5"
            ":log-stream:AllTraffic/i-1",
        },
    )


def test_smoke_retries_until_the_model_really_answers():
    import io

    from botocore.response import StreamingBody

    from inference.protocol import decode_response

    rt, stub = stubbed("sagemaker-runtime")
    _model_error(stub, 503, '{"protocol":1,"error":{"status":503,"code":"ModelNotReady","message":"loading"}}')
    _model_error(stub, 0, "Your invocation timed out while waiting for a response from container primary.")
    body = _answer()
    stub.add_response(
        "invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"}
    )
    client = EndpointClient("langsam-g5", runtime=rt, endpoint_is_async=False)
    said: list[str] = []
    result = smoke_test(
        lambda: client.invoke(b"{}", content_type="application/json"),
        validate=decode_response,
        interval_s=0,
        say=said.append,
        sleep=lambda _: None,
    )
    assert result.attempts == 3 and "sam2" in result.answer
    assert "model-error" in said[0] and "invocation-timeout" in said[1]


def test_smoke_stops_early_on_a_fatal_log_line_and_gives_up_after_its_budget():
    rt, stub = stubbed("sagemaker-runtime")
    logs, log_stub, events = _logs_with(["Traceback", "ModuleNotFoundError: No module named 'transformers'"])
    _model_error(stub, 500, "Worker died.")
    log_stub.add_response("filter_log_events", {"events": events})
    client = EndpointClient("langsam-g5", runtime=rt, endpoint_is_async=False)
    with pytest.raises(DeployError) as info:
        smoke_test(
            lambda: client.invoke(b"{}", content_type="application/json"),
            tail=LogTail(logs, "langsam-g5"),
            interval_s=0,
            sleep=lambda _: None,
        )
    assert info.value.code == "module-not-found" and "transformers" in str(info.value)

    rt, stub = stubbed("sagemaker-runtime")
    _model_error(stub, 500, "Backend worker did not respond in given time")
    client = EndpointClient("langsam-g5", runtime=rt, endpoint_is_async=False)
    with pytest.raises(DeployError) as info:
        smoke_test(
            lambda: client.invoke(b"{}", content_type="application/json"),
            budget_s=0,
            interval_s=0,
            sleep=lambda _: None,
        )
    assert info.value.code == "not-answering" and "1 attempts" in str(info.value)
