"""One Batch Transform run, headless: check the inputs, get a model, start the job, follow it.

The CLI (:mod:`desktop_app.cli.batch_transform_command`) is a thin view over :func:`run_transform`;
progress reaches it through :class:`cloud.deploy.flow.Reporter` (``say``, ``log``, ``upload``)
plus :class:`TransformProgress` snapshots.

What the job is (see ``docs/deploy.md``, "Batch Transform"):

* input ``S3Prefix`` = ``--in``; ``SplitType`` None, ``BatchStrategy`` SingleRecord: **each S3
  object is one request**, its bytes the body, ``ContentType`` ``application/x-image``;
* the prompt is the job's ``Environment["LANGSAM_BATCH_PROMPT"]`` (:mod:`inference.batch_prompt`),
  validated here by the protocol codec before anything is created;
* output ``<--out>/<relative key>.out`` = the protocol's JSON answer (``Accept`` application/json);
* ``MaxConcurrentTransforms`` 1 (one request at a time per instance: the backend is not
  thread-safe), ``MaxPayloadInMB`` 6 (the serving code's limit), ``InvocationsTimeoutInSeconds``
  sized like the endpoint's response timeout (the first record also waits for the model to load),
  one retry.

The model: ``--model NAME`` (an existing SageMaker model, e.g. one ``deploy up`` created), or
``--package PATH``, uploaded and turned into a model exactly as ``deploy up`` does
(:func:`cloud.deploy.flow.build_spec`, :func:`cloud.deploy.resources.ensure_model`; same
content-addressed S3 key and model name, so a re-run reuses both). On a failure, a failed job or
Ctrl-C the run stops its job (``StopTransformJob``) and deletes the model it created
(``--keep-on-failure`` keeps them); a model that already existed is never touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cloud.aws.errors import DeployError
from cloud.aws.logs import LogLine, LogTail
from cloud.batch_transform.results import (
    MANIFEST_NAME,
    RECORD_SUFFIX,
    count_records,
    list_objects,
    split_s3_prefix,
    write_manifest,
)
from cloud.deploy.flow import Reporter, UpOptions, _archive_facts, build_spec, container_kind, data_key, ray_options
from cloud.deploy.resources import Ledger, describe_or_none, ensure_model, rollback
from cloud.deploy.spec import NAME_MAX, TAG_KEY, endpoint_name_problem
from cloud.diagnosis import deploy_error, diagnose_exception, diagnose_failure_reason, mode, scan_log_lines
from cloud.timeouts import clamp, size_timeouts

CONTENT_TYPE = "application/x-image"  # inference.protocol accepts it for any image format
ACCEPT = "application/json"
MAX_PAYLOAD_MB = 6  # the serving code refuses bodies over 6 MiB (inference.protocol.MAX_PAYLOAD_BYTES)
MAX_PAYLOAD_BYTES = MAX_PAYLOAD_MB * 2**20
TRANSFORM_MAX_PAYLOAD_MB = 100  # Batch Transform's own limit per record (documented, not used)
LOG_GROUP = "/aws/sagemaker/TransformJobs"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


@dataclass(frozen=True, kw_only=True)
class TransformOptions:
    input_uri: str  # s3://bucket/images/
    output_uri: str  # s3://bucket/out/
    prompt_json: str  # LANGSAM_BATCH_PROMPT (inference.batch_prompt.encode_batch_prompt)
    instance_type: str
    instance_count: int = 1
    model_name: str | None = None  # an existing SageMaker model, or
    package: Path | None = None  # a package to upload and make a model of (like deploy up)
    name: str = "langsam-batch"  # the model's deployment name (model NAME-m-<hash>) and the job's stem
    image_uri: str | None = None
    container: str | None = None
    load_seconds: float | None = None
    worst_request_seconds: float | None = None
    invocation_timeout_s: int | None = None  # None: sized like the endpoint's response timeout
    max_retries: int = 1  # InvocationsMaxRetries (0..3)
    transform_ami_version: str | None = None
    extra_environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    wait: bool = True
    keep_on_failure: bool = False
    poll_s: float = 30.0
    timeout_s: float | None = None  # None: wait as long as the job runs


@dataclass(frozen=True, kw_only=True)
class InputSummary:
    count: int
    total_bytes: int
    too_large: tuple[str, ...] = ()
    empty: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TransformProgress:
    """One look at the job: its status, records written vs inputs, time and indicative cost."""

    job_name: str
    status: str
    done: int
    total: int
    elapsed_s: float  # since the job's instances started (or since it was created)
    cost_usd: float | None  # instances × hours × cloud.pricing (None: type not in the table)
    failure_reason: str | None = None

    def line(self) -> str:
        from cloud.pricing import format_usd

        percent = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        cost = f", cost so far ≈ {format_usd(self.cost_usd)}" if self.cost_usd is not None else ""
        return (
            f"{self.job_name}: {self.status}, {self.done}/{self.total} images{percent}, "
            f"{self.elapsed_s / 60:.1f} min{cost}"
        )


@dataclass(frozen=True, kw_only=True)
class TransformResult:
    job_name: str
    model_name: str
    model_created: bool
    inputs: InputSummary
    progress: TransformProgress | None  # the last look (None with wait=False)
    manifest_uri: str


def job_name_for(stem: str, now: float | None = None) -> str:
    """``<stem>-YYYYmmdd-HHMMSS`` within SageMaker's 63 characters (job names are never reused)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    head = stem[: NAME_MAX - len(stamp) - 1].rstrip("-")
    return f"{head}-{stamp}"


