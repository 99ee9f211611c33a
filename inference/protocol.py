"""The wire protocol (version 1) shared by the HTTP server, the SageMaker handler and the client.

One codec, both directions: ``encode_request``/``decode_request`` and
``encode_response``/``decode_response`` (plus ``encode_error``/``decode_error``). Masks travel
as COCO RLE (:mod:`inference.masks`), low-resolution logits as base64 float16. Nothing here
imports a web framework or boto3. The format is documented in ``docs/protocol.md``.

Two request shapes:

* JSON (``application/json``): ``{"protocol": 1, "image": <base64>, "image_id": ...,
  "prompt": {...}, "options": {...}}``;
* raw image bytes (``image/jpeg``, ``image/png``, ...) with the rest of that JSON object (no
  ``image``) in the ``X-Amzn-SageMaker-Custom-Attributes`` header (at most 1024 ASCII
  characters) or the ``X-LangSAM-Request`` header (our own server only).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

import numpy as np

from inference.errors import InferenceError
from inference.masks import mask_to_rle, rle_to_mask
from inference.prompts import Box, Exemplar, Point, Prompt
from inference.results import Candidate, Prediction, PredictionKind

PROTOCOL_VERSION = 1
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # SageMaker real-time request and response limit
MAX_CUSTOM_ATTRIBUTES = 1024  # SageMaker's limit on X-Amzn-SageMaker-Custom-Attributes
LOGITS_SHAPE = (256, 256)
# Low-resolution logits are square: 256x256 for SAM 2, 288x288 for SAM 3 (4x its ViT grid). The codec
# takes any side in this range; the runner checks the side the serving backend takes back.
MIN_LOGITS_SIDE, MAX_LOGITS_SIDE = 4, 512
MAX_EXEMPLARS = 64  # exemplar boxes per prompt (SAM 3 encodes each as a geometry token)

JSON_TYPE = "application/json"
IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/png",
        "image/webp",
        "image/tiff",
        "image/bmp",
        "image/gif",
        "application/x-image",
        "application/octet-stream",
    }
)
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
REQUEST_HEADER = "X-LangSAM-Request"
SESSION_HEADER = "X-Amzn-SageMaker-Session-Id"
NEW_SESSION = "NEW_SESSION"
NEW_SESSION_HEADER = "X-Amzn-SageMaker-New-Session-Id"

_ID_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")  # SageMaker's session id pattern
_CONTENT_ID_RE = re.compile(r"^[0-9a-f]{32}$")  # the shape of content_id(): reserved for content hashes
MAX_ID_CHARS = 256
# Longest number literal accepted anywhere in a JSON body or header. Every legitimate value (pixel
# coordinates, thresholds, counts) has a handful of digits; longer literals would cost quadratic
# int parsing, hit Python's 4300-digit int limit or overflow float(), so they are refused as a
# 400 naming the field they sit in.
MAX_NUMBER_CHARS = 100
_TOP_KEYS = frozenset({"protocol", "image", "image_id", "prompt", "options"})
_PROMPT_KEYS = frozenset({"text", "points", "box", "mask_input", "exemplars"})  # exemplars: SAM 3 (additive)
_EXEMPLAR_KEYS = frozenset({"box", "positive"})
# additive: previous logits by reference (mask_input_ref), the server's prompt assistant (instruction, labels)
_PROMPT_KEYS = _PROMPT_KEYS | {"mask_input_ref", "instruction", "labels"}
_MASK_REF_KEYS = frozenset({"ref", "candidate"})
MAX_INSTRUCTION_CHARS = 2000  # prompt.instruction (the assistant's own limit)
MAX_LABELS, MAX_LABEL_CHARS = 200, 200  # prompt.labels
_OPTION_KEYS = frozenset(
    {"multimask", "box_threshold", "text_threshold", "max_detections", "nms_iou", "return_logits", "backend", "model"}
    | {"encode_only"}  # issue 9 part 3 (remote backends): prefetch = upload + encode, no prompt
)
_DEFAULTS = Prompt()


class ProtocolError(InferenceError, ValueError):
    """A request or response that breaks the protocol. ``field`` names the offending part,
    ``status`` is the HTTP status a server answers with, ``code`` a stable machine-readable name."""

    def __init__(
        self, message: str, *, field: str | None = None, status: int = 400, code: str = "ValidationError"
    ) -> None:
        super().__init__(message)
        self.field = field
        self.status = status
        self.code = code


class PayloadTooLargeError(ProtocolError):
    """A body over the real-time limit. Never truncated: the message says what to do instead."""

    def __init__(self, message: str, *, field: str = "body", code: str = "PayloadTooLarge") -> None:
        super().__init__(message, field=field, status=413, code=code)


@dataclass(frozen=True, kw_only=True, eq=False)
class SegmentRequest:
    """A decoded request. Exactly one of ``image`` (encoded JPEG/PNG bytes) and ``image_id``
    is needed, unless a session id (header) names the image; both may be given to store the
    image under a chosen id."""

    prompt: Prompt
    image: bytes | None = None
    image_id: str | None = None
    return_logits: bool = False
    backend: str | None = None  # the backend the client expects (checked by the server)
    model: str | None = None  # the model the client expects (checked by the server)
    # issue 9 part 3: store (and encode) the image only; no prompt, the answer has no objects
    encode_only: bool = False
    # previous logits the server kept (it keeps the logits it returns): instead of prompt.mask_input
    mask_input_ref: MaskInputRef | None = None
    # the server's prompt assistant: an instruction it turns into the text prompt (+ label names)
    instruction: str | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MaskInputRef:
    """``prompt.mask_input_ref``: candidate ``candidate`` of the answer whose ``logits_ref`` was ``ref``."""

    ref: str
    candidate: int


@dataclass(frozen=True, kw_only=True, eq=False)
class SegmentResponse:
    prediction: Prediction
    image_id: str
    protocol: int = PROTOCOL_VERSION
    request_id: str | None = None
    logits_ref: str | None = None  # the server kept this answer's logits under this reference
    phrases: tuple[str, ...] | None = None  # the text prompt's phrases the server's assistant chose


@dataclass(frozen=True, kw_only=True)
class ErrorInfo:
    """A decoded error body."""

    status: int
    code: str
    message: str
    field: str | None = None
    request_id: str | None = None


# ---------------------------------------------------------------------------------------------
# small codecs


def content_id(data: bytes) -> str:
    """The id of an encoded image: a content hash, valid as a SageMaker session id."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def encode_logits(logits: np.ndarray) -> dict[str, Any]:
    """(n, n) float logits (256 for SAM 2, 288 for SAM 3) -> ``{"dtype": "float16", "shape": [n, n],
    "data": <base64>}``."""
    arr = np.asarray(logits, dtype=np.float32)
    side = int(arr.shape[-1]) if arr.ndim >= 2 and arr.size == arr.shape[-1] ** 2 else LOGITS_SHAPE[0]
    arr = arr.reshape(side, side)
    half = np.clip(arr, -65000.0, 65000.0).astype("<f2")
    return {"dtype": "float16", "shape": [side, side], "data": base64.b64encode(half.tobytes()).decode("ascii")}


