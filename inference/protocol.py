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

This module is the codec's public face: import everything from here. The code is split by
responsibility into :mod:`inference.protocol_types` (constants, errors, the dataclasses),
:mod:`inference.protocol_fields` (field codecs: ids, base64, logits, JSON parsing with number
limits), :mod:`inference.protocol_requests` (request encode/decode and field-named validation) and
:mod:`inference.protocol_responses` (response and error bodies).
"""

from __future__ import annotations

from inference.protocol_fields import (
    OversizedNumber,
    check_id,
    check_text_tokens,
    content_id,
    decode_logits,
    encode_logits,
    is_content_id,
)
from inference.protocol_requests import decode_request, encode_request, media_type, request_object
from inference.protocol_responses import decode_error, decode_response, encode_error, encode_response
from inference.protocol_types import (
    CUSTOM_ATTRIBUTES_HEADER,
    IMAGE_TYPES,
    JSON_TYPE,
    LOGITS_SHAPE,
    MAX_CUSTOM_ATTRIBUTES,
    MAX_EXEMPLARS,
    MAX_ID_CHARS,
    MAX_INSTRUCTION_CHARS,
    MAX_LABEL_CHARS,
    MAX_LABELS,
    MAX_LOGITS_SIDE,
    MAX_NUMBER_CHARS,
    MAX_PAYLOAD_BYTES,
    MIN_LOGITS_SIDE,
    NEW_SESSION,
    NEW_SESSION_HEADER,
    PROTOCOL_VERSION,
    REQUEST_HEADER,
    SESSION_HEADER,
    ErrorInfo,
    MaskInputRef,
    PayloadTooLargeError,
    ProtocolError,
    SegmentRequest,
    SegmentResponse,
)

__all__ = [
    "CUSTOM_ATTRIBUTES_HEADER",
    "IMAGE_TYPES",
    "JSON_TYPE",
    "LOGITS_SHAPE",
    "MAX_CUSTOM_ATTRIBUTES",
    "MAX_EXEMPLARS",
    "MAX_ID_CHARS",
    "MAX_INSTRUCTION_CHARS",
    "MAX_LABELS",
    "MAX_LABEL_CHARS",
    "MAX_LOGITS_SIDE",
    "MAX_NUMBER_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MIN_LOGITS_SIDE",
    "NEW_SESSION",
    "NEW_SESSION_HEADER",
    "PROTOCOL_VERSION",
    "REQUEST_HEADER",
    "SESSION_HEADER",
    "ErrorInfo",
    "MaskInputRef",
    "OversizedNumber",
    "PayloadTooLargeError",
    "ProtocolError",
    "SegmentRequest",
    "SegmentResponse",
    "check_id",
    "check_text_tokens",
    "content_id",
    "decode_error",
    "decode_logits",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_logits",
    "encode_request",
    "encode_response",
    "is_content_id",
    "media_type",
    "request_object",
]
