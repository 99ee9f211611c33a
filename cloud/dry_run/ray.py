"""Dry-run a Ray Serve model package locally, the way the Ray Serve SageMaker image starts it.

``run_ray_dry_run(package=..., venv=ensure_ray_venv(), ...)``:

1. extracts the package to ``<base>/model`` (as SageMaker unpacks model.tar.gz to /opt/ml/model);
2. pip-installs ``model/code/requirements.txt`` offline into a throw-away layer over the cached
   image-like environment (a failing install exits the container there);
3. ``ray start --head --block`` on free loopback ports with a short dedicated ``--temp-dir``,
   the package's container Environment (``RAY_SERVE_SESSION_ID_HEADER_KEY`` ...) and
   PYTHONPATH ``model:model/code``; then ``serve start --http-port`` and ``serve run config.yaml``
   with ``RAY_ADDRESS`` pointing at that head (never a second cluster, never ``ray stop``, which
   would stop every Ray process on the machine);
4. puts :class:`~cloud.dry_run.ray_adapter.SageMakerAdapter` in front (``/ping`` from
   ``/-/healthz``; ``/invocations`` and ``/endpoints/{name}/invocations``) and watches
   ``serve.status()`` from a helper process (DEPLOYING / RUNNING / DEPLOY_FAILED);
5. sends the first real request through the real boto3 client as soon as ``/ping`` is 200 (what
   SageMaker's first caller does), with SageMaker's 60 s real-time limit;
6. optionally measures session affinity across replicas;
7. stops: ``serve.shutdown()`` from the helper, then SIGTERM to ``ray start --block`` (which stops
   the processes it started), then kills whatever of ours is left by process group and by pid
   (processes whose command line names our temp dir).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cloud.diagnosis import Diagnosis
from cloud.dry_run.dlc import extract_package, free_ports
from cloud.dry_run.errors import LocalDlcError
from cloud.dry_run.ray_adapter import SageMakerAdapter, boto3_invoke
from cloud.dry_run.ray_diagnosis import diagnose_ray, read_ray_logs
from cloud.dry_run.ray_venv import RayVenv
from cloud.dry_run.venv import layer_venv
from cloud.packaging.ray import package_environment
from inference.protocol import MAX_PAYLOAD_BYTES

INVOKE_LIMIT = 60  # SageMaker real-time invocation limit, seconds
Log = Callable[[str], None]

MONITOR = r"""
import json, os, sys, time
import ray
from ray import serve
address, out_path, stop_path = sys.argv[1], sys.argv[2], sys.argv[3]
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
def snapshot():
    try:
        st = serve.status()
    except Exception as exc:
        return {"error": repr(exc)}
    apps = {}
    for name, app in st.applications.items():
        apps[name] = {"status": str(app.status.value if hasattr(app.status, "value") else app.status),
                      "message": app.message[-2000:],
                      "deployments": {d: {"status": str(getattr(s.status, "value", s.status)),
                                          "replicas": {str(getattr(k, "value", k)): v
                                                       for k, v in s.replica_states.items()},
                                          "message": s.message[-2000:]} for d, s in app.deployments.items()}}
    return {"apps": apps}
with open(out_path, "a") as out:
    while not os.path.exists(stop_path):
        out.write(json.dumps({"t": time.time(), **snapshot()}) + "\n"); out.flush()
        time.sleep(0.5)
    t0 = time.time()
    try:
        serve.shutdown()
        out.write(json.dumps({"t": time.time(), "shutdown_s": time.time() - t0}) + "\n")
    except Exception as exc:
        out.write(json.dumps({"t": time.time(), "shutdown_error": repr(exc)}) + "\n")
