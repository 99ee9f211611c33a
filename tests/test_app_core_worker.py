"""The inference worker thread with a real (random-weight) SAM 2.1 hiera-tiny: latest wins,
cancellation of the encoder, prefetch, and a GUI event loop that never stalls while encoding."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from fixtures_models import make_test_image

pytest.importorskip("pytestqt")

from desktop_app.gui.worker import ImageRef, InferenceWorker  # noqa: E402
from inference.prompts import Point, Prompt  # noqa: E402

STALL_LIMIT_S = 0.25


class LoopWatch:
    """A 10 ms QTimer; the worst gap between its ticks is the worst GUI event-loop stall."""

    def __init__(self, qtbot) -> None:
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


def wait_for(qapp, condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        qapp.processEvents()
        time.sleep(0.005)


@pytest.fixture(scope="module")
def shared_sam2_worker(qapp, sam2_backend):
    """One worker driving the session's loaded random hiera-tiny (loading takes seconds)."""
    worker = InferenceWorker(prefetch_count=2)
    infos = []
    worker.backend_changed.connect(infos.append)
    worker.use_backend(sam2_backend)
    wait_for(qapp, lambda: bool(infos))
    assert infos[0].backend == "sam2"
    yield worker
    worker.shutdown()


@pytest.fixture
def sam2_worker(qtbot, shared_sam2_worker):
    """The shared worker, idle, with the signal connections of the test removed afterwards."""
    worker = shared_sam2_worker
    qtbot.waitUntil(worker.is_idle, timeout=120_000)
    worker.prefetch([])
    connections = []
    worker.listen = lambda signal, slot: connections.append((signal, slot)) or signal.connect(slot)
    yield worker
    worker.prefetch([])
    for signal, slot in connections:
        signal.disconnect(slot)


_REFS: dict[int, ImageRef] = {}


def _ref(seed: int, size=(320, 416)) -> ImageRef:
    """The same ImageRef per seed, so later tests reuse an embedding earlier tests computed."""
    if seed not in _REFS:
        from inference.images import image_key

        image = make_test_image(seed, height=size[0], width=size[1])
        _REFS[seed] = ImageRef(array=image, key=image_key(image))
    return _REFS[seed]


def test_latest_prompt_wins_and_gui_never_stalls(qtbot, sam2_worker):
    """Two quick prompts on a not-yet-encoded image: only the second answer arrives, the encoder
    runs once (its work is reused, not cancelled), and the event loop keeps ticking meanwhile."""
    ref = _ref(101)
    got: list[tuple[int, object]] = []
    sam2_worker.listen(sam2_worker.prediction_ready, lambda rid, pred: got.append((rid, pred)))
    watch = LoopWatch(qtbot)
    first = sam2_worker.predict(image=ref, prompt=Prompt(points=(Point(x=50, y=40),)))
    second = sam2_worker.predict(image=ref, prompt=Prompt(points=(Point(x=150, y=120),), multimask=False))
    qtbot.waitUntil(lambda: any(rid == second for rid, _ in got), timeout=120_000)
    qtbot.wait(200)  # a stale first answer, if any, would have landed by now
    worst = watch.stop()
    assert [rid for rid, _ in got] == [second], "only the latest prompt's answer may be emitted"
    assert first != second
    prediction = got[0][1]
    assert prediction.image_key == ref.key and len(prediction.candidates) == 1  # multimask=False
    assert prediction.candidates[0].mask.shape == (320, 416)
    assert worst < STALL_LIMIT_S, f"the GUI event loop stalled {worst * 1000:.0f} ms during encoding"


