"""``langsam-studio deploy``: package, test-local, up, status, logs, invoke, down.

``package`` and ``test-local`` belong to :mod:`desktop_app.cli.deploy_package_command` (standard library
only at import time). boto3 is imported only inside ``run``, so ``langsam-studio --help`` stays instant.
An ImportError is shown as a message only when a third-party package is missing; one inside our
own code is a bug and is raised with its message, never hidden.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

HELP = "deploy to Amazon SageMaker: package, test-local, up, status, logs, invoke, down"
ACTIONS = ("package", "test-local", "up", "status", "logs", "invoke", "down")
_PACKAGE_HOOKS = {
    "package": ("add_package_arguments", "run_package"),
    "test-local": ("add_test_local_arguments", "run_test_local"),
}


def _err(text: str) -> None:
    print(text, file=sys.stderr)


class _Refused(Exception):
    """A mistake found locally, before any AWS call: ``str(err)`` is the message, ``code`` the exit
    code (2 a malformed option, 1 a file that is missing or not what it should be)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _prompt_value(parse: Callable[..., Any], text: str, option: str) -> Any:
    """``parse`` (a :mod:`desktop_app.cli.prompt_args` parser) of ``option``'s value; refused (exit 2)
    when malformed."""
    from desktop_app.cli.prompt_args import PromptArgError

    try:
        return parse(text, name=option)
    except PromptArgError as exc:
        raise _Refused(f"{option} {text!r} is not {exc.shape}" if exc.shape else str(exc)) from None


def _parse_point(text: str) -> Any:
    from desktop_app.cli.prompt_args import parse_point

    return _prompt_value(parse_point, text, "--point")


def _parse_box(text: str) -> Any:
    from desktop_app.cli.prompt_args import parse_box

    return _prompt_value(parse_box, text, "--box")


def _positive(args: argparse.Namespace, *options: str) -> None:
    for option in options:
        value = getattr(args, option, None)
        if value is not None and not value > 0:
            raise _Refused(f"--{option.replace('_', '-')} must be greater than 0, got {value}")


def _check_local(action: str, args: argparse.Namespace) -> None:
    """Everything checkable without AWS, so a typo is never reported as an AWS error."""
    env_file = getattr(args, "env_file", None)
    if env_file is not None:
        if env_file.is_dir():
            raise _Refused(f"--env-file {env_file} is a folder, not a .env file", 1)
        if env_file.is_file():
            try:
                env_file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise _Refused(f"--env-file {env_file} is not a text .env file (not UTF-8)", 1) from None
    if action == "up":
        _positive(
            args, "instance_count", "target", "poll", "worst_request_seconds", "startup_timeout", "download_timeout"
        )
        if args.archive is not None and not args.archive.exists():
            raise _Refused(
                f"--archive {args.archive} does not exist (build it with `langsam-studio deploy package`)", 1
            )
        if args.model_data is not None and not args.model_data.startswith("s3://"):
            raise _Refused(f"--model-data {args.model_data!r} is not an s3://bucket/key URL")
    elif action == "logs":
        _positive(args, "minutes", "lines")
    elif action == "invoke":
        _positive(args, "read_timeout")
        if args.async_s3 is not None and not args.async_s3.startswith("s3://"):
            raise _Refused(f"--async-s3 {args.async_s3!r} is not an s3://bucket/prefix URL")
        if args.output is not None:
            parent = args.output.parent
            if args.output.is_dir():
                raise _Refused(f"--output {args.output} is a folder; give a file name for the JSON answer", 1)
            if not parent.is_dir():
                raise _Refused(f"the folder {parent} for --output does not exist; create it first", 1)


_OUR_PACKAGES = frozenset({"cloud", "inference", "desktop_app"})


def _package_module() -> Any:
    """The ``package`` / ``test-local`` sub-commands. They are our own code (standard library only at
    import time), so an ImportError here is a bug: it propagates with its message, never hidden."""
    return importlib.import_module("desktop_app.cli.deploy_package_command")


