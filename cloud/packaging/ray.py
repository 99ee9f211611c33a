"""Build a SageMaker model package for AWS's Ray Serve images (``ray:serve-ml-sagemaker-{cuda,cpu}``).

Layout (``/opt/ml/model`` once SageMaker has unpacked it; the image puts ``/opt/ml/model`` and
``/opt/ml/model/code`` on PYTHONPATH, pip-installs ``code/requirements.txt``, then runs
``serve run /opt/ml/model/config.yaml``)::

    config.yaml                    Ray Serve applications: config (import_path deployment:app)
    deployment.py                  the Ray Serve deployment (inference.ray_serve.LangSAMDeployment)
    langsam-config.json            backend, model ids, weight paths (as for the DLC)
    langsam-manifest.json          size + sha256 of every other file; the container Environment
    weights/...                    (sam2, langsam; sam3: weights/sam3/, the Hub folder's files)
    code/requirements.txt          --no-index --find-links ./wheels; only what the image lacks
    code/wheels/*.whl              CPython 3.13 manylinux wheels (this project, pycocotools ...)

Never bundled: anything the image already has in a compatible version (torch, transformers,
numpy, Pillow, OpenCV, Ray, FastAPI ...; :data:`cloud.packaging.ray_stack.RAY_IMAGE_STACK`).

Session affinity needs ``RAY_SERVE_SESSION_ID_HEADER_KEY`` in the container's environment before
``ray start`` (the proxy reads it at import), so it is part of :func:`container_environment`,
which the deploy flow puts into the model's ``Environment``; the consistent-hash request router
is set per deployment in ``config.yaml``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cloud.packaging.build import (
    PackageResult,
    add_local_wheels,
    build_sam2_wheel,
    package_result,
    plan_package,
    project_root,
    publish,
    serving_requirements,
    stage_weights,
    staging_dir,
    write_manifest,
)
from cloud.packaging.errors import PackagingError
from cloud.packaging.ray_stack import (
    CONSISTENT_HASH_ROUTER,
    RAY_IMAGE_STACK,
    RAY_PY313,
    check_bundled,
    split_requirements,
)
from cloud.packaging.verify import MANIFEST_NAME, VerifyReport
from cloud.packaging.wheels import (
    TargetPython,
    download_wheels,
    normalize_name,
    wheel_name_version,
    wheel_requires,
)

SESSION_HEADER = "X-Amzn-SageMaker-Session-Id"
REQUIRED = ("config.yaml", "deployment.py", "code/requirements.txt", "langsam-config.json", MANIFEST_NAME)
Log = Callable[[str], None]

DEPLOYMENT_PY = '''\
"""Ray Serve app of a LangSAM Studio model package.

Written by `langsam-studio deploy package --target ray` (do not edit). config.yaml names this
module (`import_path: deployment:app`); the Ray Serve SageMaker image runs
`serve run /opt/ml/model/config.yaml` after installing code/requirements.txt, which installs
LangSAM Studio's `inference` package from code/wheels.

