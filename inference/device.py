"""Device choice (auto: cuda > mps > cpu) and the per-thread inference context.

torch is imported lazily so that the GUI starts without paying for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

from inference.errors import BackendUnavailableError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


@dataclass(frozen=True, kw_only=True)
class DeviceChoice:
    device: str  # "cuda", "cuda:1", "mps" or "cpu"
    reason: str  # why this device; says why the GPU is not used when it is not


def _cuda_reason(torch: ModuleType) -> str | None:
    """``None`` if CUDA is usable, else a plain explanation."""
    if not torch.backends.cuda.is_built():
        return "this torch build has no CUDA support (CPU-only wheel)"
    if not torch.cuda.is_available():
        return "no CUDA GPU or driver found"
    return None


def resolve_device(preference: str = "auto") -> DeviceChoice:
    """Turn a user's preference into a device that exists here, with the reason."""
    import torch

    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        cuda_problem = _cuda_reason(torch)
        if cuda_problem is None:
            return DeviceChoice(device="cuda", reason=f"CUDA GPU: {torch.cuda.get_device_name(0)}")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return DeviceChoice(device="mps", reason="Apple GPU (MPS)")
        return DeviceChoice(device="cpu", reason=f"GPU not used: {cuda_problem}")
    if pref.startswith("cuda"):
        cuda_problem = _cuda_reason(torch)
        if cuda_problem is not None:
            raise BackendUnavailableError(
                f"device '{preference}' was requested but {cuda_problem}; choose 'cpu' or 'auto'"
            )
        suffix = pref.split(":", 1)[1] if ":" in pref else "0"
        if pref not in ("cuda", f"cuda:{suffix}") or not suffix.isdigit():
            raise BackendUnavailableError(f"unknown device '{preference}': write cuda, or cuda:N for the N-th GPU")
        index = int(suffix)
        if index >= torch.cuda.device_count():
            raise BackendUnavailableError(
                f"device '{preference}' does not exist: {torch.cuda.device_count()} CUDA device(s) found"
            )
        return DeviceChoice(device=pref, reason=f"CUDA GPU: {torch.cuda.get_device_name(index)}")
    if pref == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise BackendUnavailableError("device 'mps' was requested but Apple MPS is not available here")
        return DeviceChoice(device="mps", reason="Apple GPU (MPS)")
    if pref == "cpu":
        return DeviceChoice(device="cpu", reason="CPU chosen in settings")
    raise BackendUnavailableError(f"unknown device '{preference}': use one of {', '.join(DEVICE_CHOICES)}")


def configure_cpu_threads(threads: int | None) -> None:
    """Set torch's intra-op thread count (``None`` or 0 keeps torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


@contextlib.contextmanager
def inference_context(device: str, *, cuda_bf16: bool = True) -> Iterator[None]:
    """Enter in the thread that runs the model: no autograd; on CUDA bf16 autocast and TF32.

    Autocast state is per thread, so entering it at import time or in another thread would do
    nothing for the worker; every backend call wraps its model work in this.
    """
    import torch

    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        if device.startswith("cuda"):
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            if cuda_bf16 and torch.cuda.is_bf16_supported():
                stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
        yield
