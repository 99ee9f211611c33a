"""The weights store: folders, states, overrides, require() messages, verify(), default backend."""

from __future__ import annotations

import hashlib
import json

import pytest

from fixtures_weights import make_gdino_files, make_torch_like_checkpoint, write_file
from inference.errors import InferenceError, WeightsMissingError
from inference.weights import (
    UnknownModelError,
    WeightsStore,
    default_backend_name,
    default_models_dir,
    register_model,
    unregister_model,
)
from inference.weights.catalog import ModelSpec, RemoteFile, get_model

CKPT = make_torch_like_checkpoint(200_000)


@pytest.fixture
def mini_sam():
    spec = ModelSpec(
        id="t-store-sam",
        display_name="Mini SAM",
        kind="sam2",
        layout="file",
        size_bytes=len(CKPT),
        size_exact=True,
        licence="Apache-2.0",
        hub_repo="test/mini",
        files=(RemoteFile(name="t-store-sam.pt", size_bytes=len(CKPT)),),
        urls=("https://example.invalid/t-store-sam.pt",),
    )
    register_model(spec)
    yield spec
    unregister_model(spec.id)


def test_models_folder_precedence(monkeypatch, tmp_path, _isolated_home):
    monkeypatch.delenv("LANGSAM_STUDIO_MODELS", raising=False)
    assert default_models_dir() == _isolated_home / "models"
    monkeypatch.setenv("LANGSAM_STUDIO_MODELS", str(tmp_path / "env"))
    assert WeightsStore().cache_dir == tmp_path / "env"
    assert WeightsStore(cache_dir=tmp_path / "arg").cache_dir == tmp_path / "arg"
    monkeypatch.delenv("LANGSAM_STUDIO_MODELS")
    monkeypatch.delenv("LANGSAM_STUDIO_HOME")
    assert default_models_dir().parts[-2:] == ("langsam-studio", "models")


def test_catalog_has_the_documented_models():
    assert get_model("sam2.1_hiera_large").size_bytes == 898_083_611
    assert get_model("sam2.1_hiera_base_plus").hub_repo == "facebook/sam2.1-hiera-base-plus"
    assert get_model("sam2.1_hiera_tiny").urls == (
        "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt",
    )
    assert get_model("grounding-dino-base").layout == "directory"
    with pytest.raises(UnknownModelError, match="known models are sam2.1_hiera_tiny"):
        get_model("sam9")


def test_missing_model_message_says_how_to_get_it(tmp_path):
    store = WeightsStore(cache_dir=tmp_path)
    assert store.state("sam2.1_hiera_small") == "missing" and store.local_path("sam2.1_hiera_small") is None
    with pytest.raises(WeightsMissingError) as err:
        store.require("sam2.1_hiera_small")
    msg = str(err.value)
    for needed in (
        "SAM 2.1 Hiera Small",
        "huggingface.co/facebook/sam2.1-hiera-small",
        "dl.fbaipublicfiles.com",
        str(tmp_path / "sam2.1_hiera_small.pt"),
        "`langsam-studio models download sam2.1_hiera_small`",
        "--set PATH",
    ):
        assert needed in msg, needed


def test_file_states_installed_partial_missing(tmp_path, mini_sam):
    store = WeightsStore(cache_dir=tmp_path)
    write_file(store.partial_path(mini_sam.id), CKPT[:1000])
    assert store.state(mini_sam.id) == "partial"
    store.partial_path(mini_sam.id).unlink()
    write_file(store.target_path(mini_sam.id), CKPT[:-10])  # wrong size
    assert store.state(mini_sam.id) == "partial" and store.local_path(mini_sam.id) is None
    with pytest.raises(WeightsMissingError, match="incomplete or a different file"):
        store.require(mini_sam.id)
    write_file(store.target_path(mini_sam.id), CKPT)  # put by hand, exact size
    assert store.state(mini_sam.id) == "installed"
    assert store.require(mini_sam.id) == tmp_path / "t-store-sam.pt"
    result = store.verify(mini_sam.id)
    assert result.ok and any("checkpoint archive ok" in c for c in result.checks)


