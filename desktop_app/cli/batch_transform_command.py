"""``langsam-studio batch-transform``: segment a whole S3 folder with SageMaker Batch Transform.

Three forms (the first word after ``batch-transform`` says which)::

    batch-transform s3://bucket/images/ --text "car." --out s3://bucket/out/ --instances 2 \\
        --instance-type ml.g5.xlarge (--model NAME | --package PATH --role ARN) [--import FOLDER]
    batch-transform import s3://bucket/out/ --images FOLDER
    batch-transform status JOB_NAME

The job runs the deployed package on every object under the input prefix (one object = one
request; the prompt travels in the job's environment), shows its progress (status, results
written vs inputs, cost so far) and, with ``--import FOLDER``, brings the results back as project
documents to review. Headless parts: :mod:`cloud.batch_transform` and
:mod:`desktop_app.core.batch_transform_import`; the contract is in ``docs/deploy.md``.

Every argument is checked before any AWS call. Exit codes: 0 done; 1 the job or the import failed
(one ``error:`` line says why and what to do); 2 bad arguments; 130 interrupted (the job this run
started is stopped and the model it created deleted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "segment an S3 folder with SageMaker Batch Transform, and import the results for review"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EPILOG = (
    "forms:\n"
    "  batch-transform s3://BUCKET/images/ --text 'car.' --out s3://BUCKET/out/ --instances 2 \\\n"
    "      --instance-type ml.g5.xlarge --model NAME            (or --package model.tar.gz --role ARN)\n"
    "  batch-transform import s3://BUCKET/out/ --images FOLDER  (results -> project documents, status review)\n"
    "  batch-transform status JOB_NAME\n"
    "\nexit codes: 0 done, 1 failed, 2 bad arguments, 130 interrupted (the job is stopped)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from desktop_app.cli.deploy_command import _aws_options

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "target",
        nargs="+",
        metavar="INPUT | import RESULTS | status JOB",
        help="the input prefix s3://bucket/images/; or `import s3://bucket/out/`; or `status JOB`",
    )
    prompt = parser.add_argument_group("prompt (the same for every image)")
    prompt.add_argument("--text", help="what to find, e.g. 'car. person.' (needs a langsam package)")
    prompt.add_argument("--point", action="append", default=[], metavar="X,Y[,1|0]", help="a click in pixels")
    prompt.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box in pixels")
    prompt.add_argument("--box-threshold", type=float, help="detection score cut-off (0-1)")
    prompt.add_argument("--text-threshold", type=float, help="phrase match cut-off (0-1)")
    prompt.add_argument("--max-detections", type=int, help="at most this many objects per image")
    prompt.add_argument("--label", default="object", help="label of point/box results (text: by phrase)")
    job = parser.add_argument_group("job")
    job.add_argument("--out", help="where the results go: s3://bucket/out/ (not inside the input)")
    job.add_argument("--instances", type=int, default=1, help="instance count (default 1)")
    job.add_argument("--instance-type", default="ml.g5.xlarge")
    src = job.add_mutually_exclusive_group()
    src.add_argument("--model", help="an existing SageMaker model (e.g. NAME-m-<hash> made by `deploy up`)")
    src.add_argument("--package", type=Path, help="a package built by `deploy package`: uploaded and made a model")
    job.add_argument("--name", default="langsam-batch", help="stem of the job and model names")
    job.add_argument("--image", help="container image URI (with --package; default: the package's kind)")
    job.add_argument(
        "--load-seconds",
        metavar="SECONDS|REPORT.json",
        help="measured model load (sizes the invocation timeout), as for `deploy up`",
    )
    job.add_argument("--invocation-timeout", type=int, help="seconds per image (1-3600; default sized)")
    job.add_argument("--retries", type=int, default=1, help="retries of a failed image (0-3)")
    job.add_argument("--transform-ami", help="TransformAmiVersion of the instances (e.g. for a newer GPU driver)")
    job.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra job environment")
    job.add_argument("--no-wait", action="store_true", help="start the job and return (see `status JOB`)")
    job.add_argument("--keep-on-failure", action="store_true", help="do not stop/delete on failure (to inspect)")
    job.add_argument("--poll", type=float, default=30.0, help=argparse.SUPPRESS)
    imp = parser.add_argument_group("import")
    imp.add_argument(
        "--import",
        dest="import_folder",
        type=Path,
        metavar="FOLDER",
        help="after the job: import the results into this folder's project",
    )
    imp.add_argument("--images", type=Path, metavar="FOLDER", help="`import`: the project folder of the images")
    _aws_options(parser)


class _Refused(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _prompt_request(args: argparse.Namespace, *, required: bool) -> Any:
    """The :class:`SegmentRequest` (no image) of --text/--point/--box, or None when none is given."""
    from desktop_app.cli import deploy_command as D
    from inference.errors import StudioError
    from inference.prompts import Prompt, normalise_text
    from inference.protocol import SegmentRequest

    if args.text is None and not args.point and not args.box:
        if required:
            raise _Refused("say what to segment: --text 'car.', --box x0,y0,x1,y1 or --point x,y")
        return None
    try:
        text = normalise_text(args.text) if args.text is not None else None
        if args.text is not None and not text:
            raise _Refused("the --text prompt is empty: say what to segment, e.g. --text 'car. person.'")
        points = tuple(D._parse_point(p) for p in args.point)
        box = D._parse_box(args.box) if args.box else None
    except D._Refused as exc:
        raise _Refused(str(exc)) from None
    except StudioError as exc:
        raise _Refused(f"--text: {exc}") from None
    if points and not any(p.positive for p in points) and box is None and text is None:
        raise _Refused("only negative points (X,Y,0) were given: add a positive point or a box")
    options: dict[str, Any] = {}
    for key in ("box_threshold", "text_threshold"):
        value = getattr(args, key)
        if value is not None:
            if not 0.0 <= value <= 1.0:
                raise _Refused(f"--{key.replace('_', '-')} must be between 0 and 1, got {value}")
            options[key] = value
    if args.max_detections is not None:
        if not 1 <= args.max_detections <= 1000:
            raise _Refused(f"--max-detections must be 1-1000, got {args.max_detections}")
        options["max_detections"] = args.max_detections
    prompt = Prompt(text=text, points=points, box=box, multimask=text is None, **options)
    return SegmentRequest(prompt=prompt)


def _s3(value: str | None, option: str) -> str:
    if not value or not value.startswith("s3://") or not value[5:].split("/", 1)[0]:
        raise _Refused(f"{option} {value!r} is not an s3://bucket/prefix/ URL")
    return value if value.endswith("/") else value + "/"


def _folder(path: Path | None, option: str) -> Path:
    if path is None:
        raise _Refused(f"{option} FOLDER is needed: the project folder holding the images")
    if not path.is_dir():
        raise _Refused(f"{option} {path} is not a folder", EXIT_FAILED if path.exists() else EXIT_USAGE)
    return path


def run(args: argparse.Namespace) -> int:
    from desktop_app.cli.deploy_command import _missing_extra

    words = list(args.target)
    try:
        if words[0] == "import":
            if len(words) != 2:
                raise _Refused("write it as: batch-transform import s3://bucket/out/ --images FOLDER")
            return _import(args, _s3(words[1], "the results prefix"), _folder(args.images, "--images"))
        if words[0] == "status":
            if len(words) != 2:
                raise _Refused("write it as: batch-transform status JOB_NAME")
            return _aws(_status, args, words[1])
        if len(words) != 1:
            raise _Refused(f"one input prefix is expected, got {len(words)}: {' '.join(words)}")
        return _aws(_transform, args, _check_transform(args, words[0]))
    except _Refused as err:
        _err(f"error: {err}")
        return err.code
    except ModuleNotFoundError as err:
        missing = _missing_extra(err)
        if missing is None:
            raise
        _err(
            f"error: `batch-transform` needs the Python package '{missing}', which is not installed here "
            f"(pip install '{missing}' or reinstall langsam-studio with its dependencies)"
        )
        return EXIT_FAILED


def _check_transform(args: argparse.Namespace, source: str) -> dict[str, Any]:
    """Everything checkable without AWS: a typo is never reported as an AWS error."""
    from desktop_app.cli import deploy_command as D
    from inference.batch_prompt import encode_batch_prompt
    from inference.protocol import ProtocolError

    input_uri = _s3(source, "the input")
    if args.out is None:
        raise _Refused("--out s3://bucket/out/ is needed: where the results go")
    output_uri = _s3(args.out, "--out")
    if output_uri.startswith(input_uri):
        raise _Refused(f"--out {output_uri} is inside the input {input_uri}; write the results elsewhere")
    if args.instances < 1:
        raise _Refused(f"--instances must be at least 1, got {args.instances}")
    if args.invocation_timeout is not None and not 1 <= args.invocation_timeout <= 3600:
        raise _Refused(f"--invocation-timeout must be 1-3600 seconds, got {args.invocation_timeout}")
    if not 0 <= args.retries <= 3:
        raise _Refused(f"--retries must be 0-3, got {args.retries}")
    if args.poll <= 0:
        raise _Refused("--poll must be greater than 0")
    if args.model is None and args.package is None:
        raise _Refused("say which model runs: --model NAME (an existing model) or --package PATH")
    if args.package is not None and not args.package.exists():
        raise _Refused(
            f"--package {args.package} does not exist (build it with `langsam-studio deploy package`)", EXIT_FAILED
        )
    if args.import_folder is not None:
        _folder(args.import_folder, "--import")
        if args.no_wait:
            raise _Refused("--import needs the job to finish: leave out --no-wait (or import later)")
    request = _prompt_request(args, required=True)
    try:
        prompt_json = encode_batch_prompt(request)
    except ProtocolError as exc:
        raise _Refused(str(exc)) from None
    try:
        env = D._parse_env(args.env)
    except D._Refused as exc:
        raise _Refused(str(exc)) from None
    return {
        "input_uri": input_uri,
        "output_uri": output_uri,
        "prompt_json": prompt_json,
        "env": env,
        "prompt": request.prompt,
    }


def _aws(action: Any, args: argparse.Namespace, value: Any) -> int:
    from cloud.aws.env import redact
    from inference.errors import StudioError

    try:
        return int(action(args, value))
    except (ImportError, _Refused):
        raise
    except StudioError as err:
        _err(redact(f"error: {err}"))
        return EXIT_FAILED
    except Exception as err:  # noqa: BLE001 - botocore errors outside the explained paths
        from cloud.diagnosis import diagnose_exception

        d = diagnose_exception(err)
        _err(redact(f"error: {d.message} Fix: {d.fix} ({d.detail})"))
        return EXIT_FAILED


def _transform(args: argparse.Namespace, checked: dict[str, Any]) -> int:
    from cloud.aws.env import describe_credentials, redact
    from cloud.batch_transform.job import TransformOptions, run_transform
    from cloud.deploy.flow import Reporter
    from cloud.pricing import PRICES_NOTE, format_usd, hourly_price
    from desktop_app.cli import deploy_command as D

    load, worst = D._measured(args.load_seconds)
    options = TransformOptions(
        input_uri=checked["input_uri"],
        output_uri=checked["output_uri"],
        prompt_json=checked["prompt_json"],
        instance_type=args.instance_type,
        instance_count=args.instances,
        model_name=args.model,
        package=args.package,
        name=args.name,
        image_uri=args.image,
        load_seconds=load,
        worst_request_seconds=worst,
        invocation_timeout_s=args.invocation_timeout,
        max_retries=args.retries,
        transform_ami_version=args.transform_ami,
        extra_environment=checked["env"],
        wait=not args.no_wait,
        keep_on_failure=args.keep_on_failure,
        poll_s=args.poll,
    )
    clients = D._clients(args)
    print(
        redact(
            f"credentials: {describe_credentials(clients.settings, clients.session)}; region {clients.region or '-'}"
        )
    )
    price = hourly_price(args.instance_type)
    print(
        f"cost: {args.instances} × {args.instance_type} at about "
        f"{format_usd(price) + '/h each' if price is not None else 'an unknown price (not in the table)'}, "
        f"billed while the job runs. {PRICES_NOTE}"
    )
    reporter = Reporter(
        say=lambda text: print(redact(text), flush=True),
        log=lambda line: print(redact(f"  | {line.stream.split('/')[-1][:12]} {line.message}"), flush=True),
        upload=D._progress_bar(),
    )
    result = run_transform(clients, options, reporter=reporter, on_progress=lambda p: print(p.line(), flush=True))
    if not options.wait:
        print(
            f"transform job {result.job_name} started; follow it with "
            f"`langsam-studio batch-transform status {result.job_name}`"
        )
        return EXIT_OK
    print(f"transform job {result.job_name} completed; results under {options.output_uri}")
    if result.model_created:
        print(f"kept the model {result.model_name} (models cost nothing; a re-run reuses it)")
    if args.import_folder is None:
        print(f"import them for review: langsam-studio batch-transform import {options.output_uri} --images FOLDER")
        return EXIT_OK
    return _import(args, options.output_uri, args.import_folder, clients=clients, prompt=checked["prompt"])


def _status(args: argparse.Namespace, job_name: str) -> int:
    from cloud.batch_transform.job import failure_error, job_status

    job, progress = job_status(_clients_of(args), job_name)
    print(progress.line())
    if progress.status in {"Failed", "Stopped"}:
        err = failure_error(
            job, done=progress.done, total=progress.total, output_uri=job["TransformOutput"]["S3OutputPath"]
        )
        print(f"  failure: {progress.failure_reason or '-'}\n  meaning: {err.message}\n  fix: {err.fix}")
        return EXIT_FAILED
    return EXIT_OK


def _clients_of(args: argparse.Namespace) -> Any:
    from desktop_app.cli.deploy_command import _clients

    return _clients(args)


def _import(
    args: argparse.Namespace, results_uri: str, folder: Path, *, clients: Any = None, prompt: Any = None
) -> int:
    """Records -> project documents (status review). The prompt: the run's manifest, else the options."""
    return _aws(_do_import, args, (results_uri, folder, clients, prompt))


