"""Checks run before anything is created or uploaded, each a frozen ok / warning / fail result.

A check that cannot be made because the caller may not ask (AccessDenied on the check itself)
is a warning, not a failure: the deploy may still work, and the real call will say so if not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from cloud.aws.check import trusts_sagemaker
from cloud.aws.images import dlc_image_uri, image_region, is_ecr_uri
from cloud.deploy.spec import endpoint_name_problem, environment_problems, is_gpu_instance
from cloud.diagnosis import diagnose_exception, mode


class Level(str, Enum):
    OK = "ok"
    WARNING = "warning"
    FAIL = "fail"


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    name: str
    level: Level
    message: str
    fix: str = ""
    code: str = ""  # the failure-table row (cloud.diagnosis) for warnings and failures

    def line(self) -> str:
        mark = {Level.OK: "ok  ", Level.WARNING: "WARN", Level.FAIL: "FAIL"}[self.level]
        text = f"[{mark}] {self.name}: {self.message}"
        return text + (f"\n       fix: {self.fix}" if self.fix and self.level is not Level.OK else "")


@dataclass(frozen=True, kw_only=True)
class PreflightReport:
    checks: tuple[CheckResult, ...]
    account: str | None
    caller_arn: str | None
    region: str | None
    image_uri: str | None

    @property
    def ok(self) -> bool:
        return all(c.level is not Level.FAIL for c in self.checks)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.level is Level.FAIL)


def _ok(name: str, message: str) -> CheckResult:
    return CheckResult(name=name, level=Level.OK, message=message)


def _from_mode(name: str, code: str, *, level: Level = Level.FAIL, detail: str = "") -> CheckResult:
    m = mode(code)
    message = m.message + (f" ({detail})" if detail else "")
    return CheckResult(name=name, level=level, message=message, fix=m.fix, code=code)


def _from_error(
    name: str, err: BaseException, *, denied_is_warning: bool = False, check_only: bool = False, what: str = ""
) -> CheckResult:
    """A failed call as a result. ``check_only``: the call only informs (quota, simulation), so
    any error makes the check a warning; ``denied_is_warning``: only AccessDenied does."""
    d = diagnose_exception(err)
    first_line = next((line.strip() for line in d.detail.splitlines() if line.strip()), "")[:200]
    if (denied_is_warning or check_only) and d.code in {"access-denied", "passrole-denied"}:
        return CheckResult(
            name=name,
            level=Level.WARNING,
            code="access-denied",
            message=f"could not check {what or name}: you may not ask ({first_line})",
            fix="Nothing to do if the deploy works; grant the read permission to see this check.",
        )
    if check_only:
        return CheckResult(
            name=name,
            level=Level.WARNING,
            code=d.code,
            message=f"could not check {what or name}: {first_line}",
            fix="Nothing to do if the deploy works; the real call reports any problem.",
        )
    return CheckResult(name=name, level=Level.FAIL, message=f"{d.message} ({d.detail})", fix=d.fix, code=d.code)


def error_code(err: BaseException) -> str:
    response = getattr(err, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def principal_arn(caller_arn: str) -> str | None:
    """The IAM ARN to simulate for an STS caller ARN (assumed-role sessions map to their role)."""
    m = re.match(r"^arn:(?P<p>[\w-]+):sts::(?P<acct>\d{12}):assumed-role/(?P<role>[^/]+)/", caller_arn)
    if m:
        return f"arn:{m['p']}:iam::{m['acct']}:role/{m['role']}"
    if re.match(r"^arn:[\w-]+:iam::\d{12}:(user|role)/", caller_arn):
        return caller_arn
    return None  # root or federated user: cannot be simulated


def check_identity(sts: Any) -> tuple[CheckResult, str | None, str | None]:
    try:
        ident = sts.get_caller_identity()
    except Exception as err:  # noqa: BLE001 - every failure is explained
        return _from_error("identity", err), None, None
    return _ok("identity", f"account {ident['Account']} as {ident['Arn']}"), ident["Arn"], ident["Account"]


def check_role(iam: Any, role_arn: str | None) -> CheckResult:
    if not role_arn:
        return CheckResult(
            name="role",
            level=Level.FAIL,
            code="role-missing",
            message="no execution role was given",
            fix="Set AWS_ARN_ROLE in .env or pass --role with a SageMaker execution role ARN.",
        )
    role_name = role_arn.rsplit("/", 1)[-1]
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
    except Exception as err:  # noqa: BLE001
        if error_code(err) == "NoSuchEntity":
            return _from_mode("role", "role-missing", detail=role_arn)
        return _from_error("role", err, denied_is_warning=True, what="the execution role")
    if role.get("Arn") and role["Arn"] != role_arn:
        return CheckResult(
            name="role",
            level=Level.FAIL,
            code="role-missing",
            message=f"{role_arn} does not match the role found ({role['Arn']})",
            fix="Copy the role ARN exactly from the IAM console into AWS_ARN_ROLE.",
        )
    if not trusts_sagemaker(role.get("AssumeRolePolicyDocument")):  # one reading: cloud.aws.check
        return _from_mode("role", "role-untrusted", detail=role_arn)
    return _ok("role", f"{role_name} exists and trusts sagemaker.amazonaws.com")


def _simulate(iam: Any, *, source: str, action: str, resource: str, context: list[dict[str, Any]] | None = None) -> str:
    kwargs: dict[str, Any] = {"PolicySourceArn": source, "ActionNames": [action], "ResourceArns": [resource]}
    if context:
        kwargs["ContextEntries"] = context
    result = iam.simulate_principal_policy(**kwargs)["EvaluationResults"]
    return result[0]["EvalDecision"] if result else "implicitDeny"


def check_pass_role(iam: Any, caller_arn: str | None, role_arn: str | None) -> CheckResult:
    if not (caller_arn and role_arn):
        return CheckResult(
            name="pass-role",
            level=Level.WARNING,
            code="passrole-denied",
            message="not checked (no caller identity or role)",
        )
    source = principal_arn(caller_arn)
    if source is None:
        return CheckResult(
            name="pass-role",
            level=Level.WARNING,
            code="passrole-denied",
            message=f"cannot simulate {caller_arn} (root or federated); not checked",
        )
    try:
        decision = _simulate(
            iam,
            source=source,
            action="iam:PassRole",
            resource=role_arn,
            context=[
                {
                    "ContextKeyName": "iam:PassedToService",
                    "ContextKeyValues": ["sagemaker.amazonaws.com"],
                    "ContextKeyType": "string",
                }
            ],
        )
    except Exception as err:  # noqa: BLE001
        if error_code(err) in {"AccessDenied", "AccessDeniedException"}:
            return CheckResult(
                name="pass-role",
                level=Level.WARNING,
                code="passrole-denied",
                message="could not check iam:PassRole (iam:SimulatePrincipalPolicy is not "
                "allowed for you); create_model will tell",
                fix="Nothing to do if the deploy works.",
            )
        return _from_error("pass-role", err, check_only=True, what="iam:PassRole")
    if decision != "allowed":
        return _from_mode("pass-role", "passrole-denied", detail=f"simulation: {decision}")
    return _ok("pass-role", "you may pass the role to SageMaker")


def check_role_reads(iam: Any, role_arn: str | None, bucket: str | None, key: str | None) -> CheckResult:
    if not (role_arn and bucket):
        return CheckResult(
            name="role-reads-model",
            level=Level.WARNING,
            code="model-data-unreadable",
            message="not checked (no role or bucket)",
        )
    resource = f"arn:aws:s3:::{bucket}/{key or '*'}"
    try:
        decision = _simulate(iam, source=role_arn, action="s3:GetObject", resource=resource)
    except Exception as err:  # noqa: BLE001
        return _from_error("role-reads-model", err, check_only=True, what="the role's S3 access")
    if decision != "allowed":
        return _from_mode(
            "role-reads-model",
            "model-data-unreadable",
            level=Level.FAIL,
            detail=f"simulation of s3:GetObject on {resource}: {decision}",
        )
    return _ok("role-reads-model", "the role may read the model data")


def bucket_region(s3: Any, bucket: str) -> str:
    location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def check_bucket(s3: Any, bucket: str | None, region: str | None) -> CheckResult:
    if not bucket:
        return CheckResult(
            name="bucket",
            level=Level.FAIL,
            code="bucket-missing",
            message="no S3 bucket was given for the model data",
            fix="Set MODEL_BUCKET in .env or pass --bucket.",
        )
    try:
        s3.head_bucket(Bucket=bucket)
        where = bucket_region(s3, bucket)
    except Exception as err:  # noqa: BLE001
        code = error_code(err)
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return _from_mode("bucket", "bucket-missing", detail=bucket)
        if code in {"403", "AccessDenied"}:
            return CheckResult(
                name="bucket",
                level=Level.FAIL,
                code="access-denied",
                message=f"bucket {bucket} exists but these credentials may not use it",
                fix="Use a bucket of your own account, or get s3:ListBucket/s3:PutObject on it.",
            )
        if code in {"301", "PermanentRedirect"}:
            return _from_mode("bucket", "region-mismatch", detail=f"bucket {bucket}")
        return _from_error("bucket", err)
    if region and where != region:
        return _from_mode("bucket", "region-mismatch", detail=f"bucket {bucket} is in {where}, endpoint in {region}")
    return _ok("bucket", f"{bucket} in {where}")


def check_endpoint_name(name: str) -> CheckResult:
    problem = endpoint_name_problem(name)
    if problem:
        return _from_mode("endpoint-name", "invalid-name", detail=f"{name!r}: {problem}")
    return _ok("endpoint-name", name)


def check_instance_type(instance_type: str, *, serverless: bool) -> CheckResult:
    if serverless:
        return _from_mode("instance-type", "serverless-gpu")
    if not is_gpu_instance(instance_type):
        return _from_mode(
            "instance-type", "cuda-unavailable", level=Level.WARNING, detail=f"{instance_type} has no NVIDIA GPU"
        )
    return _ok("instance-type", instance_type)


def _find_quota(quotas: Any, operation: str, name: str) -> float | None:
    for page in quotas.get_paginator(operation).paginate(ServiceCode="sagemaker"):
        for q in page.get("Quotas", []):
            if q.get("QuotaName") == name:
                return float(q.get("Value", 0))
    return None


def check_quota(quotas: Any, instance_type: str, count: int) -> CheckResult:
    name = f"{instance_type} for endpoint usage"
    try:
        value = _find_quota(quotas, "list_service_quotas", name)
        source = "applied"
        if value is None:
            value = _find_quota(quotas, "list_aws_default_service_quotas", name)
            source = "default"
    except Exception as err:  # noqa: BLE001
        return _from_error("quota", err, check_only=True, what="the instance quota")
    if value is None:
        return CheckResult(
            name="quota", level=Level.WARNING, code="quota", message=f"could not find the quota '{name}'; not checked"
        )
    if value < count:
        level = Level.FAIL if source == "applied" else Level.WARNING
        return _from_mode("quota", "quota", level=level, detail=f"'{name}' is {value:g} ({source}), need {count}")
    return _ok("quota", f"'{name}' is {value:g}")


def resolve_image(image_uri: str | None, region: str | None) -> str | None:
    if image_uri:
        return image_uri
    return dlc_image_uri(region) if region else None


def check_image(
    image_uri: str | None, region: str | None, *, ecr: Any | None = None, account: str | None = None
) -> CheckResult:
    if not image_uri:
        return CheckResult(
            name="image",
            level=Level.FAIL,
            code="image-missing",
            message=f"there is no PyTorch inference DLC in region {region!r}",
            fix="Pass --image with your own ECR image in that region, or use another region.",
        )
    if not is_ecr_uri(image_uri):
        return CheckResult(
            name="image",
            level=Level.FAIL,
            code="image-missing",
            message=f"{image_uri} is not an Amazon ECR image URI",
            fix="Push the image to ECR in the endpoint's region and pass that URI.",
        )
    where = image_region(image_uri)
    if region and where != region:
        return _from_mode("image", "region-mismatch", detail=f"image in {where}, endpoint in {region}")
    owner = image_uri.split(".", 1)[0]
    if ecr is not None and account and owner == account:
        repo, _, tag = image_uri.split("/", 1)[1].partition(":")
        try:
            ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": tag or "latest"}])
        except Exception as err:  # noqa: BLE001
            if error_code(err) in {"ImageNotFoundException", "RepositoryNotFoundException"}:
                return _from_mode("image", "image-missing", detail=image_uri)
            return _from_error("image", err, check_only=True, what="the image")
    return _ok("image", image_uri)


def check_environment(env: Mapping[str, str]) -> list[CheckResult]:
    out = []
    for code, detail in environment_problems(env):
        level = Level.FAIL if code == "env-too-large" else Level.WARNING
        out.append(_from_mode("environment", code, level=level, detail=detail))
    return out or [_ok("environment", f"{len(env)} entries, each within 1024 bytes")]


def check_package(path: Any) -> CheckResult:
    """The archive or package directory, checked by the packaging side's verifier (no import run)."""
    from cloud.packaging.ray import is_ray_package, verify_ray_dir
    from cloud.packaging.verify import verify_package

    ray = is_ray_package(path)  # lists a whole .tar.gz: asked once
    if ray and Path(path).is_dir():
        report = verify_ray_dir(Path(path))
    elif ray:
        report = verify_package(path, import_check=False)
        if report.ok or set(report.problems) <= {"code/inference.py is missing"}:
            return _ok("package", "Ray Serve package (config.yaml + deployment.py)")
    else:
        report = verify_package(path, import_check=False)
    if not report.ok:
        return _from_mode("package", "bad-archive", detail="; ".join(report.problems[:5]))
    return _ok("package", report.summary())


