"""The errors the deploy tool and the endpoint client raise: :class:`CloudError` and its kinds.

``CloudError`` is a :class:`~inference.errors.StudioError` (the application's one error base), not
an ``InferenceError``: a failed deploy or invocation is not a model problem. ``str(err)`` is a
complete explanation for a person: what went wrong, in plain words, and what to do about it.
``code`` names the row of the failure table (:mod:`cloud.failure_table`) it came from, so the app can
show the same text and link the same documentation row.
"""

from __future__ import annotations

from inference.errors import StudioError


class CloudError(StudioError):
    """Something on the AWS side failed; the message says what and how to fix it."""

    def __init__(self, message: str, *, fix: str = "", code: str = "unknown", detail: str = "") -> None:
        self.message = message
        self.fix = fix
        self.code = code
        self.detail = detail  # the raw AWS text (error message, FailureReason, log line), secrets-free
        text = message
        if fix:
            text += f" Fix: {fix}"
        if detail and detail not in message:
            text += f" (AWS said: {detail})"
        super().__init__(text)


class DeployError(CloudError):
    """Deploying, waiting for or tearing down an endpoint failed."""


class EndpointInvocationError(CloudError):
    """Invoking a deployed endpoint failed.

    For a ``ModelError`` (HTTP 424) the container's own status and message are kept, with the
    CloudWatch log stream that holds its traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        fix: str = "",
        code: str = "unknown",
        detail: str = "",
        original_status: int | None = None,
        original_message: str | None = None,
        log_stream_arn: str | None = None,
    ) -> None:
        self.original_status = original_status
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn
        super().__init__(message, fix=fix, code=code, detail=detail)


class EndpointPayloadTooLargeError(EndpointInvocationError):
    """The request or response exceeds the 6 MiB real-time limit and no asynchronous path exists."""
