"""The application's one error base, and the errors the inference layer raises.

:class:`StudioError` is the base of every error a person can cause or fix (a bad file, a missing
model, a wrong credential, a failed deploy). ``str(err)`` is a complete sentence for that person;
code that faces a person (GUI, CLI, server) shows it as a message, never as a crash or traceback.
Anything that is not a ``StudioError`` is a bug. It lives here, in the lowest layer, because
``inference/`` may import neither ``cloud/`` nor ``desktop_app/``, and both of those derive from it.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base of every user-facing error in the application: ``str(err)`` says what and what to do."""


class InferenceError(StudioError):
    """A model, prompt, image or weights problem: ``str(err)`` is a complete, user-facing explanation."""


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
