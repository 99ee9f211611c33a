"""inference.device: device choice with reasons, and the per-thread inference context."""

from __future__ import annotations

import threading

import pytest
import torch

from inference.device import inference_context, resolve_device
from inference.errors import BackendUnavailableError


def test_auto_on_this_machine_is_cpu_with_a_reason():
    choice = resolve_device("auto")
    assert choice.device == "cpu"
    assert choice.reason.startswith("GPU not used: ")
    assert ("no CUDA GPU or driver found" in choice.reason) or ("CPU-only" in choice.reason)
    assert resolve_device("cpu").reason == "CPU chosen in settings"


def test_explicit_gpu_here_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match=r"device 'cuda' was requested but .*choose 'cpu' or 'auto'"):
        resolve_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(BackendUnavailableError, match="MPS is not available"):
            resolve_device("mps")
    with pytest.raises(BackendUnavailableError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: f"Fake GPU {index}")


def test_cuda_selection_logic(fake_cuda):
    assert resolve_device("auto").device == "cuda"
    assert resolve_device("auto").reason == "CUDA GPU: Fake GPU 0"
    assert resolve_device("CUDA:1").reason == "CUDA GPU: Fake GPU 1"
    with pytest.raises(BackendUnavailableError, match="2 CUDA device"):
        resolve_device("cuda:2")
    for bad in ("cuda:x", "cudax", "cuda:-1"):
        with pytest.raises(BackendUnavailableError, match="unknown device"):
            resolve_device(bad)


def test_cpu_only_build_is_named(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert "CPU-only" in resolve_device("auto").reason
    with pytest.raises(BackendUnavailableError, match="CPU-only"):
        resolve_device("cuda:0")


def test_mps_branch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").device == "mps"
    assert resolve_device("mps").reason == "Apple GPU (MPS)"


def test_inference_mode_is_entered_in_the_calling_thread_only():
    inside: dict[str, bool] = {}
    entered, release = threading.Event(), threading.Event()

    def worker() -> None:
        with inference_context("cpu"):
            inside["worker"] = torch.is_inference_mode_enabled()
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    assert entered.wait(5)
    inside["main while worker inside"] = torch.is_inference_mode_enabled()
    release.set()
    thread.join()
    assert inside == {"worker": True, "main while worker inside": False}
    x = torch.ones(2, requires_grad=True)
    with inference_context("cpu"):
        assert not (x * 2).requires_grad


class _RecordingAutocast:
    entries: list[tuple[int, str, object]] = []

    def __init__(self, device_type: str, dtype=None) -> None:
        self.device_type, self.dtype = device_type, dtype

    def __enter__(self):
        _RecordingAutocast.entries.append((threading.get_ident(), self.device_type, self.dtype))
        return self

    def __exit__(self, *exc) -> None:
        return None


def test_cuda_autocast_is_entered_per_thread(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch, "autocast", _RecordingAutocast)
    _RecordingAutocast.entries = []
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        idents: list[int] = []

        def worker() -> None:
            idents.append(threading.get_ident())
            with inference_context("cuda:0"):
                pass

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(e[0] for e in _RecordingAutocast.entries) == sorted(idents)
        assert all(e[1:] == ("cuda", torch.bfloat16) for e in _RecordingAutocast.entries)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        _RecordingAutocast.entries = []
        with inference_context("cuda", cuda_bf16=False):
            pass
        with inference_context("cpu"):
            pass
        assert _RecordingAutocast.entries == []
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
