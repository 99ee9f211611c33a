"""The one inference worker: the Qt bridge to :class:`desktop_app.core.scheduler.InferenceScheduler`.

The GUI never runs a model. It posts requests with plain method calls on :class:`InferenceWorker`
(thread-safe: they only put work in the scheduler's queues and set cancel tokens) and gets
answers ONLY through signals, delivered queued on the GUI thread:

* ``prediction_ready(request_id, Prediction)`` / ``failed(request_id, message)``
* ``backend_changed(BackendInfo)`` / ``backend_failed(message)``
* ``encoded(image_key)`` (an image's embedding is cached), ``status(str)``, ``busy_changed(bool)``

What runs when (latest prediction wins, priorities, preemption, waiting for a backend load) is the
scheduler's policy, documented and tested without Qt there. This module only runs the
scheduler's loop in a QThread, relays its reports as signals, and takes care never to destroy a
QThread that is still running (that aborts the process). Backends are created inside that thread,
so torch is never imported on the GUI thread.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop_app.core.image_cache import DecodedImageCache
from desktop_app.core.scheduler import DEFAULT_PREFETCH_COUNT, WAITING_FOR_BACKEND, ImageRef, InferenceScheduler
from inference.cancel import CancelToken
from inference.images import ImageSource
from inference.prompts import Prompt
from inference.results import BackendInfo, Prediction

__all__ = ["DEFAULT_PREFETCH_COUNT", "STOP_GRACE_MS", "WAITING_FOR_BACKEND", "ImageRef", "InferenceWorker"]

STOP_GRACE_MS = 120_000  # after the first timeout of shutdown(): how long a model load may still take
_UNFINISHED_THREADS: list[QThread] = []  # worker threads still busy at shutdown, kept from destruction
_SIGNALS = ("prediction_ready", "failed", "backend_changed", "backend_failed", "encoded", "status", "busy_changed")


class _SignalSink(QObject):
    """The scheduler's sink: each report becomes a signal, connected to the same-named signal of
    :class:`InferenceWorker`. Emitted in the worker thread, they arrive queued on the GUI thread
    (emitted on the GUI thread, e.g. the "waiting for the model" status, they arrive at once).
    Lives in the worker thread, where :meth:`run` drives the scheduler's loop."""

    prediction_ready = Signal(int, object)
    failed = Signal(int, str)
    backend_changed = Signal(object)
    backend_failed = Signal(str)
    encoded = Signal(str)
    status = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        self.scheduler: InferenceScheduler | None = None

    @property
    def backend(self) -> Any:
        """The loaded backend (tests look at it as ``worker._loop.backend``)."""
        return self.scheduler.backend if self.scheduler is not None else None

    @Slot()
    def run(self) -> None:
        assert self.scheduler is not None
        self.scheduler.run()


class _SinkAdapter:
    """The scheduler's :class:`~desktop_app.core.scheduler.SchedulerSink`: plain methods that
    emit the signals of a :class:`_SignalSink`."""

    def __init__(self, signals: _SignalSink) -> None:
        self._signals = signals

    def prediction_ready(self, request_id: int, prediction: Prediction) -> None:
        self._signals.prediction_ready.emit(request_id, prediction)

    def failed(self, request_id: int, message: str) -> None:
        self._signals.failed.emit(request_id, message)

    def backend_changed(self, info: BackendInfo) -> None:
        self._signals.backend_changed.emit(info)

    def backend_failed(self, message: str) -> None:
        self._signals.backend_failed.emit(message)

    def encoded(self, image_key: str) -> None:
        self._signals.encoded.emit(image_key)

    def status(self, text: str) -> None:
        self._signals.status.emit(text)

    def busy_changed(self, busy: bool) -> None:
        self._signals.busy_changed.emit(busy)