def check_locations(input_uri: str, output_uri: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """Both prefixes parsed; refuses an output inside the input (a re-run would read the results)."""
    src = split_s3_prefix(input_uri, option="the input")
    dst = split_s3_prefix(output_uri, option="--out")
    if src[0] == dst[0] and dst[1].startswith(src[1]):
        raise DeployError(
            f"--out {output_uri} is inside the input {input_uri}: the results would be read as images by the next run.",
            fix="Write the results to another prefix, e.g. s3://BUCKET/results/.",
            code="transform-input",
        )
    if not src[1]:
        raise DeployError(
            f"The input {input_uri} is a whole bucket.",
            fix="Put the images under a prefix (s3://BUCKET/images/) and pass that.",
            code="transform-input",
        )
    return src, dst


def summarize_inputs(s3: Any, bucket: str, prefix: str) -> InputSummary:
    """Count and size the input objects; those SageMaker would send but the model must refuse."""
    count = total = 0
    too_large: list[str] = []
    empty: list[str] = []
    try:
        for obj in list_objects(s3, bucket, prefix):
            if obj.key.endswith("/") and obj.size == 0:
                continue  # a "folder" placeholder of the S3 console
            count += 1
            total += obj.size
            if obj.size > MAX_PAYLOAD_BYTES:
                too_large.append(obj.key)
            elif obj.size == 0:
                empty.append(obj.key)
    except Exception as err:  # noqa: BLE001
        raise deploy_error(f"Listing the input s3://{bucket}/{prefix}", err) from None
    return InputSummary(count=count, total_bytes=total, too_large=tuple(too_large), empty=tuple(empty))


def _started(job: Mapping[str, Any]) -> datetime | None:
    value = job.get("TransformStartTime") or job.get("CreationTime")
    return value if isinstance(value, datetime) else None


def progress_of(
    job: Mapping[str, Any],
    *,
    done: int,
    total: int,
    instance_type: str,
    instance_count: int,
    now: datetime | None = None,
) -> TransformProgress:
    from cloud.pricing import cost_so_far

    start = _started(job)
    end = job.get("TransformEndTime") if job.get("TransformJobStatus") in TERMINAL else None
    stop = end if isinstance(end, datetime) else (now or datetime.now(timezone.utc))
    elapsed = max(0.0, (stop - start).total_seconds()) if start is not None else 0.0
    return TransformProgress(
        job_name=str(job.get("TransformJobName", "?")),
        status=str(job.get("TransformJobStatus", "?")),
        done=done,
        total=total,
        elapsed_s=elapsed,
        cost_usd=cost_so_far(instance_type, elapsed / 3600, count=instance_count),
        failure_reason=job.get("FailureReason") or None,
    )


def transform_request(options: TransformOptions, *, job_name: str, model_name: str, timeout_s: int) -> dict[str, Any]:
    """The ``CreateTransformJob`` arguments (the record contract, in one place)."""
    from inference.batch_prompt import BATCH_PROMPT_ENV

    resources: dict[str, Any] = {"InstanceType": options.instance_type, "InstanceCount": options.instance_count}
    if options.transform_ami_version:
        resources["TransformAmiVersion"] = options.transform_ami_version
    return {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "MaxConcurrentTransforms": 1,
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "BatchStrategy": "SingleRecord",
        "ModelClientConfig": {
            "InvocationsTimeoutInSeconds": timeout_s,
            "InvocationsMaxRetries": max(0, min(3, options.max_retries)),
        },
        "Environment": {**dict(options.extra_environment), BATCH_PROMPT_ENV: options.prompt_json},
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": options.input_uri}},
            "ContentType": CONTENT_TYPE,
            "CompressionType": "None",
            "SplitType": "None",
        },
        "TransformOutput": {"S3OutputPath": options.output_uri, "Accept": ACCEPT, "AssembleWith": "None"},
        "TransformResources": resources,
        "Tags": [{"Key": TAG_KEY, "Value": options.name}],
    }


