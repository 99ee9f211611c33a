"""The deploy flow, headless: preflight, upload, model/config/endpoint, wait, smoke test, rollback.

The CLI (:mod:`desktop_app.cli.deploy_command`) and, later, the app's deploy wizard are thin views over
:func:`deploy_up`, :func:`endpoint_status` and :func:`deploy_down`; progress reaches them
through :class:`Reporter` callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cloud.aws.errors import DeployError
from cloud.aws.images import RAY_GPU_AMI_VERSION, is_ray_image, ray_image_uri
from cloud.aws.logs import LogLine, LogTail
from cloud.deploy.preflight import CheckResult, Level, PreflightReport, run_preflight
from cloud.deploy.resources import Applied, Ledger, apply, apply_autoscaling, describe_or_none, rollback, teardown
from cloud.deploy.spec import (
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_KEY_PREFIX,
    TAG_KEY,
    Autoscaling,
    DeploySpec,
    is_gpu_instance,
    model_data_key,
)
from cloud.deploy.upload import (
    UploadResult,
    dir_files,
    dir_sha256,
    file_sha256,
    parse_s3_uri,
    upload_model,
    upload_model_dir,
)
from cloud.deploy.wait import EndpointState, SmokeResult, smoke_test, wait_for_endpoint
from cloud.diagnosis import mode
from cloud.timeouts import AWS_MAX, AWS_MIN, clamp, size_timeouts


def _noop(*_: object) -> None:
    pass


@dataclass(frozen=True, kw_only=True)
class Reporter:
    """Where progress goes: plain lines, preflight results, log lines, upload bytes."""

    say: Callable[[str], None] = _noop
    check: Callable[[CheckResult], None] = _noop
    log: Callable[[LogLine], None] = _noop
    upload: Callable[[int, int], None] | None = None


@dataclass(frozen=True, kw_only=True)
class UpOptions:
    name: str = "langsam-studio"
    archive: Path | None = None  # model.tar.gz to upload, or
    model_data_url: str | None = None  # an archive already in S3
    image_uri: str | None = None  # None: the image of the container kind in the region
    container: str | None = None  # "ray", "dlc", "byoc"; None: from the package (a Ray package -> ray, else dlc)
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    load_seconds: float | None = None  # measured local start-up (deploy test-local)
    worst_request_seconds: float | None = None
    use_async: bool = False
    autoscaling: Autoscaling | None = None
    serverless: bool = False
    extra_environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    key_prefix: str = DEFAULT_KEY_PREFIX
    smoke: bool = True
    smoke_budget_s: float | None = None  # None: the sized start-up timeout
    keep_on_failure: bool = False
    wait_timeout_s: float = 3600.0
    poll_s: float = 15.0
    read_timeout_s: float = 75.0
    health_check_timeout_s: int | None = None  # override ContainerStartupHealthCheckTimeoutInSeconds (60..3600)
    download_timeout_s: int | None = None  # override ModelDataDownloadTimeoutInSeconds (60..3600)
    verify_package: bool = True  # check the archive/directory with cloud.packaging.verify before uploading


@dataclass(frozen=True, kw_only=True)
class UpResult:
    spec: DeploySpec
    preflight: PreflightReport
    upload: UploadResult | None
    applied: Applied
    state: EndpointState
    smoke: SmokeResult | None


def _archive_facts(options: UpOptions) -> tuple[int, str | None]:
    if options.archive is not None:
        path = Path(options.archive)
        if path.is_dir():
            return sum(p.stat().st_size for _, p in dir_files(path)), dir_sha256(path)
        if not path.is_file():
            raise DeployError(
                f"The model archive {path} does not exist.",
                fix="Build it with `langsam-studio deploy package` or pass the right path.",
                code="bad-archive",
            )
        return path.stat().st_size, file_sha256(path)
    if options.model_data_url:
        return 0, None
    raise DeployError(
        "No model archive was given.", fix="Pass --archive model.tar.gz or --model-data s3://...", code="bad-archive"
    )


def data_key(options: UpOptions, sha256: str) -> str:
    """The S3 key of the uploaded archive, or the prefix (ending in ``/``) of a package directory."""
    key = model_data_key(prefix=options.key_prefix, deployment=options.name, sha256=sha256)
    if options.archive is not None and Path(options.archive).is_dir():
        return key.removesuffix("model.tar.gz") + "model/"
    return key


def build_spec(
    options: UpOptions,
    *,
    region: str,
    role_arn: str,
    bucket: str | None,
    image_uri: str,
    archive_size: int,
    sha256: str | None,
) -> DeploySpec:
    if sha256 is not None:
        if not bucket:
            raise DeployError(
                "No S3 bucket was given for the model data.",
                fix="Set MODEL_BUCKET or pass --bucket.",
                code="bucket-missing",
            )
        url = f"s3://{bucket}/{data_key(options, sha256)}"
    else:
        url = str(options.model_data_url)
    async_output = None
    if options.use_async:
        if not bucket:
            raise DeployError(
                "Asynchronous inference needs an S3 bucket for its results.",
                fix="Set MODEL_BUCKET or pass --bucket.",
                code="bucket-missing",
            )
        async_output = f"s3://{bucket}/{options.key_prefix.strip('/')}/{options.name}/async"
    timeouts = size_timeouts(
        load_seconds=options.load_seconds,
        worst_request_seconds=options.worst_request_seconds,
        archive_bytes=archive_size,
    )
    if options.health_check_timeout_s:
        timeouts = replace(timeouts, health_check=clamp(options.health_check_timeout_s, AWS_MIN, AWS_MAX))
    if options.download_timeout_s:
        timeouts = replace(timeouts, download=clamp(options.download_timeout_s, AWS_MIN, AWS_MAX))
    return DeploySpec(
        name=options.name,
        image_uri=image_uri,
        role_arn=role_arn,
        model_data_url=url,
        region=region,
        timeouts=timeouts,
        instance_type=options.instance_type,
        instance_count=options.instance_count,
        extra_environment=MappingProxyType(dict(options.extra_environment)),
        async_output_s3=async_output,
        autoscaling=options.autoscaling,
        serverless=options.serverless,
        container_kind=container_kind(options),
        inference_ami_version=(
            RAY_GPU_AMI_VERSION if container_kind(options) == "ray" and is_gpu_instance(options.instance_type) else None
        ),
    )


def container_kind(options: UpOptions) -> str:
    """The container the deployment runs: explicit, else what the package was built for."""
    if options.container:
        return options.container
    if options.image_uri:
        return "ray" if is_ray_image(options.image_uri) else "dlc"
    if options.archive is not None:
        from cloud.packaging.ray import is_ray_package

        return "ray" if is_ray_package(options.archive) else "dlc"
    return "dlc"


def ray_options(clients: Any, options: UpOptions) -> UpOptions:
    """For the Ray Serve image: its URI for the region (GPU or CPU by instance type), and the
    package's container Environment (session affinity) under the user's own entries."""
    from cloud.packaging.ray import package_environment

    env = dict(package_environment(options.archive)) if options.archive is not None else {}
    env.update(options.extra_environment)
    image = options.image_uri
    if not image:
        try:
            region = clients.region
        except Exception:  # noqa: BLE001 - preflight reports the missing region
            region = None
        image = ray_image_uri(region, gpu=is_gpu_instance(options.instance_type)) if region else None
    return replace(options, image_uri=image, container="ray", extra_environment=MappingProxyType(env))


def deploy_up(
    clients: Any, options: UpOptions, *, reporter: Reporter = Reporter(), sleep: Callable[[float], None] | None = None
) -> UpResult:
    """Deploy (or update, or confirm) one endpoint. Rolls back what this run created on failure."""
    import time

    sleep = sleep or time.sleep
    say = reporter.say
    if options.autoscaling is not None and options.autoscaling.min_instances == 0 and not options.use_async:
        raise DeployError(
            "A real-time endpoint cannot scale to zero instances; nothing was created.",
            fix="Use --autoscale 1:N, or deploy with --async to allow 0:N.",
            code="unknown",
        )
    settings = clients.settings
    size, sha = _archive_facts(options)
    if sha is not None:
        bucket, key = settings.bucket, data_key(options, sha)
    else:  # an archive already in S3: check that bucket, that key
        try:
            bucket, key = parse_s3_uri(str(options.model_data_url))
        except ValueError as exc:
            raise DeployError(
                f"--model-data {options.model_data_url!r} is not an S3 URI.",
                fix="Write it as s3://BUCKET/path/model.tar.gz.",
                code="bad-archive",
            ) from exc
    container = container_kind(options)
    if container == "ray":
        options = ray_options(clients, options)
    probe_env = DeploySpec(  # the environment does not depend on names, bucket or role
        name=options.name,
        image_uri="-",
        role_arn="-",
        model_data_url="-",
        region=clients.region or "-",
        timeouts=size_timeouts(
            load_seconds=options.load_seconds, archive_bytes=size, worst_request_seconds=options.worst_request_seconds
        ),
        extra_environment=MappingProxyType(dict(options.extra_environment)),
        container_kind=container,
    ).environment()
    say("preflight checks")
    report = run_preflight(
        clients,
        name=options.name,
        role_arn=settings.role_arn,
        bucket=bucket,
        instance_type=options.instance_type,
        instance_count=options.instance_count,
        image_uri=options.image_uri,
        environment=probe_env,
        serverless=options.serverless,
        model_key=key,
        on_result=reporter.check,
        package=options.archive if options.verify_package else None,
    )
    if not report.ok:
        first = report.failures[0]
        raise DeployError(
            f"Preflight failed ({len(report.failures)} problem(s)); nothing was created. "
            f"First: {first.name}: {first.message}",
            fix=first.fix,
            code=first.code or "unknown",
        )
    assert report.region is not None and report.image_uri is not None  # an ok preflight resolved both
    spec = build_spec(
        options,
        region=report.region,
        role_arn=settings.role_arn,
        bucket=bucket,
        image_uri=report.image_uri,
        archive_size=size,
        sha256=sha,
    )
    t = spec.timeouts
    say(
        f"timeouts ({'measured' if t.measured else 'assumed'} load {t.load_seconds:.0f} s): TorchServe start-up "
        f"{t.startup} s, response {t.response} s, health check {t.health_check} s, download {t.download} s"
    )
    upload = None
    if sha is not None:
        assert options.archive is not None  # only a local archive has a sha (_archive_facts)
        say(f"uploading {options.archive} ({size / 2**20:.1f} MiB) to s3://{bucket}/{key}")
        send = upload_model_dir if Path(options.archive).is_dir() else upload_model
        upload = send(
            clients.client("s3"),
            Path(options.archive),
            bucket=bucket,
            deployment=options.name,
            prefix=options.key_prefix,
            progress=reporter.upload,
            sha256=sha,
        )
        say(
            "model data already in S3 (same content), upload skipped"
            if not upload.uploaded
            else f"uploaded in {upload.seconds:.1f} s"
        )
    sm = clients.client("sagemaker")
    ledger = Ledger()
    try:
        applied = apply(sm, spec, ledger, say=say, poll=options.poll_s)
        tail = LogTail(clients.client("logs"), spec.endpoint_name)
        state = wait_for_endpoint(
            sm,
            spec.endpoint_name,
            expected_config=spec.endpoint_config_name,
            tail=tail,
            timeout_s=options.wait_timeout_s,
            poll_s=options.poll_s,
            say=say,
            on_log=reporter.log,
            sleep=sleep,
        )
        if spec.autoscaling is not None:
            apply_autoscaling(clients.client("application-autoscaling"), spec, cloudwatch=clients.client("cloudwatch"))
            say(f"autoscaling {spec.autoscaling.min_instances}..{spec.autoscaling.max_instances} instances")
        smoke = None
        if options.smoke:
            smoke = run_smoke(clients, spec, options=options, tail=tail, reporter=reporter, sleep=sleep)
            say(
                f"the model answers: {smoke.answer}; first answer after {smoke.seconds_to_answer:.0f} s, "
                f"{smoke.attempts} attempt(s)"
            )
    except BaseException:  # a failure or Ctrl-C: undo this run's changes unless asked not to
        if options.keep_on_failure:
            say("keeping the resources for inspection (--keep-on-failure); remove them with `deploy down`")
        elif ledger.created or ledger.updated_from:
            say("rolling back what this run created")
            rollback(sm, ledger, say=say)
        raise
    say(f"note: {mode('billing').message} {mode('billing').fix}")
    return UpResult(spec=spec, preflight=report, upload=upload, applied=applied, state=state, smoke=smoke)


def run_smoke(
    clients: Any,
    spec: DeploySpec,
    *,
    options: UpOptions,
    tail: LogTail | None,
    reporter: Reporter,
    sleep: Callable[[float], None],
) -> SmokeResult:
    from cloud.endpoint.client import from_settings, smoke_request_body
    from inference.protocol import decode_response

    client = from_settings(
        clients.settings,
        spec.endpoint_name,
        read_timeout=options.read_timeout_s,
        clients=clients,
        async_s3_prefix=spec.async_output_s3 if spec.is_async else None,
        endpoint_is_async=spec.is_async,
    )  # known from the spec: no describe call
    body, content_type = smoke_request_body()
    budget = options.smoke_budget_s or float(spec.timeouts.startup + 120)
    return smoke_test(
        lambda: client.invoke(body, content_type=content_type),
        validate=decode_response,
        budget_s=budget,
        interval_s=min(10.0, options.poll_s),
        tail=tail,
        say=reporter.say,
        on_log=reporter.log,
        sleep=sleep,
    )


@dataclass(frozen=True, kw_only=True)
class EndpointSummary:
    name: str
    status: str
    instance_type: str | None
    instance_count: int | None
    config_name: str | None
    failure_reason: str | None
    is_async: bool
    created: str | None


def endpoint_status(sm: Any, name: str) -> EndpointSummary | None:
    ep = describe_or_none(sm.describe_endpoint, EndpointName=name)
    if ep is None:
        return None
    cfg = describe_or_none(sm.describe_endpoint_config, EndpointConfigName=ep.get("EndpointConfigName", "")) or {}
    variant = (cfg.get("ProductionVariants") or [{}])[0]
    running = (ep.get("ProductionVariants") or [{}])[0]
    return EndpointSummary(
        name=name,
        status=ep.get("EndpointStatus", "?"),
        instance_type=variant.get("InstanceType"),
        instance_count=running.get("CurrentInstanceCount", variant.get("InitialInstanceCount")),
        config_name=ep.get("EndpointConfigName"),
        failure_reason=ep.get("FailureReason"),
        is_async=bool(cfg.get("AsyncInferenceConfig")),
        created=str(ep.get("CreationTime") or "") or None,
    )


def list_deployments(sm: Any) -> list[EndpointSummary]:
    """Every endpoint this tool created (tagged), with its status: what is billing right now."""
    out = []
    for page in sm.get_paginator("list_endpoints").paginate():
        for ep in page.get("Endpoints", []):
            try:
                tags = sm.list_tags(ResourceArn=ep["EndpointArn"]).get("Tags", [])
            except Exception:  # noqa: BLE001 - without tag rights, list by name only
                tags = []
            if any(t.get("Key") == TAG_KEY for t in tags):
                summary = endpoint_status(sm, ep["EndpointName"])
                if summary is not None:
                    out.append(summary)
    return out


def deploy_down(clients: Any, name: str, *, delete_model_data: bool = False, reporter: Reporter = Reporter()) -> Any:
    """Delete endpoint, endpoint configs and models of ``name`` (and its S3 archive if asked)."""
    return teardown(
        clients.client("sagemaker"),
        name,
        autoscaling=clients.client("application-autoscaling"),
        s3=clients.client("s3"),
        cloudwatch=clients.client("cloudwatch"),
        delete_model_data=delete_model_data,
        say=reporter.say,
    )


def preflight_only(clients: Any, options: UpOptions, *, reporter: Reporter = Reporter()) -> PreflightReport:
    settings = clients.settings
    return run_preflight(
        clients,
        name=options.name,
        role_arn=settings.role_arn,
        bucket=settings.bucket,
        instance_type=options.instance_type,
        instance_count=options.instance_count,
        image_uri=options.image_uri,
        environment=dict(options.extra_environment),
        serverless=options.serverless,
        on_result=reporter.check,
        package=options.archive if options.verify_package else None,
    )


__all__ = [
    "Reporter",
    "UpOptions",
    "UpResult",
    "deploy_up",
    "deploy_down",
    "endpoint_status",
    "list_deployments",
    "preflight_only",
    "Level",
]
