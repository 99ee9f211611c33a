"""The deploy wizard's steps as plain functions over the headless flow (``cloud.deploy.flow``).

Each step is ``fn(..., cancel=CancelToken, ...)`` run off the GUI thread (the wizard's tracker
runs them in a :class:`desktop_app.gui.dialogs.background.BackgroundTask`). Progress goes out
through plain callbacks; Cancel is cooperative:

* packaging: the build's ``log`` callback raises :class:`Cancelled` (the build removes its staging);
* upload: the byte counter raises (the transfer stops; a finished upload is content-addressed and
  never repeated, so running the step again after an interruption only sends what is missing for
  a ``.tar.gz``'s parts… in practice: the whole package again unless it completed);
* create/wait/smoke: ``deploy_up``'s ``sleep`` (every poll of the status and of the smoke test) and
  its log-line callback raise; ``deploy_up`` then ROLLS BACK what this run created (its own
  failure path: ``except BaseException: rollback(ledger)``) and re-raises, so Cancel deletes
  exactly the model, endpoint config and endpoint this run made, and leaves an endpoint that
  existed before on its previous config.

Errors become :class:`StepFailed` with a sentence and its fix (secrets redacted). Qt-free.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from inference.cancel import CancelToken
from inference.errors import Cancelled, InferenceError

if TYPE_CHECKING:  # pragma: no cover
    from cloud.deploy.flow import EndpointSummary
    from cloud.dry_run.dlc import DryRunResult
    from cloud.dry_run.ray import RayDryRunResult

Log = Callable[[str], None]
T = TypeVar("T")

TARGET_TITLES = {
    "ray": "Ray Serve (AWS's maintained Ray Serve SageMaker image, Python 3.13)",
    "dlc": "PyTorch 2.6 inference DLC (TorchServe; patch support ended 2026-06-30)",
    "byoc": "Your own container image (BYOC): give its ECR image URI",
}


class StepFailed(InferenceError):
    """A wizard step failed: ``str(err)`` is the sentence for a person, with its fix."""

    def __init__(self, message: str, *, fix: str = "", code: str = "unknown") -> None:
        super().__init__(message + (f" Fix: {fix}" if fix else ""))
        self.message, self.fix, self.code = message, fix, code


@dataclass(frozen=True, kw_only=True)
class DeployChoices:
    """What the wizard's first pages chose."""

    name: str = "langsam-studio"
    target: str = "ray"  # "ray" | "dlc" | "byoc"
    backend: str = "langsam"  # as `deploy package`; classic needs no weights
    instance_type: str = "ml.g5.xlarge"
    instance_count: int = 1
    image_uri: str | None = None  # BYOC (or an override)
    smoke: bool = True
    poll_s: float = 15.0
    extra_environment: Mapping[str, str] = field(default_factory=dict)


def available_targets() -> tuple[str, ...]:
    """The container targets the installed flow supports (``UpOptions.container`` appeared with Ray)."""
    from cloud.deploy.flow import UpOptions

    names = {f.name for f in dataclasses.fields(UpOptions)}
    try:
        import cloud.packaging.ray  # noqa: F401
    except ImportError:
        ray = False
    else:
        ray = "container" in names
    return ("ray", "dlc", "byoc") if ray else ("dlc", "byoc")


# -- credentials ----------------------------------------------------------------------------
def app_values(stored: Mapping[str, Any], store: Any | None) -> dict[str, Any]:
    """Every setting in force, secrets from ``store`` (never log the result)."""
    from desktop_app.core.secrets import settings_in_force

    return settings_in_force(stored, store)


def aws_settings(values: Mapping[str, Any]) -> Any:
    """AwsSettings for the flow (control-plane retries as the CLI's, not the 1 of a quick check)."""
    from desktop_app.core.connection_checks import aws_settings as from_values

    return dataclasses.replace(from_values(values), retry_attempts=3)


def clients_for(values: Mapping[str, Any]) -> Any:
    from cloud.aws.env import AwsClients

    return AwsClients(aws_settings(values))


