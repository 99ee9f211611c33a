"""Segmentation backends behind one base class and a registry."""

from inference.backends.base import SegmentationBackend
from inference.backends.registry import backend_class, backend_names, create_backend, register_backend

__all__ = ["SegmentationBackend", "backend_class", "backend_names", "create_backend", "register_backend"]