def run_preflight(
    clients: Any,
    *,
    name: str,
    role_arn: str | None,
    bucket: str | None,
    instance_type: str,
    instance_count: int = 1,
    image_uri: str | None = None,
    environment: Mapping[str, str] | None = None,
    serverless: bool = False,
    model_key: str | None = None,
    package: Any | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> PreflightReport:
    """Run every check; ``on_result`` sees each as it finishes (for live output)."""
    results: list[CheckResult] = []

    def add(result: CheckResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    if package is not None:
        add(check_package(package))
    add(check_endpoint_name(name))
    add(check_instance_type(instance_type, serverless=serverless))
    for r in check_environment(environment or {}):
        add(r)
    try:
        region = clients.region
    except Exception as err:  # noqa: BLE001
        region = None
        add(_from_error("region", err))
    if not region:
        add(_from_mode("region", "no-region"))
        return PreflightReport(checks=tuple(results), account=None, caller_arn=None, region=None, image_uri=image_uri)
    add(_ok("region", region))
    resolved = resolve_image(image_uri, region)
    identity, caller_arn, account = check_identity(clients.client("sts"))
    add(identity)
    if caller_arn is None:
        return PreflightReport(checks=tuple(results), account=None, caller_arn=None, region=region, image_uri=resolved)
    iam = clients.client("iam")
    add(check_role(iam, role_arn))
    add(check_pass_role(iam, caller_arn, role_arn))
    add(check_bucket(clients.client("s3"), bucket, region))
    add(check_role_reads(iam, role_arn, bucket, model_key))
    add(check_quota(clients.client("service-quotas"), instance_type, instance_count))
    add(check_image(resolved, region, ecr=clients.client("ecr"), account=account))
    return PreflightReport(
        checks=tuple(results), account=account, caller_arn=caller_arn, region=region, image_uri=resolved
    )
