"""The FastAPI application: ``/ping``, ``/invocations``, ``/endpoints/{name}/invocations``, ``/info``.

``/invocations`` is SageMaker's container contract; ``/endpoints/{name}/invocations`` is the
SageMaker *runtime* path, so a boto3 ``sagemaker-runtime`` client created with
``endpoint_url=http://127.0.0.1:PORT`` talks to this server unchanged. On that path, errors look
like the real service's: HTTP 424 ``ModelError`` carrying ``OriginalStatusCode`` and
``OriginalMessage`` (our JSON error), so one client handles both.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from inference.cancel import CancelReason, CancelToken
from inference.protocol import (
    CUSTOM_ATTRIBUTES_HEADER,
    JSON_TYPE,
    MAX_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    REQUEST_HEADER,
    SESSION_HEADER,
    ErrorInfo,
    PayloadTooLargeError,
    ProtocolError,
    decode_request,
    encode_error,
)
from inference.server.assistant import AssistantFailed, AssistantSettings, resolve_instruction
from inference.server.config import ServerConfig
from inference.server.errors import ModelNotReadyError, RequestTimeoutError, ServerBusyError, error_info
from inference.server.runner import unknown_capabilities
from inference.server.worker import InferenceWorker, Job, WorkerState

log = logging.getLogger("langsam.server")

TOKEN_HEADER = "X-LangSAM-Token"  # alternative to Authorization: Bearer (boto3 signs Authorization)
REQUEST_ID_HEADER = "X-Request-Id"
_FORWARDED = (CUSTOM_ATTRIBUTES_HEADER, REQUEST_HEADER, SESSION_HEADER)
_RID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_EXPOSED = (
    REQUEST_ID_HEADER,
    "X-LangSAM-Image-Cache",
    "X-LangSAM-Embedding-Cache",
    "X-Amzn-SageMaker-New-Session-Id",
    "Retry-After",
)


class _Unauthorized(Exception):
    pass


class _ClientGone(Exception):
    """The client closed its connection before its answer: its work is cancelled."""


def _host_name(value: str) -> str | None:
    """The name part of a Host header ('[::1]:8765' -> '[::1]'), or None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
    else:
        name, _, port = value.partition(":")
        rest = f":{port}" if _ else ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6):
        return None
    return name


