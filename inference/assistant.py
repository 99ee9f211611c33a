"""The prompt assistant: a chat model turns an instruction ("every damaged car part, not
reflections") into the short noun phrases a text prompt needs ("dent. scratch. broken headlight.").

It speaks OpenAI's **Chat Completions** API through the ``openai`` SDK, because that is the one
surface the OpenAI API and the OpenAI-compatible local servers (Ollama, LM Studio, vLLM,
llama.cpp) all serve. The answer's shape is asked for in the strongest way the server accepts,
falling back when a server rejects a ``response_format`` (HTTP 400/422 naming it):

1. ``{"type": "json_schema", "json_schema": {..., "strict": true}}`` (structured output);
2. ``{"type": "json_object"}`` (JSON mode; the schema is in the instructions);
3. no ``response_format`` at all: plain text, read by a strict parser (one JSON object, optionally
   in a ```json fence; anything else is an error).

Whatever the server promised, the reply is validated here against :func:`answer_schema`
(:class:`AssistantNotJSONError` when it is not JSON, :class:`AssistantSchemaError` when it is JSON
of the wrong shape). Phrases are normalised (lower case, one space, no dots inside — a dot would
split a phrase of the text prompt in two) and must be at most :data:`MAX_PHRASE_WORDS` words.

Labels: when the project's label names are offered, the model may map each phrase to one of them
(``label``; names it did not get are ignored). :meth:`AssistantAnswer.prompt_phrases` then uses
the label's name as the phrase, so the detections come back labelled with the project's class
names through the one labelling rule (``desktop_app.core.prediction_policy``: a detection is
labelled with the phrase it matched).

The image is opt-in: :func:`prepare_image_jpeg` makes a JPEG whose longest side is at most
:data:`MAX_IMAGE_SIDE` and :func:`suggest_phrases` sends it as a data-URL image part. The caller
must tell the person each time an image leaves the machine (:func:`image_notice`).

Every failure a person can fix is an :class:`AssistantError` (a :class:`StudioError`) whose text
says what happened and what to do. The API key never appears in a message or a log line: texts
that come from the server are scrubbed (:func:`scrub`).

Qt-free and AWS-free: the desktop app, the CLI and the server use it.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import io
import json
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from inference.cancel import CancelToken
from inference.errors import Cancelled, StudioError

MAX_PHRASES = 12
MAX_PHRASE_WORDS = 6
MAX_PHRASE_CHARS = 60
MAX_INSTRUCTION_CHARS = 2000
MAX_IMAGE_SIDE = 768
DEFAULT_TIMEOUT = 60.0
OPENAI_HOST = "api.openai.com"

MODE_JSON_SCHEMA, MODE_JSON_OBJECT, MODE_TEXT = "json_schema", "json_object", "text"
MODES: tuple[str, ...] = (MODE_JSON_SCHEMA, MODE_JSON_OBJECT, MODE_TEXT)  # the fallback order

_T = TypeVar("_T")


# -- errors ---------------------------------------------------------------------------------------
class AssistantError(StudioError):
    """The prompt assistant could not answer; ``str(err)`` says why and what to do."""


class AssistantConfigError(AssistantError):
    """Nothing to ask: no API key, no model, an empty instruction."""


class AssistantImageError(AssistantConfigError):
    """The image to send cannot be read."""


class AssistantAuthError(AssistantError):
    """The server refused the API key (401) or the key may not use the model (403)."""


class AssistantRateLimitError(AssistantError):
    """Too many requests or no quota left (429). ``retry_after`` in seconds when the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, quota: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.quota = quota


class AssistantTimeoutError(AssistantError):
    """The server did not answer in time."""


class AssistantServerError(AssistantError):
    """The server failed (5xx)."""


class AssistantConnectionError(AssistantError):
    """The server cannot be reached (refused, offline, DNS, TLS)."""


class AssistantRequestError(AssistantError):
    """The server rejected the request for another reason (unknown model, bad base URL, 4xx)."""


class AssistantRefusalError(AssistantError):
    """The model refused the instruction. ``refusal`` is its own words."""

    def __init__(self, message: str, *, refusal: str = "") -> None:
        super().__init__(message)
        self.refusal = refusal


class AssistantNotJSONError(AssistantError):
    """The reply was not the JSON object that was asked for."""


class AssistantSchemaError(AssistantError):
    """The reply was JSON, but not of the asked shape (or a phrase breaks the rules)."""


