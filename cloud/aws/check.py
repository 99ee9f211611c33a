"""Can these AWS settings deploy and reach an endpoint? Plain functions, each answer a sentence.

:func:`check_aws` asks STS who the credentials are, says which region is used, reads the
execution role (does its trust policy let ``sagemaker.amazonaws.com`` assume it?) and heads the
model bucket. :func:`check_endpoint` describes a SageMaker endpoint. Each returns a list of
``(check, ok, sentence)`` tuples; a sentence that reports a problem ends with the fix. Nothing
raises for a wrong setting or a network problem, and no secret value appears in a sentence
(:func:`cloud.aws.env.redact`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from cloud.aws.env import AwsClients, AwsSettings, redact

CheckRow = tuple[str, bool, str]
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


def _config(timeout_s: float) -> Any:
    from botocore.config import Config

    return Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"total_max_attempts": 1})


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__


def _why(exc: BaseException, settings: AwsSettings) -> str:
    """A short, secret-free reason for a boto3/botocore exception."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return (
            "no AWS credentials were found. Fix: enter a profile, or an access key ID and secret "
            "access key, in Settings → AWS (or run `aws configure`)"
        )
    if isinstance(exc, NoRegionError):
        return "no region is set. Fix: enter a region in Settings → AWS, e.g. eu-west-1"
    if isinstance(exc, EndpointConnectionError):
        return (
            f"AWS cannot be reached ({redact(str(exc), settings)}). Fix: check the network connection, "
            "proxy and the region name"
        )
    if isinstance(exc, ClientError):
        code = _code(exc)
        message = redact(str(exc.response.get("Error", {}).get("Message", "")), settings)
        if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"):
            return (
                f"AWS rejected the credentials ({code}). Fix: check the access key ID and secret access key, "
                "or the profile, in Settings → AWS"
            )
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            return "the session token has expired. Fix: get new temporary credentials (or `aws sso login`)"
        return f"{code}: {message}" if message else code
    text = redact(str(exc), settings)
    if "profile" in text.lower() and "not be found" in text.lower():
        return f"{text}. Fix: check ~/.aws/config or choose another profile in Settings → AWS"
    return f"{type(exc).__name__}: {text}"


