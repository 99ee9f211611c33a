"""The timeouts that govern a model in the SageMaker PyTorch DLC: one type for the deploy and the dry run.

The deploy sizes them from a measured (or assumed) model load with :func:`size_timeouts` and
writes them into the endpoint; the local dry run reads back, with :func:`effective_timeouts`,
what toolkit 2.0.25 + TorchServe 0.12.0 really apply for a container environment. Both give a
:class:`Timeouts`, so what the deploy plans and what the dry run measures compare field by field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

TS_DEFAULT_STARTUP = 120  # TorchServe's startupTimeout when TS_DEFAULT_STARTUP_TIMEOUT is unset
TS_DEFAULT_RESPONSE = 120  # TorchServe's default_response_timeout (the toolkit's 60 never lands)
TOOLKIT_TS_RESPONSE = 60  # ts_environment default once any SAGEMAKER_TS_* is set
SAGEMAKER_INVOKE_LIMIT = 60  # real-time InvokeEndpoint limit, outside the container
AWS_MIN, AWS_MAX = 60, 3600  # bounds of the endpoint's health-check and download timeouts

# Assumptions when nothing was measured (seconds): Lang-SAM loads in well under this on a g5.
DEFAULT_LOAD_SECONDS = 180.0
DEFAULT_WORST_REQUEST_SECONDS = 60.0
ASSUMED_DOWNLOAD_BYTES_PER_SECOND = 25 * 1024 * 1024


def clamp(value: float, low: int, high: int) -> int:
    return int(min(max(math.ceil(value), low), high))


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """The timeouts that govern the container, in seconds, and where each comes from.

    ``TS_DEFAULT_STARTUP_TIMEOUT`` covers ``model_fn`` (TorchServe kills a worker that loads
    longer); ``SAGEMAKER_TS_RESPONSE_TIMEOUT`` is set above both the load and the worst request
    because ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` is silently ignored by toolkit 2.0.25.
    """

    startup: int  # model_fn must finish within this (TorchServe startupTimeout)
    response: int  # one request inside TorchServe
    health_check: int  # ContainerStartupHealthCheckTimeoutInSeconds of the endpoint, 60..3600
    download: int | None = None  # ModelDataDownloadTimeoutInSeconds, 60..3600 (None: not known here)
    invoke_limit: int = SAGEMAKER_INVOKE_LIMIT
    startup_source: str = ""  # where ``startup`` comes from: a variable, a default, the sizing
    response_source: str = ""
    notes: tuple[str, ...] = ()
    load_seconds: float | None = None  # the model load they were sized from (None: read from an environment)
    worst_request_seconds: float | None = None
    measured: bool = False  # ``load_seconds`` was measured (deploy test-local), not assumed

    def environment(self) -> dict[str, str]:
        """The container variables that put ``startup`` and ``response`` in force."""
        return {
            "TS_DEFAULT_STARTUP_TIMEOUT": str(self.startup),
            "SAGEMAKER_TS_RESPONSE_TIMEOUT": str(self.response),
            "TS_DEFAULT_RESPONSE_TIMEOUT": str(self.response),
        }


def size_timeouts(
    *,
    load_seconds: float | None = None,
    worst_request_seconds: float | None = None,
    archive_bytes: int = 0,
) -> Timeouts:
    """Timeouts with margin: twice the measurement plus a fixed allowance, within AWS limits."""
    load = float(load_seconds) if load_seconds else DEFAULT_LOAD_SECONDS
    worst = float(worst_request_seconds) if worst_request_seconds else DEFAULT_WORST_REQUEST_SECONDS
    download_estimate = archive_bytes / ASSUMED_DOWNLOAD_BYTES_PER_SECOND
    basis = f"{'measured' if load_seconds else 'assumed'} load of {load:.0f} s"
    return Timeouts(
        startup=clamp(2 * load + 60, 120, AWS_MAX),
        response=clamp(2 * max(load, worst) + 60, 120, AWS_MAX),
        # pip install of code/requirements.txt + model load happen before a meaningful /ping
        health_check=clamp(2 * load + 300, 600, AWS_MAX),
        download=clamp(3 * download_estimate + 120, 600, AWS_MAX),
        startup_source=f"sized from the {basis}",
        response_source=f"sized from the {basis} and a worst request of {worst:.0f} s",
        load_seconds=load,
        worst_request_seconds=worst,
        measured=bool(load_seconds),
    )


def effective_timeouts(env: Mapping[str, str], *, health_check: int) -> Timeouts:
    """What toolkit 2.0.25 + TorchServe 0.12.0 actually apply for this container environment."""
    notes = []
    if env.get("TS_DEFAULT_STARTUP_TIMEOUT"):
        startup, startup_src = int(env["TS_DEFAULT_STARTUP_TIMEOUT"]), "TS_DEFAULT_STARTUP_TIMEOUT"
    else:
        startup, startup_src = TS_DEFAULT_STARTUP, "TorchServe default"
    if any(k.startswith("SAGEMAKER_TS_") for k in env):
        response = int(env.get("SAGEMAKER_TS_RESPONSE_TIMEOUT", TOOLKIT_TS_RESPONSE))
        response_src = (
            "SAGEMAKER_TS_RESPONSE_TIMEOUT"
            if "SAGEMAKER_TS_RESPONSE_TIMEOUT" in env
            else "toolkit default once a SAGEMAKER_TS_* variable is set"
        )
        notes.append("a SAGEMAKER_TS_* variable is set: the toolkit also drops to one worker")
    elif env.get("TS_DEFAULT_RESPONSE_TIMEOUT"):
        response, response_src = int(env["TS_DEFAULT_RESPONSE_TIMEOUT"]), "TS_DEFAULT_RESPONSE_TIMEOUT"
    else:
        response, response_src = TS_DEFAULT_RESPONSE, "TorchServe default"
    if "SAGEMAKER_MODEL_SERVER_TIMEOUT" in env:
        notes.append(
            "SAGEMAKER_MODEL_SERVER_TIMEOUT is silently ignored by toolkit 2.0.25 (its config "
            "template lacks a final newline); use SAGEMAKER_TS_RESPONSE_TIMEOUT or "
            "TS_DEFAULT_RESPONSE_TIMEOUT"
        )
    return Timeouts(
        startup=startup,
        startup_source=startup_src,
        response=response,
        response_source=response_src,
        health_check=health_check,
        notes=tuple(notes),
    )
