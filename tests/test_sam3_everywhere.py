"""SAM 3 everywhere the other backends go: the wire protocol (exemplars, 288-side logits, messages),
the server core and HTTP server, the SageMaker handler and the Ray deployment, the backend choices,
``segment``/``serve``/``models`` and ``deploy package`` — with the tiny random checkpoint of
``fixtures_sam3`` (meaningless masks; the plumbing is what is checked)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fixtures_server import encode_image, post_request, run_server, scene_image

pytestmark = pytest.mark.slow


# -- the codec ---------------------------------------------------------------------------------
def test_exemplars_and_large_logits_round_trip_and_fields_are_named():
    from inference.prompts import Box, Exemplar, Prompt
    from inference.protocol import ProtocolError, SegmentRequest, decode_request, encode_request

    logits = np.linspace(-5, 5, 288 * 288, dtype=np.float32).reshape(288, 288)
    prompt = Prompt(
        text="bolt",
        exemplars=(
            Exemplar(box=Box(x0=1, y0=2, x1=30, y1=40)),
            Exemplar(box=Box(x0=50, y0=5, x1=90, y1=60), positive=False),
        ),
    )
    body, ctype, _ = encode_request(SegmentRequest(prompt=prompt, image_id="my-image"))
    obj = json.loads(body)
    assert obj["prompt"]["exemplars"] == [
        {"box": [1, 2, 30, 40], "positive": True},
        {"box": [50, 5, 90, 60], "positive": False},
    ]
    back = decode_request(body, content_type=ctype)
    assert back.prompt.exemplars == prompt.exemplars and back.prompt.text == "bolt"
    click = Prompt(points=(), box=Box(x0=1, y0=1, x1=9, y1=9), mask_input=logits)
    body, ctype, _ = encode_request(SegmentRequest(prompt=click, image_id="my-image"))
    assert json.loads(body)["prompt"]["mask_input"]["shape"] == [288, 288]
    np.testing.assert_allclose(decode_request(body, content_type=ctype).prompt.mask_input, logits, atol=0.01)
    # an exemplar-only prompt is a prompt; positive defaults to true
    only = {"image_id": "x", "prompt": {"exemplars": [{"box": [0, 0, 5, 5]}]}}
    assert decode_request(json.dumps(only), content_type="application/json").prompt.exemplars[0].positive

    def field(prompt_obj):
        with pytest.raises(ProtocolError) as err:
            decode_request(json.dumps({"image_id": "x", "prompt": prompt_obj}), content_type="application/json")
        return err.value.field

    assert field({"exemplars": {"box": [0, 0, 5, 5]}}) == "prompt.exemplars"
    assert field({"exemplars": [{"box": [0, 0, 5, 5]}, {"box": [0, 0, 5]}]}) == "prompt.exemplars[1].box"
    with pytest.raises(ProtocolError) as err:  # a literal beyond a float: refused by the box's own check
        decode_request(
            '{"image_id": "x", "prompt": {"exemplars": [{"box": [0, 0, 5, 1e400]}]}}', content_type="application/json"
        )
    assert err.value.field == "prompt.exemplars[0].box"
    assert field({"exemplars": [{"box": [0, 0, 5, 5], "positive": 1}]}) == "prompt.exemplars[0].positive"
    assert field({"exemplars": [{"box": [0, 0, 5, 5], "label": 1}]}) == "prompt.exemplars[0].label"
    assert field({"exemplars": [{"positive": True}]}) == "prompt.exemplars[0].box"
    assert field({"exemplars": [{"box": [0, 0, 5, 5]}] * 65}) == "prompt.exemplars"
    bad_shape = {"dtype": "float16", "shape": [288, 256], "data": "AAAA"}
    assert field({"box": [0, 0, 5, 5], "mask_input": bad_shape}) == "prompt.mask_input.shape"


def test_messages_travel_in_the_response():
    from inference.protocol import decode_response, encode_response
    from inference.results import Prediction, PredictionKind

    prediction = Prediction(
        candidates=(),
        kind=PredictionKind.INSTANCES,
        image_key="k",
        backend="sam3",
        model="sam3",
        image_size=(4, 4),
        messages=("the phrase 'x' was cut",),
    )
    body = encode_response(prediction, image_id="k")
    assert json.loads(body)["messages"] == ["the phrase 'x' was cut"]
    assert decode_response(body).prediction.messages == ("the phrase 'x' was cut",)
    silent = encode_response(
        Prediction(
            candidates=(), kind=PredictionKind.INSTANCES, image_key="k", backend="sam2", model="m", image_size=(4, 4)
        ),
        image_id="k",
    )
    assert "messages" not in json.loads(silent)  # unchanged for every other backend


# -- the server core ---------------------------------------------------------------------------
def test_runner_refuses_exemplars_on_other_backends_naming_the_field():
    from inference.backends import create_backend
    from inference.prompts import Box, Exemplar, Prompt
    from inference.protocol import ProtocolError, SegmentRequest
    from inference.server.runner import SegmentationRunner

    runner = SegmentationRunner(create_backend("classic", device="cpu"))
    request = SegmentRequest(
        prompt=Prompt(exemplars=(Exemplar(box=Box(x0=5, y0=5, x1=40, y1=40)),)), image=encode_image(scene_image(0))
    )
    with pytest.raises(ProtocolError) as err:
        runner.run(request)
    assert err.value.field == "prompt.exemplars" and "sam3" in str(err.value)
    logits = np.zeros((288, 288), np.float32)  # SAM 3's size on a SAM 2-sized backend
    request = SegmentRequest(
        prompt=Prompt(box=Box(x0=5, y0=5, x1=40, y1=40), mask_input=logits), image=encode_image(scene_image(0))
    )
    from inference.server.errors import error_info

    with pytest.raises(Exception) as err:
        runner.run(request)
    assert error_info(err.value).field == "prompt.mask_input" and error_info(err.value).status == 400


def _sam3_factory(folder):
    def factory():
        from inference.backends import create_backend

        return create_backend("sam3", device="cpu", checkpoint=folder)

    return factory


@pytest.fixture(scope="module")
def sam3_server(tiny_sam3_dir):
    with run_server(backend_factory=_sam3_factory(tiny_sam3_dir)) as handle:
        assert handle.worker.state.value == "ready", handle.worker.reason
        yield handle


def test_http_server_text_exemplars_clicks_and_refinement(sam3_server):
    import httpx

    from inference.prompts import Box, Exemplar, Point, Prompt
    from inference.protocol import SegmentRequest, decode_error, decode_response

    image = encode_image(scene_image(3))
    with httpx.Client(base_url=sam3_server.url, timeout=120) as c:
        info = c.get("/info").json()
        assert info["backend"] == "sam3" and info["supports_exemplars"] is True and info["supports_text"]
        side = info["mask_input_size"]
        assert side == 64  # the tiny checkpoint: 4 x its 16 x 16 grid (288 for the published model)
        # text: instances labelled with their phrase
        r = post_request(
            c, SegmentRequest(prompt=Prompt(text="disc. box.", box_threshold=0.0, max_detections=3), image=image)
        )
        assert r.status_code == 200, r.text
        answer = decode_response(r.content)
        image_id = answer.image_id
        assert answer.prediction.kind.value == "instances" and len(answer.prediction.candidates) == 3
        assert {c_.label for c_ in answer.prediction.candidates} <= {"disc", "box"}
        assert answer.prediction.candidates[0].mask.shape == (240, 320)
        # exemplars (positive + negative), by image id: no resend, no re-encode
        ex = (
            Exemplar(box=Box(x0=40, y0=70, x1=150, y1=170)),
            Exemplar(box=Box(x0=190, y0=40, x1=280, y1=120), positive=False),
        )
        r = post_request(
            c, SegmentRequest(prompt=Prompt(exemplars=ex, box_threshold=0.0, max_detections=2), image_id=image_id)
        )
        assert r.status_code == 200, r.text
        assert r.headers["X-LangSAM-Embedding-Cache"] == "hit"
        assert len(decode_response(r.content).prediction.candidates) == 2
        # a click with logits back, then a refinement click sending them
        r = post_request(
            c, SegmentRequest(prompt=Prompt(points=(Point(x=100, y=120),)), image_id=image_id, return_logits=True)
        )
        assert r.status_code == 200, r.text
        first = decode_response(r.content).prediction
        assert first.kind.value == "alternatives" and first.candidates[0].low_res_logits.shape == (side, side)
        refine = Prompt(
            points=(Point(x=100, y=120), Point(x=200, y=60, positive=False)),
            multimask=False,
            mask_input=first.candidates[0].low_res_logits,
        )
        r = post_request(c, SegmentRequest(prompt=refine, image_id=image_id, return_logits=True))
        assert r.status_code == 200, r.text
        assert decode_response(r.content).prediction.candidates[0].mask.shape == (240, 320)
        # wrong-size logits and a mixed prompt are 400s naming the field
        wrong = Prompt(points=(Point(x=100, y=120),), mask_input=np.zeros((256, 256), np.float32))
        r = post_request(c, SegmentRequest(prompt=wrong, image_id=image_id))
        assert r.status_code == 400 and decode_error(r.content).field == "prompt.mask_input"
        mixed = Prompt(points=(Point(x=100, y=120),), exemplars=ex)
        r = post_request(c, SegmentRequest(prompt=mixed, image_id=image_id))
        assert r.status_code == 400 and decode_error(r.content).field == "prompt.points"
        empty = {"image_id": image_id, "prompt": {"exemplars": [{"box": [50, 50, 10, 90]}]}}
        r = c.post("/invocations", content=json.dumps(empty), headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and decode_error(r.content).field == "prompt.exemplars[0].box"


def test_long_phrase_message_reaches_the_client(sam3_server):
    import httpx

    from inference.prompts import Prompt
    from inference.protocol import SegmentRequest, decode_response

    long = " ".join(["very"] * 40) + " long thing"
    with httpx.Client(base_url=sam3_server.url, timeout=120) as c:
        r = post_request(c, SegmentRequest(prompt=Prompt(text=long), image=encode_image(scene_image(4))))
    assert r.status_code == 200, r.text
    messages = decode_response(r.content).prediction.messages
    assert messages and "32 text tokens" in messages[0]


def _sam3_model_dir(tmp_path, tiny_sam3_dir):
    from inference.sagemaker_handler import write_model_dir_config

    root = tmp_path / "model"
    shutil.copytree(tiny_sam3_dir, root / "weights" / "sam3")
    write_model_dir_config(root, backend="sam3", model="sam3", checkpoint="weights/sam3", device="cpu")
    return root


def test_sagemaker_handler_and_ray_deployment_take_the_same_path(tmp_path, tiny_sam3_dir):
    from inference.prompts import Box, Exemplar, Prompt
    from inference.protocol import SegmentRequest, decode_error, decode_response, encode_request
    from inference.ray_serve import LangSAMDeployment
    from inference.sagemaker_handler import handler_status, input_fn, model_fn, output_fn, predict_fn

    root = _sam3_model_dir(tmp_path, tiny_sam3_dir)
    runner = model_fn(str(root))
    assert runner.info().backend == "sam3" and runner.backend.checkpoint.endswith("weights/sam3")
    ex = (Exemplar(box=Box(x0=40, y0=70, x1=150, y1=170)),)
    body, ctype, _ = encode_request(
        SegmentRequest(
            prompt=Prompt(exemplars=ex, box_threshold=0.0, max_detections=2), image=encode_image(scene_image(5))
        )
    )
    result = predict_fn(input_fn(body, ctype), runner)
    assert handler_status(result) == 200
    out, _ = output_fn(result, "application/json")
    assert decode_response(out).prediction.backend == "sam3"

    deployment = LangSAMDeployment(str(root), device="cpu")  # warm-up: a box prompt through the tracker
    status, answer, _headers = deployment.invoke(body, {"Content-Type": ctype})
    assert status == 200 and len(decode_response(answer).prediction.candidates) == 2
    bad = json.dumps({"image_id": "nope-1", "prompt": {"exemplars": [{"box": [1, 2, 3]}]}}).encode()
    status, answer, _headers = deployment.invoke(bad, {"Content-Type": "application/json"})
    assert status == 400 and decode_error(answer).field == "prompt.exemplars[0].box"


# -- backend choices and the CLI ------------------------------------------------------------------
def test_sam3_choice_and_auto_never_picks_it(tmp_path, tiny_sam3_dir):
    from desktop_app.core.backend_choices import (
        AUTO,
        CHOICES,
        BackendKind,
        Capability,
        backend_request,
        local_backend_names,
        resolve_backend_name,
    )
    from inference.weights import WeightsStore

    choice = CHOICES["sam3"]
    assert choice.kind is BackendKind.LOCAL and choice.uses_device and choice.weights == ("sam3",)
    assert choice.can(Capability.TEXT | Capability.POINTS | Capability.BOXES | Capability.EXEMPLARS)
    assert "sam3" in local_backend_names()
    store = WeightsStore(cache_dir=tmp_path / "models")
    store.set_override("sam3", tiny_sam3_dir)  # only SAM 3 installed: still never automatic
    assert resolve_backend_name(AUTO, store=store) == "classic"
    assert resolve_backend_name(AUTO, store=store, needs=Capability.TEXT) == "langsam"
    with pytest.raises(ValueError):
        resolve_backend_name(AUTO, store=store, needs=Capability.EXEMPLARS)
    WeightsStore().set_override("sam3", tiny_sam3_dir)
    request = backend_request(backend="sam3", device="cpu")
    assert request.options["model"] == "sam3" and request.options["checkpoint"] == str(tiny_sam3_dir)


def test_models_path_registers_a_local_copy(tmp_path, capsys, tiny_sam3_dir):
    from desktop_app.cli.main import main

    assert main(["models", "--dir", str(tmp_path / "m"), "path", "sam3", "--set", str(tiny_sam3_dir)]) == 0
    assert str(tiny_sam3_dir) in capsys.readouterr().out
    assert main(["models", "--dir", str(tmp_path / "m"), "path", "sam3"]) == 0
    assert capsys.readouterr().out.strip() == str(tiny_sam3_dir)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "sam2"}')
    assert main(["models", "--dir", str(tmp_path / "m"), "path", "sam3", "--set", str(broken)]) == 1
    assert "sam3_video" in capsys.readouterr().err


def test_segment_with_text_and_exemplars(tmp_path, capsys, tiny_sam3_dir):
    from PIL import Image

    from desktop_app.cli.main import main
    from inference.weights import WeightsStore

    WeightsStore().set_override("sam3", tiny_sam3_dir)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(scene_image(6)).save(photos / "a.png")
    out = tmp_path / "out"
    base = ["segment", str(photos), "--format", "coco", "--out", str(out), "--no-progress", "--device", "cpu"]
    code = main(
        [
            *base,
            "--backend",
            "sam3",
            "--text",
            "disc",
            "--exemplar",
            "40,70,150,170",
            "--exemplar",
            "190,40,280,120,0",
            "--box-threshold",
            "0",
            "--max-detections",
            "2",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "found 2 objects" in captured.out
    coco = json.loads(next(out.glob("*.json")).read_text())
    assert [c["name"] for c in coco["categories"]] == ["disc"] and len(coco["annotations"]) == 2
    # exemplars need SAM 3, named; and are one kind of prompt
    assert main([*base, "--exemplar", "40,70,150,170"]) == 2
    assert "--backend sam3" in capsys.readouterr().err
    assert main([*base, "--backend", "classic", "--exemplar", "40,70,150,170"]) == 2
    assert "--backend sam3" in capsys.readouterr().err
    assert main([*base, "--backend", "sam3", "--exemplar", "40,70,150,170", "--point", "5,5"]) == 2
    with pytest.raises(SystemExit):
        main([*base, "--backend", "sam3", "--exemplar", "40,70,150"])


def test_serve_offers_sam3():
    import argparse

    from desktop_app.cli import serve_command

    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    assert parser.parse_args(["--backend", "sam3"]).backend == "sam3"


# -- models download: licence first, token from the secret store, 401/403 in one sentence -----------
@pytest.fixture
def gated_hub(file_server, monkeypatch, tmp_path, tiny_sam3_dir):
    """facebook/sam3 served by the test file server; the CLI's download goes there."""
    import functools

    from huggingface_hub import constants

    from inference import weights

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for f in tiny_sam3_dir.iterdir():
        if f.is_file():
            file_server.files[f"/facebook/sam3/resolve/main/{f.name}"] = f.read_bytes()
    monkeypatch.setattr(
        weights, "download", functools.partial(weights.download, hub_endpoint=file_server.base, timeout=5)
    )
    return file_server