def test_overrides_persist_and_take_precedence(tmp_path, mini_sam):
    store = WeightsStore(cache_dir=tmp_path / "models")
    mine = write_file(tmp_path / "elsewhere" / "finetuned.pt", CKPT)
    with pytest.raises(InferenceError, match="does not exist"):
        store.set_override(mini_sam.id, tmp_path / "nope.pt")
    store.set_override(mini_sam.id, mine)
    again = WeightsStore(cache_dir=tmp_path / "models")
    assert again.state(mini_sam.id) == "override" and again.require(mini_sam.id) == mine
    assert json.loads((tmp_path / "models" / "overrides.json").read_text())[mini_sam.id] == str(mine)
    mine.unlink()  # the chosen copy disappears: say so
    with pytest.raises(WeightsMissingError, match="local copy chosen for it cannot be used"):
        again.require(mini_sam.id)
    again.clear_override(mini_sam.id)
    assert WeightsStore(cache_dir=tmp_path / "models").override(mini_sam.id) is None
    session = WeightsStore(cache_dir=tmp_path / "models", overrides={mini_sam.id: tmp_path})
    assert session.override(mini_sam.id) == tmp_path and session.state(mini_sam.id) == "missing"


def test_directory_model_states_and_verify(tmp_path):
    store = WeightsStore(cache_dir=tmp_path)
    folder = store.target_path("grounding-dino-tiny")
    files = make_gdino_files()
    for name, data in files.items():
        if name != "vocab.txt":
            write_file(folder / name, data)
    assert store.state("grounding-dino-tiny") == "partial"
    with pytest.raises(WeightsMissingError, match="tokenizer.json or vocab.txt"):
        store.require("grounding-dino-tiny")
    write_file(folder / "vocab.txt", files["vocab.txt"])
    assert store.state("grounding-dino-tiny") == "installed"
    assert store.verify("grounding-dino-tiny").ok
    weights = folder / "model.safetensors"
    weights.write_bytes(files["model.safetensors"][:-4])
    result = store.verify("grounding-dino-tiny")
    assert not result.ok and "truncated download" in result.message
    (folder / "config.json").write_text('{"model_type": "bert"}')
    assert "not 'grounding-dino'" in store.verify("grounding-dino-tiny").message


def test_verify_detects_a_changed_file_through_the_download_record(tmp_path, mini_sam):
    store = WeightsStore(cache_dir=tmp_path)
    path = write_file(store.target_path(mini_sam.id), CKPT)
    store.write_record(mini_sam.id, source="test", files={path.name: (len(CKPT), hashlib.sha256(CKPT).hexdigest())})
    assert store.verify(mini_sam.id).ok
    damaged = bytearray(CKPT)
    damaged[-100] ^= 1
    path.write_bytes(bytes(damaged))
    result = store.verify(mini_sam.id)
    assert not result.ok and "corrupt file" in result.message
    assert store.verify(mini_sam.id, hash_files=False).ok  # size and format still fine


def test_default_backend_follows_installed_weights(tmp_path):
    store = WeightsStore(cache_dir=tmp_path / "models")
    assert default_backend_name(store) == "classic"
    sam = write_file(tmp_path / "sam.pt", CKPT)
    store.set_override("sam2.1_hiera_tiny", sam)
    assert default_backend_name(store) == "sam2"
    for name, data in make_gdino_files().items():
        write_file(tmp_path / "dino" / name, data)
    store.set_override("grounding-dino-base", tmp_path / "dino")
    assert default_backend_name(store) == "langsam"


def test_set_override_checks_the_file_is_that_model(tmp_path, mini_sam):
    store = WeightsStore(cache_dir=tmp_path / "models")
    fake = write_file(tmp_path / "photo.pt", b"\x89PNG not a checkpoint")
    with pytest.raises(InferenceError, match="not a PyTorch checkpoint"):
        store.set_override(mini_sam.id, fake)
    dino = tmp_path / "dino"
    for name, data in make_gdino_files().items():
        write_file(dino / name, data)
    (dino / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(InferenceError, match="not 'grounding-dino'"):
        store.set_override("grounding-dino-tiny", dino)
    write_file(dino / "config.json", make_gdino_files()["config.json"])
    (dino / "model.safetensors").write_bytes(b"\x00" * 4)
    with pytest.raises(InferenceError, match="too short to be a safetensors file"):
        store.set_override("grounding-dino-tiny", dino)
    assert not (tmp_path / "models" / "overrides.json").exists()  # nothing registered
    session = WeightsStore(cache_dir=tmp_path / "models", overrides={mini_sam.id: fake})  # e.g. the app's settings
    assert session.state(mini_sam.id) == "missing"
    with pytest.raises(WeightsMissingError, match="not a PyTorch checkpoint"):
        session.require(mini_sam.id)
