"""Server benchmark: HTTP overhead, response size, session cache, throughput.

    python -m bench server          # or: python bench/bench_server.py

The server runs as a real ``langsam-studio serve`` subprocess on a loopback port (as people run
it); the client is this process. Measured per backend (``classic``; ``sam2`` with random
hiera-tiny weights when torch and sam2 are installed):

* overhead: a click over HTTP (encode, POST, decode RLE masks) against ``backend.predict`` on the
  same image in this process, both with the image already encoded (goal <= 5 %);
* response bytes against the raw bool masks they carry (goal <= 1 %);
* repeated clicks: ``image_id`` (session cache) vs re-sending the image (recognised by hash) vs
  a server without caches (decode + re-encode every click, what a naive server does);
* throughput and latency with 1, 2 and 4 concurrent clients.
"""

from __future__ import annotations

import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # python bench/bench_server.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference import protocol as P  # noqa: E402
from inference.prompts import Point, Prompt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _scene(height: int = 768, width: int = 1024, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.normal(128, 12, (height, width, 3)).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    image[(xx - width * 0.3) ** 2 + (yy - height * 0.5) ** 2 <= (height * 0.2) ** 2] = (30, 40, 200)
    image[height // 5 : height // 2, int(width * 0.6) : int(width * 0.85)] = (240, 230, 40)
    return image


def _jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """``langsam-studio serve`` in a subprocess; waits for /ping 200."""

    def __init__(self, args: list[str], *, timeout: float = 300.0) -> None:
        import httpx

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-c",
            "import sys; from desktop_app.cli.main import main; sys.exit(main(sys.argv[1:]))",
            "serve",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *args,
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                assert self.proc.stderr is not None  # stderr=PIPE
                raise RuntimeError(f"the server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                r = httpx.get(f"{self.url}/ping", timeout=2)
                if r.status_code == 200:
                    break
                if r.json().get("status") == "failed":
                    raise RuntimeError(f"the server could not load its model: {r.json().get('reason')}")
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not become ready")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


_DECODE_S: list[float] = []  # client-side decode_response time of every _post


def _post(client, request: P.SegmentRequest) -> tuple[P.SegmentResponse, int, int]:
    body, ctype, headers = P.encode_request(request)
    r = client.post("/invocations", content=body, headers={"Content-Type": ctype, **headers})
    if r.status_code != 200:
        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
    t0 = time.perf_counter()
    resp = P.decode_response(r.content)
    _DECODE_S.append(time.perf_counter() - t0)
    return resp, len(body), len(r.content)


def _clicks(n: int) -> list[Prompt]:
    return [Prompt(points=(Point(x=300 + (i % 5) * 4, y=380 + (i % 3) * 4),)) for i in range(n)]


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000.0, 2)


def _bench_backend(
    name: str, serve_args: list[str], make_backend, *, clicks: int, naive_clicks: int, seconds: float
) -> dict[str, Any]:
    import httpx

    image = _scene()
    jpeg = _jpeg(image)
    prompts = _clicks(clicks)
    backend = make_backend()
    backend.ensure_loaded()
    key = f"img-{P.content_id(jpeg)}"
    backend.predict(image, prompts[0], image_key=key)  # encode once, like the server's first click
    server = _Server(serve_args)
    out: dict[str, Any] = {"backend": name}
    try:
        with httpx.Client(base_url=server.url, timeout=600) as c:
            first, _, _ = _post(c, P.SegmentRequest(prompt=prompts[0], image=jpeg))
            image_id = first.image_id
            # 1. overhead: interleave in-process and HTTP clicks so machine load hits both alike
            local, remote, resp_bytes, mask_bytes, server_predict, decode = [], [], [], [], [], []
            for prompt in prompts:
                t0 = time.perf_counter()
                backend.predict(image, prompt, image_key=key)
                local.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                resp, _sent, got = _post(c, P.SegmentRequest(prompt=prompt, image_id=image_id))
                remote.append(time.perf_counter() - t0)
                server_predict.append(resp.prediction.timings["predict_ms"] / 1000.0)
                decode.append(_DECODE_S[-1])
                resp_bytes.append(got)
                mask_bytes.append(sum(cand.mask.size for cand in resp.prediction.candidates))  # 1 byte per bool
            out["in_process_ms"] = _median_ms(local)
            out["http_ms"] = _median_ms(remote)
            out["overhead_pct"] = round((statistics.median(remote) / statistics.median(local) - 1) * 100, 1)
            # the same requests: round trip minus the backend's time inside the server (load-robust)
            extra = [r - p for r, p in zip(remote, server_predict)]
            out["server_predict_ms"] = _median_ms(server_predict)
            out["per_request_overhead_ms"] = _median_ms(extra)
            out["per_request_overhead_pct"] = round(
                100.0 * statistics.median(extra) / statistics.median(server_predict), 1
            )
            out["client_decode_ms"] = _median_ms(decode)  # RLE -> bool masks (validated) on the client
            out["response_bytes"] = int(statistics.median(resp_bytes))
            out["raw_mask_bytes"] = int(statistics.median(mask_bytes))
            out["response_vs_raw_pct"] = round(100.0 * sum(resp_bytes) / sum(mask_bytes), 3)
            # 2. repeated clicks: image_id vs re-sending the image (recognised by its hash)
            resend, resend_sent = [], []
            for prompt in prompts[: max(3, clicks // 2)]:
                t0 = time.perf_counter()
                _r, sent, _ = _post(c, P.SegmentRequest(prompt=prompt, image=jpeg))
                resend.append(time.perf_counter() - t0)
                resend_sent.append(sent)
            click_sent = len(P.encode_request(P.SegmentRequest(prompt=prompts[0], image_id=image_id))[0])
            out["click_with_image_id_ms"] = out["http_ms"]
            out["click_request_bytes"] = click_sent
            out["click_resending_image_ms"] = _median_ms(resend)
            out["resend_request_bytes"] = int(statistics.median(resend_sent))
            # 4. throughput with 1, 2, 4 clients on the cached image
            out["throughput"] = {str(n): _throughput(server.url, image_id, n, seconds) for n in (1, 2, 4)}
    finally:
        server.close()
    # 3. a server without caches: every click decodes the image and re-encodes it
    naive = _Server([*serve_args, "--image-cache-mb", "0"], timeout=300)
    try:
        with httpx.Client(base_url=naive.url, timeout=600) as c:
            times = []
            for i, prompt in enumerate(prompts[:naive_clicks]):
                # a fresh JPEG each click (one changed pixel): no cache can help, as with a stateless server
                variant = image.copy()
                variant[0, 0] = (i * 37 % 256, 0, 0)
                data = _jpeg(variant)
                t0 = time.perf_counter()
                _post(c, P.SegmentRequest(prompt=prompt, image=data))
                times.append(time.perf_counter() - t0)
        out["click_without_caches_ms"] = _median_ms(times)
    finally:
        naive.close()
    out["session_speedup_vs_no_cache"] = round(out["click_without_caches_ms"] / out["click_with_image_id_ms"], 1)
    return out


def _throughput(url: str, image_id: str, clients: int, seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(seed: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as c:
            k = 0
            while time.monotonic() < stop_at:
                k += 1
                prompt = Prompt(points=(Point(x=290 + (seed * 5 + k) % 20, y=370 + k % 20),))
                body, ctype, headers = P.encode_request(P.SegmentRequest(prompt=prompt, image_id=image_id))
                t0 = time.perf_counter()
                r = c.post("/invocations", content=body, headers={"Content-Type": ctype, **headers})
                dt = time.perf_counter() - t0
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        latencies.append(dt)
                if r.status_code == 503:
                    time.sleep(float(r.headers.get("retry-after", "1")))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    lat = sorted(latencies)
    return {
        "clients": clients,
        "ok": len(lat),
        "statuses": statuses,
        "req_per_s": round(len(lat) / elapsed, 2),
        "p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
        "p95_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.95))] * 1000, 1) if lat else None,
    }


def _sam2_setup(tmp: Path):
    import importlib.util

    missing = [name for name in ("torch", "sam2") if importlib.util.find_spec(name) is None]
    if missing:
        return None, f"sam2 skipped: {', '.join(missing)} not installed"
    from inference.random_weights import write_random_sam2_checkpoint

    ckpt = write_random_sam2_checkpoint(tmp / "sam2.1_hiera_tiny.pt", model_id="sam2.1_hiera_tiny", seed=0)
    args = ["--backend", "sam2", "--model", "sam2.1_hiera_tiny", "--checkpoint", str(ckpt), "--device", "cpu"]

    def make():
        from inference.backends import create_backend

        return create_backend("sam2", device="cpu", model="sam2.1_hiera_tiny", checkpoint=ckpt)

    return (args, make), None


def run(*, out_json: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    from inference.backends import create_backend

    results: dict[str, Any] = {
        "load_average_at_start": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "image": "1024x768 JPEG",
        "backends": {},
    }
    results["backends"]["classic"] = _bench_backend(
        "classic",
        ["--backend", "classic"],
        lambda: create_backend("classic", device="cpu"),
        clicks=30,
        naive_clicks=10,
        seconds=3.0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        add_sam2_bench(
            results,
            Path(tmp),
            "sam2 (random hiera-tiny)",
            lambda args, make: _bench_backend("sam2", args, make, clicks=15, naive_clicks=2, seconds=4.0),
        )
    return finish_run(results, out_json, _print_table)


def add_sam2_bench(
    results: dict[str, Any],
    tmp: Path,
    name: str,
    bench: Callable[[list[str], Callable[[], Any]], dict[str, Any]],
) -> None:
    """``results["backends"][name]`` from ``bench(server args, backend factory)`` on a random SAM 2
    (written into ``tmp``), or ``results["sam2_skipped"]`` saying why there is none."""
    setup, skipped = _sam2_setup(tmp)
    if setup is None:
        results["sam2_skipped"] = skipped
    else:
        args, make = setup
        results["backends"][name] = bench(args, make)


def finish_run(
    results: dict[str, Any], out_json: str | os.PathLike[str] | None, print_table: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Note the load average at the end, print the table, write ``out_json`` if given; the results."""
    results["load_average_at_end"] = list(os.getloadavg())
    print_table(results)
    if out_json is not None:
        Path(out_json).write_text(json.dumps(results, indent=2))
    return results


def load_average_change(results: dict[str, Any]) -> str:
    """The 1-minute load average when the run started and when it ended, as "1.2 -> 3.4"."""
    return f"{results['load_average_at_start'][0]:.1f} -> {results['load_average_at_end'][0]:.1f}"


def _print_table(results: dict[str, Any]) -> None:
    print(f"server benchmark, {results['image']}, {results['cpus']} CPUs, load average {load_average_change(results)}")
    for name, r in results["backends"].items():
        print(f"\n[{name}]")
        rows = [
            ("click in process (median)", f"{r['in_process_ms']} ms", "this process, interleaved with the HTTP clicks"),
            ("click over HTTP, image_id", f"{r['http_ms']} ms", f"{r['overhead_pct']:+.1f} % vs in process"),
            (
                "  server overhead per request",
                f"{r['per_request_overhead_ms']} ms",
                f"{r['per_request_overhead_pct']:+.1f} % over the same request's {r['server_predict_ms']} ms "
                "predict (goal <= 5 %)",
            ),
            ("  of which client RLE decoding", f"{r['client_decode_ms']} ms", ""),
            (
                "response size",
                f"{r['response_bytes']} B",
                f"{r['response_vs_raw_pct']} % of raw bool masks ({r['raw_mask_bytes']} B; goal <= 1 %)",
            ),
            (
                "click re-sending the image",
                f"{r['click_resending_image_ms']} ms",
                f"{r['resend_request_bytes']} B sent vs {r['click_request_bytes']} B with image_id",
            ),
            (
                "click on a server without caches",
                f"{r['click_without_caches_ms']} ms",
                f"image_id is {r['session_speedup_vs_no_cache']}x faster",
            ),
        ]
        for label, value, note in rows:
            print(f"  {label:<34} {value:>12}   {note}")
        for n, t in r["throughput"].items():
            print(
                f"  {n} concurrent client(s){'':<13} {t['req_per_s']:>8} req/s   p50 {t['p50_ms']} ms, "
                f"p95 {t['p95_ms']} ms, statuses {t['statuses']}"
            )
    if "sam2_skipped" in results:
        print(results["sam2_skipped"])


if __name__ == "__main__":
    run(out_json=Path(__file__).parent / "results" / "server.json" if len(sys.argv) < 2 else sys.argv[1])
