"""Connection hygiene below the app: what uvicorn's own settings do not cover.

uvicorn (0.55, h11) offers ``timeout_keep_alive`` (idle time *after* an answer), ``limit_concurrency``
(answers a plain-text 503 once too many connections *send a request*; idle ones still hold a file
descriptor each) and ``h11_max_incomplete_event_size`` (largest header section). It has no timeout
before the first byte or for slowly dribbled headers (slowloris), no cap on open connections, and
answers malformed HTTP with a plain-text 400. :class:`GuardedH11Protocol` (passed to uvicorn as
its ``http`` protocol class) adds:

* a header timeout: a connection must complete its request headers within ``header_timeout_s``
  of opening (or of its previous answer), else it gets a JSON 408 and is closed;
* a connection cap (``max_connections``, also kept under the process's file-descriptor limit):
  a new connection over the cap sheds the oldest connection that is not running a request
  (preferring ones that never completed a request: idle or slowloris sockets), or, when every
  connection is busy, gets a JSON 503 and is closed;
* malformed HTTP (bad request line or headers, a header section over the limit) answered with the
  protocol's JSON error (400, or 431 for oversized headers) instead of uvicorn's plain text.

The body timeout is enforced by the app (``_read_body``), which can still answer a JSON 408.
Only the h11 implementation is wrapped (httptools is not installed; ``uvicorn_options`` pins h11).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from inference.protocol import encode_error

log = logging.getLogger("langsam.server")

FD_RESERVE = 32  # descriptors kept free for the process itself (logs, model files, pipes)


def fd_soft_limit() -> int | None:
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


def connection_budget(configured: int, backlog: int) -> int:
    """``configured`` connections, lowered so that accepted sockets plus one accept batch
    (``backlog``) never run the process out of file descriptors."""
    soft = fd_soft_limit()
    if soft is None:
        return configured
    return max(4, min(configured, soft - backlog - FD_RESERVE))


def _raw_json_response(status: int, reason: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout, a connection cap and JSON framing errors.
    Configure with :func:`guarded_protocol` (a subclass with the limits as class attributes)."""

    header_timeout_s: float = 10.0
    max_connections: int = 512
    max_header_bytes: int = 32 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard_cycle: Any = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._opened = self._idle_since = self.loop.time()
        self._completed = 0
        self._header_bytes = 0
        self._protocol_error: h11.RemoteProtocolError | None = None
        next_event = self.conn.next_event

        def remember_errors() -> Any:  # keep h11's reason for the JSON 400 (uvicorn drops it)
            try:
                return next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error = exc
                raise

        self.conn.next_event = remember_errors  # type: ignore[method-assign]
        if len(self.connections) > self.max_connections and not self._shed_one():
            log.warning("connection refused", extra={"event": "connection_refused", "reason": "all busy"})
            transport.write(
                _raw_json_response(
                    503,
                    "Service Unavailable",
                    encode_error(
                        status=503,
                        code="ServerBusy",
                        message=f"the server has {self.max_connections} connections running requests; retry shortly",
                    ),
                    "retry-after: 1\r\n",
                )
            )
            transport.close()
            return
        self._arm_header_timer()

    # -- the connection cap ---------------------------------------------------------------------
    @property
    def waiting_for_request(self) -> bool:
        """No request running: idle, between requests, or still sending its headers."""
        return self.cycle is None or self.cycle.response_complete

    def _shed_one(self) -> bool:
        idle = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, GuardedH11Protocol)
            and c.waiting_for_request
            and not c.transport.is_closing()
        ]
        if not idle:
            return False
        victim = min(idle, key=lambda c: (c._completed > 0, c._idle_since))
        log.warning("connection shed", extra={"event": "connection_shed", "reason": "connection limit"})
        victim._close_quietly()
        return True

    def _close_quietly(self) -> None:
        self._cancel_header_timer()
        self._unset_keepalive_if_required()
        self.transport.close()

    # -- the header timeout ---------------------------------------------------------------------
    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self.waiting_for_request:
            return
        log.warning("header timeout", extra={"event": "header_timeout", "seconds": self.header_timeout_s})
        if self._completed == 0 or self.conn.their_state is not h11.IDLE:  # silent keep-alive: just close
            message = (
                f"no complete request headers within {self.header_timeout_s:g} s of connecting; "
                "this server closes idle and slow connections"
            )
            self.transport.write(
                _raw_json_response(
                    408,
                    "Request Timeout",
                    encode_error(status=408, code="RequestTimeout", message=message, field="headers"),
                )
            )
        self._close_quietly()

    def _note_new_request(self) -> None:
        if self.cycle is not None and self.cycle is not self._guard_cycle and not self.cycle.response_complete:
            self._guard_cycle = self.cycle
            self._header_bytes = 0
            self._cancel_header_timer()

    def data_received(self, data: bytes) -> None:
        reading_headers = self.waiting_for_request and self.conn.their_state is h11.IDLE
        if reading_headers:  # (not the rest of a body the app answered without reading)
            self._header_bytes += len(data)
        super().data_received(data)
        self._note_new_request()
        # h11 limits only an *incomplete* header section; one arriving whole is not bounded by it
        if (
            reading_headers
            and self.waiting_for_request
            and self.conn.their_state is h11.IDLE
            and self._header_bytes > self.max_header_bytes
            and not self.transport.is_closing()
        ) or (
            self.cycle is not None
            and self._guard_cycle is self.cycle
            and sum(len(k) + len(v) + 4 for k, v in self.cycle.scope["headers"]) > self.max_header_bytes
            and not self.cycle.response_started
        ):
            self._reject_headers()

    def _reject_headers(self) -> None:
        self._cancel_header_timer()
        log.warning("headers too large", extra={"event": "headers_too_large", "limit": self.max_header_bytes})
        message = f"the request headers are larger than this server's {self.max_header_bytes}-byte limit"
        body = encode_error(status=431, code="HeadersTooLarge", message=message, field="headers")
        self.transport.write(_raw_json_response(431, "Request Header Fields Too Large", body))
        if self.cycle is not None:
            self.cycle.disconnected = True  # the app must not answer this request as well
            self.cycle.message_event.set()
        self.transport.close()

    def on_response_complete(self) -> None:
        self._completed += 1
        self._idle_since = self.loop.time()
        super().on_response_complete()
        if self.transport.is_closing():
            self._cancel_header_timer()
            return
        self._note_new_request()  # a pipelined request may have started
        if self.waiting_for_request:
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    # -- framing errors as JSON ---------------------------------------------------------------------
    def send_400_response(self, msg: str) -> None:
        self._cancel_header_timer()
        exc = self._protocol_error
        status = int(getattr(exc, "error_status_hint", 400) or 400)
        status = status if status in (400, 413, 414, 431) else 400
        detail = str(exc) if exc is not None and str(exc) else msg
        code = "HeadersTooLarge" if status == 431 else "BadRequest"
        body = encode_error(
            status=status,
            code=code,
            message=f"malformed HTTP request: {detail}",
            field="headers" if status == 431 else "http",
        )
        reason = {
            400: "Bad Request",
            413: "Content Too Large",
            414: "URI Too Long",
            431: "Request Header Fields Too Large",
        }
        self.transport.write(_raw_json_response(status, reason[status], body))
        self.transport.close()


def guarded_protocol(
    *, header_timeout_s: float, max_connections: int, max_header_bytes: int = 32 * 1024
) -> type[GuardedH11Protocol]:
    return type(
        "ConfiguredGuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": float(header_timeout_s),
            "max_connections": int(max_connections),
            "max_header_bytes": int(max_header_bytes),
        },
    )


def uvicorn_options(config: Any) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``/``uvicorn.run`` from a :class:`ServerConfig`."""
    backlog = max(16, min(256, config.max_connections // 2))
    return {
        "http": guarded_protocol(
            header_timeout_s=config.header_timeout_s,
            max_connections=connection_budget(config.max_connections, backlog),
            max_header_bytes=config.max_header_bytes,
        ),
        "ws": "none",
        "backlog": backlog,
        "timeout_keep_alive": config.keep_alive_s,
        "h11_max_incomplete_event_size": config.max_header_bytes,
        "limit_concurrency": None,  # its 503 is plain text and counts only requests; the cap above replaces it
    }
