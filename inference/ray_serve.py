"""The Ray Serve deployment: the same request core as the HTTP server and the SageMaker handler.

AWS's Ray Serve SageMaker images (``ray:serve-ml-sagemaker-{cpu,cuda}``) run ``serve run
/opt/ml/model/config.yaml``; the package's ``deployment.py`` wraps :class:`LangSAMDeployment`
with ``serve.deployment`` and binds it to the model directory. ``langsam-studio serve --engine
ray`` wraps the same class. This module imports no Ray (Starlette only at call time), so it is
tested like any other class.

* ``__init__`` loads the backend from the model directory (``langsam-config.json`` + ``weights/``,
  the layout of :mod:`inference.sagemaker_handler`) and WARMS UP with one real request, so the
  first client request does not pay for lazy initialisation (CUDA kernels, the first encode).
  Ray's ``/-/healthz`` (and so the container's ``/ping``) answers 200 before this runs and after
  it fails; the deploy tool's smoke invocation is the real readiness check.
* ``__call__`` answers ``POST /`` with the SageMaker contract: the body and ``Content-Type`` of
  ``InvokeEndpoint``, the ``X-Amzn-SageMaker-*`` request headers (custom attributes, session id,
  inference id), JSON errors with the protocol's status codes, and the ``X-Amzn-SageMaker-*``
  response headers the container's adapter passes back (``New-Session-Id``; the
  ``Custom-Attributes`` carry ``replica``, ``image-cache`` and ``embedding-cache`` so a client
  or a test can see whether a click re-encoded the image).

One request runs at a time per replica (the backend is not thread-safe); Ray routes the rest to
other replicas or queues them.

Session affinity with several replicas: Ray's consistent-hash router hashes the
``X-Amzn-SageMaker-Session-Id`` header. The request that opens a session carries the literal
``NEW_SESSION``, so it lands wherever that word hashes; a random new session id would then hash to
any replica, most likely one without the image. So the opening replica picks, among random
32-hex-digit ids, one that the router maps back to itself (:func:`affinity_session_ids`: the
id's hash falls just below one of this replica's own virtual nodes on the ring, computed from
its unique id as the router does). A replica that still gets a session it did not open (the
replica set changed) adopts it when the client brings the image again (``ImageNotCached`` ->
one re-upload; :meth:`inference.server.runner.SegmentationRunner._session_headers`).

In a SageMaker Batch Transform job the body is a bare image with no prompt header: the prompt is
the job's ``LANGSAM_BATCH_PROMPT`` (validated in ``__init__``), and a refused record is answered
200 with its error body (:mod:`inference.batch_prompt`).
"""

from __future__ import annotations

import asyncio
import bisect
import io
import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from inference.batch_prompt import check_batch_prompt, describe_batch_prompt, record_status, with_batch_prompt
from inference.protocol import (
    CUSTOM_ATTRIBUTES_HEADER,
    JSON_TYPE,
    MAX_PAYLOAD_BYTES,
    NEW_SESSION_HEADER,
    ProtocolError,
    SegmentRequest,
    encode_error,
    media_type,
)
from inference.server.errors import error_info
from inference.server.runner import RunnerLimits, RunResult, SegmentationRunner, header

DEPLOYMENT_NAME = "LangSAM"
APP_NAME = "langsam"
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"


def _log(message: str) -> None:
    # print, not logging: Ray copies a replica's stderr into its logs (and CloudWatch on SageMaker)
    print(f"LangSAM[ray]: {message}", file=sys.stderr, flush=True)


def warm_up_request(*, text: bool) -> SegmentRequest:
    """A small real request every backend can answer (text for text-only backends)."""
    from PIL import Image, ImageDraw

    from inference.prompts import Box, Prompt

    canvas = Image.new("RGB", (320, 240), (30, 30, 30))
    ImageDraw.Draw(canvas).ellipse((100, 60, 220, 180), fill=(230, 200, 40))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    prompt = Prompt(text="object.") if text else Prompt(box=Box(x0=90, y0=50, x1=230, y1=190), multimask=False)
    return SegmentRequest(prompt=prompt, image=buf.getvalue())