"""


@dataclass
class RayDryRunResult:
    ok: bool
    env_build_seconds: float | None = None
    requirements_seconds: float | None = None
    healthz_seconds: float | None = None  # start -> /ping (healthz) 200
    running_seconds: float | None = None  # start -> serve.status() RUNNING
    first_answer_seconds: float | None = None  # start -> first real answer through boto3
    status_code: int | None = None
    response_bytes: int | None = None
    app_status: str | None = None
    statuses_seen: tuple[str, ...] = ()
    affinity: Mapping[str, object] | None = None
    shutdown_seconds: float | None = None
    diagnosis: tuple[Diagnosis, ...] = ()
    log_excerpts: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f} s"

        lines = [
            f"local Ray Serve dry run: {'OK' if self.ok else 'FAILED'}",
            f"  requirements install {s(self.requirements_seconds)}; start -> /ping 200 {s(self.healthz_seconds)}; "
            f"-> RUNNING {s(self.running_seconds)}; -> first real answer {s(self.first_answer_seconds)}",
            f"  application status: {self.app_status} (seen: {' -> '.join(self.statuses_seen) or '-'})",
        ]
        if self.status_code is not None:
            lines.append(f"  invocation: HTTP {self.status_code}, {self.response_bytes} bytes")
        if self.affinity:
            lines.append(f"  affinity: {json.dumps(self.affinity)}")
        lines += [f"  {'PROBLEM' if d.fatal else 'warning'} [{d.code}]: {d.message}" for d in self.diagnosis]
        return "\n".join(lines)


def _clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "RAY_ADDRESS")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RAY_SERVE_")}


def _pids_naming(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


class _Cluster:
    """The processes of one dry run, and their orderly shutdown."""

    def __init__(self, base: Path, temp: Path, env: dict[str, str], python: Path, log: Log) -> None:
        self.base, self.temp, self.env, self.python, self.log = base, temp, env, python, log
        self.procs: list[subprocess.Popen] = []
        self.head: subprocess.Popen | None = None
        self.serve_run: subprocess.Popen | None = None
        self.monitor: subprocess.Popen | None = None

    def spawn(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> subprocess.Popen:
        out = open(self.base / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [str(self.python), *args],
            cwd=self.base / "model",
            env=dict(env or self.env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.procs.append(proc)
        return proc

    def shutdown(self) -> float | None:
        started = time.monotonic()
        shutdown_s = None
        if self.monitor is not None and self.monitor.poll() is None:
            (self.base / "stop").touch()
            try:
                self.monitor.wait(timeout=30)
                shutdown_s = time.monotonic() - started
            except subprocess.TimeoutExpired:
                pass
        for proc in [p for p in self.procs if p is not self.head]:
            _terminate(proc, grace=5)
        if self.head is not None:
            _terminate(self.head, grace=20)  # `ray start --block` stops what it started on SIGTERM
        for pid in _pids_naming(str(self.temp)):  # anything of ours still alive, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return shutdown_s


def _terminate(proc: subprocess.Popen, *, grace: float) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except (subprocess.TimeoutExpired, ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _app_status(base: Path) -> tuple[str | None, str, list[str]]:
    """(latest app status, its message + deployment messages, every distinct status in order)."""
    seen: list[str] = []
    latest, message = None, ""
    try:
        lines = (base / "status.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None, "", seen
    for line in lines:
        try:
            snap = json.loads(line)
        except ValueError:
            continue
        app = (snap.get("apps") or {}).get("langsam")
        if not app:
            continue
        latest = app["status"]
        message = "\n".join([app.get("message", "")] + [d.get("message", "") for d in app["deployments"].values()])
        if not seen or seen[-1] != latest:
            seen.append(latest)
    return latest, message, seen


def run_ray_dry_run(
    *,
    package: str | os.PathLike,
    venv: RayVenv,
    request_body: bytes,
    content_type: str,
    env: Mapping[str, str] | None = None,
    wait_limit: float = 300.0,
    invoke_limit: float = INVOKE_LIMIT,
    affinity_sessions: int = 0,
    keep_dir: bool = False,
    log: Log = print,
) -> RayDryRunResult:
    """Serve ``package`` as the Ray image does, invoke it, optionally measure affinity, stop.

    Never raises for a bad package (it becomes a diagnosis); raises :class:`LocalDlcError` when
    the local machinery itself cannot run.
    """
    if len(request_body) > MAX_PAYLOAD_BYTES:
        raise LocalDlcError(f"the request is {len(request_body)} bytes, over SageMaker's 6 MiB limit")
    base = Path(tempfile.mkdtemp(prefix="langsam-ray-"))
    temp = Path(tempfile.mkdtemp(prefix="lsr", dir="/tmp"))  # short: Ray's socket paths have a length limit
    result = RayDryRunResult(ok=False)
    try:
        info = venv.info()
        result.env_build_seconds = info.get("seconds")
    except (OSError, ValueError):
        pass
    cluster: _Cluster | None = None
    adapter: SageMakerAdapter | None = None
    found: list[Diagnosis] = []
    requirements_failed = False
    try:
        model = base / "model"
        extract_package(Path(package), model)
        container_env = {**package_environment(model), **dict(env or {})}
        run_venv = layer_venv(venv, base / "venv")
        run_env = _clean_env()
        run_env.update(
            {
                "PATH": os.pathsep.join([str(run_venv.bin_dir), str(venv.bin_dir), os.environ.get("PATH", "")]),
                "VIRTUAL_ENV": str(run_venv.root),
                "PYTHONPATH": f"{model}:{model / 'code'}",
                "PYTHONUNBUFFERED": "1",
                "RAY_USAGE_STATS_ENABLED": "0",
                "LANGSAM_DEVICE": "cpu",
                **container_env,
            }
        )
        started = time.monotonic()
        req = model / "code" / "requirements.txt"
        if req.is_file():
            log("installing code/requirements.txt offline (as the container does) ...")
            with open(base / "pip.log", "wb") as out:
                rc = subprocess.run(
                    [str(run_venv.python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(req)],
                    cwd=model,
                    env=run_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                ).returncode
            result.requirements_seconds = time.monotonic() - started
            if rc != 0:
                requirements_failed = True
                raise _Stop
        ports = free_ports(12)
        gcs, http, adapter_port = ports[0], ports[1], ports[2]
        address = f"127.0.0.1:{gcs}"
        cluster = _Cluster(base, temp, run_env, run_venv.python, log)
        ray_cli = ["-m", "ray.scripts.scripts"]
        log(f"ray start --head (temp dir {temp}) ...")
        cluster.head = cluster.spawn(
            "ray_start",
            [
                *ray_cli,
                "start",
                "--head",
                "--block",
                f"--port={gcs}",
                "--node-ip-address=127.0.0.1",
                f"--temp-dir={temp}",
                "--num-cpus=4",
                "--num-gpus=0",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--dashboard-port={ports[10]}",
                f"--node-manager-port={ports[3]}",
                f"--object-manager-port={ports[4]}",
                f"--ray-client-server-port={ports[5]}",
                f"--dashboard-agent-listen-port={ports[6]}",
                f"--dashboard-agent-grpc-port={ports[7]}",
                f"--metrics-export-port={ports[8]}",
                f"--runtime-env-agent-port={ports[9]}",
                "--min-worker-port=0",
                "--max-worker-port=0",
            ],
        )
        serve_env = {**run_env, "RAY_ADDRESS": address}
        serve_cli = ["-c", "import sys; from ray.serve.scripts import cli; sys.exit(cli())"]
        if not _wait_head(cluster, serve_env, limit=90):
            found.append(Diagnosis(code="RAY_NOT_STARTED", message="ray start --head did not come up in 90 s"))
            raise _Stop
        with open(base / "serve_start.log", "wb") as serve_start_log:
            subprocess.run(
                [str(run_venv.python), *serve_cli, "start", "--http-host", "127.0.0.1", "--http-port", str(http)],
                cwd=model,
                env=serve_env,
                stdout=serve_start_log,
                stderr=subprocess.STDOUT,
                timeout=120,
            )
        cluster.serve_run = cluster.spawn("serve_run", [*serve_cli, "run", str(model / "config.yaml")], serve_env)
        (base / "monitor.py").write_text(MONITOR, encoding="utf-8")
        cluster.monitor = cluster.spawn(
            "monitor", [str(base / "monitor.py"), address, str(base / "status.jsonl"), str(base / "stop")], serve_env
        )
        adapter = SageMakerAdapter(backend_url=f"http://127.0.0.1:{http}", port=adapter_port)
        adapter.start()
        url = adapter.url
        # wait for /ping, as SageMaker's health check does
        while time.monotonic() - started < wait_limit:
            if adapter.ping() == 200:
                result.healthz_seconds = time.monotonic() - started
                break
            if cluster.serve_run.poll() is not None and _app_status(base)[0] is None:
                break
            time.sleep(0.25)
        log(f"/ping: {f'200 after {result.healthz_seconds:.1f} s' if result.healthz_seconds else 'never 200'}")
        # the first real request, sent as soon as /ping says healthy; watched against serve.status()
        if result.healthz_seconds is not None:
            answer: dict = {}
            worker = threading.Thread(
                target=lambda: answer.update(
                    zip(
                        ("status", "body", "headers"),
                        boto3_invoke(url, body=request_body, content_type=content_type, read_timeout=invoke_limit),
                    )
                ),
                daemon=True,
            )
            sent = time.monotonic()
            worker.start()
            while worker.is_alive() and time.monotonic() - sent < invoke_limit + 5:
                status, _msg, _seen = _app_status(base)
                if status == "RUNNING" and result.running_seconds is None:
                    result.running_seconds = time.monotonic() - started
                if status == "DEPLOY_FAILED":
                    break
                worker.join(0.25)
            if "status" in answer:
                result.first_answer_seconds = time.monotonic() - started if answer["status"] == 200 else None
                result.status_code, result.response_bytes = answer["status"], len(answer["body"])
        # settle the final status (a failure may need a few more seconds to be reported)
        deadline = time.monotonic() + (5 if result.status_code == 200 else 30)
        while time.monotonic() < deadline:
            status, _msg, _seen = _app_status(base)
            if status in ("RUNNING", "DEPLOY_FAILED") or cluster.serve_run.poll() is not None:
                break
            time.sleep(0.5)
        status, message, seen = _app_status(base)
        result.app_status, result.statuses_seen = status, tuple(seen)
        if status == "RUNNING" and result.running_seconds is None:
            result.running_seconds = time.monotonic() - started
        if status == "DEPLOY_FAILED" and result.healthz_seconds is not None:
            # what a new request gets behind the healthy ping
            code, body, _h = boto3_invoke(url, body=request_body, content_type=content_type, read_timeout=15)
            found.append(
                Diagnosis(
                    code="RAY_DEPLOY_FAILED_BEHIND_PING",
                    message="the deployment's __init__ (the model load) failed, Ray marked the application "
                    "DEPLOY_FAILED, and /ping (Ray's /-/healthz) still answers 200: on SageMaker the endpoint would "
                    f"reach InService and every invocation would fail (here: HTTP {code} "
                    f"{body[:200].decode('utf-8', 'replace')}). The replica's error: {_last_error(message)}",
                )
            )
        if result.status_code == 200 and affinity_sessions:
            result.affinity = measure_affinity(
                url, body=request_body, content_type=content_type, sessions=affinity_sessions
            )
        found += _invocation_findings(result, invoke_limit)
    except _Stop:
        pass
    finally:
        if adapter is not None:
            adapter.stop()
        if cluster is not None:
            result.shutdown_seconds = cluster.shutdown()
        logs = read_ray_logs(base, temp)
        found = diagnose_ray(logs, requirements_failed=requirements_failed, app_status=result.app_status) + found
        result.diagnosis = tuple(_dedupe(found))
        result.log_excerpts = {k: v[-3000:] for k, v in logs.items() if v}
        result.ok = result.status_code == 200 and not any(d.fatal for d in result.diagnosis)
        if not keep_dir:
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(temp, ignore_errors=True)
    return result


class _Stop(Exception):
    pass


def _wait_head(cluster: _Cluster, env: Mapping[str, str], *, limit: float) -> bool:
    started = time.monotonic()
    probe = "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); print('ok')"
    while time.monotonic() - started < limit:
        if cluster.head is not None and cluster.head.poll() is not None:
            return False
        out = subprocess.run(
            [str(cluster.python), "-c", probe, env["RAY_ADDRESS"]],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode == 0 and "ok" in out.stdout:
            return True
        time.sleep(1)
    return False


def _last_error(message: str) -> str:
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    return (errors[-1] if errors else (lines[-1] if lines else "see the replica log"))[:400]


def _dedupe(found: list[Diagnosis]) -> list[Diagnosis]:
    seen, out = set(), []
    for d in found:
        if d.code not in seen:
            seen.add(d.code)
            out.append(d)
    return out


def _invocation_findings(result: RayDryRunResult, invoke_limit: float) -> list[Diagnosis]:
    found = []
    if result.response_bytes is not None and result.response_bytes > MAX_PAYLOAD_BYTES:
        found.append(
            Diagnosis(
                code="RESPONSE_TOO_LARGE",
                message=f"the response is "
                f"{result.response_bytes / 2**20:.1f} MiB, over SageMaker's 6 MiB real-time limit",
            )
        )
    if result.healthz_seconds is not None and result.status_code is None and result.app_status != "DEPLOY_FAILED":
        found.append(
            Diagnosis(
                code="RAY_LOAD_OVER_INVOKE_LIMIT",
                message=f"/ping was healthy after {result.healthz_seconds:.0f} s but the first request got no answer "
                f"within SageMaker's {invoke_limit:.0f} s real-time limit (the model was still loading behind the "
                "healthy ping): the endpoint's first calls would time out. Make the load faster, or raise the "
                "deploy's smoke-test budget and expect early 424s.",
            )
        )
    elif result.status_code not in (None, 200):
        found.append(
            Diagnosis(code="INVOKE_FAILED", message=f"the first invocation answered HTTP {result.status_code}")
        )
    return found


def measure_affinity(url: str, *, body: bytes, content_type: str, sessions: int = 6, clicks: int = 3) -> dict:
    """Per session, as the app's endpoint backend does: one click with the image opening it
    (``NEW_SESSION``), then ``clicks`` clicks naming only the session id the server returned
    (``NewSessionId``); a click answered ``404 ImageNotCached`` (a replica that does not hold the
    session) sends the image once more under the same session id, which that replica adopts.

    Counts, from the response's ``replica=`` and ``image-cache=`` custom attributes, the
    replicas per session and the re-encodes on the first click after the opening one and on the
    later ones (the goal: none on the later ones, none at all when the opening replica chose an id
    the router maps back to itself).
    """
    from inference.protocol import SegmentRequest, decode_request, encode_request

    prompt = decode_request(body, content_type=content_type).prompt
    followup, followup_type, _h = encode_request(SegmentRequest(prompt=prompt))
    per_session: list[tuple[int, bool, str | None]] = []
    replicas_all: set[str] = set()
    reencodes = first_reencodes = later_reencodes = misses = opened = 0
    for _ in range(sessions):
        # as on SageMaker: open the session with the first click, then name it
        status, _b, headers = boto3_invoke(url, body=body, content_type=content_type, session_id="NEW_SESSION")
        session = (headers.get("NewSessionId") or "").split(";", 1)[0].strip()
        if not session:
            continue
        opened += 1
        replicas = [_attr(headers, "replica")]
        for c in range(clicks):
            status, _b, headers = boto3_invoke(url, body=followup, content_type=followup_type, session_id=session)
            encoded = False
            if status == 404:  # this replica does not hold the session: the client sends the image again
                misses += 1
                status, _b, headers = boto3_invoke(url, body=body, content_type=content_type, session_id=session)
                encoded = True
            elif _attr(headers, "image-cache") != "hit":  # (classic has no embedding: its image stands for it)
                encoded = True
            if encoded:
                reencodes += 1
                if c == 0:
                    first_reencodes += 1
                else:
                    later_reencodes += 1
            replicas.append(_attr(headers, "replica"))
        replicas_all.update(r for r in replicas if r)
        per_session.append((len({r for r in replicas[1:] if r}), replicas[0] in replicas[1:], replicas[0]))
    return {
        "sessions": opened,
        "clicks_after_first": clicks,
        "replicas_seen": len(replicas_all),
        "replicas_that_opened_sessions": len({r for _n, _same, r in per_session if r}),
        # the session id's clicks all on one replica (the router's affinity)
        "followups_on_one_replica": sum(1 for n, _same, _r in per_session if n == 1),
        # ... and on the replica that opened the session (NEW_SESSION itself is hashed like any id,
        # so the opening click may land elsewhere: that session re-encodes once, on its first click)
        "opened_on_same_replica": sum(1 for _n, same, _r in per_session if same),
        "re_encodes": reencodes,
        "re_encodes_first_click": first_reencodes,
        "re_encodes_later_clicks": later_reencodes,
        "image_not_cached_404": misses,
    }


def _attr(headers: Mapping[str, str], key: str) -> str | None:
    for part in (headers.get("CustomAttributes") or "").split(","):
        k, _, v = part.strip().partition("=")
        if k == key:
            return v
    return None
