"""The HTTP server's settings and the start-up safety checks (token on non-loopback hosts)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from inference.errors import InferenceError
from inference.protocol import MAX_PAYLOAD_BYTES
from inference.server.runner import RunnerLimits

DEFAULT_PORT = 8765
CONTAINER_PORT = 8080  # SageMaker's bring-your-own-container contract
TOKEN_ENV = "LANGSAM_SERVER_TOKEN"
CONTAINER_ENV = "LANGSAM_SERVE_CONTAINER"  # "1": behave as the SageMaker container command
SAGEMAKER_PORT_ENV = "SAGEMAKER_BIND_TO_PORT"


# Host header values a loopback-bound server answers (with any port): anything else is a DNS
# rebinding attempt from a browser page and gets 421 (see app.HostGuard)
LOOPBACK_HOST_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def container_environment(root: str = "/") -> str | None:
    """Why this process is in a container (the evidence, for the log), or ``None``.

    Container mode binds 0.0.0.0 without a token only with evidence: Docker's ``/.dockerenv``,
    Podman's ``/run/.containerenv``, a container runtime in ``/proc/1/cgroup``, or SageMaker's
    ``/opt/ml`` tree together with ``SAGEMAKER_BIND_TO_PORT``."""
    base = Path(root)
    if (base / ".dockerenv").exists():
        return "/.dockerenv exists"
    if (base / "run" / ".containerenv").exists():
        return "/run/.containerenv exists"
    try:
        cgroup = (base / "proc" / "1" / "cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        cgroup = ""
    for word in ("docker", "kubepods", "containerd", "ecs", "lxc", "libpod"):
        if word in cgroup:
            return f"/proc/1/cgroup names {word}"
    if os.environ.get(SAGEMAKER_PORT_ENV) and (base / "opt" / "ml").is_dir():
        return f"/opt/ml exists and {SAGEMAKER_PORT_ENV} is set"
    return None


class ServerConfigError(InferenceError):
    """The server refuses to start with these settings; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    container: bool = False  # SageMaker BYOC: 0.0.0.0:8080, SageMaker authenticates callers
    container_evidence: str | None = None  # why we believe we run in a container (logged at start-up)
    cors_origins: tuple[str, ...] = ()
    max_request_bytes: int = MAX_PAYLOAD_BYTES
    timeout_s: float = 60.0
    queue_size: int = 8
    retry_after_s: int = 1
    limits: RunnerLimits = field(default_factory=RunnerLimits)
    # connection hygiene (inference.server.guard): a connection must send its request headers within
    # header_timeout_s of opening (or of its previous answer), its body within body_timeout_s; idle
    # keep-alive connections close after keep_alive_s; at most max_connections are open at once
    # (also kept under the process's file-descriptor limit), the oldest idle one is shed first
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keep_alive_s: int = 5
    max_connections: int = 512
    max_header_bytes: int = 32 * 1024
    allowed_hosts: tuple[str, ...] | None = None  # None: the loopback names on a loopback bind, else any
    # the prompt assistant (prompt.instruction): a chat model name, an OpenAI-compatible base URL
    # (None: OpenAI); the key only from OPENAI_API_KEY
    assistant_model: str | None = None
    assistant_base_url: str | None = None

    def host_allow_list(self) -> frozenset[str] | None:
        """Host header names (without port) this server answers; ``None``: any."""
        if self.allowed_hosts is not None:
            return frozenset(h.lower() for h in self.allowed_hosts)
        return LOOPBACK_HOST_NAMES if is_loopback(self.host) else None

    def check(self) -> None:
        """Raise :class:`ServerConfigError` for settings that would be unsafe or cannot work."""
        if not (0 <= self.port <= 65535):
            raise ServerConfigError(f"port {self.port} is not a valid TCP port")
        if not is_loopback(self.host) and not self.token and not self.container:
            raise ServerConfigError(
                f"refusing to listen on {self.host} without a bearer token: anyone who can reach this machine "
                f"could use it. Set {TOKEN_ENV} (or --token-file), or bind to 127.0.0.1"
            )
        if self.token is not None and len(self.token) < 16:
            raise ServerConfigError(
                "the bearer token is shorter than 16 characters; use a long random one "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if "*" in self.cors_origins and self.token is None and not is_loopback(self.host):
            raise ServerConfigError("CORS origin '*' needs a bearer token")
        for name in ("max_request_bytes", "queue_size"):
            if getattr(self, name) < 1:
                raise ServerConfigError(f"{name} must be positive")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s", "max_connections", "max_header_bytes"):
            if not getattr(self, name) > 0:
                raise ServerConfigError(f"{name} must be positive")
        if not self.timeout_s > 0:
            raise ServerConfigError("the request timeout must be positive")


def container_requested(flag: bool) -> bool:
    """``--container``, ``LANGSAM_SERVE_CONTAINER=1`` or ``SAGEMAKER_BIND_TO_PORT`` set."""
    value = os.environ.get(CONTAINER_ENV, "").strip().lower()
    return flag or value in {"1", "true", "yes", "on"} or bool(os.environ.get(SAGEMAKER_PORT_ENV))


def container_port() -> int:
    raw = os.environ.get(SAGEMAKER_PORT_ENV, "").strip()
    return int(raw) if raw.isdigit() else CONTAINER_PORT