def decode_logits(obj: Any, *, field: str) -> np.ndarray:
    """The inverse of :func:`encode_logits` (float16 or float32), as (n, n) float32 for a square
    ``shape`` [n, n] with n from MIN_LOGITS_SIDE to MAX_LOGITS_SIDE (the runner checks n against the
    backend: 256 for SAM 2, 288 for SAM 3)."""
    if not isinstance(obj, Mapping):
        raise ProtocolError(f"{field} must be an object with dtype, shape and data", field=field)
    requested: Any = obj.get("dtype")
    dtype = {"float16": "<f2", "float32": "<f4"}.get(requested)
    if dtype is None:
        raise ProtocolError(
            f"{field}.dtype must be 'float16' or 'float32', got {obj.get('dtype')!r}", field=f"{field}.dtype"
        )
    shape = obj.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape)
        or shape[0] != shape[1]
        or not MIN_LOGITS_SIDE <= shape[0] <= MAX_LOGITS_SIDE
    ):
        raise ProtocolError(
            f"{field}.shape must be square [n, n] with n from {MIN_LOGITS_SIDE} to {MAX_LOGITS_SIDE} "
            f"([256, 256] for SAM 2, [288, 288] for SAM 3), got {shape!r}",
            field=f"{field}.shape",
        )
    side = int(shape[0])
    raw = _b64(obj.get("data"), field=f"{field}.data")
    expected = side * side * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise ProtocolError(f"{field}.data holds {len(raw)} bytes, expected {expected}", field=f"{field}.data")
    arr = np.frombuffer(raw, dtype=dtype).reshape(side, side).astype(np.float32)
    if not np.isfinite(arr).all():
        raise ProtocolError(f"{field} contains NaN or infinite values", field=field)
    return arr