# -- the answer -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AssistantAnswer:
    """What the assistant suggested.

    ``phrases``: short normalised noun phrases, in the model's order, without duplicates.
    ``box_thresholds``: phrase -> detection threshold, only for phrases the model gave one for.
    ``labels``: phrase -> one of the offered label names (only when labels were offered and one fits).
    ``notes``: the model's remark (what it left out and why), may be empty.
    ``mode``: which response format the server accepted (:data:`MODES`).
    """

    phrases: tuple[str, ...]
    box_thresholds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    notes: str = ""
    mode: str = MODE_JSON_SCHEMA

    def prompt_phrases(self) -> tuple[str, ...]:
        """The phrases to run: a phrase mapped to a label is replaced by the label's name (so its
        detections carry that label), duplicates dropped, order kept."""
        out: list[str] = []
        for phrase in self.phrases:
            label = self.labels.get(phrase)
            candidate = normalise_phrase(label) if label else phrase
            if candidate and candidate not in out:
                out.append(candidate)
        return tuple(out)

    def prompt_text(self) -> str:
        """The text prompt of :meth:`prompt_phrases`: ``"dent. scratch."``."""
        return " ".join(f"{p}." for p in self.prompt_phrases())

    def suggested_box_threshold(self) -> float | None:
        """The lowest per-phrase threshold the model suggested (one prompt has one threshold), or None."""
        return min(self.box_thresholds.values()) if self.box_thresholds else None


