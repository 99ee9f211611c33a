"""The prompt assistant (inference/assistant.py) with the REAL openai client against a local
OpenAI-compatible server (tests/fixtures_openai.py)."""

from __future__ import annotations

import base64
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from fixtures_openai import Reply, answer, closed_port_url, completion, error, rejecting
from inference import assistant as A
from inference.cancel import CancelToken
from inference.errors import Cancelled, StudioError

KEY = "sk-test-secret-key-1234567890"


def ask(server, instruction="every car and person", **kwargs):
    options = dict(model="test-model", api_key=KEY, base_url=server.base_url, timeout=5.0)
    options.update(kwargs)
    return A.suggest_phrases(instruction=instruction, **options)


def test_success_with_json_schema(openai_server):
    openai_server.respond(answer("Car.", {"phrase": " Red  Person ", "box_threshold": 0.25}, notes="ok"))
    result = ask(openai_server)
    assert result.phrases == ("car", "red person")
    assert result.box_thresholds == {"red person": 0.25}
    assert result.prompt_text() == "car. red person."
    assert result.notes == "ok" and result.mode == "json_schema"
    (request,) = openai_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    body = request["json"]
    assert body["model"] == "test-model"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["required"] == ["phrases", "notes"] and schema["additionalProperties"] is False
    assert "label" not in schema["properties"]["phrases"]["items"]["properties"]  # no labels offered
    assert "every car and person" in body["messages"][-1]["content"]


def test_labels_are_offered_and_mapped(openai_server):
    openai_server.respond(
        answer(
            {"phrase": "dented door", "label": "Damage"},
            {"phrase": "scratch", "label": "damage"},
            {"phrase": "wheel", "label": "not-offered"},
            "tyre",
        )
    )
    result = ask(openai_server, labels=["Damage", "wheel"])
    assert result.phrases == ("dented door", "scratch", "wheel", "tyre")
    assert dict(result.labels) == {"dented door": "Damage", "scratch": "Damage"}  # unknown label ignored
    assert result.prompt_phrases() == ("damage", "wheel", "tyre")  # mapped phrases become the label name
    schema = openai_server.requests[0]["json"]["response_format"]["json_schema"]["schema"]
    items = schema["properties"]["phrases"]["items"]
    assert items["properties"]["label"]["anyOf"][0]["enum"] == ["Damage", "wheel"]
    assert "label" in items["required"]
    assert '"Damage"' in openai_server.requests[0]["json"]["messages"][-1]["content"]


def test_falls_back_to_json_object_then_text(openai_server):
    openai_server.respond(rejecting("json_schema", then=answer("cup")))
    result = ask(openai_server)
    assert result.phrases == ("cup",) and result.mode == "json_object"
    assert openai_server.formats == ["json_schema", "json_object"]
    assert "JSON schema" in openai_server.requests[1]["json"]["messages"][-1]["content"]  # schema in the prompt

    openai_server.requests.clear()
    fenced = completion('```json\n{"phrases": [{"phrase": "spoon", "box_threshold": null}], "notes": ""}\n```')
    openai_server.respond(rejecting("json_schema", "json_object", then=fenced))
    result = ask(openai_server)
    assert result.phrases == ("spoon",) and result.mode == "text"
    assert openai_server.formats == ["json_schema", "json_object", None]


def test_a_400_about_something_else_is_not_a_fallback(openai_server):
    openai_server.respond(error(400, "messages: too many images"))
    with pytest.raises(A.AssistantRequestError, match="too many images"):
        ask(openai_server)
    assert openai_server.formats == ["json_schema"]


def test_invalid_key(openai_server):
    openai_server.respond(error(401, f"Incorrect API key provided: {KEY}.", code="invalid_api_key"))
    with pytest.raises(A.AssistantAuthError) as info:
        ask(openai_server)
    message = str(info.value)
    assert "401" in message and "OPENAI_API_KEY" in message
    assert KEY not in message and "sk-test" not in message
    assert isinstance(info.value, StudioError)


def test_rate_limit_honours_retry_after(openai_server):
    openai_server.respond(
        error(429, "Rate limit reached", type="requests", code="rate_limit_exceeded", headers={"Retry-After": "7"})
    )
    with pytest.raises(A.AssistantRateLimitError) as info:
        ask(openai_server)
    assert info.value.retry_after == 7.0 and not info.value.quota
    assert "Try again in 7 seconds" in str(info.value)
    assert len(openai_server.requests) == 1  # no silent retries


def test_quota_exhausted(openai_server):
    openai_server.respond(
        error(429, "You exceeded your current quota", type="insufficient_quota", code="insufficient_quota")
    )
    with pytest.raises(A.AssistantRateLimitError, match="no quota left") as info:
        ask(openai_server)
    assert info.value.quota


def test_retry_after_forms():
    assert A.retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert A.retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert A.retry_after_seconds({"Retry-After": "soon"}) is None
    assert A.retry_after_seconds({}) is None


def test_server_error(openai_server):
    openai_server.respond(error(500, "The server had an error", type="server_error"))
    with pytest.raises(A.AssistantServerError, match=r"server error \(500\).*Try again later"):
        ask(openai_server)


def test_unknown_model_404(openai_server):
    openai_server.respond(error(404, "The model `nope` does not exist", code="model_not_found"))
    with pytest.raises(A.AssistantRequestError, match="model name"):
        ask(openai_server, model="nope")


