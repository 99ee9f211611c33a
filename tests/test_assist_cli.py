"""``langsam-studio assist`` and ``segment --instruction`` against the local OpenAI-compatible
server of tests/fixtures_openai.py (the real openai client, 127.0.0.1 only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from desktop_app.cli.main import main
from fixtures_openai import answer, closed_port_url, error
from inference.backends.base import SegmentationBackend

KEY = "sk-cli-secret-0987654321"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    """A known key, no keyring (the fail backend) and no OpenAI settings from the outside."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_prints_phrases_one_per_line(openai_server, capsys):
    openai_server.respond(
        answer(
            "dented door", {"phrase": "scratch", "label": "Scratch"}, "broken headlight", notes="Reflections left out."
        )
    )
    code = main(
        [
            "assist",
            "every damaged car part, not reflections",
            "--labels",
            "Scratch,dent",
            "--base-url",
            openai_server.base_url,
            "--model",
            "test-model",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.splitlines() == ["dented door", "scratch", "broken headlight"]
    assert "note: Reflections left out." in captured.err
    request = openai_server.requests[0]
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert request["json"]["model"] == "test-model"
    assert '"Scratch", "dent"' in request["json"]["messages"][-1]["content"]


def test_model_and_base_url_from_the_environment(openai_server, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    openai_server.respond(answer("cup"))
    assert main(["assist", "the cups"]) == 0
    assert capsys.readouterr().out == "cup\n"
    assert openai_server.requests[0]["json"]["model"] == "env-model"


def test_image_is_sent_with_a_notice(openai_server, capsys, tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((900, 1000, 3), np.uint8)).save(path)
    openai_server.respond(answer("cup"))
    assert main(["assist", "the cups", "--image", str(path), "--base-url", openai_server.base_url]) == 0
    err = capsys.readouterr().err
    assert "note: The image is sent to 127.0.0.1" in err and "768 px" in err
    content = openai_server.requests[0]["json"]["messages"][-1]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


@pytest.mark.parametrize(
    "reply, code, words",
    [
        (error(401, f"Incorrect API key provided: {KEY}"), 1, "rejected the API key"),
        (error(429, "slow down", headers={"Retry-After": "20"}), 1, "Try again in 20 seconds"),
        (error(503, "overloaded"), 1, "server error (503)"),
    ],
)
def test_failures_are_one_line(openai_server, capsys, reply, code, words):
    openai_server.respond(reply)
    assert main(["assist", "cars", "--base-url", openai_server.base_url]) == code
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert words in line and KEY not in line
    assert captured.out == ""


def test_connection_refused(capsys):
    assert main(["assist", "cars", "--base-url", closed_port_url(), "--timeout", "3"]) == 1
    assert "connection was refused" in _one_error_line(capsys.readouterr().err)


def test_no_key_for_openai(capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    assert main(["assist", "cars"]) == 1
    assert "No OpenAI API key" in _one_error_line(capsys.readouterr().err)


def test_bad_arguments_exit_2(capsys, tmp_path):
    assert main(["assist", "   "]) == 2
    assert "instruction is empty" in _one_error_line(capsys.readouterr().err)
    assert main(["assist", "cars", "--image", str(tmp_path / "missing.jpg")]) == 2
    assert "does not exist" in _one_error_line(capsys.readouterr().err)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    assert main(["assist", "cars", "--image", str(bad), "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "cannot be read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["assist", "cars", "--timeout", "-1"])
    assert info.value.code == 2


# -- segment --instruction ------------------------------------------------------------------------
class _TextBackend(SegmentationBackend):
    """Stands in for Lang-SAM (cheap): records the prompt, finds one detection per phrase."""

    name = "langsam"
    supports_text = True
    supports_points = False
    prompts: list = []

    def load(self) -> None:
        pass

    def info(self):
        from inference.results import BackendInfo

        return BackendInfo(backend="langsam", model="fake", device="cpu", device_reason="test")

    def predict(self, image, prompt, **_):
        from desktop_app.core.prediction_policy import text_phrases
        from inference.results import Candidate, Prediction, PredictionKind

        type(self).prompts.append(prompt)
        h, w = image.shape[:2]
        candidates = []
        for i, phrase in enumerate(text_phrases(prompt.text)):
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
            image_key="k",
            backend="langsam",
            model="fake",
            image_size=(h, w),
        )


def test_segment_instruction_runs_the_suggested_phrases(openai_server, capsys, tmp_path, monkeypatch):
    import inference.backends.registry as registry

    monkeypatch.setattr(registry, "create_backend", lambda name, **options: _TextBackend(**options))
    _TextBackend.prompts = []
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    openai_server.respond(answer("Car", {"phrase": "person", "box_threshold": 0.2}))
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    code = main(
        [
            "segment",
            str(tmp_path / "in"),
            "--instruction",
            "every car and person",
            "--backend",
            "langsam",
            "--format",
            "coco",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "the prompt assistant suggests: car. person." in captured.err
    (prompt,) = _TextBackend.prompts
    assert prompt.text == "car. person." and prompt.box_threshold == 0.2
    coco = json.loads((out / "annotations.json").read_text())
    assert sorted(c["name"] for c in coco["categories"]) == ["car", "person"]
    assert len(coco["annotations"]) == 2


def test_segment_instruction_failure_and_conflict(openai_server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    openai_server.respond(error(401, "bad key"))
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "a.png")
    args = ["segment", str(tmp_path / "a.png"), "--format", "png", "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*args, "--instruction", "cars"]) == 3
    assert "prompt assistant could not turn --instruction into phrases" in capsys.readouterr().err
    assert main([*args, "--instruction", "cars", "--text", "car."]) == 2
    assert "not both" in capsys.readouterr().err


def test_config_precedence(monkeypatch):
    from desktop_app.core.assistant_config import configured_base_url, resolve_config

    stored = {"openai/model": "stored-model", "openai/base_url": "http://stored:1/v1"}
    config = resolve_config(stored=stored)
    assert (config.model, config.base_url, config.api_key) == ("stored-model", "http://stored:1/v1", KEY)
    assert config.key_origin == "from environment (OPENAI_API_KEY)" and KEY not in repr(config)
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    assert resolve_config(stored=stored).model == "env-model"
    assert resolve_config(stored=stored, model="flag-model", base_url="http://flag:2/v1").base_url == "http://flag:2/v1"
    monkeypatch.delenv("OPENAI_MODEL")
    assert resolve_config(stored={}).model == "gpt-4o-mini" and configured_base_url(stored={}) is None