def describe(values: Mapping[str, Any]) -> str:
    """One secret-free line: which credentials, which region, role and bucket."""
    from cloud.aws.env import describe_credentials, redact

    settings = aws_settings(values)
    try:
        who = describe_credentials(settings)
    except Exception as exc:  # noqa: BLE001 - a profile that does not exist
        who = f"credentials cannot be read ({type(exc).__name__})"
    return redact(
        f"{who}; region {settings.region or '(not set)'}; role {settings.role_arn or '(not set)'}; "
        f"bucket {settings.bucket or '(not set)'}",
        settings,
    )


def check_credentials(values: Mapping[str, Any], *, cancel: CancelToken | None = None) -> list[Any]:
    """``connection_checks.check_aws`` rows: (check, ok, sentence)."""
    from desktop_app.core.connection_checks import check_aws

    return check_aws(values)


# -- options for the flow ---------------------------------------------------------------------
def up_options(choices: DeployChoices, package: Path | None) -> Any:
    from cloud.deploy.flow import UpOptions

    kwargs: dict[str, Any] = dict(
        name=choices.name,
        archive=package,
        image_uri=choices.image_uri or None,
        instance_type=choices.instance_type,
        instance_count=choices.instance_count,
        smoke=choices.smoke,
        poll_s=choices.poll_s,
        extra_environment=dict(choices.extra_environment),
    )
    if "container" in {f.name for f in dataclasses.fields(UpOptions)}:
        kwargs["container"] = choices.target
    return UpOptions(**kwargs)


def _guard(cancel: CancelToken | None, fn: Callable[[], T], what: str) -> T:
    """Run ``fn``; Cancelled stays Cancelled (also when a library wrapped it), errors become StepFailed."""
    from cloud.aws.env import redact

    try:
        return fn()
    except Cancelled:
        raise
    except StepFailed:
        raise
    except Exception as exc:  # noqa: BLE001
        if cancel is not None and cancel.cancelled:
            raise Cancelled(cancel.reason or "cancelled") from None
        message, fix = getattr(exc, "message", None), getattr(exc, "fix", "")
        if message is None:
            from cloud.diagnosis import diagnose_exception

            d = diagnose_exception(exc)
            message, fix = f"{what} failed: {d.message} ({type(exc).__name__}: {exc})", d.fix
        raise StepFailed(
            redact(str(message)), fix=redact(str(fix or "")), code=str(getattr(exc, "code", "unknown"))
        ) from None


def _checking(log: Log, cancel: CancelToken | None) -> Log:
    def out(text: str) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        log(text)

    return out


# -- package ------------------------------------------------------------------------------------
def build(
    choices: DeployChoices, output: Path, *, log: Log, cancel: CancelToken | None = None, cache_dir: Path | None = None
) -> Any:
    """Build the package (a directory, uploaded as an S3 prefix) for the chosen target."""
    from cloud.packaging.build import build_package
    from cloud.pricing import instance_type

    checked = _checking(log, cancel)

    def run() -> Any:
        if choices.target == "ray":
            from cloud.packaging.ray import RayServeOptions, build_ray_package

            kind = instance_type(choices.instance_type)
            gpus = 0.0 if choices.backend == "classic" or (kind is not None and not kind.is_gpu) else 1.0
            return build_ray_package(
                output=output,
                backend=choices.backend,
                options=RayServeOptions(num_gpus=gpus),
                cache_dir=cache_dir,
                overwrite=True,
                log=checked,
            )
        return build_package(output=output, backend=choices.backend, cache_dir=cache_dir, overwrite=True, log=checked)

    return _guard(cancel, run, "Building the package")


# -- dry run ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    ok: bool
    text: str