def affinity_session_ids(
    replica_unique_id: str,
    *,
    num_virtual_nodes: int,
    hash_bytes: Callable[[bytes], int],
    window_fraction: float = 2.0**-18,
    max_tries: int = 200_000,
    token_hex: Callable[[int], str] = secrets.token_hex,
) -> Callable[[], str]:
    """A factory of session ids the consistent-hash router sends to this replica.

    The router owns a ring of ``num_virtual_nodes`` hashes ``hash_bytes(f"{unique_id}:{i}")`` per
    replica and routes a key to the first virtual node whose hash is greater than the key's. Only
    this replica's nodes are known here, so an id is accepted when its hash lies at most
    ``window_fraction`` of the ring below one of them: another replica's node would have to fall
    into that gap (probability ~ nodes x window / 2, about 2e-4 per other replica with 100
    nodes). ~2,600 random draws on average (a few ms); after ``max_tries`` a plain random id
    (the replica that gets it adopts the session when the image is sent again). ``token_hex``
    draws the candidates (tests pass a seeded one)."""
    own = sorted(hash_bytes(f"{replica_unique_id}:{i}".encode()) for i in range(num_virtual_nodes))
    window = int(2**64 * window_fraction)

    def new_id() -> str:
        for _ in range(max_tries):
            candidate = token_hex(16)
            h = hash_bytes(candidate.encode())
            j = bisect.bisect_right(own, h)
            if j < len(own) and own[j] - h <= window:
                return candidate
        return token_hex(16)

    return new_id


def _ray_session_ids() -> Callable[[], str] | None:
    """:func:`affinity_session_ids` for this replica when its deployment routes by consistent
    hashing (Ray's router, its hash and vnode count); None otherwise (outside Ray, another router,
    or ``LANGSAM_RAY_AFFINE_SESSION_IDS=0``: random ids, adopted by whichever replica gets them)."""
    if os.environ.get("LANGSAM_RAY_AFFINE_SESSION_IDS", "1").strip() == "0":
        return None
    try:  # (the ignores: ray is optional, not a dependency, and absent from the dev environment)
        from ray import serve  # type: ignore[import-not-found]
        from ray.serve.experimental import consistent_hash_router as chr_  # type: ignore[import-not-found]

        context = serve.get_replica_context()
        router = context._deployment_config.request_router_config
        if "ConsistentHashRouter" not in str(getattr(router, "request_router_class", "")):
            return None
        kwargs = dict(getattr(router, "request_router_kwargs", None) or {})
        nodes = int(kwargs.get("num_virtual_nodes", chr_.DEFAULT_NUM_VIRTUAL_NODES))
        hash_bytes = chr_._hash_bytes
        unique_id = context.replica_id.unique_id
        int(hash_bytes(b"probe"))
    except Exception:  # noqa: BLE001 - another Ray version or router: random ids + adoption
        return None
    return affinity_session_ids(unique_id, num_virtual_nodes=nodes, hash_bytes=hash_bytes)


def _replica_tag() -> str:
    try:
        from ray import serve

        tag: str = serve.get_replica_context().replica_id.unique_id
        return tag
    except Exception:  # noqa: BLE001 - outside a replica (tests, plain Python)
        return f"pid{os.getpid()}"


