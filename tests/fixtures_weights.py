"""A real HTTP file server on 127.0.0.1 (Range support, fault injection, a minimal Hub) and
small model files shaped like the real ones, for the weights tests."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

__all__ = ["FileServer", "file_server", "make_torch_like_checkpoint", "make_gdino_files", "git_blob_sha1"]


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def make_torch_like_checkpoint(nbytes_payload: int = 2_000_000, *, seed: int = 0) -> bytes:
    """A zip laid out like ``torch.save`` output (``archive/data.pkl`` + tensor data)."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("archive/data/0", rng.integers(0, 256, nbytes_payload, dtype=np.uint8).tobytes())
    return buf.getvalue()


def make_gdino_files(*, seed: int = 0) -> dict[str, bytes]:
    """The files of a (tiny, random) Hugging Face Grounding DINO snapshot."""
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    weights = save(
        {
            "a.weight": rng.standard_normal((256, 512)).astype(np.float32),
            "b.bias": rng.standard_normal((512,)).astype(np.float32),
        }
    )
    return {
        "config.json": json.dumps({"model_type": "grounding-dino", "d_model": 256}).encode(),
        "model.safetensors": weights,
        "preprocessor_config.json": json.dumps({"size": {"shortest_edge": 800}}).encode(),
        "tokenizer_config.json": json.dumps({"do_lower_case": True}).encode(),
        "vocab.txt": "\n".join(["[PAD]"] + [f"tok{i}" for i in range(1100)]).encode(),
    }


@dataclass
class FileServer:
    """Files by URL path. ``cut_after`` drops the connection after that many body bytes
    (``cut_times`` times); ``ignore_range`` answers 200 with the whole file; ``hub`` files get
    Hugging Face headers on HEAD (ETag = sha256 or git-blob sha1, X-Repo-Commit)."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    lfs: set[str] = field(default_factory=set)  # paths whose ETag is a sha256 (LFS files)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    cut_after: int | None = None
    cut_times: int = 0
    ignore_range: bool = False
    hold: threading.Event | None = None  # when set by a test: block mid-body until released
    deny: dict[str, int] = field(default_factory=dict)  # path -> 401/403 (a gated repo without access)
    authorization: list[str | None] = field(default_factory=list)  # the Authorization header of each request

    def url(self, path: str) -> str:
        return self.base + path


def _handler(state: FileServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _lookup(self) -> bytes | None:
            path = self.path.split("?", 1)[0]
            state.requests.append((self.command, path, self.headers.get("Range")))
            state.authorization.append(self.headers.get("Authorization"))
            return state.files.get(path)

        def _denied(self) -> bool:
            status = state.deny.get(self.path.split("?", 1)[0])
            if status is None:
                return False
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def _headers_for(self, data: bytes) -> None:
            path = self.path.split("?", 1)[0]
            etag = hashlib.sha256(data).hexdigest() if path in state.lfs else git_blob_sha1(data)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("X-Repo-Commit", "0" * 40)
            self.send_header("Accept-Ranges", "bytes")

        def do_HEAD(self) -> None:
            data = self._lookup()
            if self._denied():
                return
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self._headers_for(data)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()

        def do_GET(self) -> None:
            data = self._lookup()
            if self._denied():
                return
            if data is None:
                self.send_error(404)
                return
            start = 0
            rng = self.headers.get("Range")
            if rng and not state.ignore_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self._headers_for(data)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.cut_after is not None and state.cut_times > 0 and len(body) > state.cut_after:
                state.cut_times -= 1
                self.wfile.write(body[: state.cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            step = 256 * 1024
            for i in range(0, len(body), step):
                if state.hold is not None and i >= step:
                    state.hold.wait(10)
                try:
                    self.wfile.write(body[i : i + step])
                except (BrokenPipeError, ConnectionResetError):
                    return

    return Handler


@pytest.fixture
def file_server():
    state = FileServer()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