def _missing_extra(err: ImportError) -> str | None:
    """The top-level name of a third-party module that is not installed, or None when ``err`` is not
    that (an import failing inside our own code, which must surface as it is)."""
    top = (getattr(err, "name", None) or "").partition(".")[0]
    if not isinstance(err, ModuleNotFoundError) or not top or top in _OUR_PACKAGES:
        return None
    return top


def _aws_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("AWS (options > environment > .env > profile/instance role)")
    g.add_argument(
        "--env-file",
        type=Path,
        help="a .env file (default ./.env if present); never overrides variables already set in the environment",
    )
    g.add_argument("--region", help="AWS region (AWS_DEFAULT_REGION)")
    g.add_argument("--profile", help="AWS profile from ~/.aws/config (AWS_PROFILE)")
    g.add_argument("--role", help="SageMaker execution role ARN (AWS_ARN_ROLE)")
    g.add_argument("--bucket", help="S3 bucket for the model data (MODEL_BUCKET), in the endpoint's region")
    g.add_argument("--endpoint-url", help=argparse.SUPPRESS)  # one URL for all services (moto, LocalStack)
    g.add_argument(
        "--runtime-url",
        help="send invocations to this URL instead of SageMaker, e.g. a local "
        "`langsam-studio serve` (it serves the same /endpoints/NAME/invocations path)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="deploy_action", metavar="ACTION")
    module = _package_module()
    for action, (adder, _) in _PACKAGE_HOOKS.items():
        text = {"package": module.PACKAGE_HELP, "test-local": module.TEST_LOCAL_HELP}[action]
        getattr(module, adder)(sub.add_parser(action, help=text))

    up = sub.add_parser("up", help="deploy or update an endpoint, wait, and check the model answers")
    up.add_argument("name", nargs="?", default="langsam-studio", help="deployment = endpoint name")
    src = up.add_mutually_exclusive_group()
    src.add_argument(
        "--archive",
        type=Path,
        help="model.tar.gz or package directory built by `deploy package` "
        "(a directory is uploaded unpacked and used as an S3 prefix)",
    )
    src.add_argument("--model-data", help="an archive already in S3 (s3://bucket/key)")
    up.add_argument("--image", help="container image URI (default: PyTorch inference DLC of the region)")
    up.add_argument("--instance-type", default="ml.g5.xlarge")
    up.add_argument("--instance-count", type=int, default=1)
    up.add_argument(
        "--load-seconds",
        metavar="SECONDS|REPORT.json",
        help="measured start-up: a number, or the JSON printed by `deploy test-local --json` (its "
        "startup_seconds and invoke_latency); sizes the server and health-check timeouts",
    )
    up.add_argument("--worst-request-seconds", type=float, help="the slowest request measured locally")
    up.add_argument(
        "--startup-timeout",
        type=int,
        help="ContainerStartupHealthCheckTimeoutInSeconds (60-3600; default sized from --load-seconds)",
    )
    up.add_argument(
        "--download-timeout",
        type=int,
        help="ModelDataDownloadTimeoutInSeconds (60-3600; default sized from the archive size)",
    )
    up.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="asynchronous inference (S3 in/out, up to 1 GB and 1 hour, can scale to zero)",
    )
    up.add_argument("--autoscale", metavar="MIN:MAX", help="target-tracking autoscaling, e.g. 1:3 (async: 0:2)")
    up.add_argument("--target", type=float, default=30.0, help="autoscaling target per instance (invocations/min)")
    up.add_argument("--serverless", action="store_true", help=argparse.SUPPRESS)  # explained and refused
    up.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra container environment")
    up.add_argument("--no-smoke", action="store_true", help="do not send a test request after InService")
    up.add_argument("--keep-on-failure", action="store_true", help="do not roll back on failure (to inspect)")
    up.add_argument("--preflight-only", action="store_true", help="run the checks and stop")
    up.add_argument("--no-verify", action="store_true", help="skip the package verification in preflight")
    up.add_argument("--poll", type=float, default=15.0, help=argparse.SUPPRESS)
    _aws_options(up)

    st = sub.add_parser("status", help="one endpoint's state, or every endpoint this tool created")
    st.add_argument("name", nargs="?")
    _aws_options(st)

    lg = sub.add_parser("logs", help="the endpoint's recent CloudWatch log lines, with a diagnosis")
    lg.add_argument("name", nargs="?", default="langsam-studio")
    lg.add_argument("--minutes", type=float, default=30.0)
    lg.add_argument("--lines", type=int, default=200)
    _aws_options(lg)

    inv = sub.add_parser("invoke", help="segment one image on the endpoint")
    inv.add_argument("name", nargs="?", default="langsam-studio")
    inv.add_argument("--image-file", type=Path, help="the image (default: a tiny built-in test image)")
    inv.add_argument("--text", help="text prompt, e.g. 'car. person.'")
    inv.add_argument("--box", help="x0,y0,x1,y1 in pixels")
    inv.add_argument("--point", action="append", default=[], help="x,y[,0|1] in pixels (repeatable)")
    inv.add_argument("--raw", action="store_true", help="send the image as the body, the prompt in a header")
    inv.add_argument("--read-timeout", type=float, default=75.0)
    inv.add_argument("--async-endpoint", help="an asynchronous endpoint for payloads over 6 MiB")
    inv.add_argument("--async-s3", help="s3://bucket/prefix for asynchronous requests")
    inv.add_argument("--output", type=Path, help="write the JSON answer here")
    _aws_options(inv)

    dn = sub.add_parser("down", help="delete the endpoint, its configs and models (stops billing)")
    dn.add_argument("name", nargs="?", default="langsam-studio")
    dn.add_argument("--delete-model-data", action="store_true", help="also delete the uploaded model.tar.gz")
    _aws_options(dn)
    parser.set_defaults(_deploy_parser=parser)


