"""Bounded concurrent load on loopback: every request answered (200, or a deliberate 503 with
Retry-After), nothing lost, memory stable."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx

from fixtures_server import classic_factory, encode_image, post_request, run_server, scene_image
from inference import protocol as P
from inference.prompts import Point, Prompt


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        import os

        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _click(x, y) -> Prompt:
    return Prompt(points=(Point(x=x, y=y),))


def test_a_burst_beyond_the_queue_gets_503_with_retry_after_and_nothing_is_lost():
    from inference.server.config import ServerConfig

    images = [encode_image(scene_image(100 + i, height=600, width=800), "JPEG") for i in range(6)]
    results: list[httpx.Response | BaseException] = [None] * len(images)  # type: ignore[list-item]
    with run_server(backend_factory=classic_factory, config=ServerConfig(queue_size=1, retry_after_s=2)) as h:
        barrier = threading.Barrier(len(images))

        def send(i: int) -> None:
            try:
                with httpx.Client(base_url=h.url, timeout=60) as c:
                    barrier.wait()
                    results[i] = post_request(c, P.SegmentRequest(prompt=_click(240, 300), image=images[i]))
            except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
                results[i] = exc

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(images))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        processed = h.worker.processed
    assert all(isinstance(r, httpx.Response) for r in results), results
    statuses = Counter(r.status_code for r in results)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] >= 1, statuses  # 6 simultaneous requests, room for 1 running + 1 waiting
    for r in results:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "2" and r.json()["error"]["code"] == "ServerBusy"
        else:
            assert P.decode_response(r.content).prediction.candidates
    assert processed == statuses[200]  # every accepted request ran exactly once


def test_sustained_concurrent_clicks_are_all_answered_and_memory_is_stable():
    from inference.server.config import ServerConfig

    png = encode_image(scene_image(200))
    with run_server(backend_factory=classic_factory, config=ServerConfig(queue_size=4, retry_after_s=1)) as h:
        with httpx.Client(base_url=h.url) as c:
            image_id = P.decode_response(
                post_request(c, P.SegmentRequest(prompt=_click(96, 120), image=png)).content
            ).image_id
        statuses: Counter = Counter()
        errors: list[BaseException] = []
        sent = [0]
        lock = threading.Lock()

        def clicker(seed: int, stop_at: float) -> None:
            with httpx.Client(base_url=h.url, timeout=30) as c:
                k = 0
                while time.monotonic() < stop_at:
                    k += 1
                    x, y = 80 + (seed * 7 + k) % 40, 110 + (seed * 3 + k) % 20
                    with lock:
                        sent[0] += 1
                    try:
                        r = post_request(c, P.SegmentRequest(prompt=_click(x, y), image_id=image_id))
                    except BaseException as exc:  # noqa: BLE001
                        errors.append(exc)
                        continue
                    with lock:
                        statuses[r.status_code] += 1
                    if r.status_code == 503:
                        assert r.headers["retry-after"] == "1"
                        time.sleep(0.05)

        def run_for(seconds: float, clients: int = 6) -> None:
            stop_at = time.monotonic() + seconds
            threads = [threading.Thread(target=clicker, args=(i, stop_at)) for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)

        run_for(1.0)  # warm-up: caches, thread pools, allocator
        rss_before = _rss_bytes()
        run_for(3.0)
        rss_after = _rss_bytes()
        processed = h.worker.processed
    assert not errors, errors[:3]
    assert sum(statuses.values()) == sent[0]  # every request got an answer
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] >= 5, statuses
    assert processed == statuses[200] + 1  # + the priming request
    growth = rss_after - rss_before
    assert growth < 40 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB under load"
