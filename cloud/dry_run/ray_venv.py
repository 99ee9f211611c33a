"""A Python 3.13 environment standing in for the Ray Serve SageMaker image, for the local dry run.

AWS's ``ray:serve-ml-sagemaker-*`` images run Ray Serve 2.55-2.57 on CPython 3.13 with
FastAPI/uvicorn/httpx, boto3, NumPy, Pillow and OpenCV (see
:data:`cloud.packaging.ray_stack.RAY_IMAGE_STACK`). The dry run rebuilds that stack from the
package index in its own virtual environment (never the project's: the dry run must prove the
package's own wheels are enough), created once per machine and cached under a key of the
versions. torch and transformers are left out: the classic backend does not need them, and a
sam2/langsam dry run installs them with ``extra_packages``.

Python 3.13 itself must exist on the machine: ``$LANGSAM_PYTHON313``, pyenv's
``~/.pyenv/versions/3.13.*/bin/python3.13``, or ``python3.13`` on PATH (Debian 12 has no
python3.13 package; install it with pyenv, uv or the deadsnakes PPA).

Each run layers a throw-away environment on the cached one (:func:`cloud.dry_run.venv.layer_venv`)
the way each container start begins from the pristine image, so the package's
``code/requirements.txt`` installs into the layer and nothing leaks into the next run.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cloud.dry_run.errors import LocalDlcError
from cloud.dry_run.venv import BaseVenv, mark_ready, prepare_venv_root, run_step
from cloud.packaging.wheels import user_cache_dir

RAY_VERSION = "2.57.1"  # the newest Ray in the images' 2.55-2.57 range
# The image's serving stack without torch/transformers. jinja2: Ray 2.57 imports it but only
# declares it through torch (fixed in 2.59); the image has torch, so it has jinja2.
IMAGE_PACKAGES = (
    f"ray[serve]=={RAY_VERSION}",
    "jinja2",
    "fastapi",
    "uvicorn",
    "httpx",
    "boto3",
    "numpy",
    "pillow",
    "opencv-python-headless",
    "pyyaml",
)
READY_MARKER = ".langsam-ray-ready.json"
Log = Callable[[str], None]


class RayEnvUnavailable(LocalDlcError):
    """Python 3.13 is missing or the Ray environment cannot be installed."""


@dataclass(frozen=True)
class RayVenv(BaseVenv):
    ready_marker: ClassVar[str] = READY_MARKER


def find_python313() -> Path:
    """The CPython 3.13 the image runs, or :class:`RayEnvUnavailable` saying how to get one."""
    candidates = [os.environ.get("LANGSAM_PYTHON313", "")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")), reverse=True)
    candidates.append(shutil.which("python3.13") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise RayEnvUnavailable(
        "the Ray dry run needs CPython 3.13 (the Ray Serve image's Python) and none was found: set "
        "LANGSAM_PYTHON313 to its interpreter, or install it (pyenv install 3.13; uv python install "
        "3.13; Ubuntu: the deadsnakes PPA). Debian 12 has no python3.13 package."
    )


def venv_key(python: Path, packages: Sequence[str]) -> str:
    version = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
    ).stdout.strip()
    return hashlib.sha256("|".join([version, *packages]).encode()).hexdigest()[:12]


def default_venv_parent() -> Path:
    return user_cache_dir() / "ray-venv"


def ensure_ray_venv(
    *,
    parent: str | Path | None = None,
    python: str | Path | None = None,
    extra_packages: Sequence[str] = (),
    log: Log = print,
) -> RayVenv:
    """Return the cached image-like environment, creating it first if needed (~40 s, ~450 MB)."""
    py = Path(python) if python else find_python313()
    packages = (*IMAGE_PACKAGES, *extra_packages)
    root = Path(parent or default_venv_parent()) / f"py313-ray{RAY_VERSION}-{venv_key(py, packages)}"
    venv = RayVenv(root=root)
    if prepare_venv_root(venv, what="Ray", log=log):
        return venv
    started = time.monotonic()
    log(f"creating the Ray Serve image environment at {root} (Python 3.13, ray[serve]=={RAY_VERSION}; once) ...")
    _run([str(py), "-m", "venv", str(root)], what="creating the Python 3.13 virtual environment")
    _run(
        [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check", *packages],
        what=f"installing {' '.join(packages)}",
    )
    versions = {}
    dists = ["ray", "fastapi", "numpy", "pillow", "opencv-python-headless", "boto3"]
    probe = f"import json, importlib.metadata as m; print(json.dumps({{d: m.version(d) for d in {dists!r}}}))"
    out = subprocess.run([str(venv.python), "-c", probe], capture_output=True, text=True)
    if out.returncode != 0:
        raise RayEnvUnavailable(f"the Ray environment does not import: {out.stderr.strip()[-400:]}")
    versions = json.loads(out.stdout)
    seconds = round(time.monotonic() - started, 1)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    mark_ready(
        venv, {"python": str(py), "packages": list(packages), "versions": versions, "seconds": seconds, "bytes": size}
    )
    log(f"Ray environment ready in {seconds:.0f} s ({size / 2**20:.0f} MiB)")
    return venv


def _run(cmd: Sequence[str], *, what: str) -> None:
    run_step(cmd, what=what, error=RayEnvUnavailable)
