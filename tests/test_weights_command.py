"""``langsam-studio models ...`` through desktop_app.cli.main.main."""

from __future__ import annotations

import hashlib

import pytest

from desktop_app.cli.main import main
from fixtures_weights import make_torch_like_checkpoint, write_file
from inference.weights import WeightsStore, register_model, unregister_model
from inference.weights.catalog import ModelSpec, RemoteFile

PAYLOAD = make_torch_like_checkpoint(1_500_000, seed=3)


@pytest.fixture
def served_model(file_server):
    file_server.files["/cmd.pt"] = PAYLOAD
    spec = ModelSpec(
        id="t-cmd",
        display_name="Cmd SAM",
        kind="sam2",
        layout="file",
        size_bytes=len(PAYLOAD),
        size_exact=True,
        licence="Apache-2.0",
        hub_repo="test/cmd",
        files=(RemoteFile(name="t-cmd.pt", size_bytes=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest()),),
        urls=(file_server.url("/cmd.pt"),),
    )
    register_model(spec)
    yield spec
    unregister_model(spec.id)


def test_list_shows_models_and_states(capsys, _isolated_home):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert str(_isolated_home / "models") in out
    assert "sam2.1_hiera_base_plus" in out and "grounding-dino-base" in out and "missing" in out
    assert "default backend with these models: classic" in out


def test_download_verify_and_path(capsys, served_model, _isolated_home):
    assert main(["models", "download", "t-cmd"]) == 0
    captured = capsys.readouterr()
    target = _isolated_home / "models" / "t-cmd.pt"
    assert f"installed at {target}" in captured.out
    assert "t-cmd" in captured.err  # the tqdm bar
    assert target.read_bytes() == PAYLOAD
    assert main(["models", "download", "t-cmd"]) == 0
    assert "already installed" in capsys.readouterr().out
    assert main(["models", "verify"]) == 0
    assert "t-cmd: OK" in capsys.readouterr().out
    assert main(["models", "path", "t-cmd"]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    target.write_bytes(PAYLOAD[:-1] + b"x")
    assert main(["models", "verify", "t-cmd"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_download_failure_exit_code_and_message(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["models", "--dir", str(tmp_path), "download", "--quiet", "grounding-dino-tiny"])
    assert code == 1
    err = capsys.readouterr().err
    assert "download failed" in err and str(tmp_path / "grounding-dino-tiny") in err
    assert "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    assert main(["models", "download", "no-such-model"]) == 2
    assert "unknown model no-such-model" in capsys.readouterr().err
    assert main(["models", "verify", "nope"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["models", "download"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["models"])
    assert exc.value.code == 2


def test_path_set_and_clear(capsys, tmp_path, _isolated_home):
    assert main(["models", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(_isolated_home / "models")
    assert main(["models", "path", "sam2.1_hiera_tiny"]) == 1
    assert str(_isolated_home / "models" / "sam2.1_hiera_tiny.pt") in capsys.readouterr().out
    mine = write_file(tmp_path / "mine.pt", PAYLOAD)
    assert main(["models", "path", "sam2.1_hiera_tiny", "--set", str(mine)]) == 0
    assert WeightsStore().require("sam2.1_hiera_tiny") == mine
    assert main(["models", "path", "sam2.1_hiera_tiny", "--set", str(tmp_path / "missing.pt")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["models", "path", "sam2.1_hiera_tiny", "--clear"]) == 0
    assert WeightsStore().local_path("sam2.1_hiera_tiny") is None