def _do_import(args: argparse.Namespace, value: tuple[str, Path, Any, Any]) -> int:
    from cloud.batch_transform.results import iter_records, read_manifest
    from desktop_app.core.annotation.project import ProjectFolder
    from desktop_app.core.batch_transform_import import import_records
    from inference.batch_prompt import decode_batch_prompt

    results_uri, folder, clients, prompt = value
    given = _prompt_request(args, required=False) if prompt is None else None
    project = ProjectFolder(folder)  # checked before any AWS call (local mistakes first)
    clients = clients or _clients_of(args)
    s3 = clients.client("s3")
    if prompt is None:
        manifest = read_manifest(s3, results_uri)
        if manifest is not None and manifest.get("prompt"):
            prompt = decode_batch_prompt(str(manifest["prompt"])).prompt
            if given is not None:
                _err(
                    "warning: the results were made with the prompt of their job (from its manifest); "
                    "--text/--point/--box are ignored"
                )
        elif given is not None:
            prompt = given.prompt
        else:
            raise _Refused(
                f"{results_uri} has no langsam-batch-transform.json manifest: give the job's prompt "
                "with --text/--point/--box so the objects record what made them",
                EXIT_FAILED,
            )
    summary = import_records(project, iter_records(s3, results_uri), prompt=prompt, fallback_label=args.label)
    for line in summary.lines():
        print(line)
    if summary.records == 0:
        _err(
            f"error: there are no .out records under {results_uri} (has the job finished? "
            "see `batch-transform status JOB`)"
        )
        return EXIT_FAILED
    if summary.problems and not summary.images_changed and not summary.duplicates_skipped and not summary.no_objects:
        _err(f"error: nothing was imported ({len(summary.problems)} problem(s), listed above)")
        return EXIT_FAILED
    print(f"open {folder} in LangSAM Studio: the new objects are marked for review")
    return EXIT_OK
