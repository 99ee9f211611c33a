"""Build a SageMaker model package for the AWS PyTorch inference DLC.

Layout (the model directory ``/opt/ml/model`` once SageMaker has unpacked it)::

    langsam-config.json            backend, model ids, weight paths (inference.sagemaker_handler)
    langsam-manifest.json          size + sha256 of every other file, and how it was built
    weights/<sam2 checkpoint>.pt   (sam2, langsam)
    weights/grounding-dino-*/      (langsam)
    weights/sam3/                  (sam3: the Hub folder's config, model.safetensors and tokenizer files)
    code/inference.py              entry point re-exporting inference.sagemaker_handler
    code/requirements.txt          --no-index --find-links ./wheels; never torch
    code/wheels/*.whl              this project + everything it needs, for the container's Python

Nothing is fetched when the container starts. Output is ``model.tar.gz`` (for ``ModelDataUrl``)
or an uncompressed directory (to upload as an S3 prefix for ``ModelDataSource``). Symlinked
weights are copied as files. The package is verified after writing.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from cloud.packaging.errors import PackagingError
from cloud.packaging.shim import ENTRY_POINT, requirements_text
from cloud.packaging.verify import MANIFEST_NAME, VerifyReport, build_manifest, verify_package
from cloud.packaging.wheels import (
    DLC_PY312,
    TargetPython,
    build_project_wheel,
    build_pure_wheel,
    download_wheels,
    is_dlc_provided,
    normalize_name,
    user_cache_dir,
    wheel_requires,
)

if TYPE_CHECKING:
    from cloud.deploy.sizing import Sizing

BACKENDS = ("classic", "sam2", "langsam", "sam3")
# What the handler imports (inference.masks needs cv2, inference.images PIL, inference.protocol numpy).
BASE_REQUIREMENTS = (
    "numpy>=1.26",
    "pillow>=10.0",
    "opencv-python-headless>=4.9",
    "pycocotools>=2.0.8",
    "platformdirs>=4.0",
)
Log = Callable[[str], None]


@dataclass(frozen=True)
class PackageResult:
    path: Path
    kind: str  # "tar.gz" or "directory"
    backend: str
    target: str
    size_bytes: int
    requirements: tuple[str, ...]
    wheels: tuple[str, ...]
    weights: tuple[str, ...]
    verification: VerifyReport
    seconds: float


def project_root() -> Path:
    """The source checkout the project wheel is built from (this file is cloud/packaging/build.py)."""
    return Path(__file__).resolve().parents[2]


def _installed_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise PackagingError(
            f"{dist} is not installed here; packaging builds it from this environment (run scripts/setup.sh)."
        ) from None


def serving_requirements(backend: str) -> tuple[str, ...]:
    """What the project wheel depends on in the container, for ``backend`` (never torch)."""
    reqs = list(BASE_REQUIREMENTS)
    if backend in ("sam2", "langsam"):
        reqs.append(f"sam2=={_installed_version('sam2')}")
    if backend in ("langsam", "sam3"):  # SAM 3 needs transformers >= 5 (its Sam3* classes)
        reqs += [f"transformers=={_installed_version('transformers')}", "huggingface_hub>=0.30"]
    return tuple(reqs)


@dataclass(frozen=True)
class _Weights:
    config: dict
    copies: tuple[tuple[Path, str], ...]  # (source, name under the package root)


def _resolve_weights(
    *,
    backend: str,
    sam2_model: str | None,
    sam2_checkpoint: Path | None,
    gdino_model: str | None,
    gdino_dir: Path | None,
    sam3_dir: Path | None = None,
) -> _Weights:
    if backend == "classic":
        return _Weights(config={"backend": "classic"}, copies=())
    if backend == "sam3":
        return _sam3_weights(sam3_dir)
    from inference.weights import DEFAULT_GDINO, DEFAULT_SAM2, WeightsStore

    store = WeightsStore()
    sam2_model = sam2_model or DEFAULT_SAM2
    ckpt = Path(sam2_checkpoint) if sam2_checkpoint else store.require(sam2_model)
    if not ckpt.is_file():
        raise PackagingError(f"the SAM 2 checkpoint {ckpt} is not a file")
    ckpt_name = f"weights/{sam2_model}.pt"
    config = {"backend": backend, "model": sam2_model, "checkpoint": ckpt_name}
    copies = [(ckpt, ckpt_name)]
    if backend == "langsam":
        gdino_model = gdino_model or DEFAULT_GDINO
        gdir = Path(gdino_dir) if gdino_dir else store.require(gdino_model)
        if not (gdir / "config.json").is_file():
            raise PackagingError(f"{gdir} is not a Grounding DINO directory (no config.json)")
        name = gdino_model if gdino_model.startswith("grounding-dino-") else f"grounding-dino-{gdino_model}"
        config.update(gdino_model=gdino_model, gdino_path=f"weights/{name}")
        copies.append((gdir, f"weights/{name}"))
    return _Weights(config=config, copies=tuple(copies))


SAM3_PACKAGE_DIR = "weights/sam3"


def _sam3_weights(sam3_dir: Path | None) -> _Weights:
    """The SAM 3 folder's catalog files only (never ``sam3.pt``, the official package's 3.4 GB copy
    of the same weights in other keys, which a folder fetched with the Hub's own tools may hold)."""
    from inference.weights import WeightsStore, get_model

    spec = get_model("sam3")
    folder = Path(sam3_dir).expanduser() if sam3_dir else WeightsStore().require("sam3")
    problem = WeightsStore._layout_problem(spec, folder)
    if problem:
        raise PackagingError(f"{folder} is not a usable SAM 3 folder: {problem}")
    copies = tuple((folder / f.name, f"{SAM3_PACKAGE_DIR}/{f.name}") for f in spec.files if (folder / f.name).is_file())
    config = {"backend": "sam3", "model": spec.id, "checkpoint": SAM3_PACKAGE_DIR}
    return _Weights(config=config, copies=copies)