def _b64(value: Any, *, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{field} must be a non-empty base64 string", field=field)
    if value.startswith("data:") and "," in value[:100]:  # a data URL: data:image/png;base64,....
        value = value.split(",", 1)[1]
    if _B64_WHITESPACE.search(value):  # MIME-style line-wrapped base64 (76-character lines, CRLF)
        value = _B64_WHITESPACE.sub("", value)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        bad = _B64_INVALID.search(value)
        why = (
            f"character {bad.group()!r} at position {bad.start()} is not in the base64 alphabet (A-Z, a-z, 0-9, "
            "+, /, = padding; line breaks and spaces are ignored; URL-safe '-'/'_' are not accepted)"
            if bad
            else f"{exc} (the length without whitespace is {len(value)}; base64 comes in groups of 4 characters)"
        )
        raise ProtocolError(f"{field} is not valid base64: {why}", field=field) from None


_B64_WHITESPACE = re.compile(r"[ \t\r\n]+")
_B64_INVALID = re.compile(r"[^A-Za-z0-9+/=]")


def is_content_id(value: str) -> bool:
    """Whether ``value`` has the shape of a :func:`content_id` (reserved: clients cannot choose it)."""
    return bool(_CONTENT_ID_RE.match(value))


def check_text_tokens(count: int | None, limit: int | None, *, field: str = "prompt.text") -> None:
    """Refuse a text prompt longer than the model's token limit (checked before any inference)."""
    if count is not None and limit is not None and count > limit:
        raise ProtocolError(
            f"the text prompt is {count} tokens long, more than the {limit} tokens the text model reads; "
            "shorten it (fewer or shorter class names)",
            field=field,
        )


def check_id(value: Any, *, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS or not _ID_RE.match(value):
        raise ProtocolError(
            f"{field} must be 1-{MAX_ID_CHARS} letters, digits and inner dashes, got {value!r}", field=field
        )
    return value


def _number(obj: Mapping[str, Any], key: str, default: float | None, *, field: str) -> float | None:
    value = obj.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProtocolError(f"{field} must be a finite number, got {value!r}", field=field)
    return float(value)


def _keys(obj: Any, allowed: frozenset[str], *, field: str) -> Mapping[str, Any]:
    if obj is None:
        return {}
    if not isinstance(obj, Mapping):
        raise ProtocolError(f"{field or 'the request'} must be a JSON object", field=field or "body")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        where = f"{field}.{unknown[0]}" if field else unknown[0]
        raise ProtocolError(f"unknown field '{where}'; expected one of {', '.join(sorted(allowed))}", field=where)
    return obj


# ---------------------------------------------------------------------------------------------
# requests


def request_object(request: SegmentRequest, *, include_image: bool = True) -> dict[str, Any]:
    """The JSON object of a request (the image base64-encoded when ``include_image``)."""
    p = request.prompt
    prompt: dict[str, Any] = {}
    if p.text is not None:
        prompt["text"] = p.text
    if p.points:
        prompt["points"] = [[_num(pt.x), _num(pt.y), 1 if pt.positive else 0] for pt in p.points]
    if p.box is not None:
        prompt["box"] = [_num(v) for v in p.box.as_xyxy()]
    if p.exemplars:  # SAM 3 concept example boxes (an additive field of version 1)
        prompt["exemplars"] = [
            {"box": [_num(v) for v in ex.box.as_xyxy()], "positive": bool(ex.positive)} for ex in p.exemplars
        ]
    if p.mask_input is not None:
        prompt["mask_input"] = encode_logits(p.mask_input)
    if request.mask_input_ref is not None:
        ref = request.mask_input_ref
        prompt["mask_input_ref"] = {"ref": ref.ref, "candidate": ref.candidate} if ref.candidate else {"ref": ref.ref}
    if request.instruction is not None:
        prompt["instruction"] = request.instruction
    if request.labels:
        prompt["labels"] = list(request.labels)
    options: dict[str, Any] = {}
    for key in ("multimask", "box_threshold", "text_threshold", "max_detections", "nms_iou"):
        value = getattr(p, key)
        if value != getattr(_DEFAULTS, key):
            options[key] = value
    if request.return_logits:
        options["return_logits"] = True
    if request.encode_only:  # issue 9 part 3
        options["encode_only"] = True
    if request.backend:
        options["backend"] = request.backend
    if request.model:
        options["model"] = request.model
    obj: dict[str, Any] = {"protocol": PROTOCOL_VERSION}
    if include_image and request.image is not None:
        obj["image"] = base64.b64encode(request.image).decode("ascii")
    if request.image_id is not None:
        obj["image_id"] = request.image_id
    obj["prompt"] = prompt
    if options:
        obj["options"] = options
    return obj


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else float(v)


def encode_request(
    request: SegmentRequest, *, raw: bool = False, max_bytes: int = MAX_PAYLOAD_BYTES
) -> tuple[bytes, str, dict[str, str]]:
    """``(body, content_type, headers)`` for one request.

    ``raw=True`` sends the image bytes as the body and the rest in the custom-attributes header
    (SageMaker-compatible, at most 1024 characters: no ``mask_input`` there). Raises
    :class:`PayloadTooLargeError` rather than send a body the endpoint would refuse.
    """
    if raw:
        if request.image is None:
            raise ProtocolError("a raw-image request needs the image bytes", field="image")
        header = json.dumps(
            request_object(request, include_image=False), separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
        if len(header) > MAX_CUSTOM_ATTRIBUTES:
            raise ProtocolError(
                f"the prompt takes {len(header)} characters, more than the {MAX_CUSTOM_ATTRIBUTES} a "
                "custom-attributes header allows; send a JSON request instead",
                field="prompt",
            )
        body, content_type, headers = (
            bytes(request.image),
            _sniff_type(request.image),
            {CUSTOM_ATTRIBUTES_HEADER: header},
        )
    else:
        body = json.dumps(request_object(request), separators=(",", ":"), allow_nan=False).encode()
        content_type, headers = JSON_TYPE, {}
    if len(body) > max_bytes:
        raise PayloadTooLargeError(
            f"the request is {len(body) / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB real-time limit; "
            "send a smaller or JPEG-compressed image, or use asynchronous inference (payloads up to 1 GB via S3)"
        )
    return body, content_type, headers


def _sniff_type(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "application/x-image"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_request(
    body: bytes | str, *, content_type: str | None, headers: Mapping[str, str] | None = None
) -> SegmentRequest:
    """Parse and validate a request. Raises :class:`ProtocolError` naming the bad field."""
    headers = headers or {}
    kind = media_type(content_type)
    if kind == JSON_TYPE or kind.endswith("+json"):
        obj = _parse_json(body, what="the request body", field="body")
        image_field = obj.get("image") if isinstance(obj, Mapping) else None
        image = _b64(image_field, field="image") if image_field is not None else None
        return _request_from_object(obj, image=image)
    if kind in IMAGE_TYPES or kind.startswith("image/"):
        raw = body.encode("latin-1") if isinstance(body, str) else bytes(body)
        if not raw:
            raise ProtocolError("the request body is empty: send the image bytes", field="image")
        attributes = _header(headers, REQUEST_HEADER) or _header(headers, CUSTOM_ATTRIBUTES_HEADER)
        if not attributes or not attributes.strip():
            raise ProtocolError(
                f"a raw-image request needs the prompt as JSON in the {CUSTOM_ATTRIBUTES_HEADER} header",
                field=CUSTOM_ATTRIBUTES_HEADER,
            )
        obj = _parse_json(attributes, what=f"the {CUSTOM_ATTRIBUTES_HEADER} header", field=CUSTOM_ATTRIBUTES_HEADER)
        if isinstance(obj, Mapping) and "image" in obj:
            raise ProtocolError("the image is the body of a raw-image request, not a header field", field="image")
        return _request_from_object(obj, image=raw)
    raise ProtocolError(
        f"unsupported Content-Type {content_type!r}: send application/json or an image type such as image/jpeg",
        field="Content-Type",
        status=415,
        code="UnsupportedMediaType",
    )


def _parse_json(data: bytes | str, *, what: str, field: str) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        if not data:
            raise ProtocolError(f"{what} is empty", field=field)
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"{what} is not UTF-8 text: {exc.reason} at byte {exc.start}", field=field) from None
    try:
        return json.loads(data, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float)
    except ProtocolError as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}", field=field) from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}", field=field) from None


def _reject_constant(name: str) -> float:
    raise ProtocolError(f"{name} is not allowed (use finite numbers)")


class OversizedNumber:
    """A JSON number literal longer than :data:`MAX_NUMBER_CHARS`, kept unparsed.

    Not an int or float, so every field check refuses it with its own field name (a 400, never a
    500 from int()'s digit limit or float() overflow)."""

    __slots__ = ("chars",)

    def __init__(self, chars: int) -> None:
        self.chars = chars

    def __repr__(self) -> str:
        return f"<a number literal of {self.chars} characters>"


def _parse_int(text: str) -> int | OversizedNumber:
    if len(text) > MAX_NUMBER_CHARS:
        return OversizedNumber(len(text))
    value = int(text)
    if abs(value) > _FLOAT_MAX_INT:  # cannot become a float (coordinates and thresholds are floats)
        return OversizedNumber(len(text))
    return value


def _parse_float(text: str) -> float | OversizedNumber:
    if len(text) > MAX_NUMBER_CHARS:
        return OversizedNumber(len(text))
    return float(text)  # overflow gives inf, which the field checks refuse as not finite


_FLOAT_MAX_INT = int(1.7976931348623157e308)


def _request_from_object(obj: Any, *, image: bytes | None) -> SegmentRequest:
    obj = _keys(obj, _TOP_KEYS, field="")
    version = obj.get("protocol", PROTOCOL_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version {version!r} is not supported: this server speaks 1..{PROTOCOL_VERSION}", field="protocol"
        )
    image_id = obj.get("image_id")
    if image_id is not None:
        image_id = check_id(image_id, field="image_id")
    pr = _keys(obj.get("prompt"), _PROMPT_KEYS, field="prompt")
    op = _keys(obj.get("options"), _OPTION_KEYS, field="options")
    encode_only = _encode_only_request(obj, op, image)  # issue 9 part 3
    if encode_only is not None:
        return encode_only

    text = pr.get("text")
    if text is not None and not isinstance(text, str):
        raise ProtocolError(f"prompt.text must be a string, got {type(text).__name__}", field="prompt.text")
    if text is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800"
            raise ProtocolError(
                f"prompt.text is not valid Unicode: {exc.reason} at character {exc.start}", field="prompt.text"
            ) from None
    points = tuple(_point(p, i) for i, p in enumerate(_list(pr.get("points"), field="prompt.points")))
    box = _box(pr.get("box")) if pr.get("box") is not None else None
    exemplars = _exemplars(pr.get("exemplars"))
    mask_input = (
        decode_logits(pr["mask_input"], field="prompt.mask_input") if pr.get("mask_input") is not None else None
    )
    extras = _prompt_extras(pr, text=text, mask_input=mask_input)  # mask_input_ref, the assistant's fields
    asked = extras["instruction"] is not None

    multimask = op.get("multimask", _DEFAULTS.multimask)
    if not isinstance(multimask, bool):
        raise ProtocolError(f"options.multimask must be true or false, got {multimask!r}", field="options.multimask")
    return_logits = op.get("return_logits", False)
    if not isinstance(return_logits, bool):
        raise ProtocolError(
            f"options.return_logits must be true or false, got {return_logits!r}", field="options.return_logits"
        )
    max_det = op.get("max_detections", _DEFAULTS.max_detections)
    if isinstance(max_det, bool) or not isinstance(max_det, int) or not 1 <= max_det <= 1000:
        raise ProtocolError(
            f"options.max_detections must be an integer from 1 to 1000, got {max_det!r}", field="options.max_detections"
        )
    names: dict[str, str | None] = {}
    for key in ("backend", "model"):
        value = op.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 200):
            raise ProtocolError(f"options.{key} must be a model name, got {value!r}", field=f"options.{key}")
        names[key] = value
    prompt = Prompt(
        points=points,
        box=box,
        text=text,
        mask_input=mask_input,
        multimask=multimask,
        # an explicit JSON null comes through as None on purpose: Prompt.validate() rejects it, naming the field
        box_threshold=cast(float, _number(op, "box_threshold", _DEFAULTS.box_threshold, field="options.box_threshold")),
        text_threshold=cast(
            float, _number(op, "text_threshold", _DEFAULTS.text_threshold, field="options.text_threshold")
        ),
        max_detections=max_det,
        nms_iou=_number(op, "nms_iou", None, field="options.nms_iou"),
        exemplars=exemplars,
    )
    if image is None and image_id is None and not (points or box is not None or text is not None or exemplars or asked):
        raise ProtocolError("the request has no image, image_id or prompt", field="image")
    if not (points or box is not None or text is not None or exemplars or asked):
        raise ProtocolError("the prompt has no text, instruction, points, box or exemplars", field="prompt")
    return SegmentRequest(
        prompt=prompt,
        image=image,
        image_id=image_id,
        return_logits=return_logits,
        backend=names["backend"],
        model=names["model"],
        **extras,
    )


