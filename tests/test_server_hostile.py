"""Issue 13: a server that can face a network.

Hostile input (numbers, strings, sizes, token counts, encodings, headers, HTTP framing), slow
and abandoned clients and descriptor exhaustion: every answer is a JSON 4xx (or a clean refusal),
abandoned work is cancelled, and the server keeps serving. Real servers on 127.0.0.1 only (a
uvicorn thread, or a ``langsam-studio serve`` subprocess with a lowered RLIMIT_NOFILE); raw
sockets for framing, Host and slowloris. Timing is asserted only generously here (a noisy shared
machine); ``bench/bench_server_hostile.py`` measures latency under attack.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import time
from pathlib import Path
from types import MappingProxyType

import httpx
import numpy as np
import pytest

from fixtures_server import (
    classic_factory,
    encode_image,
    free_port,
    post_request,
    run_server,
    scene_image,
    serve_command,
)
from inference import protocol as P
from inference.backends.base import SegmentationBackend
from inference.cancel import check
from inference.prompts import Box, Point, Prompt
from inference.results import BackendInfo, Candidate, Prediction, PredictionKind

ROOT = Path(__file__).resolve().parents[1]
PNG = encode_image(scene_image(7))
B64 = base64.b64encode(PNG).decode()
JSON = {"Content-Type": "application/json"}


# -- a scripted backend: takes `seconds` per request in small cancellable steps, reads text -------
class FakeBackend(SegmentationBackend):
    name = "fake"
    supports_text = True
    needs_weights = False
    TOKEN_LIMIT = 16

    def __init__(self, *, seconds: float = 0.0, estimate: float | None = None, **kw) -> None:
        super().__init__(device="cpu", **kw)
        self.seconds = seconds
        self.estimate = estimate
        self.started = 0
        self.finished = 0
        self.stopped = 0

    def load(self) -> None:
        pass

    def info(self) -> BackendInfo:
        return BackendInfo(
            backend="fake", model="fake-1", device="cpu", device_reason="test", supports_text=True, supports_points=True
        )

    def text_token_limit(self) -> int | None:
        return self.TOKEN_LIMIT

    def count_text_tokens(self, text: str) -> int | None:
        return len(text.split()) + 2  # like [CLS] ... [SEP]

    def estimate_seconds(self, height, width, prompt):
        return self.estimate

    def predict(self, image, prompt, *, image_key=None, cancel=None, source=None) -> Prediction:
        self.started += 1
        deadline = time.monotonic() + self.seconds
        try:
            while time.monotonic() < deadline:
                check(cancel)
                time.sleep(0.01)
            check(cancel)
        except BaseException:
            self.stopped += 1
            raise
        self.finished += 1
        h, w = image.shape[:2]
        mask = np.zeros((h, w), bool)
        mask[: h // 2, : w // 2] = True
        return Prediction(
            candidates=(Candidate(mask=mask, score=0.9, box=(0.0, 0.0, w / 2, h / 2)),),
            kind=PredictionKind.ALTERNATIVES,
            image_key=image_key or "k",
            backend="fake",
            model="fake-1",
            image_size=(h, w),
            timings=MappingProxyType({}),
        )


def _config(**kw):
    from inference.server.config import ServerConfig
    from inference.server.runner import RunnerLimits

    limits = kw.pop("limits", None) or RunnerLimits(
        max_image_pixels=4_000_000, max_decode_bytes=64 * 2**20, cpu_budget_s=30.0
    )
    base = dict(timeout_s=30.0, header_timeout_s=1.0, body_timeout_s=1.5, limits=limits)
    base.update(kw)
    return ServerConfig(**base)


@pytest.fixture(scope="module")
def fake():
    backend = FakeBackend()
    with run_server(backend_factory=lambda: backend, config=_config(), unload_on_stop=False) as handle:
        handle.backend = backend
        yield handle


@pytest.fixture(scope="module")
def classic():
    with run_server(backend_factory=classic_factory, config=_config()) as handle:
        assert handle.worker.state.value == "ready", handle.worker.reason
        yield handle


def _j(obj) -> bytes:
    return json.dumps(obj).encode()


def _with(prompt: str, *, options: str = "", image: str | None = None) -> bytes:
    """A JSON body assembled as text, so numbers can be written exactly as an attacker would."""
    image_part = f'"image": "{image if image is not None else B64}", '
    return ("{" + image_part + f'"prompt": {prompt}' + (f', "options": {options}' if options else "") + "}").encode()


def _assert_json_error(r: httpx.Response, status: int, field: str | None = None, code: str | None = None):
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    err = r.json()["error"]
    assert err["message"] and "Traceback" not in r.text
    if field is not None:
        assert err.get("field") == field, err
    if code is not None:
        assert err["code"] == code, err
    return err


def _still_serving(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/ping").status_code == 200
        ok = c.post("/invocations", content=_with('{"points": [[96, 120, 1]]}'), headers=JSON)
        assert ok.status_code == 200, ok.text


# -- numbers, strings, sizes, token counts, encodings ------------------------------------------------
BIG = "9" * 400
HUGE = "1" * 5000  # over Python's 4,300-digit int-str limit
CORPUS = [
    # (id, body, status, field)
    ("400-digit coordinate", _with(f'{{"points": [[{BIG}, 10, 1]]}}'), 400, "prompt.points[0]"),
    ("negative 400-digit coordinate", _with(f'{{"points": [[-{BIG}, 10]]}}'), 400, "prompt.points[0]"),
    ("400-digit box", _with(f'{{"box": [0, 0, {BIG}, 10]}}'), 400, "prompt.box"),
    (
        "5000-digit max_detections",
        _with('{"points": [[1, 1]]}', options=f'{{"max_detections": {HUGE}}}'),
        400,
        "options.max_detections",
    ),
    ("5000-digit protocol", b'{"protocol": ' + HUGE.encode() + b', "prompt": {"points": [[1, 1]]}}', 400, "protocol"),
    ("5000-digit unknown field", b'{"zzz": ' + HUGE.encode() + b"}", 400, "zzz"),
    ("5000-digit nested in a list", _with(f'{{"points": [[1, 1, {HUGE}]]}}'), 400, "prompt.points[0]"),
    (
        "1e400 threshold",
        _with('{"points": [[1, 1]]}', options='{"box_threshold": 1e400}'),
        400,
        "options.box_threshold",
    ),
    ("-1e400 coordinate", _with('{"points": [[-1e400, 1]]}'), 400, "prompt.points[0]"),
    ("long float literal", _with(f'{{"points": [[1.{"0" * 300}1, 1]]}}'), 400, "prompt.points[0]"),
    ("Infinity", _with('{"points": [[Infinity, 1]]}'), 400, "body"),
    ("float label", _with('{"points": [[1, 1, 0.5]]}'), 400, "prompt.points[0]"),
    ("string coordinate", _with('{"points": [["1", 1]]}'), 400, "prompt.points[0]"),
    ("2000 points", _with(json.dumps({"points": [[1, 1]] * 2000})), 400, "prompt.points"),
    ("deep nesting", b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "body"),
    ("text over 1000 chars", _with(json.dumps({"text": "a" * 1001})), 400, "prompt.text"),
    ("text over the token limit", _with(json.dumps({"text": "car. " * 20})), 400, "prompt.text"),
    ("text lone surrogate", _with('{"text": "car \\ud800"}'), 400, "prompt.text"),
    ("text not a string", _with('{"text": 12}'), 400, "prompt.text"),
    ("image_id too long", _j({"image_id": "a" * 300, "prompt": {"points": [[1, 1]]}}), 400, "image_id"),
    ("image_id with slash", _j({"image_id": "../x", "prompt": {"points": [[1, 1]]}}), 400, "image_id"),
    (
        "model name 1 MB",
        _with('{"points": [[1, 1]]}', options=json.dumps({"model": "m" * 10**6})),
        400,
        "options.model",
    ),
    (
        "base64 url-safe alphabet",
        _with(
            '{"points": [[1, 1]]}',
            image=B64.replace("+", "-").replace("/", "_") if ("+" in B64 or "/" in B64) else "ab-_",
        ),
        400,
        "image",
    ),
    ("base64 bad padding", _with('{"points": [[1, 1]]}', image="abc"), 400, "image"),
    ("body not UTF-8", b'{"prompt": "\xff\xfe"}', 400, "body"),
    (
        "image is a zip bomb-ish text",
        _with('{"points": [[1, 1]]}', image=base64.b64encode(b"PK\x03\x04" * 100).decode()),
        400,
        "image",
    ),
]


@pytest.mark.parametrize("name, body, status, field", CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_values_get_a_json_4xx_naming_the_field(fake, name, body, status, field):
    with httpx.Client(base_url=fake.url, timeout=30) as c:
        r = c.post("/invocations", content=body, headers=JSON)
    err = _assert_json_error(r, status, field)
    if name == "text over the token limit":
        assert "tokens" in err["message"] and str(FakeBackend.TOKEN_LIMIT) in err["message"]
    if name.startswith("base64"):
        assert "base64" in err["message"]


def test_nothing_in_the_corpus_ran_inference_and_the_server_still_serves(fake):
    before = fake.backend.started
    with httpx.Client(base_url=fake.url, timeout=30) as c:
        for _name, body, _status, _field in CORPUS:
            assert c.post("/invocations", content=body, headers=JSON).status_code < 500
    assert fake.backend.started == before  # all refused before the backend saw them
    _still_serving(fake.url)


def test_the_same_values_in_the_raw_image_header_are_refused_too(fake):
    with httpx.Client(base_url=fake.url, timeout=30) as c:
        for attrs, field in [
            (f'{{"prompt": {{"points": [[{BIG}, 1]]}}}}', "prompt.points[0]"),
            ('{"prompt": {"points": [[1, 1]]}, "protocol": ' + "7" * 900 + "}", "protocol"),
            ('{"prompt": {"text": "' + "dog. " * 30 + '"}}', "prompt.text"),
        ]:
            r = c.post(
                "/invocations", content=PNG, headers={"Content-Type": "image/png", P.CUSTOM_ATTRIBUTES_HEADER: attrs}
            )
            _assert_json_error(r, 400, field)


def test_line_wrapped_base64_is_accepted(fake):
    wrapped = base64.encodebytes(PNG).decode()  # MIME style: 76-character lines
    assert "\n" in wrapped
    crlf = "\r\n".join(wrapped.splitlines())
    with httpx.Client(base_url=fake.url, timeout=30) as c:
        for image in (wrapped, crlf, " ".join(B64[i : i + 64] for i in range(0, len(B64), 64))):
            r = c.post(
                "/invocations",
                content=_with('{"points": [[10, 10]]}', image=image.replace("\n", "\\n").replace("\r", "\\r")),
                headers=JSON,
            )
            assert r.status_code == 200, r.text
            assert P.decode_response(r.content).image_id == P.content_id(PNG)


def test_the_token_limit_is_checked_by_the_sagemaker_handler_too():
    from inference import sagemaker_handler as H
    from inference.server.runner import SegmentationRunner

    runner = SegmentationRunner(FakeBackend())
    body = _j({"image": B64, "prompt": {"text": "car. " * 20}})
    decoded = H.input_fn(body, "application/json")
    out = H.predict_fn(decoded, runner)
    assert H.handler_status(out) == 400 and out.info.field == "prompt.text" and "tokens" in out.info.message
    for bad in (_with(f'{{"points": [[{BIG}, 1]]}}'), b'{"protocol": ' + HUGE.encode() + b"}"):
        failed = H.input_fn(bad, "application/json")
        assert H.handler_status(failed) == 400
        body, ctype = H.output_fn(failed, "application/json")
        assert json.loads(body)["error"]["status"] == 400


def test_langsam_counts_grounding_dino_tokens(langsam_backend):
    from inference.errors import PromptError
    from inference.server.runner import SegmentationRunner

    limit = langsam_backend.text_token_limit()
    assert limit == langsam_backend.gdino.max_text_len
    assert langsam_backend.count_text_tokens("car.") < 10
    long_text = "car. " * (limit // 2 + 10)  # under 1,000 characters, over the token limit
    assert len(long_text) < 1000 and langsam_backend.count_text_tokens(long_text.strip()) > limit
    with pytest.raises(PromptError, match="tokens"):
        langsam_backend.check_text_tokens(long_text.strip())
    runner = SegmentationRunner(langsam_backend)
    with pytest.raises(P.ProtocolError) as info:
        runner.handle(_j({"image": B64, "prompt": {"text": long_text}}), content_type="application/json")
    assert info.value.field == "prompt.text" and info.value.status == 400


# -- image ids: never answered on another client's image ---------------------------------------------
def test_a_client_cannot_replace_or_forge_another_clients_image(fake):
    mine, theirs = encode_image(scene_image(1)), encode_image(scene_image(2, height=200, width=300))
    click = Prompt(points=(Point(x=5, y=5),))
    with httpx.Client(base_url=fake.url, timeout=30) as a, httpx.Client(base_url=fake.url, timeout=30) as b:
        assert post_request(a, P.SegmentRequest(prompt=click, image=mine, image_id="photo-1")).status_code == 200
        clash = post_request(b, P.SegmentRequest(prompt=click, image=theirs, image_id="photo-1"))
        _assert_json_error(clash, 409, "image_id", "ImageIdConflict")
        forged = post_request(b, P.SegmentRequest(prompt=click, image=theirs, image_id=P.content_id(mine)))
        _assert_json_error(forged, 400, "image_id")
        again = post_request(a, P.SegmentRequest(prompt=click, image_id="photo-1"))
        assert P.decode_response(again.content).prediction.image_size == (240, 320)
        by_hash = post_request(a, P.SegmentRequest(prompt=click, image_id=P.content_id(mine)))
        assert P.decode_response(by_hash.content).prediction.image_size == (240, 320)
        # a session id the server did not open cannot be planted with an image
        planted = post_request(b, P.SegmentRequest(prompt=click, image=theirs), headers={P.SESSION_HEADER: "s-1"})
        assert planted.status_code == 200
        r = post_request(a, P.SegmentRequest(prompt=click), headers={P.SESSION_HEADER: "s-1"})
        _assert_json_error(r, 404, P.SESSION_HEADER, "ImageNotCached")


def test_client_ids_are_scoped_by_session():
    from inference.server.runner import SegmentationRunner

    runner = SegmentationRunner(FakeBackend())
    click = {"points": [[5, 5]]}
    one = runner.handle(
        _j({"image": B64, "image_id": "page", "prompt": click}),
        content_type="application/json",
        headers={P.SESSION_HEADER: P.NEW_SESSION},
    )
    session = one.headers[P.NEW_SESSION_HEADER].split(";")[0]
    other = encode_image(scene_image(9, height=100, width=100))
    # another session may use the same name for its own image
    two = runner.handle(
        _j({"image": base64.b64encode(other).decode(), "image_id": "page", "prompt": click}),
        content_type="application/json",
        headers={P.SESSION_HEADER: P.NEW_SESSION},
    )
    session2 = two.headers[P.NEW_SESSION_HEADER].split(";")[0]
    r1 = runner.handle(
        _j({"image_id": "page", "prompt": click}), content_type="application/json", headers={P.SESSION_HEADER: session}
    )
    r2 = runner.handle(
        _j({"image_id": "page", "prompt": click}), content_type="application/json", headers={P.SESSION_HEADER: session2}
    )
    assert r1.prediction.image_size == (240, 320) and r2.prediction.image_size == (100, 100)
    with pytest.raises(P.ProtocolError) as info:  # not visible outside its session
        runner.handle(_j({"image_id": "page", "prompt": click}), content_type="application/json")
    assert info.value.status == 404


# -- memory: bounded before decoding -------------------------------------------------------------------
def _palette_png(side: int) -> bytes:
    from PIL import Image

    a = np.zeros((side, side), np.uint8)
    a[:, side // 2 :] = 1
    img = Image.fromarray(a, "P")
    img.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def test_a_tiny_palette_png_of_many_pixels_is_refused_before_decoding():
    from inference.errors import ImageTooLargeError
    from inference.images import decode_bytes_estimate, load_image

    data = _palette_png(3000)  # 9 MP, a few kB
    assert len(data) < 40_000
    need = decode_bytes_estimate("P", 3000, 3000)
    assert need >= 3000 * 3000 * 3  # counted at its decoded RGB size, not its 1-byte indices
    with pytest.raises(ImageTooLargeError, match="MiB"):
        load_image(data, max_pixels=50_000_000, max_decode_bytes=need - 1)
    assert load_image(data, max_pixels=50_000_000, max_decode_bytes=need).shape == (3000, 3000, 3)


def test_the_server_refuses_an_image_over_its_decode_budget(classic):
    data = _palette_png(1900)  # 3.6 MP: under the pixel limit (4 MP), over 64 MiB to decode? no: check
    from inference.images import decode_bytes_estimate

    assert decode_bytes_estimate("RGBA", 1900, 1900) > 64 * 2**20 > decode_bytes_estimate("P", 1900, 1900)
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (1900, 1900), (10, 20, 30, 128)).save(buf, format="PNG")
    with httpx.Client(base_url=classic.url, timeout=30) as c:
        r = c.post(
            "/invocations",
            content=_j({"image": base64.b64encode(buf.getvalue()).decode(), "prompt": {"points": [[5, 5]]}}),
            headers=JSON,
        )
        _assert_json_error(r, 413, "image", "ImageTooLarge")
        ok = c.post(
            "/invocations",
            content=_j({"image": base64.b64encode(data).decode(), "prompt": {"box": [0, 0, 1900, 1900]}}),
            headers=JSON,
        )
        assert ok.status_code == 200, ok.text
    assert classic.worker.runner.images.nbytes <= classic.worker.runner.images.max_bytes


# -- CPU budgets ---------------------------------------------------------------------------------------------
def test_work_over_the_cpu_budget_is_refused_up_front_and_stopped_when_it_overruns():
    from inference.server.runner import RunnerLimits

    backend = FakeBackend(seconds=5.0, estimate=0.01)
    limits = RunnerLimits(cpu_budget_s=2.0, min_budget_s=0.3, budget_factor=10.0)
    with (
        run_server(backend_factory=lambda: backend, config=_config(limits=limits), unload_on_stop=False) as h,
        httpx.Client(base_url=h.url, timeout=30) as c,
    ):
        t0 = time.monotonic()
        r = c.post("/invocations", content=_with('{"points": [[5, 5]]}'), headers=JSON)
        took = time.monotonic() - t0
        _assert_json_error(r, 422, "image", "TooMuchWork")
        assert took < 4.0 and backend.stopped == 1  # stopped at its budget, not after 5 s
        backend.estimate = 50.0  # over the 2 s cap: refused before it starts
        started = backend.started
        r = c.post("/invocations", content=_with('{"points": [[5, 5]]}'), headers=JSON)
        _assert_json_error(r, 422, "image", "TooMuchWork")
        assert backend.started == started


def test_classic_estimates_scale_with_pixels_and_a_tight_budget_refuses_big_images():
    from inference.backends import create_backend
    from inference.server.runner import RunnerLimits, SegmentationRunner

    classic_backend = create_backend("classic", device="cpu")
    box = Prompt(box=Box(x0=0, y0=0, x1=10, y1=10))
    small, big = classic_backend.estimate_seconds(240, 320, box), classic_backend.estimate_seconds(6000, 6000, box)
    assert 0 < small < big
    runner = SegmentationRunner(classic_backend, limits=RunnerLimits(cpu_budget_s=small * 2))
    big_png = encode_image(np.zeros((3000, 3000, 3), np.uint8))
    with pytest.raises(P.ProtocolError) as info:
        runner.handle(
            _j({"image": base64.b64encode(big_png).decode(), "prompt": {"box": [0, 0, 3000, 3000]}}),
            content_type="application/json",
        )
    assert info.value.status == 422 and info.value.code == "TooMuchWork"


def test_grabcut_stops_between_iterations_when_cancelled():
    import inference.backends.classic_backend as CB
    from inference.backends import create_backend
    from inference.cancel import CancelToken
    from inference.errors import Cancelled

    backend = create_backend("classic", device="cpu")
    token = CancelToken()
    calls = []
    real = CB.cv2.grabCut

    def counting(*args):
        calls.append(args[-1])
        if len(calls) == 2:
            token.cancel("test")
        return real(*args)

    CB.cv2.grabCut = counting
    try:
        with pytest.raises(Cancelled):
            backend.predict(scene_image(3), Prompt(box=Box(x0=0, y0=0, x1=320, y1=240)), cancel=token)
    finally:
        CB.cv2.grabCut = real
    assert len(calls) == 2 and calls[1] == CB.cv2.GC_EVAL  # one iteration per call, token checked in between


# -- abandoned and timed-out work is cancelled ----------------------------------------------------------
def _send_and_abandon(port: int, body: bytes) -> None:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    time.sleep(0.05)
    s.close()


def test_abandoned_requests_are_cancelled_and_an_honest_client_is_not_kept_waiting():
    backend = FakeBackend(seconds=1.5)
    with run_server(backend_factory=lambda: backend, config=_config(queue_size=16), unload_on_stop=False) as h:
        port = int(h.url.rsplit(":", 1)[1])
        body = _with('{"points": [[5, 5]]}')
        for _ in range(9):  # nine clients send work and hang up (each would cost 1.5 s)
            _send_and_abandon(port, body)
        time.sleep(0.3)
        t0 = time.monotonic()
        with httpx.Client(base_url=h.url, timeout=60) as c:
            r = c.post("/invocations", content=body, headers=JSON)
        honest = time.monotonic() - t0
        assert r.status_code == 200
        deadline = time.monotonic() + 10
        while h.worker.cancelled < 9 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert h.worker.cancelled >= 9, (h.worker.cancelled, backend.started, backend.finished)
        assert backend.finished == 1  # only the honest request ran to the end
        assert honest < 9 * 1.5  # generous: without cancellation it would be at least 13.5 s
    _still = None  # noqa: F841


def test_a_504_stops_the_work():
    backend = FakeBackend(seconds=10.0)
    with (
        run_server(backend_factory=lambda: backend, config=_config(timeout_s=0.5), unload_on_stop=False) as h,
        httpx.Client(base_url=h.url, timeout=30) as c,
    ):
        r = c.post("/invocations", content=_with('{"points": [[5, 5]]}'), headers=JSON)
        _assert_json_error(r, 504, code="RequestTimeout")
        deadline = time.monotonic() + 5
        while backend.stopped < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert backend.stopped == 1 and backend.finished == 0


# -- HTTP framing, Host, slow clients (raw sockets) ------------------------------------------------------
def _port(handle) -> int:
    return int(handle.url.rsplit(":", 1)[1])


def _exchange(port: int, data: bytes, *, wait: float = 5.0, close_write: bool = False) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        if data:
            s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                raw = b"".join(chunks)
                if b"\r\n\r\n" in raw:
                    head, _, rest = raw.partition(b"\r\n\r\n")
                    length = next(
                        (
                            int(line.split(b":", 1)[1])
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ),
                        None,
                    )
                    if length is not None and len(rest) >= length:
                        break
        except (TimeoutError, ConnectionResetError):
            pass
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith(b"HTTP/") else 0
    headers = {k.strip().lower().decode(): v.strip().decode() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
    if headers.get("content-length", "").isdigit():  # a pipelined second answer may follow in the same read
        body = body[: int(headers["content-length"])]
    return status, headers, body


FRAMING = [
    ("garbage request line", b"GARBAGE\r\n\r\n", 400),
    ("header without colon", b"GET /ping HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n", 400),
    (
        "two content lengths",
        b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        400,
    ),
    ("negative content length", b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n", 400),
    (
        "bad chunk size",
        b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\n",
        400,
    ),
    ("HTTP/1.1 without Host", b"GET /ping HTTP/1.1\r\n\r\n", 400),
    ("NUL in a header", b"GET /ping HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n", 400),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 404),  # h11 parses it as a request for '*'
    (
        "header section over the limit",
        b"GET /ping HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n",
        431,
    ),
    ("non-ASCII path", b"GET /\xff\xfe HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
]


@pytest.mark.parametrize("name, data, status", FRAMING, ids=[f[0] for f in FRAMING])
def test_malformed_http_gets_a_json_error(fake, name, data, status):
    got, headers, body = _exchange(_port(fake), data)
    assert got == status, (got, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), (headers, body[:300])
    assert json.loads(body)["error"]["message"]


def test_after_malformed_http_the_server_still_serves(fake):
    for _name, data, _status in FRAMING:
        _exchange(_port(fake), data)
    _still_serving(fake.url)


HOSTS = [
    ("evil.example", 421),
    ("evil.example:8765", 421),
    ("127.0.0.1.evil.example", 421),
    ("localhost:abc", 421),
    ("localhost", 200),
    ("localhost:1234", 200),
    ("127.0.0.1:80", 200),
    ("[::1]:8765", 200),
    ("LOCALHOST", 200),
]


@pytest.mark.parametrize("host, status", HOSTS, ids=[h[0] for h in HOSTS])
def test_only_loopback_host_names_are_answered_on_a_loopback_bind(fake, host, status):
    got, headers, body = _exchange(
        _port(fake), f"GET /ping HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    )
    assert got == status, body[:300]
    assert headers.get("content-type", "").startswith("application/json")
    if status == 421:
        assert json.loads(body)["error"]["field"] == "Host"


def test_silent_and_slowloris_connections_are_timed_out_with_json(fake):
    t0 = time.monotonic()
    status, headers, body = _exchange(_port(fake), b"", wait=10)  # connects, never sends a byte
    assert status == 408 and json.loads(body)["error"]["code"] == "RequestTimeout"
    assert time.monotonic() - t0 < 8
    with socket.create_connection(("127.0.0.1", _port(fake)), timeout=10) as s:  # dribbles its headers
        s.sendall(b"GET /ping HTTP/1.1\r\n")
        closed_after = None
        for i in range(40):
            try:
                s.sendall(b"X-Slow-%d: a\r\n" % i)
            except OSError:
                closed_after = time.monotonic() - t0
                break
            time.sleep(0.2)
        assert closed_after is not None or s.recv(65536) != b""
    _still_serving(fake.url)


def test_a_slow_body_gets_408_json(fake):
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"prompt":'
    )
    status, headers, body = _exchange(_port(fake), head, wait=10)
    assert status == 408, body
    assert json.loads(body)["error"]["field"] == "body"
    _still_serving(fake.url)


def test_a_client_that_disconnects_is_not_logged_as_a_server_error(fake, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="langsam.server")
    body = _with('{"points": [[5, 5]]}')
    with socket.create_connection(("127.0.0.1", _port(fake)), timeout=5) as s:  # half a body, then gone
        s.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:100]
        )
        time.sleep(0.2)
    time.sleep(0.3)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
    _still_serving(fake.url)


# -- the log: JSON, rate-limited ----------------------------------------------------------------------------
def test_repeated_errors_are_rate_limited_in_the_json_log():
    import logging

    from inference.server.logs import configure_logging

    stream = io.StringIO()
    configure_logging("info", stream=stream, rate_limit_s=60.0)
    log = logging.getLogger("uvicorn.error")
    try:
        for _ in range(1000):
            log.warning("Invalid HTTP request received.")
        logging.getLogger("asyncio").error("socket.accept() out of system resource", exc_info=OSError(24, "EMFILE"))
        logging.getLogger("langsam.server").info("request", extra={"event": "request"})
    finally:
        for name in ("langsam.server", "uvicorn", "uvicorn.error", "asyncio"):
            logging.getLogger(name).handlers[:] = []
            logging.getLogger(name).propagate = True
    lines = stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is JSON
    assert len(entries) == 3, lines
    assert entries[1]["logger"] == "asyncio" and "exception" in entries[1]


# -- container mode ------------------------------------------------------------------------------------------
def test_a_public_bind_without_a_token_needs_evidence_of_a_container(tmp_path, monkeypatch):
    import argparse

    from desktop_app.cli import serve_command
    from inference.server import config as C

    assert C.container_environment(str(tmp_path)) is None
    monkeypatch.setenv(C.SAGEMAKER_PORT_ENV, "8080")
    assert C.container_environment(str(tmp_path)) is None  # the variable alone proves nothing
    (tmp_path / "opt" / "ml").mkdir(parents=True)
    assert "opt/ml" in C.container_environment(str(tmp_path))
    (tmp_path / ".dockerenv").touch()
    assert C.container_environment(str(tmp_path)) == "/.dockerenv exists"

    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    monkeypatch.delenv(C.TOKEN_ENV, raising=False)
    monkeypatch.setattr(C, "container_environment", lambda root="/": None)
    with pytest.raises(C.ServerConfigError, match="does not look like a container"):
        serve_command.build(parser.parse_args(["--backend", "classic"]))
    monkeypatch.setattr(C, "container_environment", lambda root="/": "/.dockerenv exists")
    config, _worker = serve_command.build(parser.parse_args(["--backend", "classic"]))
    assert config.host == "0.0.0.0" and config.container and config.host_allow_list() is None


# -- descriptor exhaustion (a real `serve` process with RLIMIT_NOFILE = 256) -------------------------------


def _limit_fds() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_descriptor_exhaustion_sheds_idle_sockets_and_the_server_recovers():
    port = free_port()
    cmd = serve_command(port, "--header-timeout", "30")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_limit_fds)
    idle: list[socket.socket] = []
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for _ in range(600):  # > the 256 descriptors the server may hold
            try:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        time.sleep(1.0)
        statuses = []
        for _ in range(5):  # the honest client: served, or at worst a clean JSON refusal
            try:
                with httpx.Client(base_url=url, timeout=30) as c:
                    r = post_request(c, P.SegmentRequest(prompt=Prompt(points=(Point(x=96, y=120),)), image=PNG))
                statuses.append(r.status_code)
                assert r.headers["content-type"].startswith("application/json")
            except httpx.TransportError as exc:
                statuses.append(type(exc).__name__)
        assert statuses.count(200) >= 4, statuses
        for s in idle:
            s.close()
        idle.clear()
        time.sleep(0.5)
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/ping").status_code == 200
    finally:
        for s in idle:
            s.close()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    err = proc.stderr.read().decode()
    lines = [line for line in err.splitlines() if line.strip()]
    non_json = [line for line in lines if not line.startswith("{")]
    assert all(line.startswith(("serving on", "langsam-studio")) for line in non_json), non_json[:5]
    assert len(err) < 200_000, len(err)  # rate-limited: not megabytes of log
    assert any('"connection_shed"' in line for line in lines), lines[-20:]