def test_malformed_json_body(openai_server):
    openai_server.respond(completion("Sure! Here are phrases: car, person"))
    with pytest.raises(A.AssistantNotJSONError, match="did not answer with JSON"):
        ask(openai_server)


def test_truncated_answer(openai_server):
    openai_server.respond(completion('{"phrases": [{"phrase": "car"', finish_reason="length"))
    with pytest.raises(A.AssistantNotJSONError, match="ran out of room"):
        ask(openai_server)


@pytest.mark.parametrize(
    "content, detail",
    [
        ({"phrases": "car. person."}, '"phrases" must be a list'),
        ({"notes": "x"}, '"phrases" is missing'),
        ([1, 2], "expected a JSON object"),
        ({"phrases": [{"phrase": "a very long phrase with far too many words in it"}]}, "longer than 6 words"),
        ({"phrases": [{"phrase": "car", "box_threshold": 3}]}, "box_threshold"),
        ({"phrases": [{"name": "car"}]}, 'no "phrase"'),
    ],
)
def test_off_schema_json(openai_server, content, detail):
    import json

    openai_server.respond(completion(json.dumps(content)))
    with pytest.raises(A.AssistantSchemaError) as info:
        ask(openai_server)
    assert detail in str(info.value) and "wrong shape" in str(info.value)


def test_no_phrases_says_what_the_model_noted(openai_server):
    openai_server.respond(completion({"phrases": [], "notes": "There is nothing but reflections."}))
    with pytest.raises(A.AssistantSchemaError, match="suggested no phrases.*reflections"):
        ask(openai_server)


def test_refusal(openai_server):
    openai_server.respond(completion(None, refusal="I can't help with that."))
    with pytest.raises(A.AssistantRefusalError, match="refused") as info:
        ask(openai_server)
    assert info.value.refusal == "I can't help with that."


def test_timeout(openai_server):
    openai_server.respond(answer("car", delay=2.0))
    started = time.monotonic()
    with pytest.raises(A.AssistantTimeoutError, match="did not answer within 0.3 seconds"):
        ask(openai_server, timeout=0.3)
    assert time.monotonic() - started < 1.8  # no retries


def test_connection_refused():
    url = closed_port_url()
    with pytest.raises(A.AssistantConnectionError) as info:
        A.suggest_phrases(instruction="cars", model="m", api_key=KEY, base_url=url, timeout=2.0)
    assert "connection was refused" in str(info.value) and url in str(info.value)


def test_cancel_returns_at_once(openai_server):
    openai_server.respond(answer("car", delay=2.0))
    token = CancelToken()
    threading.Timer(0.2, token.cancel, args=("cancelled by the user",)).start()
    started = time.monotonic()
    with pytest.raises(Cancelled, match="by the user"):
        ask(openai_server, cancel=token)
    assert time.monotonic() - started < 1.0


def test_config_errors():
    with pytest.raises(A.AssistantConfigError, match="No OpenAI API key"):
        A.suggest_phrases(instruction="cars", model="m", api_key="", timeout=1.0)
    with pytest.raises(A.AssistantConfigError, match="instruction is empty"):
        A.suggest_phrases(instruction="  ", model="m", api_key=KEY, timeout=1.0)
    with pytest.raises(A.AssistantConfigError, match="model"):
        A.suggest_phrases(instruction="cars", model="", api_key=KEY, timeout=1.0)


def test_local_server_needs_no_key(openai_server):
    openai_server.respond(answer("car"))
    assert ask(openai_server, api_key=None).phrases == ("car",)


def test_image_is_a_downscaled_jpeg_data_url(openai_server, tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(np.full((1200, 1600, 3), 120, np.uint8)).save(path)
    jpeg = A.prepare_image_jpeg(path)
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.format == "JPEG" and max(img.size) == 768 and img.size == (768, 576)
    openai_server.respond(answer("car"))
    ask(openai_server, image_jpeg=jpeg)
    content = openai_server.requests[0]["json"]["messages"][-1]["content"]
    assert content[0]["type"] == "text" and content[1]["type"] == "image_url"
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,") and base64.b64decode(url.split(",", 1)[1]) == jpeg
    assert "127.0.0.1" in A.image_notice(openai_server.base_url)
    assert A.image_notice(None).startswith("The image is sent to OpenAI")


def test_small_image_is_not_enlarged_and_bad_image_is_an_error(tmp_path):
    jpeg = A.prepare_image_jpeg(np.zeros((50, 80, 3), np.uint8))
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.size == (80, 50)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(A.AssistantConfigError, match="cannot be read"):
        A.prepare_image_jpeg(bad)


def test_phrases_are_normalised():
    assert A.normalise_phrase(" Dented  Car-Door. ") == "dented car-door"
    assert A.normalise_phrase("cup.spoon") == "cup spoon"  # no dot survives inside a phrase
    assert A.scrub(f"key {KEY} and sk-abc123456789 and Bearer xyz", [KEY]) == "key **** and **** and ****"


def test_the_api_key_never_reaches_a_message(openai_server):
    openai_server.respond(Reply(500, f"upstream said {KEY}"))
    with pytest.raises(A.AssistantServerError) as info:
        ask(openai_server)
    assert KEY not in str(info.value)