def _download(tmp_path, *extra):
    from desktop_app.cli.main import main

    return main(["models", "--dir", str(tmp_path / "m"), "download", "sam3", "--quiet", *extra])


def test_download_asks_for_the_licence_before_anything(gated_hub, tmp_path, capsys, monkeypatch):
    assert _download(tmp_path) == 2  # stdin is not a terminal here: --accept-licence is required
    captured = capsys.readouterr()
    assert "SAM License" in captured.out and "https://huggingface.co/facebook/sam3" in captured.out
    assert "--accept-licence" in captured.err and gated_hub.requests == []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _q: "n")
    assert _download(tmp_path) == 1 and gated_hub.requests == []
    assert "not accepted" in capsys.readouterr().err


@pytest.mark.parametrize("status", [401, 403])
def test_hub_refusal_is_one_sentence(gated_hub, tmp_path, capsys, monkeypatch, status):
    from desktop_app.core import secrets

    gated_hub.deny = {"/facebook/sam3/resolve/main/config.json": status}

    class Store:
        def get(self, key):
            assert key == "huggingface/token"
            return secrets.Secret(key, "hf_secret_from_settings", secrets.SecretOrigin.SESSION)

    monkeypatch.setattr(secrets, "default_store", lambda: Store())
    assert _download(tmp_path, "--accept-licence") == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"HTTP {status}" in err
    assert "accept the SAM License at https://huggingface.co/facebook/sam3" in err and "token" in err
    assert "hf_secret_from_settings" not in err
    assert gated_hub.authorization[-1] == "Bearer hf_secret_from_settings"