def weights_bytes(weights: _Weights) -> int:
    """The bytes of weights a package will hold (what its instance and timeouts are sized from)."""
    total = 0
    for source, _name in weights.copies:
        if source.is_dir():
            total += sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
        elif source.is_file():
            total += source.stat().st_size
    return total


def _copy_dereferenced(source: Path, dest: Path) -> None:
    """Copy a file or directory; symlinks are followed so the package holds real files."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, dest, symlinks=False, ignore=shutil.ignore_patterns(".cache", "__pycache__", ".git*"))
    else:
        shutil.copyfile(source, dest)  # follows symlinks


def collect_wheels(
    *,
    backend: str,
    target: TargetPython,
    dest: Path,
    cache_dir: Path,
    source_root: Path,
    extra_requirements: Sequence[str] = (),
    log: Log = print,
) -> tuple[tuple[str, ...], list[Path]]:
    """Fill ``dest`` with every wheel the package needs; returns (requirements, wheels)."""
    serving = [*serving_requirements(backend), *extra_requirements]
    bad = [r for r in serving if is_dlc_provided(r.split("=")[0].split(">")[0].split("<")[0])]
    if bad:
        raise PackagingError(
            f"{', '.join(bad)} must not be installed into the container: it provides torch and torchvision itself."
        )
    built = cache_dir / "built"
    local: list[Path] = []
    download_reqs = [r for r in serving if not normalize_name(r).startswith("sam2")]
    if backend in ("sam2", "langsam"):
        sam2 = build_sam2_wheel(built, log=log)
        local.append(sam2)
        download_reqs += [r for r in wheel_requires(sam2) if not is_dlc_provided(_req_name(r))]
    downloaded = download_wheels(
        download_reqs, target=target, dest=dest, cache=cache_dir / "wheels" / target.key, local_wheels=built, log=log
    )
    project, wheels = add_local_wheels(downloaded, local, dest=dest, source_root=source_root, requires=serving)
    return (project, *serving), wheels


def build_sam2_wheel(built: Path, *, log: Log) -> Path:
    """The installed sam2, built as a pure-Python wheel (no CUDA extension) into ``built``."""
    return build_pure_wheel(
        f"sam2=={_installed_version('sam2')}",
        dest=built,
        env_extra={"SAM2_BUILD_CUDA": "0"},
        no_build_isolation=True,
        log=log,
    )


def add_local_wheels(
    downloaded: Sequence[Path], local: Sequence[Path], *, dest: Path, source_root: Path, requires: Sequence[str]
) -> tuple[str, list[Path]]:
    """Copy the locally built wheels and this project's wheel (requiring ``requires``) into ``dest``.

    Returns (the project's pinned requirement, every wheel of the package, sorted)."""
    copied = []
    for wheel in local:
        shutil.copy2(wheel, dest / wheel.name)
        copied.append(dest / wheel.name)
    version = _installed_version("langsam-studio")
    with tempfile.TemporaryDirectory(prefix="langsam-proj-") as tmp:
        project = build_project_wheel(source_root=source_root, dest=Path(tmp), requires=requires)
        copied.append(Path(shutil.copy2(project, dest / project.name)))
    return f"langsam-studio=={version}", sorted(set(downloaded) | set(copied))


def _req_name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name


def build_package(
    *,
    output: str | os.PathLike,
    backend: str = "langsam",
    sam2_model: str | None = None,
    sam2_checkpoint: str | os.PathLike | None = None,
    gdino_model: str | None = None,
    gdino_dir: str | os.PathLike | None = None,
    sam3_dir: str | os.PathLike | None = None,
    target: TargetPython = DLC_PY312,
    device: str = "auto",
    extra_requirements: Sequence[str] = (),
    cache_dir: str | os.PathLike | None = None,
    source_root: str | os.PathLike | None = None,
    overwrite: bool = False,
    compress_level: int = 1,
    verify: bool = True,
    log: Log = print,
) -> PackageResult:
    """Write and verify a model package at ``output`` (``*.tar.gz`` or a directory)."""
    started = time.monotonic()
    plan = plan_package(
        output=output,
        backend=backend,
        overwrite=overwrite,
        sam2_model=sam2_model,
        sam2_checkpoint=sam2_checkpoint,
        gdino_model=gdino_model,
        gdino_dir=gdino_dir,
        sam3_dir=sam3_dir,
        cache_dir=cache_dir,
        log=log,
    )
    out, archive = plan.out, plan.archive
    with staging_dir(out) as staging:
        code = staging / "code"
        code.mkdir()
        requirements, wheels = collect_wheels(
            backend=backend,
            target=target,
            dest=code / "wheels",
            cache_dir=plan.cache,
            source_root=Path(source_root) if source_root else project_root(),
            extra_requirements=extra_requirements,
            log=log,
        )
        (code / "inference.py").write_text(ENTRY_POINT, encoding="utf-8")
        (code / "requirements.txt").write_text(
            requirements_text(requirements, target_label=target.label), encoding="utf-8"
        )
        stage_weights(staging, plan.weights, backend=backend, device=device, log=log)
        write_manifest(
            staging,
            {
                "backend": backend,
                "target": target.label,
                "python": target.python_version,
                "requirements": list(requirements),
                "sizing": plan.sizing.as_dict(),
                "created_by": "langsam-studio deploy package",
            },
        )
        publish(staging, out, archive=archive, compress_level=compress_level, log=log)
    report = (
        verify_package(out, import_check=verify)
        if verify
        else VerifyReport(ok=True, problems=(), files=0, total_bytes=0, weights_bytes=0, handler_origin=None)
    )
    log(report.summary())
    if not report.ok:
        raise PackagingError(report.summary())
    return package_result(
        plan, backend=backend, target=target, requirements=requirements, wheels=wheels, report=report, started=started
    )


@dataclass(frozen=True)
class PackagePlan:
    """What both package targets settle before writing: where, in which form, which weights, how sized."""

    out: Path
    archive: bool  # ``*.tar.gz``/``*.tgz``; else a directory
    weights: _Weights
    sizing: Sizing
    cache: Path


def plan_package(
    *,
    output: str | os.PathLike,
    backend: str,
    overwrite: bool,
    sam2_model: str | None,
    sam2_checkpoint: str | os.PathLike | None,
    gdino_model: str | None,
    gdino_dir: str | os.PathLike | None,
    sam3_dir: str | os.PathLike | None,
    cache_dir: str | os.PathLike | None,
    log: Log,
) -> PackagePlan:
    """Check the backend and the output, resolve the weights and size the package (logged)."""
    if backend not in BACKENDS:
        raise PackagingError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    out = Path(output)
    archive = out.name.endswith((".tar.gz", ".tgz"))
    if out.exists() and not overwrite:
        raise PackagingError(f"{out} already exists: choose another output or pass --overwrite")
    weights = _resolve_weights(
        backend=backend,
        sam2_model=sam2_model,
        sam2_checkpoint=Path(sam2_checkpoint) if sam2_checkpoint else None,
        gdino_model=gdino_model,
        gdino_dir=Path(gdino_dir) if gdino_dir else None,
        sam3_dir=Path(sam3_dir) if sam3_dir else None,
    )
    from cloud.deploy.sizing import package_sizing

    sizing = package_sizing(backend, weights_bytes=weights_bytes(weights))
    log(f"sizing: {sizing.summary()}")
    cache = Path(cache_dir) if cache_dir else user_cache_dir() / "package"
    return PackagePlan(out=out, archive=archive, weights=weights, sizing=sizing, cache=cache)


@contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A fresh directory beside ``out`` to write the package in; removed afterwards (if still there)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def stage_weights(staging: Path, weights: _Weights, *, backend: str, device: str, log: Log) -> None:
    """Copy the weights into the package and write its ``langsam-config.json``."""
    from inference.sagemaker_handler import write_model_dir_config

    for source, name in weights.copies:
        log(f"copying {source} -> {name}")
        _copy_dereferenced(source, staging / name)
    options = {k: v for k, v in weights.config.items() if k != "backend"}
    write_model_dir_config(staging, backend=backend, device=device, **options)


def write_manifest(staging: Path, meta: dict) -> None:
    """Write the manifest (size + sha256 of every file written so far, and ``meta``)."""
    manifest = build_manifest(staging, meta=meta)
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def publish(staging: Path, out: Path, *, archive: bool, compress_level: int, log: Log) -> None:
    """Turn the staging directory into ``out``: a tar.gz archive, or the directory moved into place."""
    if archive:
        _write_archive(staging, out, compress_level=compress_level, log=log)
    else:
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)


def package_result(
    plan: PackagePlan,
    *,
    backend: str,
    target: TargetPython,
    requirements: Sequence[str],
    wheels: Sequence[Path],
    report: VerifyReport,
    started: float,
) -> PackageResult:
    out = plan.out
    size = out.stat().st_size if plan.archive else sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return PackageResult(
        path=out,
        kind="tar.gz" if plan.archive else "directory",
        backend=backend,
        target=target.label,
        size_bytes=size,
        requirements=tuple(requirements),
        wheels=tuple(w.name for w in wheels),
        weights=tuple(name for _, name in plan.weights.copies),
        verification=report,
        seconds=time.monotonic() - started,
    )


def _write_archive(staging: Path, out: Path, *, compress_level: int, log: Log) -> None:
    log(f"writing {out} ...")
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=compress_level, dereference=True) as tar:
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(staging).as_posix(), recursive=False)
    os.replace(partial, out)
