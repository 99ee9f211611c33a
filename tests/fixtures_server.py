"""Server fixtures: a real uvicorn server on a free loopback port with a real backend.

``run_server`` starts the FastAPI app (worker thread + uvicorn thread) and stops both; the
module-scoped ``classic_server`` serves the weight-free classic backend. Images are synthetic
scenes (a disc and a rectangle on a textured background) encoded as PNG or JPEG.
"""

from __future__ import annotations

import contextlib
import io
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

SERVER_TEST_TOKEN = "test-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ServerHandle:
    url: str
    worker: object
    config: object


@contextlib.contextmanager
def run_server(
    *, backend_factory: Callable, config=None, wait_loaded: bool = True, unload_on_stop: bool = True
) -> Iterator[ServerHandle]:
    from inference.server.app import create_app
    from inference.server.background import BackgroundServer
    from inference.server.config import ServerConfig
    from inference.server.worker import InferenceWorker

    config = config or ServerConfig()
    worker = InferenceWorker(
        backend_factory,
        queue_size=config.queue_size,
        limits=config.limits,
        retry_after_s=config.retry_after_s,
        unload_on_stop=unload_on_stop,
    )
    app = create_app(config=config, worker=worker)
    with BackgroundServer(app) as srv:
        if wait_loaded:
            worker.wait_loaded(120)
        yield ServerHandle(url=srv.url, worker=worker, config=config)


def classic_factory():
    from inference.backends import create_backend

    return create_backend("classic", device="cpu")


def loaded_classic():
    """A loaded classic backend in this process (what a remote answer is compared with)."""
    backend = classic_factory()
    backend.ensure_loaded()
    return backend


def assert_same_prediction(a, b) -> None:
    """The same kind, the same masks, the same scores (to the wire's 5 decimals)."""
    assert a.kind == b.kind and len(a.candidates) == len(b.candidates)
    for x, y in zip(a.candidates, b.candidates):
        assert np.array_equal(x.mask, y.mask)
        assert x.score == pytest.approx(y.score, abs=1e-4)


@pytest.fixture(scope="module")
def classic_server():
    """A running server with the classic backend (limits small enough to test the guards)."""
    from inference.server.config import ServerConfig
    from inference.server.runner import RunnerLimits

    config = ServerConfig(limits=RunnerLimits(max_image_pixels=4_000_000), timeout_s=30.0)
    with run_server(backend_factory=classic_factory, config=config) as handle:
        assert handle.worker.state.value == "ready", handle.worker.reason
        yield handle


def scene_image(seed: int = 0, *, height: int = 240, width: int = 320) -> np.ndarray:
    """A textured background with a dark disc and a bright rectangle (distinct per seed)."""
    rng = np.random.default_rng(seed)
    image = (rng.normal(128, 12, (height, width, 3))).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    disc = (xx - width * 0.3) ** 2 + (yy - height * 0.5) ** 2 <= (min(height, width) * 0.2) ** 2
    image[disc] = (30, 40, 200)
    image[height // 5 : height // 2, int(width * 0.6) : int(width * 0.85)] = (240, 230, 40)
    return image


def encode_image(image: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def post_request(client, request, *, raw: bool = False, path: str = "/invocations", headers=None):
    from inference.protocol import encode_request

    body, content_type, extra = encode_request(request, raw=raw)
    return client.post(path, content=body, headers={"Content-Type": content_type, **extra, **(headers or {})})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(port: int, *extra: str) -> list[str]:
    """``langsam-studio serve --backend classic --port PORT [extra…]`` as this interpreter runs it."""
    return [
        sys.executable,
        "-c",
        "import sys; from desktop_app.cli.main import main; sys.exit(main(sys.argv[1:]))",
        "serve",
        "--backend",
        "classic",
        "--port",
        str(port),
        *extra,
    ]


class ServeProcess:
    """``langsam-studio serve --backend classic`` as a child process on a fixed free port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServeProcess:
        self.proc = subprocess.Popen(
            serve_command(self.port), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError("the server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