def test_download_with_a_token_installs_it(gated_hub, tmp_path, capsys, monkeypatch):
    from desktop_app.core import secrets

    monkeypatch.setattr(secrets, "default_store", lambda: secrets.SecretStore(environ={"HF_TOKEN": "hf_env"}))
    assert _download(tmp_path, "--accept-licence") == 0, capsys.readouterr().err
    assert (tmp_path / "m" / "sam3" / "model.safetensors").is_file()
    assert "Bearer hf_env" in gated_hub.authorization


# -- packaging ------------------------------------------------------------------------------------
def test_ray_package_bundles_the_sam3_folder_and_sizes_it(tmp_path, tiny_sam3_dir, package_cache_dir):
    from cloud.deploy.sizing import package_sizing
    from cloud.packaging.errors import PackageIndexUnreachable
    from cloud.packaging.ray import build_ray_package, ray_serving_requirements, requirement_names, verify_ray_dir
    from cloud.packaging.ray_stack import split_requirements

    assert "transformers>=5.0" in ray_serving_requirements("sam3")
    assert "transformers>=5.0" in split_requirements(ray_serving_requirements("sam3")).from_image
    folder = tmp_path / "sam3-copy"
    shutil.copytree(tiny_sam3_dir, folder)
    (folder / "sam3.pt").write_bytes(b"x" * 1000)  # the official package's copy: never bundled
    try:
        result = build_ray_package(
            output=tmp_path / "pkg", backend="sam3", sam3_dir=folder, cache_dir=package_cache_dir, log=lambda _m: None
        )
    except PackageIndexUnreachable as exc:
        from fixtures_package import _skip_or_fail

        _skip_or_fail(str(exc))
    root = result.path
    assert (root / "weights" / "sam3" / "model.safetensors").is_file() and not (root / "weights/sam3/sam3.pt").exists()
    config = json.loads((root / "langsam-config.json").read_text())
    assert config["backend"] == "sam3" and config["checkpoint"] == "weights/sam3"
    names = requirement_names((root / "code" / "requirements.txt").read_text())
    assert "transformers" not in names and "torch" not in names  # the image's 5.8 is used
    manifest = json.loads((root / "langsam-manifest.json").read_text())
    assert manifest["sizing"]["instance_type"] == "ml.g5.xlarge"
    assert verify_ray_dir(root).ok
    # the published model: ~3.45 GB -> a GPU instance and timeouts sized from it
    big = package_sizing("sam3", weights_bytes=3_450_000_000)
    assert big.instance_type.startswith("ml.g") and big.load_seconds >= 180
    assert big.timeouts.download >= 600 and big.timeouts.health_check >= 2 * big.load_seconds
    assert not big.timeouts.measured and "3.45 GB" in big.summary()


def test_dlc_package_bundles_the_sam3_folder(tmp_path, tiny_sam3_dir, build_test_package):
    from cloud.packaging.wheels import TargetPython

    result = build_test_package(
        output=tmp_path / "dlc", backend="sam3", sam3_dir=tiny_sam3_dir, target=TargetPython.local()
    )
    root = result.path
    assert (root / "weights" / "sam3" / "config.json").is_file() and (root / "code" / "inference.py").is_file()
    assert any(r.startswith("transformers==") for r in result.requirements)
    assert result.verification.ok
