"""Cooperative cancellation shared by backends, the GUI worker and the server.

A token carries two things: ``reason``, a message for a person (what :class:`Cancelled` says), and
``cause``, a :class:`CancelReason` that code decides on (the worker re-queues a batch call only when
its cause is ``PREEMPTED``). Deciding on the enum, never on the message, lets the wording change
freely.
"""

from __future__ import annotations

import enum
import threading

from inference.errors import Cancelled


class CancelReason(enum.Enum):
    """Why work was cancelled; the value is the default message for a person."""

    SUPERSEDED = "superseded by a newer request"  # a newer request replaces this one: drop it
    PREEMPTED = "preempted by more urgent work"  # still wanted: run it again later
    BACKEND_CHANGED = "the backend changed"
    NO_LONGER_WANTED = "no longer wanted"
    USER = "cancelled by the user"
    CLOSING = "the app is closing"
    OTHER = "cancelled"  # a free-text reason (a server timeout, a batch run's own cancel)


class CancelToken:
    """A flag a requester sets; long-running code calls :meth:`raise_if_cancelled` between steps."""

    __slots__ = ("_event", "reason", "cause")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        self.cause: CancelReason | None = None

    def cancel(self, reason: str | CancelReason = CancelReason.SUPERSEDED) -> None:
        """Set the flag. ``reason`` is a :class:`CancelReason` or a free-text message (cause OTHER).

        A later call overwrites an earlier one's reason: the last requester's intent counts (a
        preempted job that is then cancelled for closing must not be re-queued).
        """
        if isinstance(reason, CancelReason):
            self.cause, self.reason = reason, reason.value
        else:
            self.cause, self.reason = CancelReason.OTHER, reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason or "cancelled")


class AnyToken(CancelToken):
    """Cancelled when it or any of ``parts`` is: one token to hand to a backend when two
    requesters (e.g. the worker and a batch run) may each cancel the same call."""

    __slots__ = ("_parts",)

    def __init__(self, *parts: CancelToken) -> None:
        super().__init__()
        self._parts = parts

    @property
    def parts(self) -> tuple[CancelToken, ...]:
        return self._parts

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or any(part.cancelled for part in self._parts)

    def raise_if_cancelled(self) -> None:
        super().raise_if_cancelled()
        for part in self._parts:
            part.raise_if_cancelled()


def check(token: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``token`` is set; ``None`` never cancels."""
    if token is not None:
        token.raise_if_cancelled()