def _up_options(options: TransformOptions) -> UpOptions:
    return UpOptions(
        name=options.name,
        archive=options.package,
        image_uri=options.image_uri,
        container=options.container,
        instance_type=options.instance_type,
        instance_count=options.instance_count,
        load_seconds=options.load_seconds,
        worst_request_seconds=options.worst_request_seconds,
        verify_package=False,
    )


def prepare_model(
    clients: Any, options: TransformOptions, ledger: Ledger, *, reporter: Reporter | None = None
) -> tuple[str, int, bool]:
    """``(model name, invocation timeout, created)``: the existing model, or one made from the package."""
    reporter = reporter or Reporter()
    sm = clients.client("sagemaker")
    timeouts = size_timeouts(load_seconds=options.load_seconds, worst_request_seconds=options.worst_request_seconds)
    if options.model_name:
        try:
            found = describe_or_none(sm.describe_model, ModelName=options.model_name)
        except Exception as err:  # noqa: BLE001
            raise deploy_error(f"Looking up the model {options.model_name}", err) from None
        if found is None:
            raise DeployError(
                f"There is no SageMaker model named {options.model_name} in this region.",
                fix=mode("transform-model-missing").fix,
                code="transform-model-missing",
            )
        reporter.say(f"model {options.model_name}: exists, used as it is")
        return options.model_name, clamp(options.invocation_timeout_s or timeouts.response, 1, 3600), False
    if options.package is None:
        raise DeployError(
            "Neither --model nor --package was given.",
            fix="Pass --model NAME (an existing model) or --package PATH (built by `langsam-studio deploy package`).",
            code="bad-archive",
        )
    settings = clients.settings
    if not settings.role_arn:
        raise DeployError(
            "Creating a model from --package needs the SageMaker execution role.",
            fix="Set AWS_ARN_ROLE or pass --role.",
            code="role-missing",
        )
    up = _up_options(options)
    size, sha = _archive_facts(up)
    if container_kind(up) == "ray":
        up = ray_options(clients, up)
    region = clients.region
    if not region:
        raise DeployError("No AWS region is set.", fix=mode("no-region").fix, code="no-region")
    from cloud.deploy.preflight import resolve_image

    image = up.image_uri or resolve_image(None, region)
    if not image:
        raise DeployError(
            f"There is no PyTorch inference image for {region}.", fix="Pass --image.", code="image-missing"
        )
    spec = build_spec(
        up,
        region=region,
        role_arn=settings.role_arn,
        bucket=settings.bucket,
        image_uri=image,
        archive_size=size,
        sha256=sha,
    )
    assert up.archive is not None and sha is not None
    from cloud.deploy.upload import upload_model, upload_model_dir

    key = data_key(up, sha)
    reporter.say(f"uploading {up.archive} ({size / 2**20:.1f} MiB) to s3://{settings.bucket}/{key}")
    send = upload_model_dir if Path(up.archive).is_dir() else upload_model
    try:
        result = send(
            clients.client("s3"),
            Path(up.archive),
            bucket=settings.bucket,
            deployment=up.name,
            prefix=up.key_prefix,
            progress=reporter.upload,
            sha256=sha,
        )
    except DeployError:
        raise
    except Exception as err:  # noqa: BLE001
        raise deploy_error(f"Uploading {up.archive}", err) from None
    reporter.say(
        "model data already in S3 (same content), upload skipped"
        if not result.uploaded
        else f"uploaded in {result.seconds:.1f} s"
    )
    created = ensure_model(sm, spec, ledger)
    reporter.say(f"model {spec.model_name}: {'created' if created else 'exists, reused'}")
    timeout = options.invocation_timeout_s or spec.timeouts.response
    return spec.model_name, clamp(timeout, 1, 3600), created