def _clients(args: argparse.Namespace) -> Any:
    from cloud.aws.env import AwsClients, resolve_settings

    settings = resolve_settings(
        env_file=args.env_file,
        region=args.region,
        profile=args.profile,
        role_arn=args.role,
        bucket=args.bucket,
        endpoint_url=args.endpoint_url,
    )
    if args.runtime_url:
        settings = replace(
            settings, service_endpoints={**settings.service_endpoints, "sagemaker-runtime": args.runtime_url}
        )
    return AwsClients(settings)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "deploy_action", None)
    if action is None:
        args._deploy_parser.print_help()
        return 2
    try:
        if action in _PACKAGE_HOOKS:
            return int(getattr(_package_module(), _PACKAGE_HOOKS[action][1])(args) or 0)
        _check_local(action, args)
        return _run_aws(action, args)
    except _Refused as err:  # a local mistake, found before any AWS call
        _err(f"error: {err}")
        return err.code
    except ModuleNotFoundError as err:
        missing = _missing_extra(err)
        if missing is None:
            raise  # an import inside our own code failed: a bug, shown with its message
        _err(
            f"error: `deploy {action}` needs the Python package '{missing}', which is not installed here "
            f"(pip install '{missing}' or reinstall langsam-studio with its dependencies)"
        )
        return 1


def _run_aws(action: str, args: argparse.Namespace) -> int:
    from cloud.aws.env import redact
    from inference.errors import StudioError

    try:
        return {"up": _up, "status": _status, "logs": _logs, "invoke": _invoke, "down": _down}[action](args)
    except (ImportError, _Refused):
        raise  # handled by run(): a missing third-party package is explained, anything else surfaces
    except StudioError as err:  # a CloudError, a bad prompt for `invoke`, a package that fails its check
        _err(redact(f"error: {err}"))
        return 1
    except Exception as err:  # noqa: BLE001 - botocore errors outside the explained paths
        from cloud.diagnosis import diagnose_exception

        d = diagnose_exception(err)
        _err(redact(f"error: {d.message} Fix: {d.fix} ({d.detail})"))
        return 1