def _prompt_extras(pr: Mapping[str, Any], *, text: str | None, mask_input: np.ndarray | None) -> dict[str, Any]:
    """The request-level prompt fields: ``prompt.mask_input_ref`` (previous logits the server kept,
    instead of ``mask_input``; ``candidate`` defaults to 0) and the server's prompt assistant
    (``prompt.instruction``, ``prompt.labels``)."""
    ref = None
    raw = pr.get("mask_input_ref")
    if raw is not None:
        field = "prompt.mask_input_ref"
        if mask_input is not None:
            raise ProtocolError("send prompt.mask_input or prompt.mask_input_ref, not both", field=field)
        if not isinstance(raw, Mapping):
            raise ProtocolError(f'{field} must be {{"ref": "<logits_ref>", "candidate": k}}', field=field)
        raw = _keys(raw, _MASK_REF_KEYS, field=field)
        name, k = raw.get("ref"), raw.get("candidate", 0)
        if not isinstance(name, str) or not 1 <= len(name) <= 64 or not _ID_RE.match(name):
            raise ProtocolError(
                f"{field}.ref must be a previous response's logits_ref, got {name!r}", field=f"{field}.ref"
            )
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < 1000:
            raise ProtocolError(
                f"{field}.candidate must be an object's index (0-999) in that response, got {k!r}",
                field=f"{field}.candidate",
            )
        ref = MaskInputRef(ref=name, candidate=k)
    instruction = pr.get("instruction")
    if instruction is not None:
        field = "prompt.instruction"
        if not isinstance(instruction, str) or not instruction.strip():
            raise ProtocolError("prompt.instruction must be a non-empty string", field=field)
        if len(instruction) > MAX_INSTRUCTION_CHARS:
            raise ProtocolError(
                f"prompt.instruction is {len(instruction)} characters, at most {MAX_INSTRUCTION_CHARS} are allowed",
                field=field,
            )
        try:
            instruction.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProtocolError(f"prompt.instruction is not valid Unicode: {exc.reason}", field=field) from None
        if text is not None:
            raise ProtocolError(
                "send prompt.text or prompt.instruction, not both (the server's assistant writes the text "
                "from the instruction)",
                field=field,
            )
    labels: list[str] = []
    raw_labels = pr.get("labels")
    if raw_labels is not None:
        if not isinstance(raw_labels, list):
            raise ProtocolError("prompt.labels must be a list of label names", field="prompt.labels")
        if len(raw_labels) > MAX_LABELS:
            raise ProtocolError(
                f"prompt.labels has {len(raw_labels)} names, at most {MAX_LABELS}", field="prompt.labels"
            )
        for i, name in enumerate(raw_labels):
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_LABEL_CHARS:
                raise ProtocolError(
                    f"prompt.labels[{i}] must be a label name of 1-{MAX_LABEL_CHARS} characters, got {name!r}",
                    field=f"prompt.labels[{i}]",
                )
            labels.append(name)
        if instruction is None and labels:
            raise ProtocolError("prompt.labels is read only with prompt.instruction", field="prompt.labels")
    return {"mask_input_ref": ref, "instruction": instruction, "labels": tuple(labels)}


