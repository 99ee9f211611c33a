"""``langsam-studio deploy package`` and ``deploy test-local`` (wired in by desktop_app.cli.deploy_command).

``add_package_arguments(parser)`` / ``run_package(args)`` and ``add_test_local_arguments(parser)``
/ ``run_test_local(args)``; heavy imports happen inside the ``run_*`` functions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from inference.weights.catalog import ModelKind

_R = TypeVar("_R")

PACKAGE_HELP = "build a SageMaker model package (model.tar.gz or a directory) that installs offline"
TEST_LOCAL_HELP = (
    "dry-run a model package in the DLC's real serving stack (TorchServe + SageMaker "
    "toolkit), locally, before any money is spent"
)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from desktop_app.core.backend_choices import local_backend_names

    parser.add_argument(
        "--backend",
        choices=local_backend_names(),
        default="langsam",
        help="what the endpoint runs (classic: no weights)",
    )
    parser.add_argument("--sam2-model", help="SAM 2 model id from the weights store (default: the app's)")
    parser.add_argument("--sam2-checkpoint", type=Path, help="an explicit SAM 2 checkpoint (.pt)")
    parser.add_argument("--gdino-model", help="Grounding DINO model id (default: the app's)")
    parser.add_argument("--gdino-dir", type=Path, help="an explicit Grounding DINO directory")
    parser.add_argument(
        "--sam3-dir",
        type=Path,
        help="(--backend sam3) an explicit SAM 3 folder (default: the "
        "installed copy; ~3.4 GB, SAM License: the package carries it)",
    )
    parser.add_argument(
        "--extra-requirement",
        action="append",
        default=[],
        metavar="REQ",
        help="another requirement to bundle (never torch)",
    )
    parser.add_argument("--cache-dir", type=Path, help="wheel cache (default: the user cache dir)")


def _package_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """What :func:`_add_model_arguments` read, as build_package / build_ray_package keywords."""
    return {
        "backend": args.backend,
        "sam2_model": args.sam2_model,
        "sam2_checkpoint": args.sam2_checkpoint,
        "gdino_model": args.gdino_model,
        "gdino_dir": args.gdino_dir,
        "sam3_dir": getattr(args, "sam3_dir", None),
        "extra_requirements": args.extra_requirement,
        "cache_dir": args.cache_dir,
    }


# -- local checks, before any slow work (wheel downloads, a serving environment, an AWS call) ----
# Each returns a sentence for a person, or None. Exit codes (desktop_app.cli.main): a malformed
# option is 2 (bad arguments); a file that is missing or is not what it should be is 1.
EXIT_FAILED, EXIT_USAGE = 1, 2


def refuse(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def text_problem(text: str | None) -> str | None:
    """Why ``--text`` cannot be sent (empty, or over the prompt limit every backend enforces)."""
    from inference.errors import PromptError
    from inference.prompts import MAX_TEXT_CHARS, normalise_text

    if text is None:
        return None
    try:
        if not normalise_text(text):
            return "--text is empty: say what to segment, e.g. --text 'car. person.'"
    except PromptError:
        return f"--text is {len(text):,} characters long; a text prompt may have at most {MAX_TEXT_CHARS:,}"
    return None


def image_problem(path: Path, option: str = "--image-file") -> str | None:
    """Why ``path`` is not an image that can be sent (reads only the image header)."""
    if not path.exists():
        return f"{option} {path} does not exist"
    if not path.is_file():
        return f"{option} {path} is a folder, not an image file"
    if path.stat().st_size == 0:
        return f"{option} {path} is empty (0 bytes), not an image"
    try:
        from PIL import Image, UnidentifiedImageError

        with Image.open(path) as img:
            img.size  # noqa: B018 - the header is parsed lazily
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        reason = "not an image format this tool can read" if isinstance(exc, UnidentifiedImageError) else str(exc)
        return f"{option} {path} cannot be read as an image ({reason})"
    return None


def image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def output_problem(output: Path, *, overwrite: bool) -> str | None:
    """Why a package cannot be written at ``output`` (its folder must already exist)."""
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.exists():
        return f"the folder {parent} for --output does not exist; create it first or choose another output"
    if not parent.is_dir():
        return f"--output {output}: {parent} is a file, not a folder"
    if output.exists() and not overwrite:
        return f"{output} already exists: choose another output or pass --overwrite"
    if output.exists() and output.is_dir() != (not output.name.endswith((".tar.gz", ".tgz"))):
        return (
            f"--output {output} is an existing {'folder' if output.is_dir() else 'file'}; "
            "--overwrite replaces a package only with one of the same kind"
        )
    return None


def weights_problem(args: argparse.Namespace) -> tuple[str, int] | None:
    """Why the weights asked for cannot be packaged: an unknown model id (2), or an explicit
    ``--sam2-checkpoint`` / ``--gdino-dir`` that is not that model's file/folder (1)."""
    from inference.weights import DEFAULT_GDINO, DEFAULT_SAM2, WeightsStore, get_model, is_known, model_ids

    if args.backend == "sam3":
        path = getattr(args, "sam3_dir", None)
        if path is None:
            return None  # the installed copy: a missing one is reported by the build, naming where it goes
        problem = WeightsStore._layout_problem(get_model("sam3"), Path(path).expanduser())
        return (f"--sam3-dir {path} is not a usable SAM 3 folder: {problem}", EXIT_FAILED) if problem else None
    if args.backend not in ("sam2", "langsam"):
        return None
    needed: list[tuple[str, Any, str, Any, str, ModelKind]] = [
        ("--sam2-model", args.sam2_model, "--sam2-checkpoint", args.sam2_checkpoint, DEFAULT_SAM2, "sam2")
    ]
    if args.backend == "langsam":
        needed.append(("--gdino-model", args.gdino_model, "--gdino-dir", args.gdino_dir, DEFAULT_GDINO, "gdino"))
    for id_option, model_id, path_option, path, default, kind in needed:
        if model_id and not is_known(model_id) and path is None:
            return (f"{id_option} {model_id!r} is not a known model; known: {', '.join(model_ids(kind))}", EXIT_USAGE)
        if path is None:
            continue
        spec = get_model(model_id if model_id and is_known(model_id) else default)
        problem = WeightsStore._layout_problem(spec, Path(path).expanduser())  # header checks only
        if problem:
            what = "SAM 2 checkpoint" if kind == "sam2" else "Grounding DINO folder"
            return f"{path_option} {path} is not a usable {what}: {problem}", EXIT_FAILED
    return None


