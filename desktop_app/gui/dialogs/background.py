"""Run one long job (export, batch, download) off the GUI thread, with progress and cancel.

The job is a plain function ``job(report, cancel) -> result`` run in a Python thread; it calls
``report(done, total, text)`` now and then and checks ``cancel`` (an
:class:`inference.cancel.CancelToken`). Results come back ONLY through Qt signals, which are
queued onto the GUI thread, so the job never touches a widget.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

from inference.cancel import CancelReason, CancelToken
from inference.errors import Cancelled, InferenceError


class Report(Protocol):
    def __call__(self, done: int, total: int | None, text: str = "") -> None: ...


Job = Callable[[Report, CancelToken], Any]


class BackgroundTask(QObject):
    """One job at a time. Signals: ``progress(done, total, text)`` (total -1 = unknown),
    ``finished(result)``, ``failed(message)``, ``cancelled(message)``; exactly one of the last three
    ends every run, followed by ``ended()``."""

    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)
    ended = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._token = CancelToken()
        self._over = threading.Event()  # the job returned (its thread may still be emitting)

    @property
    def running(self) -> bool:
        """The job has not returned yet. False as soon as its result signal can arrive: a slot
        of ``finished`` may start the next job while the old thread is still on its way out."""
        return self._thread is not None and self._thread.is_alive() and not self._over.is_set()

    def start(self, job: Job, *, name: str = "background-task") -> None:
        if self.running:
            raise RuntimeError("a job is already running")
        if self._thread is not None:
            self._thread.join()  # its job is over; only its last signals were left to send
        self._token = CancelToken()
        token = self._token
        over = self._over = threading.Event()

        def report(done: int, total: int | None, text: str = "") -> None:
            self.progress.emit(int(done), -1 if total is None else int(total), text)

        def run() -> None:
            outcome: tuple[Any, Any]  # (the signal that ends this run, its argument)
            try:
                result = job(report, token)
            except Cancelled as exc:
                outcome = (self.cancelled, str(exc) or "cancelled")
            except InferenceError as exc:
                outcome = (self.failed, str(exc))
            except OSError as exc:
                outcome = (self.failed, f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
            except Exception as exc:  # a bug: a sentence for the person, details on stderr
                traceback.print_exc()
                outcome = (self.failed, f"{type(exc).__name__}: {exc}")
            else:
                outcome = (self.cancelled, token.reason or "cancelled") if token.cancelled else (self.finished, result)
            over.set()  # before the signal: a slot of it may start the next job
            signal, value = outcome
            signal.emit(value)
            self.ended.emit()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def cancel(self, reason: str | CancelReason = "cancelled by the user") -> None:
        self._token.cancel(reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job's thread ends (for closing and tests); True if it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
