"""Downloads against a real local HTTP server: resume, integrity, atomic placement, offline."""

from __future__ import annotations

import hashlib
import socket
import time

import pytest

from fixtures_weights import make_gdino_files, make_torch_like_checkpoint
from inference.cancel import CancelToken
from inference.errors import Cancelled, InferenceError, WeightsMissingError
from inference.weights import WeightsStore, download, register_model, unregister_model
from inference.weights.catalog import ModelSpec, RemoteFile, get_model
from inference.weights.download import CHUNK

PAYLOAD = make_torch_like_checkpoint(2_500_000)
PAYLOAD_SIZE = len(PAYLOAD)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _hub_mode(monkeypatch, *, offline: bool) -> None:
    """Set Hugging Face offline mode for this test. huggingface_hub caches HF_HUB_OFFLINE in
    ``constants`` at import, and an earlier test (transformers) may have imported it under the
    suite-wide HF_HUB_OFFLINE=1, so both the variable and the cached constant are set."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


def _spec(model_id: str, *, urls=(), sha256=None, size=PAYLOAD_SIZE, repo="test/sam2-mini") -> ModelSpec:
    return ModelSpec(
        id=model_id,
        display_name="Test SAM",
        kind="sam2",
        layout="file",
        size_bytes=size,
        size_exact=True,
        licence="Apache-2.0",
        hub_repo=repo,
        files=(RemoteFile(name=f"{model_id}.pt", size_bytes=size, sha256=sha256),),
        urls=urls,
    )


@pytest.fixture
def register():
    added = []

    def _register(spec: ModelSpec) -> ModelSpec:
        register_model(spec)
        added.append(spec.id)
        return spec

    yield _register
    for model_id in added:
        unregister_model(model_id)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_url_download_places_file_atomically_with_progress(file_server, register, tmp_path):
    file_server.files["/w.pt"] = PAYLOAD
    spec = register(_spec("t-url", urls=(file_server.url("/w.pt"),), sha256=SHA))
    store = WeightsStore(cache_dir=tmp_path / "models")
    seen: list[tuple[int, int | None]] = []

    path = download(spec.id, store=store, progress=lambda d, t: seen.append((d, t)))

    assert path == tmp_path / "models" / "t-url.pt"
    assert path.read_bytes() == PAYLOAD
    assert not store.partial_path(spec.id).exists()
    assert store.state(spec.id) == "installed"
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert store.read_record(spec.id)["files"][path.name]["sha256"] == SHA
    assert store.verify(spec.id).ok
    # already installed: no new request
    n = len(file_server.requests)
    assert download(spec.id, store=store) == path
    assert len(file_server.requests) == n


def test_dropped_connection_is_resumed_with_range(file_server, register, tmp_path):
    file_server.files["/w.pt"] = PAYLOAD
    file_server.cut_after, file_server.cut_times = 700_000, 1
    spec = register(_spec("t-cut", urls=(file_server.url("/w.pt"),), sha256=SHA))
    store = WeightsStore(cache_dir=tmp_path)

    path = download(spec.id, store=store)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA
    gets = [r for r in file_server.requests if r[0] == "GET"]
    assert gets[0][2] is None and gets[1][2] == "bytes=700000-"


def test_cancel_keeps_part_and_next_run_resumes(file_server, register, tmp_path):
    file_server.files["/w.pt"] = PAYLOAD
    spec = register(_spec("t-cancel", urls=(file_server.url("/w.pt"),), sha256=SHA))
    store = WeightsStore(cache_dir=tmp_path)
    token = CancelToken()

    def cancel_after_first_chunk(done: int, total: int | None) -> None:
        if done > 0:
            token.cancel("user pressed Cancel")

    with pytest.raises(Cancelled) as err:
        download(spec.id, store=store, progress=cancel_after_first_chunk, cancel=token)
    assert "run it again to resume" in str(err.value)
    part = store.partial_path(spec.id)
    assert 0 < part.stat().st_size < len(PAYLOAD)
    assert store.state(spec.id) == "partial"
    assert not store.target_path(spec.id).exists()
    kept = part.stat().st_size

    path = download(spec.id, store=store)

    assert path.read_bytes() == PAYLOAD
    assert file_server.requests[-1] == ("GET", "/w.pt", f"bytes={kept}-")
    assert kept <= CHUNK


def test_corrupt_download_is_rejected_and_deleted(file_server, register, tmp_path):
    bad = bytearray(PAYLOAD)
    bad[1000] ^= 0xFF
    file_server.files["/w.pt"] = bytes(bad)
    spec = register(_spec("t-bad", urls=(file_server.url("/w.pt"),), sha256=SHA))
    store = WeightsStore(cache_dir=tmp_path)

    with pytest.raises(WeightsMissingError) as err:
        download(spec.id, store=store)

    msg = str(err.value)
    assert "corrupt download" in msg and "sha256" in msg and file_server.url("/w.pt") in msg
    assert str(store.target_path(spec.id)) in msg
    assert not store.partial_path(spec.id).exists() and not store.target_path(spec.id).exists()


def test_corrupt_part_from_an_earlier_run_is_discarded_then_refetched(file_server, register, tmp_path):
    file_server.files["/w.pt"] = PAYLOAD
    spec = register(_spec("t-badpart", urls=(file_server.url("/w.pt"),), sha256=SHA))
    store = WeightsStore(cache_dir=tmp_path)
    store.partial_path(spec.id).write_bytes(b"\0" * 500_000)  # garbage, not the file's first bytes

    with pytest.raises(WeightsMissingError, match="corrupt download"):
        download(spec.id, store=store)
    assert not store.partial_path(spec.id).exists()
    assert download(spec.id, store=store).read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(file_server, register, tmp_path):
    file_server.files["/w.pt"] = PAYLOAD
    file_server.ignore_range = True
    spec = register(_spec("t-norange", urls=(file_server.url("/w.pt"),), sha256=SHA))
    store = WeightsStore(cache_dir=tmp_path)
    store.partial_path(spec.id).write_bytes(PAYLOAD[:300_000])

    assert download(spec.id, store=store).read_bytes() == PAYLOAD


def test_wrong_size_file_is_rejected(file_server, register, tmp_path):
    file_server.files["/w.pt"] = PAYLOAD + b"extra"
    spec = register(_spec("t-size", urls=(file_server.url("/w.pt"),)))
    store = WeightsStore(cache_dir=tmp_path)
    with pytest.raises(WeightsMissingError, match="expected 2,"):
        download(spec.id, store=store)
    assert store.state(spec.id) == "missing"


def test_offline_real_model_message_names_everything(tmp_path, monkeypatch):
    _hub_mode(monkeypatch, offline=True)
    store = WeightsStore(cache_dir=tmp_path)
    dead = _closed_port_url() + "/sam2.1_hiera_small.pt"
    start = time.monotonic()
    with pytest.raises(WeightsMissingError) as err:
        download("sam2.1_hiera_small", store=store, urls=(dead,))
    assert time.monotonic() - start < 5
    msg = str(err.value)
    for needed in (
        "sam2.1_hiera_small",
        "offline mode",
        dead,
        "refused",
        str(tmp_path / "sam2.1_hiera_small.pt"),
        "langsam-studio models download sam2.1_hiera_small",
        "https://huggingface.co/facebook/sam2.1-hiera-small",
    ):
        assert needed in msg, needed
    assert "Traceback" not in msg


def test_unreachable_hub_fails_fast_and_falls_back_to_url(file_server, register, tmp_path, monkeypatch):
    _hub_mode(monkeypatch, offline=False)
    file_server.files["/w.pt"] = PAYLOAD
    spec = register(_spec("t-fallback", urls=(file_server.url("/w.pt"),), sha256=SHA))
    store = WeightsStore(cache_dir=tmp_path)
    start = time.monotonic()
    path = download(spec.id, store=store, hub_endpoint=_closed_port_url(), timeout=3)
    assert time.monotonic() - start < 5
    assert path.read_bytes() == PAYLOAD
    assert store.read_record(spec.id)["source"] == file_server.url("/w.pt")


def test_download_through_a_hub_endpoint_checks_the_lfs_sha(file_server, register, tmp_path, monkeypatch):
    _hub_mode(monkeypatch, offline=False)
    spec = register(_spec("t-hub", repo="test/sam2-mini"))  # no sha256 in the catalog: the Hub's ETag
    hub_path = "/test/sam2-mini/resolve/main/t-hub.pt"
    file_server.files[hub_path] = PAYLOAD
    file_server.lfs.add(hub_path)
    store = WeightsStore(cache_dir=tmp_path)

    path = download(spec.id, store=store, hub_endpoint=file_server.base)

    assert path.read_bytes() == PAYLOAD
    assert ("HEAD", hub_path, None) in file_server.requests
    assert store.read_record(spec.id)["source"] == file_server.url(hub_path)


def _gdino_spec(model_id: str) -> ModelSpec:
    base = get_model("grounding-dino-tiny")
    return ModelSpec(
        id=model_id,
        display_name="Test DINO",
        kind="gdino",
        layout="directory",
        size_bytes=600_000,
        size_exact=False,
        licence="Apache-2.0",
        hub_repo="test/gdino",
        files=base.files,
    )


def _serve_gdino(file_server, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = f"/test/gdino/resolve/main/{name}"
        file_server.files[path] = data
        if name.endswith(".safetensors"):
            file_server.lfs.add(path)


def test_directory_model_from_hub_is_placed_whole(file_server, register, tmp_path, monkeypatch):
    _hub_mode(monkeypatch, offline=False)
    spec = register(_gdino_spec("t-gdino"))
    files = make_gdino_files()
    _serve_gdino(file_server, files)
    store = WeightsStore(cache_dir=tmp_path)
    seen = []

    path = download(spec.id, store=store, hub_endpoint=file_server.base, progress=lambda d, t: seen.append((d, t)))

    assert path == tmp_path / "t-gdino"
    assert sorted(p.name for p in path.iterdir()) == sorted(files)
    assert all((path / n).read_bytes() == d for n, d in files.items())
    assert seen[-1] == (sum(map(len, files.values())),) * 2
    assert store.state(spec.id) == "installed"
    result = store.verify(spec.id)
    assert result.ok, result.problems
    assert any("safetensors header ok" in c for c in result.checks)
    assert not store.partial_path(spec.id).exists()


def test_directory_model_with_truncated_weights_is_not_installed(file_server, register, tmp_path, monkeypatch):
    _hub_mode(monkeypatch, offline=False)
    spec = register(_gdino_spec("t-gdino-bad"))
    files = make_gdino_files()
    files["model.safetensors"] = files["model.safetensors"][:-1000]  # consistent ETag, broken content
    _serve_gdino(file_server, files)
    store = WeightsStore(cache_dir=tmp_path)

    with pytest.raises(WeightsMissingError) as err:
        download(spec.id, store=store, hub_endpoint=file_server.base)

    assert "truncated" in str(err.value) and str(tmp_path / "t-gdino-bad") in str(err.value)
    assert not store.target_path(spec.id).exists()
    assert store.state(spec.id) == "partial"  # the staging folder stays for the next attempt


def test_directory_model_offline(tmp_path, monkeypatch):
    _hub_mode(monkeypatch, offline=True)
    with pytest.raises(WeightsMissingError) as err:
        download("grounding-dino-tiny", store=WeightsStore(cache_dir=tmp_path))
    msg = str(err.value)
    assert "offline mode" in msg and "IDEA-Research/grounding-dino-tiny" in msg
    assert str(tmp_path / "grounding-dino-tiny") in msg and "config.json" in msg


def test_second_concurrent_download_is_refused(file_server, register, tmp_path):
    from filelock import FileLock

    file_server.files["/w.pt"] = PAYLOAD
    spec = register(_spec("t-lock", urls=(file_server.url("/w.pt"),)))
    store = WeightsStore(cache_dir=tmp_path)
    (tmp_path / ".locks").mkdir()
    with (
        FileLock(str(tmp_path / ".locks" / "t-lock.lock")),
        pytest.raises(InferenceError, match="already being downloaded"),
    ):
        download(spec.id, store=store)