def _package_problem(path: Path) -> str | None:
    from cloud.packaging.verify import layout_problem

    problem = layout_problem(path)
    return f"the package {problem}" if problem and problem.endswith("does not exist") else problem


def add_package_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_arguments(parser)
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path("model.tar.gz"),
        help="model.tar.gz, or a directory to upload as an S3 prefix",
    )
    parser.add_argument(
        "--target",
        choices=CONTAINER_TARGETS,
        default="ray",
        help="the container: ray (AWS's Ray Serve SageMaker image, CPython 3.13; default), dlc "
        f"(PyTorch 2.6 inference DLC, patches end {DLC_SUPPORT_END}) or byoc (your own image)",
    )
    parser.add_argument(
        "--wheels-for",
        choices=("container", "local"),
        default="container",
        help="wheels for the target container's Python (default) or for this machine's Python "
        "(a DLC package for `deploy test-local --target dlc`)",
    )
    _add_ray_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    ray = parser.add_argument_group("Ray Serve (--target ray)")
    ray.add_argument("--replicas", type=int, default=1, help="replicas of the deployment (default 1)")
    ray.add_argument(
        "--autoscale-replicas",
        metavar="MIN:MAX",
        help="Ray Serve autoscaling between MIN and MAX replicas instead of a fixed number",
    )
    ray.add_argument(
        "--gpus-per-replica",
        type=float,
        default=None,
        help="GPUs per replica; a fraction shares one GPU (e.g. 0.5; default 0 for classic, else 1)",
    )
    ray.add_argument(
        "--no-session-affinity",
        action="store_true",
        help="route clicks of one session to any replica (default: the consistent-hash router "
        "on X-Amzn-SageMaker-Session-Id)",
    )


