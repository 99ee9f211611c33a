"""What every remote backend shares: image ids, the first upload, silent re-sends, latest-wins.

A remote backend answers prompts on another machine that speaks our wire protocol
(:mod:`inference.protocol`): our own server (:mod:`inference.backends.server_backend`) or a
SageMaker endpoint (``cloud.endpoint.sagemaker_backend``). Subclasses only provide the
transport (:meth:`RemoteBackend._exchange`); the rest is here:

* **The image goes over the wire once.** The first request for an image (``encode``, i.e.
  prefetch, or the first click) sends the image's ORIGINAL bytes from its ``source`` (a JPEG is
  ~10x smaller than its pixels), as the raw body of an ``encode_only`` request; the server
  decodes and encodes it once and answers its ``image_id``. Every later click sends only that id
  and the prompt (a few hundred bytes). Without a source (an array alone) or when the original
  would pass the transport's real-time limit, the pixels are re-encoded (PNG, or JPEG when PNG is
  still too big) and :attr:`notice` says so.
* **Eviction is invisible.** An ``ImageNotCached`` answer (the server restarted or evicted the
  image) re-sends the image once, silently.
* **Refinement works.** Geometry prompts ask for the low-resolution logits back
  (``return_logits``) so the next click can send them as ``mask_input``.
* **Latest wins.** Every call is abortable: the transport runs it where it can be abandoned (a
  helper thread with its own connection) and returns as soon as the cancel token is set, so a
  superseded call never delays the next one.
* **Where and how fast.** :meth:`call_status` is one line for the status bar
  (``"server http://gpu:8765 · 38 ms"``), :attr:`last_error` the last failure in words.

Backends are single-threaded (one thread drives them); only the transport's helper threads run
beside it, and they touch nothing but their own connection.
"""

from __future__ import annotations

import abc
import dataclasses
import io
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from inference.backends.base import SegmentationBackend
from inference.cancel import CancelToken, check
from inference.errors import InferenceError, PromptError
from inference.images import ImageSource
from inference.prompts import Prompt
from inference.protocol import (
    MAX_PAYLOAD_BYTES,
    ErrorInfo,
    ProtocolError,
    SegmentRequest,
    decode_error,
    decode_response,
    encode_request,
    request_object,
)
from inference.results import BackendInfo, Prediction

MAX_REMEMBERED_IMAGES = 512  # image key -> server image id (a few bytes each)


class RemoteError(InferenceError):
    """A remote call failed; ``str(err)`` says where, what happened and what to do."""

    def __init__(self, message: str, *, info: ErrorInfo | None = None) -> None:
        super().__init__(message)
        self.info = info

    @property
    def code(self) -> str:
        return self.info.code if self.info is not None else "Unavailable"


class RemoteUnavailableError(RemoteError):
    """The server or endpoint cannot be reached (refused, reset, timed out, DNS)."""


