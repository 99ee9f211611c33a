"""Errors of the packaging and local dry-run steps. ``str(err)`` is a sentence for a person."""

from __future__ import annotations


class PackagingError(Exception):
    """The model package cannot be built or fails its verification."""


class PackageIndexUnreachable(PackagingError):
    """Wheels are needed that are not in the cache and the package index cannot be reached."""


class LocalDlcError(Exception):
    """The local DLC serving stack cannot be set up or started (not: the package misbehaved)."""
