"""The bundled sample image: where it ships, and where the app opens its copy.

The package folder is never written: the sample is copied to ``user_copy_dir()`` (under the
app's config folder, :func:`inference.paths.config_dir`) and opened from there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from inference.paths import config_dir

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "samples"
SAMPLE_IMAGE = SAMPLES_DIR / "coffee.jpg"


def user_copy_dir() -> Path:
    return config_dir() / "sample"


def is_bundled_sample(path: Path) -> bool:
    return path.resolve().parent == SAMPLES_DIR.resolve()


def user_copy(path: Path) -> Path:
    """The user's copy of the bundled sample ``path`` (copied on first use; an existing copy,
    with its annotations next to it, is kept)."""
    target = user_copy_dir()
    target.mkdir(parents=True, exist_ok=True)
    if not (target / path.name).exists():
        shutil.copy2(path, target / path.name)
    return target / path.name
