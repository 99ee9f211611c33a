"""``langsam-studio deploy package`` and ``deploy test-local`` (wired in by desktop_app.cli.deploy_command).

``add_package_arguments(parser)`` / ``run_package(args)`` and ``add_test_local_arguments(parser)``
/ ``run_test_local(args)``; heavy imports happen inside the ``run_*`` functions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

PACKAGE_HELP = "build a SageMaker model package (model.tar.gz or a directory) that installs offline"
TEST_LOCAL_HELP = ("dry-run a model package in the DLC's real serving stack (TorchServe + SageMaker "
                   "toolkit), locally, before any money is spent")


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from desktop_app.core.backend_choices import local_backend_names

    parser.add_argument("--backend", choices=local_backend_names(), default="langsam",
                        help="what the endpoint runs (classic: no weights)")
    parser.add_argument("--sam2-model", help="SAM 2 model id from the weights store (default: the app's)")
    parser.add_argument("--sam2-checkpoint", type=Path, help="an explicit SAM 2 checkpoint (.pt)")
    parser.add_argument("--gdino-model", help="Grounding DINO model id (default: the app's)")
    parser.add_argument("--gdino-dir", type=Path, help="an explicit Grounding DINO directory")
    parser.add_argument("--extra-requirement", action="append", default=[], metavar="REQ",
                        help="another requirement to bundle (never torch)")
    parser.add_argument("--cache-dir", type=Path, help="wheel cache (default: the user cache dir)")


def add_package_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_arguments(parser)
    parser.add_argument("--output", "-o", type=Path, default=Path("model.tar.gz"),
                        help="model.tar.gz, or a directory to upload as an S3 prefix")
    parser.add_argument("--target", choices=("dlc", "local"), default="dlc",
                        help="wheels for the DLC 2.6.0 (CPython 3.12, manylinux x86_64; default) or "
                             "for this machine's Python (for test-local)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run_package(args: argparse.Namespace) -> int:
    from cloud.packaging.build import build_package
    from cloud.packaging.wheels import DLC_PY312, TargetPython
    from inference.errors import StudioError

    try:
        target = DLC_PY312 if args.target == "dlc" else TargetPython.local()
        result = build_package(
            output=args.output, backend=args.backend, sam2_model=args.sam2_model,
            sam2_checkpoint=args.sam2_checkpoint, gdino_model=args.gdino_model, gdino_dir=args.gdino_dir,
            target=target, extra_requirements=args.extra_requirement, cache_dir=args.cache_dir,
            overwrite=args.overwrite, log=lambda m: print(m, file=sys.stderr))
    except StudioError as exc:  # a packaging problem, or a model's weights that cannot be found
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{result.path} ({result.kind}, {result.size_bytes / 1e6:.1f} MB, backend {result.backend}, "
          f"for {result.target}) in {result.seconds:.0f} s")
    return 0


def add_test_local_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", nargs="?", type=Path,
                        help="a package built with --target local (default: build one now)")
    _add_model_arguments(parser)
    parser.add_argument("--venv-dir", type=Path, help="where the DLC environment is cached")
    parser.add_argument("--startup-timeout", type=int,
                        help="TS_DEFAULT_STARTUP_TIMEOUT for the run (default: TorchServe's 120 s)")
    parser.add_argument("--response-timeout", type=int, help="TS_DEFAULT_RESPONSE_TIMEOUT for the run")
    parser.add_argument("--health-check-timeout", type=int, default=600,
                        help="the endpoint's ContainerStartupHealthCheckTimeoutInSeconds (default 600)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="another container environment variable")
    parser.add_argument("--image", type=Path, help="the image to send (default: a generated one)")
    parser.add_argument("--text", help="a text prompt (default for langsam: 'object.')")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def default_request(*, backend: str, image: bytes | None = None, text: str | None = None
                    ) -> tuple[bytes, str]:
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
    from inference.errors import StudioError

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"error: --env needs NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        env[name] = value
    if args.startup_timeout:
        env["TS_DEFAULT_STARTUP_TIMEOUT"] = str(args.startup_timeout)
    if args.response_timeout:
        env["TS_DEFAULT_RESPONSE_TIMEOUT"] = str(args.response_timeout)
    with tempfile.TemporaryDirectory(prefix="langsam-test-local-") as tmp:
        try:
            venv = ensure_dlc_venv(parent=args.venv_dir, log=log)
            package = args.package
            if package is None:
                package = build_package(
                    output=Path(tmp) / "model", backend=args.backend, sam2_model=args.sam2_model,
                    sam2_checkpoint=args.sam2_checkpoint, gdino_model=args.gdino_model,
                    gdino_dir=args.gdino_dir, target=TargetPython.local(),
                    extra_requirements=args.extra_requirement, cache_dir=args.cache_dir, log=log).path
            image = args.image.read_bytes() if args.image else None
            body, content_type = default_request(backend=args.backend, image=image, text=args.text)
            result = run_dry_run(package=package, venv=venv, request_body=body, content_type=content_type,
                                 env=env, health_check_timeout=args.health_check_timeout, log=log)
        except (StudioError, OSError) as exc:  # LocalDlcError, PackagingError, missing weights
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({"ok": result.ok, "startup_seconds": result.startup_seconds,
                          "ping_seconds": result.ping_seconds, "invoke_latency": result.invoke_latency,
                          "status_code": result.status_code, "response_bytes": result.response_bytes,
                          "timeouts": result.timeouts.__dict__,
                          "suggested_timeouts": result.suggested_timeouts(),
                          "diagnosis": [d.__dict__ for d in result.diagnosis]}, indent=1, default=list))
    else:
        print(result.summary())
        if not result.ok:
            for name, text in result.log_excerpts.items():
                if text:
                    print(f"--- {name} (last lines) ---\n{text}")
        else:
            print("suggested endpoint timeouts: " + ", ".join(
                f"{k}={v}" for k, v in result.suggested_timeouts().items()))
    return 0 if result.ok else 1
