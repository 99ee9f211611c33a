"""The local dry run in the DLC's real serving stack (TorchServe 0.12.0 + toolkit 2.0.25, Java 17).

Never run in parallel: the toolkit attaches to any TorchServe process on the machine.
The serving environment is created once per machine (fixture ``dlc_venv``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cloud.dry_run.dlc import run_dry_run
from desktop_app.cli.deploy_package_command import default_request

pytestmark = [pytest.mark.dlc, pytest.mark.slow]

SLEEPY_HANDLER = """\
import time

def model_fn(model_dir, context=None):
    print("test handler: loading for 30 s", flush=True)
    time.sleep(30)
    return "model"

def input_fn(body, content_type, context=None):
    return body

def predict_fn(data, model, context=None):
    return data

def output_fn(prediction, accept, context=None):
    return b"{}", "application/json"
"""

HUGE_RESPONSE_HANDLER = """\
def model_fn(model_dir, context=None):
    return "model"

def input_fn(body, content_type, context=None):
    return body

def predict_fn(data, model, context=None):
    return data

def output_fn(prediction, accept, context=None):
    # just over SageMaker's 6 MiB, under TorchServe's own max_response_size (6,553,500 bytes)
    return b"[" + b"0," * ((6 * 1024 * 1024 + 100_000) // 2) + b"0]", "application/json"
"""


def _handler_only_package(tmp_path: Path, handler: str) -> Path:
    root = tmp_path / "pkg"
    (root / "code").mkdir(parents=True)
    (root / "code" / "inference.py").write_text(handler)
    (root / "langsam-config.json").write_text(json.dumps({"format": 1, "backend": "classic"}))
    return root


def _codes(result) -> set[str]:
    return {d.code for d in result.diagnosis}


def test_classic_package_serves_in_the_dlc_stack(local_classic_package, dlc_venv):
    body, content_type = default_request(backend="classic")
    result = run_dry_run(
        package=local_classic_package, venv=dlc_venv, request_body=body, content_type=content_type, log=lambda _m: None
    )
    assert result.ok, result.summary() + "\n" + "\n".join(result.log_excerpts.values())
    assert result.status_code == 200 and result.diagnosis == ()
    assert 0 < result.ping_seconds <= result.startup_seconds < 120
    assert result.invoke_latency is not None and result.invoke_latency < 30
    assert result.timeouts.startup == 120 and result.timeouts.response == 120
    assert result.suggested_timeouts()["TS_DEFAULT_STARTUP_TIMEOUT"] >= 120
    assert "OK" in result.summary()


def test_sam2_package_with_random_weights(build_test_package, dlc_venv, tmp_path):
    from cloud.packaging.wheels import TargetPython
    from inference.random_weights import write_random_sam2_checkpoint

    ckpt = write_random_sam2_checkpoint(tmp_path / "tiny.pt", model_id="sam2.1_hiera_tiny")
    package = build_test_package(
        output=tmp_path / "pkg",
        backend="sam2",
        sam2_model="sam2.1_hiera_tiny",
        sam2_checkpoint=ckpt,
        target=TargetPython.local(),
    ).path
    assert (package / "weights" / "sam2.1_hiera_tiny.pt").stat().st_size == ckpt.stat().st_size
    body, content_type = default_request(backend="sam2")
    result = run_dry_run(
        package=package,
        venv=dlc_venv,
        request_body=body,
        content_type=content_type,
        env={"TS_DEFAULT_STARTUP_TIMEOUT": "300"},
        log=lambda _m: None,
    )
    assert result.ok, result.summary() + "\n" + "\n".join(result.log_excerpts.values())
    assert result.timeouts.startup == 300


def test_missing_project_code_is_an_import_error(local_classic_package, dlc_venv, tmp_path):
    package = tmp_path / "pkg"
    shutil.copytree(local_classic_package, package)
    req = package / "code" / "requirements.txt"
    req.write_text(
        "".join(ln for ln in req.read_text().splitlines(keepends=True) if not ln.startswith("langsam-studio"))
    )
    body, content_type = default_request(backend="classic")
    result = run_dry_run(
        package=package, venv=dlc_venv, request_body=body, content_type=content_type, wait_limit=90, log=lambda _m: None
    )
    assert not result.ok
    assert "IMPORT_ERROR" in _codes(result), result.summary()
    assert "inference.sagemaker_handler" in next(d.message for d in result.diagnosis if d.code == "IMPORT_ERROR")
    assert result.startup_seconds is None and result.status_code is None


def test_failing_requirement_stops_the_container(local_classic_package, dlc_venv, tmp_path):
    package = tmp_path / "pkg"
    shutil.copytree(local_classic_package, package)
    req = package / "code" / "requirements.txt"
    req.write_text(req.read_text() + "no-such-package-langsam-test==1.0\n")
    body, content_type = default_request(backend="classic")
    result = run_dry_run(
        package=package, venv=dlc_venv, request_body=body, content_type=content_type, wait_limit=90, log=lambda _m: None
    )
    assert not result.ok
    assert "REQUIREMENTS_FAILED" in _codes(result), result.summary()
    assert "no-such-package-langsam-test" in result.summary()


def test_model_load_slower_than_the_startup_timeout(dlc_venv, tmp_path):
    package = _handler_only_package(tmp_path, SLEEPY_HANDLER)
    result = run_dry_run(
        package=package,
        venv=dlc_venv,
        request_body=b"{}",
        content_type="application/json",
        env={"TS_DEFAULT_STARTUP_TIMEOUT": "3"},
        wait_limit=60,
        log=lambda _m: None,
    )
    assert not result.ok
    assert "SLOW_MODEL_LOAD" in _codes(result), result.summary()
    assert "3 s" in next(d.message for d in result.diagnosis if d.code == "SLOW_MODEL_LOAD")
    assert result.ping_seconds is not None  # /ping said 200 although the model never loaded


def test_response_over_six_mib(dlc_venv, tmp_path):
    package = _handler_only_package(tmp_path, HUGE_RESPONSE_HANDLER)
    result = run_dry_run(
        package=package,
        venv=dlc_venv,
        request_body=b"{}",
        content_type="application/json",
        env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "30"},
        wait_limit=60,
        log=lambda _m: None,
    )
    assert not result.ok
    assert result.status_code == 200 and result.response_bytes > 6 * 1024 * 1024
    assert "RESPONSE_TOO_LARGE" in _codes(result), result.summary()
    assert any("SAGEMAKER_MODEL_SERVER_TIMEOUT is silently ignored" in n for n in result.timeouts.notes)
