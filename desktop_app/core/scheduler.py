"""The inference worker's scheduling policy, without Qt: what runs next on the one backend.

:class:`InferenceScheduler` owns the queues, the condition variable that guards them and the loop
that drains them. Requests are plain method calls from any thread (they only queue work and set
:class:`~inference.cancel.CancelToken` s, so they never wait for a model); :meth:`run` executes the
work in the one thread that drives the backend and reports through a :class:`SchedulerSink`. The
GUI's :class:`desktop_app.gui.worker.InferenceWorker` runs :meth:`run` in a QThread and turns the
sink calls into Qt signals; tests drive it on a plain thread with a fake backend.

Policy (docs/adr/0005-canvas-and-worker.md):

* The latest prediction wins: a new :meth:`predict` replaces the queued one and cancels the running
  one (cause ``SUPERSEDED``); a superseded request gets no answer at all.
* Priorities: backend switch > prediction > encoding of the image on screen > batch call >
  prefetch. Predictions and batch calls wait while a backend loads; prefetch waits for a backend.
* A prediction on the image being encoded lets the encoder run (its work is reused); one on
  another image cancels it. More urgent work preempts (cause ``PREEMPTED``) a running batch call
  or prefetch, which is re-queued rather than lost.
* A backend switch keeps the latest prompt and runs it on the new backend.
* :meth:`stop` cancels everything (cause ``CLOSING``) and releases waiting batch callers.

Re-queueing is decided by the token's :class:`~inference.cancel.CancelReason`, never its message.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from desktop_app.core.image_cache import DecodedImageCache
from inference.cancel import AnyToken, CancelReason, CancelToken
from inference.errors import BackendUnavailableError, Cancelled, InferenceError
from inference.images import ImageSource
from inference.prompts import Prompt

if TYPE_CHECKING:
    from inference.backends.base import SegmentationBackend
    from inference.results import BackendInfo, Prediction

DEFAULT_PREFETCH_COUNT = 2
WAITING_FOR_BACKEND = "loading model… your prompt will run when it is ready"
NO_BACKEND = "no segmentation backend is loaded yet; choose one in the model menu"


class SchedulerSink(Protocol):
    """Where the scheduler reports. Called from the loop thread, except ``status`` with
    :data:`WAITING_FOR_BACKEND`, which :meth:`InferenceScheduler.predict` reports at once from the
    calling thread so the person sees why nothing happens yet."""

    def prediction_ready(self, request_id: int, prediction: Prediction) -> None: ...

    def failed(self, request_id: int, message: str) -> None: ...

    def backend_changed(self, info: BackendInfo) -> None: ...

    def backend_failed(self, message: str) -> None: ...

    def encoded(self, image_key: str) -> None: ...

    def status(self, text: str) -> None: ...

    def busy_changed(self, busy: bool) -> None: ...


@dataclass(frozen=True, kw_only=True, eq=False)
class ImageRef:
    """Which image a request is about: a file path, or an already decoded array with its key."""

    path: str | None = None
    array: np.ndarray | None = field(default=None, repr=False)
    key: str | None = None

    def __post_init__(self) -> None:
        if self.path is None and self.array is None:
            raise ValueError("an ImageRef needs a path or an array")

    @property
    def identity(self) -> str:
        """A string naming the image (its key if known, else its path)."""
        return self.key or str(self.path)

    @property
    def source(self) -> ImageSource | None:
        """The file behind the pixels, handed to backends (``None`` for an array alone)."""
        return ImageSource(path=self.path) if self.path is not None else None

    def same_image(self, other: ImageRef) -> bool:
        """Whether both name the same pixels (by key when both are known, else by path)."""
        if self.key is not None and other.key is not None:
            return self.key == other.key
        return self.path is not None and self.path == other.path


class JobKind(enum.Enum):
    """What a job does, in priority order (a backend switch, not a job, comes before all)."""

    PREDICT = "predict"
    ENCODE = "encode"
    BATCH = "batch"
    PREFETCH = "prefetch"


@dataclass(kw_only=True, eq=False)
class BatchCall:
    """One blocking prediction for a background thread. Mutable on purpose: the loop fills in
    ``result`` or ``error``, then sets ``done``, which the waiting caller blocks on."""

    image: np.ndarray = field(repr=False)
    prompt: Prompt
    cancel: CancelToken
    source: ImageSource | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    def finish(self, *, error: BaseException | None = None, result: Any = None) -> None:
        self.result, self.error = result, error
        self.done.set()


@dataclass(frozen=True, kw_only=True, eq=False)
class Job:
    """One unit of work for the loop. ``token`` cancels all of it; ``encode_token`` only its
    encoding (a newer prompt on the same image still wants that encoding)."""

    kind: JobKind
    image: ImageRef
    request_id: int = 0
    prompt: Prompt | None = None
    call: BatchCall | None = None  # kind BATCH
    token: CancelToken = field(default_factory=CancelToken)
    encode_token: CancelToken = field(default_factory=CancelToken)

    @property
    def preempted(self) -> bool:
        """Cancelled only so that more urgent work runs first: still wanted, run it again."""
        return self.token.cause is CancelReason.PREEMPTED


@dataclass(frozen=True, kw_only=True)
class _BackendRequest:
    backend: str | SegmentationBackend  # a registry name, or a backend to adopt
    options: dict[str, Any] = field(default_factory=dict)
    # more options, computed in the loop thread (secrets from the OS keyring, which may block
    # while it asks to be unlocked), merged over ``options``
    options_from: Callable[[], Mapping[str, Any]] | None = None

    @property
    def name(self) -> str:
        return self.backend if isinstance(self.backend, str) else self.backend.name


BackendFactory = Callable[..., "SegmentationBackend"]


def _registry_factory(name: str, **options: Any) -> SegmentationBackend:
    from inference.backends.registry import create_backend  # imported in the loop thread only

    return create_backend(name, **options)


class InferenceScheduler:
    """Queues and policy of the one inference thread. Requests are thread-safe and non-blocking
    (except :meth:`predict_blocking`); :meth:`run` is the loop, for exactly one thread."""

    def __init__(
        self,
        *,
        sink: SchedulerSink,
        cache: DecodedImageCache | None = None,
        prefetch_count: int = DEFAULT_PREFETCH_COUNT,
        backend_factory: BackendFactory = _registry_factory,
    ) -> None:
        self.sink = sink
        self.cache = cache or DecodedImageCache()
        self.prefetch_count = max(0, int(prefetch_count))
        self._factory = backend_factory
        self._cond = threading.Condition()
        self._stop = False
        self._backend_request: _BackendRequest | None = None
        self._pending_predict: Job | None = None
        self._pending_encode: Job | None = None
        self._prefetch: deque[ImageRef] = deque()
        self._batch: deque[BatchCall] = deque()
        self._running: Job | None = None
        self._next_id = 0
        self._latest_predict = 0
        self._backend_name: str | None = None
        self._backend: SegmentationBackend | None = None  # only the loop thread assigns it
        self._owns_backend = False  # created here (unloaded here) rather than adopted
        self._loading = False  # a backend request is queued or loading: predictions wait

    # -- state -----------------------------------------------------------------------------
    @property
    def backend(self) -> SegmentationBackend | None:
        """The loaded backend (``None`` before the first load, while switching, after a failure)."""
        return self._backend

    @property
    def backend_name(self) -> str | None:
        """The name last asked for with :meth:`set_backend` / :meth:`use_backend`."""
        return self._backend_name

    @property
    def running(self) -> Job | None:
        """The job the loop is running now (for tests and diagnostics)."""
        with self._cond:
            return self._running

    @property
    def stopped(self) -> bool:
        return self._stop

    def is_idle(self) -> bool:
        """No job running or queued (prefetching included, once a backend can run it)."""
        with self._cond:
            return self._idle_locked()

    def pending(self) -> dict[JobKind, int]:
        """How many jobs of each kind wait in the queues (the running one not included)."""
        with self._cond:
            return {
                JobKind.PREDICT: int(self._pending_predict is not None),
                JobKind.ENCODE: int(self._pending_encode is not None),
                JobKind.BATCH: len(self._batch),
                JobKind.PREFETCH: len(self._prefetch),
            }

    def wait_until(self, predicate: Callable[[], bool], *, timeout: float) -> bool:
        """Block until ``predicate()`` holds, re-checked at every change of the queues or of the
        running job (for tests and diagnostics: no polling). Returns whether it held in time."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    # -- requests (any thread) ------------------------------------------------------------
    def set_backend(
        self, name: str, *, options_from: Callable[[], Mapping[str, Any]] | None = None, **options: Any
    ) -> None:
        """Switch to backend ``name`` (created by the factory in the loop thread). Answers with
        ``backend_changed(info)`` or ``backend_failed(message)``. ``options_from()`` gives more
        options, called in the loop thread (e.g. credentials read from the keyring)."""
        self._request_backend(_BackendRequest(backend=name, options=dict(options), options_from=options_from))

    def use_backend(self, backend: SegmentationBackend) -> None:
        """Adopt an already created backend (loaded in the loop thread, never unloaded here)."""
        self._request_backend(_BackendRequest(backend=backend))

    def predict(self, *, image: ImageRef, prompt: Prompt) -> int:
        """Queue ``prompt`` on ``image``; returns the id ``prediction_ready`` will carry.
        Supersedes every earlier prediction."""
        with self._cond:
            self._next_id += 1
            job = Job(kind=JobKind.PREDICT, image=image, request_id=self._next_id, prompt=prompt)
            self._latest_predict = job.request_id
            if self._pending_predict is not None:
                self._pending_predict.token.cancel(CancelReason.SUPERSEDED)
            self._pending_predict = job
            running = self._running
            if running is not None:
                other_image = not running.image.same_image(image)
                if running.kind is JobKind.PREDICT:
                    running.token.cancel(CancelReason.SUPERSEDED)
                elif running.kind is JobKind.BATCH:
                    running.token.cancel(CancelReason.PREEMPTED)  # interactive first; requeued
                elif other_image:
                    running.token.cancel(
                        CancelReason.PREEMPTED if running.kind is JobKind.PREFETCH else CancelReason.SUPERSEDED
                    )
                if other_image:
                    running.encode_token.cancel(CancelReason.SUPERSEDED)
            waiting = self._loading
            self._cond.notify_all()
        if waiting:
            self.sink.status(WAITING_FOR_BACKEND)
        return job.request_id

    def predict_blocking(
        self, *, image: np.ndarray, prompt: Prompt, cancel: CancelToken | None = None, source: ImageSource | None = None
    ) -> Any:
        """Run ``prompt`` on ``image`` and wait for the Prediction (batch; never on the GUI thread).

        Queued below interactive prompts and encodings, above prefetching; waits while a backend
        loads; re-queued when preempted. Raises the backend's error, or ``Cancelled`` (``cancel``
        was set, or the scheduler stopped).
        """
        call = BatchCall(image=image, prompt=prompt, cancel=cancel or CancelToken(), source=source)
        with self._cond:
            if self._stop:
                raise Cancelled(CancelReason.CLOSING.value)
            self._batch.append(call)
            self._cond.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def encode(self, image: ImageRef) -> None:
        """Encode ``image`` (the one on screen) soon: after predictions, before batch and prefetch.

        Replaces a not yet started encode request; a running encoding of another image is
        cancelled (a preempted prefetch or batch call is re-queued).
        """
        with self._cond:
            self._pending_encode = Job(kind=JobKind.ENCODE, image=image)
            running = self._running
            if running is not None and running.kind is not JobKind.PREDICT and not running.image.same_image(image):
                running.token.cancel(
                    CancelReason.SUPERSEDED if running.kind is JobKind.ENCODE else CancelReason.PREEMPTED
                )
            self._cond.notify_all()

    def prefetch(self, paths: Sequence[str]) -> None:
        """Encode the first ``prefetch_count`` of ``paths`` when idle. Replaces the previous
        list; a running prefetch of an image no longer in it is cancelled."""
        wanted = [ImageRef(path=str(p)) for p in list(paths)[: self.prefetch_count]]
        with self._cond:
            self._prefetch = deque(wanted)
            running = self._running
            if (
                running is not None
                and running.kind is JobKind.PREFETCH
                and not any(running.image.same_image(w) for w in wanted)
            ):
                running.token.cancel(CancelReason.NO_LONGER_WANTED)
            self._cond.notify_all()

    def cancel(self, request_id: int | None = None) -> None:
        """Cancel prediction ``request_id`` (default: the latest); its answer is never reported."""
        with self._cond:
            target = request_id if request_id is not None else self._latest_predict
            if self._pending_predict is not None and self._pending_predict.request_id == target:
                self._pending_predict = None
            running = self._running
            if running is not None and running.kind is JobKind.PREDICT and running.request_id == target:
                running.token.cancel(CancelReason.USER)
            if target == self._latest_predict:
                self._latest_predict = -target  # no answer with this id is wanted any more
            self._cond.notify_all()

    def stop(self) -> None:
        """Cancel everything, release waiting batch callers with ``Cancelled`` and end :meth:`run`
        (after its current, possibly uninterruptible, step)."""
        with self._cond:
            self._stop = True
            while self._batch:
                self._batch.popleft().finish(error=Cancelled(CancelReason.CLOSING.value))
            for job in (self._pending_predict, self._running):
                if job is not None:
                    job.token.cancel(CancelReason.CLOSING)
                    job.encode_token.cancel(CancelReason.CLOSING)
            self._cond.notify_all()

    def release_backend(self) -> None:
        """Unload the backend if it was created here (call after :meth:`run` has returned).
        Raises what ``unload`` raises."""
        backend, self._backend = self._backend, None
        if backend is not None and self._owns_backend:
            backend.unload()

    # -- the loop (one thread) ------------------------------------------------------------
    def run(self) -> None:
        """Drain the queues until :meth:`stop`. Every failure becomes a sink message; the loop
        itself only ends when stopped."""
        while True:
            work = self._take()
            if work is None:
                return
            if isinstance(work, _BackendRequest):
                try:
                    self._switch_backend(work)
                finally:
                    with self._cond:
                        self._loading = self._backend_request is not None
                        self._cond.notify_all()
                continue
            self.sink.busy_changed(True)
            try:
                self._run_job(work)
            finally:
                with self._cond:
                    if self._running is work:
                        self._running = None
                    idle = self._idle_locked()
                    self._cond.notify_all()
                if idle:
                    self.sink.busy_changed(False)

    def _take(self) -> Job | _BackendRequest | None:
        with self._cond:
            while True:
                if self._stop:
                    return None
                if self._backend_request is not None:
                    request, self._backend_request = self._backend_request, None
                    return request
                job: Job | None = None
                if self._pending_predict is not None and not self._loading:
                    job, self._pending_predict = self._pending_predict, None
                elif self._pending_encode is not None:
                    job, self._pending_encode = self._pending_encode, None
                elif self._batch and not self._loading:
                    call = self._batch.popleft()
                    job = Job(kind=JobKind.BATCH, image=ImageRef(array=call.image), call=call)
                elif self._prefetch and self._backend is not None:
                    job = Job(kind=JobKind.PREFETCH, image=self._prefetch.popleft())
                if job is not None:
                    self._running = job
                    self._cond.notify_all()
                    return job
                self._cond.wait()

    def _request_backend(self, request: _BackendRequest) -> None:
        """Queue a backend change: cancel the running job but keep the latest prompt, which runs
        on the new backend once it is loaded (a running batch call is re-queued)."""
        with self._cond:
            self._backend_name = request.name
            self._backend_request = request
            self._loading = True
            running = self._running
            if (
                running is not None
                and running.kind is JobKind.PREDICT
                and self._pending_predict is None
                and running.request_id == self._latest_predict
            ):
                self._pending_predict = Job(
                    kind=JobKind.PREDICT, image=running.image, request_id=running.request_id, prompt=running.prompt
                )
            if running is not None:
                running.token.cancel(
                    CancelReason.PREEMPTED if running.kind is JobKind.BATCH else CancelReason.BACKEND_CHANGED
                )
                running.encode_token.cancel(CancelReason.BACKEND_CHANGED)
            self._pending_encode = None
            self._cond.notify_all()

    def _switch_backend(self, request: _BackendRequest) -> None:
        self.sink.status(f"Loading the {request.name} backend…")
        with self._cond:
            old, self._backend = self._backend, None
        if old is not None and self._owns_backend and old is not request.backend:
            try:
                old.unload()
            except Exception:  # an unload problem must not block the new backend
                pass
        try:
            options = dict(request.options)
            if request.options_from is not None:
                options.update(request.options_from())
            backend = self._factory(request.backend, **options) if isinstance(request.backend, str) else request.backend
            backend.ensure_loaded()
            info = backend.info()
        except InferenceError as exc:
            self._report_backend_failure(str(exc))
            return
        except Exception as exc:  # unexpected: still a message, never the end of the loop
            self._report_backend_failure(f"the {request.name} backend could not start: {exc}")
            return
        with self._cond:
            self._backend = backend
            self._owns_backend = isinstance(request.backend, str)
        self.sink.backend_changed(info)
        self.sink.status(f"{info.backend} ({info.model}) on {info.device}")

    def _report_backend_failure(self, message: str) -> None:
        self.sink.backend_failed(message)
        self.sink.status(message)

    def _run_job(self, job: Job) -> None:
        if job.kind is JobKind.BATCH:
            self._run_batch_call(job)
            return
        backend = self._backend
        if backend is None:
            if job.kind is JobKind.PREDICT:
                self.sink.failed(job.request_id, NO_BACKEND)
            return
        try:
            self._run_model_job(job, backend)
            self._report_remote(backend)
        except Cancelled:
            if job.kind is JobKind.PREFETCH and job.preempted:
                self._requeue_prefetch(job.image)
        except InferenceError as exc:
            if job.kind is JobKind.PREDICT:
                self.sink.failed(job.request_id, str(exc))
            else:
                self.sink.status(str(exc))
            self._report_remote(backend)
        except Exception as exc:  # a bug in a backend: a message, and the loop goes on
            message = f"{type(exc).__name__}: {exc}"
            if job.kind is JobKind.PREDICT:
                self.sink.failed(job.request_id, f"the prediction failed: {message}")
            else:
                self.sink.status(f"encoding failed: {message}")

    def _run_model_job(self, job: Job, backend: SegmentationBackend) -> None:
        job.token.raise_if_cancelled()
        image, key = self._pixels(job.image)
        source = job.image.source
        job.token.raise_if_cancelled()
        if job.kind is not JobKind.PREDICT:  # ENCODE or PREFETCH
            if not backend.is_encoded(key):
                started = time.perf_counter()
                backend.encode(image, image_key=key, cancel=AnyToken(job.token, job.encode_token), source=source)
                self.sink.status(f"encoded {job.image.path or 'image'} in {time.perf_counter() - started:.2f} s")
            self.sink.encoded(key)
            return
        assert job.prompt is not None
        if not backend.is_encoded(key):  # only another image's prompt may cancel this encoding
            backend.encode(image, image_key=key, cancel=job.encode_token, source=source)
            self.sink.encoded(key)
        job.token.raise_if_cancelled()
        prediction = backend.predict(image, job.prompt, image_key=key, cancel=job.token, source=source)
        with self._cond:
            superseded = job.request_id != self._latest_predict
        if job.token.cancelled or superseded:
            return  # a newer prompt exists, or this one was cancelled: no answer
        self.sink.prediction_ready(job.request_id, prediction)

    def _report_remote(self, backend: SegmentationBackend) -> None:
        """A remote backend's status line (where it runs, the last round trip or error in words)."""
        describe = getattr(backend, "call_status", None)
        if callable(describe):
            notice = getattr(backend, "notice", "")
            self.sink.status(describe() + (f" — {notice}" if notice else ""))

    def _run_batch_call(self, job: Job) -> None:
        call = job.call
        assert call is not None
        try:
            backend = self._backend
            if backend is None:
                raise BackendUnavailableError("no segmentation backend is loaded; choose one in the model menu")
            token = AnyToken(job.token, call.cancel)
            token.raise_if_cancelled()
            result = backend.predict(call.image, call.prompt, cancel=token, source=call.source)
        except Cancelled as exc:
            if job.preempted and not call.cancel.cancelled and self._requeue_batch(call):
                return  # more urgent work came first: the call runs again later
            call.finish(error=exc)
        except BaseException as exc:  # handed to the waiting thread, which reports it
            call.finish(error=exc)
        else:
            call.finish(result=result)

    def _requeue_batch(self, call: BatchCall) -> bool:
        with self._cond:
            if self._stop:
                return False
            self._batch.appendleft(call)
            self._cond.notify_all()
            return True

    def _requeue_prefetch(self, image: ImageRef) -> None:
        with self._cond:
            if self._stop:
                return
            if len(self._prefetch) < self.prefetch_count and image.path is not None:
                self._prefetch.appendleft(image)
            self._cond.notify_all()

    def _pixels(self, ref: ImageRef) -> tuple[np.ndarray, str]:
        if ref.array is not None:
            return ref.array, ref.key or self.cache.key_for_array(ref.array)
        assert ref.path is not None
        decoded = self.cache.get_or_load(ref.path)
        return decoded.array, decoded.key

    def _idle_locked(self) -> bool:
        return (
            self._running is None
            and self._pending_predict is None
            and self._pending_encode is None
            and not self._batch
            and not (self._prefetch and self._backend is not None)
            and self._backend_request is None
        )
