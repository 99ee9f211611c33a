"""Tiny random SAM 3 checkpoints in the Hub's ``facebook/sam3`` layout, and a loaded backend.

Written once per session by :mod:`inference.random_sam3` (the code the benchmark uses with the
full-size config) and loaded through the real loading code with ``local_files_only=True``. The
model has ~0.6 M parameters: building, loading and encoding take well under a second each.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_sam3_dir(tmp_path_factory):
    """A ``sam3_video`` folder: config.json, model.safetensors (detector_model.*, tracker_model.*,
    tracker_neck.*), CLIP tokenizer files and the processor configs."""
    from inference.random_sam3 import write_random_sam3

    return write_random_sam3(tmp_path_factory.mktemp("sam3") / "sam3", size="test", seed=0)


@pytest.fixture(scope="session")
def sam3_backend(tiny_sam3_dir):
    """A loaded ``sam3`` backend on the CPU (shared: do not rely on its cache being empty)."""
    from inference.backends import create_backend

    backend = create_backend("sam3", device="cpu", checkpoint=tiny_sam3_dir)
    backend.ensure_loaded()
    return backend
