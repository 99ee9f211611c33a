"""The prompt of a SageMaker Batch Transform job, carried in the container's environment.

Batch Transform (``CreateTransformJob``, one S3 object = one request, ``SplitType`` None) POSTs
each object's bytes as the body with the job's ``ContentType`` and no custom-attributes header:
there is no per-request place for the prompt. So the job puts it in its ``Environment``::

    LANGSAM_BATCH_PROMPT = '{"protocol":1,"prompt":{"text":"car. person."},"options":{...}}'

exactly the JSON a raw-image request carries in ``X-Amzn-SageMaker-Custom-Attributes``
(:func:`inference.protocol.request_object` without the image), so it is validated by the one
protocol codec, by the client before the job is created (:func:`encode_batch_prompt`) and by the
container at start-up (:func:`check_batch_prompt`, called from ``model_fn`` and the Ray
deployment's ``__init__``).

In the container (:mod:`inference.sagemaker_handler`, :mod:`inference.ray_serve`):

* :func:`with_batch_prompt` adds the environment prompt to a raw-image request that has no prompt
  header of its own (a request with its own prompt, or a JSON request, is left alone);
* :func:`record_status`: while the variable is set, a refusal of one record (a 4xx: not an image,
  a box outside this image, over the size limit) is answered **200 with the protocol's error
  body**, so the record's ``.out`` file says why and one bad image does not fail the whole job
  (SageMaker fails a transform job on any non-2xx record, after retrying it). Server faults (5xx)
  keep their status: they are retried and fail the job visibly.

Never set this variable on a real-time endpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from inference.protocol import (
    CUSTOM_ATTRIBUTES_HEADER,
    IMAGE_TYPES,
    REQUEST_HEADER,
    ProtocolError,
    SegmentRequest,
    decode_request,
    media_type,
    request_object,
)

BATCH_PROMPT_ENV = "LANGSAM_BATCH_PROMPT"
MAX_ENV_VALUE_BYTES = 10240  # CreateTransformJob Environment value limit
_PROBE_BODY = b"\x89PNG\r\n\x1a\n"  # any non-empty bytes: decode_request does not open the image


def encode_batch_prompt(request: SegmentRequest) -> str:
    """The environment value for ``request``'s prompt and options (its image is ignored).

    Raises :class:`ProtocolError` when the codec refuses it or it is over the 10240-byte limit."""
    text = json.dumps(
        request_object(request, include_image=False), separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    decode_batch_prompt(text)  # the container will decode exactly this: refuse now what it would refuse
    return text


def decode_batch_prompt(value: str) -> SegmentRequest:
    """The request (no image) an environment value describes; :class:`ProtocolError` if invalid."""
    if len(value.encode("utf-8")) > MAX_ENV_VALUE_BYTES:
        raise ProtocolError(
            f"{BATCH_PROMPT_ENV} is {len(value.encode('utf-8'))} bytes, over the {MAX_ENV_VALUE_BYTES}-byte limit "
            "of a transform job's environment value",
            field=BATCH_PROMPT_ENV,
        )
    try:
        request = decode_request(_PROBE_BODY, content_type="image/png", headers={REQUEST_HEADER: value})
    except ProtocolError as exc:
        raise ProtocolError(f"{BATCH_PROMPT_ENV} is not a valid prompt: {exc}", field=BATCH_PROMPT_ENV) from None
    if request.encode_only or request.image_id is not None:
        raise ProtocolError(
            f"{BATCH_PROMPT_ENV} must hold a prompt (no image_id, no encode_only)", field=BATCH_PROMPT_ENV
        )
    return request


def batch_prompt(environ: Mapping[str, str] | None = None) -> str | None:
    """The raw environment value, or None when this container is not running a transform job."""
    value = (os.environ if environ is None else environ).get(BATCH_PROMPT_ENV)
    return value if value and value.strip() else None


def check_batch_prompt(environ: Mapping[str, str] | None = None) -> SegmentRequest | None:
    """Validate the environment prompt at start-up (raises :class:`ProtocolError`); None if unset."""
    value = batch_prompt(environ)
    return None if value is None else decode_batch_prompt(value)


def describe_batch_prompt(request: SegmentRequest) -> str:
    """One line for the container log: what every record of the job is asked."""
    p = request.prompt
    parts = []
    if p.text is not None:
        parts.append(f"text {p.text!r}")
    if p.points:
        parts.append(f"{len(p.points)} point(s)")
    if p.box is not None:
        parts.append(f"box {tuple(round(v) for v in p.box.as_xyxy())}")
    return f"batch transform: every record is asked {', '.join(parts)} (from {BATCH_PROMPT_ENV})"


def with_batch_prompt(
    headers: Mapping[str, str], content_type: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``headers`` plus the environment prompt for a raw-image request that carries none."""
    out = dict(headers)
    value = batch_prompt(environ)
    if value is None:
        return out
    kind = media_type(content_type)
    if not (kind in IMAGE_TYPES or kind.startswith("image/")):
        return out
    names = {k.lower() for k in out}
    if REQUEST_HEADER.lower() in names or CUSTOM_ATTRIBUTES_HEADER.lower() in names:
        return out
    out[CUSTOM_ATTRIBUTES_HEADER] = value
    return out


def record_status(status: int, environ: Mapping[str, str] | None = None) -> int:
    """The HTTP status to answer: 200 for a refused record (4xx) inside a transform job."""
    if batch_prompt(environ) is not None and 400 <= status < 500:
        return 200
    return status


__all__ = [
    "BATCH_PROMPT_ENV",
    "MAX_ENV_VALUE_BYTES",
    "batch_prompt",
    "check_batch_prompt",
    "decode_batch_prompt",
    "describe_batch_prompt",
    "encode_batch_prompt",
    "record_status",
    "with_batch_prompt",
]