def ray_options(args: argparse.Namespace):
    """RayServeOptions from the command line (raises PackagingError for nonsense)."""
    from cloud.packaging.errors import PackagingError
    from cloud.packaging.ray import RayServeOptions

    low = high = None
    if getattr(args, "autoscale_replicas", None):
        a, _, b = args.autoscale_replicas.partition(":")
        if not (a.isdigit() and b.isdigit()):
            raise PackagingError(f"--autoscale-replicas {args.autoscale_replicas!r} is not MIN:MAX, e.g. 1:4")
        low, high = int(a), int(b)
    gpus = args.gpus_per_replica
    if gpus is None:
        gpus = 0.0 if args.backend == "classic" else 1.0
    options = RayServeOptions(
        num_replicas=args.replicas,
        min_replicas=low,
        max_replicas=high,
        num_gpus=gpus,
        session_affinity=not args.no_session_affinity,
    )
    options.check()
    return options


CONTAINER_TARGETS = ("ray", "dlc", "byoc")
DLC_SUPPORT_END = "2026-06-30"
DLC_WARNING = (
    f"warning: the PyTorch 2.6 inference DLC (TorchServe) left patch support on {DLC_SUPPORT_END} and "
    "has no successor; prefer --target ray (AWS's maintained Ray Serve image)"
)


def run_package(args: argparse.Namespace) -> int:
    from cloud.packaging.build import build_package
    from cloud.packaging.wheels import DLC_PY312, TargetPython
    from inference.errors import StudioError

    problem = output_problem(args.output, overwrite=args.overwrite)
    if problem:
        return refuse(problem, EXIT_FAILED)
    bad_weights = weights_problem(args)
    if bad_weights:
        return refuse(*bad_weights)
    if args.cache_dir is not None and args.cache_dir.exists() and not args.cache_dir.is_dir():
        return refuse(f"--cache-dir {args.cache_dir} is a file, not a folder", EXIT_FAILED)
    try:
        if args.target == "ray":
            from cloud.packaging.ray import build_ray_package
            from cloud.packaging.ray_stack import RAY_PY313

            if args.wheels_for == "local" and sys.version_info[:2] != (3, 13):
                print(
                    "note: the Ray image runs CPython 3.13; its wheels also install in the local Ray dry run, "
                    "so --wheels-for local is not needed",
                    file=sys.stderr,
                )
            result = build_ray_package(
                output=args.output,
                **_package_arguments(args),
                target=RAY_PY313,
                options=ray_options(args),
                overwrite=args.overwrite,
                log=lambda m: print(m, file=sys.stderr),
            )
        else:
            if args.target == "dlc":
                print(DLC_WARNING, file=sys.stderr)
            target = DLC_PY312 if args.wheels_for == "container" else TargetPython.local()
            result = build_package(
                output=args.output,
                **_package_arguments(args),
                target=target,
                overwrite=args.overwrite,
                log=lambda m: print(m, file=sys.stderr),
            )
    except StudioError as exc:  # a packaging problem, or a model's weights that cannot be found
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{result.path} ({result.kind}, {result.size_bytes / 1e6:.1f} MB, backend {result.backend}, "
        f"for {result.target}) in {result.seconds:.0f} s"
    )
    return 0


