"""Request coding of the wire protocol: ``request_object``, ``encode_request``, ``decode_request``.

Parsing and field-named validation of both request shapes (a JSON body, or raw image bytes
with the prompt in a header). Re-exported by :mod:`inference.protocol`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from inference.prompts import Box, Exemplar, Point, Prompt
from inference.protocol_fields import ID_RE, check_id, decode_base64, decode_logits, encode_logits, parse_json
from inference.protocol_types import (
    CUSTOM_ATTRIBUTES_HEADER,
    IMAGE_TYPES,
    JSON_TYPE,
    MAX_CUSTOM_ATTRIBUTES,
    MAX_EXEMPLARS,
    MAX_INSTRUCTION_CHARS,
    MAX_LABEL_CHARS,
    MAX_LABELS,
    MAX_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    REQUEST_HEADER,
    MaskInputRef,
    PayloadTooLargeError,
    ProtocolError,
    SegmentRequest,
)

_TOP_KEYS = frozenset({"protocol", "image", "image_id", "prompt", "options"})
_PROMPT_KEYS = frozenset({"text", "points", "box", "mask_input", "exemplars"})  # exemplars: SAM 3 (additive)
_EXEMPLAR_KEYS = frozenset({"box", "positive"})
# additive: previous logits by reference (mask_input_ref), the server's prompt assistant (instruction, labels)
_PROMPT_KEYS = _PROMPT_KEYS | {"mask_input_ref", "instruction", "labels"}
_MASK_REF_KEYS = frozenset({"ref", "candidate"})
_OPTION_KEYS = frozenset(
    {"multimask", "box_threshold", "text_threshold", "max_detections", "nms_iou", "return_logits", "backend", "model"}
    | {"encode_only"}  # issue 9 part 3 (remote backends): prefetch = upload + encode, no prompt
    | {"keep_logits"}  # additive: keep the logits for mask_input_ref, answer only logits_ref
)
_DEFAULTS = Prompt()

# ---------------------------------------------------------------------------------------------
# field checks


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
# encoding


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
    if request.keep_logits:
        options["keep_logits"] = True
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


# ---------------------------------------------------------------------------------------------
# decoding


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_request(
    body: bytes | str, *, content_type: str | None, headers: Mapping[str, str] | None = None
) -> SegmentRequest:
    """Parse and validate a request. Raises :class:`ProtocolError` naming the bad field."""
    headers = headers or {}
    kind = media_type(content_type)
    if kind == JSON_TYPE or kind.endswith("+json"):
        obj = parse_json(body, what="the request body", field="body")
        image_field = obj.get("image") if isinstance(obj, Mapping) else None
        image = decode_base64(image_field, field="image") if image_field is not None else None
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
        obj = parse_json(attributes, what=f"the {CUSTOM_ATTRIBUTES_HEADER} header", field=CUSTOM_ATTRIBUTES_HEADER)
        if isinstance(obj, Mapping) and "image" in obj:
            raise ProtocolError("the image is the body of a raw-image request, not a header field", field="image")
        return _request_from_object(obj, image=raw)
    raise ProtocolError(
        f"unsupported Content-Type {content_type!r}: send application/json or an image type such as image/jpeg",
        field="Content-Type",
        status=415,
        code="UnsupportedMediaType",
    )


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
    return_logits, keep_logits = op.get("return_logits", False), op.get("keep_logits", False)
    for key, flag in (("return_logits", return_logits), ("keep_logits", keep_logits)):
        if not isinstance(flag, bool):
            raise ProtocolError(f"options.{key} must be true or false, got {flag!r}", field=f"options.{key}")
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
        keep_logits=keep_logits,
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
        if not isinstance(name, str) or not 1 <= len(name) <= 64 or not ID_RE.match(name):
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
