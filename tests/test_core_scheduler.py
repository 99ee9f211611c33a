"""The inference scheduler's policy without Qt: a gated fake backend, the loop on a plain thread.

Every step is synchronised on events and conditions (the backend says when a call has started,
the test opens its gate; the scheduler and the sink notify on every change), never on sleeps, so
the tests are exact about order and fast.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from desktop_app.core.scheduler import WAITING_FOR_BACKEND, ImageRef, InferenceScheduler, JobKind
from fixtures_scheduler import TIMEOUT_S, GatedBackend
from inference.cancel import AnyToken, CancelReason, CancelToken
from inference.errors import Cancelled, InferenceError
from inference.images import ImageSource, image_key
from inference.prompts import Point, Prompt
from inference.results import BackendInfo, Prediction

PROMPT = Prompt(points=(Point(x=1, y=1),))


class RecordingSink:
    """The scheduler's sink: records every report and notifies waiters."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.events: list[tuple[Any, ...]] = []

    def _add(self, *event: Any) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def prediction_ready(self, request_id: int, prediction: Prediction) -> None:
        self._add("prediction", request_id, prediction)

    def failed(self, request_id: int, message: str) -> None:
        self._add("failed", request_id, message)

    def backend_changed(self, info: BackendInfo) -> None:
        self._add("backend", info)

    def backend_failed(self, message: str) -> None:
        self._add("backend_failed", message)

    def encoded(self, image_key: str) -> None:
        self._add("encoded", image_key)

    def status(self, text: str) -> None:
        self._add("status", text)

    def busy_changed(self, busy: bool) -> None:
        self._add("busy", busy)

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        with self.changed:
            return [e[1:] for e in self.events if e[0] == kind]

    def wait(self, predicate: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, TIMEOUT_S), self.events


class Harness:
    """A scheduler whose loop runs on a plain thread, with its sink and the backends it saw."""

    def __init__(self) -> None:
        self.sink = RecordingSink()
        self.scheduler = InferenceScheduler(sink=self.sink, prefetch_count=2)
        self.backends: list[GatedBackend] = []
        self.thread = threading.Thread(target=self.scheduler.run, name="scheduler-test", daemon=True)
        self.thread.start()

    def backend(self, label: str = "first", *, closed: tuple[str, ...] = ()) -> GatedBackend:
        backend = GatedBackend(label)
        backend.close(*closed)
        self.backends.append(backend)
        return backend

    def load(self, backend: GatedBackend) -> GatedBackend:
        count = len(self.sink.of("backend"))
        self.scheduler.use_backend(backend)
        self.sink.wait(lambda: len(self.sink.of("backend")) > count)
        return backend

    def wait_idle(self) -> None:
        assert self.scheduler.wait_until(self.scheduler.is_idle, timeout=TIMEOUT_S)

    def predictions(self) -> list[int]:
        return [rid for rid, _ in self.sink.of("prediction")]

    def close(self) -> None:
        self.scheduler.stop()
        for backend in self.backends:
            backend.open()
        self.thread.join(TIMEOUT_S)
        assert not self.thread.is_alive(), "the loop did not end after stop()"


@pytest.fixture
def h():
    harness = Harness()
    yield harness
    harness.close()


def ref(key: str, *, path: str | None = None) -> ImageRef:
    return ImageRef(array=np.zeros((6, 8, 3), np.uint8), key=key, path=path)


