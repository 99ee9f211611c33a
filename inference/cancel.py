"""Cooperative cancellation shared by backends, the GUI worker and the server."""

from __future__ import annotations

import threading

from inference.errors import Cancelled


class CancelToken:
    """A flag a requester sets; long-running code calls :meth:`raise_if_cancelled` between steps."""

    __slots__ = ("_event", "reason")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "superseded by a newer request") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason or "cancelled")


def check(token: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``token`` is set; ``None`` never cancels."""
    if token is not None:
        token.raise_if_cancelled()
