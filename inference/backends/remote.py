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
* **Refinement works, without re-sending logits.** Geometry prompts ask for the low-resolution
  logits back (``return_logits``) so the next click can refine with them. When the server keeps
  the logits it returns (``/info`` ``features`` has ``mask_input_ref``; tried optimistically on
  endpoints), the refinement click names them (``prompt.mask_input_ref``: the answer's
  ``logits_ref`` + the candidate's index, which also names the image) instead of uploading
  ~175 kB; logits the server no longer has (``404 LogitsNotCached``: evicted, another instance)
  are sent as the array once, silently. A server that also has ``keep_logits`` keeps the logits
  without sending them back (``options.keep_logits``: ~0.5 MB less per multimask click): the
  answer's candidates then carry read-only zero-cost placeholders of the right shape, which this
  backend recognises and names by reference. Should the server have lost them, they are made
  again: the prompt that made them is replayed (the decoder is deterministic; a chain of
  refinements replays from where the server still has logits, at most
  :data:`MAX_REPLAYS` deep); only when that prompt is forgotten too is the click answered from its
  points alone, and :attr:`notice` says so.
* **Sessions** (endpoints, :attr:`RemoteBackend.uses_sessions`): the image's upload opens a
  session (``NEW_SESSION``) and every click names it, so a router with session affinity (Ray
  Serve's consistent-hash router behind SageMaker) sends them to the replica holding the
  embedding; a replica that does not know the session answers ``ImageNotCached`` and gets the
  image once under the same session id.
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
from typing import Any, NamedTuple

import numpy as np

from inference.backends.base import SegmentationBackend
from inference.cancel import CancelToken, check
from inference.errors import InferenceError, PromptError
from inference.images import ImageSource
from inference.prompts import Prompt
from inference.protocol import (
    MAX_PAYLOAD_BYTES,
    NEW_SESSION,
    NEW_SESSION_HEADER,
    SESSION_HEADER,
    ErrorInfo,
    MaskInputRef,
    ProtocolError,
    SegmentRequest,
    decode_error,
    decode_response,
    encode_request,
    request_object,
)
from inference.results import BackendInfo, Prediction

MAX_REMEMBERED_IMAGES = 512  # image key -> server image id (a few bytes each)
MAX_REMEMBERED_LOGITS = 32  # (candidate logits -> the server's logits_ref) of the last answers
_REF_FIELDS = ("prompt.mask_input_ref", "options.keep_logits")  # what an older server does not know
MAX_REPLAYS = 8  # kept logits the server lost: how many earlier prompts may be replayed to make them again
_PLACEHOLDER_BASES: dict[int, np.ndarray] = {}  # side -> the read-only zeros every placeholder views


def kept_logits_placeholder(side: int) -> np.ndarray:
    """Stands for logits the server kept (``options.keep_logits``): a new read-only (side, side)
    float32 view of shared zeros, so it costs nothing and each one is its own object."""
    base = _PLACEHOLDER_BASES.get(side)
    if base is None:
        base = np.zeros((side, side), dtype=np.float32)
        base.flags.writeable = False
        base = _PLACEHOLDER_BASES.setdefault(side, base)
    view: np.ndarray = base.view()
    return view


def is_kept_logits_placeholder(logits: np.ndarray | None) -> bool:
    """Whether ``logits`` came from :func:`kept_logits_placeholder` (not real logits)."""
    return (
        logits is not None
        and logits.base is not None
        and logits.ndim == 2
        and logits.base is _PLACEHOLDER_BASES.get(logits.shape[-1])
    )


class _Kept(NamedTuple):
    """Logits the server kept for one candidate of an answer on this image."""

    key: str  # the image
    ref: str  # the answer's logits_ref
    candidate: int  # its index in the answer
    logits: np.ndarray  # what this backend handed on for them (a placeholder, or the array)
    made_by: Prompt  # replayed should the server lose them


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
    uses_sessions: bool = False  # open a session per image (NEW_SESSION) and name it in every click

    def __init__(
        self,
        *,
        device: str = "auto",
        cache_bytes: int = 0,
        timeout_s: float = 75.0,
        return_logits: bool | None = None,
        **options: Any,
    ) -> None:
        super().__init__(device=device, cache_bytes=cache_bytes, **options)
        self.timeout_s = float(timeout_s)
        self.return_logits = return_logits  # None: for geometry prompts (a refinement may follow)
        self._ids: OrderedDict[str, str] = OrderedDict()  # local image key -> server image id
        self._sessions: dict[str, str] = {}  # local image key -> session id (uses_sessions)
        self._kept: list[_Kept] = []  # the last answers' logits the server kept, oldest first
        self._replaying = 0  # how deep in replays this call is
        self.logits_by_ref: bool | None = None  # None: not known yet (tried; an old server says no)
        self.keeps_logits: bool | None = None  # options.keep_logits (None: not known yet, as above)
        self._remote: dict[str, Any] = {}
        self.last_seconds: float | None = None
        self.last_error: str = ""
        self.last_bytes_sent = 0
        self.last_bytes_received = 0  # the answer's body
        self.uploaded_by: tuple[str, str] | None = None  # (backend, model) that took the last upload
        self.uploaded_capabilities: Mapping[str, Any] | None = None  # what that upload's answer said
        self.notice = ""  # e.g. "re-encoded a 9.1 MiB file to fit the 6 MiB limit"
        self._notice_once = False  # the notice is about the last click only

    # -- for subclasses ----------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def where(self) -> str:
        """A few words naming the remote side: ``"server http://gpu:8765"``."""

    @abc.abstractmethod
    def _exchange(
        self, body: bytes, *, content_type: str, headers: Mapping[str, str], cancel: CancelToken | None, timeout: float
    ) -> Exchange:
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
        self.supports_exemplars = bool(self._remote.get("supports_exemplars"))  # type: ignore[misc]  # SAM 3
        limit = (self._remote.get("limits") or {}).get("max_request_bytes")
        if isinstance(limit, int) and limit > 0:
            self.max_upload_bytes = min(self.max_upload_bytes, limit)
        features = self._remote.get("features")
        if isinstance(features, list):
            self.logits_by_ref = "mask_input_ref" in features
            self.keeps_logits = "keep_logits" in features

    def unload(self) -> None:
        self._ids.clear()
        self._sessions.clear()
        self._kept.clear()
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
            supports_exemplars=self.supports_exemplars,
            where=self.where,
        )

    def mask_input_size(self) -> int | None:
        """What the server said (SAM 3: 288); older servers did not say: SAM 2's 256."""
        side = self._remote.get("mask_input_size", 256)
        return side if isinstance(side, int) or side is None else 256

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

    def encode(
        self,
        image: np.ndarray,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> str:
        """Prefetch: upload the image (its original bytes) and have the server encode it."""
        key = image_key or self.image_key(image)
        if key in self._ids:
            return key
        self._upload(image, key, source, cancel)
        return key

    def predict(
        self,
        image: np.ndarray,
        prompt: Prompt,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> Prediction:
        height, width = image.shape[:2]
        prompt.validate(
            width=width, height=height, allow_exemplars=self.supports_exemplars, mask_input_size=self.mask_input_size()
        )
        if prompt.is_text and not self.supports_text:
            raise PromptError(
                f"the {self.where} runs the '{self._remote.get('backend')}' backend, which "
                "answers points and boxes, not text",
                field="text",
            )
        check(cancel)
        key = image_key or self.image_key(image)
        if self._notice_once:
            self.notice, self._notice_once = "", False
        want_logits = self.return_logits if self.return_logits is not None else not prompt.is_text
        resent_image = resent_logits = regenerated = False
        while True:
            image_id = self._ids.get(key)
            if image_id is None:
                image_id = self._upload(image, key, source, cancel)
            by_ref = self.logits_by_ref is not False
            keep = want_logits and by_ref and self.keeps_logits is not False  # logits stay on the server
            ref = self._kept_ref(key, prompt.mask_input) if by_ref and not resent_logits else None
            mask_input = None if ref is not None else prompt.mask_input
            if is_kept_logits_placeholder(mask_input):  # the server lost them (or we forgot the name)
                mask_input = None
                self.notice = f"the {self.where} no longer had the previous mask: refined from the points alone"
                self._notice_once = True
            request = SegmentRequest(
                prompt=dataclasses.replace(prompt, mask_input=mask_input)
                if mask_input is not prompt.mask_input
                else prompt,
                image_id=image_id if ref is None else None,  # the reference names the image
                return_logits=want_logits and not keep,
                keep_logits=keep,
                mask_input_ref=ref,
            )
            body, content_type, headers = encode_request(request, max_bytes=self.max_upload_bytes)
            if self.uses_sessions and key in self._sessions:
                headers = {**headers, SESSION_HEADER: self._sessions[key]}
            try:
                answer = self._call(body, content_type=content_type, headers=headers, cancel=cancel)
            except RemoteError as exc:
                if exc.code == "ImageNotCached" and not resent_image:  # evicted, restarted, another replica
                    resent_image = True
                    self._ids.pop(key, None)  # re-sent once (under the same session id)
                    continue
                lost = exc.code == "LogitsNotCached" or _field(exc) == "prompt.mask_input_ref.candidate"
                if lost and ref is not None:
                    again = None if regenerated else self._regenerate(image, key, prompt.mask_input, source, cancel)
                    if again is not None:  # made again on the server: by reference to those
                        regenerated, prompt = True, dataclasses.replace(prompt, mask_input=again)
                        continue
                    resent_logits = True  # send the array once (a placeholder: the points alone)
                    continue
                if not self._learned_missing_feature(exc, ref=ref, keep=keep):
                    raise
                continue
            response = decode_response(answer.body)
            if ref is not None and self.logits_by_ref is None:
                self.logits_by_ref = True
            if keep and self.keeps_logits is None:
                self.keeps_logits = True
            self._ids.move_to_end(key)
            prediction = response.prediction
            if keep and response.logits_ref is not None:
                prediction = self._with_placeholders(prediction, response.logits_ref)
            self._remember_logits(key, response.logits_ref, prediction, prompt)
            timings = dict(prediction.timings)
            timings["roundtrip_ms"] = answer.seconds * 1000.0
            return dataclasses.replace(prediction, image_key=key, timings=MappingProxyType(timings))

    def _learned_missing_feature(self, exc: RemoteError, *, ref: MaskInputRef | None, keep: bool) -> bool:
        """An older server refused a field it does not know (while we were still finding out):
        stop using it and say to try again (logits then travel as before)."""
        field = _field(exc)
        if exc.code != "ValidationError" or field not in _REF_FIELDS:
            return False
        if field == "options.keep_logits" and keep and self.keeps_logits is None:
            self.keeps_logits = False
            return True
        if field == "prompt.mask_input_ref" and ref is not None and self.logits_by_ref is None:
            self.logits_by_ref = self.keeps_logits = False
            return True
        return False

    def _with_placeholders(self, prediction: Prediction, logits_ref: str) -> Prediction:
        """The answer with a placeholder per candidate for the logits the server kept under
        ``logits_ref`` (it sent none back)."""
        side = self.mask_input_size() or 256
        return dataclasses.replace(
            prediction,
            candidates=tuple(
                dataclasses.replace(c, low_res_logits=kept_logits_placeholder(side)) for c in prediction.candidates
            ),
        )

    def _kept_ref(self, key: str, logits: np.ndarray | None) -> MaskInputRef | None:
        """The server's name for ``logits`` (one of the last answers' candidates on this image)."""
        if logits is None:
            return None
        placeholder = is_kept_logits_placeholder(logits)  # found by identity only (all are zeros)
        for kept in reversed(self._kept):
            if kept.key != key:
                continue
            if kept.logits is logits or (
                not placeholder
                and not is_kept_logits_placeholder(kept.logits)
                and kept.logits.shape == logits.shape
                and np.array_equal(kept.logits, logits)
            ):
                return MaskInputRef(ref=kept.ref, candidate=kept.candidate)
        return None

    def _remember_logits(self, key: str, ref: str | None, prediction: Prediction, prompt: Prompt) -> None:
        if ref is None:
            return
        for index, candidate in enumerate(prediction.candidates):
            if candidate.low_res_logits is not None:
                self._kept.append(_Kept(key, ref, index, candidate.low_res_logits, prompt))
        del self._kept[: max(0, len(self._kept) - MAX_REMEMBERED_LOGITS)]

    def _regenerate(
        self,
        image: np.ndarray,
        key: str,
        logits: np.ndarray | None,
        source: ImageSource | None,
        cancel: CancelToken | None,
    ) -> np.ndarray | None:
        """Kept logits the server lost (evicted, restarted, another replica), made again by
        replaying the prompt that made them; the same candidate of the new answer (a new
        placeholder), or None: not a placeholder, its prompt forgotten, or too deep."""
        if not is_kept_logits_placeholder(logits) or self._replaying >= MAX_REPLAYS:
            return None
        made = next((k for k in reversed(self._kept) if k.logits is logits and k.key == key), None)
        if made is None:
            return None
        self._replaying += 1
        try:
            again = self.predict(image, made.made_by, image_key=key, cancel=cancel, source=source)
        finally:
            self._replaying -= 1
        return again.candidates[made.candidate].low_res_logits if made.candidate < len(again.candidates) else None

    # -- pieces ------------------------------------------------------------------------------
    def _upload(self, image: np.ndarray, key: str, source: ImageSource | None, cancel: CancelToken | None) -> str:
        data = self._image_bytes(image, source)
        header = json.dumps(
            request_object(SegmentRequest(prompt=Prompt(), encode_only=True), include_image=False),
            separators=(",", ":"),
        )
        headers = {self.raw_header: header}
        if self.uses_sessions:  # open a session, or bring the image to a replica that did not know ours
            headers[SESSION_HEADER] = self._sessions.get(key, NEW_SESSION)
        answer = self._call(data, content_type=_sniff(data), headers=headers, cancel=cancel)
        response = decode_response(answer.body)
        opened = _header(answer.headers, NEW_SESSION_HEADER) or _header(answer.headers, "NewSessionId")
        if self.uses_sessions and opened:
            self._sessions[key] = opened.split(";", 1)[0].strip()
        if response.prediction.image_size != tuple(image.shape[:2]):
            raise RemoteError(
                f"the {self.where} decoded the image as {response.prediction.image_size[1]}x"
                f"{response.prediction.image_size[0]}, not {image.shape[1]}x{image.shape[0]}: the file changed "
                "on disk since it was opened; open it again"
            )
        self._ids[key] = response.image_id
        self.uploaded_by = (response.prediction.backend, response.prediction.model)
        self.uploaded_capabilities = response.capabilities
        while len(self._ids) > MAX_REMEMBERED_IMAGES:
            gone, _ = self._ids.popitem(last=False)
            self._sessions.pop(gone, None)
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
            self.notice = (
                f"the image file is {len(original) / 2**20:.1f} MiB, over the {self.where}'s "
                f"{self.max_upload_bytes / 2**20:.0f} MiB limit: sent re-encoded "
                f"({len(data) / 2**20:.1f} MiB)"
            )
        return data

    def _call(
        self, body: bytes, *, content_type: str, headers: Mapping[str, str], cancel: CancelToken | None
    ) -> Exchange:
        try:
            answer = self._exchange(
                body, content_type=content_type, headers=headers, cancel=cancel, timeout=self.timeout_s
            )
        except RemoteError as exc:
            self.last_error = _short(str(exc))
            raise
        except ProtocolError as exc:  # e.g. a malformed answer
            self.last_error = _short(str(exc))
            raise RemoteError(f"the {self.where} answered something this app cannot read: {exc}") from None
        self.last_error = ""
        self.last_seconds = answer.seconds
        self.last_bytes_sent = answer.bytes_sent
        self.last_bytes_received = len(answer.body)
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


def _field(exc: RemoteError) -> str | None:
    return exc.info.field if exc.info is not None else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)


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
    raise RemoteError(
        f"the image does not fit the {limit / 2**20:.0f} MiB request limit even as a JPEG; "
        "use a smaller image or a local backend"
    )
