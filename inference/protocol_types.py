"""The wire protocol's constants, errors and message dataclasses (version 1).

The public face is :mod:`inference.protocol`, which re-exports everything here; the codec
itself lives in :mod:`inference.protocol_fields` (field codecs, JSON parsing with limits),
:mod:`inference.protocol_requests` and :mod:`inference.protocol_responses`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference.errors import InferenceError
from inference.prompts import Prompt
from inference.results import Prediction

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

MAX_ID_CHARS = 256
# Longest number literal accepted anywhere in a JSON body or header. Every legitimate value (pixel
# coordinates, thresholds, counts) has a handful of digits; longer literals would cost quadratic
# int parsing, hit Python's 4300-digit int limit or overflow float(), so they are refused as a
# 400 naming the field they sit in.
MAX_NUMBER_CHARS = 100
MAX_INSTRUCTION_CHARS = 2000  # prompt.instruction (the assistant's own limit)
MAX_LABELS, MAX_LABEL_CHARS = 200, 200  # prompt.labels


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
    # keep this answer's logits for prompt.mask_input_ref and answer only their logits_ref, not the
    # arrays (a remote client refines by reference: ~0.5 MB less per multimask click)
    keep_logits: bool = False
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
    capabilities: Mapping[str, Any] | None = None  # an encode-only answer: what the backend takes


@dataclass(frozen=True, kw_only=True)
class ErrorInfo:
    """A decoded error body."""

    status: int
    code: str
    message: str
    field: str | None = None
    request_id: str | None = None
