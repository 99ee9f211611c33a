"""Response coding of the wire protocol: ``encode_response``/``decode_response`` and the error
bodies ``encode_error``/``decode_error``. Re-exported by :mod:`inference.protocol`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

from inference.masks import mask_to_rle, rle_to_mask
from inference.protocol_fields import decode_logits, encode_logits, parse_json
from inference.protocol_types import (
    MAX_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    ErrorInfo,
    PayloadTooLargeError,
    ProtocolError,
    SegmentResponse,
)
from inference.results import Candidate, Prediction, PredictionKind

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
    capabilities: Mapping[str, Any] | None = None,
) -> bytes:
    """The JSON body for one prediction. Raises :class:`PayloadTooLargeError` (never truncates).
    ``logits_ref``: the server kept this answer's logits (``return_logits``) under that name;
    ``phrases``: the phrases of the text prompt the server's assistant wrote (``prompt.instruction``);
    ``capabilities``: what the backend takes (an encode-only answer: endpoints have no ``/info``)."""
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
    if capabilities is not None:  # additive
        obj["capabilities"] = dict(capabilities)
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
    obj = parse_json(body, what="the response", field="response")
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
    ref, phrases, capabilities = obj.get("logits_ref"), obj.get("phrases"), obj.get("capabilities")
    return SegmentResponse(
        prediction=prediction,
        image_id=str(obj["image_id"]),
        protocol=version,
        request_id=obj.get("request_id"),
        logits_ref=ref if isinstance(ref, str) and ref else None,
        phrases=tuple(str(p) for p in phrases) if isinstance(phrases, list) else None,
        capabilities=MappingProxyType(dict(capabilities)) if isinstance(capabilities, Mapping) else None,
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