def stop_job(sm: Any, job_name: str, *, say: Callable[[str], None]) -> None:
    try:
        job = describe_or_none(sm.describe_transform_job, TransformJobName=job_name)
        if job is not None and job.get("TransformJobStatus") in {"InProgress"}:
            sm.stop_transform_job(TransformJobName=job_name)
            say(f"clean-up: stopped transform job {job_name} (billing stops once it is Stopped)")
    except Exception as err:  # noqa: BLE001 - reported, the rest of the clean-up still runs
        say(f"clean-up: could not stop transform job {job_name}: {diagnose_exception(err).detail}")


def log_tail(clients: Any, job_name: str) -> LogTail:
    tail = LogTail(clients.client("logs"), job_name, stream_prefix=f"{job_name}/")
    tail.group = LOG_GROUP  # transform jobs log to /aws/sagemaker/TransformJobs, streams <job>/<instance>
    return tail


def failure_error(
    job: Mapping[str, Any], *, lines: tuple[LogLine, ...] = (), done: int = 0, total: int = 0, output_uri: str = ""
) -> DeployError:
    """A failed (or stopped) job in plain words: the FailureReason's diagnosis, then the log's."""
    reason = str(job.get("FailureReason") or "no reason given")
    d = diagnose_failure_reason(reason)
    if d.code == "unknown" or d.code == "transform-failed":
        found = scan_log_lines(line.message for line in lines)
        if found:
            d = replace(found[0], detail=f"{reason}; log: {found[0].detail}")
        elif d.code == "unknown":
            d = replace(
                d, code="transform-failed", message=mode("transform-failed").message, fix=mode("transform-failed").fix
            )
    kept = (
        (
            f" {done} of {total} records were written to {output_uri} before it stopped; "
            f"`langsam-studio batch-transform import {output_uri} --images DIR` brings them in."
        )
        if done
        else ""
    )
    status = job.get("TransformJobStatus", "Failed")
    return DeployError(
        f"Transform job {job.get('TransformJobName', '?')} {str(status).lower()}: {d.message}{kept}",
        fix=d.fix,
        code=d.code,
        detail=d.detail or reason,
    )


def follow(
    clients: Any,
    job_name: str,
    *,
    output_uri: str,
    total: int,
    instance_type: str,
    instance_count: int,
    poll_s: float,
    reporter: Reporter,
    on_progress: Callable[[TransformProgress], None],
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float | None = None,
) -> TransformProgress:
    """Poll until the job ends; raises :class:`DeployError` when it failed or was stopped."""
    sm, s3 = clients.client("sagemaker"), clients.client("s3")
    tail = log_tail(clients, job_name)
    lines: list[LogLine] = []
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last_status = None
    while True:
        try:
            job = sm.describe_transform_job(TransformJobName=job_name)
        except Exception as err:  # noqa: BLE001
            raise deploy_error(f"Following the transform job {job_name}", err) from None
        try:
            done = count_records(s3, output_uri)
        except Exception as err:  # noqa: BLE001 - progress is best-effort; the status is the truth
            reporter.say(f"cannot count the results ({diagnose_exception(err).detail})")
            done = 0
        batch = tail.poll()
        for line in batch.lines:
            lines.append(line)
            reporter.log(line)
        progress = progress_of(job, done=done, total=total, instance_type=instance_type, instance_count=instance_count)
        if progress.status != last_status or progress.status == "InProgress":
            on_progress(progress)
            last_status = progress.status
        if progress.status == "Completed":
            return progress
        if progress.status in {"Failed", "Stopped"}:
            raise failure_error(job, lines=tuple(lines[-200:]), done=done, total=total, output_uri=output_uri)
        if deadline is not None and time.monotonic() > deadline:
            raise DeployError(
                f"Transform job {job_name} is still {progress.status} after {timeout_s:.0f} s.",
                fix="It keeps running (and billing) unless stopped; this run stops it now.",
                code="transform-failed",
            )
        sleep(poll_s)