def test_new_image_cancels_running_encoder(qtbot, sam2_worker):
    """A prompt on image B while image A is being encoded cancels A's encoder mid-way."""
    backend = sam2_worker._loop.backend
    a, b = _ref(202, size=(900, 1200)), _ref(101)  # b: encoded by the first test (else now)
    got = []
    sam2_worker.listen(sam2_worker.prediction_ready, lambda rid, pred: got.append((rid, pred)))
    sam2_worker.encode(b)
    qtbot.waitUntil(sam2_worker.is_idle, timeout=120_000)
    runs = backend.encoder_runs
    sam2_worker.encode(a)
    qtbot.waitUntil(lambda: sam2_worker._running is not None and sam2_worker._running.image is a, timeout=10_000)
    qtbot.wait(100)  # the encoder is inside the model now
    rid = sam2_worker.predict(image=b, prompt=Prompt(points=(Point(x=20, y=20),)))
    qtbot.waitUntil(lambda: bool(got) and got[-1][0] == rid, timeout=120_000)
    assert got[-1][1].image_key == b.key
    assert not backend.is_encoded(a.key), "A's encoding should have been cancelled"
    assert backend.encoder_runs == runs  # A's run was cancelled before it finished; B was cached


def test_cancel_drops_the_answer(qtbot, sam2_worker):
    ref = _ref(101)
    got, failed = [], []
    sam2_worker.listen(sam2_worker.prediction_ready, lambda rid, pred: got.append(rid))
    sam2_worker.listen(sam2_worker.failed, lambda rid, msg: failed.append(msg))
    rid = sam2_worker.predict(image=ref, prompt=Prompt(points=(Point(x=10, y=10),)))
    sam2_worker.cancel(rid)
    qtbot.waitUntil(sam2_worker.is_idle, timeout=120_000)
    qtbot.wait(100)
    assert got == [] and failed == []
    # the worker is still usable and answers the next prompt
    rid2 = sam2_worker.predict(image=ref, prompt=Prompt(points=(Point(x=10, y=10),)))
    qtbot.waitUntil(lambda: got == [rid2], timeout=120_000)


def test_prefetch_encodes_next_images_when_idle(qtbot, sam2_worker, tmp_path):
    backend = sam2_worker._loop.backend
    paths = []
    for seed in (404, 405, 406):
        path = tmp_path / f"img{seed}.png"
        Image.fromarray(make_test_image(seed, height=200, width=260)).save(path)
        paths.append(str(path))
    keys: list[str] = []
    sam2_worker.listen(sam2_worker.encoded, keys.append)
    sam2_worker.prefetch_count = 1
    try:
        sam2_worker.prefetch(paths)  # only the first one
        qtbot.waitUntil(lambda: len(keys) >= 1 and sam2_worker.is_idle(), timeout=120_000)
    finally:
        sam2_worker.prefetch_count = 2
    decoded = [sam2_worker.cache.get(p) for p in paths]
    assert decoded[0] is not None and decoded[1] is None and decoded[2] is None
    assert backend.is_encoded(decoded[0].key)
    # a prompt on a prefetched image does not run the encoder again
    runs = backend.encoder_runs
    got = []
    sam2_worker.listen(sam2_worker.prediction_ready, lambda rid, pred: got.append(pred))
    sam2_worker.predict(image=ImageRef(path=paths[0]), prompt=Prompt(points=(Point(x=100, y=80),)))
    qtbot.waitUntil(lambda: bool(got), timeout=60_000)
    assert backend.encoder_runs == runs
    assert got[0].timings["embedding_cached"] == 1.0


def test_bad_backend_and_bad_prompt_give_messages(qtbot):
    worker = InferenceWorker()
    try:
        with qtbot.waitSignal(worker.backend_failed, timeout=10_000) as blocker:
            worker.set_backend("no-such-backend")
        assert "unknown backend" in blocker.args[0]
        with qtbot.waitSignal(worker.failed, timeout=10_000) as blocker:
            worker.predict(image=ImageRef(array=np.zeros((8, 8, 3), np.uint8)), prompt=Prompt(text="car"))
        assert "no segmentation backend" in blocker.args[1]
    finally:
        worker.shutdown()


