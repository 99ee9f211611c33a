"""Plain-words diagnoses of a local Ray Serve dry run, from its logs.

Where things are written: ``pip.log`` (the offline requirements install), ``ray_start.log``,
``serve_start.log``, ``serve_run.log`` (``serve run config.yaml``: import errors of
``deployment.py`` surface here), ``status.jsonl`` (``serve.status()`` every 0.5 s), and Ray's
session logs under ``<temp>/session_latest/logs/`` (``serve/controller_*.log``,
``serve/replica_*.log``: the deployment's prints and ``__init__`` tracebacks).
"""

from __future__ import annotations

import re
from pathlib import Path

from cloud.diagnosis import Diagnosis


def read_ray_logs(base: Path, temp: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("pip", "ray_start", "serve_start", "serve_run", "monitor"):
        out[name] = _read(base / f"{name}.log")
    serve_logs = temp / "session_latest" / "logs" / "serve"
    out["controller"] = "\n".join(_read(p) for p in sorted(serve_logs.glob("controller_*.log")))
    out["replicas"] = "\n".join(_read(p) for p in sorted(serve_logs.glob("replica_*.log")))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def diagnose_ray(logs: dict[str, str], *, requirements_failed: bool, app_status: str | None = None) -> list[Diagnosis]:
    found: list[Diagnosis] = []
    pip = logs.get("pip", "")
    if requirements_failed:
        errors = [ln.strip() for ln in pip.splitlines() if "ERROR" in ln]
        found.append(
            Diagnosis(
                code="RAY_REQUIREMENTS_FAILED",
                message="code/requirements.txt failed to install offline; the Ray Serve image's entrypoint exits "
                "before Ray starts, so the endpoint fails its health check (CannotStartContainerError / failed ping). "
                "pip said: " + ("; ".join(errors)[-600:] or "see pip.log"),
            )
        )
        return found
    everything = "\n".join((logs.get("serve_run", ""), logs.get("controller", ""), logs.get("replicas", "")))
    missing = re.search(r"(ModuleNotFoundError|ImportError): [^\n]*", everything)
    if missing:
        found.append(
            Diagnosis(
                code="RAY_IMPORT_ERROR",
                message=f"the Ray Serve app cannot import: {missing.group(0).strip()[:300]}. Bundle the missing "
                "package's wheel (or fix the import); the image's /ping may still answer 200.",
            )
        )
    if app_status == "DEPLOY_FAILED" and not missing:
        tb = re.findall(
            r"^\w*(?:Error|Exception)[^\n]*", logs.get("replicas", "") + logs.get("controller", ""), flags=re.MULTILINE
        )
        found.append(
            Diagnosis(
                code="RAY_DEPLOY_FAILED_BEHIND_PING",
                message="the application is DEPLOY_FAILED (the deployment's __init__ raised, retried, gave up) while "
                "/ping stays 200" + (f": {tb[-1][:300]}" if tb else ""),
            )
        )
    if "Address already in use" in everything + logs.get("ray_start", ""):
        found.append(Diagnosis(code="PORT_IN_USE", message="a port Ray needs is already in use; run again."))
    return found