class InferenceWorker(QObject):
    """The GUI's handle on the inference thread. Create once, :meth:`start`, :meth:`shutdown`.

    All public methods except :meth:`predict_blocking` are non-blocking and may be called from the
    GUI thread at any time; nothing is ever refused while work runs: newer requests supersede
    older ones.
    """

    prediction_ready = Signal(int, object)  # request_id, inference.results.Prediction
    failed = Signal(int, str)  # request_id, message for a person
    backend_changed = Signal(object)  # inference.results.BackendInfo
    backend_failed = Signal(str)  # message for a person (missing weights, unknown backend, ...)
    encoded = Signal(str)  # image key whose embedding is now cached
    status = Signal(str)  # short progress/status text for the status bar
    busy_changed = Signal(bool)

    def __init__(
        self,
        *,
        prefetch_count: int = DEFAULT_PREFETCH_COUNT,
        cache: DecodedImageCache | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._loop = _SignalSink()
        for name in _SIGNALS:
            getattr(self._loop, name).connect(getattr(self, name))
        self._scheduler = InferenceScheduler(sink=_SinkAdapter(self._loop), cache=cache, prefetch_count=prefetch_count)
        self._loop.scheduler = self._scheduler
        self._thread: QThread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (idempotent; every request starts it)."""
        if self._thread is not None or self._scheduler.stopped:
            return
        self._thread = QThread()
        self._thread.setObjectName("inference-worker")
        self._loop.moveToThread(self._thread)
        self._thread.started.connect(self._loop.run)
        self._thread.start()

    def shutdown(self, *, timeout_ms: int = 10_000) -> None:
        """Cancel everything, stop the thread and unload the backend."""
        self._scheduler.stop()
        if self._thread is None:
            return
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            # Work that cannot be interrupted (a model load) is still running. Destroying a
            # running QThread aborts the process, so wait for it, then keep it alive if needed.
            print(
                "LangSAM Studio: waiting for the inference worker to finish its current step",
                file=sys.stderr,
                flush=True,
            )
            if not self._thread.wait(STOP_GRACE_MS):
                _UNFINISHED_THREADS.append(self._thread)
                self._thread = None
                return
        try:
            self._scheduler.release_backend()
        except Exception as exc:  # closing must go on; say what failed
            print(f"LangSAM Studio: unloading the backend failed: {exc}", file=sys.stderr)
        self._thread = None

    # -- state -----------------------------------------------------------------------------
    @property
    def cache(self) -> DecodedImageCache:
        """The decoded-image cache shared with the canvas's loader."""
        return self._scheduler.cache

    @property
    def prefetch_count(self) -> int:
        return self._scheduler.prefetch_count

    @prefetch_count.setter
    def prefetch_count(self, value: int) -> None:
        self._scheduler.prefetch_count = max(0, int(value))

    @property
    def backend_name(self) -> str | None:
        """The name last passed to :meth:`set_backend` / :meth:`use_backend`."""
        return self._scheduler.backend_name

    @property
    def scheduler(self) -> InferenceScheduler:
        return self._scheduler

    def is_idle(self) -> bool:
        """No job running or queued (prefetching included)."""
        return self._scheduler.is_idle()

    # -- requests (GUI thread; predict_blocking from a background thread) -----------------------
    def set_backend(
        self, name: str, *, options_from: Callable[[], Mapping[str, Any]] | None = None, **options: Any
    ) -> None:
        """Switch to backend ``name`` (``create_backend(name, **options)`` in the worker thread;
        ``options_from()``, called there too, adds options such as credentials from the keyring).

        Answers with ``backend_changed(BackendInfo)`` or ``backend_failed(message)``.
        """
        self.start()
        self._scheduler.set_backend(name, options_from=options_from, **options)

    def use_backend(self, backend: Any) -> None:
        """Adopt an already created :class:`~inference.backends.base.SegmentationBackend`
        (a remote client the shell configured, or a test's shared backend); loaded in the worker."""
        self.start()
        self._scheduler.use_backend(backend)

    def predict(self, *, image: ImageRef, prompt: Prompt) -> int:
        """Queue ``prompt`` on ``image``; returns the request id ``prediction_ready`` will carry.

        Supersedes every earlier prediction: only the latest one's answer is emitted.
        """
        self.start()
        return self._scheduler.predict(image=image, prompt=prompt)

    def predict_blocking(
        self, *, image: np.ndarray, prompt: Prompt, cancel: CancelToken | None = None, source: ImageSource | None = None
    ) -> Any:
        """Run ``prompt`` on ``image`` with the worker's backend and wait for the Prediction.

        For background threads (batch): never call it on the GUI thread. Queued below interactive
        prompts and encodings, above prefetching; waits while a backend is loading. Raises the
        backend's :class:`~inference.errors.InferenceError` or ``Cancelled`` (``cancel``, shutdown).
        """
        self.start()
        return self._scheduler.predict_blocking(image=image, prompt=prompt, cancel=cancel, source=source)

    def encode(self, image: ImageRef) -> None:
        """Encode ``image`` soon (the image on screen): before prefetching, after predictions."""
        self.start()
        self._scheduler.encode(image)

    def prefetch(self, paths: Sequence[str]) -> None:
        """Encode these images ahead when idle (the first ``prefetch_count`` of them)."""
        self.start()
        self._scheduler.prefetch(paths)

    def cancel(self, request_id: int | None = None) -> None:
        """Cancel prediction ``request_id`` (or the latest one); its answer will not be emitted."""
        self._scheduler.cancel(request_id)
