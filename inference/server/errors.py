"""Turning any exception into the protocol's error (status, code, field, person-facing message)."""

from __future__ import annotations

import re

from inference.errors import (
    BackendUnavailableError,
    Cancelled,
    ImageLoadError,
    ImageTooLargeError,
    InferenceError,
    PromptError,
    WeightsMissingError,
)
from inference.protocol import ErrorInfo, ProtocolError

_OPTION_FIELDS = {"box_threshold", "text_threshold", "max_detections", "nms_iou", "multimask"}
_PROMPT_FIELD = re.compile(r"^(text|box|mask_input|exemplars|points(\[\d+\])?)$")
_EXEMPLAR_FIELD = re.compile(r"^exemplars\[\d+\]$")  # Prompt.validate's per-exemplar errors are about its box


class ServerBusyError(InferenceError):
    """The bounded queue is full: answered 503 with Retry-After."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelNotReadyError(InferenceError):
    """The model is still loading (503 with Retry-After) or failed to load (503 with the reason)."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeoutError(InferenceError):
    """The request took longer than the per-request limit and was cancelled."""


def wire_field(field: str | None) -> str | None:
    """A :class:`PromptError` field ('text', 'points[2]', 'box_threshold') as the wire names it."""
    if not field:
        return None
    if field in _OPTION_FIELDS:
        return f"options.{field}"
    if _PROMPT_FIELD.match(field):
        return f"prompt.{field}"
    if _EXEMPLAR_FIELD.match(field):
        return f"prompt.{field}.box"
    return field


def error_info(exc: BaseException, *, request_id: str | None = None) -> ErrorInfo:
    """Status, code, field and message for any exception; unknown ones hide their details."""
    if isinstance(exc, ProtocolError):
        return ErrorInfo(status=exc.status, code=exc.code, message=str(exc), field=exc.field, request_id=request_id)
    if isinstance(exc, PromptError):
        return ErrorInfo(
            status=400, code="ValidationError", message=str(exc), field=wire_field(exc.field), request_id=request_id
        )
    if isinstance(exc, ImageTooLargeError):
        return ErrorInfo(status=413, code="ImageTooLarge", message=str(exc), field="image", request_id=request_id)
    if isinstance(exc, ImageLoadError):
        return ErrorInfo(status=400, code="InvalidImage", message=str(exc), field="image", request_id=request_id)
    if isinstance(exc, ServerBusyError):
        return ErrorInfo(status=503, code="ServerBusy", message=str(exc), request_id=request_id)
    if isinstance(exc, (ModelNotReadyError, WeightsMissingError, BackendUnavailableError)):
        return ErrorInfo(status=503, code="ModelNotReady", message=str(exc), request_id=request_id)
    if isinstance(exc, (RequestTimeoutError, Cancelled)):
        return ErrorInfo(status=504, code="RequestTimeout", message=str(exc), request_id=request_id)
    if isinstance(exc, InferenceError):
        return ErrorInfo(status=500, code="InferenceError", message=str(exc), request_id=request_id)
    where = f" (request id {request_id})" if request_id else ""
    return ErrorInfo(
        status=500,
        code="InternalError",
        message=f"the server failed unexpectedly ({type(exc).__name__}); see its log{where}",
        request_id=request_id,
    )
