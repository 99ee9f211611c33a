"""The server's prompt assistant (``prompt.instruction``): a real server (uvicorn on 127.0.0.1)
asking the local OpenAI-compatible test server, with the real ``openai`` client in between."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

import inference.protocol as P
from fixtures_openai import answer, closed_port_url, completion, error  # openai_server: a plugin of conftest.py
from fixtures_server import encode_image, run_server, scene_image
from inference.backends.base import SegmentationBackend
from inference.results import BackendInfo, Candidate, Prediction, PredictionKind

PNG = encode_image(scene_image(3))
B64 = base64.b64encode(PNG).decode()


class TextBackend(SegmentationBackend):
    """One detection per phrase of the text prompt; records the prompts it ran."""

    name = "langsam"
    supports_text = True
    needs_weights = False

    def __init__(self, **kw) -> None:
        super().__init__(device="cpu", **kw)
        self.prompts: list = []

    def load(self) -> None:
        pass

    def info(self) -> BackendInfo:
        return BackendInfo(
            backend="langsam",
            model="fake",
            device="cpu",
            device_reason="test",
            supports_text=True,
            supports_points=True,
        )

    def predict(self, image, prompt, *, image_key=None, cancel=None, source=None) -> Prediction:
        self.prompts.append(prompt)
        h, w = image.shape[:2]
        phrases = [p.strip() for p in (prompt.text or "").split(".") if p.strip()]
        candidates = []
        for i, phrase in enumerate(phrases):
            mask = np.zeros((h, w), bool)
            mask[5 + 10 * i : 10 + 10 * i, 5:20] = True
            candidates.append(
                Candidate(
                    mask=mask, score=0.9, box=(5.0, 5.0 + 10 * i, 20.0, 10.0 + 10 * i), label=phrase, box_score=0.8
                )
            )
        return Prediction(
            candidates=tuple(candidates),
            kind=PredictionKind.INSTANCES,
            image_key=image_key or "k",
            backend="langsam",
            model="fake",
            image_size=(h, w),
        )


def _server(openai_url: str | None, *, model: str | None = "test-model", timeout_s: float = 30.0):
    from inference.server.config import ServerConfig

    backend = TextBackend()
    config = ServerConfig(timeout_s=timeout_s, assistant_model=model, assistant_base_url=openai_url)
    return backend, run_server(backend_factory=lambda: backend, config=config, unload_on_stop=False)


def _post(url: str, prompt: dict) -> httpx.Response:
    return httpx.post(f"{url}/invocations", json={"image": B64, "prompt": prompt}, timeout=60)


def _error(r: httpx.Response, status: int, code: str, field: str | None = "prompt.instruction") -> dict:
    assert r.status_code == status, (r.status_code, r.text[:400])
    err = r.json()["error"]
    assert err["code"] == code, err
    assert err.get("field") == field, err
    assert "Traceback" not in r.text
    return err


def test_an_instruction_becomes_the_text_prompt_and_the_phrases_come_back(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    openai_server.respond(answer("dent", {"phrase": "scratch", "label": "damage"}, notes="no reflections"))
    backend, server = _server(openai_server.base_url)
    with server as h:
        info = httpx.get(f"{h.url}/info", timeout=10).json()
        assert "instruction" in info["features"]
        r = _post(h.url, {"instruction": "every damaged car part, not reflections", "labels": ["damage", "car"]})
        assert r.status_code == 200, r.text
        response = P.decode_response(r.content)
    assert response.phrases == ("dent", "damage")
    assert backend.prompts[-1].text == "dent. damage."
    assert [c.label for c in response.prediction.candidates] == ["dent", "damage"]
    sent = openai_server.requests[-1]["json"]
    text = json.dumps(sent)
    assert "every damaged car part" in text and "damage" in text
    assert "image_url" not in text and B64[:200] not in text  # the image never goes to the assistant


def test_without_an_assistant_an_instruction_is_a_400_in_words():
    backend, server = _server(None, model=None)
    with server as h:
        assert "instruction" not in httpx.get(f"{h.url}/info", timeout=10).json()["features"]
        err = _error(_post(h.url, {"instruction": "cars"}), 400, "AssistantNotConfigured")
        assert "--assistant-model" in err["message"] and "prompt.text" in err["message"]
    assert backend.prompts == []


@pytest.mark.parametrize(
    "prompt, field",
    [
        ({"instruction": "cars", "text": "car."}, "prompt.instruction"),
        ({"instruction": "   "}, "prompt.instruction"),
        ({"instruction": "x" * 2001}, "prompt.instruction"),
        ({"instruction": 5}, "prompt.instruction"),
        ({"instruction": "cars", "labels": "car"}, "prompt.labels"),
        ({"instruction": "cars", "labels": ["car", 3]}, "prompt.labels[1]"),
        ({"labels": ["car"], "points": [[5, 5, 1]]}, "prompt.labels"),
    ],
)
def test_bad_instructions_are_field_named_400s(prompt, field):
    with pytest.raises(P.ProtocolError) as info:
        P.decode_request(json.dumps({"image_id": "x", "prompt": prompt}), content_type="application/json")
    assert info.value.status == 400 and info.value.field == field


def test_the_codec_round_trips_an_instruction_and_phrases():
    from inference.prompts import Prompt

    request = P.SegmentRequest(prompt=Prompt(), image_id="img", instruction="every car", labels=("car", "bus"))
    back = P.decode_request(P.encode_request(request)[0], content_type="application/json")
    assert back.instruction == "every car" and back.labels == ("car", "bus") and back.prompt.text is None
    pred = Prediction(
        candidates=(), kind=PredictionKind.INSTANCES, image_key="k", backend="b", model="m", image_size=(2, 2)
    )
    assert P.decode_response(P.encode_response(pred, image_id="i", phrases=("car",))).phrases == ("car",)
    assert P.decode_response(P.encode_response(pred, image_id="i")).phrases is None


@pytest.mark.parametrize(
    "reply, status, code",
    [
        (
            error(429, "Rate limit reached", type="requests", code="rate_limit_exceeded", headers={"retry-after": "7"}),
            429,
            "AssistantRateLimited",
        ),
        (error(500, "boom", type="server_error"), 502, "AssistantUnavailable"),
        (
            error(401, "Incorrect API key provided: sk-abc", type="invalid_request_error", code="invalid_api_key"),
            502,
            "AssistantUnavailable",
        ),
        (completion(None, refusal="I can't help with that."), 422, "AssistantNoAnswer"),
        (completion("sure! cars and buses"), 422, "AssistantNoAnswer"),
        (completion({"phrases": "car"}), 422, "AssistantNoAnswer"),
        (answer(), 422, "AssistantNoAnswer"),
    ],
)
def test_assistant_failures_map_to_protocol_errors(openai_server, reply, status, code):
    openai_server.respond(reply)
    backend, server = _server(openai_server.base_url)
    with server as h:
        r = _post(h.url, {"instruction": "cars"})
        err = _error(r, status, code, "prompt.instruction" if status == 422 else ("prompt.instruction"))
        if status == 429:
            assert r.headers["Retry-After"] == "7"
        if status == 502:
            assert err["message"].startswith("the server's assistant is unavailable") and "sk-abc" not in r.text
    assert backend.prompts == []  # nothing reached the inference thread


def test_an_unreachable_assistant_is_a_502_and_a_slow_one_a_504(openai_server):
    backend, server = _server(closed_port_url())
    with server as h:
        _error(_post(h.url, {"instruction": "cars"}), 502, "AssistantUnavailable")
    openai_server.respond(answer("car", delay=3.0))
    backend, server = _server(openai_server.base_url, timeout_s=1.0)
    with server as h:
        r = _post(h.url, {"instruction": "cars"})
        assert r.status_code == 504, r.text
    assert backend.prompts == []


def test_the_serve_command_takes_the_assistant_options(monkeypatch):
    import argparse

    from desktop_app.cli import serve_command

    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    args = parser.parse_args(
        ["--backend", "classic", "--assistant-model", "gpt-4o-mini", "--assistant-base-url", "http://127.0.0.1:9/v1"]
    )
    config, _worker = serve_command.build(args)
    assert (config.assistant_model, config.assistant_base_url) == ("gpt-4o-mini", "http://127.0.0.1:9/v1")
