"""Every preflight branch, driven by botocore's Stubber (no network)."""

from __future__ import annotations

import json
import urllib.parse

import boto3
import pytest
from botocore.stub import Stubber

from cloud.deploy.preflight import (
    Level,
    check_bucket,
    check_endpoint_name,
    check_environment,
    check_identity,
    check_image,
    check_instance_type,
    check_pass_role,
    check_quota,
    check_role,
    principal_arn,
    resolve_image,
)

ROLE = "arn:aws:iam::111122223333:role/SageMakerRole"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def stubbed(service: str, region: str = "us-east-1"):
    client = boto3.Session(
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40, region_name=region
    ).client(service)
    stub = Stubber(client)
    stub.activate()
    return client, stub


def _role(doc) -> dict:
    return {
        "Role": {
            "Path": "/",
            "RoleName": "SageMakerRole",
            "RoleId": "AROA1234567890EXAMPL",
            "Arn": ROLE,
            "CreateDate": "2026-01-01T00:00:00Z",
            "AssumeRolePolicyDocument": doc,
        }
    }


def test_identity_ok_and_denied_and_no_credentials(monkeypatch, tmp_path):
    sts, stub = stubbed("sts")
    stub.add_response(
        "get_caller_identity",
        {"Account": "111122223333", "UserId": "AIDA", "Arn": "arn:aws:iam::111122223333:user/ana"},
    )
    result, arn, account = check_identity(sts)
    assert result.level is Level.OK and account == "111122223333" and arn.endswith("user/ana")
    stub.add_client_error(
        "get_caller_identity", "InvalidClientTokenId", "The security token included in the request is invalid.", 403
    )
    result, arn, _ = check_identity(sts)
    assert result.level is Level.FAIL and result.code == "no-credentials" and arn is None
    stub.add_client_error(
        "get_caller_identity", "ExpiredToken", "The security token included in the request is expired", 403
    )
    assert check_identity(sts)[0].code == "expired-credentials"

    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bare = boto3.Session(region_name="us-east-1").client("sts")
    result, _, _ = check_identity(bare)
    assert result.level is Level.FAIL and result.code == "no-credentials" and "AWS_ACCESS_KEY_ID" in result.fix


def test_role_missing_untrusted_encoded_and_unreadable():
    iam, stub = stubbed("iam")
    stub.add_client_error("get_role", "NoSuchEntity", "The role with name SageMakerRole cannot be found.", 404)
    assert check_role(iam, ROLE).code == "role-missing"
    ec2_trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    stub.add_response("get_role", _role(json.dumps(ec2_trust)))
    result = check_role(iam, ROLE)
    assert result.level is Level.FAIL and result.code == "role-untrusted" and "sagemaker.amazonaws.com" in result.fix
    stub.add_response("get_role", _role(urllib.parse.quote(json.dumps(TRUST))))  # the raw API's URL-encoded form
    assert check_role(iam, ROLE).level is Level.OK
    stub.add_client_error("get_role", "AccessDenied", "User: x is not authorized to perform: iam:GetRole", 403)
    assert check_role(iam, ROLE).level is Level.WARNING
    assert check_role(iam, None).code == "role-missing"


def test_pass_role_simulation_allowed_denied_and_not_askable():
    iam, stub = stubbed("iam")
    caller = "arn:aws:sts::111122223333:assumed-role/Dev/ana"
    assert principal_arn(caller) == "arn:aws:iam::111122223333:role/Dev"
    expected = {
        "PolicySourceArn": "arn:aws:iam::111122223333:role/Dev",
        "ActionNames": ["iam:PassRole"],
        "ResourceArns": [ROLE],
        "ContextEntries": [
            {
                "ContextKeyName": "iam:PassedToService",
                "ContextKeyValues": ["sagemaker.amazonaws.com"],
                "ContextKeyType": "string",
            }
        ],
    }
    stub.add_response(
        "simulate_principal_policy",
        {"EvaluationResults": [{"EvalActionName": "iam:PassRole", "EvalDecision": "allowed"}]},
        expected,
    )
    assert check_pass_role(iam, caller, ROLE).level is Level.OK
    stub.add_response(
        "simulate_principal_policy",
        {"EvaluationResults": [{"EvalActionName": "iam:PassRole", "EvalDecision": "implicitDeny"}]},
        expected,
    )
    denied = check_pass_role(iam, caller, ROLE)
    assert denied.level is Level.FAIL and denied.code == "passrole-denied" and "iam:PassRole" in denied.fix
    stub.add_client_error(
        "simulate_principal_policy", "AccessDenied", "not authorized to perform: iam:SimulatePrincipalPolicy", 403
    )
    warn = check_pass_role(iam, caller, ROLE)
    assert warn.level is Level.WARNING and "create_model will tell" in warn.message
    assert check_pass_role(iam, "arn:aws:iam::111122223333:root", ROLE).level is Level.WARNING
    stub.assert_no_pending_responses()


