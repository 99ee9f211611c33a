"""Field codecs and checks of the wire protocol, shared by requests and responses.

Content ids, ids, base64, low-resolution logits, text-token limits, and the JSON parser with
number limits (:data:`~inference.protocol_types.MAX_NUMBER_CHARS`) that both directions use.
Re-exported by :mod:`inference.protocol`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from inference.protocol_types import (
    LOGITS_SHAPE,
    MAX_ID_CHARS,
    MAX_LOGITS_SIDE,
    MAX_NUMBER_CHARS,
    MIN_LOGITS_SIDE,
    ProtocolError,
)

ID_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")  # SageMaker's session id pattern
CONTENT_ID_RE = re.compile(r"^[0-9a-f]{32}$")  # the shape of content_id(): reserved for content hashes


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
    raw = decode_base64(obj.get("data"), field=f"{field}.data")
    expected = side * side * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise ProtocolError(f"{field}.data holds {len(raw)} bytes, expected {expected}", field=f"{field}.data")
    arr = np.frombuffer(raw, dtype=dtype).reshape(side, side).astype(np.float32)
    if not np.isfinite(arr).all():
        raise ProtocolError(f"{field} contains NaN or infinite values", field=field)
    return arr


def decode_base64(value: Any, *, field: str) -> bytes:
    """The bytes of a base64 field (a data URL and line breaks allowed); a :class:`ProtocolError`
    naming ``field`` otherwise."""
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
    return bool(CONTENT_ID_RE.match(value))


def check_text_tokens(count: int | None, limit: int | None, *, field: str = "prompt.text") -> None:
    """Refuse a text prompt longer than the model's token limit (checked before any inference)."""
    if count is not None and limit is not None and count > limit:
        raise ProtocolError(
            f"the text prompt is {count} tokens long, more than the {limit} tokens the text model reads; "
            "shorten it (fewer or shorter class names)",
            field=field,
        )


def check_id(value: Any, *, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS or not ID_RE.match(value):
        raise ProtocolError(
            f"{field} must be 1-{MAX_ID_CHARS} letters, digits and inner dashes, got {value!r}", field=field
        )
    return value


def parse_json(data: bytes | str, *, what: str, field: str) -> Any:
    """``data`` (UTF-8) as JSON, with NaN/Infinity refused and number literals over
    :data:`MAX_NUMBER_CHARS` kept as :class:`OversizedNumber`; a :class:`ProtocolError` naming
    ``field`` (``what`` in the message) otherwise."""
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