class BatchCaller:
    """predict_blocking on its own thread; ``result`` or ``error`` once ``done``."""

    def __init__(self, scheduler: InferenceScheduler, *, cancel: CancelToken | None = None) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(scheduler, cancel), daemon=True)
        self._thread.start()

    def _run(self, scheduler: InferenceScheduler, cancel: CancelToken | None) -> None:
        try:
            self.result = scheduler.predict_blocking(image=np.ones((4, 5, 3), np.uint8), prompt=PROMPT, cancel=cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        self.done.set()

    def wait(self) -> None:
        assert self.done.wait(TIMEOUT_S), "the batch caller is still waiting"
        self._thread.join(TIMEOUT_S)


def wait_batches_queued(scheduler: InferenceScheduler, count: int) -> None:
    assert scheduler.wait_until(lambda: scheduler.pending()[JobKind.BATCH] == count, timeout=TIMEOUT_S)


def png(tmp_path, name: str, value: int) -> tuple[str, str]:
    """A small image file; returns its path and content key."""
    array = np.full((6, 7, 3), value, np.uint8)
    path = tmp_path / name
    Image.fromarray(array).save(path)
    return str(path), image_key(array)


# -- the tests -------------------------------------------------------------------------------
def test_latest_prediction_wins_and_the_superseded_one_gets_no_answer(h):
    backend = h.load(h.backend(closed=("predict",)))
    first = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    backend.wait_calls(1, "predict")
    second = h.scheduler.predict(image=ref("A"), prompt=Prompt(points=(Point(x=2, y=2),)))
    backend.wait_calls(2, "predict")  # the first one was cancelled, the second one runs
    backend.open("predict")
    h.sink.wait(lambda: bool(h.predictions()))
    h.wait_idle()
    assert h.predictions() == [second] and first != second
    assert h.sink.of("failed") == []
    assert backend.cancelled == [("predict", "A", CancelReason.SUPERSEDED)]
    assert backend.calls.count(("encode", "A")) == 1  # the second prompt reused the encoding


def test_priorities_predict_then_encode_then_batch_then_prefetch(h, tmp_path):
    backend = h.backend(closed=("load",))
    h.scheduler.use_backend(backend)
    backend.wait_calls(1, "load")  # the loop is busy loading: queue everything meanwhile
    prefetched, prefetched_key = png(tmp_path, "next.png", 90)
    h.scheduler.prefetch([prefetched])
    batch = BatchCaller(h.scheduler)
    wait_batches_queued(h.scheduler, 1)
    h.scheduler.encode(ref("B"))
    h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    backend.open("load")
    batch.wait()
    h.sink.wait(lambda: (prefetched_key,) in h.sink.of("encoded"))
    h.wait_idle()
    assert batch.error is None and isinstance(batch.result, Prediction)
    assert backend.calls == [
        ("load", ""),
        ("encode", "A"),
        ("predict", "A"),
        ("encode", "B"),
        ("predict", "batch"),
        ("encode", prefetched_key),
    ]
    assert backend.cancelled == []


def test_prediction_on_the_image_being_encoded_keeps_the_encoder(h):
    backend = h.load(h.backend(closed=("encode",)))
    h.scheduler.encode(ref("A"))
    backend.wait_calls(1, "encode")
    rid = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    assert h.scheduler.wait_until(lambda: h.scheduler.pending()[JobKind.PREDICT] == 1, timeout=TIMEOUT_S)
    backend.open("encode")
    h.sink.wait(lambda: rid in h.predictions())
    h.wait_idle()
    assert backend.cancelled == []
    assert backend.calls == [("load", ""), ("encode", "A"), ("predict", "A")]  # encoded once, reused


def test_prediction_on_another_image_cancels_the_encoder(h):
    backend = h.load(h.backend(closed=("encode",)))
    h.scheduler.encode(ref("A"))
    backend.wait_calls(1, "encode")
    rid = h.scheduler.predict(image=ref("B"), prompt=PROMPT)
    assert backend.wait_cancelled(1) == [("encode", "A", CancelReason.SUPERSEDED)]
    backend.wait_calls(2, "encode")  # B's own encoding, before its prediction
    backend.open("encode")
    h.sink.wait(lambda: rid in h.predictions())
    h.wait_idle()
    assert not backend.is_encoded("A") and backend.is_encoded("B")
    assert h.sink.of("encoded") == [("B",)]


def test_preempted_batch_call_is_requeued_and_finishes(h):
    backend = h.load(h.backend(closed=("predict",)))
    batch = BatchCaller(h.scheduler)
    backend.wait_calls(1, "predict")
    rid = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    assert backend.wait_cancelled(1) == [("predict", "batch", CancelReason.PREEMPTED)]
    backend.wait_calls(2, "predict")  # the interactive prompt runs first
    backend.open("predict")
    batch.wait()
    h.wait_idle()
    assert batch.error is None and isinstance(batch.result, Prediction)
    assert h.predictions() == [rid]
    assert [c for c in backend.calls if c[0] == "predict"] == [
        ("predict", "batch"),
        ("predict", "A"),
        ("predict", "batch"),
    ]


def test_preempted_prefetch_is_requeued(h, tmp_path):
    backend = h.load(h.backend(closed=("encode",)))
    path, key = png(tmp_path, "next.png", 40)
    h.scheduler.prefetch([path])
    backend.wait_calls(1, "encode")
    h.scheduler.encode(ref("B"))  # the image on screen comes first
    assert backend.wait_cancelled(1) == [("encode", key, CancelReason.PREEMPTED)]
    backend.open("encode")
    h.sink.wait(lambda: (key,) in h.sink.of("encoded"))
    h.wait_idle()
    assert [c for c in backend.calls if c[0] == "encode"] == [("encode", key), ("encode", "B"), ("encode", key)]
    assert h.sink.of("encoded") == [("B",), (key,)]


def test_prefetch_no_longer_wanted_is_dropped(h, tmp_path):
    backend = h.load(h.backend(closed=("encode",)))
    path, key = png(tmp_path, "next.png", 40)
    h.scheduler.prefetch([path])
    backend.wait_calls(1, "encode")
    h.scheduler.prefetch([])
    assert backend.wait_cancelled(1) == [("encode", key, CancelReason.NO_LONGER_WANTED)]
    h.wait_idle()
    assert not backend.is_encoded(key) and h.sink.of("encoded") == []


def test_prediction_sent_while_loading_waits_and_runs_after_the_load(h):
    backend = h.backend(closed=("load",))
    h.scheduler.use_backend(backend)
    backend.wait_calls(1, "load")
    first = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    latest = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    assert (WAITING_FOR_BACKEND,) in h.sink.of("status")  # said at once, from the calling thread
    assert h.sink.of("backend") == [] and h.predictions() == []
    backend.open("load")
    h.sink.wait(lambda: bool(h.predictions()))
    h.wait_idle()
    assert h.predictions() == [latest] and first != latest and h.sink.of("failed") == []
    assert backend.calls == [("load", ""), ("encode", "A"), ("predict", "A")]


def test_backend_switch_keeps_the_latest_prompt(h):
    old = h.load(h.backend("first", closed=("predict",)))
    rid = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    old.wait_calls(1, "predict")
    new = h.backend("second")
    h.scheduler.use_backend(new)
    assert old.wait_cancelled(1) == [("predict", "A", CancelReason.BACKEND_CHANGED)]
    h.sink.wait(lambda: rid in h.predictions())
    h.wait_idle()
    [(answered, prediction)] = h.sink.of("prediction")
    assert answered == rid and prediction.backend == "second"
    assert h.scheduler.backend is new and h.scheduler.backend_name == "gated-test"


def test_cancel_a_running_and_a_queued_prediction(h):
    backend = h.load(h.backend(closed=("predict",)))
    running = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    backend.wait_calls(1, "predict")
    h.scheduler.cancel(running)
    assert backend.wait_cancelled(1) == [("predict", "A", CancelReason.USER)]
    h.wait_idle()
    # a queued one: the loop is busy encoding when it is cancelled, so it never starts
    backend.close("encode")
    h.scheduler.encode(ref("B"))
    backend.wait_calls(2, "encode")
    queued = h.scheduler.predict(image=ref("B"), prompt=PROMPT)
    h.scheduler.cancel(queued)
    assert h.scheduler.pending()[JobKind.PREDICT] == 0
    backend.open()
    h.wait_idle()
    assert h.predictions() == [] and h.sink.of("failed") == []
    assert [c for c in backend.calls if c[0] == "predict"] == [("predict", "A")]
    # still usable
    again = h.scheduler.predict(image=ref("B"), prompt=PROMPT)
    h.sink.wait(lambda: again in h.predictions())


def test_stop_releases_waiting_batch_callers_with_cancelled(h):
    backend = h.backend(closed=("load",))
    h.scheduler.use_backend(backend)
    backend.wait_calls(1, "load")  # batch calls wait while the backend loads
    callers = [BatchCaller(h.scheduler), BatchCaller(h.scheduler)]
    wait_batches_queued(h.scheduler, 2)
    h.scheduler.stop()
    for caller in callers:
        caller.wait()
        assert isinstance(caller.error, Cancelled) and "closing" in str(caller.error)
    with pytest.raises(Cancelled):
        h.scheduler.predict_blocking(image=np.ones((4, 4, 3), np.uint8), prompt=PROMPT)
    backend.open("load")
    h.thread.join(TIMEOUT_S)
    assert not h.thread.is_alive()


def test_stop_cancels_a_running_batch_call_without_requeueing_it(h):
    backend = h.load(h.backend(closed=("predict",)))
    caller = BatchCaller(h.scheduler)
    backend.wait_calls(1, "predict")
    h.scheduler.stop()
    caller.wait()
    assert isinstance(caller.error, Cancelled)
    assert backend.wait_cancelled(1) == [("predict", "batch", CancelReason.CLOSING)]


def test_a_cancelled_batch_call_raises_cancelled(h):
    h.load(h.backend())
    token = CancelToken()
    token.cancel("the batch was cancelled")
    caller = BatchCaller(h.scheduler, cancel=token)
    caller.wait()
    assert isinstance(caller.error, Cancelled) and "batch was cancelled" in str(caller.error)


def test_backend_errors_become_messages_and_the_loop_survives(h):
    backend = h.load(h.backend())
    backend.fail_next = RuntimeError("boom")
    broken = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    h.sink.wait(lambda: bool(h.sink.of("failed")))
    assert h.sink.of("failed") == [(broken, "the prediction failed: RuntimeError: boom")]
    backend.fail_next = InferenceError("the prompt is outside the image")
    refused = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    h.sink.wait(lambda: len(h.sink.of("failed")) == 2)
    assert h.sink.of("failed")[1] == (refused, "the prompt is outside the image")
    backend.fail_next = InferenceError("no memory left")
    batch = BatchCaller(h.scheduler)  # a batch caller gets the backend's error itself
    batch.wait()
    assert isinstance(batch.error, InferenceError) and str(batch.error) == "no memory left"
    fine = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    h.sink.wait(lambda: fine in h.predictions())
    assert h.predictions() == [fine]


def test_a_backend_that_cannot_load_is_reported(h):
    h.scheduler.set_backend("no-such-backend")
    h.sink.wait(lambda: bool(h.sink.of("backend_failed")))
    assert "unknown backend" in h.sink.of("backend_failed")[0][0]
    rid = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    h.sink.wait(lambda: bool(h.sink.of("failed")))
    assert h.sink.of("failed")[0][0] == rid and "no segmentation backend" in h.sink.of("failed")[0][1]


def test_backends_receive_the_image_source(h, tmp_path):
    backend = h.load(h.backend())
    path, key = png(tmp_path, "file.png", 7)
    from_file = h.scheduler.predict(image=ImageRef(path=path), prompt=PROMPT)
    h.sink.wait(lambda: from_file in h.predictions())
    from_array = h.scheduler.predict(image=ref("A"), prompt=PROMPT)
    h.sink.wait(lambda: from_array in h.predictions())
    assert backend.calls[1:] == [("encode", key), ("predict", key), ("encode", "A"), ("predict", "A")]
    assert backend.sources[1:] == [ImageSource(path=path)] * 2 + [None, None]
    assert backend.sources[1].read_bytes() == (tmp_path / "file.png").read_bytes()
    assert h.scheduler.cache.get(path) is not None  # decoded once, into the shared cache


def test_cancel_token_reasons():
    token = CancelToken()
    token.cancel()
    assert token.cause is CancelReason.SUPERSEDED and token.reason == "superseded by a newer request"
    free = CancelToken()
    free.cancel("the request took too long")
    assert free.cause is CancelReason.OTHER and free.reason == "the request took too long"
    with pytest.raises(Cancelled, match="took too long"):
        free.raise_if_cancelled()
    a, b = CancelToken(), CancelToken()
    either = AnyToken(a, b)
    assert not either.cancelled
    b.cancel(CancelReason.PREEMPTED)
    assert either.cancelled
    with pytest.raises(Cancelled, match="preempted"):
        either.raise_if_cancelled()


def test_image_source_needs_exactly_one_origin(tmp_path):
    with pytest.raises(ValueError):
        ImageSource()
    with pytest.raises(ValueError):
        ImageSource(path="a.png", data=b"x")
    assert ImageSource(data=b"abc").read_bytes() == b"abc"
    from inference.errors import ImageLoadError

    with pytest.raises(ImageLoadError):
        ImageSource(path=str(tmp_path / "missing.png")).read_bytes()