def _progress_bar() -> Any:
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def sink(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="upload", file=sys.stderr
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return sink


def _parse_env(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _Refused(f"--env {pair!r} is not KEY=VALUE: write it as --env NAME=value")
        out[key] = value
    return out


def _measured(value: str | None) -> tuple[float | None, float | None]:
    """``(load seconds, worst request seconds)`` from a number or a `deploy test-local --json` report."""
    import json

    from cloud.aws.errors import DeployError

    if not value:
        return None, None
    try:
        return float(value), None
    except ValueError:
        pass
    try:
        report = json.loads(Path(value).read_text(encoding="utf-8"))
        load = float(report["startup_seconds"])
        latency = report.get("invoke_latency")
        return load, float(latency) if latency is not None else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeployError(
            f"--load-seconds {value!r} is neither a number nor a test-local JSON report ({exc}).",
            fix="Pass the start-up seconds, or the file written by `deploy test-local --json > f`.",
            code="unknown",
        ) from None


def _up(args: argparse.Namespace) -> int:
    from cloud.aws.env import describe_credentials, redact
    from cloud.deploy.flow import Reporter, UpOptions, deploy_up, preflight_only
    from cloud.deploy.spec import Autoscaling

    autoscaling = None
    if args.autoscale:
        low, _, high = args.autoscale.partition(":")
        if not (low.isdigit() and high.isdigit() and int(low) <= int(high) and int(high) >= 1):
            raise _Refused(
                f"--autoscale {args.autoscale!r} is not MIN:MAX with MIN <= MAX and MAX >= 1, e.g. --autoscale 1:3"
            )
        autoscaling = Autoscaling(
            min_instances=int(low), max_instances=int(high), target_invocations_per_instance=args.target
        )
    load, worst = _measured(args.load_seconds)
    options = UpOptions(
        name=args.name,
        archive=args.archive,
        model_data_url=args.model_data,
        image_uri=args.image,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        load_seconds=load,
        worst_request_seconds=args.worst_request_seconds or worst,
        use_async=args.use_async,
        autoscaling=autoscaling,
        serverless=args.serverless,
        extra_environment=_parse_env(args.env),
        smoke=not args.no_smoke,
        keep_on_failure=args.keep_on_failure,
        poll_s=args.poll,
        health_check_timeout_s=args.startup_timeout,
        download_timeout_s=args.download_timeout,
        verify_package=not args.no_verify,
    )
    clients = _clients(args)
    print(
        redact(
            f"credentials: {describe_credentials(clients.settings, clients.session)}; region {clients.region or '-'}"
        )
    )
    reporter = Reporter(
        say=lambda text: print(redact(text), flush=True),
        check=lambda result: print(redact(result.line()), flush=True),
        log=lambda line: print(redact(f"  | {line.stream.split('/')[-1][:12]} {line.message}"), flush=True),
        upload=_progress_bar(),
    )
    if args.preflight_only:
        report = preflight_only(clients, options, reporter=reporter)
        return 0 if report.ok else 1
    result = deploy_up(clients, options, reporter=reporter)
    print(
        f"endpoint {result.spec.endpoint_name} is InService ({result.applied.endpoint_action}); "
        f"invoke it with `langsam-studio deploy invoke {result.spec.endpoint_name}`"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from cloud.deploy.flow import endpoint_status, list_deployments
    from cloud.diagnosis import diagnose_failure_reason, mode

    sm = _clients(args).client("sagemaker")
    if args.name:
        summary = endpoint_status(sm, args.name)
        if summary is None:
            print(f"{args.name}: no such endpoint ({mode('endpoint-missing').fix})")
            return 1
        summaries = [summary]
    else:
        summaries = list_deployments(sm)
    if not summaries:
        print("no endpoints created by langsam-studio in this region")
        return 0
    for s in summaries:
        print(
            f"{s.name}: {s.status}, {s.instance_count or '?'} x {s.instance_type or '?'}"
            f"{' (async)' if s.is_async else ''}, config {s.config_name}, created {s.created or '?'}"
        )
        if s.failure_reason:
            d = diagnose_failure_reason(s.failure_reason)
            print(f"  failure: {s.failure_reason}\n  meaning: {d.message}\n  fix: {d.fix}")
    if any(s.status in {"InService", "Updating", "Creating"} for s in summaries):
        print(f"note: {mode('billing').message} {mode('billing').fix}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    from cloud.aws.env import redact
    from cloud.aws.logs import TailState, recent_lines
    from cloud.diagnosis import scan_log_lines

    batch = recent_lines(_clients(args).client("logs"), args.name, minutes=args.minutes, limit=args.lines)
    if batch.state is not TailState.OK:
        print(f"{args.name}: {batch.note}")
        return 0 if batch.state is TailState.NO_GROUP else 1
    for line in batch.lines:
        print(redact(f"{line.stream}: {line.message}"))
    for d in scan_log_lines(line.message for line in batch.lines):
        print(f"diagnosis: {d.title}: {d.message}\n  fix: {d.fix}\n  seen: {d.detail[:200]}")
    return 0


def _invoke_request(args: argparse.Namespace) -> tuple[bytes, str, dict[str, str]]:
    """``(body, content type, headers)`` of the request ``invoke`` sends, or :class:`_Refused`."""
    from cloud.endpoint.client import smoke_request_body
    from inference.errors import ImageLoadError, PromptError, StudioError
    from inference.prompts import Prompt
    from inference.protocol import SegmentRequest, encode_request

    package = _package_module()
    if args.image_file is None:
        if args.text is not None or args.box or args.point:
            raise _Refused("--text, --box and --point need --image-file (the image to segment)")
        if args.raw:
            raise _Refused("--raw needs --image-file (the built-in test image is always sent as JSON)")
        body, content_type = smoke_request_body()
        return body, content_type, {}
    if args.text is None and not args.box and not args.point:
        raise _Refused("say what to segment: --text 'car.', --box x0,y0,x1,y1 or --point x,y")
    problem = package.text_problem(args.text)
    if problem:
        raise _Refused(problem)
    box = _parse_box(args.box) if args.box else None
    points = tuple(_parse_point(p) for p in args.point)
    problem = package.image_problem(args.image_file)
    if problem:
        raise _Refused(problem, 1)
    prompt = Prompt(text=args.text, box=box, points=points)
    try:
        width, height = package.image_size(args.image_file)
        prompt.validate(width=width, height=height)  # a point or box outside the image
        image = args.image_file.read_bytes()
        return encode_request(SegmentRequest(prompt=prompt, image=image), raw=args.raw, max_bytes=1024**3)
    except PromptError as exc:
        raise _Refused(str(exc)) from None
    except (ImageLoadError, OSError) as exc:
        raise _Refused(f"--image-file {args.image_file} cannot be read: {exc}", 1) from None
    except StudioError as exc:  # ProtocolError (a raw prompt over the header limit), PayloadTooLargeError
        raise _Refused(str(exc), 2 if args.raw else 1) from None


def _invoke(args: argparse.Namespace) -> int:
    from cloud.endpoint.client import describe_answer, from_settings
    from inference.protocol import CUSTOM_ATTRIBUTES_HEADER, decode_response

    body, content_type, headers = _invoke_request(args)  # every local mistake is found before AWS
    clients = _clients(args)
    client = from_settings(
        clients.settings,
        args.name,
        read_timeout=args.read_timeout,
        clients=clients,
        async_endpoint_name=args.async_endpoint,
        async_s3_prefix=args.async_s3,
        endpoint_is_async=False if args.runtime_url else None,
    )  # a local server is real-time
    result = client.invoke(body, content_type=content_type, custom_attributes=headers.get(CUSTOM_ATTRIBUTES_HEADER))
    answer = decode_response(result.body)
    print(describe_answer(result))
    for i, c in enumerate(answer.prediction.candidates):
        print(
            f"  {i}: score {c.score:.3f} box {tuple(round(v) for v in c.box)} area {int(c.mask.sum())} px"
            + (f" label {c.label!r}" if c.label else "")
        )
    if args.output:
        args.output.write_bytes(result.body)
        print(f"answer written to {args.output}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from cloud.aws.env import redact
    from cloud.deploy.flow import Reporter, deploy_down

    result = deploy_down(
        _clients(args),
        args.name,
        delete_model_data=args.delete_model_data,
        reporter=Reporter(say=lambda text: print(redact(text), flush=True)),
    )
    if not result.deleted:
        print(f"nothing to delete for {args.name}")
    elif result.model_data and not args.delete_model_data:
        print(
            "kept the model data (re-deploying skips the upload): "
            + ", ".join(result.model_data)
            + "; add --delete-model-data to remove it"
        )
    return 0
