"""The framework-free core of serving: request bytes in, response bytes out, one backend.

Used by the HTTP server's single inference thread and by the SageMaker handler (one per
TorchServe worker). Not thread-safe (the backend is not): one thread calls :meth:`handle`.

Repeated clicks on one image neither resend nor re-decode nor re-encode it: decoded images are
kept by id in a byte-bounded LRU, sessions (``X-Amzn-SageMaker-Session-Id``) point at the last
image sent in them, and the backend's own cache keeps the embedding under a key derived from
the image's bytes.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import numpy as np

from inference.backends.base import SegmentationBackend
from inference.cancel import CancelToken, check
from inference.errors import Cancelled
from inference.images import load_image
from inference.lru import ByteBoundedLRU
from inference.protocol import (
    JSON_TYPE,
    MAX_PAYLOAD_BYTES,
    NEW_SESSION,
    NEW_SESSION_HEADER,
    SESSION_HEADER,
    ProtocolError,
    SegmentRequest,
    check_id,
    check_text_tokens,
    content_id,
    decode_request,
    encode_response,
    is_content_id,
)
from inference.results import BackendInfo, Prediction, PredictionKind

# additive protocol capabilities every runner has (``/info`` ``features``; the server adds
# ``instruction`` when an assistant is configured): prompt.mask_input_ref (refine with logits the
# server kept) and options.keep_logits (keep them without sending the arrays)
RUNNER_FEATURES = ("mask_input_ref", "keep_logits")


def unknown_capabilities() -> dict[str, Any]:
    """:meth:`SegmentationRunner.capabilities` before a model is loaded: only the features are known."""
    return {
        "supports_text": None,
        "supports_points": None,
        "supports_exemplars": None,
        "mask_input_size": None,
        "features": list(RUNNER_FEATURES),
    }


IMAGE_CACHE_HEADER = "X-LangSAM-Image-Cache"  # "hit" when the image came from the cache


@dataclass(frozen=True, kw_only=True)
class RunnerLimits:
    max_image_pixels: int = 40_000_000
    max_response_bytes: int = MAX_PAYLOAD_BYTES
    image_cache_bytes: int = 512 * 2**20
    max_sessions: int = 4096
    session_ttl_s: int = 3600
    # peak bytes one image may take while decoding, estimated from its header before decoding
    # (width x height x bands of the stored mode + the RGB result; palette and 1-bit images count
    # at their decoded size)
    max_decode_bytes: int = 1024 * 2**20
    # CPU budget of one request: work whose estimate (backend.estimate_seconds) is over
    # cpu_budget_s is refused up front (422 TooMuchWork); running work is stopped once it takes
    # budget_factor x its estimate (at least min_budget_s). None: no budget (the SageMaker handler).
    cpu_budget_s: float | None = None
    budget_factor: float = 10.0
    min_budget_s: float = 5.0
    max_aliases: int = 16384  # client-chosen image ids remembered (each maps to a content id)
    # the low-resolution logits of answers that returned or kept them (return_logits or keep_logits
    # -> logits_ref), kept
    # for refinement by reference (prompt.mask_input_ref), float16 as they travel: 128 KiB per SAM 2
    # candidate
    logits_cache_bytes: int = 64 * 2**20


@dataclass(frozen=True, kw_only=True, eq=False)
class RunResult:
    body: bytes
    image_id: str
    prediction: Prediction
    content_type: str = JSON_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, eq=False)
class _CachedImage:
    pixels: np.ndarray
    source_id: str  # content id of the encoded bytes it was decoded from (the backend's cache key)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup over any mapping."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for key, val in headers.items():
        if key.lower() == lower:
            return val
    return None


class _BudgetToken(CancelToken):
    """Cancelled when ``parent`` is, or once ``deadline`` (time.monotonic) has passed: the work
    of one request stops at its CPU budget even if nobody cancels it."""

    __slots__ = ("_parent", "deadline")

    def __init__(self, parent: CancelToken | None, deadline: float) -> None:
        super().__init__()
        self._parent = parent
        self.deadline = deadline

    @property
    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or self.expired or (self._parent is not None and self._parent.cancelled)

    def raise_if_cancelled(self) -> None:
        if self._parent is not None:
            self._parent.raise_if_cancelled()
        super().raise_if_cancelled()
        if self.expired:
            raise Cancelled("the request used up its CPU budget")


def _too_much_work(message: str) -> ProtocolError:
    return ProtocolError(message, field="image", status=422, code="TooMuchWork")


class SegmentationRunner:
    """Decodes a request, runs it on the backend, encodes the response (or raises).

    Image ids: a content id (the hash of the image bytes) names the same pixels for everyone. An
    id the client chose is an alias visible only in its ``scope`` (the caller's principal and
    session), cannot have a content id's shape, and cannot be re-pointed at other bytes while
    its image is cached (409): one client can never get its click answered on another's image.
    """

    def __init__(self, backend: SegmentationBackend, *, limits: RunnerLimits | None = None) -> None:
        self.backend = backend
        self.limits = limits or RunnerLimits()
        self.images: ByteBoundedLRU[_CachedImage] = ByteBoundedLRU(max_bytes=self.limits.image_cache_bytes)
        # session id -> (image id, expiry); the least recently used session goes first
        self._sessions: ByteBoundedLRU[tuple[str, float]] = ByteBoundedLRU(max_items=self.limits.max_sessions)
        # (scope, client-chosen id) -> content id
        self._aliases: ByteBoundedLRU[str] = ByteBoundedLRU(max_items=self.limits.max_aliases)
        # (scope, logits_ref) -> (content id of the image, each candidate's float16 logits or None)
        self.kept_logits: ByteBoundedLRU[tuple[str, tuple[np.ndarray | None, ...]]] = ByteBoundedLRU(
            max_bytes=self.limits.logits_cache_bytes
        )
        # the id of a session this runner opens (NEW_SESSION); the Ray deployment picks ids its
        # router sends back to the same replica
        self.new_session_id: Callable[[], str] = lambda: uuid.uuid4().hex
        self._info: BackendInfo | None = None

    def capabilities(self) -> dict[str, Any]:
        """What a client must know before prompting (``/info`` says it; an endpoint has no
        ``/info``, so the encode-only answer carries it too)."""
        info = self.info()
        return {
            "supports_text": info.supports_text,
            "supports_points": info.supports_points,
            "supports_exemplars": info.supports_exemplars,
            "mask_input_size": self.backend.mask_input_size(),
            "features": list(RUNNER_FEATURES),
        }

    def info(self) -> BackendInfo:
        if self._info is None:
            self._info = self.backend.info()
        return self._info

    # -- the whole request -------------------------------------------------------------------
    def handle(
        self,
        body: bytes | str,
        *,
        content_type: str | None,
        headers: Mapping[str, str] | None = None,
        cancel: CancelToken | None = None,
        request_id: str | None = None,
        scope: str = "",
    ) -> RunResult:
        started = time.perf_counter()
        request = decode_request(body, content_type=content_type, headers=headers)
        return self.run(request, headers=headers, cancel=cancel, request_id=request_id, started=started, scope=scope)

    def run(
        self,
        request: SegmentRequest,
        *,
        headers: Mapping[str, str] | None = None,
        cancel: CancelToken | None = None,
        request_id: str | None = None,
        started: float | None = None,
        scope: str = "",
        phrases: Sequence[str] | None = None,
    ) -> RunResult:
        """Run one request. ``scope`` names the caller (e.g. a hash of its credentials): ids the
        client chose are visible only within it (and within the request's session). ``phrases``:
        the assistant's phrases the caller turned ``prompt.instruction`` into (echoed in the answer)."""
        started = time.perf_counter() if started is None else started
        session = header(headers, SESSION_HEADER)
        if session is not None and session != NEW_SESSION:
            session = check_id(session.split(";", 1)[0].strip(), field=SESSION_HEADER)
        self._check_expected(request)
        if request.instruction is not None:  # the HTTP server resolves it before queueing; nobody else can
            raise ProtocolError(
                "this server has no prompt assistant: send prompt.text, or start it with --assistant-model",
                field="prompt.instruction",
                code="AssistantNotConfigured",
            )
        self._check_text(request)
        new_session = self.new_session_id() if session == NEW_SESSION else None
        alias_scope = f"{scope}/{new_session or session or ''}"
        kept = self._kept_for(request, alias_scope)
        if kept is not None and request.image is None and request.image_id is None:
            request = dataclasses.replace(request, image_id=kept[0])  # the reference names its image
        image_id, cached, hit, decode_ms = self._resolve_image(request, session, alias_scope)
        if request.encode_only:  # issue 9 part 3: prefetch (store + encode), an answer without objects
            result = self._encode_only(image_id, cached, hit, decode_ms, started, request_id, cancel)
            opened = self._session_headers(session, new_session, request, cached)
            return dataclasses.replace(result, headers={**result.headers, **opened})
        if kept is not None:  # the previous logits, kept here: no re-upload
            request = self._with_kept_logits(request, kept, cached.source_id)
        height, width = cached.pixels.shape[:2]
        if request.prompt.exemplars and not self.backend.supports_exemplars:  # SAM 3 only
            raise ProtocolError(
                f"the '{self.info().backend}' backend does not take exemplar boxes (prompts by example); "
                "serve the 'sam3' backend",
                field="prompt.exemplars",
            )
        # refinement logits must have the side this backend takes back (SAM 2: 256, SAM 3: 288)
        request.prompt.validate(
            width=width,
            height=height,
            allow_exemplars=self.backend.supports_exemplars,
            mask_input_size=self.backend.mask_input_size(),
        )
        info = self.info()
        if request.prompt.is_text and not info.supports_text:
            raise ProtocolError(
                f"the '{info.backend}' backend cannot take text prompts: click points or drag a "
                "box, or serve the 'langsam' backend",
                field="prompt.text",
            )
        if request.prompt.has_geometry and not request.prompt.is_text and not info.supports_points:
            raise ProtocolError(f"the '{info.backend}' backend cannot take point or box prompts", field="prompt.points")
        check(cancel)
        budget = self._budget(height, width, request)
        key = f"img-{cached.source_id}"
        already = self.backend.is_encoded(key)
        t1 = time.perf_counter()
        # predict encodes on a cache miss (text prompts only when something was detected)
        token = cancel if budget is None else _BudgetToken(cancel, time.monotonic() + budget)
        try:
            prediction = self.backend.predict(cached.pixels, request.prompt, image_key=key, cancel=token)
        except Cancelled:
            if isinstance(token, _BudgetToken) and token.expired and not (cancel is not None and cancel.cancelled):
                raise _too_much_work(
                    f"the request was stopped after {budget:.1f} s of work, its CPU budget for a "
                    f"{width}x{height} image on the '{self.info().backend}' backend; use a smaller image or a "
                    "tighter box"
                ) from None
            raise
        t2 = time.perf_counter()
        timings = dict(prediction.timings)
        timings.update(decode_ms=decode_ms, predict_ms=(t2 - t1) * 1000.0, total_ms=(t2 - started) * 1000.0)
        out_headers = {
            IMAGE_CACHE_HEADER: "hit" if hit else "miss",
            "X-LangSAM-Embedding-Cache": "hit" if already else "miss",
        }
        out_headers.update(self._session_headers(session, new_session, request, cached))
        prediction = _with_timings(prediction, timings)
        keeps = request.return_logits or request.keep_logits
        logits_ref = self._keep_logits(prediction, alias_scope, cached.source_id) if keeps else None
        body = encode_response(
            prediction,
            image_id=image_id,
            return_logits=request.return_logits,
            request_id=request_id,
            max_bytes=self.limits.max_response_bytes,
            logits_ref=logits_ref,
            phrases=phrases,
        )
        return RunResult(body=body, image_id=image_id, prediction=prediction, headers=out_headers)

    def _encode_only(
        self,
        image_id: str,
        cached: _CachedImage,
        hit: bool,
        decode_ms: float,
        started: float,
        request_id: str | None,
        cancel: CancelToken | None,
    ) -> RunResult:
        """Issue 9 part 3 (``options.encode_only``): the image is stored; encode it if needed and
        answer with no objects, so the clicks that follow only cost the decoder."""
        key = f"img-{cached.source_id}"
        already = self.backend.is_encoded(key)
        t1 = time.perf_counter()
        if not already:
            self.backend.encode(cached.pixels, image_key=key, cancel=cancel)
        t2 = time.perf_counter()
        info = self.info()
        prediction = Prediction(
            candidates=(),
            kind=PredictionKind.ALTERNATIVES,
            image_key=key,
            backend=info.backend,
            model=info.model,
            image_size=(int(cached.pixels.shape[0]), int(cached.pixels.shape[1])),
            timings=MappingProxyType(
                {"decode_ms": decode_ms, "encode_ms": (t2 - t1) * 1000.0, "total_ms": (t2 - started) * 1000.0}
            ),
        )
        body = encode_response(prediction, image_id=image_id, request_id=request_id, capabilities=self.capabilities())
        headers = {
            IMAGE_CACHE_HEADER: "hit" if hit else "miss",
            "X-LangSAM-Embedding-Cache": "hit" if already else "miss",
        }
        return RunResult(body=body, image_id=image_id, prediction=prediction, headers=headers)

    # -- pieces --------------------------------------------------------------------------------
    def _check_expected(self, request: SegmentRequest) -> None:
        info = self.info()
        if request.backend and request.backend != info.backend:
            raise ProtocolError(
                f"this server runs the '{info.backend}' backend, the request asks for '{request.backend}'",
                field="options.backend",
            )
        parts = {info.model, *(part.strip() for part in info.model.split("+"))}  # "gdino + sam2" for langsam
        if request.model and request.model not in parts:
            raise ProtocolError(
                f"this server runs model '{info.model}', the request asks for '{request.model}'", field="options.model"
            )

    def _check_text(self, request: SegmentRequest) -> None:
        """Text length in characters and in the text model's tokens, before any image work."""
        text = request.prompt.text
        if text is None or not self.info().supports_text:
            return  # geometry-only backends refuse text with their own message
        from inference.prompts import normalise_text

        normalised = normalise_text(text)  # PromptError over MAX_TEXT_CHARS -> 400 prompt.text
        if normalised:
            check_text_tokens(self.backend.count_text_tokens(normalised), self.backend.text_token_limit())

    def _budget(self, height: int, width: int, request: SegmentRequest) -> float | None:
        """Seconds of work this request may take (None: unlimited); refuses it up front if over."""
        cap = self.limits.cpu_budget_s
        if cap is None:
            return None
        estimate = self.backend.estimate_seconds(height, width, request.prompt)
        if estimate is None:
            return cap
        if estimate > cap:
            raise _too_much_work(
                f"this request would take about {estimate:.0f} s of CPU on the '{self.info().backend}' backend "
                f"({width}x{height} pixels), more than the server's {cap:g} s per request; send a smaller image"
            )
        return min(cap, max(self.limits.min_budget_s, self.limits.budget_factor * estimate))

    @staticmethod
    def _alias_key(scope: str, image_id: str) -> str:
        return f"{scope}\x00{image_id}"

    def _resolve_image(
        self, request: SegmentRequest, session: str | None, scope: str = ""
    ) -> tuple[str, _CachedImage, bool, float]:
        """(image id, cached image, whether it came from the cache, decode milliseconds)."""
        if request.image is not None:
            source_id = content_id(request.image)
            image_id = request.image_id or source_id
            alias = None
            if image_id != source_id:
                if is_content_id(image_id):
                    raise ProtocolError(
                        f"image_id '{image_id}' has the shape of a content id (32 hex digits) but is not this "
                        "image's: content ids are assigned by the server; choose another id or leave it out",
                        field="image_id",
                    )
                alias = self._alias_key(scope, image_id)
                bound = self._aliases.get(alias)
                if bound is not None and bound != source_id and self.images.get(bound) is not None:
                    raise ProtocolError(
                        f"image_id '{image_id}' already names a different image; choose a new id for a new image "
                        "(or leave image_id out: the response's content id names the image)",
                        field="image_id",
                        status=409,
                        code="ImageIdConflict",
                    )
            cached = self.images.get(source_id)
            if cached is not None:
                if alias is not None:
                    self._aliases.put(alias, source_id)
                return image_id, cached, True, 0.0
            t0 = time.perf_counter()
            pixels = load_image(
                request.image, max_pixels=self.limits.max_image_pixels, max_decode_bytes=self.limits.max_decode_bytes
            )
            decode_ms = (time.perf_counter() - t0) * 1000.0
            cached = _CachedImage(pixels=pixels, source_id=source_id)
            self.images.put(source_id, cached, nbytes=pixels.nbytes)  # counted in decoded bytes
            if alias is not None:
                self._aliases.put(alias, source_id)
            return image_id, cached, False, decode_ms
        if request.image_id is not None:
            if is_content_id(request.image_id):
                cached = self.images.get(request.image_id)
            else:
                bound = self._aliases.get(self._alias_key(scope, request.image_id))
                cached = self.images.get(bound) if bound is not None else None
            if cached is None:
                raise ProtocolError(
                    f"image '{request.image_id}' is not in the server's cache (evicted, or sent to "
                    "another instance): send the image again",
                    field="image_id",
                    status=404,
                    code="ImageNotCached",
                )
            return request.image_id, cached, True, 0.0
        if session is not None and session != NEW_SESSION:
            entry = self._sessions.get(session)
            session_image_id = entry[0] if entry is not None and entry[1] > time.monotonic() else None
            cached = self.images.get(session_image_id) if session_image_id is not None else None
            if session_image_id is None or cached is None:
                raise ProtocolError(
                    f"session '{session}' has no image on this server (expired or evicted): send the image again",
                    field=SESSION_HEADER,
                    status=404,
                    code="ImageNotCached",
                )
            return session_image_id, cached, True, 0.0
        raise ProtocolError(
            "the request has no image: send the image, or the image_id of one sent before", field="image"
        )

    def _session_headers(
        self, session: str | None, new_session: str | None, request: SegmentRequest, cached: _CachedImage
    ) -> dict[str, str]:
        """Remember the session's image; the ``New-Session-Id`` header when this request opened one.

        A session id this runner did not open is adopted only when it has the shape of the ids
        runners open (32 random hex digits: unguessable, so nobody can plant an image under an id
        another client will be given) and the request brings the image itself: a replica behind a
        router that hashed the id elsewhere (Ray Serve with several replicas), or this server after
        a restart. The caller is answered on its own image; any other made-up id names nothing."""
        headers: dict[str, str] = {}
        if session == NEW_SESSION and new_session is not None:
            expires = (datetime.now(timezone.utc) + timedelta(seconds=self.limits.session_ttl_s)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            headers[NEW_SESSION_HEADER] = f"{new_session}; Expires={expires}"
            self._remember_session(new_session, cached.source_id)
        elif session is not None and (
            self._sessions.get(session) is not None or (request.image is not None and is_content_id(session))
        ):
            self._remember_session(session, cached.source_id)
        return headers

    def _kept_for(self, request: SegmentRequest, scope: str) -> tuple[str, tuple[np.ndarray | None, ...]] | None:
        """The kept answer ``prompt.mask_input_ref`` names, for this caller (scope + session): (its
        image's content id, its logits); 404 ``LogitsNotCached`` when gone (the client then sends
        the array)."""
        ref = request.mask_input_ref
        if ref is None:
            return None
        kept = self.kept_logits.get((scope, ref.ref))
        if kept is None:
            raise _logits_not_cached(ref.ref)
        return kept

    def _with_kept_logits(
        self, request: SegmentRequest, kept: tuple[str, tuple[np.ndarray | None, ...]], source_id: str
    ) -> SegmentRequest:
        """``prompt.mask_input_ref`` -> ``prompt.mask_input`` (the logits must be of this image)."""
        ref = request.mask_input_ref
        assert ref is not None
        if kept[0] != source_id:
            raise _logits_not_cached(ref.ref)
        logits_of = kept[1]
        if ref.candidate >= len(logits_of) or logits_of[ref.candidate] is None:
            raise ProtocolError(
                f"the answer '{ref.ref}' has no logits for object {ref.candidate} (it had {len(logits_of)} objects)",
                field="prompt.mask_input_ref.candidate",
            )
        logits = logits_of[ref.candidate]
        assert logits is not None
        prompt = dataclasses.replace(request.prompt, mask_input=logits.astype(np.float32))
        return dataclasses.replace(request, prompt=prompt, mask_input_ref=None)

    def _keep_logits(self, prediction: Prediction, scope: str, source_id: str) -> str | None:
        """Keep the answer's logits (float16, exactly as they would travel) under a new reference."""
        kept = tuple(_wire_logits(c.low_res_logits) for c in prediction.candidates)
        if not any(k is not None for k in kept):
            return None
        ref = secrets.token_hex(6)  # 48 random bits, and only valid for this caller (scope + session)
        self.kept_logits.put((scope, ref), (source_id, kept), nbytes=sum(k.nbytes for k in kept if k is not None))
        return ref

    def _remember_session(self, session: str, image_id: str) -> None:
        self._sessions.put(session, (image_id, time.monotonic() + self.limits.session_ttl_s))


def _logits_not_cached(ref: str) -> ProtocolError:
    return ProtocolError(
        f"logits '{ref}' are not kept on this server for this image (evicted, restarted, another instance, or "
        "another caller's): send prompt.mask_input instead",
        field="prompt.mask_input_ref",
        status=404,
        code="LogitsNotCached",
    )


def _wire_logits(logits: np.ndarray | None) -> np.ndarray | None:
    """Logits as :func:`inference.protocol.encode_logits` sends them (square float16), or None."""
    if logits is None:
        return None
    arr = np.asarray(logits, dtype=np.float32)
    side = int(arr.shape[-1]) if arr.ndim >= 2 and arr.size == arr.shape[-1] ** 2 else 256
    return np.clip(arr.reshape(side, side), -65000.0, 65000.0).astype("<f2")


def _with_timings(prediction: Prediction, timings: dict[str, float]) -> Prediction:
    return dataclasses.replace(prediction, timings=MappingProxyType(timings))
