"""Plain-words diagnoses of a local dry run, from the DLC serving stack's logs.

TorchServe writes ``logs/ts_log.log`` (front end, worker life cycle) and ``logs/model_log.log``
(the Python worker: our prints and tracebacks); the toolkit's own output (the requirements
install) goes to the launcher's stdout. Each finding is a :class:`cloud.diagnosis.Diagnosis` (the
one diagnosis type of the deploy and the dry run) whose message says what happened, what it would
do on SageMaker, and what to change. The timeouts in force are :func:`cloud.timeouts.effective_timeouts`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from cloud.diagnosis import Diagnosis
from cloud.timeouts import Timeouts


def read_logs(base: Path) -> dict[str, str]:
    """The launcher's output and TorchServe's logs under ``base`` (missing ones are empty)."""
    out = {}
    for key, path in (
        ("launcher", base / "launcher.log"),
        ("ts_log", base / "logs" / "ts_log.log"),
        ("model_log", base / "logs" / "model_log.log"),
    ):
        try:
            out[key] = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            out[key] = ""
    return out


def excerpt(text: str, *, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _first(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text, flags=re.MULTILINE)
    return m.group(0).strip() if m else None


def diagnose_logs(logs: Mapping[str, str], *, timeouts: Timeouts) -> list[Diagnosis]:
    """Findings in the logs, the most specific first."""
    launcher, ts_log, model_log = logs.get("launcher", ""), logs.get("ts_log", ""), logs.get("model_log", "")
    everything = "\n".join((launcher, ts_log, model_log))
    found: list[Diagnosis] = []
    if "failed to install required packages" in everything:
        errors = [ln.strip() for ln in launcher.splitlines() if "ERROR" in ln or "error:" in ln.lower()]
        detail = "; ".join(e for e in errors if "failed to install required" not in e)[-600:]
        found.append(
            Diagnosis(
                code="REQUIREMENTS_FAILED",
                message="code/requirements.txt failed to install, so the container stops before it answers /ping "
                f"(SageMaker: the endpoint fails its health check). pip said: {detail or 'see the launcher log'}",
            )
        )
    missing = _first(r"(ModuleNotFoundError|ImportError): .*$", model_log) or _first(
        r"(ModuleNotFoundError|ImportError): .*$", launcher
    )
    if missing:
        found.append(
            Diagnosis(
                code="IMPORT_ERROR",
                message=f"the handler cannot be imported in the container: {missing}. Every worker dies at "
                "start-up while /ping still answers 200, so on SageMaker the endpoint reaches InService "
                "and every request fails or times out. Bundle the missing package's wheel (or fix the import).",
            )
        )
    if "did not respond in given time" in ts_log:
        found.append(
            Diagnosis(
                code="SLOW_MODEL_LOAD",
                message=f"loading the model (model_fn) took longer than the start-up timeout of {timeouts.startup} s "
                f"({timeouts.startup_source}): TorchServe kills the worker ('did not respond in given time', "
                "'Worker died') and retries forever, while /ping keeps answering 200. Raise "
                "TS_DEFAULT_STARTUP_TIMEOUT (and ContainerStartupHealthCheckTimeoutInSeconds) above the "
                "measured load time, or make model_fn faster.",
            )
        )
    if "multiple ts model servers are not supported" in everything:
        found.append(
            Diagnosis(
                code="OTHER_TORCHSERVE",
                message="another TorchServe is running on this machine; the toolkit attaches to any TorchServe "
                "process it finds. Stop it and run the dry run again.",
            )
        )
    if "Address already in use" in everything:
        found.append(Diagnosis(code="PORT_IN_USE", message="a port the server needs is already in use; run again."))
    if not found and ("Worker died" in ts_log or "Backend worker process died" in model_log):
        tb = [ln for ln in model_log.splitlines() if re.search(r"Error|Exception", ln)]
        found.append(
            Diagnosis(
                code="WORKER_DIED",
                message="the Python worker died while loading the model: "
                f"{tb[-1].strip() if tb else 'see model_log.log'}",
            )
        )
    if re.search(r"java(\.exe)?: not found|No such file or directory: 'java'", everything):
        found.append(Diagnosis(code="NO_JAVA", message="TorchServe needs Java 17 on PATH."))
    return found