@pytest.fixture
def slow_classic_backend():
    """A real classic backend whose load() takes a while (as a model load does), registered for
    the test under its own name."""
    from inference.backends import registry
    from inference.backends.classic_backend import ClassicBackend

    class SlowClassicBackend(ClassicBackend):
        name = "slow-classic-test"

        def load(self) -> None:
            time.sleep(1.0)
            super().load()

    registry.register_backend(SlowClassicBackend)
    yield SlowClassicBackend.name
    registry._BACKENDS.pop(SlowClassicBackend.name, None)


def test_prompt_sent_while_loading_waits_and_runs(qtbot, slow_classic_backend):
    """Never refuse a prompt while the backend loads: it waits, the latest one wins and is answered."""
    from fixtures_app_core import scene_image
    from desktop_app.gui.worker import WAITING_FOR_BACKEND

    worker = InferenceWorker()
    answers, failures, statuses, loaded = [], [], [], []
    worker.prediction_ready.connect(lambda rid, p: answers.append((rid, p)))
    worker.failed.connect(lambda rid, msg: failures.append((rid, msg)))
    worker.status.connect(statuses.append)
    worker.backend_changed.connect(loaded.append)
    try:
        worker.set_backend(slow_classic_backend)
        image = ImageRef(array=scene_image(), key="scene")
        worker.predict(image=image, prompt=Prompt(points=(Point(x=20, y=20),)))
        latest = worker.predict(image=image, prompt=Prompt(points=(Point(x=230, y=75),)))
        assert not loaded and WAITING_FOR_BACKEND in statuses  # sent during the load
        qtbot.waitUntil(lambda: bool(answers) or bool(failures), timeout=30_000)
        qtbot.waitUntil(worker.is_idle, timeout=30_000)
        assert failures == [] and loaded and [rid for rid, _ in answers] == [latest]
        assert answers[0][1].candidates and answers[0][1].candidates[0].mask.any()
        # a backend switch keeps the latest prompt: it runs on the new backend instead of being lost
        again = worker.predict(image=image, prompt=Prompt(points=(Point(x=230, y=75),)))
        worker.set_backend(slow_classic_backend)
        qtbot.waitUntil(lambda: any(rid == again for rid, _ in answers) or bool(failures), timeout=30_000)
        assert failures == []
    finally:
        worker.shutdown()


def test_batch_calls_share_the_backend_and_yield_to_prompts(qtbot):
    """Batch predictions (from a background thread) run on the worker's one backend, below
    interactive prompts: a prompt sent during a batch is answered before the batch ends."""
    import threading

    from fixtures_app_core import scene_image
    from inference.backends.registry import create_backend

    backend = create_backend("classic")
    worker = InferenceWorker()
    answers, order, batch_results = [], [], []
    worker.prediction_ready.connect(lambda rid, p: (answers.append(rid), order.append("prompt")))
    try:
        with qtbot.waitSignal(worker.backend_changed, timeout=10_000):
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
        started.wait(5)
        rid = worker.predict(image=ImageRef(array=image, key="scene"), prompt=prompt)
        qtbot.waitUntil(lambda: rid in answers, timeout=30_000)
        thread.join(60)
        assert not thread.is_alive() and len(batch_results) == 6
        assert order.index("prompt") < len(order) - 1  # answered while batch work was still queued
        assert worker._loop.backend is backend  # one backend for both
        reference = backend.predict(image, prompt)
        assert all(np.array_equal(r.candidates[0].mask, reference.candidates[0].mask) for r in batch_results)
        # a cancelled batch call raises Cancelled instead of hanging
        from inference.cancel import CancelToken
        from inference.errors import Cancelled

        token = CancelToken()
        token.cancel("the batch was cancelled")
        with pytest.raises(Cancelled):
            worker.predict_blocking(image=image, prompt=prompt, cancel=token)
    finally:
        worker.shutdown()