def test_bucket_missing_forbidden_and_in_another_region():
    s3, stub = stubbed("s3")
    stub.add_client_error("head_bucket", "404", "Not Found", 404)
    assert check_bucket(s3, "models", "us-east-1").code == "bucket-missing"
    stub.add_client_error("head_bucket", "403", "Forbidden", 403)
    forbidden = check_bucket(s3, "models", "us-east-1")
    assert forbidden.level is Level.FAIL and "may not use it" in forbidden.message
    stub.add_response("head_bucket", {})
    stub.add_response("get_bucket_location", {"LocationConstraint": "eu-west-1"})
    moved = check_bucket(s3, "models", "us-east-1")
    assert moved.code == "region-mismatch" and "eu-west-1" in moved.message and "us-east-1" in moved.message
    stub.add_response("head_bucket", {})
    stub.add_response("get_bucket_location", {})  # None means us-east-1
    assert check_bucket(s3, "models", "us-east-1").level is Level.OK
    assert check_bucket(s3, None, "us-east-1").code == "bucket-missing"


def _quota(name: str, value: float) -> dict:
    return {"Quotas": [{"ServiceCode": "sagemaker", "QuotaName": name, "Value": value, "QuotaCode": "L-1"}]}


def test_quota_zero_fails_unreadable_warns_default_zero_warns():
    sq, stub = stubbed("service-quotas")
    stub.add_response("list_service_quotas", _quota("ml.g5.xlarge for endpoint usage", 0.0))
    zero = check_quota(sq, "ml.g5.xlarge", 1)
    assert zero.level is Level.FAIL and zero.code == "quota" and "Service Quotas" in zero.fix
    stub.add_response("list_service_quotas", _quota("ml.g5.xlarge for endpoint usage", 4.0))
    assert check_quota(sq, "ml.g5.xlarge", 2).level is Level.OK
    stub.add_client_error("list_service_quotas", "AccessDeniedException", "not authorized", 400)
    assert check_quota(sq, "ml.g5.xlarge", 1).level is Level.WARNING
    stub.add_response("list_service_quotas", {"Quotas": []})
    stub.add_response("list_aws_default_service_quotas", _quota("ml.g5.xlarge for endpoint usage", 0.0))
    assert check_quota(sq, "ml.g5.xlarge", 1).level is Level.WARNING  # unless an increase was granted


def test_image_uri_per_region_and_mismatches():
    assert (
        resolve_image(None, "us-west-2")
        == "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"
    )
    assert resolve_image(None, "af-south-1").startswith("626614931356.dkr.ecr.af-south-1.amazonaws.com/")
    assert resolve_image(None, "cn-north-1").startswith("727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/")
    assert check_image(resolve_image(None, "eu-central-1"), "eu-central-1").level is Level.OK
    assert check_image(None, "xx-nowhere-1").code == "image-missing"
    other = check_image(resolve_image(None, "us-west-2"), "us-east-1")
    assert other.code == "region-mismatch" and "us-west-2" in other.message
    assert check_image("docker.io/library/python:3.12", "us-east-1").code == "image-missing"
    ecr, stub = stubbed("ecr")
    stub.add_client_error("describe_images", "ImageNotFoundException", "not found", 400)
    own = "111122223333.dkr.ecr.us-east-1.amazonaws.com/langsam:1"
    assert check_image(own, "us-east-1", ecr=ecr, account="111122223333").code == "image-missing"


@pytest.mark.parametrize(
    "name, ok",
    [
        ("langsam-studio", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-lead", False),
        ("trail-", False),
        ("under_score", False),
        ("", False),
    ],
)
def test_endpoint_names(name, ok):
    result = check_endpoint_name(name)
    assert (result.level is Level.OK) == ok
    if not ok:
        assert result.code == "invalid-name"


def test_instance_type_and_environment_checks():
    assert check_instance_type("ml.g5.xlarge", serverless=False).level is Level.OK
    cpu = check_instance_type("ml.m5.large", serverless=False)
    assert cpu.level is Level.WARNING and cpu.code == "cuda-unavailable"
    assert check_instance_type("ml.g5.xlarge", serverless=True).code == "serverless-gpu"
    results = check_environment({"BIG": "x" * 1025, "SAGEMAKER_MODEL_SERVER_TIMEOUT": "600"})
    assert {(r.code, r.level) for r in results} == {
        ("env-too-large", Level.FAIL),
        ("timeout-env-ignored", Level.WARNING),
    }
    assert check_environment({"A": "x" * 1024})[0].level is Level.OK
