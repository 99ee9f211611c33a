"""/ping tells the truth: 503 while the model loads, 503 with the reason after a failed load,
200 only when requests can be served; slow requests time out (504) and are cancelled."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from fixtures_server import classic_factory, encode_image, post_request, run_server, scene_image
from inference import protocol as P
from inference.prompts import Point, Prompt


def _req(seed=1) -> P.SegmentRequest:
    return P.SegmentRequest(prompt=Prompt(points=(Point(x=96, y=120),)), image=encode_image(scene_image(seed)))


def test_ping_is_503_while_loading_then_200():
    gate = threading.Event()

    def slow_factory():  # the real classic backend, built once the test lets loading finish
        assert gate.wait(30)
        return classic_factory()

    with run_server(backend_factory=slow_factory, wait_loaded=False) as h, httpx.Client(base_url=h.url) as c:
        r = c.get("/ping")
        assert r.status_code == 503 and r.json()["status"] == "loading" and r.headers["retry-after"]
        busy = post_request(c, _req())
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "ModelNotReady"
        assert busy.headers["retry-after"]
        gate.set()
        assert h.worker.wait_loaded(30)
        assert c.get("/ping").status_code == 200
        assert post_request(c, _req()).status_code == 200


def test_ping_is_503_with_the_reason_when_the_model_dir_has_no_weights(tmp_path):
    from inference.sagemaker_handler import create_backend_from_model_dir

    def from_empty_dir():
        return create_backend_from_model_dir(tmp_path)[0]

    with run_server(backend_factory=from_empty_dir) as h, httpx.Client(base_url=h.url) as c:
        r = c.get("/ping")
        assert r.status_code == 503 and r.json()["status"] == "failed"
        assert "langsam-config.json is missing" in r.json()["reason"]
        inv = post_request(c, _req())
        assert inv.status_code == 503 and "langsam-config.json" in inv.json()["error"]["message"]


def test_ping_is_503_when_the_sam2_checkpoint_is_missing(tmp_path):
    from inference.backends import create_backend

    missing = tmp_path / "sam2.1_hiera_tiny.pt"
    with (
        run_server(backend_factory=lambda: create_backend("sam2", device="cpu", checkpoint=missing)) as h,
        httpx.Client(base_url=h.url) as c,
    ):
        r = c.get("/ping")
    assert r.status_code == 503 and str(missing) in r.json()["reason"]


@pytest.mark.slow
def test_a_request_over_the_time_limit_gets_504_and_is_cancelled(sam2_backend):
    """SAM 2's encoder (random hiera-tiny, ~2 s on CPU) against a 0.4 s limit: the client gets a
    504 at once and the encoder stops at its next block instead of finishing."""
    from inference.server.config import ServerConfig

    runs = sam2_backend.encoder_runs
    with (
        run_server(backend_factory=lambda: sam2_backend, config=ServerConfig(timeout_s=0.4), unload_on_stop=False) as h,
        httpx.Client(base_url=h.url, timeout=30) as c,
    ):
        assert h.worker.state.value == "ready", h.worker.reason
        t0 = time.perf_counter()
        r = post_request(c, _req(21))
        waited = time.perf_counter() - t0
        assert r.status_code == 504 and r.json()["error"]["code"] == "RequestTimeout", r.text
        assert waited < 5.0  # the limit, plus slack for a loaded 2-core machine
        deadline = time.monotonic() + 60
        while h.worker.processed < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert h.worker.processed == 1
        backend = h.worker.runner.backend
        assert not backend.is_encoded(f"img-{P.content_id(_req(21).image)}")  # cancelled, nothing cached
        assert c.get("/ping").status_code == 200
    assert sam2_backend.loaded and sam2_backend.encoder_runs == runs  # cancelled before it counted