def _encode_only_request(obj: Mapping[str, Any], op: Mapping[str, Any], image: bytes | None) -> SegmentRequest | None:
    """Issue 9 part 3: ``options.encode_only: true`` stores and encodes the image (prefetch) and
    answers with no objects; it takes no prompt. ``None`` when the request is not encode-only."""
    flag = op.get("encode_only", False)
    if not isinstance(flag, bool):
        raise ProtocolError(f"options.encode_only must be true or false, got {flag!r}", field="options.encode_only")
    if not flag:
        return None
    if obj.get("prompt"):
        raise ProtocolError("an encode_only request takes no prompt", field="prompt")
    image_id = check_id(obj["image_id"], field="image_id") if obj.get("image_id") is not None else None
    names = {k: op.get(k) if isinstance(op.get(k), str) else None for k in ("backend", "model")}
    return SegmentRequest(
        prompt=Prompt(),
        image=image,
        image_id=image_id,
        encode_only=True,
        backend=names["backend"],
        model=names["model"],
    )


def _list(value: Any, *, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"{field} must be a list", field=field)
    if len(value) > 1000:
        raise ProtocolError(f"{field} has {len(value)} entries, at most 1000 are allowed", field=field)
    return value


def _point(p: Any, i: int) -> Point:
    field = f"prompt.points[{i}]"
    if isinstance(p, Mapping):
        x, y, label = p.get("x"), p.get("y"), p.get("label", 1)
    elif isinstance(p, list) and len(p) in (2, 3):
        x, y, label = p[0], p[1], (p[2] if len(p) == 3 else 1)
    else:
        raise ProtocolError(f'{field} must be [x, y, label] or {{"x", "y", "label"}}', field=field)
    for v in (x, y):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ProtocolError(f"{field} coordinates must be finite numbers, got {v!r}", field=field)
    assert isinstance(x, (int, float)) and isinstance(y, (int, float))  # checked just above
    if label not in (0, 1):  # 0/1 (also 0.0/1.0 and false/true)
        raise ProtocolError(f"{field} label must be 1 (object) or 0 (background), got {label!r}", field=field)
    return Point(x=float(x), y=float(y), positive=bool(label))


