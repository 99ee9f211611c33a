"""Wait for an endpoint with live status and the CloudWatch log tail, then prove the model answers.

InService is not enough: on the DLC path TorchServe answers /ping before ``model_fn`` has run,
so the smoke test keeps sending one small real request until the model itself answers (or the
budget — the start-up timeout — runs out), reading the log tail between attempts so a worker
that can never start (ModuleNotFoundError, failed requirements) stops the wait early.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cloud.aws.errors import DeployError, EndpointInvocationError
from cloud.aws.logs import LogLine, LogTail, TailState
from cloud.diagnosis import Diagnosis, diagnose_exception, diagnose_failure_reason, mode, scan_log_lines

Say = Callable[[str], None]
OnLog = Callable[[LogLine], None]
# Failures in the log that no amount of waiting fixes.
FATAL_LOG_CODES = {"module-not-found", "requirements-failed", "bad-archive", "torch-pinned"}
RETRYABLE_INVOKE = {
    "model-error",
    "invocation-timeout",
    "worker-timeout",
    "client-read-timeout",
    "throttled",
    "unknown",
    "cuda-unavailable",
    "worker-died",
}


def _quiet(_: object) -> None:
    pass


@dataclass(frozen=True, kw_only=True)
class EndpointState:
    status: str
    config_name: str | None
    seconds: float
    log_diagnoses: tuple[Diagnosis, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SmokeResult:
    attempts: int
    seconds_to_answer: float
    latency_s: float
    answer: str


def _log_hint(diagnoses: tuple[Diagnosis, ...] | list[Diagnosis]) -> str:
    if not diagnoses:
        return ""
    parts = [f"{d.title}: {d.message} Fix: {d.fix} (log: {d.detail[:200]})" for d in diagnoses]
    return " The container log shows — " + " | ".join(parts)


class _LogWatcher:
    def __init__(self, tail: LogTail | None, on_log: OnLog, say: Say) -> None:
        self.tail = tail
        self.on_log = on_log
        self.say = say
        self.diagnoses: dict[str, Diagnosis] = {}
        self.lines: list[LogLine] = []
        self._last_state: TailState | None = None

    def poll(self) -> None:
        if self.tail is None:
            return
        batch = self.tail.poll()
        if batch.state is not TailState.OK and batch.state is not self._last_state:
            self.say(f"logs: {batch.note}")
        self._last_state = batch.state
        for line in batch.lines:
            self.lines.append(line)
            self.on_log(line)
        for d in scan_log_lines(line.message for line in batch.lines):
            self.diagnoses.setdefault(d.code, d)

    @property
    def found(self) -> tuple[Diagnosis, ...]:
        return tuple(self.diagnoses.values())


def wait_for_endpoint(
    sm: Any,
    endpoint_name: str,
    *,
    expected_config: str,
    tail: LogTail | None = None,
    timeout_s: float = 3600.0,
    poll_s: float = 15.0,
    say: Say = _quiet,
    on_log: OnLog = _quiet,
    sleep: Callable[[float], None] = time.sleep,
) -> EndpointState:
    """Poll until InService on ``expected_config``; raise :class:`DeployError` explaining a failure."""
    started = time.monotonic()
    watcher = _LogWatcher(tail, on_log, say)
    last_status = None
    last_said = 0.0
    while True:
        try:
            ep = sm.describe_endpoint(EndpointName=endpoint_name)
        except Exception as err:  # noqa: BLE001
            d = diagnose_exception(err)
            if d.code == "throttled":
                sleep(poll_s)
                continue
            raise DeployError(
                f"Reading the status of {endpoint_name} failed: {d.message}", fix=d.fix, code=d.code, detail=d.detail
            ) from None
        status, config = ep.get("EndpointStatus", "?"), ep.get("EndpointConfigName")
        elapsed = time.monotonic() - started
        if status != last_status or elapsed - last_said >= 60:
            say(f"[{elapsed:5.0f} s] endpoint {endpoint_name}: {status}")
            last_status, last_said = status, elapsed
        watcher.poll()
        reason = ep.get("FailureReason") or ""
        if status == "InService":
            if config != expected_config:
                d = diagnose_failure_reason(reason or "the update did not complete")
                raise DeployError(
                    f"The update of {endpoint_name} failed and SageMaker rolled it back to {config}: "
                    f"{d.message}{_log_hint(watcher.found)}",
                    fix=d.fix,
                    code=d.code,
                    detail=reason,
                )
            return EndpointState(status=status, config_name=config, seconds=elapsed, log_diagnoses=watcher.found)
        if status in {"Failed", "OutOfService", "UpdateRollbackFailed"}:
            watcher.poll()
            d = diagnose_failure_reason(reason or status)
            raise DeployError(
                f"Endpoint {endpoint_name} is {status}: {d.message}{_log_hint(watcher.found)}",
                fix=d.fix,
                code=d.code,
                detail=reason,
            )
        if status == "Deleting":
            raise DeployError(
                f"Endpoint {endpoint_name} is being deleted by someone else.",
                fix="Run `deploy up` again once it is gone.",
                code="endpoint-busy",
            )
        if elapsed > timeout_s:
            m = mode("ping-failed")
            raise DeployError(
                f"Endpoint {endpoint_name} is still {status} after {elapsed:.0f} s.{_log_hint(watcher.found)}",
                fix=m.fix,
                code=m.code,
            )
        sleep(poll_s)


def smoke_test(
    invoke: Callable[[], Any],
    *,
    validate: Callable[[bytes], object] | None = None,  # its result is ignored; it raises on a bad answer
    budget_s: float = 600.0,
    interval_s: float = 10.0,
    tail: LogTail | None = None,
    say: Say = _quiet,
    on_log: OnLog = _quiet,
    sleep: Callable[[float], None] = time.sleep,
) -> SmokeResult:
    """Call ``invoke()`` (returns an ``InvokeResult``) until the model answers; measure latency.

    ``validate(body)`` raises if the answer is not a real model answer (e.g. a decode error).
    """
    from cloud.endpoint.client import describe_answer

    started = time.monotonic()
    watcher = _LogWatcher(tail, on_log, say)
    attempts = 0
    last: EndpointInvocationError | None = None
    while True:
        attempts += 1
        try:
            result = invoke()
        except EndpointInvocationError as err:
            last = err
            if err.code not in RETRYABLE_INVOKE:
                raise DeployError(
                    f"The smoke request failed: {err.message}", fix=err.fix, code=err.code, detail=err.detail
                ) from None
            say(
                f"[{time.monotonic() - started:5.0f} s] model not answering yet ({err.code}): "
                f"{(err.original_message or err.message)[:160]}"
            )
        else:
            if validate is not None:
                try:
                    validate(result.body)
                except Exception as exc:  # noqa: BLE001
                    m = mode("bad-archive")
                    raise DeployError(
                        f"The endpoint answered, but not with a LangSAM result: {exc}", fix=m.fix, code=m.code
                    ) from None
            return SmokeResult(
                attempts=attempts,
                seconds_to_answer=time.monotonic() - started,
                latency_s=result.latency_s,
                answer=describe_answer(result),
            )
        watcher.poll()
        fatal = [d for d in watcher.found if d.code in FATAL_LOG_CODES]
        if fatal:
            d = fatal[0]
            raise DeployError(
                f"The model cannot start: {d.message}{_log_hint(watcher.found)}",
                fix=d.fix,
                code=d.code,
                detail=d.detail,
            )
        if time.monotonic() - started > budget_s:
            m = mode("not-answering")
            worst = [d for d in watcher.found if d.code in {"worker-timeout", "worker-died", "network-blocked"}]
            fix = worst[0].fix if worst else m.fix
            raise DeployError(
                f"{m.message} Waited {time.monotonic() - started:.0f} s over {attempts} attempts; last error: "
                f"{last.message if last else 'none'}{_log_hint(watcher.found)}",
                fix=fix,
                code=m.code,
            )
        sleep(interval_s)
