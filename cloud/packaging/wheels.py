"""Wheels for a SageMaker model package, for the container's Python and platform.

The DLC installs ``code/requirements.txt`` at every start; the package makes that install
offline (``--no-index --find-links ./wheels``), so every wheel the requirements need must be in
``code/wheels/`` and built for the container (default: DLC 2.6.0, CPython 3.12, manylinux
x86_64). Three sources:

* binary wheels from the package index (``pip download --only-binary=:all:`` for the target),
  kept in a cache under the user cache dir so repeated packaging needs no network;
* pure-Python wheels built here from sdists that have no wheel (sam2 without its CUDA
  extension, iopath, antlr4-python3-runtime ...), cached as well;
* this project, built as a wheel whose dependency list is replaced by the serving list.

Packages the DLC already has (torch, torchvision, CUDA libraries) are never bundled or named.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cloud.packaging.errors import PackageIndexUnreachable, PackagingError

# Provided by every PyTorch DLC (and far too big to ship, or pinned by the toolkit: setuptools
# must keep pkg_resources): never bundled, never named. Small packages the DLC also has (numpy,
# pillow ...) are bundled anyway: pip leaves them alone when the container's copy satisfies the
# requirements, and installs ours when it does not.
DLC_PROVIDED = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "triton",
        "pytorch-triton",
        "setuptools",
    }
)

_NETWORK_ERRORS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Could not fetch URL",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Connection refused",
    "No route to host",
    "ProxyError",
    "SSLError",
)
_NO_MATCH = re.compile(r"No matching distribution found for ([^\s]+)")

Log = Callable[[str], None]


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_dlc_provided(name: str) -> bool:
    n = normalize_name(name)
    return n in DLC_PROVIDED or n.startswith(("nvidia-", "cuda-"))


@dataclass(frozen=True)
class TargetPython:
    """The interpreter and platform the wheels must install on."""

    python_version: str  # "3.12"
    platforms: tuple[str, ...]  # pip platform tags; manylinux tags include older ones
    label: str
    implementation: str = "cp"

    @property
    def key(self) -> str:
        return f"{self.implementation}{self.python_version.replace('.', '')}-{self.platforms[0]}"

    def pip_args(self) -> list[str]:
        args = ["--only-binary=:all:", "--python-version", self.python_version, "--implementation", self.implementation]
        for platform in self.platforms:
            args += ["--platform", platform]
        return args

    @classmethod
    def local(cls) -> TargetPython:
        """This interpreter (for the local dry run, whose wheels must install here)."""
        import platform as _platform

        machine = _platform.machine() or "x86_64"
        if not sys.platform.startswith("linux"):
            raise PackagingError("a package for the local dry run can only be built on Linux.")
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return cls(
            python_version=version,
            platforms=(f"manylinux2014_{machine}", f"manylinux_2_28_{machine}"),
            label=f"local CPython {version}",
        )


DLC_PY312 = TargetPython(
    python_version="3.12",
    platforms=("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    label="DLC 2.6.0 (CPython 3.12, manylinux x86_64)",
)


def user_cache_dir() -> Path:
    """``$LANGSAM_STUDIO_HOME/cache`` when set (tests), else the platform's user cache dir."""
    from inference.paths import cache_dir

    return cache_dir()