class LangSAMDeployment:
    """Ray Serve deployment class (wrapped by ``serve.deployment`` in ``deployment.py``).

    ``model_dir``: a SageMaker-style model directory; or ``backend`` (+ ``options``) to build a
    backend by name (``langsam-studio serve --engine ray`` without a model directory).
    """

    def __init__(
        self,
        model_dir: str | None = None,
        *,
        backend: str | None = None,
        options: Mapping[str, Any] | None = None,
        warm_up: bool = True,
        device: str | None = None,
    ) -> None:
        started = time.monotonic()
        batch = check_batch_prompt()  # a Batch Transform job's prompt (LANGSAM_BATCH_PROMPT): refuse a bad one now
        if backend is None:
            from inference.sagemaker_handler import create_backend_from_model_dir

            model_dir = model_dir or os.environ.get("LANGSAM_MODEL_DIR") or "/opt/ml/model"
            _log(f"loading the model from {model_dir} ...")
            engine, limits = create_backend_from_model_dir(model_dir, device=device)
        else:
            from inference.backends.registry import create_backend

            _log(f"loading the {backend} backend ...")
            engine = create_backend(backend, device=device or "auto", **dict(options or {}))
            limits = RunnerLimits()
        engine.ensure_loaded()
        self.runner = SegmentationRunner(engine, limits=limits)
        session_ids = _ray_session_ids()
        self.session_affinity = session_ids is not None
        if session_ids is not None:  # NEW_SESSION: an id the router sends back to this replica
            self.runner.new_session_id = session_ids
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="langsam-infer")
        self.replica = _replica_tag()
        info = self.runner.info()
        self.load_seconds = time.monotonic() - started
        _log(
            f"model loaded in {self.load_seconds:.1f} s: backend={info.backend} model={info.model} "
            f"device={info.device} ({info.device_reason}) replica={self.replica}"
            f"{' session-ids=affine' if self.session_affinity else ''}"
        )
        if batch is not None:
            _log(describe_batch_prompt(batch))
        self.warm_up_seconds: float | None = None
        if warm_up:
            t0 = time.monotonic()
            request = warm_up_request(text=info.supports_text and not info.supports_points)
            self.runner.run(request, request_id="warm-up")
            self.warm_up_seconds = time.monotonic() - t0
            _log(f"warm-up request answered in {self.warm_up_seconds:.1f} s; ready")

    # -- the SageMaker contract -----------------------------------------------------------------
    def invoke(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, response headers) for one ``InvokeEndpoint`` body; never raises."""
        # Batch Transform sends bare image bodies: the job's prompt comes from LANGSAM_BATCH_PROMPT
        headers = with_batch_prompt(headers, header(headers, "Content-Type"))
        request_id = header(headers, INFERENCE_ID_HEADER) or uuid.uuid4().hex
        try:
            accept = media_type(header(headers, "Accept"))
            if accept not in ("", JSON_TYPE, "*/*", "application/*"):
                raise ProtocolError(
                    f"this model answers application/json, not {accept!r}",
                    field="Accept",
                    status=406,
                    code="NotAcceptable",
                )
            if len(body) > MAX_PAYLOAD_BYTES:
                raise ProtocolError(
                    f"the request is {len(body)} bytes, over SageMaker's 6 MiB limit",
                    status=413,
                    code="PayloadTooLarge",
                )
            result: RunResult = self.runner.handle(
                body, content_type=header(headers, "Content-Type"), headers=headers, request_id=request_id
            )
        except Exception as exc:  # noqa: BLE001 - every failure is a JSON error
            info = error_info(exc, request_id=request_id)
            if info.status >= 500:
                _log(f"request {request_id} failed: {type(exc).__name__}: {exc}")
            error = encode_error(
                status=info.status, code=info.code, message=info.message, field=info.field, request_id=request_id
            )
            # in a transform job a refused record is a 200 with this error body (inference.batch_prompt)
            return record_status(info.status), error, {CUSTOM_ATTRIBUTES_HEADER: f"replica={self.replica}"}
        out = {
            CUSTOM_ATTRIBUTES_HEADER: (
                f"replica={self.replica}, image-cache={result.headers.get('X-LangSAM-Image-Cache', 'miss')}, "
                f"embedding-cache={result.headers.get('X-LangSAM-Embedding-Cache', 'miss')}"
            ),
        }
        if NEW_SESSION_HEADER in result.headers:
            out[NEW_SESSION_HEADER] = result.headers[NEW_SESSION_HEADER]
        return 200, result.body, out

    async def __call__(self, request: Any) -> Any:
        """Starlette request in (``POST /``), Starlette response out."""
        from starlette.responses import Response

        if request.method != "POST":
            body = encode_error(
                status=405, code="MethodNotAllowed", message="POST the request body to / (InvokeEndpoint)"
            )
            return Response(body, status_code=405, media_type=JSON_TYPE)
        payload = await request.body()
        headers = {k: v for k, v in request.headers.items()}
        loop = asyncio.get_running_loop()
        status, body, out = await loop.run_in_executor(self._executor, self.invoke, payload, headers)
        return Response(body, status_code=status, media_type=JSON_TYPE, headers=out)
