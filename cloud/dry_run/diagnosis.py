"""Plain-words diagnoses from the DLC serving stack's logs, and the timeouts really in force.

TorchServe writes ``logs/ts_log.log`` (front end, worker life cycle) and ``logs/model_log.log``
(the Python worker: our prints and tracebacks); the toolkit's own output (the requirements
install) goes to the launcher's stdout. Each finding is a :class:`Diagnosis` whose message says
what happened, what it would do on SageMaker, and what to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

TS_DEFAULT_STARTUP = 120  # TorchServe's startupTimeout when TS_DEFAULT_STARTUP_TIMEOUT is unset
TS_DEFAULT_RESPONSE = 120  # TorchServe's default_response_timeout (the toolkit's 60 never lands)
TOOLKIT_TS_RESPONSE = 60  # ts_environment default once any SAGEMAKER_TS_* is set
SAGEMAKER_INVOKE_LIMIT = 60  # real-time InvokeEndpoint limit, outside the container
MAX_PAYLOAD = 6 * 1024 * 1024


@dataclass(frozen=True)
class Diagnosis:
    code: str  # REQUIREMENTS_FAILED, IMPORT_ERROR, SLOW_MODEL_LOAD, WORKER_DIED, ...
    message: str
    fatal: bool = True


@dataclass(frozen=True)
class Timeouts:
    """The timeouts that govern the container, in seconds, and where each comes from."""

    startup: int  # model_fn must finish within this (TorchServe startupTimeout)
    startup_source: str
    response: int  # one request inside TorchServe
    response_source: str
    health_check: int  # ContainerStartupHealthCheckTimeoutInSeconds of the endpoint
    invoke_limit: int = SAGEMAKER_INVOKE_LIMIT
    notes: tuple[str, ...] = ()


def effective_timeouts(env: Mapping[str, str], *, health_check: int) -> Timeouts:
    """What toolkit 2.0.25 + TorchServe 0.12.0 actually apply for this environment."""
    notes = []
    if env.get("TS_DEFAULT_STARTUP_TIMEOUT"):
        startup, startup_src = int(env["TS_DEFAULT_STARTUP_TIMEOUT"]), "TS_DEFAULT_STARTUP_TIMEOUT"
    else:
        startup, startup_src = TS_DEFAULT_STARTUP, "TorchServe default"
    if any(k.startswith("SAGEMAKER_TS_") for k in env):
        response = int(env.get("SAGEMAKER_TS_RESPONSE_TIMEOUT", TOOLKIT_TS_RESPONSE))
        response_src = ("SAGEMAKER_TS_RESPONSE_TIMEOUT" if "SAGEMAKER_TS_RESPONSE_TIMEOUT" in env
                        else "toolkit default once a SAGEMAKER_TS_* variable is set")
        notes.append("a SAGEMAKER_TS_* variable is set: the toolkit also drops to one worker")
    elif env.get("TS_DEFAULT_RESPONSE_TIMEOUT"):
        response, response_src = int(env["TS_DEFAULT_RESPONSE_TIMEOUT"]), "TS_DEFAULT_RESPONSE_TIMEOUT"
    else:
        response, response_src = TS_DEFAULT_RESPONSE, "TorchServe default"
    if "SAGEMAKER_MODEL_SERVER_TIMEOUT" in env:
        notes.append("SAGEMAKER_MODEL_SERVER_TIMEOUT is silently ignored by toolkit 2.0.25 (its config "
                     "template lacks a final newline); use SAGEMAKER_TS_RESPONSE_TIMEOUT or "
                     "TS_DEFAULT_RESPONSE_TIMEOUT")
    return Timeouts(startup=startup, startup_source=startup_src, response=response,
                    response_source=response_src, health_check=health_check, notes=tuple(notes))


def read_logs(base: Path) -> dict[str, str]:
    """The launcher's output and TorchServe's logs under ``base`` (missing ones are empty)."""
    out = {}
    for key, path in (("launcher", base / "launcher.log"), ("ts_log", base / "logs" / "ts_log.log"),
                      ("model_log", base / "logs" / "model_log.log")):
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
        found.append(Diagnosis("REQUIREMENTS_FAILED",
            "code/requirements.txt failed to install, so the container stops before it answers /ping "
            f"(SageMaker: the endpoint fails its health check). pip said: {detail or 'see the launcher log'}"))
    missing = _first(r"(ModuleNotFoundError|ImportError): .*$", model_log) or _first(
        r"(ModuleNotFoundError|ImportError): .*$", launcher)
    if missing:
        found.append(Diagnosis("IMPORT_ERROR",
            f"the handler cannot be imported in the container: {missing}. Every worker dies at "
            "start-up while /ping still answers 200, so on SageMaker the endpoint reaches InService "
            "and every request fails or times out. Bundle the missing package's wheel (or fix the import)."))
    if "did not respond in given time" in ts_log:
        found.append(Diagnosis("SLOW_MODEL_LOAD",
            f"loading the model (model_fn) took longer than the start-up timeout of {timeouts.startup} s "
            f"({timeouts.startup_source}): TorchServe kills the worker ('did not respond in given time', "
            "'Worker died') and retries forever, while /ping keeps answering 200. Raise "
            "TS_DEFAULT_STARTUP_TIMEOUT (and ContainerStartupHealthCheckTimeoutInSeconds) above the "
            "measured load time, or make model_fn faster."))
    if "multiple ts model servers are not supported" in everything:
        found.append(Diagnosis("OTHER_TORCHSERVE",
            "another TorchServe is running on this machine; the toolkit attaches to any TorchServe "
            "process it finds. Stop it and run the dry run again."))
    if "Address already in use" in everything:
        found.append(Diagnosis("PORT_IN_USE", "a port the server needs is already in use; run again."))
    if not found and ("Worker died" in ts_log or "Backend worker process died" in model_log):
        tb = [ln for ln in model_log.splitlines() if re.search(r"Error|Exception", ln)]
        found.append(Diagnosis("WORKER_DIED",
            "the Python worker died while loading the model: "
            f"{tb[-1].strip() if tb else 'see model_log.log'}"))
    if re.search(r"java(\.exe)?: not found|No such file or directory: 'java'", everything):
        found.append(Diagnosis("NO_JAVA", "TorchServe needs Java 17 on PATH."))
    return found