class HostGuard:
    """Pure ASGI middleware: answer only requests whose ``Host`` is in ``allowed`` (any port).

    On a loopback bind that is localhost / 127.0.0.1 / [::1]: a web page that rebinds its own
    DNS name to 127.0.0.1 sends its own name as Host and gets a JSON 421, never an answer.
    Requests without a Host header (HTTP/1.0) are not browser requests and pass."""

    def __init__(self, app: Any, *, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw = next((v for k, v in scope.get("headers", ()) if k == b"host"), None)
            if raw is not None:
                name = _host_name(raw.decode("latin-1"))
                if name not in self.allowed:
                    shown = raw.decode("latin-1")[:100]
                    body = encode_error(
                        status=421,
                        code="MisdirectedRequest",
                        message=f"this server answers only requests addressed to {', '.join(sorted(self.allowed))} "
                        f"(Host {shown!r} is not one of them; DNS rebinding protection)",
                        field="Host",
                    )
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 421,
                            "headers": [
                                (b"content-type", JSON_TYPE.encode()),
                                (b"content-length", str(len(body)).encode()),
                                (b"x-amzn-errortype", b"MisdirectedRequest"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


def create_app(*, config: ServerConfig, worker: InferenceWorker, manage_worker: bool = True) -> FastAPI:
    """Build the app. With ``manage_worker`` the app starts the worker (model load in the
    background) at start-up and stops it at shutdown."""
    config.check()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_worker:
            worker.start()
        try:
            yield
        finally:
            if manage_worker:
                await asyncio.to_thread(worker.stop)

    app = FastAPI(
        title="LangSAM Studio inference server",
        version=str(PROTOCOL_VERSION),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.config = config
    app.state.worker = worker
    allowed_hosts = config.host_allow_list()
    if allowed_hosts:
        app.add_middleware(HostGuard, allowed=allowed_hosts)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", TOKEN_HEADER, *_FORWARDED],
            expose_headers=list(_EXPOSED),
            max_age=600,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        rid = _request_id(request)
        message = {
            404: f"there is nothing at {request.url.path}; use POST /invocations or GET /ping",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        return _json_error(
            ErrorInfo(
                status=exc.status_code,
                code="NotFound" if exc.status_code == 404 else "BadRequest",
                message=message,
                field="path" if exc.status_code == 404 else "method",
                request_id=rid,
            ),
            rid,
        )

    @app.get("/ping")
    async def ping() -> Response:
        state = worker.state
        body: dict[str, Any] = {"status": state.value, "protocol": PROTOCOL_VERSION}
        if state is WorkerState.READY and worker.info is not None:
            body.update(backend=worker.info.backend, model=worker.info.model, device=worker.info.device)
            return JSONResponse(body)
        headers = {}
        if state is WorkerState.LOADING:
            body["reason"] = "the model is loading"
            headers["Retry-After"] = "2"
        else:
            body["reason"] = worker.reason or state.value
        return JSONResponse(body, status_code=503, headers=headers)

    @app.get("/info")
    async def info(request: Request) -> Response:
        rid = _request_id(request)
        try:
            _authorize(request, config)
        except _Unauthorized as exc:
            return _json_error(ErrorInfo(status=401, code="Unauthorized", message=str(exc), request_id=rid), rid)
        runner = worker.runner
        # what a client must know before prompting, as encode-only answers say it too (the worker
        # sets its runner before its info); unknown while the model loads
        capabilities = (
            runner.capabilities() if worker.info is not None and runner is not None else unknown_capabilities()
        )
        body = {
            "protocol": PROTOCOL_VERSION,
            "status": worker.state.value,
            "backend": worker.info.backend if worker.info else None,
            "model": worker.info.model if worker.info else None,
            "device": worker.info.device if worker.info else None,
            **capabilities,
            "limits": {
                "max_request_bytes": config.max_request_bytes,
                "max_response_bytes": config.limits.max_response_bytes,
                "max_image_pixels": config.limits.max_image_pixels,
                "timeout_s": config.timeout_s,
                "queue_size": config.queue_size,
            },
            "queue": {"waiting": worker.queued, "processed": worker.processed},
            # additive capabilities: prompt.mask_input_ref + options.keep_logits (refinement without
            # the logits travelling), prompt.instruction (the server's assistant, when configured)
            "features": capabilities["features"] + (["instruction"] if config.assistant_model else []),
            "image_cache": {
                "entries": len(runner.images),
                "bytes": runner.images.nbytes,
                "max_bytes": runner.images.max_bytes,
                "hits": runner.images.hits,
            }
            if runner
            else None,
        }
        return JSONResponse(body)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        return await _invoke(request, config, worker, sagemaker_runtime=False)

    @app.post("/endpoints/{endpoint_name}/invocations")
    async def endpoint_invocations(request: Request, endpoint_name: str) -> Response:
        return await _invoke(request, config, worker, sagemaker_runtime=True)

    return app


def _request_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        given = request.headers.get("x-amzn-sagemaker-inference-id") or request.headers.get("x-request-id")
        rid = given if given and _RID_RE.match(given) else uuid.uuid4().hex
        request.state.request_id = rid
    return rid


def _authorize(request: Request, config: ServerConfig) -> None:
    if not config.token:
        return
    supplied = request.headers.get(TOKEN_HEADER.lower())
    auth = request.headers.get("authorization", "")
    if supplied is None and auth[:7].lower() == "bearer ":
        supplied = auth[7:].strip()
    if not supplied or not hmac.compare_digest(supplied.encode(), config.token.encode()):
        raise _Unauthorized(
            f"a valid bearer token is required: send 'Authorization: Bearer <token>' (or the {TOKEN_HEADER} header)"
        )


async def _read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    declared = request.headers.get("content-length")
    advice = (
        "send a smaller (JPEG-compressed) image, or use asynchronous inference for larger payloads"
        if limit >= MAX_PAYLOAD_BYTES
        else "send a smaller image"
    )
    if declared is not None:
        if not declared.isdigit():
            raise ProtocolError(f"Content-Length {declared!r} is not a number", field="Content-Length")
        if int(declared) > limit:
            raise PayloadTooLargeError(
                f"the request is {int(declared) / 2**20:.1f} MiB, over this server's "
                f"{limit / 2**20:.1f} MiB limit; {advice}"
            )
    chunks: list[bytes] = []
    size = 0

    async def read_chunks() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"the request is over this server's {limit / 2**20:.1f} MiB limit; {advice}")
            chunks.append(chunk)

    try:  # a slowly dribbled body must not hold a connection forever
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(timeout_s):
                await read_chunks()
        else:  # no asyncio.timeout before 3.11
            await asyncio.wait_for(read_chunks(), timeout_s)
    except (TimeoutError, asyncio.TimeoutError):  # the same class from 3.11 on
        raise ProtocolError(
            f"the request body did not arrive within {timeout_s:g} s ({size} bytes received); "
            "send it faster or smaller",
            field="body",
            status=408,
            code="RequestTimeout",
        ) from None
    return b"".join(chunks)


async def _disconnected(request: Request) -> None:
    """Return once the client has closed its connection (the body is already read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _scope(request: Request, config: ServerConfig) -> str:
    """Who is asking, for the visibility of client-chosen image ids: the credentials' hash."""
    if not config.token:
        return ""
    return hashlib.blake2b(config.token.encode(), digest_size=8).hexdigest()


async def _invoke(
    request: Request, config: ServerConfig, worker: InferenceWorker, *, sagemaker_runtime: bool
) -> Response:
    rid = _request_id(request)
    started = time.perf_counter()
    size_in = 0
    try:
        _authorize(request, config)
        body = await _read_body(request, config.max_request_bytes, config.body_timeout_s)
        size_in = len(body)
        headers = {name: request.headers[name.lower()] for name in _FORWARDED if name.lower() in request.headers}
        content_type = request.headers.get("content-type")
        # decoded here, not on the inference thread: a bad request never waits in the queue, and an
        # instruction is answered by the assistant before the request is queued
        if len(body) > 65536:
            decoded = await asyncio.to_thread(decode_request, body, content_type=content_type, headers=headers)
        else:
            decoded = decode_request(body, content_type=content_type, headers=headers)
        del body
        cancel = CancelToken()
        deadline = time.monotonic() + config.timeout_s
        phrases = None
        if decoded.instruction is not None:
            decoded, phrases = await _ask_assistant(request, config, worker, decoded, cancel, deadline)
        job = Job(
            body=b"",
            content_type=content_type,
            headers=headers,
            request_id=rid,
            scope=_scope(request, config),
            request=decoded,
            phrases=phrases,
            cancel=cancel,
        )
        del decoded
        future = worker.submit(job)
        result = await _wait(request, config, asyncio.wrap_future(future), cancel, deadline)
        response = Response(result.body, media_type=JSON_TYPE, headers={**result.headers, REQUEST_ID_HEADER: rid})
        response.headers["X-Amzn-Invoked-Production-Variant"] = "local"
    except _Unauthorized as exc:
        info = ErrorInfo(status=401, code="Unauthorized", message=str(exc), request_id=rid)
        response = _sagemaker_error(info, rid) if sagemaker_runtime else _json_error(info, rid)
    except (ClientDisconnect, _ClientGone):  # not a server error: no traceback, nobody to answer
        info = ErrorInfo(
            status=499, code="ClientClosedRequest", message="the client closed the connection", request_id=rid
        )
        response = _json_error(info, rid)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error; the server keeps serving
        info = error_info(exc, request_id=rid)
        if info.status >= 500 and info.code in ("InternalError", "InferenceError"):
            log.error("request failed", exc_info=exc, extra={"event": "error", "request_id": rid})
        response = _sagemaker_error(info, rid) if sagemaker_runtime else _json_error(info, rid)
        retry = getattr(exc, "retry_after", None)
        if isinstance(exc, (ServerBusyError, ModelNotReadyError, AssistantFailed)) and retry:
            response.headers["Retry-After"] = str(retry)
    log.info(
        "request",
        extra={
            "event": "request",
            "request_id": rid,
            "path": request.url.path,
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000.0, 2),
            "bytes_in": size_in,
            "bytes_out": int(response.headers.get("content-length", 0)),
            "content_type": request.headers.get("content-type", ""),
            "client": request.client.host if request.client else None,
        },
    )
    return response


async def _wait(request: Request, config: ServerConfig, work: Any, cancel: CancelToken, deadline: float) -> Any:
    """The result of ``work`` (an awaitable), unless the client goes away (its work is cancelled:
    :class:`_ClientGone`) or the request's time runs out (cancelled too: 504)."""
    answer = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _pending = await asyncio.wait(
            {answer, gone}, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
    if answer in done:
        return answer.result()
    if gone in done:  # nobody waits for this answer any more: skip or stop the work
        cancel.cancel(CancelReason.NO_LONGER_WANTED)
        answer.cancel()
        raise _ClientGone()
    # a 504 also stops the work (cooperatively, inside the backend or the assistant call)
    cancel.cancel(f"the request took longer than the server's {config.timeout_s:g} s limit")
    answer.cancel()
    raise RequestTimeoutError(
        f"the request took longer than the server's {config.timeout_s:g} s limit and "
        "was cancelled; try a smaller image or a faster model"
    )


async def _ask_assistant(
    request: Request,
    config: ServerConfig,
    worker: InferenceWorker,
    decoded: Any,
    cancel: CancelToken,
    deadline: float,
) -> Any:
    """``prompt.instruction`` -> ``prompt.text`` through the server's assistant, before queueing.
    Only the instruction and the label names leave the server (never the image)."""
    from inference.server.assistant import not_configured

    if not config.assistant_model:
        raise not_configured()
    settings = AssistantSettings(
        model=config.assistant_model, base_url=config.assistant_base_url, timeout_s=min(30.0, config.timeout_s)
    )
    supports_text = worker.info.supports_text if worker.info is not None else None
    return await _wait(
        request,
        config,
        asyncio.to_thread(
            resolve_instruction,
            decoded,
            settings=settings,
            cancel=cancel,
            supports_text=supports_text,
            retry_after_default=config.retry_after_s,
        ),
        cancel,
        deadline,
    )


def _json_error(info: ErrorInfo, rid: str) -> Response:
    body = encode_error(status=info.status, code=info.code, message=info.message, field=info.field, request_id=rid)
    headers = {REQUEST_ID_HEADER: rid, "x-amzn-ErrorType": info.code}
    if info.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(body, status_code=info.status, media_type=JSON_TYPE, headers=headers)


def _sagemaker_error(info: ErrorInfo, rid: str) -> Response:
    """What the SageMaker runtime answers when the container fails: 424 ModelError wrapping our
    error; a body over the limit is the runtime's own ValidationError; no credentials -> 403."""
    ours = encode_error(
        status=info.status, code=info.code, message=info.message, field=info.field, request_id=rid
    ).decode()
    readable = f"{info.message} (field: {info.field})" if info.field else info.message
    body: dict[str, Any]
    if info.code == "PayloadTooLarge":
        status, kind, body = 400, "ValidationError", {"message": readable, "Message": readable}
    elif info.status == 401:
        status, kind, body = 403, "AccessDeniedException", {"message": readable, "Message": readable}
    else:
        side = "client" if info.status < 500 else "server"
        message = f'Received {side} error ({info.status}) from primary with message "{readable}". Request id {rid}.'
        status, kind, body = (
            424,
            "ModelError",
            {"Message": message, "OriginalStatusCode": info.status, "OriginalMessage": ours, "LogStreamArn": "local"},
        )
    return Response(
        json.dumps(body).encode(),
        status_code=status,
        media_type=JSON_TYPE,
        headers={REQUEST_ID_HEADER: rid, "x-amzn-ErrorType": kind, "x-amzn-RequestId": rid},
    )