def add_test_local_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "package", nargs="?", type=Path, help="a package built with --target local (default: build one now)"
    )
    _add_model_arguments(parser)
    parser.add_argument(
        "--target",
        choices=("ray", "dlc"),
        default="ray",
        help="the serving stack to run: ray (Ray Serve as in AWS's Ray Serve SageMaker image; needs "
        "CPython 3.13, e.g. pyenv's; default) or dlc (TorchServe + toolkit as in the DLC 2.6)",
    )
    parser.add_argument("--replicas", type=int, default=1, help="(ray, package built here) replicas")
    parser.add_argument(
        "--affinity-sessions",
        type=int,
        default=0,
        metavar="N",
        help="(ray) after the first answer, measure session affinity with N sessions",
    )
    parser.add_argument("--venv-dir", type=Path, help="where the DLC / Ray environment is cached")
    parser.add_argument(
        "--startup-timeout", type=int, help="TS_DEFAULT_STARTUP_TIMEOUT for the run (default: TorchServe's 120 s)"
    )
    parser.add_argument("--response-timeout", type=int, help="TS_DEFAULT_RESPONSE_TIMEOUT for the run")
    parser.add_argument(
        "--health-check-timeout",
        type=int,
        default=600,
        help="the endpoint's ContainerStartupHealthCheckTimeoutInSeconds (default 600)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="another container environment variable"
    )
    parser.add_argument("--image", type=Path, help="the image to send (default: a generated one)")
    parser.add_argument("--text", help="a text prompt (default for langsam: 'object.')")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def default_request(*, backend: str, image: bytes | None = None, text: str | None = None) -> tuple[bytes, str]:
    """A protocol request (body, content type) that every backend can answer."""
    from inference.prompts import Box, Prompt
    from inference.protocol import SegmentRequest, encode_request

    if image is None:
        import io

        from PIL import Image, ImageDraw

        canvas = Image.new("RGB", (320, 240), (30, 30, 30))
        ImageDraw.Draw(canvas).ellipse((100, 60, 220, 180), fill=(230, 200, 40))
        buf = io.BytesIO()
        canvas.save(buf, format="PNG")
        image = buf.getvalue()
    if text or backend == "langsam":
        prompt = Prompt(text=text or "object.")
    else:
        prompt = Prompt(box=Box(x0=90, y0=50, x1=230, y1=190), multimask=False)
    body, content_type, _headers = encode_request(SegmentRequest(prompt=prompt, image=image))
    return body, content_type


