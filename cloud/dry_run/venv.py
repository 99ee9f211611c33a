"""A separate virtual environment holding the DLC's serving stack, for the local dry run.

The AWS PyTorch 2.6 inference DLC serves with TorchServe 0.12.0 and the
``sagemaker-pytorch-inference`` toolkit 2.0.25 on Java 17. The same packages install from the
package index into their own environment (never the project's: the dry run must prove that the
package's own wheels are enough). Order matters: torch first (this machine's build), then the
serving packages, then ``setuptools<82`` (the toolkit needs ``pkg_resources``) and PyYAML (which
TorchServe uses but does not declare). Created once, cached under a key of the versions.

Each dry run gets a fresh, thin environment layered on the cached one (:func:`layer_venv`), the
way each container start begins from the pristine image: the toolkit pip-installs the
package's requirements into the layer, so nothing from one run leaks into the next.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import ClassVar

from cloud.dry_run.errors import LocalDlcError
from cloud.packaging.wheels import user_cache_dir

SERVING_PACKAGES = ("sagemaker-pytorch-inference==2.0.25", "torchserve==0.12.0", "torch-model-archiver==0.12.0")
FIXUP_PACKAGES = ("setuptools<82", "pyyaml")
READY_MARKER = ".langsam-dlc-ready.json"
Log = Callable[[str], None]


@dataclass(frozen=True)
class BaseVenv:
    """A virtual environment at ``root``; :meth:`info` reads what was written to its ready marker
    when it was finished (:func:`prepare_venv_root`, :func:`mark_ready`)."""

    root: Path
    ready_marker: ClassVar[str]

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def ready(self) -> bool:
        """Finished earlier (the marker is written last) and still has its interpreter."""
        return (self.root / self.ready_marker).is_file() and self.python.exists()

    def info(self) -> dict:
        return json.loads((self.root / self.ready_marker).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DlcVenv(BaseVenv):
    ready_marker: ClassVar[str] = READY_MARKER


def prepare_venv_root(venv: BaseVenv, *, what: str, log: Log) -> bool:
    """True when ``venv`` is ready to use; else clear what an unfinished creation left at its
    root (saying so) and make its parent, so it can be created there."""
    if venv.ready:
        return True
    if venv.root.exists():
        log(f"removing an unfinished {what} environment at {venv.root}")
        shutil.rmtree(venv.root)
    venv.root.parent.mkdir(parents=True, exist_ok=True)
    return False


def mark_ready(venv: BaseVenv, info: dict) -> None:
    """Write the ready marker (last, so an interrupted creation is never taken as finished)."""
    (venv.root / venv.ready_marker).write_text(json.dumps(info, indent=1), encoding="utf-8")


def default_torch_requirements() -> tuple[str, ...]:
    """This machine's torch and torchvision (the DLC has both; sam2 needs both)."""
    reqs = []
    for dist in ("torch", "torchvision"):
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            raise LocalDlcError(
                f"{dist} is not installed in this environment; pass the torch "
                "requirements for the DLC environment explicitly."
            ) from None
    return tuple(reqs)


def venv_key(torch_requirements: Sequence[str]) -> str:
    text = "|".join([sys.version.split()[0], *torch_requirements, *SERVING_PACKAGES, *FIXUP_PACKAGES])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_venv_parent() -> Path:
    return user_cache_dir() / "dlc-venv"


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise LocalDlcError(
            "TorchServe needs Java 17 (a JRE) on PATH; install it first "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)."
        )
    return java


def ensure_dlc_venv(
    *, parent: str | Path | None = None, torch_requirements: Sequence[str] | None = None, log: Log = print
) -> DlcVenv:
    """Return the cached serving environment, creating it first if needed (~35 s to minutes)."""
    torch_reqs = tuple(torch_requirements or default_torch_requirements())
    root = (
        Path(parent or default_venv_parent())
        / f"py{sys.version_info.major}{sys.version_info.minor}-{venv_key(torch_reqs)}"
    )
    venv = DlcVenv(root=root)
    if prepare_venv_root(venv, what="DLC", log=log):
        return venv
    started = time.monotonic()
    log(f"creating the DLC serving environment at {root} (once; this takes a while) ...")
    _run([sys.executable, "-m", "venv", str(root)], what="creating the virtual environment")
    pip = [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, *torch_reqs], what=f"installing {' '.join(torch_reqs)}")
    _run([*pip, *SERVING_PACKAGES], what="installing TorchServe and the SageMaker toolkit")
    _run([*pip, *FIXUP_PACKAGES], what="installing setuptools<82 and PyYAML")
    versions = {}
    for dist in ("torch", "torchserve", "sagemaker-pytorch-inference", "setuptools", "pyyaml"):
        out = subprocess.run(
            [str(venv.python), "-c", f"from importlib.metadata import version; print(version({dist!r}))"],
            capture_output=True,
            text=True,
        )
        versions[dist] = out.stdout.strip()
    mark_ready(
        venv,
        {
            "python": sys.version.split()[0],
            "torch_requirements": list(torch_reqs),
            "versions": versions,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    log(f"DLC environment ready in {time.monotonic() - started:.0f} s")
    return venv


def layer_venv(base: BaseVenv, dest: Path) -> DlcVenv:
    """A throw-away environment at ``dest`` that sees ``base``'s packages but installs into itself.

    ``python -m pip`` comes from ``base``; packages ``base`` already satisfies are left alone (as
    in the container); ``torchserve`` gets a launcher script bound to the layer's interpreter, so
    TorchServe's Python workers (``sys.executable`` of the CLI) see the layer's packages.
    """
    _run([str(base.python), "-m", "venv", "--without-pip", str(dest)], what="creating the run environment")
    layer = DlcVenv(root=dest)
    base_site = _site_packages(base.python)
    own_site = _site_packages(layer.python)
    Path(own_site, "langsam-dlc-base.pth").write_text(
        f"import site; site.addsitedir({base_site!r})\n", encoding="utf-8"
    )
    for script in ("torchserve", "torch-model-archiver"):
        src = base.bin_dir / script
        if src.is_file():
            lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
            lines[0] = f"#!{layer.python}\n"
            target = layer.bin_dir / script
            target.write_text("".join(lines), encoding="utf-8")
            target.chmod(0o755)
    return layer


def _site_packages(python: Path) -> str:
    proc = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise LocalDlcError(f"{python} does not run: {proc.stderr.strip()[-300:]}")
    return proc.stdout.strip()


def _run(cmd: Sequence[str], *, what: str) -> None:
    run_step(cmd, what=what, error=LocalDlcError)


OFFLINE_MARKERS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Could not fetch URL",
)


def run_step(cmd: Sequence[str], *, what: str, error: type[LocalDlcError]) -> None:
    """Run one step of creating an environment; on failure raise ``error`` with its last output
    lines, saying when the package index could not be reached."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip().splitlines()
        offline = any(m in line for line in output for m in OFFLINE_MARKERS)
        hint = " (the package index cannot be reached)" if offline else ""
        raise error(f"{what} failed{hint}:\n" + "\n".join(output[-12:]))
