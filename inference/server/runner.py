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
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Mapping

import numpy as np

from inference.backends.base import SegmentationBackend
from inference.cancel import CancelToken, check
from inference.embedding_cache import ByteBoundedLRU
from inference.images import load_image
from inference.protocol import (JSON_TYPE, MAX_PAYLOAD_BYTES, NEW_SESSION, NEW_SESSION_HEADER, SESSION_HEADER,
                                ProtocolError, SegmentRequest, check_id, content_id, decode_request,
                                encode_response)
from inference.results import BackendInfo, Prediction

IMAGE_CACHE_HEADER = "X-LangSAM-Image-Cache"  # "hit" when the image came from the cache


@dataclass(frozen=True, kw_only=True)
class RunnerLimits:
    max_image_pixels: int = 40_000_000
    max_response_bytes: int = MAX_PAYLOAD_BYTES
    image_cache_bytes: int = 512 * 2**20
    max_sessions: int = 4096
    session_ttl_s: int = 3600


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


class SegmentationRunner:
    """Decodes a request, runs it on the backend, encodes the response (or raises)."""

    def __init__(self, backend: SegmentationBackend, *, limits: RunnerLimits | None = None) -> None:
        self.backend = backend
        self.limits = limits or RunnerLimits()
        self.images: ByteBoundedLRU[_CachedImage] = ByteBoundedLRU(max_bytes=self.limits.image_cache_bytes)
        self._sessions: OrderedDict[str, tuple[str, float]] = OrderedDict()  # id -> (image id, expiry)
        self._info: BackendInfo | None = None

    def info(self) -> BackendInfo:
        if self._info is None:
            self._info = self.backend.info()
        return self._info

    # -- the whole request -------------------------------------------------------------------
    def handle(self, body: bytes | str, *, content_type: str | None, headers: Mapping[str, str] | None = None,
               cancel: CancelToken | None = None, request_id: str | None = None) -> RunResult:
        started = time.perf_counter()
        request = decode_request(body, content_type=content_type, headers=headers)
        return self.run(request, headers=headers, cancel=cancel, request_id=request_id, started=started)

    def run(self, request: SegmentRequest, *, headers: Mapping[str, str] | None = None,
            cancel: CancelToken | None = None, request_id: str | None = None,
            started: float | None = None) -> RunResult:
        started = time.perf_counter() if started is None else started
        session = header(headers, SESSION_HEADER)
        if session is not None and session != NEW_SESSION:
            session = check_id(session.split(";", 1)[0].strip(), field=SESSION_HEADER)
        self._check_expected(request)
        image_id, cached, hit, decode_ms = self._resolve_image(request, session)
        height, width = cached.pixels.shape[:2]
        request.prompt.validate(width=width, height=height)
        info = self.info()
        if request.prompt.is_text and not info.supports_text:
            raise ProtocolError(f"the '{info.backend}' backend cannot take text prompts: click points or drag a "
                                "box, or serve the 'langsam' backend", field="prompt.text")
        if request.prompt.has_geometry and not request.prompt.is_text and not info.supports_points:
            raise ProtocolError(f"the '{info.backend}' backend cannot take point or box prompts",
                                field="prompt.points")
        check(cancel)
        key = f"img-{cached.source_id}"
        already = self.backend.is_encoded(key)
        t1 = time.perf_counter()
        # predict encodes on a cache miss (text prompts only when something was detected)
        prediction = self.backend.predict(cached.pixels, request.prompt, image_key=key, cancel=cancel)
        t2 = time.perf_counter()
        timings = dict(prediction.timings)
        timings.update(decode_ms=decode_ms, predict_ms=(t2 - t1) * 1000.0, total_ms=(t2 - started) * 1000.0)
        out_headers = {IMAGE_CACHE_HEADER: "hit" if hit else "miss",
                       "X-LangSAM-Embedding-Cache": "hit" if already else "miss"}
        if session == NEW_SESSION:
            session = uuid.uuid4().hex
            expires = (datetime.now(timezone.utc) + timedelta(seconds=self.limits.session_ttl_s)).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            out_headers[NEW_SESSION_HEADER] = f"{session}; Expires={expires}"
        if session is not None:
            self._remember_session(session, image_id)
        prediction = _with_timings(prediction, timings)
        body = encode_response(prediction, image_id=image_id, return_logits=request.return_logits,
                               request_id=request_id, max_bytes=self.limits.max_response_bytes)
        return RunResult(body=body, image_id=image_id, prediction=prediction, headers=out_headers)

    # -- pieces --------------------------------------------------------------------------------
    def _check_expected(self, request: SegmentRequest) -> None:
        info = self.info()
        if request.backend and request.backend != info.backend:
            raise ProtocolError(f"this server runs the '{info.backend}' backend, the request asks for "
                                f"'{request.backend}'", field="options.backend")
        parts = {info.model, *(part.strip() for part in info.model.split("+"))}  # "gdino + sam2" for langsam
        if request.model and request.model not in parts:
            raise ProtocolError(f"this server runs model '{info.model}', the request asks for '{request.model}'",
                                field="options.model")

    def _resolve_image(self, request: SegmentRequest, session: str | None
                       ) -> tuple[str, _CachedImage, bool, float]:
        """(image id, cached image, whether it came from the cache, decode milliseconds)."""
        if request.image is not None:
            source_id = content_id(request.image)
            image_id = request.image_id or source_id
            cached = self.images.get(image_id)
            if cached is not None and cached.source_id == source_id:
                return image_id, cached, True, 0.0
            t0 = time.perf_counter()
            pixels = load_image(request.image, max_pixels=self.limits.max_image_pixels)
            decode_ms = (time.perf_counter() - t0) * 1000.0
            cached = _CachedImage(pixels=pixels, source_id=source_id)
            self.images.put(image_id, cached, nbytes=pixels.nbytes)
            return image_id, cached, False, decode_ms
        if request.image_id is not None:
            cached = self.images.get(request.image_id)
            if cached is None:
                raise ProtocolError(f"image '{request.image_id}' is not in the server's cache (evicted, or sent to "
                                    "another instance): send the image again", field="image_id", status=404,
                                    code="ImageNotCached")
            return request.image_id, cached, True, 0.0
        if session is not None and session != NEW_SESSION:
            entry = self._sessions.get(session)
            image_id = entry[0] if entry is not None and entry[1] > time.monotonic() else None
            cached = self.images.get(image_id) if image_id is not None else None
            if cached is None:
                raise ProtocolError(f"session '{session}' has no image on this server (expired or evicted): send "
                                    "the image again", field=SESSION_HEADER, status=404, code="ImageNotCached")
            self._sessions.move_to_end(session)
            return image_id, cached, True, 0.0
        raise ProtocolError("the request has no image: send the image, or the image_id of one sent before",
                            field="image")

    def _remember_session(self, session: str, image_id: str) -> None:
        self._sessions[session] = (image_id, time.monotonic() + self.limits.session_ttl_s)
        self._sessions.move_to_end(session)
        while len(self._sessions) > self.limits.max_sessions:
            self._sessions.popitem(last=False)


def _with_timings(prediction: Prediction, timings: dict[str, float]) -> Prediction:
    return dataclasses.replace(prediction, timings=MappingProxyType(timings))