def _exemplars(value: Any) -> tuple[Exemplar, ...]:
    """``prompt.exemplars``: ``[{"box": [x0, y0, x1, y1], "positive": true}, ...]`` (SAM 3's example
    boxes; ``positive`` defaults to true, false marks "not like this")."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError(
            'prompt.exemplars must be a list of {"box": [x0, y0, x1, y1], "positive": true}', field="prompt.exemplars"
        )
    if len(value) > MAX_EXEMPLARS:
        raise ProtocolError(
            f"prompt.exemplars has {len(value)} boxes, at most {MAX_EXEMPLARS} are allowed", field="prompt.exemplars"
        )
    out = []
    for i, item in enumerate(value):
        field = f"prompt.exemplars[{i}]"
        if not isinstance(item, Mapping):
            raise ProtocolError(f'{field} must be {{"box": [x0, y0, x1, y1], "positive": true}}', field=field)
        item = _keys(item, _EXEMPLAR_KEYS, field=field)
        if "box" not in item:
            raise ProtocolError(f"{field}.box is missing: give [x0, y0, x1, y1] in pixels", field=f"{field}.box")
        box = _box(item["box"], field=f"{field}.box")
        positive = item.get("positive", True)
        if not isinstance(positive, bool):
            raise ProtocolError(f"{field}.positive must be true or false, got {positive!r}", field=f"{field}.positive")
        out.append(Exemplar(box=box, positive=positive))
    return tuple(out)


def _box(b: Any, *, field: str = "prompt.box") -> Box:
    if isinstance(b, Mapping):
        b = [b.get("x0"), b.get("y0"), b.get("x1"), b.get("y1")]
    if (
        not isinstance(b, list)
        or len(b) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in b)
    ):
        raise ProtocolError(f"{field} must be four finite numbers [x0, y0, x1, y1], got {b!r}", field=field)
    return Box(x0=float(b[0]), y0=float(b[1]), x1=float(b[2]), y1=float(b[3]))


# ---------------------------------------------------------------------------------------------
# responses


def encode_response(
    prediction: Prediction,
    *,
    image_id: str,
    return_logits: bool = False,
    request_id: str | None = None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
    logits_ref: str | None = None,
    phrases: Sequence[str] | None = None,
) -> bytes:
    """The JSON body for one prediction. Raises :class:`PayloadTooLargeError` (never truncates).
    ``logits_ref``: the server kept this answer's logits (``return_logits``) under that name;
    ``phrases``: the phrases of the text prompt the server's assistant wrote (``prompt.instruction``)."""
    objects = []
    for c in prediction.candidates:
        item: dict[str, Any] = {
            "mask": mask_to_rle(c.mask),
            "box": [round(float(v), 2) for v in c.box],
            "score": round(float(c.score), 5),
        }
        if c.label is not None:
            item["label"] = c.label
        if c.box_score is not None:
            item["box_score"] = round(float(c.box_score), 5)
        if return_logits and c.low_res_logits is not None:
            item["logits"] = encode_logits(c.low_res_logits)
        objects.append(item)
    obj: dict[str, Any] = {
        "protocol": PROTOCOL_VERSION,
        "kind": prediction.kind.value,
        "image_id": image_id,
        "image_size": [int(prediction.image_size[0]), int(prediction.image_size[1])],
        "backend": prediction.backend,
        "model": prediction.model,
        "objects": objects,
        "timings": {k: round(float(v), 2) for k, v in prediction.timings.items()},
    }
    if prediction.messages:  # notes for a person (e.g. a phrase cut to SAM 3's 32 tokens); additive
        obj["messages"] = [str(m) for m in prediction.messages]
    if logits_ref is not None:  # additive: prompt.mask_input_ref names these logits in the next request
        obj["logits_ref"] = logits_ref
    if phrases is not None:  # additive: what the server's assistant made of prompt.instruction
        obj["phrases"] = [str(p) for p in phrases]
    if request_id:
        obj["request_id"] = request_id
    body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    if len(body) > max_bytes:
        raise PayloadTooLargeError(
            f"the response would be {len(body) / 2**20:.1f} MiB ({len(objects)} objects), over the "
            f"{max_bytes / 2**20:.0f} MiB real-time limit, and is not sent truncated; ask for fewer objects "
            "(options.max_detections), leave out logits (options.return_logits=false), or use asynchronous "
            "inference (InvokeEndpointAsync, results up to 1 GB via S3)",
            field="response",
            code="ResponseTooLarge",
        )
    return body


