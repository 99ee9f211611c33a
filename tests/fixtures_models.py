"""Session-wide model fixtures: random-weight SAM 2.1 hiera-tiny and a small Grounding DINO.

The checkpoints are written once per test session by :mod:`inference.random_weights` (the same
code the benchmarks use); the loaded backends are shared too, because building them and running
SAM 2's image encoder are the expensive parts. Tests that count encoder runs use their own image.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_sam2_checkpoint(tmp_path_factory):
    """A ``{"model": state_dict}`` file of the real sam2.1_hiera_tiny architecture, random weights."""
    from inference.random_weights import write_random_sam2_checkpoint

    return write_random_sam2_checkpoint(
        tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt", model_id="sam2.1_hiera_tiny", seed=0
    )


@pytest.fixture(scope="session")
def tiny_gdino_dir(tmp_path_factory):
    """A save_pretrained folder of a small random Grounding DINO (size "test") with its processor."""
    from inference.random_weights import write_random_gdino

    return write_random_gdino(tmp_path_factory.mktemp("gdino") / "grounding-dino-test", size="test", seed=0)


@pytest.fixture(scope="session")
def sam2_backend(tiny_sam2_checkpoint):
    """A loaded ``sam2`` backend on the CPU (shared: do not rely on its cache being empty)."""
    from inference.backends import create_backend

    backend = create_backend("sam2", device="cpu", model="sam2.1_hiera_tiny", checkpoint=tiny_sam2_checkpoint)
    backend.ensure_loaded()
    return backend


@pytest.fixture(scope="session")
def langsam_backend(tiny_sam2_checkpoint, tiny_gdino_dir):
    """A loaded ``langsam`` backend on the CPU (shared: do not rely on its cache being empty)."""
    from inference.backends import create_backend

    backend = create_backend(
        "langsam", device="cpu", model="sam2.1_hiera_tiny", checkpoint=tiny_sam2_checkpoint, gdino_path=tiny_gdino_dir
    )
    backend.ensure_loaded()
    return backend


def make_test_image(seed: int, *, height: int = 96, width: int = 128) -> np.ndarray:
    """A small random RGB image with a bright rectangle (distinct content per seed)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    image[height // 4 : height // 2, width // 4 : width // 2] = 240
    return image
