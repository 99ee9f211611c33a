"""Remote inference (issue 9 part 3): the ``server`` and ``sagemaker`` backends against our server
over real HTTP — a ``langsam-studio serve`` SUBPROCESS for the app path (scheduler + backend),
the real boto3 ``sagemaker-runtime`` client on the server's ``/endpoints/{name}/invocations``
alias path, the ``segment`` CLI with ``--server``/``--endpoint``, and latest-wins against a slow
server. Network only to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures_server import (
    ServeProcess,
    assert_same_prediction,
    classic_factory,
    encode_image,
    free_port,
    loaded_classic,
    run_server,
    scene_image,
)
from inference.cancel import CancelToken
from inference.errors import Cancelled, InferenceError
from inference.images import ImageSource
from inference.prompts import Box, Point, Prompt

CLICK = Prompt(points=(Point(x=96, y=120),))


@pytest.fixture(scope="module")
def serve():
    server = ServeProcess().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i in range(3):
        path = folder / f"img{i}.png"
        path.write_bytes(encode_image(scene_image(60 + i)))
        paths.append(path)
    return paths


def _server_backend(url: str, **options):
    from inference.backends.registry import create_backend

    backend = create_backend("server", url=url, **options)
    backend.ensure_loaded()
    return backend


# -- the backend against a serve subprocess ----------------------------------------------------
def test_original_bytes_once_then_only_the_id(serve, images):
    from inference.images import load_image

    backend = _server_backend(serve.url)
    info = backend.info()
    assert info.backend == "classic" and info.device.startswith(f"server {serve.url}")
    assert backend.supports_text is False
    path = images[0]
    image = load_image(path)
    key = backend.encode(image, source=ImageSource(path=str(path)))  # prefetch: upload + encode
    file_size = path.stat().st_size
    assert backend.is_encoded(key)
    assert file_size <= backend.last_bytes_sent < file_size + 400  # the original file, not pixels
    remote = backend.predict(image, CLICK, image_key=key, source=ImageSource(path=str(path)))
    assert backend.last_bytes_sent <= 300  # a click is the id and the prompt
    assert_same_prediction(remote, loaded_classic().predict(image, CLICK))
    assert remote.image_key == key and "roundtrip_ms" in remote.timings
    assert backend.call_status().startswith(f"server {serve.url} · ")


def test_box_multimask_and_refinement_with_logits(serve, images):
    from inference.images import load_image

    backend = _server_backend(serve.url)
    image = load_image(images[1])
    first = backend.predict(image, CLICK)
    # the server keeps the logits (options.keep_logits): the candidates carry placeholders
    assert all(c.low_res_logits is not None and c.low_res_logits.shape == (256, 256) for c in first.candidates)
    local = loaded_classic()
    logits = local.predict(image, CLICK).candidates[0].low_res_logits
    points = (Point(x=96, y=120), Point(x=20, y=20, positive=False))
    refine = Prompt(points=points, mask_input=first.candidates[0].low_res_logits, multimask=False)
    # float16 on the wire, as the server kept them
    expected = Prompt(points=points, mask_input=logits.astype(np.float16).astype(np.float32), multimask=False)
    assert_same_prediction(backend.predict(image, refine), local.predict(image, expected))
    box = Prompt(box=Box(x0=40, y0=60, x1=160, y1=180), multimask=False)
    assert_same_prediction(backend.predict(image, box), loaded_classic().predict(image, box))


def test_text_is_refused_in_words_by_a_geometry_server(serve, images):
    from inference.errors import PromptError
    from inference.images import load_image

    backend = _server_backend(serve.url)
    with pytest.raises(PromptError, match="not text"):
        backend.predict(load_image(images[0]), Prompt(text="car."))


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.cond = threading.Condition()

    def _add(self, *event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait(self, kind: str, count: int = 1, timeout: float = 30.0) -> list[tuple]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(kind)) >= count, timeout)
            assert ok, f"no {kind} in {self.events}"
            return self.of(kind)

    def of(self, kind: str) -> list[tuple]:
        return [e for e in self.events if e[0] == kind]

    def prediction_ready(self, request_id, prediction):
        self._add("prediction", request_id, prediction)

    def failed(self, request_id, message):
        self._add("failed", request_id, message)

    def backend_changed(self, info):
        self._add("backend", info)

    def backend_failed(self, message):
        self._add("backend_failed", message)

    def encoded(self, key):
        self._add("encoded", key)

    def status(self, text):
        self._add("status", text)

    def busy_changed(self, busy):
        pass


@pytest.fixture
def scheduler():
    from desktop_app.core.scheduler import InferenceScheduler

    sink = RecordingSink()
    sched = InferenceScheduler(sink=sink, prefetch_count=2)
    thread = threading.Thread(target=sched.run, daemon=True)
    thread.start()
    yield sched, sink
    sched.stop()
    thread.join(10)
    sched.release_backend()


def test_the_app_scheduler_prefetches_clicks_and_survives_a_server_restart(scheduler, images, tmp_path):
    """The app path: prefetch, clicks, the server killed mid-request (the error is shown, the
    backend stays), restarted on the same port (a retry works: the image is re-sent silently)."""
    from desktop_app.core.backend_choices import backend_request
    from desktop_app.core.scheduler import ImageRef

    sched, sink = scheduler
    server = ServeProcess().start()
    try:
        request = backend_request(backend="server", device="auto", remote={"remote/server_url": server.url})
        sched.set_backend(request.name, **request.options)
        info = sink.wait("backend")[0][1]
        assert info.backend == "classic" and server.url in info.device
        sched.prefetch([str(p) for p in images[:2]])
        sink.wait("encoded", 2)
        assert sched.backend.is_encoded(sink.of("encoded")[0][1])
        ref = ImageRef(path=str(images[0]))
        rid = sched.predict(image=ref, prompt=CLICK)
        _, got_id, prediction = sink.wait("prediction")[0]
        assert got_id == rid and prediction.best is not None
        assert any(server.url in e[1] and " ms" in e[1] for e in sink.of("status"))  # where + round trip

        # a large image makes the request slow enough to kill the server during it
        big = tmp_path / "big.png"
        big.write_bytes(encode_image(scene_image(7, height=1400, width=1800)))
        rid2 = sched.predict(image=ImageRef(path=str(big)), prompt=Prompt(points=(Point(x=500, y=700),)))
        time.sleep(0.25)
        server.kill()
        failed = sink.wait("failed")[0]
        assert failed[1] == rid2 and ("server" in failed[2] and server.url in failed[2])
        assert sched.backend is not None  # nothing lost: the same backend, the person may retry

        server.start()  # same port
        rid3 = sched.predict(image=ref, prompt=CLICK)
        found = sink.wait("prediction", 2)[-1]
        assert found[1] == rid3  # ImageNotCached after the restart: re-sent silently
    finally:
        server.stop()


# -- latest wins against a slow server ------------------------------------------------------------
def _slow_app(app, *, delay_s: float, marker_x: float):
    """ASGI wrapper: a request whose first point has x == marker_x is answered ``delay_s`` later
    (the delay is server-side, outside the inference thread, like a slow network or model)."""

    async def wrapped(scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            await app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            points = json.loads(body).get("prompt", {}).get("points") or []
        except ValueError:
            points = []
        if points and points[0][0] == marker_x:
            await asyncio.sleep(delay_s)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return wrapped


@pytest.fixture(scope="module")
def slow_server():
    from inference.server.app import create_app
    from inference.server.background import BackgroundServer
    from inference.server.config import ServerConfig
    from inference.server.worker import InferenceWorker

    config = ServerConfig(timeout_s=30.0)
    worker = InferenceWorker(classic_factory, queue_size=config.queue_size, limits=config.limits)
    app = _slow_app(create_app(config=config, worker=worker), delay_s=3.0, marker_x=7)
    with BackgroundServer(app) as srv:
        worker.wait_loaded(60)
        yield srv


def test_a_superseded_call_is_abandoned_at_once(slow_server):
    backend = _server_backend(slow_server.url)
    image = scene_image(21)
    backend.encode(image)
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        backend.predict(image, Prompt(points=(Point(x=7, y=7),)), cancel=token)
    assert time.perf_counter() - started < 1.0
    started = time.perf_counter()
    backend.predict(image, CLICK)  # not serialized behind the abandoned call (still sleeping there)
    assert time.perf_counter() - started < 1.5


def test_latest_prompt_wins_through_the_scheduler(scheduler, slow_server, images):
    from desktop_app.core.scheduler import ImageRef

    sched, sink = scheduler
    sched.set_backend("server", url=slow_server.url)
    sink.wait("backend")
    ref = ImageRef(path=str(images[2]))
    sched.encode(ref)
    sink.wait("encoded")
    slow = sched.predict(image=ref, prompt=Prompt(points=(Point(x=7, y=7),)))
    time.sleep(0.3)  # the slow call is in flight
    started = time.perf_counter()
    fast = sched.predict(image=ref, prompt=CLICK)
    answers = sink.wait("prediction")
    assert time.perf_counter() - started < 1.5  # not the 3 s of the first one
    assert [a[1] for a in answers] == [fast] and slow != fast
    time.sleep(0.2)
    assert not sink.of("failed")


def test_a_dead_server_is_an_error_in_words_not_a_hang():
    from inference.backends.registry import create_backend

    backend = create_backend("server", url=f"http://127.0.0.1:{free_port()}")
    started = time.perf_counter()
    with pytest.raises(InferenceError, match="cannot be reached"):
        backend.ensure_loaded()
    assert time.perf_counter() - started < 5


# -- the SageMaker backend through the real boto3 client ---------------------------------------
@pytest.fixture(scope="module")
def classic_inprocess():
    from inference.server.config import ServerConfig

    with run_server(backend_factory=classic_factory, config=ServerConfig(timeout_s=30.0)) as handle:
        yield handle


def _sagemaker(url: str):
    from desktop_app.core import backend_choices  # noqa: F401 - registers the sagemaker provider
    from inference.backends.registry import create_backend

    backend = create_backend(
        "sagemaker",
        endpoint="langsam-local",
        endpoint_url=url,
        region="eu-west-1",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="not-a-secret",
    )
    backend.ensure_loaded()
    return backend


def test_sagemaker_backend_end_to_end_with_boto3(classic_inprocess, images):
    from inference.images import load_image

    backend = _sagemaker(classic_inprocess.url)
    assert type(backend._client._runtime).__module__.startswith("botocore")
    assert backend.info().backend == "classic" and "endpoint langsam-local" in backend.info().device
    image = load_image(images[0])
    source = ImageSource(path=str(images[0]))
    key = backend.encode(image, source=source)
    assert backend.last_bytes_sent >= images[0].stat().st_size
    remote = backend.predict(image, CLICK, image_key=key, source=source)
    assert backend.last_bytes_sent <= 300
    assert_same_prediction(remote, loaded_classic().predict(image, CLICK))
    classic_inprocess.worker.runner.images.clear()  # evicted on the server: re-sent once, silently
    assert_same_prediction(backend.predict(image, CLICK, image_key=key, source=source), remote)


def test_sagemaker_errors_are_words(classic_inprocess):
    backend = _sagemaker(classic_inprocess.url)
    image = scene_image(5)
    with pytest.raises(InferenceError, match="not text"):
        backend.predict(image, Prompt(text="car."))


def test_backend_choices_offer_both_remote_kinds():
    from desktop_app.core.backend_choices import CHOICES, BackendKind, backend_request, missing_settings

    assert CHOICES["server"].kind is BackendKind.SERVER and "remote/server_url" in CHOICES["server"].settings
    assert CHOICES["sagemaker"].kind is BackendKind.SAGEMAKER
    request = backend_request(
        backend="sagemaker",
        device="auto",
        remote={"remote/endpoint_name": "ep", "remote/endpoint_region": "eu-west-1", "aws/profile": "p"},
    )
    assert request.name == "sagemaker" and request.options["endpoint"] == "ep"
    assert request.options["region"] == "eu-west-1" and request.options["profile"] == "p"
    assert missing_settings("server", {}) == ("remote/server_url",)


# -- the segment CLI ----------------------------------------------------------------------------
def _segment(args: list[str]) -> int:
    from desktop_app.cli.main import main

    return main(["segment", *args, "--no-progress"])


def _pngs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_server_and_endpoint_outputs_equal_the_local_ones(classic_inprocess, images, tmp_path, monkeypatch):
    folder = images[0].parent
    common = ["--point", "96,120", "--format", "coco"]
    assert _segment([str(folder), *common, "--backend", "classic", "--out", str(tmp_path / "local")]) == 0
    assert _segment([str(folder), *common, "--server", classic_inprocess.url, "--out", str(tmp_path / "srv")]) == 0
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", classic_inprocess.url)
    assert (
        _segment(
            [
                str(folder),
                *common,
                "--endpoint",
                "langsam-local",
                "--region",
                "eu-west-1",
                "--out",
                str(tmp_path / "ep"),
            ]
        )
        == 0
    )

    def annotations(out: str):
        data = json.loads(next((tmp_path / out).rglob("*.json")).read_text())
        return [
            {k: a[k] for k in ("image_id", "category_id", "segmentation", "bbox", "area")} for a in data["annotations"]
        ]

    local = annotations("local")
    assert local and annotations("srv") == local and annotations("ep") == local


def test_cli_refuses_contradictory_remote_flags(images, tmp_path, capsys):
    code = _segment(
        [
            str(images[0]),
            "--point",
            "1,1",
            "--format",
            "png",
            "--out",
            str(tmp_path),
            "--server",
            "http://127.0.0.1:1",
            "--endpoint",
            "x",
        ]
    )
    assert code == 2 and "not both" in capsys.readouterr().err