def run_transform(
    clients: Any,
    options: TransformOptions,
    *,
    reporter: Reporter | None = None,
    on_progress: Callable[[TransformProgress], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: float | None = None,
) -> TransformResult:
    """Check, create, follow. Cleans up what this run created on failure or Ctrl-C."""
    reporter = reporter or Reporter()
    from inference.batch_prompt import decode_batch_prompt
    from inference.protocol import ProtocolError

    say = reporter.say
    on_progress = on_progress or (lambda p: say(p.line()))
    problem = endpoint_name_problem(options.name)
    if problem:
        raise DeployError(
            f"--name {options.name!r} is not a valid SageMaker name: {problem}.",
            fix=mode("invalid-name").fix,
            code="invalid-name",
        )
    try:
        decode_batch_prompt(options.prompt_json)
    except ProtocolError as exc:
        raise DeployError(
            f"The prompt cannot be sent: {exc}", fix="Fix --text/--point/--box.", code="transform-input"
        ) from None
    (in_bucket, in_prefix), _ = check_locations(options.input_uri, options.output_uri)
    s3, sm = clients.client("s3"), clients.client("sagemaker")
    inputs = summarize_inputs(s3, in_bucket, in_prefix)
    if not inputs.count:
        raise DeployError(
            f"There are no objects under {options.input_uri}; nothing was created.",
            fix=mode("transform-input").fix,
            code="transform-input",
        )
    if inputs.too_large:
        shown = ", ".join(inputs.too_large[:5]) + (" ..." if len(inputs.too_large) > 5 else "")
        raise DeployError(
            f"{len(inputs.too_large)} input object(s) are over {MAX_PAYLOAD_MB} MiB, more than the model accepts per "
            f"image ({shown}); nothing was created.",
            fix="Recompress them (JPEG) or move them out of the input prefix.",
            code="transform-input",
        )
    say(f"{inputs.count} input object(s), {inputs.total_bytes / 2**20:.1f} MiB under {options.input_uri}")
    if inputs.empty:
        say(f"note: {len(inputs.empty)} empty object(s) will get an error record (e.g. {inputs.empty[0]})")
    ledger = Ledger()
    job_name: str | None = None
    try:
        model_name, timeout, created = prepare_model(clients, options, ledger, reporter=reporter)
        job_name = job_name_for(options.name, now)
        manifest_uri = write_manifest(
            s3,
            options.output_uri,
            {
                "job": job_name,
                "model": model_name,
                "input": options.input_uri,
                "output": options.output_uri,
                "prompt": options.prompt_json,
                "instance_type": options.instance_type,
                "instance_count": options.instance_count,
                "records": inputs.count,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )
        request = transform_request(options, job_name=job_name, model_name=model_name, timeout_s=timeout)
        try:
            sm.create_transform_job(**request)
        except Exception as err:  # noqa: BLE001
            job_name = None  # nothing to stop
            raise deploy_error(f"Creating the transform job {request['TransformJobName']}", err) from None
        say(
            f"transform job {job_name} created: {options.instance_count} × {options.instance_type}, "
            f"results to {options.output_uri}<key>{RECORD_SUFFIX} (manifest {MANIFEST_NAME})"
        )
        progress = None
        if options.wait:
            progress = follow(
                clients,
                job_name,
                output_uri=options.output_uri,
                total=inputs.count,
                instance_type=options.instance_type,
                instance_count=options.instance_count,
                poll_s=options.poll_s,
                reporter=reporter,
                on_progress=on_progress,
                sleep=sleep,
                timeout_s=options.timeout_s,
            )
    except BaseException:  # a failure, a failed job or Ctrl-C: stop the job, delete what was created
        if options.keep_on_failure:
            say("keeping the job and model for inspection (--keep-on-failure)")
        else:
            if job_name is not None:
                stop_job(sm, job_name, say=say)
            if ledger.created:
                rollback(sm, ledger, say=lambda text: say(text.replace("rollback:", "clean-up:")))
        raise
    return TransformResult(
        job_name=job_name,
        model_name=model_name,
        model_created=created,
        inputs=inputs,
        progress=progress,
        manifest_uri=manifest_uri,
    )


def job_status(clients: Any, job_name: str) -> tuple[dict[str, Any], TransformProgress]:
    """``(describe_transform_job, progress)`` of a job this or another run started."""
    sm, s3 = clients.client("sagemaker"), clients.client("s3")
    try:
        job = sm.describe_transform_job(TransformJobName=job_name)
    except Exception as err:  # noqa: BLE001
        raise deploy_error(f"Looking up the transform job {job_name}", err) from None
    output = job["TransformOutput"]["S3OutputPath"]
    bucket, prefix = split_s3_prefix(job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
    total = summarize_inputs(s3, bucket, prefix).count
    resources = job.get("TransformResources", {})
    return job, progress_of(
        job,
        done=count_records(s3, output),
        total=total,
        instance_type=resources.get("InstanceType", ""),
        instance_count=int(resources.get("InstanceCount", 1)),
    )


__all__ = [
    "TransformOptions",
    "TransformProgress",
    "TransformResult",
    "InputSummary",
    "run_transform",
    "job_status",
    "transform_request",
    "progress_of",
    "failure_error",
    "job_name_for",
    "check_locations",
]