def decode_response(body: bytes | str) -> SegmentResponse:
    """Parse a response body back into a :class:`Prediction` with full-resolution bool masks."""
    obj = _parse_json(body, what="the response", field="response")
    if not isinstance(obj, Mapping):
        raise ProtocolError("the response is not a JSON object", field="response")
    if "error" in obj:
        info = decode_error(body)
        raise ProtocolError(info.message, field=info.field, status=info.status, code=info.code)
    version = obj.get("protocol")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"the server speaks protocol {version!r}, this client speaks {PROTOCOL_VERSION}", field="protocol"
        )
    try:
        h, w = (int(v) for v in obj["image_size"])
        candidates = []
        for i, item in enumerate(obj["objects"]):
            mask = rle_to_mask(item["mask"])
            if mask.shape != (h, w):
                raise ProtocolError(
                    f"objects[{i}].mask is {mask.shape}, the image is {(h, w)}", field=f"objects[{i}].mask"
                )
            logits = decode_logits(item["logits"], field=f"objects[{i}].logits") if "logits" in item else None
            candidates.append(
                Candidate(
                    mask=mask,
                    score=float(item["score"]),
                    box=cast(
                        "tuple[float, float, float, float]", tuple(float(v) for v in item["box"])
                    ),  # 4 numbers per the protocol
                    label=item.get("label"),
                    box_score=item.get("box_score"),
                    low_res_logits=logits,
                )
            )
        prediction = Prediction(
            candidates=tuple(candidates),
            kind=PredictionKind(obj["kind"]),
            image_key=str(obj["image_id"]),
            backend=str(obj["backend"]),
            model=str(obj["model"]),
            image_size=(h, w),
            timings=MappingProxyType({str(k): float(v) for k, v in (obj.get("timings") or {}).items()}),
            messages=tuple(str(m) for m in (obj.get("messages") or ())),
        )
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"the response is malformed: {exc!r}", field="response") from None
    ref, phrases = obj.get("logits_ref"), obj.get("phrases")
    return SegmentResponse(
        prediction=prediction,
        image_id=str(obj["image_id"]),
        protocol=version,
        request_id=obj.get("request_id"),
        logits_ref=ref if isinstance(ref, str) and ref else None,
        phrases=tuple(str(p) for p in phrases) if isinstance(phrases, list) else None,
    )


