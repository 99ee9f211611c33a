"""The Qt bridge of the inference worker: signals arrive on the GUI thread, the GUI never stalls
while a real model encodes, batch calls from a background thread share the one backend, and
shutdown of a busy thread never destroys a running QThread.

The scheduling policy itself (latest wins, priorities, preemption, ...) is tested without Qt in
tests/test_core_scheduler.py.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fixtures_models import make_test_image
from fixtures_scheduler import TIMEOUT_S, GatedBackend

pytest.importorskip("pytestqt")

from desktop_app.gui import worker as worker_module  # noqa: E402
from desktop_app.gui.worker import WAITING_FOR_BACKEND, ImageRef, InferenceWorker  # noqa: E402
from inference.prompts import Point, Prompt  # noqa: E402

STALL_LIMIT_S = 0.25
TIMEOUT_MS = int(TIMEOUT_S * 1000)
PROMPT = Prompt(points=(Point(x=1, y=1),))


class LoopWatch:
    """A 10 ms QTimer; the worst gap between its ticks is the worst GUI event-loop stall."""

    def __init__(self, qtbot: object = None) -> None:  # qtbot: kept for tests/test_app_core_sam2.py
        from PySide6.QtCore import QTimer

        self.worst = 0.0
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self._last - 0.010)
        self._last = now

    def stop(self) -> float:
        self.timer.stop()
        return self.worst


@pytest.fixture
def make_worker():
    """InferenceWorkers that are always shut down, and gated backends that are always let go."""
    workers: list[InferenceWorker] = []
    backends: list[GatedBackend] = []

    def make(*backend_gates: tuple[str, ...]) -> tuple[InferenceWorker, list[GatedBackend]]:
        worker = InferenceWorker()
        workers.append(worker)
        made = []
        for closed in backend_gates:
            backend = GatedBackend(f"gated-{len(backends)}")
            backend.close(*closed)
            backends.append(backend)
            made.append(backend)
        return worker, made

    yield make
    for backend in backends:
        backend.open()
    for worker in workers:
        worker.shutdown()


def _array_ref(key: str) -> ImageRef:
    return ImageRef(array=np.zeros((6, 8, 3), np.uint8), key=key)


def test_signals_arrive_on_the_gui_thread(qtbot, make_worker):
    worker, [backend] = make_worker(())
    gui_thread = threading.get_ident()
    threads: dict[str, set[int]] = {}
    for name in ("prediction_ready", "encoded", "backend_changed", "status", "busy_changed"):
        getattr(worker, name).connect(
            lambda *args, name=name: threads.setdefault(name, set()).add(threading.get_ident())
        )
    with qtbot.waitSignal(worker.backend_changed, timeout=TIMEOUT_MS):
        worker.use_backend(backend)
    with qtbot.waitSignal(worker.prediction_ready, timeout=TIMEOUT_MS) as blocker:
        rid = worker.predict(image=_array_ref("A"), prompt=PROMPT)
    assert blocker.args[0] == rid and blocker.args[1].image_key == "A"
    qtbot.waitUntil(lambda: worker.is_idle() and "busy_changed" in threads, timeout=TIMEOUT_MS)
    assert set(threads) == {"prediction_ready", "encoded", "backend_changed", "status", "busy_changed"}
    assert all(idents == {gui_thread} for idents in threads.values()), threads
    assert worker._loop.backend is backend and worker.backend_name == backend.name


def test_waiting_status_is_shown_at_once_and_the_prompt_runs_after_the_load(qtbot, make_worker):
    """Never refuse a prompt while the backend loads: the status says so immediately (a direct
    signal on the GUI thread), the latest prompt wins and is answered once the model is ready."""
    worker, [backend] = make_worker(("load",))
    statuses, answers = [], []
    worker.status.connect(statuses.append)
    worker.prediction_ready.connect(lambda rid, p: answers.append(rid))
    worker.use_backend(backend)
    backend.wait_calls(1, "load")
    worker.predict(image=_array_ref("A"), prompt=PROMPT)
    latest = worker.predict(image=_array_ref("A"), prompt=PROMPT)
    assert WAITING_FOR_BACKEND in statuses  # delivered before predict() returned
    backend.open("load")
    qtbot.waitUntil(lambda: bool(answers) and worker.is_idle(), timeout=TIMEOUT_MS)
    assert answers == [latest]


def test_latest_prompt_wins_and_gui_never_stalls_with_a_real_model(qtbot, sam2_backend):
    """Two quick prompts on a not-yet-encoded image with a real (random-weight) SAM 2.1 tiny:
    only the second answer arrives and the event loop keeps ticking while the encoder runs."""
    from inference.images import image_key

    image = make_test_image(101, height=320, width=416)
    ref = ImageRef(array=image, key=image_key(image))
    worker = InferenceWorker()
    got: list[tuple[int, object]] = []
    worker.prediction_ready.connect(lambda rid, pred: got.append((rid, pred)))
    try:
        with qtbot.waitSignal(worker.backend_changed, timeout=120_000):
            worker.use_backend(sam2_backend)
        watch = LoopWatch()
        first = worker.predict(image=ref, prompt=Prompt(points=(Point(x=50, y=40),)))
        second = worker.predict(image=ref, prompt=Prompt(points=(Point(x=150, y=120),), multimask=False))
        qtbot.waitUntil(lambda: any(rid == second for rid, _ in got), timeout=120_000)
        worst = watch.stop()
        qtbot.waitUntil(worker.is_idle, timeout=120_000)
    finally:
        worker.shutdown()
    # signals are delivered in the order they were emitted: a stale first answer would come first
    assert [rid for rid, _ in got] == [second], "only the latest prompt's answer may be emitted"
    assert first != second
    prediction = got[0][1]
    assert prediction.image_key == ref.key and len(prediction.candidates) == 1  # multimask=False
    assert prediction.candidates[0].mask.shape == (320, 416)
    assert worst < STALL_LIMIT_S, f"the GUI event loop stalled {worst * 1000:.0f} ms during encoding"


def test_batch_calls_share_the_backend_and_yield_to_prompts(qtbot):
    """Batch predictions (from a background thread) run on the worker's one backend, below
    interactive prompts: a prompt sent during a batch is answered before the batch ends."""
    from fixtures_app_core import scene_image
    from inference.backends.registry import create_backend
    from inference.cancel import CancelToken
    from inference.errors import Cancelled

    backend = create_backend("classic")
    worker = InferenceWorker()
    answers, order, batch_results = [], [], []
    worker.prediction_ready.connect(lambda rid, p: (answers.append(rid), order.append("prompt")))
    try:
        with qtbot.waitSignal(worker.backend_changed, timeout=TIMEOUT_MS):
            worker.use_backend(backend)
        image = scene_image()
        prompt = Prompt(points=(Point(x=230, y=75),))
        started = threading.Event()

        def batch() -> None:
            for _ in range(6):
                started.set()
                batch_results.append(worker.predict_blocking(image=image, prompt=prompt))
                order.append("batch")

        thread = threading.Thread(target=batch)
        thread.start()
        assert started.wait(TIMEOUT_S)
        rid = worker.predict(image=ImageRef(array=image, key="scene"), prompt=prompt)
        qtbot.waitUntil(lambda: rid in answers, timeout=30_000)
        thread.join(60)
        assert not thread.is_alive() and len(batch_results) == 6
        assert order.index("prompt") < len(order) - 1  # answered while batch work was still queued
        assert worker._loop.backend is backend  # one backend for both
        reference = backend.predict(image, prompt)
        assert all(np.array_equal(r.candidates[0].mask, reference.candidates[0].mask) for r in batch_results)
        token = CancelToken()  # a cancelled batch call raises Cancelled instead of hanging
        token.cancel("the batch was cancelled")
        with pytest.raises(Cancelled):
            worker.predict_blocking(image=image, prompt=prompt, cancel=token)
    finally:
        worker.shutdown()


def test_shutdown_of_a_busy_worker_cancels_its_work_and_releases_batch_callers(qtbot, make_worker):
    from inference.errors import Cancelled

    worker, [backend] = make_worker(("predict",))
    with qtbot.waitSignal(worker.backend_changed, timeout=TIMEOUT_MS):
        worker.use_backend(backend)
    worker.predict(image=_array_ref("A"), prompt=PROMPT)
    backend.wait_calls(1, "predict")  # the thread is inside the model
    errors: list[BaseException] = []
    caller = threading.Thread(target=lambda: _record_error(errors, worker))
    caller.start()
    assert worker.scheduler.wait_until(lambda: sum(worker.scheduler.pending().values()) == 1, timeout=TIMEOUT_S)
    thread = worker._thread
    worker.shutdown(timeout_ms=TIMEOUT_MS)
    caller.join(TIMEOUT_S)
    assert thread is not None and thread.isFinished() and worker._thread is None
    assert thread not in worker_module._UNFINISHED_THREADS
    assert [type(e) for e in errors] == [Cancelled]
    assert backend.cancelled and backend.cancelled[0][2].name == "CLOSING"


def _record_error(errors: list[BaseException], worker: InferenceWorker) -> None:
    try:
        worker.predict_blocking(image=np.ones((4, 4, 3), np.uint8), prompt=PROMPT)
    except BaseException as exc:  # noqa: BLE001 - the test looks at it
        errors.append(exc)


def test_shutdown_never_destroys_a_thread_stuck_in_a_model_load(qtbot, make_worker, monkeypatch, capfd):
    """A load cannot be interrupted: shutdown waits, then keeps the still running QThread alive
    (destroying it would abort the process) instead of hanging the app's exit."""
    worker, [backend] = make_worker(("load",))
    monkeypatch.setattr(worker_module, "STOP_GRACE_MS", 50)
    worker.use_backend(backend)
    backend.wait_calls(1, "load")
    thread = worker._thread
    worker.shutdown(timeout_ms=50)
    try:
        assert worker._thread is None and thread in worker_module._UNFINISHED_THREADS
        assert thread.isRunning()
        assert "waiting for the inference worker" in capfd.readouterr().err
    finally:
        backend.open("load")  # the load ends; the loop sees the stop and the thread finishes
        assert thread.wait(TIMEOUT_MS)
        worker_module._UNFINISHED_THREADS.remove(thread)


def test_shutdown_unloads_a_backend_it_created(qtbot, make_worker):
    from inference.backends import registry

    unloaded = threading.Event()

    class UnloadRecordingBackend(GatedBackend):
        name = "gated-unload-test"

        def __init__(self, **options) -> None:
            super().__init__("created")

        def unload(self) -> None:
            unloaded.set()
            super().unload()

    registry.register_backend(UnloadRecordingBackend)
    try:
        worker, _ = make_worker()
        with qtbot.waitSignal(worker.backend_changed, timeout=TIMEOUT_MS):
            worker.set_backend(UnloadRecordingBackend.name)
        worker.shutdown()
        assert unloaded.is_set()
    finally:
        registry._BACKENDS.pop(UnloadRecordingBackend.name, None)
