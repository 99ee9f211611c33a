"""The one inference worker: a QObject living in its own QThread that owns the backend.

The GUI never runs a model. It posts requests with plain method calls on :class:`InferenceWorker`
(thread-safe: they only put work in a queue and set cancel tokens) and gets answers ONLY
through signals, delivered queued on the GUI thread:

* ``prediction_ready(request_id, Prediction)`` / ``failed(request_id, message)``
* ``backend_changed(BackendInfo)`` / ``backend_failed(message)``
* ``encoded(image_key)`` (an image's embedding is cached), ``status(str)``, ``busy_changed(bool)``

Scheduling: the latest prediction wins. A new :meth:`InferenceWorker.predict` cancels the running
one (through :class:`inference.cancel.CancelToken`, which backends also check inside the
encoder) and replaces any queued one; the superseded request is dropped without a signal. The
encoder is only cancelled when the new prompt is on a different image (the work is reused
otherwise). When idle the worker encodes the images named by :meth:`prefetch` ahead of time.
A prediction asked for while a backend is loading waits in the queue (still latest-wins) and runs
as soon as the backend is ready; a backend switch keeps the latest prompt and runs it on the new
backend instead of dropping it. Batch work (:meth:`InferenceWorker.predict_blocking`, called from a background thread) runs on
the SAME backend, below interactive prompts and encodings and above prefetching: an interactive
prompt preempts a running batch prediction, which is queued again. Nothing here knows which backend runs: local models, an HTTP server or SageMaker all fit.
torch is never imported on the GUI thread: backends are created inside the worker thread.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop_app.gui.canvas.loading import DecodedImageCache
from inference.cancel import CancelToken
from inference.errors import Cancelled, InferenceError
from inference.prompts import Prompt

DEFAULT_PREFETCH_COUNT = 2
_PREEMPTED = "preempted by more urgent work"
WAITING_FOR_BACKEND = "loading model… your prompt will run when it is ready"
STOP_GRACE_MS = 120_000  # after the first timeout of shutdown(): how long a model load may still take
_UNFINISHED_THREADS: list[QThread] = []  # worker threads still busy at shutdown, kept from destruction


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


@dataclass(kw_only=True, eq=False)
class _BatchCall:
    """One blocking prediction for a background thread: the answer or the error, then ``done``."""

    image: np.ndarray = field(repr=False)
    prompt: Prompt
    cancel: CancelToken
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


@dataclass(kw_only=True, eq=False)
class _Job:
    kind: str  # "predict" | "encode" | "batch" | "prefetch"
    image: ImageRef
    request_id: int = 0
    prompt: Prompt | None = None
    token: CancelToken = field(default_factory=CancelToken)  # cancels the whole job
    encode_token: CancelToken = field(default_factory=CancelToken)  # cancels only its encoding
    call: _BatchCall | None = None  # kind "batch"


class _WorkerLoop(QObject):
    """Runs in the worker thread; drains the queues of :class:`InferenceWorker`."""

    prediction_ready = Signal(int, object)
    failed = Signal(int, str)
    backend_changed = Signal(object)
    backend_failed = Signal(str)
    encoded = Signal(str)
    status = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, owner: "InferenceWorker") -> None:
        super().__init__()
        self._owner = owner
        self.backend: Any = None
        self.owns_backend = False

    @Slot()
    def run(self) -> None:
        owner = self._owner
        while True:
            job, backend_request = owner._take()
            if job is None and backend_request is None:
                return  # shut down
            if backend_request is not None:
                try:
                    self._switch_backend(*backend_request)
                finally:
                    owner._backend_settled()
                continue
            assert job is not None
            self.busy_changed.emit(True)
            try:
                self._run_job(job)
            finally:
                owner._finish(job)
                if owner._idle():
                    self.busy_changed.emit(False)
        # unreachable

    # -- jobs ------------------------------------------------------------------------------
    def _switch_backend(self, name_or_backend: Any, options: dict[str, Any]) -> None:
        from inference.backends.registry import create_backend

        name = name_or_backend if isinstance(name_or_backend, str) else name_or_backend.name
        self.status.emit(f"Loading the {name} backend…")
        old = self.backend
        self.backend = None
        if old is not None and self.owns_backend and old is not name_or_backend:
            try:
                old.unload()
            except Exception:  # an unload problem must not block the new backend
                pass
        try:
            backend = (create_backend(name, **options) if isinstance(name_or_backend, str)
                       else name_or_backend)
            backend.ensure_loaded()
            info = backend.info()
        except InferenceError as exc:
            self.backend_failed.emit(str(exc))
            self.status.emit(str(exc))
            return
        except Exception as exc:  # unexpected: still a message, never a crash of the thread
            message = f"the {name} backend could not start: {exc}"
            self.backend_failed.emit(message)
            self.status.emit(message)
            return
        self.backend = backend
        self.owns_backend = isinstance(name_or_backend, str)  # adopted backends are not unloaded here
        self.backend_changed.emit(info)
        self.status.emit(f"{info.backend} ({info.model}) on {info.device}")

    def _image(self, ref: ImageRef) -> tuple[np.ndarray, str]:
        if ref.array is not None:
            key = ref.key or self._owner.cache.key_for_array(ref.array)
            return ref.array, key
        assert ref.path is not None
        decoded = self._owner.cache.get_or_load(ref.path)
        return decoded.array, decoded.key

    def _run_batch_call(self, job: _Job) -> None:
        call = job.call
        assert call is not None
        try:
            if self.backend is None:
                from inference.errors import BackendUnavailableError

                raise BackendUnavailableError("no segmentation backend is loaded; choose one in the model menu")
            token = _either(job.token, call.cancel)
            token.raise_if_cancelled()
            call.result = self.backend.predict(call.image, call.prompt, cancel=token)
        except Cancelled as exc:
            if job.token.reason == _PREEMPTED and not call.cancel.cancelled:
                self._owner._requeue_batch(call)  # an interactive prompt came first: run it later
                return
            call.error = exc
        except BaseException as exc:  # handed to the waiting thread, which reports it
            call.error = exc
        call.done.set()

    def _run_job(self, job: _Job) -> None:
        if job.kind == "batch":
            self._run_batch_call(job)
            return
        backend = self.backend
        if backend is None:
            if job.kind == "predict":
                self.failed.emit(job.request_id, "no segmentation backend is loaded yet; "
                                                 "choose one in the model menu")
            return
        try:
            job.token.raise_if_cancelled()
            image, key = self._image(job.image)
            job.token.raise_if_cancelled()
            if job.kind in ("encode", "prefetch"):
                if not backend.is_encoded(key):
                    started = time.perf_counter()
                    backend.encode(image, image_key=key, cancel=_either(job.token, job.encode_token))
                    self.status.emit(f"encoded {job.image.path or 'image'} in "
                                     f"{time.perf_counter() - started:.2f} s")
                self.encoded.emit(key)
                return
            assert job.prompt is not None
            if not backend.is_encoded(key):
                backend.encode(image, image_key=key, cancel=job.encode_token)
                self.encoded.emit(key)
            job.token.raise_if_cancelled()
            prediction = backend.predict(image, job.prompt, image_key=key, cancel=job.token)
            if job.token.cancelled or self._owner._superseded(job.request_id):
                return  # a newer prompt exists: drop this result
            self.prediction_ready.emit(job.request_id, prediction)
        except Cancelled:
            if job.kind == "prefetch" and job.token.reason == _PREEMPTED:
                self._owner._requeue_prefetch(job.image)
        except InferenceError as exc:
            if job.kind == "predict":
                self.failed.emit(job.request_id, str(exc))
            else:
                self.status.emit(str(exc))
        except Exception as exc:  # a bug in a backend: report it as a message, keep the thread alive
            message = f"{type(exc).__name__}: {exc}"
            if job.kind == "predict":
                self.failed.emit(job.request_id, f"the prediction failed: {message}")
            else:
                self.status.emit(f"encoding failed: {message}")


class _EitherToken(CancelToken):
    """Cancelled when either of two tokens is."""

    __slots__ = ("_a", "_b")

    def __init__(self, a: CancelToken, b: CancelToken) -> None:
        super().__init__()
        self._a, self._b = a, b

    @property
    def cancelled(self) -> bool:  # type: ignore[override]
        return self._a.cancelled or self._b.cancelled

    def raise_if_cancelled(self) -> None:
        self._a.raise_if_cancelled()
        self._b.raise_if_cancelled()


def _either(a: CancelToken, b: CancelToken) -> CancelToken:
    return _EitherToken(a, b)


class InferenceWorker(QObject):
    """The GUI's handle on the inference thread. Create once, :meth:`start`, :meth:`shutdown`.

    All public methods are non-blocking and may be called from the GUI thread at any time;
    nothing is ever refused while work runs: newer requests supersede older ones.
    """

    prediction_ready = Signal(int, object)  # request_id, inference.results.Prediction
    failed = Signal(int, str)  # request_id, message for a person
    backend_changed = Signal(object)  # inference.results.BackendInfo
    backend_failed = Signal(str)  # message for a person (missing weights, unknown backend, ...)
    encoded = Signal(str)  # image key whose embedding is now cached
    status = Signal(str)  # short progress/status text for the status bar
    busy_changed = Signal(bool)

    def __init__(self, *, prefetch_count: int = DEFAULT_PREFETCH_COUNT,
                 cache: DecodedImageCache | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.prefetch_count = max(0, int(prefetch_count))
        self.cache = cache or DecodedImageCache()
        self._cond = threading.Condition()
        self._stop = False
        self._backend_request: tuple[Any, dict[str, Any]] | None = None
        self._pending_predict: _Job | None = None
        self._pending_encode: _Job | None = None
        self._prefetch: deque[ImageRef] = deque()
        self._batch: deque[_BatchCall] = deque()
        self._running: _Job | None = None
        self._next_id = 0
        self._latest_predict = 0
        self._backend_name: str | None = None
        self._loading = False  # a backend request is queued or being loaded: predictions wait
        self._thread: QThread | None = None
        self._loop: _WorkerLoop | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop = False
        self._thread = QThread()
        self._thread.setObjectName("inference-worker")
        self._loop = _WorkerLoop(self)
        self._loop.moveToThread(self._thread)
        for name in ("prediction_ready", "failed", "backend_changed", "backend_failed", "encoded",
                     "status", "busy_changed"):
            getattr(self._loop, name).connect(getattr(self, name))
        self._thread.started.connect(self._loop.run)
        self._thread.start()

    def shutdown(self, *, timeout_ms: int = 10_000) -> None:
        """Cancel everything, stop the thread and unload the backend."""
        with self._cond:
            self._stop = True
            self._cancel_all_locked("the app is closing")
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.quit()
            if not self._thread.wait(timeout_ms):
                # Work that cannot be interrupted (a model load) is still running. Destroying a
                # running QThread aborts the process, so wait for it, then keep it alive if needed.
                print("LangSAM Studio: waiting for the inference worker to finish its current step",
                      file=sys.stderr, flush=True)
                if not self._thread.wait(STOP_GRACE_MS):
                    _UNFINISHED_THREADS.append(self._thread)
                    self._thread = None
                    return
            if self._loop is not None and self._loop.backend is not None and self._loop.owns_backend:
                try:
                    self._loop.backend.unload()
                except Exception as exc:  # closing must go on; say what failed
                    print(f"LangSAM Studio: unloading the backend failed: {exc}", file=sys.stderr)
            self._thread = None

    # -- requests (GUI thread) ------------------------------------------------------------
    @property
    def backend_name(self) -> str | None:
        """The name last passed to :meth:`set_backend`."""
        return self._backend_name

    def set_backend(self, name: str, **options: Any) -> None:
        """Switch to backend ``name`` (``create_backend(name, **options)`` in the worker thread).

        Answers with ``backend_changed(BackendInfo)`` or ``backend_failed(message)``.
        """
        self.start()
        with self._cond:
            self._backend_name = name
            self._backend_request = (name, dict(options))
            self._switch_locked()
            self._cond.notify_all()

    def use_backend(self, backend: Any) -> None:
        """Adopt an already created :class:`~inference.backends.base.SegmentationBackend`
        (a remote client the shell configured, or a test's shared backend); loaded in the worker."""
        self.start()
        with self._cond:
            self._backend_name = backend.name
            self._backend_request = (backend, {})
            self._switch_locked()
            self._cond.notify_all()

    def predict(self, *, image: ImageRef, prompt: Prompt) -> int:
        """Queue ``prompt`` on ``image``; returns the request id ``prediction_ready`` will carry.

        Supersedes every earlier prediction: only the latest one's answer is emitted.
        """
        self.start()
        with self._cond:
            self._next_id += 1
            job = _Job(kind="predict", image=image, request_id=self._next_id, prompt=prompt)
            self._latest_predict = job.request_id
            if self._pending_predict is not None:
                self._pending_predict.token.cancel()
            self._pending_predict = job
            running = self._running
            if running is not None:
                other_image = not _same_image(running.image, image)
                if running.kind == "predict":
                    running.token.cancel()
                elif running.kind == "batch":
                    running.token.cancel(_PREEMPTED)  # interactive work first; the batch call is requeued
                elif other_image:
                    running.token.cancel(_PREEMPTED if running.kind == "prefetch" else "superseded")
                if other_image:
                    running.encode_token.cancel()
            waiting = self._loading
            self._cond.notify_all()
        if waiting:
            self.status.emit(WAITING_FOR_BACKEND)
        return job.request_id

    def predict_blocking(self, *, image: np.ndarray, prompt: Prompt,
                         cancel: CancelToken | None = None) -> Any:
        """Run ``prompt`` on ``image`` with the worker's backend and wait for the Prediction.

        For background threads (batch): never call it on the GUI thread. Queued below interactive
        prompts and encodings, above prefetching; waits while a backend is loading. Raises the
        backend's :class:`~inference.errors.InferenceError` or ``Cancelled`` (``cancel``, shutdown).
        """
        self.start()
        call = _BatchCall(image=image, prompt=prompt, cancel=cancel or CancelToken())
        with self._cond:
            if self._stop:
                raise Cancelled("the app is closing")
            self._batch.append(call)
            self._cond.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def encode(self, image: ImageRef) -> None:
        """Encode ``image`` soon (the image on screen): before prefetching, after predictions.

        Replaces an earlier, not yet started :meth:`encode` request; a running encoding of another
        image is cancelled (a prefetch is put back in its queue).
        """
        self.start()
        with self._cond:
            self._pending_encode = _Job(kind="encode", image=image)
            running = self._running
            if running is not None and running.kind != "predict" and not _same_image(running.image, image):
                running.token.cancel(_PREEMPTED if running.kind in ("prefetch", "batch") else "superseded")
            self._cond.notify_all()

    def prefetch(self, paths: Sequence[str]) -> None:
        """Encode these images ahead when idle (the first ``prefetch_count`` of them).

        Replaces the previous prefetch list; a running prefetch of an image no longer wanted is
        cancelled.
        """
        self.start()
        wanted = [ImageRef(path=str(p)) for p in list(paths)[: self.prefetch_count]]
        with self._cond:
            self._prefetch = deque(wanted)
            running = self._running
            if (running is not None and running.kind == "prefetch"
                    and not any(_same_image(running.image, w) for w in wanted)):
                running.token.cancel("no longer wanted")
            self._cond.notify_all()

    def cancel(self, request_id: int | None = None) -> None:
        """Cancel prediction ``request_id`` (or the latest one); its answer will not be emitted."""
        with self._cond:
            target = request_id if request_id is not None else self._latest_predict
            if self._pending_predict is not None and self._pending_predict.request_id == target:
                self._pending_predict = None
            if self._running is not None and self._running.kind == "predict" and \
                    self._running.request_id == target:
                self._running.token.cancel("cancelled by the user")
            if target == self._latest_predict:
                self._latest_predict = -target  # no answer with this id is wanted any more

    def is_idle(self) -> bool:
        """No job running or queued (prefetching included)."""
        with self._cond:
            return self._idle_locked()

    # -- worker-thread side -----------------------------------------------------------------
    def _take(self) -> tuple[_Job | None, tuple[Any, dict[str, Any]] | None]:
        with self._cond:
            while True:
                if self._stop:
                    return None, None
                if self._backend_request is not None:
                    request, self._backend_request = self._backend_request, None
                    return None, request
                job: _Job | None = None
                if self._pending_predict is not None and not self._loading:
                    job, self._pending_predict = self._pending_predict, None
                elif self._pending_encode is not None:
                    job, self._pending_encode = self._pending_encode, None
                elif self._batch and not self._loading:
                    call = self._batch.popleft()
                    job = _Job(kind="batch", image=ImageRef(array=call.image, key="batch"), call=call)
                elif self._prefetch and self._loop is not None and self._loop.backend is not None:
                    job = _Job(kind="prefetch", image=self._prefetch.popleft())
                if job is not None:
                    self._running = job
                    return job, None
                self._cond.wait()

    def _switch_locked(self) -> None:
        """A backend change is queued: cancel the running job but keep the latest prompt, which
        then runs on the new backend once it is loaded (a running prediction is queued again)."""
        self._loading = True
        running = self._running
        if (running is not None and running.kind == "predict" and self._pending_predict is None
                and running.request_id == self._latest_predict):
            self._pending_predict = _Job(kind="predict", image=running.image, request_id=running.request_id,
                                         prompt=running.prompt)
        if running is not None:  # a batch call is preempted: it runs again on the new backend
            running.token.cancel(_PREEMPTED if running.kind == "batch" else "the backend changed")
            running.encode_token.cancel("the backend changed")
        self._pending_encode = None

    def _backend_settled(self) -> None:
        with self._cond:
            self._loading = self._backend_request is not None
            self._cond.notify_all()

    def _finish(self, job: _Job) -> None:
        with self._cond:
            if self._running is job:
                self._running = None

    def _idle(self) -> bool:
        with self._cond:
            return self._idle_locked()

    def _idle_locked(self) -> bool:
        return (self._running is None and self._pending_predict is None and self._pending_encode is None
                and not self._batch
                and not (self._prefetch and self._loop is not None and self._loop.backend is not None)
                and self._backend_request is None)

    def _superseded(self, request_id: int) -> bool:
        with self._cond:
            return request_id != self._latest_predict

    def _requeue_batch(self, call: _BatchCall) -> None:
        with self._cond:
            if self._stop:
                call.error = Cancelled("the app is closing")
                call.done.set()
                return
            self._batch.appendleft(call)
            self._cond.notify_all()

    def _requeue_prefetch(self, image: ImageRef) -> None:
        with self._cond:
            if self._stop:
                return
            if len(self._prefetch) < self.prefetch_count and image.path is not None:
                self._prefetch.appendleft(image)
            self._cond.notify_all()

    def _cancel_all_locked(self, reason: str) -> None:
        while self._batch:  # shutting down: no waiting batch thread may hang
            call = self._batch.popleft()
            call.error = Cancelled(reason)
            call.done.set()
        if self._pending_predict is not None:
            self._pending_predict.token.cancel(reason)
        if self._running is not None:
            self._running.token.cancel(reason)
            self._running.encode_token.cancel(reason)


def _same_image(a: ImageRef, b: ImageRef) -> bool:
    if a.key is not None and b.key is not None:
        return a.key == b.key
    return a.path is not None and a.path == b.path
