"""The ``server`` backend: prompts answered by our own HTTP server (``langsam-studio serve``).

``create_backend("server", url="http://gpu-box:8765", token="…")``. The protocol is
:mod:`inference.protocol` (docs/protocol.md); the behaviour shared with the SageMaker backend
(original bytes once, image ids, silent re-send, logits for refinement) is
:class:`inference.backends.remote.RemoteBackend`.

Latest wins over HTTP: every call runs on a helper thread with its own keep-alive connection
(:class:`AbortableHttp`). The calling thread waits for it while watching the cancel token; when
the token is set it shuts that connection's socket and returns at once (``Cancelled``). The
abandoned connection is never reused, so the next call takes another connection from the pool
(or opens one) and is not serialized behind the abandoned one. Only the standard library is
used (``http.client``), no AWS: this module belongs to the inference layer.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from inference.backends.registry import register_backend
from inference.backends.remote import Exchange, RemoteBackend, RemoteError, RemoteUnavailableError
from inference.cancel import CancelToken
from inference.errors import BackendUnavailableError, Cancelled
from inference.protocol import REQUEST_HEADER

TOKEN_HEADER = "Authorization"
POLL_S = 0.01  # how often a waiting call looks at its cancel token (the answer itself wakes it at once)
CONNECT_TIMEOUT_S = 5.0
LOAD_WAIT_S = 120.0  # how long load() waits for a server whose model is still loading


class AbortableHttp:
    """HTTP/1.1 calls that can be abandoned at any moment. Thread-safe pool of idle connections."""

    def __init__(self, url: str, *, token: str | None = None, connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendUnavailableError(f"the server URL must look like http://host:port, not {url!r}")
        netloc = parts.netloc.rpartition("@")[2]  # user:password@ is never sent: keep it out of messages
        self.url = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._connect_timeout = connect_timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._connect_timeout), False

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < 4:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        cancel: CancelToken | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, dict[str, str], bytes, int]:
        """``(status, headers (lower-case names), body, bytes sent)``. Raises ``Cancelled`` as
        soon as ``cancel`` is set, :class:`RemoteUnavailableError` when the server cannot be
        reached or does not answer within ``timeout`` seconds."""
        all_headers = {**self._headers, **(headers or {})}
        for attempt in (0, 1):
            conn, reused = self._connection()
            try:
                return self._once(conn, method, path, body, all_headers, cancel, timeout)
            except _StaleConnection:
                if attempt == 0 and reused:
                    continue  # the server closed an idle keep-alive connection: open a new one
                raise RemoteUnavailableError(
                    f"the server at {self.url} closed the connection before answering"
                ) from None
        raise AssertionError("unreachable")

    def _once(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        cancel: CancelToken | None,
        timeout: float,
    ) -> tuple[int, dict[str, str], bytes, int]:
        box: dict[str, Any] = {}
        done = threading.Event()
        sent = len(body or b"") + _header_bytes(method, self._prefix + path, self._host, self._port, headers, body)

        def work() -> None:
            try:
                conn.request(method, self._prefix + path, body=body, headers=headers)
                if conn.sock is not None:
                    conn.sock.settimeout(timeout + 5.0)
                response = conn.getresponse()
                data = response.read()
                box["answer"] = (
                    response.status,
                    {k.lower(): v for k, v in response.getheaders()},
                    data,
                    response.will_close,
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="langsam-http-call", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not done.wait(POLL_S if cancel is not None else min(1.0, timeout)):
            if cancel is not None and cancel.cancelled:
                _abort(conn)  # the helper thread ends with an error nobody reads
                raise Cancelled(cancel.reason or "cancelled")
            if time.monotonic() > deadline:
                _abort(conn)
                raise RemoteUnavailableError(
                    f"the server at {self.url} did not answer within {timeout:g} s; it may be overloaded or "
                    "stuck (choose a local backend in Inference → Backend to keep working)"
                )
        error = box.get("error")
        if error is not None:
            conn.close()
            if isinstance(
                error, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
            ) and not isinstance(error, ConnectionRefusedError):
                raise _StaleConnection()
            raise RemoteUnavailableError(_unreachable(self.url, error)) from None
        status, answer_headers, data, will_close = box["answer"]
        if will_close:
            conn.close()
        else:
            self._release(conn)
        return status, answer_headers, data, sent


class _StaleConnection(Exception):
    pass


def _abort(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    conn.close()


def _header_bytes(method: str, path: str, host: str, port: int, headers: Mapping[str, str], body: bytes | None) -> int:
    """The size of the request line and headers http.client sends (for the bytes-per-click figure)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Accept-Encoding: identity"]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return len("\r\n".join(lines)) + 4


def _unreachable(url: str, error: BaseException) -> str:
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    if isinstance(error, ConnectionRefusedError):
        reason = "connection refused: is `langsam-studio serve` running there?"
    elif isinstance(error, socket.timeout):
        reason = "no answer in time"
    elif isinstance(error, socket.gaierror):
        reason = f"the host name cannot be resolved ({reason})"
    return (
        f"the server at {url} cannot be reached ({reason}); choose a local backend in "
        "Inference → Backend to keep working"
    )


@register_backend
class ServerBackend(RemoteBackend):
    """Our own server over HTTP. Options: ``url`` (required), ``token``, ``timeout_s``."""

    name = "server"
    raw_header = REQUEST_HEADER

    def __init__(self, *, url: str = "", token: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        if not url:
            raise BackendUnavailableError(
                "the 'server' backend needs the server's URL: set it in Settings → Remote (or --server URL)"
            )
        self.http = AbortableHttp(url, token=token or None)
        self.url = self.http.url

    @property
    def where(self) -> str:
        return f"server {self.url}"

    def _fetch_info(self) -> dict[str, Any]:
        deadline = time.monotonic() + LOAD_WAIT_S
        while True:
            status, _, body, _ = self.http.request("GET", "/ping", timeout=15.0)
            ping = _json(body)
            if status == 200:
                break
            if status == 503 and ping.get("status") == "loading" and time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            reason = ping.get("reason") or ping.get("message") or f"HTTP {status}"
            raise BackendUnavailableError(f"the server at {self.url} is not ready: {reason}")
        status, _, body, _ = self.http.request("GET", "/info", timeout=15.0)
        if status != 200:
            raise BackendUnavailableError(str(self.error_from_body(status, body)))
        return _json(body)

    def _exchange(
        self, body: bytes, *, content_type: str, headers: Mapping[str, str], cancel: CancelToken | None, timeout: float
    ) -> Exchange:
        started = time.perf_counter()
        status, answer_headers, data, sent = self.http.request(
            "POST",
            "/invocations",
            body=body,
            headers={"Content-Type": content_type, **headers},
            cancel=cancel,
            timeout=timeout,
        )
        if status >= 300:
            raise self.error_from_body(status, data)
        return Exchange(body=data, headers=answer_headers, bytes_sent=sent, seconds=time.perf_counter() - started)

    def unload(self) -> None:
        self.http.close()
        super().unload()


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {"message": body.decode("utf-8", "replace")[:200]}
    return value if isinstance(value, dict) else {}


__all__ = ["AbortableHttp", "RemoteError", "ServerBackend"]