# -- the schema and the messages ---------------------------------------------------------------
def answer_schema(labels: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON schema of a reply (OpenAI strict structured-output rules: every property required,
    no extra properties, "optional" = may be null)."""
    item: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "phrase": {
                "type": "string",
                "maxLength": MAX_PHRASE_CHARS,
                "description": f"a short noun phrase naming one kind of object, at most "
                f"{MAX_PHRASE_WORDS} words, no punctuation",
            },
            "box_threshold": {
                "type": ["number", "null"],
                "description": "detection threshold 0.05-0.95 for this phrase, or null for the default",
            },
        },
        "required": ["phrase", "box_threshold"],
    }
    if labels:
        item["properties"]["label"] = {
            "anyOf": [{"type": "string", "enum": list(labels)}, {"type": "null"}],
            "description": "the project's label this phrase belongs to, or null when none fits",
        }
        item["required"].append("label")
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "phrases": {"type": "array", "items": item, "maxItems": MAX_PHRASES},
            "notes": {"type": "string", "description": "one short sentence for the person, may be empty"},
        },
        "required": ["phrases", "notes"],
    }


SYSTEM_PROMPT = (
    "You write text prompts for Grounding DINO, an open-vocabulary object detector. The person "
    "describes what they want segmented in an image; you answer with the short noun phrases the "
    "detector should look for. Rules: each phrase names one concrete, visible kind of object "
    f'("dented car door", "scratch", "person"), at most {MAX_PHRASE_WORDS} words, lower case, no '
    "punctuation, no verbs, no negations (leave out what the person excludes and say so in notes); "
    f"at most {MAX_PHRASES} phrases, the fewest that cover the request. box_threshold: null unless "
    "the objects are small or unusual (lower, e.g. 0.2) or easily confused (higher, e.g. 0.4). "
)
LABELS_PROMPT = (
    "The project's labels are listed below. When a phrase is an instance of one of them, set "
    "label to that exact label name; otherwise null. Prefer phrases that match a label."
)


def _user_text(instruction: str, labels: Sequence[str], *, mode: str, schema: Mapping[str, Any], image: bool) -> str:
    parts = [f"Instruction: {instruction}"]
    if labels:
        parts.append(LABELS_PROMPT + "\nLabels: " + json.dumps(list(labels), ensure_ascii=False))
    if image:
        parts.append("The image to annotate is attached; use it to pick phrases for what is really there.")
    if mode != MODE_JSON_SCHEMA:
        parts.append(
            "Reply with one JSON object only, no other text, matching this JSON schema:\n"
            + json.dumps(schema, ensure_ascii=False)
        )
    return "\n\n".join(parts)


def _messages(
    instruction: str, labels: Sequence[str], image_jpeg: bytes | None, *, mode: str, schema: Mapping[str, Any]
) -> list[dict[str, Any]]:
    text = _user_text(instruction, labels, mode=mode, schema=schema, image=image_jpeg is not None)
    content: Any = text
    if image_jpeg is not None:
        url = "data:image/jpeg;base64," + base64.b64encode(image_jpeg).decode("ascii")
        content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def _response_format(mode: str, schema: Mapping[str, Any]) -> dict[str, Any] | None:
    if mode == MODE_JSON_SCHEMA:
        return {
            "type": "json_schema",
            "json_schema": {"name": "segmentation_phrases", "strict": True, "schema": dict(schema)},
        }
    if mode == MODE_JSON_OBJECT:
        return {"type": "json_object"}
    return None


# -- phrases and parsing ---------------------------------------------------------------------------
_EDGE = " \t\r\n.,;:!?\"'`*-_()[]{}<>"


def normalise_phrase(text: str) -> str:
    """``" Dented  Car-Door. "`` -> ``"dented car-door"``: lower case, single spaces, no dots or
    semicolons inside (they would split a text prompt), no punctuation at the ends."""
    cleaned = str(text).replace(".", " ").replace(";", " ").replace("\n", " ").lower()
    return " ".join(cleaned.split()).strip(_EDGE)


_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_reply(
    content: str | None, *, labels: Sequence[str] = (), mode: str = MODE_JSON_SCHEMA, where: str = "the assistant"
) -> AssistantAnswer:
    """The answer in ``content`` (a reply's message text), validated; raises
    :class:`AssistantNotJSONError` or :class:`AssistantSchemaError`."""
    text = (content or "").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text:
        raise AssistantNotJSONError(
            f"{_cap(where)} sent an empty answer. Try again, or use a model that "
            "supports JSON output (structured outputs or JSON mode)."
        )
    try:
        data = json.loads(text)
    except ValueError:
        raise AssistantNotJSONError(
            f"{_cap(where)} did not answer with JSON (it began: {_excerpt(text)!r}). Try again, or use a "
            "model that supports JSON output (structured outputs or JSON mode)."
        ) from None
    return validate_answer(data, labels=labels, mode=mode, where=where)


def validate_answer(
    data: Any, *, labels: Sequence[str] = (), mode: str = MODE_JSON_SCHEMA, where: str = "the assistant"
) -> AssistantAnswer:
    """Check ``data`` (parsed JSON) against :func:`answer_schema` and normalise it.

    Lenient only where a weaker server commonly differs and the meaning is unambiguous: ``notes``
    may be missing, a phrase item may be a bare string, a label that was not offered is ignored,
    extra keys are ignored."""

    def off(detail: str) -> AssistantSchemaError:
        return AssistantSchemaError(
            f"{_cap(where)} answered in the wrong shape: {detail}. Try again, or "
            "use a model that supports structured outputs."
        )

    if not isinstance(data, dict):
        raise off(f"expected a JSON object, got {_json_type(data)}")
    items = data.get("phrases")
    if items is None:
        raise off('"phrases" is missing')
    if not isinstance(items, list):
        raise off(f'"phrases" must be a list, got {_json_type(items)}')
    if len(items) > MAX_PHRASES:
        raise off(f"{len(items)} phrases, at most {MAX_PHRASES} are allowed")
    notes = data.get("notes", "")
    if notes is None:
        notes = ""
    if not isinstance(notes, str):
        raise off(f'"notes" must be text, got {_json_type(notes)}')
    by_lower = {name.strip().lower(): name for name in labels}
    phrases: list[str] = []
    thresholds: dict[str, float] = {}
    mapping: dict[str, str] = {}
    for i, item in enumerate(items, 1):
        if isinstance(item, str):
            item = {"phrase": item}
        if not isinstance(item, dict):
            raise off(f"phrase {i} must be an object, got {_json_type(item)}")
        raw = item.get("phrase")
        if not isinstance(raw, str):
            raise off(
                f'phrase {i} has no "phrase" text'
                if raw is None
                else f'phrase {i}: "phrase" must be text, got {_json_type(raw)}'
            )
        phrase = normalise_phrase(raw)
        if not phrase:
            raise off(f"phrase {i} is empty")
        words = len(phrase.split())
        if words > MAX_PHRASE_WORDS or len(phrase) > MAX_PHRASE_CHARS:
            raise off(f"phrase {i} ({_excerpt(phrase, 40)!r}) is longer than {MAX_PHRASE_WORDS} words")
        threshold = item.get("box_threshold")
        if threshold is not None and not _unit_number(threshold):
            raise off(f'phrase {i}: "box_threshold" must be a number from 0 to 1 or null, got {threshold!r}')
        label = item.get("label")
        if label is not None and not isinstance(label, str):
            raise off(f'phrase {i}: "label" must be text or null, got {_json_type(label)}')
        if phrase in phrases:
            continue
        phrases.append(phrase)
        if threshold is not None:
            thresholds[phrase] = float(threshold)
        if label and label.strip().lower() in by_lower:
            mapping[phrase] = by_lower[label.strip().lower()]
    if not phrases:
        said = f" It said: {_excerpt(notes, 200)}" if notes.strip() else ""
        raise AssistantSchemaError(
            f"{_cap(where)} suggested no phrases for this instruction.{said} "
            "Rephrase the instruction, or type the phrases yourself."
        )
    return AssistantAnswer(
        phrases=tuple(phrases),
        box_thresholds=MappingProxyType(thresholds),
        labels=MappingProxyType(mapping),
        notes=notes.strip(),
        mode=mode,
    )


def _unit_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0.0 <= value <= 1.0
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def _excerpt(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- the image -------------------------------------------------------------------------------------
def prepare_image_jpeg(image: Any, *, max_side: int = MAX_IMAGE_SIDE, quality: int = 85) -> bytes:
    """A JPEG of ``image`` (a path, the file's bytes, or an RGB/grey uint8 array) whose longest side
    is at most ``max_side`` pixels, EXIF-rotated, without metadata. Raises
    :class:`AssistantImageError` when the image cannot be read."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    pil: Image.Image
    try:
        if isinstance(image, (str, os.PathLike)):
            pil = Image.open(image)
        elif isinstance(image, (bytes, bytearray, memoryview)):
            pil = Image.open(io.BytesIO(bytes(image)))
        else:
            import numpy as np

            pil = Image.fromarray(np.asarray(image))
        pil = ImageOps.exif_transpose(pil)
        pil = pil.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, TypeError) as exc:
        name = f" {os.fspath(image)!r}" if isinstance(image, (str, os.PathLike)) else ""
        raise AssistantImageError(
            f"The image{name} cannot be read for the assistant ({exc}). "
            "Ask without the image, or open a readable image."
        ) from None
    pil.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    pil.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def server_name(base_url: str | None) -> str:
    """Who receives the request, for messages: ``"OpenAI"`` or the host (``"127.0.0.1:11434"``)."""
    if not base_url:
        return "OpenAI"
    parts = urlsplit(base_url)
    host = parts.netloc or base_url
    return "OpenAI" if parts.hostname == OPENAI_HOST else host


def image_notice(base_url: str | None, *, max_side: int = MAX_IMAGE_SIDE) -> str:
    """The sentence a caller shows each time the image is sent."""
    return (
        f"The image is sent to {server_name(base_url)} (a JPEG at most {max_side} px on its "
        "longest side) with this instruction."
    )


# -- secrets in texts ----------------------------------------------------------------------------
_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+)")


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the given secret values and without anything that looks like an API key."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "****")
    return _KEY_LIKE.sub("****", out)


# -- asking ------------------------------------------------------------------------------------------
def suggest_phrases(
    *,
    instruction: str,
    labels: Sequence[str] = (),
    image_jpeg: bytes | None = None,
    model: str,
    api_key: str | None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cancel: CancelToken | None = None,
    modes: Sequence[str] = MODES,
) -> AssistantAnswer:
    """Ask the model at ``base_url`` (None: OpenAI) for the phrases of ``instruction``.

    ``labels``: the project's label names to map phrases to. ``image_jpeg``: a JPEG from
    :func:`prepare_image_jpeg`, sent only when given (tell the person: :func:`image_notice`).
    ``api_key`` may be empty for a local server that needs none (a base URL must be given then).
    ``timeout``: seconds for each request. ``cancel``: a token; when set, :class:`Cancelled` is
    raised at once and the answer, if it still comes, is dropped. ``modes``: the response formats
    to try, in order (default: all, :data:`MODES`).

    Raises an :class:`AssistantError` subclass (see the module docstring) or :class:`Cancelled`.
    """
    instruction = " ".join(str(instruction or "").split())
    if not instruction:
        raise AssistantConfigError(
            'The instruction is empty: say what to find, e.g. "every damaged car part, not reflections".'
        )
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise AssistantConfigError(f"The instruction is longer than {MAX_INSTRUCTION_CHARS} characters: shorten it.")
    model = (model or "").strip()
    if not model:
        raise AssistantConfigError(
            "No assistant model is set: choose one in Settings → OpenAI (e.g. gpt-4o-mini) or pass --model."
        )
    base_url = (base_url or "").strip() or None
    key = (api_key or "").strip()
    if not key:
        if base_url is None:
            raise AssistantConfigError(
                "No OpenAI API key: set OPENAI_API_KEY or enter the key in Settings → OpenAI "
                "(or set a base URL of an OpenAI-compatible local server, which needs none)."
            )
        key = "not-needed"  # local servers ignore it; the SDK insists on one
    if timeout <= 0 or not math.isfinite(timeout):
        raise AssistantConfigError("The assistant timeout must be a positive number of seconds.")
    labels = _clean_labels(labels)
    where = f"the assistant ({server_name(base_url)}, model {model})"
    if not modes:
        raise ValueError("modes is empty")

    import openai

    client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)
    secrets = (key, api_key)
    try:
        for i, mode in enumerate(modes):
            _check(cancel)
            schema = answer_schema(labels)
            request: dict[str, Any] = {
                "model": model,
                "messages": _messages(instruction, labels, image_jpeg, mode=mode, schema=schema),
            }
            fmt = _response_format(mode, schema)
            if fmt is not None:
                request["response_format"] = fmt
            try:
                completion = _run(functools.partial(client.chat.completions.create, **request), cancel, client)
            except openai.APIStatusError as exc:
                if i + 1 < len(modes) and fmt is not None and _rejects_format(exc):
                    continue  # this server does not take this response_format: try the next
                raise _status_error(exc, where=where, base_url=base_url, model=model, secrets=secrets) from None
            except openai.APITimeoutError:
                raise AssistantTimeoutError(
                    f"{_cap(where)} did not answer within {_seconds(timeout)}. Try again, use a faster "
                    "model, or raise the timeout."
                ) from None
            except openai.APIConnectionError as exc:
                raise _connection_error(exc, base_url=base_url, secrets=secrets) from None
            return _answer_of(completion, labels=labels, mode=mode, where=where, secrets=secrets)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
    finally:
        try:
            client.close()
        except Exception:  # pragma: no cover - closing never matters for the answer
            pass


