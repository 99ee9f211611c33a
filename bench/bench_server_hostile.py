"""Hostile-load benchmark (issue 13): an honest client's latency while others misbehave.

    python bench/bench_server_hostile.py [--seconds 20]

A real server (classic backend, uvicorn thread with the same connection guard as ``serve``) on
127.0.0.1 only. Phase 1: the honest client clicks on an idle server. Phase 2: the same clicks
while, bounded in count and time, clients (a) send work and hang up (abandoned), (b) hold idle
and slowloris sockets, (c) dribble bodies, (d) send a hostile bad-input corpus in a loop. Reports
honest p50/p99 in both phases (goal: p99 under attack <= 2x idle p99), every status seen, work
cancelled, and memory growth. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import resource
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _png(height: int, width: int, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = rng.normal(128, 12, (height, width, 3)).clip(0, 255).astype(np.uint8)
    img[height // 4 : height // 2, width // 4 : width // 2] = (240, 230, 40)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _post(port: int, body: bytes, *, close_after_send: bool = False, timeout: float = 60.0) -> int:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head + body)
        if close_after_send:
            time.sleep(0.02)
            return 0
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else -1


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the attack phase")
    parser.add_argument("--clicks", type=int, default=40, help="honest clicks per phase")
    args = parser.parse_args(argv)

    import httpx

    from inference.backends import create_backend
    from inference.server.app import create_app
    from inference.server.background import BackgroundServer
    from inference.server.config import ServerConfig
    from inference.server.runner import RunnerLimits
    from inference.server.worker import InferenceWorker

    limits = RunnerLimits(max_image_pixels=4_000_000, cpu_budget_s=30.0)
    config = ServerConfig(timeout_s=30.0, queue_size=16, header_timeout_s=2.0, body_timeout_s=3.0, limits=limits)
    worker = InferenceWorker(lambda: create_backend("classic", device="cpu"), queue_size=16, limits=limits)
    server = BackgroundServer(create_app(config=config, worker=worker)).start()
    worker.wait_loaded(60)
    port = server.port
    honest_png = _png(480, 640, 1)
    from inference.protocol import content_id
    from inference.server.logs import configure_logging

    log_stream = io.StringIO()
    configure_logging("warning", stream=log_stream)
    honest_id = content_id(honest_png)
    honest_body = json.dumps({"image": base64.b64encode(honest_png).decode(), "prompt": {"points": [[200, 150]]}})
    heavy_bodies = [
        json.dumps(
            {"image": base64.b64encode(_png(800, 1000, 10 + i)).decode(), "prompt": {"box": [0, 0, 1000, 800]}}
        ).encode()
        for i in range(4)
    ]
    bad_bodies = [
        b'{"prompt": {"points": [[' + b"9" * 400 + b", 1]]}}",
        b'{"protocol": ' + b"1" * 5000 + b"}",
        b'{"prompt": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        json.dumps({"image": "@@@", "prompt": {"points": [[1, 1]]}}).encode(),
        json.dumps({"image_id": "x" * 300, "prompt": {"points": [[1, 1]]}}).encode(),
    ]

    def honest_phase() -> list[float]:
        times = []
        with httpx.Client(base_url=server.url, timeout=60) as c:
            c.post("/invocations", content=honest_body, headers={"Content-Type": "application/json"})  # warm cache
            for i in range(args.clicks):
                body = json.dumps({"image_id": honest_id, "prompt": {"points": [[200 + i, 150]]}})
                t0 = time.perf_counter()
                r = c.post("/invocations", content=body, headers={"Content-Type": "application/json"})
                times.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    lost.append(r.status_code)
        return times

    lost: list[int] = []
    rss0 = _rss_mb()
    idle = honest_phase()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    tried: Counter[str] = Counter()

    def note(kind: str, status: int) -> None:
        with lock:
            tried[kind] += 1
            statuses[status] += 1

    def abandoner(i: int) -> None:
        while not stop.is_set():
            try:
                _post(port, heavy_bodies[i % len(heavy_bodies)], close_after_send=True)
                note("abandoned", 0)
            except OSError:
                note("abandoned", -2)
            time.sleep(0.3)

    def bad_input() -> None:
        k = 0
        while not stop.is_set():
            try:
                note("bad_input", _post(port, bad_bodies[k % len(bad_bodies)]))
            except OSError:
                note("bad_input", -2)
            k += 1

    def slowloris() -> None:
        socks = []
        for _ in range(100):  # idle sockets that never send a byte
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        dribblers = []
        for _ in range(20):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /ping HTTP/1.1\r\n")
                dribblers.append(s)
            except OSError:
                break
        while not stop.is_set():
            for s in list(dribblers):
                try:
                    s.sendall(b"X-A: b\r\n")
                except OSError:
                    dribblers.remove(s)
                    note("slowloris", 408)
            time.sleep(0.5)
        for s in socks + dribblers:
            s.close()

    def slow_body() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(
                        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100000\r\n\r\n{"
                    )
                    data = s.recv(65536)
                    note("slow_body", int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else -1)
            except OSError:
                note("slow_body", -2)

    threads = [threading.Thread(target=abandoner, args=(i,), daemon=True) for i in range(6)]
    threads += [threading.Thread(target=bad_input, daemon=True) for _ in range(2)]
    threads += [threading.Thread(target=slowloris, daemon=True), threading.Thread(target=slow_body, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    t_end = time.monotonic() + args.seconds
    attacked: list[float] = []
    while time.monotonic() < t_end:
        attacked += honest_phase()
    stop.set()
    for t in threads:
        t.join(15)
    rss1 = _rss_mb()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        still = c.get("/ping").status_code
    cancelled, processed = worker.cancelled, worker.processed
    server.stop()

    def pct(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)) * 1000.0, 1)

    report = {
        "honest_idle_ms": {"n": len(idle), "p50": pct(idle, 50), "p99": pct(idle, 99)},
        "honest_attacked_ms": {
            "n": len(attacked),
            "p50": pct(attacked, 50),
            "p99": pct(attacked, 99),
            "mean": round(statistics.mean(attacked) * 1000, 1),
        },
        "p99_ratio": round(pct(attacked, 99) / max(pct(idle, 99), 1e-6), 2),
        "honest_lost_or_non_200": lost,
        "hostile_tried": dict(tried),
        "hostile_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "worker": {"processed": processed, "cancelled": cancelled},
        "rss_mb": {"before": round(rss0, 1), "after": round(rss1, 1), "growth": round(rss1 - rss0, 1)},
        "ping_after": still,
        "log": {
            "lines": len(log_stream.getvalue().splitlines()),
            "bytes": len(log_stream.getvalue()),
            "all_json": all(line.startswith("{") for line in log_stream.getvalue().splitlines()),
        },
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
