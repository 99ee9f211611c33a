"""The prompt assistant's answer: :class:`AssistantAnswer`, the JSON schema a reply must match
(:func:`answer_schema`), and the strict reading of a reply (:func:`parse_reply`,
:func:`validate_answer`) and of a whole chat completion.

Whatever the server promised, the reply is validated here (:class:`AssistantNotJSONError` when it
is not JSON, :class:`AssistantSchemaError` when it is JSON of the wrong shape). Phrases are
normalised (lower case, one space, no dots inside — a dot would split a phrase of the text prompt
in two) and must be at most :data:`MAX_PHRASE_WORDS` words.

Re-exported by :mod:`inference.assistant`. Qt-free and AWS-free.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from inference.assistant_errors import (
    AssistantNotJSONError,
    AssistantRefusalError,
    AssistantSchemaError,
    _cap,
    _excerpt,
    scrub,
)

MAX_PHRASES = 12
MAX_PHRASE_WORDS = 6
MAX_PHRASE_CHARS = 60

MODE_JSON_SCHEMA, MODE_JSON_OBJECT, MODE_TEXT = "json_schema", "json_object", "text"
MODES: tuple[str, ...] = (MODE_JSON_SCHEMA, MODE_JSON_OBJECT, MODE_TEXT)  # the fallback order


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


# -- reading a completion ---------------------------------------------------------------------------
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