def _clean_labels(labels: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in labels:
        name = str(name).strip()
        if name and name not in out:
            out.append(name)
    return tuple(out)


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()


def _run(call: Callable[[], _T], cancel: CancelToken | None, client: Any) -> _T:
    """``call()``; with a token, in a helper thread so a cancel returns at once (the request is
    abandoned: its answer, if any, is dropped; it ends at the latest at the client's timeout)."""
    if cancel is None:
        return call()
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            box.put((True, call()))
        except BaseException as exc:  # handed to the caller's thread
            box.put((False, exc))

    threading.Thread(target=work, name="assistant-request", daemon=True).start()
    while True:
        try:
            ok, value = box.get(timeout=0.05)
        except queue.Empty:
            if cancel.cancelled:
                raise Cancelled(cancel.reason or "cancelled") from None
            continue
        if ok:
            return value  # type: ignore[no-any-return]
        raise value


def _answer_of(
    completion: Any, *, labels: Sequence[str], mode: str, where: str, secrets: Sequence[str | None]
) -> AssistantAnswer:
    choices = getattr(completion, "choices", None) or []
    if not choices:
        raise AssistantNotJSONError(f"{_cap(where)} sent a reply without an answer (no choices). Try again.")
    choice = choices[0]
    message = choice.message
    refusal = getattr(message, "refusal", None)
    if refusal:
        text = scrub(_excerpt(refusal, 300), secrets)
        raise AssistantRefusalError(
            f"{_cap(where)} refused: {text!r}. Rephrase the instruction, or type the phrases yourself.", refusal=text
        )
    reason = getattr(choice, "finish_reason", None)
    if reason == "content_filter":
        raise AssistantRefusalError(
            f"{_cap(where)} stopped: its content filter blocked the answer. Rephrase "
            "the instruction, or type the phrases yourself.",
            refusal="content_filter",
        )
    content = message.content
    if isinstance(content, list):  # a few servers send content parts
        content = "".join(str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content)
    try:
        return parse_reply(content, labels=labels, mode=mode, where=where)
    except AssistantNotJSONError as exc:
        if reason == "length":
            raise AssistantNotJSONError(
                f"{_cap(where)} ran out of room before finishing its answer. Try a "
                "shorter instruction or another model."
            ) from None
        raise AssistantNotJSONError(scrub(str(exc), secrets)) from None


_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured output", "response format")


def _rejects_format(exc: Any) -> bool:
    """Whether a 400/422 says the server does not take this ``response_format``."""
    if getattr(exc, "status_code", None) not in (400, 422):
        return False
    text = f"{_server_message(exc)} {getattr(exc, 'body', '')}".lower()
    return any(word in text for word in _FORMAT_WORDS)


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if body.get("message"):
            return str(body["message"])
        if body.get("detail"):
            return str(body["detail"])
    elif isinstance(body, str) and body.strip():
        return body
    return str(getattr(exc, "message", "") or "")


def _error_code(exc: Any) -> str:
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict):
        return f"{inner.get('code') or ''} {inner.get('type') or ''}".strip()
    return str(getattr(exc, "code", "") or "")


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date), or None."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = lower.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _seconds(value: float) -> str:
    if value < 10:
        text = f"{value:.1f}".rstrip("0").rstrip(".")
    else:
        text = str(int(math.ceil(value)))
    return f"{text} second" + ("" if text == "1" else "s")


