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

Whatever the server promised, the reply is validated against :func:`answer_schema`
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

This module is the public face and does the asking (:func:`suggest_phrases`); everything other
code needs is importable from here. The parts live in:

- :mod:`inference.assistant_errors`: the error classes, :func:`scrub`, and the mapping from the
  ``openai`` SDK's exceptions (status, rate limit and ``Retry-After``, connection) to them;
- :mod:`inference.assistant_output`: :class:`AssistantAnswer`, the schema, and the strict reading
  and validation of a reply;
- :mod:`inference.assistant_request`: the instructions, the messages, the ``response_format`` of
  each mode, and the image (:func:`prepare_image_jpeg`, :func:`image_notice`).

Qt-free and AWS-free: the desktop app, the CLI and the server use it.
"""

from __future__ import annotations

import functools
import math
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from inference.assistant_errors import (
    OPENAI_HOST,
    AssistantAuthError,
    AssistantConfigError,
    AssistantConnectionError,
    AssistantError,
    AssistantImageError,
    AssistantNotJSONError,
    AssistantRateLimitError,
    AssistantRefusalError,
    AssistantRequestError,
    AssistantSchemaError,
    AssistantServerError,
    AssistantTimeoutError,
    _cap,
    _connection_error,
    _rejects_format,
    _seconds,
    _status_error,
    retry_after_seconds,
    scrub,
)
from inference.assistant_output import (
    MAX_PHRASE_CHARS,
    MAX_PHRASE_WORDS,
    MAX_PHRASES,
    MODE_JSON_OBJECT,
    MODE_JSON_SCHEMA,
    MODE_TEXT,
    MODES,
    AssistantAnswer,
    _answer_of,
    answer_schema,
    normalise_phrase,
    parse_reply,
    validate_answer,
)
from inference.assistant_request import (
    LABELS_PROMPT,
    MAX_IMAGE_SIDE,
    SYSTEM_PROMPT,
    _messages,
    _response_format,
    image_notice,
    prepare_image_jpeg,
    server_name,
)
from inference.cancel import CancelToken
from inference.errors import Cancelled

__all__ = [
    "DEFAULT_TIMEOUT",
    "LABELS_PROMPT",
    "MAX_IMAGE_SIDE",
    "MAX_INSTRUCTION_CHARS",
    "MAX_PHRASES",
    "MAX_PHRASE_CHARS",
    "MAX_PHRASE_WORDS",
    "MODES",
    "MODE_JSON_OBJECT",
    "MODE_JSON_SCHEMA",
    "MODE_TEXT",
    "OPENAI_HOST",
    "SYSTEM_PROMPT",
    "AssistantAnswer",
    "AssistantAuthError",
    "AssistantConfigError",
    "AssistantConnectionError",
    "AssistantError",
    "AssistantImageError",
    "AssistantNotJSONError",
    "AssistantRateLimitError",
    "AssistantRefusalError",
    "AssistantRequestError",
    "AssistantSchemaError",
    "AssistantServerError",
    "AssistantTimeoutError",
    "answer_schema",
    "image_notice",
    "normalise_phrase",
    "parse_reply",
    "prepare_image_jpeg",
    "retry_after_seconds",
    "scrub",
    "server_name",
    "suggest_phrases",
    "validate_answer",
]

MAX_INSTRUCTION_CHARS = 2000
DEFAULT_TIMEOUT = 60.0

_T = TypeVar("_T")


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
