"""The error of the local dry run's own machinery. ``str(err)`` is a sentence for a person."""

from __future__ import annotations

from inference.errors import StudioError


class LocalDlcError(StudioError):
    """The local DLC serving stack cannot be set up or started (not: the package misbehaved)."""
