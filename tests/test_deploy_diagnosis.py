"""The failure table: every failure mode of the SageMaker notes is recognised, and the document matches."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, ReadTimeoutError

from cloud.diagnosis import (
    BY_CODE,
    FAILURES,
    diagnose_exception,
    diagnose_failure_reason,
    failure_table_markdown,
    match_text,
    scan_log_lines,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy-failures.md"

# Realistic texts (AWS messages, FailureReasons, container log lines) -> the row that must explain them.
SAMPLES = [
    (
        "User: arn:aws:iam::1:user/a is not authorized to perform: iam:PassRole on resource: arn:aws:iam::1:role/R",
        "passrole-denied",
    ),
    (
        "Could not assume role arn:aws:iam::1:role/R. Please ensure that the role exists and allows principal "
        "'sagemaker.amazonaws.com' to assume the role.",
        "role-untrusted",
    ),
    ("Could not access model data at https://s3.amazonaws.com/b/model.tar.gz.", "model-data-unreadable"),
    ("The bucket is in a different region than the endpoint", "region-mismatch"),
    ("Requested image 1.dkr.ecr.us-east-1.amazonaws.com/x:1 not found", "image-missing"),
    ("Exactly one .pth or .pt file is required for PyTorch models: []", "bad-archive"),
    ("The account-level service limit 'ml.g5.xlarge for endpoint usage' is 0 Instances", "quota"),
    ("We currently do not have sufficient capacity for ml.g5.xlarge in the Availability Zone", "capacity"),
    (
        "CannotStartContainerError. Please ensure the model container for variant AllTraffic starts correctly",
        "cannot-start-container",
    ),
    ("The primary container for production variant AllTraffic did not pass the ping health check.", "ping-failed"),
    ("2026-11-23T10:00:00 [WARN ] W-9000-model Backend worker did not respond in given time", "worker-timeout"),
    ("org.pytorch.serve.wlm.WorkerThread - Worker died.", "worker-died"),
    ("ModuleNotFoundError: No module named 'sam2'", "module-not-found"),
    ("UserWarning: CUDA is not available, running on CPU", "cuda-unavailable"),
    ("CUDA driver version is insufficient for CUDA runtime version", "cannot-start-container"),
    ("sagemaker_inference.errors.InstallModuleError: failed to install required packages", "requirements-failed"),
    ("Successfully installed numpy-2.1.0 torch-2.7.0", "torch-pinned"),
    (
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries "
        "exceeded with url: /IDEA-Research/grounding-dino-base",
        "network-blocked",
    ),
    (
        'Received server error (0) from primary with message "Your invocation timed out while waiting for a '
        'response from container primary."',
        "invocation-timeout",
    ),
    (
        'Read timeout on endpoint URL: "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/x/invocations"',
        "client-read-timeout",
    ),
    ("Request payload is too large: 7340032 bytes, maximum is 6291456", "payload-too-large"),
    ('Could not find endpoint "arn:aws:sagemaker:us-east-1:1:endpoint/x".', "endpoint-missing"),
    ('Cannot update in-progress endpoint "arn:aws:sagemaker:us-east-1:1:endpoint/x".', "endpoint-busy"),
]


@pytest.mark.parametrize("text, code", SAMPLES)
def test_each_known_failure_text_maps_to_its_row(text, code):
    found = match_text(text)
    assert found is not None and found.code == code, (text, found and found.code)


def test_exceptions_map_by_code_or_type():
    def client_error(code, message, status=400):
        return ClientError(
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
        )

    assert diagnose_exception(NoCredentialsError()).code == "no-credentials"
    assert diagnose_exception(NoRegionError()).code == "no-region"
    assert diagnose_exception(ReadTimeoutError(endpoint_url="https://x/invocations")).code == "client-read-timeout"
    assert diagnose_exception(client_error("ThrottlingException", "Rate exceeded")).code == "throttled"
    assert diagnose_exception(client_error("ResourceLimitExceeded", "limit")).code == "quota"
    assert (
        diagnose_exception(
            client_error("AccessDeniedException", "not authorized to perform: sagemaker:CreateModel")
        ).code
        == "access-denied"
    )
    assert (
        diagnose_exception(client_error("AccessDeniedException", "not authorized to perform: iam:PassRole")).code
        == "passrole-denied"
    )
    odd = diagnose_exception(client_error("SomethingNew", "brand new error"))
    assert odd.code == "unknown" and "brand new error" in odd.detail


def test_failure_reason_and_log_scan():
    assert (
        diagnose_failure_reason("Failed to download model data for container primary").code == "model-data-unreadable"
    )
    found = scan_log_lines(
        [
            "starting",
            "ModuleNotFoundError: No module named 'x'",
            "Worker died.",
            "ModuleNotFoundError: No module named 'y'",
        ]
    )
    assert [d.code for d in found] == ["module-not-found", "worker-died"]
    assert found[0].detail.endswith("'x'")


def test_every_row_has_message_fix_and_a_unique_code_and_the_doc_matches_the_code():
    assert len(BY_CODE) == len(FAILURES)
    for f in FAILURES:
        assert f.message.endswith(".") and f.fix and f.where, f.code
    for code in (
        "billing",
        "serverless-gpu",
        "invalid-name",
        "env-too-large",
        "timeout-env-ignored",
        "not-answering",
        "no-region",
        "no-credentials",
        "bucket-missing",
        "role-missing",
    ):
        assert code in BY_CODE
    assert DOC.read_text(encoding="utf-8") == failure_table_markdown(), (
        "docs/deploy-failures.md is stale: run python -m cloud.diagnosis > docs/deploy-failures.md"
    )


def test_one_diagnosis_type_for_the_deploy_and_the_local_dry_run():
    from cloud.diagnosis import Diagnosis
    from cloud.dry_run.diagnosis import diagnose_logs
    from cloud.timeouts import effective_timeouts

    timeouts = effective_timeouts({"TS_DEFAULT_STARTUP_TIMEOUT": "3"}, health_check=600)
    local = diagnose_logs({"ts_log": "W-9000 Backend worker did not respond in given time"}, timeouts=timeouts)
    deployed = scan_log_lines(["W-9000 Backend worker did not respond in given time"])
    assert all(type(d) is Diagnosis for d in (*local, *deployed))
    assert local[0].code == "SLOW_MODEL_LOAD" and "3 s (TS_DEFAULT_STARTUP_TIMEOUT)" in local[0].sentence()
    assert deployed[0].code == "worker-timeout" and deployed[0].sentence().endswith(BY_CODE["worker-timeout"].fix)


def test_cloud_and_packaging_errors_are_studio_errors_not_inference_errors():
    from cloud.aws.errors import CloudError, DeployError, EndpointInvocationError, EndpointPayloadTooLargeError
    from cloud.dry_run.errors import LocalDlcError
    from cloud.packaging.errors import PackageIndexUnreachable, PackagingError
    from inference.errors import InferenceError, StudioError

    for kind in (
        CloudError,
        DeployError,
        EndpointInvocationError,
        EndpointPayloadTooLargeError,
        PackagingError,
        PackageIndexUnreachable,
        LocalDlcError,
    ):
        assert issubclass(kind, StudioError) and not issubclass(kind, InferenceError), kind
    try:
        raise DeployError("Creating the endpoint failed.", fix="Retry.", code="capacity")
    except StudioError as err:  # what a dialog or the CLI catches
        assert str(err) == "Creating the endpoint failed. Fix: Retry."
