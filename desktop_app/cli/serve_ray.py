"""``langsam-studio serve --engine ray``: the Ray Serve deployment of the SageMaker package, on a local
Ray instance or an existing cluster (``--address``). Needs ``ray[serve]`` in this environment
(imported lazily; a clear message otherwise). The app is :class:`inference.ray_serve.LangSAMDeployment`
(the same class the package's ``deployment.py`` wraps); it answers ``POST /`` with the SageMaker
contract and Ray's ``/-/healthz``. On an existing cluster, LangSAM Studio must be installed on its nodes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from inference.protocol import SESSION_HEADER


def run_ray(args: argparse.Namespace, *, model_options: dict[str, str]) -> int:
    """``model_options``: the backend options of the model flags (``serve_command.model_options``)."""
    try:  # (the ignore: ray is optional, not a dependency, and absent from the dev environment)
        import ray  # type: ignore[import-not-found]
        from ray import serve
    except ImportError:
        print(
            "langsam-studio serve --engine ray: Ray Serve is not installed in this environment. Install it "
            'with `pip install "ray[serve]"` (Python 3.10-3.13), or use the default engine.',
            file=sys.stderr,
        )
        return 2
    from cloud.packaging.ray_stack import CONSISTENT_HASH_ROUTER
    from inference.ray_serve import APP_NAME, DEPLOYMENT_NAME, LangSAMDeployment

    replicas = max(1, int(getattr(args, "replicas", 1) or 1))
    host = args.host or "127.0.0.1"
    port = args.port if args.port is not None else 8000
    # session affinity: the proxy reads this when it starts (a local instance inherits it)
    os.environ.setdefault("RAY_SERVE_SESSION_ID_HEADER_KEY", SESSION_HEADER)
    ray.init(address=args.address or None, logging_level="WARNING")
    serve.start(http_options={"host": host, "port": port})
    kwargs: dict = {"device": args.device}
    if args.model_dir or args.backend is None:
        kwargs["model_dir"] = args.model_dir
    if args.backend is not None:
        kwargs["backend"] = args.backend
        kwargs["options"] = model_options
    options: dict = {"num_replicas": replicas}
    if replicas > 1:
        options["request_router_config"] = {"request_router_class": CONSISTENT_HASH_ROUTER}
    deployment = serve.deployment(LangSAMDeployment, name=DEPLOYMENT_NAME).options(**options)
    print(f"deploying {replicas} replica(s) on Ray ({args.address or 'a local instance'}) ...", file=sys.stderr)
    serve.run(deployment.bind(**kwargs), name=APP_NAME, route_prefix="/", blocking=False)
    print(
        f"serving on http://{host}:{port}/ (POST / with the SageMaker request body; GET /-/healthz); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0
