"""One inference thread that owns the backend, fed by a bounded queue.

The thread loads the model first (so the HTTP server answers ``/ping`` with 503 while it loads,
and with the reason if loading fails), then runs jobs one at a time. Submitting to a full queue
raises :class:`ServerBusyError` at once (the server answers 503 + Retry-After) instead of
letting requests pile up; a job whose caller gave up (timeout) is cancelled, or skipped if it
has not started.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field

from inference.backends.base import SegmentationBackend
from inference.cancel import CancelToken
from inference.errors import Cancelled
from inference.protocol import SegmentRequest
from inference.results import BackendInfo
from inference.server.errors import ModelNotReadyError, ServerBusyError
from inference.server.runner import RunnerLimits, RunResult, SegmentationRunner

log = logging.getLogger("langsam.server")


class WorkerState(str, enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(eq=False)
class Job:
    body: bytes
    content_type: str | None
    headers: Mapping[str, str]
    request_id: str
    scope: str = ""  # who sent it (client-chosen image ids are visible only within a scope)
    request: SegmentRequest | None = None  # already decoded (by the HTTP handler): body is not read
    phrases: tuple[str, ...] | None = None  # the assistant's phrases (prompt.instruction), echoed
    cancel: CancelToken = field(default_factory=CancelToken)
    future: Future[RunResult] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


_STOP = object()


class InferenceWorker:
    """Owns one backend on one thread. ``backend_factory`` builds (not loads) the backend."""

    def __init__(
        self,
        backend_factory: Callable[[], SegmentationBackend],
        *,
        queue_size: int = 8,
        limits: RunnerLimits | None = None,
        retry_after_s: int = 1,
        unload_on_stop: bool = True,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self._factory = backend_factory
        self._queue: queue.Queue[Job | object] = queue.Queue(maxsize=queue_size)  # a Job or _STOP
        self.queue_size = queue_size
        self.limits = limits or RunnerLimits()
        self.retry_after_s = retry_after_s
        self.unload_on_stop = unload_on_stop  # False when the backend is shared with its creator
        self.state = WorkerState.LOADING
        self.reason = "the model is loading"
        self.runner: SegmentationRunner | None = None
        self.info: BackendInfo | None = None
        self.load_seconds: float | None = None
        self.processed = 0
        self.cancelled = 0  # jobs skipped or stopped because nobody waited for them any more
        self._thread = threading.Thread(target=self._main, name="langsam-inference", daemon=True)
        self._ready = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> InferenceWorker:
        self._thread.start()
        return self

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Block until loading finished (either way); True if ready."""
        self._ready.wait(timeout)
        return self.state is WorkerState.READY

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            self.state = WorkerState.STOPPED
            return
        while True:  # drain what is waiting: those callers get a clear 503, not a hang
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(job, Job) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(ModelNotReadyError("the server is shutting down"))
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self.state = WorkerState.STOPPED

    # -- requests -------------------------------------------------------------------------------
    def submit(self, job: Job) -> Future[RunResult]:
        """Queue ``job``; raises :class:`ModelNotReadyError` or :class:`ServerBusyError` at once."""
        if self.state is WorkerState.LOADING:
            raise ModelNotReadyError(
                "the model is still loading; try again shortly", retry_after=max(self.retry_after_s, 2)
            )
        if self.state is not WorkerState.READY:
            raise ModelNotReadyError(f"the model is not available: {self.reason}")
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise ServerBusyError(
                f"the server is busy ({self.queue_size} requests waiting); retry in {self.retry_after_s} s",
                retry_after=self.retry_after_s,
            ) from None
        return job.future

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    # -- the thread -----------------------------------------------------------------------------
    def _main(self) -> None:
        t0 = time.perf_counter()
        try:
            backend = self._factory()
            backend.ensure_loaded()
            self.runner = SegmentationRunner(backend, limits=self.limits)
            self.info = self.runner.info()
        except Exception as exc:  # noqa: BLE001 - any load failure becomes /ping's reason
            self.reason = str(exc) or type(exc).__name__
            self.state = WorkerState.FAILED
            log.error("model load failed", extra={"event": "load_failed", "reason": self.reason})
            self._ready.set()
            return
        self.load_seconds = time.perf_counter() - t0
        self.reason = ""
        self.state = WorkerState.READY
        log.info(
            "model loaded",
            extra={
                "event": "loaded",
                "backend": self.info.backend,
                "model": self.info.model,
                "device": self.info.device,
                "seconds": round(self.load_seconds, 2),
            },
        )
        self._ready.set()
        while True:
            job = self._queue.get()
            if job is _STOP:
                break
            assert isinstance(job, Job)  # the queue holds jobs and the one _STOP
            self._run(job)
        if not self.unload_on_stop:
            return
        try:
            backend.unload()
        except Exception:  # noqa: BLE001
            log.exception("unloading the backend failed")

    def _run(self, job: Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            job.body = b""
            self.cancelled += 1
            return  # the caller gave up while it waited
        if job.cancel.cancelled:  # its client went away or timed out while it waited: skip it
            job.body = b""
            self.cancelled += 1
            job.future.set_exception(_cancelled(job))
            return
        try:
            assert self.runner is not None
            if job.request is not None:
                result: RunResult = self.runner.run(
                    job.request,
                    headers=job.headers,
                    cancel=job.cancel,
                    request_id=job.request_id,
                    scope=job.scope,
                    phrases=job.phrases,
                )
            else:
                result = self.runner.handle(
                    job.body,
                    content_type=job.content_type,
                    headers=job.headers,
                    cancel=job.cancel,
                    request_id=job.request_id,
                    scope=job.scope,
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            if isinstance(exc, Cancelled):
                self.cancelled += 1  # stopped part-way by its cancel token
            error: BaseException | None = exc
        else:
            error = None
        job.body, job.request = b"", None  # do not keep request bytes alive after the answer
        self.processed += 1  # counted before the caller can see the answer
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)


def _cancelled(job: Job) -> Exception:
    from inference.server.errors import RequestTimeoutError

    return RequestTimeoutError(job.cancel.reason or "the request was cancelled before it ran")
