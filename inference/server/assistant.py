"""The server's prompt assistant: ``prompt.instruction`` -> the text prompt, before any inference.

``langsam-studio serve --assistant-model M [--assistant-base-url URL]`` (the key only from
``OPENAI_API_KEY``) lets a client send ``prompt.instruction`` ("every damaged car part, not
reflections") instead of ``prompt.text``. The HTTP handler calls :func:`resolve_instruction`
BEFORE the request is queued for the inference thread (the chat model's round trip never holds
the backend), replaces the prompt's text with :meth:`AssistantAnswer.prompt_text` and echoes
:meth:`AssistantAnswer.prompt_phrases` in the response's ``phrases``. Only the instruction and
the label names go to the assistant: never the image.

Errors are protocol errors a client can act on: no assistant configured (400
``AssistantNotConfigured``), rate limited (429 + ``Retry-After``), timed out (504), unreachable /
failing / refusing the server's credentials (502, details only in the server's log), a refusal or
an unusable answer (422, field ``prompt.instruction``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass

from inference.cancel import CancelToken
from inference.protocol import ProtocolError, SegmentRequest

log = logging.getLogger("langsam.server")

FIELD = "prompt.instruction"
MAX_ASSISTANT_TIMEOUT_S = 30.0
API_KEY_ENV = "OPENAI_API_KEY"


class AssistantFailed(ProtocolError):
    """An assistant failure as the protocol answers it; ``retry_after`` (seconds) for a 429."""

    def __init__(
        self, message: str, *, status: int, code: str, field: str | None = FIELD, retry_after: int | None = None
    ) -> None:
        super().__init__(message, field=field, status=status, code=code)
        self.retry_after = retry_after


@dataclass(frozen=True, kw_only=True)
class AssistantSettings:
    model: str | None = None
    base_url: str | None = None
    timeout_s: float = MAX_ASSISTANT_TIMEOUT_S


def not_configured() -> ProtocolError:
    return ProtocolError(
        "this server has no prompt assistant: send prompt.text, or start it with --assistant-model",
        field=FIELD,
        code="AssistantNotConfigured",
    )


def resolve_instruction(
    request: SegmentRequest,
    *,
    settings: AssistantSettings,
    cancel: CancelToken | None = None,
    supports_text: bool | None = True,
    retry_after_default: int = 1,
) -> tuple[SegmentRequest, tuple[str, ...]]:
    """(the request with ``prompt.text`` written by the assistant and no instruction, the phrases).

    Blocking (run it off the event loop). Raises :class:`ProtocolError` (incl.
    :class:`AssistantFailed`) or ``Cancelled``."""
    from inference import assistant as a

    if not settings.model:
        raise not_configured()
    if supports_text is False:
        raise ProtocolError(
            "this server's backend does not take text prompts, so an instruction cannot be answered: click "
            "points or drag a box",
            field=FIELD,
        )
    assert request.instruction is not None
    try:
        answer = a.suggest_phrases(
            instruction=request.instruction,
            labels=request.labels,
            model=settings.model,
            api_key=os.environ.get(API_KEY_ENV),
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            cancel=cancel,
        )
    except a.AssistantRateLimitError as exc:
        wait = exc.retry_after if exc.retry_after is not None and math.isfinite(exc.retry_after) else None
        retry = max(1, math.ceil(wait)) if wait is not None else retry_after_default
        raise AssistantFailed(
            f"the server's assistant is rate limited; retry in {retry} s, or send prompt.text",
            status=429,
            code="AssistantRateLimited",
            retry_after=retry,
        ) from None
    except a.AssistantTimeoutError:
        raise AssistantFailed(
            f"the server's assistant did not answer within {settings.timeout_s:g} s; retry, or send prompt.text",
            status=504,
            code="AssistantTimeout",
        ) from None
    except (a.AssistantRefusalError, a.AssistantNotJSONError, a.AssistantSchemaError) as exc:
        raise AssistantFailed(
            f"the server's assistant gave no usable phrases for this instruction ({exc}); rephrase it, or send "
            "prompt.text",
            status=422,
            code="AssistantNoAnswer",
        ) from None
    except a.AssistantError as exc:  # connection, server, auth, request, configuration: the server's problem
        log.warning(
            "assistant unavailable",
            extra={"event": "assistant_unavailable", "kind": type(exc).__name__, "reason": str(exc)[:300]},
        )
        raise AssistantFailed(
            "the server's assistant is unavailable; send prompt.text, or try again later",
            status=502,
            code="AssistantUnavailable",
        ) from None
    text = answer.prompt_text()
    if not text:
        raise AssistantFailed(
            "the server's assistant found nothing to look for in this instruction; rephrase it, or send prompt.text",
            status=422,
            code="AssistantNoAnswer",
        )
    prompt = dataclasses.replace(request.prompt, text=text)
    resolved = dataclasses.replace(request, prompt=prompt, instruction=None, labels=())
    return resolved, answer.prompt_phrases()