# ---------------------------------------------------------------------------------------------
# errors


def encode_error(
    *, status: int, code: str, message: str, field: str | None = None, request_id: str | None = None
) -> bytes:
    """An error body. ``message``/``Message`` at the top level are what botocore shows."""
    error: dict[str, Any] = {"status": status, "code": code, "message": message}
    if field:
        error["field"] = field
    if request_id:
        error["request_id"] = request_id
    readable = f"{message} (field: {field})" if field else message
    return json.dumps(
        {"protocol": PROTOCOL_VERSION, "error": error, "message": readable}, separators=(",", ":")
    ).encode()


def decode_error(body: bytes | str) -> ErrorInfo:
    """Parse an error body (ours, or a SageMaker ModelError carrying ours in OriginalMessage)."""
    try:
        obj = json.loads(body)
    except (ValueError, TypeError):
        text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
        return ErrorInfo(status=0, code="Unknown", message=text.strip()[:2000] or "empty error response")
    if isinstance(obj, Mapping) and "OriginalMessage" in obj and "error" not in obj:
        inner = decode_error(obj["OriginalMessage"])
        if inner.code != "Unknown":
            return inner
        return ErrorInfo(
            status=int(obj.get("OriginalStatusCode") or 0),
            code="ModelError",
            message=str(obj.get("Message") or obj.get("message") or inner.message),
        )
    err = obj.get("error") if isinstance(obj, Mapping) else None
    if not isinstance(err, Mapping):
        message = obj.get("message") or obj.get("Message") if isinstance(obj, Mapping) else None
        return ErrorInfo(status=0, code="Unknown", message=str(message or obj)[:2000])
    return ErrorInfo(
        status=int(err.get("status") or 0),
        code=str(err.get("code") or "Unknown"),
        message=str(err.get("message") or ""),
        field=err.get("field"),
        request_id=err.get("request_id"),
    )
