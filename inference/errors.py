"""Errors the inference layer raises. Each carries a message meant for a person, not a traceback."""

from __future__ import annotations


class InferenceError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing explanation."""


class PromptError(InferenceError, ValueError):
    """The prompt is unusable (empty text, point outside the image, NaN threshold, ...).

    ``field`` names the offending part so servers can report it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ImageLoadError(InferenceError, ValueError):
    """The image cannot be read (corrupt, truncated, unsupported)."""


class ImageTooLargeError(ImageLoadError):
    """The image has more pixels than the configured limit."""


class WeightsMissingError(InferenceError, FileNotFoundError):
    """A model's weights are not on disk and could not be fetched.

    The message names the model, where it would come from and where to put the file by hand.
    """


class BackendUnavailableError(InferenceError):
    """A backend cannot run here (missing package, unknown name, device not present)."""


class Cancelled(InferenceError):
    """The request was cancelled before it finished (a newer prompt superseded it)."""
