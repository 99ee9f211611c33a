"""The HTTP server end to end over real sockets: invocations, sessions, auth, CORS, logs."""

from __future__ import annotations

import io
import json
import logging

import httpx
import numpy as np
import pytest

from fixtures_server import SERVER_TEST_TOKEN, classic_factory, encode_image, post_request, run_server, scene_image
from inference import protocol as P
from inference.prompts import Box, Point, Prompt


def _click(x=96, y=120, **kw) -> Prompt:
    return Prompt(points=(Point(x=x, y=y),), **kw)


def test_ping_and_info_when_ready(classic_server):
    with httpx.Client(base_url=classic_server.url) as c:
        r = c.get("/ping")
        assert r.status_code == 200 and r.json()["status"] == "ready" and r.json()["backend"] == "classic"
        info = c.get("/info").json()
        assert info["protocol"] == P.PROTOCOL_VERSION and info["limits"]["max_request_bytes"] == P.MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("raw, fmt", [(False, "PNG"), (True, "JPEG"), (True, "PNG")])
def test_json_and_raw_image_invocations_return_full_size_masks(classic_server, raw, fmt):
    image = scene_image(1)
    req = P.SegmentRequest(prompt=_click(), image=encode_image(image, fmt))
    with httpx.Client(base_url=classic_server.url) as c:
        r = post_request(c, req, raw=raw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json" and r.headers["x-request-id"]
    resp = P.decode_response(r.content)
    pred = resp.prediction
    assert pred.image_size == image.shape[:2] and pred.backend == "classic" and pred.candidates
    best = pred.best.mask
    assert best.shape == image.shape[:2] and best[120, 96]  # the click lies inside the disc it selected
    assert {"decode_ms", "predict_ms", "total_ms"} <= set(pred.timings)


def test_box_prompt_and_return_logits_flag(classic_server):
    req = P.SegmentRequest(
        prompt=Prompt(box=Box(x0=180, y0=40, x1=290, y1=130)), image=encode_image(scene_image(2)), return_logits=True
    )
    with httpx.Client(base_url=classic_server.url) as c:
        r = post_request(c, req)
    assert r.status_code == 200, r.text
    pred = P.decode_response(r.content).prediction
    assert pred.best.mask[80, 230]
    for cand in pred.candidates:  # logits travel (compactly) only when the backend has them
        assert cand.low_res_logits is None or cand.low_res_logits.shape == (256, 256)


def test_repeated_clicks_use_the_cached_image_without_resending(classic_server):
    png = encode_image(scene_image(3))
    with httpx.Client(base_url=classic_server.url) as c:
        first = post_request(c, P.SegmentRequest(prompt=_click(), image=png))
        assert first.status_code == 200 and first.headers["x-langsam-image-cache"] == "miss"
        image_id = P.decode_response(first.content).image_id
        assert image_id == P.content_id(png)
        again = post_request(c, P.SegmentRequest(prompt=_click(100, 118), image_id=image_id))
        assert again.status_code == 200 and again.headers["x-langsam-image-cache"] == "hit"
        assert len(again.request.content) < 300  # a click, not an image
        assert P.decode_response(again.content).prediction.timings["decode_ms"] == 0.0
        # re-sending the same bytes is also recognised (no decode)
        resent = post_request(c, P.SegmentRequest(prompt=_click(), image=png))
        assert resent.headers["x-langsam-image-cache"] == "hit"
        # a client-chosen id works too; another image under that id is refused (409) while the first
        # is cached, so a click by that id is never answered on someone else's image (issue 13)
        named = post_request(c, P.SegmentRequest(prompt=_click(), image=png, image_id="doc-7-page-1"))
        assert P.decode_response(named.content).image_id == "doc-7-page-1"
        other = encode_image(scene_image(4, height=200, width=300))
        clash = post_request(c, P.SegmentRequest(prompt=_click(), image=other, image_id="doc-7-page-1"))
        assert clash.status_code == 409 and clash.json()["error"]["code"] == "ImageIdConflict"
        assert clash.json()["error"]["field"] == "image_id"
        by_name = post_request(c, P.SegmentRequest(prompt=_click(), image_id="doc-7-page-1"))
        assert P.decode_response(by_name.content).prediction.image_size == (240, 320)
        gone = post_request(c, P.SegmentRequest(prompt=_click(), image_id="never-sent"))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ImageNotCached"
    assert gone.json()["error"]["field"] == "image_id"


def test_sagemaker_session_header_keeps_the_image(classic_server):
    png = encode_image(scene_image(5))
    with httpx.Client(base_url=classic_server.url) as c:
        r = post_request(
            c, P.SegmentRequest(prompt=_click(), image=png), raw=True, headers={P.SESSION_HEADER: P.NEW_SESSION}
        )
        assert r.status_code == 200
        new = r.headers[P.NEW_SESSION_HEADER]
        session = new.split(";")[0]
        assert "Expires=" in new
        r2 = c.post(
            "/invocations",
            content=json.dumps({"prompt": {"points": [[90, 125, 1]]}}),
            headers={"Content-Type": "application/json", P.SESSION_HEADER: session},
        )
        assert r2.status_code == 200, r2.text
        assert r2.headers["x-langsam-image-cache"] == "hit"
        unknown = c.post(
            "/invocations",
            content=json.dumps({"prompt": {"points": [[1, 1]]}}),
            headers={"Content-Type": "application/json", P.SESSION_HEADER: "nosuchsession"},
        )
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == P.SESSION_HEADER


def test_model_expectations_are_checked(classic_server):
    png = encode_image(scene_image(1))
    with httpx.Client(base_url=classic_server.url) as c:
        model = c.get("/info").json()["model"]
        r = post_request(c, P.SegmentRequest(prompt=_click(), image=png, backend="sam2"))
        assert r.status_code == 400 and r.json()["error"]["field"] == "options.backend"
        r = post_request(c, P.SegmentRequest(prompt=_click(), image=png, backend="classic", model="sam2.1_hiera_tiny"))
        assert r.status_code == 400 and r.json()["error"]["field"] == "options.model"
        assert (
            post_request(c, P.SegmentRequest(prompt=_click(), image=png, backend="classic", model=model)).status_code
            == 200
        )


def test_unknown_paths_and_methods_get_json_errors(classic_server):
    with httpx.Client(base_url=classic_server.url) as c:
        r = c.get("/nope")
        assert r.status_code == 404 and r.json()["error"]["field"] == "path"
        r = c.get("/invocations")
        assert r.status_code == 405 and "not allowed" in r.json()["message"]


def test_token_is_required_when_configured_and_ping_stays_open():
    from inference.server.config import ServerConfig

    with (
        run_server(backend_factory=classic_factory, config=ServerConfig(token=SERVER_TEST_TOKEN)) as h,
        httpx.Client(base_url=h.url) as c,
    ):
        assert c.get("/ping").status_code == 200
        req = P.SegmentRequest(prompt=_click(), image=encode_image(scene_image(1)))
        r = post_request(c, req)
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized"
        assert post_request(c, req, headers={"Authorization": "Bearer wrong-token-xxxxxxxxxx"}).status_code == 401
        assert post_request(c, req, headers={"Authorization": f"Bearer {SERVER_TEST_TOKEN}"}).status_code == 200
        assert post_request(c, req, headers={"X-LangSAM-Token": SERVER_TEST_TOKEN}).status_code == 200
        assert c.get("/info").status_code == 401


def test_refuses_non_loopback_without_token_but_allows_container_mode(monkeypatch, capsys):
    from desktop_app.cli import serve_command
    from inference.server.config import ServerConfig, ServerConfigError

    with pytest.raises(ServerConfigError, match="bearer token"):
        ServerConfig(host="0.0.0.0").check()
    ServerConfig(host="0.0.0.0", token=SERVER_TEST_TOKEN).check()
    ServerConfig(host="::1").check()
    monkeypatch.delenv("LANGSAM_SERVER_TOKEN", raising=False)
    monkeypatch.delenv("SAGEMAKER_BIND_TO_PORT", raising=False)
    monkeypatch.delenv("LANGSAM_SERVE_CONTAINER", raising=False)
    import argparse

    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    assert serve_command.run(parser.parse_args(["--host", "0.0.0.0", "--backend", "classic"])) == 2
    assert "bearer token" in capsys.readouterr().err
    config, _worker = serve_command.build(parser.parse_args(["--container", "--backend", "classic"]))
    assert (config.host, config.port, config.container) == ("0.0.0.0", 8080, True)
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9090")
    config, _worker = serve_command.build(parser.parse_args(["--backend", "classic"]))
    assert (config.host, config.port) == ("0.0.0.0", 9090)


def test_cors_is_off_by_default_and_configurable(classic_server):
    from inference.server.config import ServerConfig

    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    with httpx.Client(base_url=classic_server.url) as c:
        r = c.options("/invocations", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    with (
        run_server(backend_factory=classic_factory, config=ServerConfig(cors_origins=("http://app.example",))) as h,
        httpx.Client(base_url=h.url) as c,
    ):
        r = c.options("/invocations", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "http://app.example"
        assert (
            c.get("/ping", headers={"Origin": "http://evil.example"}).headers.get("access-control-allow-origin") is None
        )


def test_logs_are_json_lines_with_request_ids_and_no_secrets():
    from inference.server.config import ServerConfig
    from inference.server.logs import configure_logging

    stream = io.StringIO()
    configure_logging("info", stream=stream)
    try:
        with (
            run_server(backend_factory=classic_factory, config=ServerConfig(token=SERVER_TEST_TOKEN)) as h,
            httpx.Client(base_url=h.url) as c,
        ):
            req = P.SegmentRequest(prompt=_click(), image=encode_image(scene_image(1)))
            ok = post_request(
                c, req, headers={"Authorization": f"Bearer {SERVER_TEST_TOKEN}", "X-Request-Id": "client-rid-42"}
            )
            bad = post_request(c, req, headers={"Authorization": "Bearer not-the-right-token-at-all"})
    finally:
        for name in ("langsam.server", "uvicorn", "uvicorn.error"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    assert ok.headers["x-request-id"] == "client-rid-42" and bad.status_code == 401
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    requests = [e for e in lines if e.get("event") == "request"]
    assert {e["status"] for e in requests} >= {200, 401}
    assert any(e["request_id"] == "client-rid-42" and e["bytes_in"] > 0 for e in requests)
    assert any(e.get("event") == "loaded" for e in lines)
    text = stream.getvalue()
    assert SERVER_TEST_TOKEN not in text and "not-the-right-token" not in text


def test_image_cache_is_bounded_by_bytes():
    from inference.server.config import ServerConfig
    from inference.server.runner import RunnerLimits

    image = scene_image(0)
    config = ServerConfig(limits=RunnerLimits(image_cache_bytes=int(image.nbytes * 2.5)))
    with run_server(backend_factory=classic_factory, config=config) as h, httpx.Client(base_url=h.url) as c:
        for seed in range(6):
            assert (
                post_request(c, P.SegmentRequest(prompt=_click(), image=encode_image(scene_image(seed)))).status_code
                == 200
            )
        cache = c.get("/info").json()["image_cache"]
    assert cache["entries"] == 2 and cache["bytes"] <= cache["max_bytes"]
    assert np.isfinite(cache["bytes"])


def test_container_mode_loads_the_sagemaker_model_dir(monkeypatch, tmp_path):
    import argparse

    from desktop_app.cli import serve_command
    from inference.errors import WeightsMissingError
    from inference.sagemaker_handler import write_model_dir_config

    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    (tmp_path / "model").mkdir()
    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    _config, worker = serve_command.build(parser.parse_args(["--container"]))
    with pytest.raises(WeightsMissingError, match="langsam-config.json is missing"):
        worker._factory()  # what the worker thread runs first: /ping would give this reason
    write_model_dir_config(tmp_path / "model", backend="classic")
    _config, worker = serve_command.build(parser.parse_args(["--container"]))
    assert worker._factory().name == "classic"