def check_aws(settings: AwsSettings, *, clients: AwsClients | None = None, timeout_s: float = 8.0) -> list[CheckRow]:
    """Identity, region, execution role and model bucket, as ``(check, ok, sentence)`` rows."""
    rows: list[CheckRow] = []
    try:
        clients = clients or AwsClients(settings)
        session = clients.session
    except Exception as exc:  # a profile that does not exist, …
        return [("credentials", False, f"The AWS credentials cannot be used: {_why(exc, settings)}.")]
    config = _config(timeout_s)

    # who am I
    identity_ok = False
    try:
        me = clients.client("sts", config=config).get_caller_identity()
        rows.append(("identity", True, f"Signed in to account {me.get('Account')} as {me.get('Arn')}."))
        identity_ok = True
    except Exception as exc:
        rows.append(("identity", False, f"Signing in to AWS failed: {_why(exc, settings)}."))

    # region
    region = settings.region or getattr(session, "region_name", None)
    if region:
        source = settings.sources.get("AWS_DEFAULT_REGION")
        rows.append(("region", True, f"Region {region}" + (f" (from {source})." if source else ".")))
    else:
        rows.append(("region", False, "No region is set. Fix: enter a region in Settings → AWS, e.g. eu-west-1."))

    if not identity_ok:
        rows.append(("role", False, "The execution role was not checked: sign-in failed."))
        rows.append(("bucket", False, "The model bucket was not checked: sign-in failed."))
        return rows

    # execution role
    if not settings.role_arn:
        rows.append(
            (
                "role",
                False,
                "No execution role is set. Fix: enter the ARN of a role SageMaker may "
                "assume in Settings → AWS (e.g. arn:aws:iam::123456789012:role/SageMakerRole).",
            )
        )
    else:
        name = settings.role_arn.rsplit("/", 1)[-1]
        try:
            role = clients.client("iam", config=config).get_role(RoleName=name)["Role"]
            if trusts_sagemaker(role.get("AssumeRolePolicyDocument")):
                rows.append(("role", True, f"The role {name} exists and SageMaker may assume it."))
            else:
                rows.append(
                    (
                        "role",
                        False,
                        f"The role {name} exists but its trust policy does not allow "
                        f"{SAGEMAKER_PRINCIPAL}. Fix: add {SAGEMAKER_PRINCIPAL} as a trusted "
                        "service principal (IAM → Roles → Trust relationships).",
                    )
                )
        except Exception as exc:
            if _code(exc) == "NoSuchEntity":
                rows.append(
                    (
                        "role",
                        False,
                        f"The role {name} does not exist in this account. Fix: create it "
                        "or correct the execution role ARN.",
                    )
                )
            elif _code(exc) in ("AccessDenied", "AccessDeniedException"):
                rows.append(
                    (
                        "role",
                        False,
                        f"You may not read the role {name} (iam:GetRole denied); it may still "
                        "work. Fix: ask for iam:GetRole to have it checked.",
                    )
                )
            else:
                rows.append(("role", False, f"The role {name} could not be checked: {_why(exc, settings)}."))

    # model bucket
    if not settings.bucket:
        rows.append(("bucket", False, "No model bucket is set. Fix: enter an S3 bucket name in Settings → AWS."))
    else:
        try:
            clients.client("s3", config=config).head_bucket(Bucket=settings.bucket)
            rows.append(("bucket", True, f"The bucket {settings.bucket} exists and you can use it."))
        except Exception as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                rows.append(
                    (
                        "bucket",
                        False,
                        f"The bucket {settings.bucket} does not exist. Fix: create it "
                        f"(aws s3 mb s3://{settings.bucket}) or correct the name.",
                    )
                )
            elif code in ("403", "AccessDenied", "Forbidden"):
                rows.append(
                    (
                        "bucket",
                        False,
                        f"You may not use the bucket {settings.bucket} (access denied). "
                        "Fix: choose a bucket of your account or ask for s3 access.",
                    )
                )
            else:
                rows.append(
                    ("bucket", False, f"The bucket {settings.bucket} could not be checked: {_why(exc, settings)}.")
                )
    return rows


def trusts_sagemaker(document: Any) -> bool:
    """Whether an IAM trust policy (dict, JSON or URL-encoded JSON) lets SageMaker assume the role."""
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return False
    if not isinstance(document, dict):
        return False
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = st.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if SAGEMAKER_PRINCIPAL in services or principal == "*":
            return True
    return False


def check_endpoint(
    settings: AwsSettings,
    endpoint_name: str,
    *,
    region: str | None = None,
    clients: AwsClients | None = None,
    timeout_s: float = 8.0,
) -> list[CheckRow]:
    """Describe the endpoint: does it exist and is it InService? (A smoke invocation is left to
    ``langsam-studio deploy`` for now.)"""
    if not endpoint_name:
        return [("endpoint", False, "No endpoint name is set. Fix: enter it in Settings → Remote.")]
    try:
        clients = clients or AwsClients(settings)
        sm = clients.client("sagemaker", region=region or None, config=_config(timeout_s))
        desc = sm.describe_endpoint(EndpointName=endpoint_name)
    except Exception as exc:
        code = _code(exc)
        if code == "ValidationException" and "Could not find" in str(exc):
            where = region or settings.region or "this region"
            return [
                (
                    "endpoint",
                    False,
                    f"There is no endpoint {endpoint_name} in {where}. Fix: check the name "
                    "and the endpoint region, or deploy it (langsam-studio deploy).",
                )
            ]
        return [("endpoint", False, f"The endpoint {endpoint_name} could not be checked: {_why(exc, settings)}.")]
    status = desc.get("EndpointStatus", "?")
    if status == "InService":
        return [("endpoint", True, f"The endpoint {endpoint_name} is in service.")]
    reason = desc.get("FailureReason")
    fix = {
        "Creating": "wait until it is in service",
        "Updating": "wait until the update ends",
        "Failed": "read the reason, fix it and deploy again",
    }.get(status, "check it in the SageMaker console")
    return [
        (
            "endpoint",
            False,
            f"The endpoint {endpoint_name} is {status}" + (f" ({reason})" if reason else "") + f". Fix: {fix}.",
        )
    ]
