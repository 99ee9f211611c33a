"""Backends by name: ``create_backend("sam2", device="cpu")``.

Backend modules register themselves on import; :func:`create_backend` imports the module that
provides a known name lazily, so choosing ``classic`` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from inference.backends.base import SegmentationBackend
from inference.errors import BackendUnavailableError

_BACKENDS: dict[str, type[SegmentationBackend]] = {}

# name -> module that registers it (imported on first use)
_PROVIDERS: dict[str, str] = {
    "classic": "inference.backends.classic_backend",
    "sam2": "inference.backends.sam2_backend",
    "langsam": "inference.backends.langsam_backend",
    "sam3": "inference.backends.sam3_backend",
    "server": "inference.backends.server_backend",  # our own HTTP server (remote)
    # "sagemaker" is added by the app and the CLI: add_provider("sagemaker", "cloud.endpoint.sagemaker_backend")
}

B = TypeVar("B", bound=type[SegmentationBackend])


def register_backend(cls: B) -> B:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    _BACKENDS[cls.name] = cls
    return cls


def add_provider(name: str, module: str) -> None:
    """Declare that importing ``module`` registers backend ``name`` (plug-ins, remote backends)."""
    _PROVIDERS[name] = module


def backend_names() -> list[str]:
    return sorted(set(_PROVIDERS) | set(_BACKENDS))


def backend_class(name: str) -> type[SegmentationBackend]:
    if name not in _BACKENDS and name in _PROVIDERS:
        try:
            importlib.import_module(_PROVIDERS[name])
        except ImportError as exc:
            raise BackendUnavailableError(f"backend '{name}' needs a package that is not installed: {exc}") from exc
    try:
        return _BACKENDS[name]
    except KeyError:
        raise BackendUnavailableError(f"unknown backend '{name}': choose one of {', '.join(backend_names())}") from None


def create_backend(name: str, **options: Any) -> SegmentationBackend:
    """Instantiate (not load) a backend by name."""
    return backend_class(name)(**options)