def dry_run(
    choices: DeployChoices,
    package: Path | None,
    *,
    log: Log,
    cancel: CancelToken | None = None,
    venv_dir: Path | None = None,
) -> Verdict:
    """Serve the package locally in the target's real serving stack and send one request.

    A package that is missing or is no package is refused at once, with the reason as the verdict.
    """
    from cloud.packaging.verify import layout_problem

    if package is None:
        return Verdict(False, "There is no package to try yet: build it on the Package page first.")
    problem = layout_problem(package)
    if problem:
        return Verdict(False, f"The dry run cannot start: the package {problem}.")
    if choices.target == "byoc":
        return Verdict(
            False,
            "A dry run needs a known serving stack (Ray or the DLC); your own image is not "
            "run locally. Skip this step.",
        )
    checked = _checking(log, cancel)

    def run() -> Verdict:
        from cloud.endpoint.client import smoke_request_body

        body, content_type = smoke_request_body()
        if choices.target == "ray":
            from cloud.dry_run.ray import run_ray_dry_run
            from cloud.dry_run.ray_venv import ensure_ray_venv

            ray_venv = ensure_ray_venv(parent=venv_dir, log=checked)
            result: RayDryRunResult | DryRunResult = run_ray_dry_run(
                package=package, venv=ray_venv, request_body=body, content_type=content_type, log=checked
            )
        else:
            from cloud.dry_run.dlc import run_dry_run
            from cloud.dry_run.venv import ensure_dlc_venv

            dlc_venv = ensure_dlc_venv(parent=venv_dir, log=checked)
            result = run_dry_run(
                package=package, venv=dlc_venv, request_body=body, content_type=content_type, log=checked
            )
        words = "The package works locally." if result.ok else "The package failed locally."
        return Verdict(bool(result.ok), f"{words} {result.summary()}")

    return _guard(cancel, run, "The dry run")


# -- preflight ----------------------------------------------------------------------------------
def preflight(
    values: Mapping[str, Any],
    choices: DeployChoices,
    package: Path | None,
    *,
    on_check: Callable[[Any], None],
    cancel: CancelToken | None = None,
    clients: Any | None = None,
) -> Any:
    from cloud.deploy.flow import Reporter, preflight_only

    def check(result: Any) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        on_check(result)

    def run() -> Any:
        aws = clients or clients_for(values)
        options = up_options(choices, package)
        if choices.target == "ray":  # deploy_up does this before its own preflight: the Ray image, its env
            from cloud.deploy.flow import ray_options

            options = ray_options(aws, options)
        return preflight_only(aws, options, reporter=Reporter(check=check))

    return _guard(cancel, run, "The preflight checks")


# -- upload -------------------------------------------------------------------------------------
def upload(
    values: Mapping[str, Any],
    choices: DeployChoices,
    package: Path,
    *,
    progress: Callable[[int, int], None],
    cancel: CancelToken | None = None,
    clients: Any | None = None,
) -> Any:
    """Upload the package where ``deploy_up`` will look for it (content-addressed: a finished
    upload is never repeated, so the create step skips it)."""
    from cloud.deploy.upload import upload_model, upload_model_dir

    def sink(done: int, total: int) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(done, total)

    def run() -> Any:
        aws = clients or clients_for(values)
        bucket = aws.settings.bucket
        if not bucket:
            raise StepFailed(
                "No S3 bucket is set for the model data.", fix="Enter one in Settings → AWS.", code="bucket-missing"
            )
        options = up_options(choices, package)
        send = upload_model_dir if Path(package).is_dir() else upload_model
        return send(
            aws.client("s3"),
            Path(package),
            bucket=bucket,
            deployment=choices.name,
            prefix=options.key_prefix,
            progress=sink,
        )

    return _guard(cancel, run, "The upload")


# -- create, wait, smoke test -------------------------------------------------------------------
def cancellable_sleep(cancel: CancelToken | None) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if cancel is None:
            time.sleep(seconds)
            return
        cancel.raise_if_cancelled()
        cancel._event.wait(seconds)  # wakes at once on Cancel
        cancel.raise_if_cancelled()

    return sleep