def _status_error(
    exc: Any, *, where: str, base_url: str | None, model: str, secrets: Sequence[str | None]
) -> AssistantError:
    status = int(getattr(exc, "status_code", 0) or 0)
    said = scrub(_excerpt(_server_message(exc), 200), secrets)
    said_part = f" (it said: {said})" if said else ""
    if status == 401:
        return AssistantAuthError(
            f"{_cap(where)} rejected the API key (401){said_part}. Check the key in Settings → OpenAI "
            "or OPENAI_API_KEY."
        )
    if status == 403:
        return AssistantAuthError(
            f"{_cap(where)} refused access (403){said_part}. The key may not use model {model!r}: check "
            "the key's project and permissions, or choose another model."
        )
    if status == 429:
        headers = getattr(getattr(exc, "response", None), "headers", None)
        wait = retry_after_seconds(headers)
        code = _error_code(exc).lower()
        if "insufficient_quota" in code or "quota" in said.lower():
            return AssistantRateLimitError(
                f"{_cap(where)} says the account has no quota left (429){said_part}. Check the plan and "
                "billing of the account, or use another key.",
                retry_after=wait,
                quota=True,
            )
        when = f"Try again in {_seconds(wait)}." if wait is not None else "Wait a moment and try again."
        return AssistantRateLimitError(
            f"{_cap(where)} is rate limited (429): too many requests. {when}", retry_after=wait
        )
    if status >= 500:
        return AssistantServerError(
            f"{_cap(where)} failed with a server error ({status}){said_part}. Try again later; if it "
            "keeps failing, check the server's status or logs."
        )
    if status == 404:
        return AssistantRequestError(
            f"{_cap(where)} answered 404{said_part}. Check the model name (is {model!r} served there?) "
            "and the base URL (it usually ends in /v1)."
        )
    return AssistantRequestError(
        f"{_cap(where)} rejected the request ({status}){said_part}. Check the model and the base URL "
        "in Settings → OpenAI."
    )


def _connection_error(exc: Any, *, base_url: str | None, secrets: Sequence[str | None]) -> AssistantError:
    cause = exc.__cause__ or exc.__context__
    detail = ""
    while cause is not None and not detail:
        text = str(cause).strip()
        if text:
            detail = text
        cause = cause.__cause__ or cause.__context__
    lowered = detail.lower()
    target = base_url or f"https://{OPENAI_HOST}/v1"
    if "refused" in lowered:
        why = "the connection was refused"
        fix = "Check that the server is running and the base URL (host and port) is right."
    elif any(w in lowered for w in ("name or service", "nodename", "getaddrinfo", "resolve", "name resolution")):
        why = "the host name could not be resolved"
        fix = "Check that you are online and the base URL is spelled right."
    elif "ssl" in lowered or "certificate" in lowered:
        why = "the secure connection failed"
        fix = "Check the base URL (http or https) and the server's certificate."
    else:
        why = "the network failed" + (f" ({scrub(_excerpt(detail, 120), secrets)})" if detail else "")
        fix = "Check that you are online and the base URL is right."
    return AssistantConnectionError(f"Cannot reach the assistant at {target}: {why}. {fix}")
