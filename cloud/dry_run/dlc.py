"""Dry-run a model package in the DLC's real serving stack, locally, without Docker.

``run_dry_run(package=..., venv=ensure_dlc_venv())`` extracts the package to a temporary
``<base>/model``, starts the toolkit's ``serving.main()`` (TorchServe 0.12.0 +
sagemaker-pytorch-inference 2.0.25, in its own environment) on free loopback ports, waits until
``/ping`` answers AND every worker of the model is READY on the management API, invokes
``/invocations`` through the real boto3 ``sagemaker-runtime`` client, then stops the server.
It reports the start-up time against the timeouts in force and diagnoses, in plain words, what
would make the SageMaker endpoint fail: requirements that do not install, a handler that does not
import, a model load slower than the start-up timeout, a response over 6 MiB.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud.diagnosis import Diagnosis
from cloud.dry_run.diagnosis import diagnose_logs, excerpt, read_logs
from cloud.dry_run.errors import LocalDlcError
from cloud.dry_run.venv import DlcVenv, find_java, layer_venv
from cloud.timeouts import Timeouts, effective_timeouts
from inference.protocol import MAX_PAYLOAD_BYTES

# sets the toolkit's hard-coded /etc/sagemaker-ts.properties to a temp path, then serves
LAUNCHER = """\
import sys
from sagemaker_pytorch_serving_container import serving, torchserve
torchserve.TS_CONFIG_FILE = sys.argv[1]
serving.main()
"""
Log = Callable[[str], None]


@dataclass(frozen=True)
class DryRunResult:
    ok: bool
    startup_seconds: float | None  # process start -> all workers READY
    ping_seconds: float | None  # process start -> first /ping 200 (long before the model is loaded)
    invoke_latency: float | None
    status_code: int | None
    response_bytes: int | None
    timeouts: Timeouts
    diagnosis: tuple[Diagnosis, ...]
    log_excerpts: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        t = self.timeouts
        lines = [f"local DLC dry run: {'OK' if self.ok else 'FAILED'}"]
        if self.startup_seconds is not None:
            lines.append(
                f"  start-up (process start -> all workers READY): {self.startup_seconds:.1f} s "
                f"(start-up timeout {t.startup} s from {t.startup_source}; endpoint health "
                f"check {t.health_check} s)"
            )
        if self.ping_seconds is not None:
            lines.append(f"  /ping answered 200 after {self.ping_seconds:.1f} s (before the model was loaded)")
        if self.invoke_latency is not None:
            lines.append(
                f"  invocation: HTTP {self.status_code}, {self.response_bytes} bytes in "
                f"{self.invoke_latency * 1000:.0f} ms (response timeout {t.response} s from "
                f"{t.response_source}; SageMaker limit {t.invoke_limit} s)"
            )
        lines += [f"  note: {n}" for n in t.notes]
        lines += [f"  {'PROBLEM' if d.fatal else 'warning'} [{d.code}]: {d.message}" for d in self.diagnosis]
        return "\n".join(lines)

    def suggested_timeouts(self, *, slowdown: float = 3.0) -> dict[str, int]:
        """Timeouts for the endpoint sized from the measured start-up (``slowdown`` x + 60 s margin,
        to allow for model data download and a colder disk), within SageMaker's 60-3600 s."""
        measured = self.startup_seconds or float(self.timeouts.startup)
        startup = int(min(3600, max(self.timeouts.startup, math.ceil(measured * slowdown + 60))))
        return {
            "TS_DEFAULT_STARTUP_TIMEOUT": startup,
            "ContainerStartupHealthCheckTimeoutInSeconds": int(min(3600, max(600, startup + 60))),
            "TS_DEFAULT_RESPONSE_TIMEOUT": self.timeouts.response,
        }