@dataclass(frozen=True, kw_only=True)
class Exchange:
    """One successful (2xx) answer of the transport."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    bytes_sent: int = 0  # request body + headers as sent (for benchmarks)
    seconds: float = 0.0


class RemoteBackend(SegmentationBackend):
    """Base of the remote backends. Subclasses set ``name`` and implement :meth:`_exchange`,
    :meth:`_fetch_info` and :attr:`where`."""

    supports_text = False  # set per instance from what the server says
    supports_points = True
    needs_weights = False
    raw_header: str = "X-Amzn-SageMaker-Custom-Attributes"  # where a raw-image request's JSON goes
    max_upload_bytes: int = MAX_PAYLOAD_BYTES  # the real-time limit of one request

    def __init__(self, *, device: str = "auto", cache_bytes: int = 0, timeout_s: float = 75.0,
                 return_logits: bool | None = None, **options: Any) -> None:
        super().__init__(device=device, cache_bytes=cache_bytes, **options)
        self.timeout_s = float(timeout_s)
        self.return_logits = return_logits  # None: for geometry prompts (a refinement may follow)
        self._ids: OrderedDict[str, str] = OrderedDict()  # local image key -> server image id
        self._remote: dict[str, Any] = {}
        self.last_seconds: float | None = None
        self.last_error: str = ""
        self.last_bytes_sent = 0
        self.uploaded_by: tuple[str, str] | None = None  # (backend, model) that took the last upload
        self.notice = ""  # e.g. "re-encoded a 9.1 MiB file to fit the 6 MiB limit"

    # -- for subclasses ----------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def where(self) -> str:
        """A few words naming the remote side: ``"server http://gpu:8765"``."""

    @abc.abstractmethod
    def _exchange(self, body: bytes, *, content_type: str, headers: Mapping[str, str],
                  cancel: CancelToken | None, timeout: float) -> Exchange:
        """Send one request. Returns a 2xx answer; raises :class:`RemoteError` (with ``info``
        for an answer in the protocol's error shape), :class:`RemoteUnavailableError` or
        ``Cancelled`` (at once when ``cancel`` is set, abandoning the call)."""

    @abc.abstractmethod
    def _fetch_info(self) -> dict[str, Any]:
        """What the remote side runs: ``{"backend", "model", "device", "supports_text", ...}``."""

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self) -> None:
        self._remote = dict(self._fetch_info())
        text = self._remote.get("supports_text")
        self.supports_text = bool(text)  # type: ignore[misc]  # known only once the server said
        points = self._remote.get("supports_points")
        self.supports_points = True if points is None else bool(points)  # type: ignore[misc]
        limit = (self._remote.get("limits") or {}).get("max_request_bytes")
        if isinstance(limit, int) and limit > 0:
            self.max_upload_bytes = min(self.max_upload_bytes, limit)

    def unload(self) -> None:
        self._ids.clear()
        super().unload()

    def info(self) -> BackendInfo:
        remote = self._remote
        backend = str(remote.get("backend") or "unknown")
        device = str(remote.get("device") or "?")
        return BackendInfo(
            backend=backend,
            model=str(remote.get("model") or "?"),
            device=self.call_status(),
            device_reason=f"runs remotely ({self.where}) on its {device}",
            supports_text=self.supports_text,
            supports_points=self.supports_points,
        )

    def call_status(self) -> str:
        """One line for the status bar: where inference runs, the last round trip or error."""
        if self.last_error:
            return f"{self.where} · failed: {self.last_error}"
        if self.last_seconds is None:
            return self.where
        return f"{self.where} · {self.last_seconds * 1000:.0f} ms"

    # -- work --------------------------------------------------------------------------------
    def is_encoded(self, image_key: str) -> bool:
        return image_key in self._ids

    def encode(self, image: np.ndarray, *, image_key: str | None = None, cancel: CancelToken | None = None,
               source: ImageSource | None = None) -> str:
        """Prefetch: upload the image (its original bytes) and have the server encode it."""
        key = image_key or self.image_key(image)
        if key in self._ids:
            return key
        self._upload(image, key, source, cancel)
        return key

    def predict(self, image: np.ndarray, prompt: Prompt, *, image_key: str | None = None,
                cancel: CancelToken | None = None, source: ImageSource | None = None) -> Prediction:
        height, width = image.shape[:2]
        prompt.validate(width=width, height=height)
        if prompt.is_text and not self.supports_text:
            raise PromptError(f"the {self.where} runs the '{self._remote.get('backend')}' backend, which "
                              "answers points and boxes, not text", field="text")
        check(cancel)
        key = image_key or self.image_key(image)
        want_logits = self.return_logits if self.return_logits is not None else not prompt.is_text
        for attempt in (0, 1):
            image_id = self._ids.get(key)
            if image_id is None:
                image_id = self._upload(image, key, source, cancel)
            request = SegmentRequest(prompt=prompt, image_id=image_id, return_logits=want_logits)
            body, content_type, headers = encode_request(request, max_bytes=self.max_upload_bytes)
            try:
                answer = self._call(body, content_type=content_type, headers=headers, cancel=cancel)
            except RemoteError as exc:
                if exc.code == "ImageNotCached" and attempt == 0:  # evicted or restarted: re-send once
                    self._ids.pop(key, None)
                    continue
                raise
            response = decode_response(answer.body)
            self._ids.move_to_end(key)
            timings = dict(response.prediction.timings)
            timings["roundtrip_ms"] = answer.seconds * 1000.0
            return dataclasses.replace(response.prediction, image_key=key, timings=MappingProxyType(timings))
        raise AssertionError("unreachable")

    # -- pieces ------------------------------------------------------------------------------
    def _upload(self, image: np.ndarray, key: str, source: ImageSource | None, cancel: CancelToken | None) -> str:
        data = self._image_bytes(image, source)
        header = json.dumps(request_object(SegmentRequest(prompt=Prompt(), encode_only=True), include_image=False),
                            separators=(",", ":"))
        answer = self._call(data, content_type=_sniff(data), headers={self.raw_header: header}, cancel=cancel)
        response = decode_response(answer.body)
        if response.prediction.image_size != tuple(image.shape[:2]):
            raise RemoteError(
                f"the {self.where} decoded the image as {response.prediction.image_size[1]}x"
                f"{response.prediction.image_size[0]}, not {image.shape[1]}x{image.shape[0]}: the file changed "
                "on disk since it was opened; open it again")
        self._ids[key] = response.image_id
        self.uploaded_by = (response.prediction.backend, response.prediction.model)
        while len(self._ids) > MAX_REMEMBERED_IMAGES:
            self._ids.popitem(last=False)
        return response.image_id

    def _image_bytes(self, image: np.ndarray, source: ImageSource | None) -> bytes:
        """The original file's bytes when they fit the limit, else re-encoded pixels (said in
        :attr:`notice`)."""
        original: bytes | None = None
        if source is not None:
            try:
                original = source.read_bytes()
            except InferenceError:
                original = None  # the pixels are authoritative: send them instead
        if original is not None and len(original) <= self.max_upload_bytes:
            self.notice = ""
            return original
        data = _png(image)
        if len(data) > self.max_upload_bytes:
            data = _jpeg_to_fit(image, self.max_upload_bytes)
        if original is not None:
            self.notice = (f"the image file is {len(original) / 2**20:.1f} MiB, over the {self.where}'s "
                           f"{self.max_upload_bytes / 2**20:.0f} MiB limit: sent re-encoded "
                           f"({len(data) / 2**20:.1f} MiB)")
        return data

    def _call(self, body: bytes, *, content_type: str, headers: Mapping[str, str],
              cancel: CancelToken | None) -> Exchange:
        try:
            answer = self._exchange(body, content_type=content_type, headers=headers, cancel=cancel,
                                    timeout=self.timeout_s)
        except RemoteError as exc:
            self.last_error = _short(str(exc))
            raise
        except ProtocolError as exc:  # e.g. a malformed answer
            self.last_error = _short(str(exc))
            raise RemoteError(f"the {self.where} answered something this app cannot read: {exc}") from None
        self.last_error = ""
        self.last_seconds = answer.seconds
        self.last_bytes_sent = answer.bytes_sent
        return answer

    def error_from_body(self, status: int, body: bytes) -> RemoteError:
        """The :class:`RemoteError` for an error answer in the protocol's (or SageMaker's) shape."""
        info = decode_error(body)
        if info.status == 0:
            info = dataclasses.replace(info, status=status)
        if info.code == "Unauthorized" or status in (401, 403):
            text = f"the {self.where} refused the token ({info.message}); check the token in Settings → Remote"
        else:
            text = f"the {self.where} answered {info.status or status}: {info.message}"
            if info.field:
                text += f" (field {info.field})"
        return RemoteError(text, info=info)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sniff(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "application/octet-stream"


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[..., :3])).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _jpeg_to_fit(image: np.ndarray, limit: int) -> bytes:
    from PIL import Image

    pil = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    data = b""
    for quality in (95, 90, 80, 70, 50):
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=quality)
        data = buf.getvalue()
        if len(data) <= limit:
            return data
    raise RemoteError(f"the image does not fit the {limit / 2**20:.0f} MiB request limit even as a JPEG; "
                      "use a smaller image or a local backend")