def run_test_local(args: argparse.Namespace) -> int:
    from cloud.dry_run.dlc import run_dry_run
    from cloud.dry_run.venv import ensure_dlc_venv
    from cloud.packaging.build import build_package
    from cloud.packaging.wheels import TargetPython

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            return refuse(f"--env needs NAME=VALUE, got {item!r}", EXIT_USAGE)
        env[name] = value
    if args.startup_timeout:
        env["TS_DEFAULT_STARTUP_TIMEOUT"] = str(args.startup_timeout)
    if args.response_timeout:
        env["TS_DEFAULT_RESPONSE_TIMEOUT"] = str(args.response_timeout)
    for option in ("startup_timeout", "response_timeout", "health_check_timeout"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            return refuse(f"--{option.replace('_', '-')} must be a positive number of seconds, got {value}", EXIT_USAGE)
    # Everything a person typed is checked here, before the serving environment is built (minutes).
    if args.package is not None:
        problem = _package_problem(args.package)
        if problem:
            return refuse(problem, EXIT_FAILED)
    else:
        bad_weights = weights_problem(args)
        if bad_weights:
            return refuse(*bad_weights)
    problem = text_problem(args.text)
    if problem:
        return refuse(problem, EXIT_USAGE)
    if args.image is not None:
        problem = image_problem(args.image, "--image")
        if problem:
            return refuse(problem, EXIT_FAILED)
    if args.venv_dir is not None and args.venv_dir.exists() and not args.venv_dir.is_dir():
        return refuse(f"--venv-dir {args.venv_dir} is a file, not a folder", EXIT_FAILED)
    if args.target == "ray":
        return _run_test_local_ray(args, env, log)
    print(DLC_WARNING, file=sys.stderr)
    result = _dry_run(
        args,
        log,
        ensure_venv=ensure_dlc_venv,
        build=lambda output: (
            build_package(output=output, **_package_arguments(args), target=TargetPython.local(), log=log).path
        ),
        run=lambda package, venv, body, content_type: run_dry_run(
            package=package,
            venv=venv,
            request_body=body,
            content_type=content_type,
            env=env,
            health_check_timeout=args.health_check_timeout,
            log=log,
        ),
    )
    if result is None:
        return 1
    return _report_dry_run(
        args,
        result,
        {
            "ok": result.ok,
            "startup_seconds": result.startup_seconds,
            "ping_seconds": result.ping_seconds,
            "invoke_latency": result.invoke_latency,
            "status_code": result.status_code,
            "response_bytes": result.response_bytes,
            "timeouts": result.timeouts.__dict__,
            "suggested_timeouts": result.suggested_timeouts(),
            "diagnosis": [d.__dict__ for d in result.diagnosis],
        },
        ok_line="suggested endpoint timeouts: " + ", ".join(f"{k}={v}" for k, v in result.suggested_timeouts().items()),
    )


def _dry_run(
    args: argparse.Namespace,
    log: Callable[[str], None],
    *,
    ensure_venv: Callable[..., Any],
    build: Callable[[Path], Path],
    run: Callable[[Path, Any, bytes, str], _R],
) -> _R | None:
    """The serving environment, the package (``args.package``, or one built now into a temporary
    folder), the default request; then ``run``. None after saying why it could not run."""
    from inference.errors import StudioError

    with tempfile.TemporaryDirectory(prefix="langsam-test-local-") as tmp:
        try:
            venv = ensure_venv(parent=args.venv_dir, log=log)
            package = args.package
            if package is None:
                package = build(Path(tmp) / "model")
            image = args.image.read_bytes() if args.image else None
            body, content_type = default_request(backend=args.backend, image=image, text=args.text)
            return run(package, venv, body, content_type)
        except (StudioError, OSError) as exc:  # LocalDlcError (RayEnvUnavailable), PackagingError, missing weights
            print(f"error: {exc}", file=sys.stderr)
            return None


def _report_dry_run(args: argparse.Namespace, result: Any, as_json: dict[str, Any], *, ok_line: str | None) -> int:
    """Print a dry run's result (``as_json`` with --json; else its summary, then the logs' last
    lines when it failed or ``ok_line`` when it passed); the exit code."""
    if args.json:
        print(json.dumps(as_json, indent=1, default=list))
    else:
        print(result.summary())
        if not result.ok:
            for name, text in result.log_excerpts.items():
                if text:
                    print(f"--- {name} (last lines) ---\n{text}")
        elif ok_line:
            print(ok_line)
    return 0 if result.ok else 1


def _run_test_local_ray(args: argparse.Namespace, env: dict[str, str], log) -> int:
    """``deploy test-local --target ray``: the Ray Serve image's start-up sequence, locally."""
    from cloud.dry_run.ray import run_ray_dry_run
    from cloud.dry_run.ray_venv import ensure_ray_venv
    from cloud.packaging.ray import RayServeOptions, build_ray_package

    result = _dry_run(
        args,
        log,
        ensure_venv=ensure_ray_venv,
        build=lambda output: (
            build_ray_package(
                output=output, **_package_arguments(args), options=RayServeOptions(num_replicas=args.replicas), log=log
            ).path
        ),
        run=lambda package, venv, body, content_type: run_ray_dry_run(
            package=package,
            venv=venv,
            request_body=body,
            content_type=content_type,
            env=env,
            wait_limit=float(args.health_check_timeout),
            affinity_sessions=args.affinity_sessions,
            log=log,
        ),
    )
    if result is None:
        return 1
    return _report_dry_run(
        args,
        result,
        {
            "ok": result.ok,
            "target": "ray",
            "startup_seconds": result.first_answer_seconds,
            "ping_seconds": result.healthz_seconds,
            "running_seconds": result.running_seconds,
            "status_code": result.status_code,
            "response_bytes": result.response_bytes,
            "app_status": result.app_status,
            "affinity": result.affinity,
            "diagnosis": [d.__dict__ for d in result.diagnosis],
        },
        ok_line=None,
    )