def create(
    values: Mapping[str, Any],
    choices: DeployChoices,
    package: Path | None,
    *,
    say: Log,
    log_line: Callable[[Any], None],
    cancel: CancelToken | None = None,
    ledger: Any | None = None,
    sleep: Callable[[float], None] | None = None,
    clients: Any | None = None,
) -> Any:
    """``deploy_up``: model, endpoint config, endpoint, wait for InService (with the CloudWatch log
    tail), smoke test. On Cancel or failure the flow rolls back what this run created. The app's
    ledger records the endpoint while it exists."""
    from cloud.deploy.flow import Reporter, deploy_up, endpoint_status
    from desktop_app.core.cloud_ledger import EndpointRecord

    clients = clients or clients_for(values)
    region = clients.region or ""

    def on_log(line: Any) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        log_line(line)

    def run() -> Any:
        if ledger is not None:
            before = ledger.get(choices.name, region)
            ledger.record(
                EndpointRecord(
                    name=choices.name,
                    region=region,
                    instance_type=choices.instance_type,
                    instance_count=choices.instance_count,
                    created_at=before.created_at if before else time.time(),
                    target=choices.target,
                    backend=choices.backend,
                    status="Creating",
                    checked_at=time.time(),
                )
            )
        try:
            result = deploy_up(
                clients,
                up_options(choices, package),
                reporter=Reporter(say=say, log=on_log),
                sleep=sleep or cancellable_sleep(cancel),
            )
        except BaseException:
            if ledger is not None:
                try:
                    now = endpoint_status(clients.client("sagemaker"), choices.name)
                except Exception:  # noqa: BLE001 - keep the record: the endpoints window rechecks
                    now = None
                    ledger.update(choices.name, region, status="Unknown")
                else:
                    if now is None:
                        ledger.forget(choices.name, region)
                    else:
                        ledger.update(choices.name, region, status=now.status, checked_at=time.time())
            raise
        if ledger is not None:
            ledger.update(choices.name, region, status=result.state.status, checked_at=time.time())
        return result

    return _guard(cancel, run, "Creating the endpoint")


# -- endpoints window ---------------------------------------------------------------------------
def refresh_records(values: Mapping[str, Any], ledger: Any, *, cancel: CancelToken | None = None) -> list[Any]:
    """Ask AWS for the live status of every recorded endpoint; update the ledger; return records
    with their live summaries ``[(record, summary | None)]``. An endpoint gone from AWS stays
    listed as "Deleted" once, then is forgotten."""
    from cloud.aws.env import AwsClients
    from cloud.deploy.flow import endpoint_status

    base = aws_settings(values)
    out: list[tuple[Any, EndpointSummary | str | None]] = []
    for record in ledger.records():
        if cancel is not None:
            cancel.raise_if_cancelled()
        try:
            clients = AwsClients(dataclasses.replace(base, region=record.region or base.region))
            summary = endpoint_status(clients.client("sagemaker"), record.name)
        except Exception as exc:  # noqa: BLE001 - shown in the row; the record is kept
            out.append((record, f"could not be checked: {type(exc).__name__}"))
            continue
        if summary is None:
            ledger.forget(record.name, record.region)
            out.append((dataclasses.replace(record, status="Deleted"), None))
            continue
        updated = (
            ledger.update(
                record.name,
                record.region,
                status=summary.status,
                checked_at=time.time(),
                instance_type=summary.instance_type or record.instance_type,
                instance_count=summary.instance_count or record.instance_count,
            )
            or record
        )
        out.append((updated, summary))
    return out


def delete(
    values: Mapping[str, Any],
    name: str,
    region: str,
    ledger: Any,
    *,
    say: Log,
    delete_model_data: bool = False,
    cancel: CancelToken | None = None,
) -> Any:
    """``deploy_down`` for one recorded endpoint, then forget it."""
    from cloud.aws.env import AwsClients
    from cloud.deploy.flow import Reporter, deploy_down

    def run() -> Any:
        clients = AwsClients(dataclasses.replace(aws_settings(values), region=region or None))
        result = deploy_down(clients, name, delete_model_data=delete_model_data, reporter=Reporter(say=say))
        ledger.forget(name, region)
        return result

    return _guard(cancel, run, f"Deleting {name}")


__all__ = [
    "DeployChoices",
    "StepFailed",
    "Verdict",
    "available_targets",
    "build",
    "create",
    "delete",
    "dry_run",
    "preflight",
    "refresh_records",
    "upload",
]