LangSAM.__init__ loads the backend from this directory (langsam-config.json + weights/) and
answers one real warm-up request; __call__ answers POST / with the SageMaker contract. Ray's
/-/healthz (the container's /ping) is 200 before __init__ finishes and after it fails: only a
real invocation proves the model is loaded.
"""

import os

from ray import serve

from inference.ray_serve import DEPLOYMENT_NAME, LangSAMDeployment

MODEL_DIR = os.environ.get("LANGSAM_MODEL_DIR") or os.path.dirname(os.path.abspath(__file__))


@serve.deployment(name=DEPLOYMENT_NAME)
class LangSAM(LangSAMDeployment):
    """The shared deployment class (inference/ray_serve.py) bound to this model directory."""

    def __init__(self, model_dir: str = MODEL_DIR):
        super().__init__(model_dir)


app = LangSAM.bind()
'''


@dataclass(frozen=True, kw_only=True)
class RayServeOptions:
    """Replicas, autoscaling and resources of the deployment (``config.yaml``)."""

    num_replicas: int = 1
    min_replicas: int | None = None  # autoscaling when min/max are given
    max_replicas: int | None = None
    target_ongoing_requests: float = 2.0
    num_gpus: float = 0.0  # per replica; fractions share one GPU (e.g. 0.5 -> 2 replicas per GPU)
    num_cpus: float = 1.0
    max_ongoing_requests: int = 16
    session_affinity: bool = True

    def check(self) -> None:
        if self.num_replicas < 1:
            raise PackagingError(f"replicas must be at least 1, got {self.num_replicas}")
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise PackagingError("autoscaling needs both a minimum and a maximum number of replicas")
        # both or neither are None (checked above); the second test only narrows max_replicas for mypy
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and not 0 <= self.min_replicas <= self.max_replicas
        ):
            raise PackagingError(f"autoscaling: need 0 <= min ({self.min_replicas}) <= max ({self.max_replicas})")
        if self.num_gpus < 0 or (self.num_gpus > 1 and self.num_gpus != int(self.num_gpus)):
            raise PackagingError(f"GPUs per replica must be a fraction up to 1 or a whole number, got {self.num_gpus}")


def container_environment(options: RayServeOptions | None = None) -> dict[str, str]:
    """Environment the model must give the container (set before ``ray start``)."""
    options = options or RayServeOptions()
    env = {"RAYSERVE_BACKEND_TIMEOUT": "300"}
    if options.session_affinity:
        env["RAY_SERVE_SESSION_ID_HEADER_KEY"] = SESSION_HEADER
    return env


def config_yaml(options: RayServeOptions, *, app_name: str = "langsam") -> str:
    """The Ray Serve ``applications:`` config (YAML; JSON-compatible values)."""
    options.check()
    deployment: dict = {
        "name": "LangSAM",
        "max_ongoing_requests": options.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": options.num_cpus, "num_gpus": options.num_gpus},
    }
    if options.min_replicas is not None:
        deployment["autoscaling_config"] = {
            "min_replicas": options.min_replicas,
            "max_replicas": options.max_replicas,
            "initial_replicas": max(1, options.min_replicas),
            "target_ongoing_requests": options.target_ongoing_requests,
        }
    else:
        deployment["num_replicas"] = options.num_replicas
    if options.session_affinity:
        deployment["request_router_config"] = {
            "request_router_class": CONSISTENT_HASH_ROUTER,
            "request_router_kwargs": {"num_virtual_nodes": 100, "num_fallback_replicas": 2},
        }
    import yaml

    header = (
        "# Ray Serve config written by `langsam-studio deploy package --target ray` (do not edit).\n"
        "# The Ray Serve SageMaker image runs `serve run /opt/ml/model/config.yaml`; its http_options\n"
        "# would be ignored. Session affinity also needs RAY_SERVE_SESSION_ID_HEADER_KEY in the\n"
        f"# container's environment: {json.dumps(container_environment(options))}\n"
    )
    body = {
        "applications": [
            {"name": app_name, "route_prefix": "/", "import_path": "deployment:app", "deployments": [deployment]}
        ]
    }
    return header + yaml.safe_dump(body, sort_keys=False)


def ray_serving_requirements(backend: str) -> tuple[str, ...]:
    """Our serving requirements for the Ray image: the image's transformers, never a pin of ours."""
    out = []
    for req in serving_requirements(backend):
        if normalize_name(req.split("=")[0].split(">")[0]) == "transformers":
            req = "transformers>=5.0"  # the image has 5.8; langsam needs >= 5, sam3 its Sam3* classes (added in 5.0)
        out.append(req)
    return tuple(out)


def collect_ray_wheels(
    *,
    backend: str,
    target: TargetPython,
    dest: Path,
    cache_dir: Path,
    source_root: Path,
    extra_requirements: Sequence[str] = (),
    log: Log = print,
) -> tuple[tuple[str, ...], tuple[str, ...], list[Path], tuple[str, ...]]:
    """(requirements to name, requirements the image satisfies, wheels, notes)."""
    serving = [*ray_serving_requirements(backend), *extra_requirements]
    split = split_requirements(serving)
    bundle, from_image, notes = list(split.bundle), list(split.from_image), list(split.notes)
    built = cache_dir / "built"
    local: list[Path] = []
    download = [r for r in bundle if not normalize_name(r).startswith("sam2")]
    if backend in ("sam2", "langsam"):
        sam2 = build_sam2_wheel(built, log=log)
        local.append(sam2)
        deps = split_requirements(wheel_requires(sam2))
        download += list(deps.bundle)
        notes += list(deps.notes)
    downloaded = (
        download_wheels(
            download, target=target, dest=dest, cache=cache_dir / "wheels" / target.key, local_wheels=built, log=log
        )
        if download
        else []
    )
    # transitive dependencies the image already has (PyYAML for hydra-core ...) are not bundled
    kept = []
    for wheel in downloaded:
        if RAY_IMAGE_STACK.provided(wheel_name_version(wheel)[0]):
            wheel.unlink()
        else:
            kept.append(wheel)
    project, wheels = add_local_wheels(kept, local, dest=dest, source_root=source_root, requires=serving)
    problems = check_bundled(wheel_name_version(w)[0] for w in wheels)
    if problems:
        raise PackagingError("; ".join(problems))
    return (project, *bundle), tuple(from_image), wheels, tuple(notes)


def ray_requirements_text(requirements: Sequence[str], *, target_label: str, from_image: Sequence[str]) -> str:
    lines = [
        "# Installed by the Ray Serve SageMaker image at every container start, before `serve run`.",
        f"# Offline, from the wheels beside this file (built for {target_label}).",
        "# Provided by the image and deliberately not listed: "
        + (", ".join(from_image) if from_image else "torch, transformers, numpy ..."),
        "--no-index",
        "--find-links ./wheels",
        *requirements,
    ]
    return "\n".join(lines) + "\n"


def build_ray_package(
    *,
    output: str | os.PathLike,
    backend: str = "langsam",
    sam2_model: str | None = None,
    sam2_checkpoint: str | os.PathLike | None = None,
    gdino_model: str | None = None,
    gdino_dir: str | os.PathLike | None = None,
    sam3_dir: str | os.PathLike | None = None,
    target: TargetPython = RAY_PY313,
    options: RayServeOptions | None = None,
    device: str = "auto",
    extra_requirements: Sequence[str] = (),
    cache_dir: str | os.PathLike | None = None,
    source_root: str | os.PathLike | None = None,
    overwrite: bool = False,
    compress_level: int = 1,
    log: Log = print,
) -> PackageResult:
    """Write and verify a Ray Serve model package at ``output`` (``*.tar.gz`` or a directory)."""
    started = time.monotonic()
    options = options or RayServeOptions()
    options.check()
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
    with staging_dir(plan.out) as staging:
        code = staging / "code"
        code.mkdir()
        requirements, from_image, wheels, notes = collect_ray_wheels(
            backend=backend,
            target=target,
            dest=code / "wheels",
            cache_dir=plan.cache,
            source_root=Path(source_root) if source_root else project_root(),
            extra_requirements=extra_requirements,
            log=log,
        )
        for note in notes:
            log(f"note: {note}")
        (code / "requirements.txt").write_text(
            ray_requirements_text(requirements, target_label=target.label, from_image=from_image), encoding="utf-8"
        )
        (staging / "deployment.py").write_text(DEPLOYMENT_PY, encoding="utf-8")
        (staging / "config.yaml").write_text(config_yaml(options), encoding="utf-8")
        stage_weights(staging, plan.weights, backend=backend, device=device, log=log)
        write_manifest(
            staging,
            {
                "backend": backend,
                "target": target.label,
                "container": "ray",
                "image_stack": {"name": RAY_IMAGE_STACK.name, "as_of": RAY_IMAGE_STACK.as_of},
                "python": target.python_version,
                "requirements": list(requirements),
                "from_image": list(from_image),
                "environment": container_environment(options),
                "sizing": plan.sizing.as_dict(),
                "created_by": "langsam-studio deploy package --target ray",
            },
        )
        report = verify_ray_dir(staging)
        log(report.summary())
        if not report.ok:
            raise PackagingError(report.summary())
        publish(staging, plan.out, archive=plan.archive, compress_level=compress_level, log=log)
    return package_result(
        plan, backend=backend, target=target, requirements=requirements, wheels=wheels, report=report, started=started
    )


def verify_ray_dir(root: Path) -> VerifyReport:
    """Check a Ray package directory: files, requirements vs wheels and the image, config.yaml."""
    from cloud.packaging import verify as v

    problems: list[str] = []
    sizes: dict[str, int] = {}
    hashes: dict[str, str] = {}
    for rel, kind, p in v._walk_dir(root):
        if kind == "symlink":
            problems.append(f"{rel} is a symlink (SageMaker cannot extract it): copy the file instead")
        elif kind == "file":
            sizes[rel] = p.stat().st_size
            if rel != MANIFEST_NAME:
                hashes[rel] = v.sha256_file(p)
    problems += [f"{name} is missing" for name in REQUIRED if name not in sizes]
    texts = {n: (root / n).read_text(encoding="utf-8") for n in REQUIRED if n in sizes}
    if "code/requirements.txt" in texts:
        problems += v._check_requirements(texts["code/requirements.txt"], sizes)
        problems += check_bundled(requirement_names(texts["code/requirements.txt"]))
    if "langsam-config.json" in texts:
        problems += v._check_config(texts["langsam-config.json"], sizes)
    if MANIFEST_NAME in texts:
        problems += v._check_manifest(texts[MANIFEST_NAME], sizes, hashes)
    if "config.yaml" in texts:
        problems += _check_config_yaml(texts["config.yaml"])
    if "code/inference.py" in sizes:
        problems.append("code/inference.py belongs to the DLC route; a Ray package must not shadow `inference`")
    return v._report(problems, sizes, "deployment.py" if "deployment.py" in sizes else None)


def requirement_names(text: str) -> list[str]:
    from packaging.requirements import Requirement

    names = []
    for raw in text.splitlines():
        line = raw.split(" #")[0].strip()
        if line and not line.startswith(("#", "-")):
            names.append(normalize_name(Requirement(line).name))
    return names


def _check_config_yaml(text: str) -> list[str]:
    import yaml

    try:
        config = yaml.safe_load(text)
        apps = config["applications"]
        app = apps[0]
    except Exception as exc:  # noqa: BLE001
        return [f"config.yaml is not a Ray Serve applications: config ({exc})"]
    problems = []
    if app.get("import_path") != "deployment:app":
        problems.append(f"config.yaml: import_path is {app.get('import_path')!r}, expected 'deployment:app'")
    if app.get("route_prefix", "/") != "/":
        problems.append("config.yaml: route_prefix must be / (the image's adapter posts to /)")
    return problems


def package_environment(path: str | os.PathLike) -> Mapping[str, str]:
    """The container Environment a Ray package asks for (from its manifest; {} for other packages)."""
    root = Path(path)
    try:
        if root.is_dir():
            text = (root / MANIFEST_NAME).read_text(encoding="utf-8")
        else:
            import tarfile

            with tarfile.open(root, "r:*") as tar:
                member = tar.extractfile(MANIFEST_NAME)
                text = member.read().decode("utf-8") if member else "{}"
        meta = json.loads(text)
    except (OSError, KeyError, ValueError):
        return {}
    return dict(meta.get("environment") or {})


def is_ray_package(path: str | os.PathLike) -> bool:
    root = Path(path)
    if root.is_dir():
        return (root / "config.yaml").is_file() and (root / "deployment.py").is_file()
    try:
        import tarfile

        wanted = {"config.yaml", "deployment.py"}
        with tarfile.open(root, "r:*") as tar:
            for member in tar:  # stop once both are seen, not after decompressing the whole archive
                wanted.discard(member.name)
                if not wanted:
                    return True
        return False
    except (OSError, Exception):  # noqa: BLE001
        return False
