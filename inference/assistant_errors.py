"""The prompt assistant's errors, and the mapping from the ``openai`` SDK's exceptions to them.

Every failure a person can fix is an :class:`AssistantError` (a :class:`StudioError`) whose text
says what happened and what to do. The API key never appears in a message or a log line: texts
that come from the server are scrubbed (:func:`scrub`).

The mapping reads an ``openai`` exception by its attributes (``status_code``, ``body``,
``response.headers``), so this module does not import the SDK. Re-exported by
:mod:`inference.assistant`. Qt-free and AWS-free.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from inference.errors import StudioError

OPENAI_HOST = "api.openai.com"


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


# -- secrets in texts ----------------------------------------------------------------------------
_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+)")


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the given secret values and without anything that looks like an API key."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "****")
    return _KEY_LIKE.sub("****", out)


# -- texts of messages -----------------------------------------------------------------------------
def _excerpt(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _seconds(value: float) -> str:
    if value < 10:
        text = f"{value:.1f}".rstrip("0").rstrip(".")
    else:
        text = str(int(math.ceil(value)))
    return f"{text} second" + ("" if text == "1" else "s")


# -- openai exceptions -> errors ---------------------------------------------------------------------
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