def free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def extract_package(package: Path, model_dir: Path) -> None:
    """Unpack ``model.tar.gz`` (or copy a package directory) to ``model_dir``, as SageMaker does."""
    if package.is_dir():
        shutil.copytree(package, model_dir, symlinks=False)
        return
    model_dir.mkdir(parents=True)
    try:
        with tarfile.open(package, "r:*") as tar:
            tar.extractall(model_dir, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise LocalDlcError(f"{package} cannot be extracted as SageMaker would: {exc}") from exc


def _get(url: str, *, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def _workers_ready(mgmt: str) -> tuple[bool, int]:
    status, body = _get(f"{mgmt}/models/model")
    if status != 200:
        return False, 0
    try:
        workers = [w for m in json.loads(body) for w in m.get("workers", [])]
    except (ValueError, AttributeError, TypeError):
        return False, 0
    return bool(workers) and all(w.get("status") == "READY" for w in workers), len(workers)


def local_runtime_client(url: str, *, read_timeout: float) -> Any:
    """boto3's real ``sagemaker-runtime`` client pointed at a local serving stack (dummy
    credentials, one attempt)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(read_timeout=read_timeout, connect_timeout=5, retries={"total_max_attempts": 1}),
    )


def invoke(
    url: str,
    *,
    body: bytes,
    content_type: str,
    accept: str = "application/json",
    read_timeout: float = 70.0,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes, float]:
    """POST through boto3's sagemaker-runtime client (dummy credentials) at ``url``.

    SageMaker's front end maps ``/endpoints/<name>/invocations`` to the container's
    ``/invocations``; a ``before-send`` hook does that mapping here. Returns (status, body, s).
    """
    from botocore.exceptions import ClientError

    client = local_runtime_client(url, read_timeout=read_timeout)

    def to_container_path(request, **_):
        request.url = url.rstrip("/") + "/invocations"

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", to_container_path)
    extra = {}
    if headers and headers.get("X-Amzn-SageMaker-Custom-Attributes"):
        extra["CustomAttributes"] = headers["X-Amzn-SageMaker-Custom-Attributes"]
    started = time.monotonic()
    try:
        resp = client.invoke_endpoint(
            EndpointName="local-dry-run", Body=body, ContentType=content_type, Accept=accept, **extra
        )
        data = resp["Body"].read()
        return resp["ResponseMetadata"]["HTTPStatusCode"], data, time.monotonic() - started
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = exc.response.get("Error", {}).get("Message", str(exc))
        return status, message.encode(), time.monotonic() - started


def run_dry_run(
    *,
    package: str | os.PathLike,
    venv: DlcVenv,
    request_body: bytes,
    content_type: str,
    accept: str = "application/json",
    headers: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    health_check_timeout: int = 600,
    wait_limit: float | None = None,
    workers: int = 1,
    keep_dir: bool = False,
    log: Log = print,
) -> DryRunResult:
    """Serve ``package`` with the DLC stack, invoke it once and stop; never raises for a bad package.

    ``env``: container environment (``TS_DEFAULT_STARTUP_TIMEOUT``, ``SAGEMAKER_TS_*`` ...), as
    the endpoint's model would set it. ``wait_limit`` bounds the wait for READY (default: the
    health-check timeout).
    """
    find_java()
    if len(request_body) > MAX_PAYLOAD_BYTES:
        raise LocalDlcError(f"the request is {len(request_body)} bytes, over SageMaker's 6 MiB limit")
    container_env = dict(env or {})
    timeouts = effective_timeouts(container_env, health_check=health_check_timeout)
    base = Path(tempfile.mkdtemp(prefix="langsam-dlc-"))
    proc: subprocess.Popen | None = None
    try:
        extract_package(Path(package), base / "model")
        run_venv = layer_venv(venv, base / "venv")
        (base / "tmp").mkdir()
        (base / "launch.py").write_text(LAUNCHER, encoding="utf-8")
        p_inf, p_mgmt, p_metrics, p_grpc, p_grpc_mgmt = free_ports(5)
        inference_url, mgmt_url = f"http://127.0.0.1:{p_inf}", f"http://127.0.0.1:{p_mgmt}"
        run_env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith(("TS_", "SAGEMAKER_"))
        }
        run_env.update(
            {
                "PATH": os.pathsep.join([str(run_venv.bin_dir), str(venv.bin_dir), os.environ.get("PATH", "")]),
                "VIRTUAL_ENV": str(run_venv.root),
                "SAGEMAKER_BASE_DIR": str(base),
                "TS_INFERENCE_ADDRESS": inference_url,
                "TS_MANAGEMENT_ADDRESS": mgmt_url,
                "TS_METRICS_ADDRESS": f"http://127.0.0.1:{p_metrics}",
                "TS_GRPC_INFERENCE_PORT": str(p_grpc),
                "TS_GRPC_MANAGEMENT_PORT": str(p_grpc_mgmt),
                "TEMP": str(base / "tmp"),
                "TMPDIR": str(base / "tmp"),
                "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
                "LANGSAM_DEVICE": "cpu",
                "PYTHONUNBUFFERED": "1",
            }
        )
        run_env.update(container_env)
        log(f"starting TorchServe + SageMaker toolkit on {inference_url} (logs in {base}) ...")
        with open(base / "launcher.log", "wb") as out:
            started = time.monotonic()
            proc = subprocess.Popen(
                [str(run_venv.python), str(base / "launch.py"), str(base / "ts.properties")],
                cwd=base,
                env=run_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ping_s, ready_s = _wait_ready(
            proc,
            inference_url,
            mgmt_url,
            started=started,
            limit=wait_limit or health_check_timeout,
            base=base,
            timeouts=timeouts,
        )
        status = latency = size = None
        extra: list[Diagnosis] = []
        if ready_s is not None:
            log(f"all workers READY after {ready_s:.1f} s; invoking /invocations ...")
            status, data, latency = invoke(
                inference_url,
                body=request_body,
                content_type=content_type,
                accept=accept,
                headers=headers,
                read_timeout=timeouts.response + 10,
            )
            size = len(data)
            extra += _invocation_findings(status, data, latency, timeouts)
            extra += _startup_findings(ready_s, timeouts)
        logs = read_logs(base)
        found = tuple(diagnose_logs(logs, timeouts=timeouts) + extra)
        if ready_s is None and not any(d.fatal for d in found):
            found += (
                Diagnosis(
                    code="NOT_READY",
                    message="the model's workers did not become READY within "
                    f"{wait_limit or health_check_timeout:.0f} s (SageMaker would fail the "
                    "health check or answer every request with a timeout); see model_log.log",
                ),
            )
        ok = ready_s is not None and status == 200 and not any(d.fatal for d in found)
        return DryRunResult(
            ok=ok,
            startup_seconds=ready_s,
            ping_seconds=ping_s,
            invoke_latency=latency,
            status_code=status,
            response_bytes=size,
            timeouts=timeouts,
            diagnosis=found,
            log_excerpts={k: excerpt(v) for k, v in logs.items()},
        )
    finally:
        if proc is not None:
            stop_server(proc)
        if not keep_dir:
            shutil.rmtree(base, ignore_errors=True)


_FATAL_MARKERS = (
    "failed to install required packages",
    "did not respond in given time",
    "ModuleNotFoundError",
    "multiple ts model servers are not supported",
)


def _wait_ready(
    proc: subprocess.Popen,
    inference_url: str,
    mgmt_url: str,
    *,
    started: float,
    limit: float,
    base: Path,
    timeouts: Timeouts,
) -> tuple[float | None, float | None]:
    ping_s = None
    while time.monotonic() - started < limit:
        if proc.poll() is not None:
            return ping_s, None  # the launcher exited: requirements failed, or TorchServe did not start
        if ping_s is None and _get(f"{inference_url}/ping", timeout=1.0)[0] == 200:
            ping_s = time.monotonic() - started
        if ping_s is not None:
            ready, _count = _workers_ready(mgmt_url)
            if ready:
                return ping_s, time.monotonic() - started
        logs = read_logs(base)
        if any(m in logs["ts_log"] or m in logs["model_log"] or m in logs["launcher"] for m in _FATAL_MARKERS):
            time.sleep(1.0)  # let the last lines of the failure reach the logs
            return ping_s, None
        time.sleep(0.25)
    return ping_s, None


def _startup_findings(ready_s: float, timeouts: Timeouts) -> list[Diagnosis]:
    found = []
    if ready_s > timeouts.health_check:
        found.append(
            Diagnosis(
                code="STARTUP_OVER_HEALTH_CHECK",
                message=f"start-up took {ready_s:.0f} s, longer than ContainerStartupHealthCheckTimeoutInSeconds "
                f"({timeouts.health_check} s)",
            )
        )
    elif ready_s > 0.7 * timeouts.startup:
        found.append(
            Diagnosis(
                code="STARTUP_NEAR_TIMEOUT",
                message=f"start-up took {ready_s:.0f} s, over 70% of the start-up timeout ({timeouts.startup} s): a "
                "slower disk or GPU initialisation on SageMaker may push it over. Raise TS_DEFAULT_STARTUP_TIMEOUT.",
                fatal=False,
            )
        )
    return found


def _invocation_findings(status: int, data: bytes, latency: float, timeouts: Timeouts) -> list[Diagnosis]:
    found = []
    if len(data) > MAX_PAYLOAD_BYTES:
        found.append(
            Diagnosis(
                code="RESPONSE_TOO_LARGE",
                message=f"the response is {len(data) / 2**20:.1f} MiB, over SageMaker's 6 MiB real-time limit: the "
                "endpoint would fail this request. Return masks as RLE (not JSON lists) or use asynchronous "
                "inference.",
            )
        )
    if status != 200:
        found.append(
            Diagnosis(
                code="INVOKE_FAILED",
                message=f"the invocation answered HTTP {status}: {data[:400].decode('utf-8', 'replace')}",
            )
        )
    if latency > timeouts.invoke_limit:
        found.append(
            Diagnosis(
                code="INVOKE_TOO_SLOW",
                message=f"the invocation took {latency:.0f} s, over SageMaker's {timeouts.invoke_limit} s real-time "
                "limit (on this CPU; a GPU instance is faster)",
                fatal=False,
            )
        )
    return found


def stop_server(proc: subprocess.Popen, *, grace: float = 20.0) -> None:
    """SIGTERM the launcher (it forwards to TorchServe), then kill its whole process group."""
    pgid = proc.pid  # start_new_session=True: the launcher leads its own process group
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
