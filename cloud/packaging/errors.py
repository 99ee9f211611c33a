"""Errors of building and verifying a model package. ``str(err)`` is a sentence for a person.

They derive from :class:`~inference.errors.StudioError`, the application's one error base, so a
dialog or the CLI shows them as a message, never as a crash.
"""

from __future__ import annotations

from inference.errors import StudioError


class PackagingError(StudioError):
    """The model package cannot be built or fails its verification."""


class PackageIndexUnreachable(PackagingError):
    """Wheels are needed that are not in the cache and the package index cannot be reached."""
