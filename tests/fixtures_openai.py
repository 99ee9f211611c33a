"""A local OpenAI-compatible HTTP server for the prompt assistant's tests.

It speaks the real Chat Completions wire format (``POST /v1/chat/completions``: the request JSON
in, a ``chat.completion`` object or an ``{"error": {...}}`` body out), so the tests run the REAL
``openai`` client end to end, on 127.0.0.1 only. Each test says what the server answers:

    def test_x(openai_server):
        openai_server.respond(completion('{"phrases": [], "notes": ""}'))   # every request
        openai_server.respond(error(400, "response_format json_schema is not supported"),
                              completion(...))                               # one per request
        openai_server.respond(lambda request: ...)                            # computed

and reads what the client sent in ``openai_server.requests`` (``path``, ``headers``, ``json``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to sleep before answering


def completion(
    content: str | dict | None,
    *,
    refusal: str | None = None,
    finish_reason: str = "stop",
    model: str = "test-model",
    delay: float = 0.0,
) -> Reply:
    """A ``chat.completion`` whose one choice says ``content`` (a dict is sent as its JSON)."""
    if isinstance(content, dict):
        content = json.dumps(content)
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "logprobs": None,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return Reply(200, body, delay=delay)


def answer(*phrases: str | dict, notes: str = "", **kwargs: Any) -> Reply:
    """A completion carrying a valid answer: ``answer("car", {"phrase": "dent", "label": "damage"})``."""
    items = []
    for p in phrases:
        item = {"phrase": p} if isinstance(p, str) else dict(p)
        item.setdefault("box_threshold", None)
        items.append(item)
    return completion({"phrases": items, "notes": notes}, **kwargs)


def error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return Reply(
        status,
        {"error": {"message": message, "type": type, "param": param, "code": code}},
        headers=dict(headers or {}),
        delay=delay,
    )


def rejecting(*formats: str, then: Reply) -> Callable[[dict], Reply]:
    """A handler that answers 400 (as vLLM/llama.cpp do) to a ``response_format`` of these types
    and ``then`` to any other request."""

    def handle(request: dict) -> Reply:
        fmt = (request.get("json") or {}).get("response_format") or {}
        if fmt.get("type") in formats:
            return error(
                400,
                f"response_format type '{fmt.get('type')}' is not supported by this server",
                param="response_format",
            )
        return then

    return handle


Responder = Reply | Callable[[dict], Reply]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout and cancel tests) resets the connection, possibly while a
        later test runs: never print it into that test's captured stderr."""


class FakeOpenAIServer:
    """The server; see the module docstring. ``base_url`` ends in ``/v1`` like OpenAI's."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._script: list[Responder] = []
        self._default: Responder = answer("object")
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    payload = json.loads(raw or b"null")
                except ValueError:
                    payload = None
                request = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": payload,
                }
                reply = owner._next(request)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                if isinstance(body, dict):
                    data, ctype = json.dumps(body).encode(), "application/json"
                elif isinstance(body, str):
                    data, ctype = body.encode(), "application/json"
                else:
                    data, ctype = body or b"", "application/json"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.headers.get("Content-Type", ctype))
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        if k.lower() != "content-type":
                            self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()

    def respond(self, *replies: Responder) -> None:
        """One responder: every request gets it. Several: one per request, in order, the last repeats."""
        with self._lock:
            self._script = list(replies[:-1])
            self._default = replies[-1]

    def _next(self, request: dict) -> Reply:
        with self._lock:
            self.requests.append(request)
            responder = self._script.pop(0) if self._script else self._default
        return responder(request) if callable(responder) else responder

    @property
    def formats(self) -> list[str | None]:
        """The ``response_format`` type of each request so far (None: none sent)."""
        return [((r["json"] or {}).get("response_format") or {}).get("type") for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def openai_server():
    server = FakeOpenAIServer()
    try:
        yield server
    finally:
        server.close()


def closed_port_url() -> str:
    """The base URL of a port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
