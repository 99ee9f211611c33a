"""``langsam-studio serve``: the HTTP inference server (also the SageMaker container command).

Loopback by default; a bearer token is required on any other address. As a bring-your-own
container (``docker run IMAGE serve``), pass ``--container`` or set ``LANGSAM_SERVE_CONTAINER=1``
(or ``SAGEMAKER_BIND_TO_PORT``): it binds 0.0.0.0:8080 and loads ``/opt/ml/model``
(``$SAGEMAKER_BASE_DIR/model``) laid out as :mod:`inference.sagemaker_handler` describes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from desktop_app.core.backend_choices import cli_help, local_backend_names

HELP = "run the HTTP inference server (SageMaker-compatible /ping and /invocations)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1; 0.0.0.0 in --container)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8765; 8080 in --container)")
    parser.add_argument(
        "--backend",
        default=None,
        choices=local_backend_names(),
        help=cli_help(local_backend_names(), default="from the model directory, else langsam"),
    )
    parser.add_argument("--model", default=None, help="SAM 2 model id, e.g. sam2.1_hiera_small (sam3: 'sam3')")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="explicit SAM 2 checkpoint .pt file, or for --backend "
        "sam3 the SAM 3 folder (default: the installed copy, see `langsam-studio models path sam3`)",
    )
    parser.add_argument("--gdino-model", default=None, help="Grounding DINO model id, e.g. grounding-dino-tiny")
    parser.add_argument("--gdino-path", default=None, help="explicit Grounding DINO directory")
    parser.add_argument("--device", default=None, help="auto, cuda, cuda:N, mps or cpu (default auto)")
    parser.add_argument(
        "--model-dir", default=None, help="load a SageMaker-style model directory (langsam-config.json + weights/)"
    )
    parser.add_argument("--container", action="store_true", help="SageMaker container mode (see above)")
    parser.add_argument(
        "--token-file",
        default=None,
        help="file holding the bearer token (or set LANGSAM_SERVER_TOKEN); required on non-loopback addresses",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser calls from ORIGIN (repeatable); CORS is off by default",
    )
    parser.add_argument("--max-request-mb", type=float, default=6.0, help="largest request body (default 6 MiB)")
    parser.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image (default 40 MP)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request limit in seconds (default 60)")
    parser.add_argument(
        "--queue-size", type=int, default=8, help="requests allowed to wait (default 8); more get 503 + Retry-After"
    )
    parser.add_argument("--image-cache-mb", type=int, default=512, help="decoded images kept for repeated clicks")
    parser.add_argument(
        "--max-decode-mb",
        type=int,
        default=1024,
        help="memory one image may take while it is "
        "decoded, estimated from its header before decoding (default 1024 MiB)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=512,
        help="open connections at most (default 512, "
        "kept under the file-descriptor limit); the oldest idle one is closed first",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a connection may take to send its request headers (default 10)",
    )
    parser.add_argument(
        "--body-timeout", type=float, default=60.0, help="seconds a request may take to send its body (default 60)"
    )
    parser.add_argument(
        "--assistant-model",
        default=None,
        metavar="MODEL",
        help="answer prompt.instruction with this chat model (e.g. gpt-4o-mini) through the prompt "
        "assistant; the API key only from OPENAI_API_KEY. Off by default",
    )
    parser.add_argument(
        "--assistant-base-url",
        default=None,
        metavar="URL",
        help="an OpenAI-compatible server for --assistant-model (default: OpenAI)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--engine",
        choices=("http", "ray"),
        default="http",
        help="http: this server (default); ray: the Ray Serve deployment (needs ray[serve])",
    )
    parser.add_argument("--replicas", type=int, default=1, help="(--engine ray) replicas of the deployment")
    parser.add_argument(
        "--address",
        default=None,
        help="(--engine ray) an existing Ray cluster (RAY_ADDRESS); default: a local instance",
    )


def build(args: argparse.Namespace):
    """(ServerConfig, InferenceWorker) from parsed arguments; raises ServerConfigError."""
    from inference.server.config import (
        DEFAULT_PORT,
        TOKEN_ENV,
        ServerConfig,
        ServerConfigError,
        container_environment,
        container_port,
        container_requested,
        is_loopback,
    )
    from inference.server.runner import RunnerLimits
    from inference.server.worker import InferenceWorker

    container = container_requested(args.container)
    host = args.host or ("0.0.0.0" if container else "127.0.0.1")
    port = args.port if args.port is not None else (container_port() if container else DEFAULT_PORT)
    token = os.environ.get(TOKEN_ENV) or None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ServerConfigError(f"cannot read the token file {args.token_file}: {exc.strerror}") from None
    model_dir = args.model_dir
    if model_dir is None and container:
        model_dir = str(Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")) / "model")
    # a public bind without a token only with evidence of a container (SAGEMAKER_BIND_TO_PORT alone is not)
    evidence = container_environment() if container else None
    if container and evidence is None and not token and not is_loopback(host):
        raise ServerConfigError(
            f"container mode was asked for, but this does not look like a container (no /.dockerenv, "
            f"/run/.containerenv, container cgroup, or /opt/ml with SAGEMAKER_BIND_TO_PORT): listening on {host} "
            f"needs a bearer token like any public bind. Set {TOKEN_ENV} (or --token-file), or pass --host 127.0.0.1"
        )
    limits = RunnerLimits(
        max_image_pixels=args.max_pixels,
        image_cache_bytes=args.image_cache_mb * 2**20,
        max_decode_bytes=args.max_decode_mb * 2**20,
        cpu_budget_s=args.timeout,
    )
    factory = _backend_factory(args, model_dir)
    config = ServerConfig(
        host=host,
        port=port,
        token=token,
        container=evidence is not None,
        container_evidence=evidence,
        cors_origins=tuple(args.cors_origin),
        max_request_bytes=int(args.max_request_mb * 2**20),
        timeout_s=args.timeout,
        queue_size=args.queue_size,
        limits=limits,
        max_connections=args.max_connections,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        assistant_model=(getattr(args, "assistant_model", None) or "").strip() or None,
        assistant_base_url=(getattr(args, "assistant_base_url", None) or "").strip() or None,
    )
    config.check()
    return config, InferenceWorker(
        factory, queue_size=config.queue_size, limits=limits, retry_after_s=config.retry_after_s
    )


def model_options(args: argparse.Namespace) -> dict[str, str]:
    """The backend options the model flags (--model, --checkpoint, --gdino-model, --gdino-path) give."""
    flags = (
        ("model", args.model),
        ("checkpoint", args.checkpoint),
        ("gdino_model", args.gdino_model),
        ("gdino_path", args.gdino_path),
    )
    return {k: v for k, v in flags if v is not None}


def _backend_factory(args: argparse.Namespace, model_dir: str | None):
    # --model-dir, or the container's /opt/ml/model: its langsam-config.json decides (a missing one is
    # the reason /ping gives); an explicit --backend overrides the directory
    use_dir = model_dir is not None and args.backend is None

    def factory():
        from inference.backends.registry import create_backend

        if use_dir and model_dir is not None:  # (use_dir implies the second)
            from inference.sagemaker_handler import create_backend_from_model_dir

            backend, _limits = create_backend_from_model_dir(model_dir, device=args.device)
            return backend
        return create_backend(args.backend or "langsam", device=args.device or "auto", **model_options(args))

    return factory


def run(args: argparse.Namespace) -> int:
    from inference.server.config import ServerConfigError
    from inference.server.logs import configure_logging

    configure_logging(args.log_level)
    if getattr(args, "engine", "http") == "ray":
        from desktop_app.cli.serve_ray import run_ray

        return run_ray(args, model_options=model_options(args))
    try:
        config, worker = build(args)
    except ServerConfigError as exc:
        print(f"langsam-studio serve: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from inference.server.app import create_app

    app = create_app(config=config, worker=worker)
    import logging

    from inference.server.guard import uvicorn_options

    print(
        f"serving on http://{config.host}:{config.port} (POST /invocations, GET /ping); the model loads in the "
        "background",
        file=sys.stderr,
        flush=True,
    )
    options = uvicorn_options(config)
    logging.getLogger("langsam.server").info(
        "listening",
        extra={
            "event": "listening",
            "host": config.host,
            "port": config.port,
            "container": config.container_evidence,
            "needs_bearer": bool(config.token),
            "max_connections": options["http"].max_connections,
            "header_timeout_s": config.header_timeout_s,
            "body_timeout_s": config.body_timeout_s,
        },
    )
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_config=None,
        access_log=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=25,
        **options,
    )
    return 0