def _pip(
    args: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", *args]
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return subprocess.run(cmd, capture_output=True, text=True, env=run_env, cwd=cwd)


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _is_pure(wheel: Path) -> bool:
    return wheel.name.endswith(("-py3-none-any.whl", "-py2.py3-none-any.whl"))


def wheel_name_version(wheel: Path) -> tuple[str, str]:
    parts = wheel.name.split("-")
    return normalize_name(parts[0]), parts[1]


def wheel_requires(wheel: Path) -> list[str]:
    """``Requires-Dist`` entries of ``wheel`` that apply without extras."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta_name).decode("utf-8")
    out = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:"):
            spec = line.split(":", 1)[1].strip()
            req = Requirement(spec)
            if req.marker is not None and "extra" in str(req.marker):
                continue
            out.append(spec)
    return out


def set_wheel_requires(wheel: Path, requires: Sequence[str], *, dest: Path) -> Path:
    """Copy ``wheel`` to ``dest`` (a directory) with its ``Requires-Dist`` list replaced."""
    from wheel.wheelfile import WheelFile

    dest.mkdir(parents=True, exist_ok=True)
    target = dest / wheel.name
    with zipfile.ZipFile(wheel) as src, WheelFile(target, "w") as out:
        for info in src.infolist():
            if info.filename.endswith(".dist-info/RECORD"):
                continue  # WheelFile writes a fresh RECORD with the new hashes
            data = src.read(info.filename)
            if info.filename.endswith(".dist-info/METADATA"):
                lines = [
                    ln
                    for ln in data.decode("utf-8").split("\n")
                    if not ln.startswith(("Requires-Dist:", "Provides-Extra:"))
                ]
                header_end = lines.index("") if "" in lines else len(lines)
                lines[header_end:header_end] = [f"Requires-Dist: {r}" for r in requires]
                data = "\n".join(lines).encode("utf-8")
            out.writestr(info, data)
    return target


def build_project_wheel(
    *, source_root: Path, dest: Path, requires: Sequence[str], packages: Sequence[str] = ("inference",)
) -> Path:
    """Build this project as a wheel holding only ``packages`` and depending on ``requires``.

    The build runs on a copy of the sources, so the checkout gets no ``build/`` or
    ``*.egg-info`` litter, and without build isolation, so it needs no network.
    """
    if not (source_root / "pyproject.toml").is_file():
        raise PackagingError(
            f"the project sources are not at {source_root} (no pyproject.toml): packaging builds "
            "the project from its source checkout."
        )
    with tempfile.TemporaryDirectory(prefix="langsam-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (source_root / name).is_file():
                shutil.copy2(source_root / name, src / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in packages:
            shutil.copytree(source_root / package, src / package, ignore=ignore)
        built = Path(tmp) / "out"
        proc = _pip(["wheel", "--no-deps", "--no-build-isolation", "-w", str(built), str(src)])
        if proc.returncode != 0:
            raise PackagingError("building the project wheel failed:\n" + _tail(proc.stdout + proc.stderr))
        wheel = next(built.glob("*.whl"))
        return set_wheel_requires(wheel, requires, dest=dest)


def build_pure_wheel(
    requirement: str,
    *,
    dest: Path,
    env_extra: dict[str, str] | None = None,
    no_build_isolation: bool = False,
    log: Log = print,
) -> Path:
    """Build a pure-Python wheel of ``requirement`` from its sdist (cached in ``dest``)."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    name = normalize_name(req.name)
    dest.mkdir(parents=True, exist_ok=True)
    for cached in sorted(dest.glob("*.whl")):
        cname, cversion = wheel_name_version(cached)
        if cname == name and req.specifier.contains(cversion, prereleases=True):
            return cached
    log(f"building a pure-Python wheel of {requirement} from its source ...")
    env = dict(os.environ, **(env_extra or {}))
    with tempfile.TemporaryDirectory(prefix="langsam-sdist-") as tmp:
        args = ["wheel", "--no-deps", "--no-binary", req.name, "-w", tmp, requirement]
        if no_build_isolation:
            args.insert(2, "--no-build-isolation")
        proc = _pip(args, env=env)
        if proc.returncode != 0:
            _raise_if_offline(proc.stdout + proc.stderr)
            raise PackagingError(f"building a wheel of {requirement} failed:\n" + _tail(proc.stdout + proc.stderr))
        wheel = next(Path(tmp).glob("*.whl"))
        if not _is_pure(wheel):
            raise PackagingError(
                f"{requirement} has no wheel for the container and is not pure Python "
                f"(building it here gave {wheel.name}); it cannot be installed offline."
            )
        target = dest / wheel.name
        shutil.copy2(wheel, target)
        return target


def _raise_if_offline(output: str) -> None:
    if any(marker in output for marker in _NETWORK_ERRORS):
        raise PackageIndexUnreachable(
            "the package index cannot be reached and the wheel cache does not hold everything "
            "the package needs. Connect to the network (or configure pip's index) and run "
            "packaging again; later runs reuse the cache.\n" + _tail(output, 6)
        )


def download_wheels(
    requirements: Iterable[str], *, target: TargetPython, dest: Path, cache: Path, local_wheels: Path, log: Log = print
) -> list[Path]:
    """Put wheels for ``requirements`` and everything they need (for ``target``) into ``dest``.

    Tries the cache alone first (offline, fast); otherwise asks the package index, building
    pure-Python wheels for requirements that only exist as sdists, then refreshes the cache.
    """
    reqs = sorted(set(requirements))
    cache.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    base = [
        "download",
        "-d",
        str(dest),
        *target.pip_args(),
        "--find-links",
        str(cache),
        "--find-links",
        str(local_wheels),
    ]
    proc = _pip([*base, "--no-index", *reqs])
    if proc.returncode == 0:
        log(f"wheels for {target.label}: all from the cache")
        return _finish(dest, cache)
    log(f"fetching wheels for {target.label} from the package index ...")
    for _attempt in range(8):
        proc = _pip([*base, *reqs])
        if proc.returncode == 0:
            return _finish(dest, cache)
        output = proc.stdout + proc.stderr
        _raise_if_offline(output)
        missing = _missing_requirements(output)
        if not missing:
            raise PackagingError("pip could not collect the wheels:\n" + _tail(output))
        for requirement in missing:
            if is_dlc_provided(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]):
                raise PackagingError(
                    f"a requirement pulls in {requirement}, which the container "
                    "provides; remove it from the requirements."
                )
            build_pure_wheel(requirement, dest=local_wheels, log=log)
    raise PackagingError("pip kept finding requirements without wheels:\n" + _tail(proc.stdout + proc.stderr))


def _missing_requirements(output: str) -> list[str]:
    """Requirements pip found no wheel for: ``No matching distribution found for X``, or the
    names listed under "no matching distributions available" of a ResolutionImpossible."""
    found = [m.group(1) for m in _NO_MATCH.finditer(output)]
    block = re.search(r"no matching distributions available for your environment:\n((?:[ \t]+\S+[ \t]*\n)+)", output)
    for name in block.group(1).split() if block else []:
        spec = re.search(rf"depends on ({re.escape(name)}[^\s,]*)", output, flags=re.IGNORECASE)
        found.append(spec.group(1) if spec else name)
    return list(dict.fromkeys(found))


def _finish(dest: Path, cache: Path) -> list[Path]:
    wheels = sorted(dest.glob("*.whl"))
    bad = [w.name for w in wheels if is_dlc_provided(wheel_name_version(w)[0])]
    if bad:
        raise PackagingError(f"the wheels would replace packages of the container: {', '.join(bad)}")
    for wheel in wheels:
        if not (cache / wheel.name).exists():
            shutil.copy2(wheel, cache / wheel.name)
    return wheels
