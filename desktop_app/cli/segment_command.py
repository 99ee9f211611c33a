"""``langsam-studio segment``: run one prompt over images or folders and export the masks.

Exit codes: 0 all images done; 1 some images skipped (unreadable, prompt outside the image,
inference failed); 2 bad command line (bad syntax, no images, a prompt the backend cannot
take); 3 the backend cannot run (weights missing, package or device unavailable; or the prompt
assistant of --instruction could not answer); 4 the export
could not be written.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from desktop_app.cli import prompt_args
from desktop_app.core.backend_choices import AUTO, CHOICES, Capability, choice_names, cli_help, resolve_backend_name
from inference.device import DEVICE_CHOICES

_T = TypeVar("_T")

HELP = "segment images from the command line (text, points or a box) and export the masks"

EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, EXIT_BACKEND, EXIT_OUTPUT = 0, 1, 2, 3, 4
FORMAT_NAMES = ("coco", "labelme", "yolo", "png", "voc")  # = desktop_app.core.formats.registry, kept light here
EPILOG = (
    "examples:\n"
    '  langsam-studio segment photos/ --text "car. person." --format coco --out export/\n'
    "  langsam-studio segment a.jpg --point 120,80 --point 30,40,0 --format png --out masks/\n"
    "  langsam-studio segment a.jpg b.jpg --box 10,10,200,150 --label box --format yolo --out ds/\n"
    '  langsam-studio segment photos/ --backend sam3 --text "bolt." --exemplar 40,50,90,110 '
    "--exemplar 200,30,260,80,0 --format coco --out export/\n"
    "\nexit codes: 0 done, 1 some images skipped, 2 bad arguments or no images,\n"
    "            3 backend cannot run (e.g. weights missing), 4 export not written"
)


# -- argument parsing ---------------------------------------------------------------------------
def _argparse_type(parse: Callable[[str], _T]) -> Callable[[str], _T]:
    """An argparse ``type=`` of a :mod:`desktop_app.cli.prompt_args` parser (same name, same doc)."""

    @functools.wraps(parse)
    def convert(text: str) -> _T:
        try:
            return parse(text)
        except prompt_args.PromptArgError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


parse_point = _argparse_type(prompt_args.parse_point)
parse_box = _argparse_type(prompt_args.parse_box)
parse_exemplar = _argparse_type(prompt_args.parse_exemplar)


def _unit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="IMAGES_OR_FOLDER",
        help="image files and/or folders of images (not searched recursively)",
    )
    prompt = parser.add_argument_group("prompt (give --text, or --point/--box, or both)")
    prompt.add_argument("--text", help='what to find, e.g. "car. person." (needs the langsam or sam3 backend)')
    prompt.add_argument(
        "--instruction",
        metavar="WORDS",
        help="instead of --text: what to find in words; the prompt assistant (OpenAI or a "
        "compatible server, see `langsam-studio assist`) turns it into phrases first",
    )
    prompt.add_argument(
        "--point",
        action="append",
        type=parse_point,
        default=[],
        metavar="X,Y[,1|0]",
        help="a click in pixels; ,0 marks background; repeat for several",
    )
    prompt.add_argument("--box", type=parse_box, metavar="X0,Y0,X1,Y1", help="a box in pixels")
    prompt.add_argument(
        "--exemplar",
        action="append",
        type=parse_exemplar,
        default=[],
        metavar="X0,Y0,X1,Y1[,0]",
        help="(--backend sam3) an example box: find every object like it; ,0 marks a "
        "counter-example; repeat for several; alone or with --text",
    )
    prompt.add_argument(
        "--label", default="object", help="label of point/box results (text results are labelled by phrase)"
    )
    prompt.add_argument(
        "--box-threshold",
        type=_unit,
        default=None,
        help="detection score cut-off (0-1); for sam3 the score of each instance (class x presence probability)",
    )
    prompt.add_argument("--text-threshold", type=_unit, default=None, help="phrase match cut-off (0-1)")
    prompt.add_argument(
        "--max-detections",
        type=_positive_int,
        default=None,
        help="at most this many objects per image for text prompts",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--backend", metavar="|".join(choice_names()), help=cli_help(choice_names(), default=AUTO))
    model.add_argument("--model", help="model id, e.g. sam2.1_hiera_small (see `langsam-studio models list`)")
    model.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    remote = parser.add_argument_group("remote inference (instead of a local --backend)")
    remote.add_argument(
        "--server", metavar="URL", help="run on our own server (`langsam-studio serve`), e.g. http://gpu-box:8765"
    )
    remote.add_argument("--token", help="the server's bearer token (default: $LANGSAM_SERVER_TOKEN)")
    remote.add_argument("--endpoint", metavar="NAME", help="run on a deployed SageMaker endpoint")
    remote.add_argument("--region", help="the endpoint's AWS region (default: the AWS configuration)")
    remote.add_argument("--profile", help="the AWS profile for the endpoint (default: the AWS credential chain)")
    out = parser.add_argument_group("output")
    out.add_argument("--format", required=True, choices=FORMAT_NAMES, help="export format")
    out.add_argument("--out", required=True, metavar="DIR", help="folder to write the export into")
    out.add_argument("--polygons", action="store_true", help="COCO: polygons instead of RLE masks")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")


# -- running ------------------------------------------------------------------------------------
def _err(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"langsam-studio segment: {message}", file=sys.stderr)


def collect_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Image paths in the order given (folders listed naturally), and problems with inputs."""
    from desktop_app.core.annotation.project import ProjectFolder

    images: list[Path] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for raw in inputs:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = [path / name for name in ProjectFolder(path).images()]
            if not found:
                problems.append(f"'{raw}' has no images")
        elif path.is_file():
            found = [path]
        else:
            problems.append(f"'{raw}' does not exist")
            continue
        for image in found:
            key = image.resolve()
            if key not in seen:
                seen.add(key)
                images.append(image)
    return images, problems


def default_backend(text: str | None) -> str:
    """What ``auto`` means here: the best installed backend that can answer this prompt."""
    return resolve_backend_name(AUTO, needs=Capability.TEXT if text is not None else Capability.NONE)


@dataclass
class _Counts:
    images: int = 0
    objects: int = 0
    skipped: int = 0
    messages: set[str] = field(default_factory=set)


def _documents(image_paths: list[Path], images_dir: Path, backend, prompt, args, counts: _Counts, progress) -> Iterator:
    from desktop_app.core.annotation.document import ImageDocument, ImageStatus
    from desktop_app.core.prediction_policy import objects_from_prediction
    from inference.errors import InferenceError
    from inference.images import ImageSource, load_image

    for path in image_paths:
        progress.set_postfix_str(path.name[-30:], refresh=False)
        try:
            image = load_image(path)
            height, width = image.shape[:2]
            prompt.validate(
                width=width, height=height, allow_exemplars=backend.supports_exemplars, mask_input_size=None
            )
            prediction = backend.predict(image, prompt, source=ImageSource(path=str(path)))
            for message in prediction.messages:  # e.g. a phrase cut to SAM 3's 32 tokens: said once
                if message not in counts.messages:
                    counts.messages.add(message)
                    _err(message)
        except InferenceError as exc:  # a prompt that does not fit, unreadable image, inference failure
            counts.skipped += 1
            _err(f"skipped '{path}': {exc}")
            progress.update(1)
            continue
        doc = ImageDocument(
            image_name=path.relative_to(images_dir).as_posix(), width=width, height=height, status=ImageStatus.REVIEW
        )
        for obj in objects_from_prediction(
            prediction=prediction, prompt=prompt, fallback_label=args.label, needs_review=True
        ):
            doc.add(obj)
        counts.images += 1
        counts.objects += len(doc)
        progress.update(1)
        yield doc


def _remote_choice(args: argparse.Namespace) -> tuple[str | None, dict]:
    """``("server" | "sagemaker", create_backend options)`` for --server/--endpoint; ``(None, {})``
    for a local run; ``(None, {"error": sentence})`` for a contradictory command line."""
    server, endpoint = getattr(args, "server", None), getattr(args, "endpoint", None)
    if server and endpoint:
        return None, {"error": "give --server or --endpoint, not both"}
    if (server or endpoint) and args.backend not in (None, AUTO):
        return None, {
            "error": "--backend chooses a local backend: leave it out with --server/--endpoint "
            "(the server runs the backend it serves)"
        }
    if server:
        token = args.token or os.environ.get("LANGSAM_SERVER_TOKEN") or None
        return "server", {"url": server, "token": token, "return_logits": False}
    if endpoint:
        options = {"endpoint": endpoint, "region": args.region, "profile": args.profile, "return_logits": False}
        return "sagemaker", {k: v for k, v in options.items() if v is not None}
    if args.token or args.region or args.profile:
        return None, {"error": "--token goes with --server, --region/--profile with --endpoint"}
    return None, {}


def _instruction_phrases(args: argparse.Namespace) -> str | None:
    """The text prompt the prompt assistant suggests for --instruction (its phrases printed on
    stderr; a suggested threshold used unless --box-threshold was given), or None after saying why."""
    from desktop_app.core.assistant_config import ask, resolve_config
    from inference.errors import StudioError

    try:
        answer = ask(resolve_config(), args.instruction)
    except StudioError as exc:
        _err(f"the prompt assistant could not turn --instruction into phrases: {exc}")
        return None
    _err(f"the prompt assistant suggests: {answer.prompt_text()}")
    if args.box_threshold is None and answer.suggested_box_threshold() is not None:
        args.box_threshold = answer.suggested_box_threshold()
        _err(f"with its suggested --box-threshold {args.box_threshold:g}")
    return answer.prompt_text()


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from inference.errors import BackendUnavailableError, InferenceError, WeightsMissingError
    from inference.prompts import Prompt, normalise_text

    text = args.text
    if getattr(args, "instruction", None) is not None:
        if text is not None:
            _err("give --text or --instruction, not both")
            return EXIT_USAGE
        text = _instruction_phrases(args)
        if text is None:
            return EXIT_BACKEND
    if text is not None:
        try:
            text = normalise_text(text)
        except InferenceError as exc:
            _err(str(exc))
            return EXIT_USAGE
        if not text:
            _err('the --text prompt is empty: say what to segment, e.g. --text "car. person."')
            return EXIT_USAGE
    exemplars = tuple(getattr(args, "exemplar", None) or ())
    if text is None and not args.point and args.box is None and not exemplars:
        _err('no prompt: give --text "what to find", or --point X,Y and/or --box X0,Y0,X1,Y1')
        return EXIT_USAGE
    if exemplars and (args.point or args.box is not None):
        _err(
            "--exemplar finds every object like the example boxes; --point/--box segment one object: "
            "give one kind of prompt per run"
        )
        return EXIT_USAGE
    remote_run = getattr(args, "server", None) or getattr(args, "endpoint", None)
    if exemplars and args.backend in (None, AUTO) and not remote_run:
        _err("--exemplar needs --backend sam3 (auto never picks SAM 3: it has its own licence and is slow on a CPU)")
        return EXIT_USAGE
    if args.point and not any(p.positive for p in args.point) and args.box is None and text is None:
        _err("only negative points (X,Y,0) were given: add a positive point or a box")
        return EXIT_USAGE

    image_paths, problems = collect_images(args.inputs)
    for problem in problems:
        _err(problem)
    if not image_paths:
        _err("no images found: give image files or folders with images in them")
        return EXIT_USAGE
    if any("does not exist" in p for p in problems):
        return EXIT_USAGE
    images_dir = Path(os.path.commonpath([p.parent.resolve() for p in image_paths]))
    image_paths = [p.resolve() for p in image_paths]

    from inference.backends.registry import create_backend

    if args.backend is not None and args.backend not in CHOICES:
        _err(f"unknown backend '{args.backend}': choose one of {', '.join(choice_names())}")
        return EXIT_USAGE
    remote_name, remote = _remote_choice(args)
    if remote_name is None and remote:
        _err(remote["error"])
        return EXIT_USAGE
    name = remote_name or (default_backend(text) if args.backend in (None, AUTO) else args.backend)
    options = {"device": args.device, **remote} if remote_name else {"device": args.device}
    if args.model and not remote_name:
        options["model"] = args.model
    try:
        backend = create_backend(name, **options)
    except BackendUnavailableError as exc:
        _err(str(exc))
        return EXIT_USAGE if "unknown backend" in str(exc) else EXIT_BACKEND
    except (InferenceError, ValueError) as exc:  # e.g. an unknown model id
        _err(str(exc))
        return EXIT_USAGE
    if remote_name:  # what a remote backend answers is known once it has asked the server
        try:
            backend.ensure_loaded()
        except InferenceError as exc:
            _err(str(exc))
            return EXIT_BACKEND
    if text is not None and not backend.supports_text:
        _err(
            f"the '{name}' backend cannot find objects from text; use --backend langsam "
            f"(needs the SAM 2 and Grounding DINO weights: see `langsam-studio models list`), "
            f"or prompt with --point/--box"
        )
        return EXIT_USAGE
    if exemplars and not backend.supports_exemplars:
        _err(f"the '{name}' backend does not take example boxes (--exemplar); use --backend sam3")
        return EXIT_USAGE
    if text is None and not exemplars and not backend.supports_points:
        _err(f"the '{name}' backend takes only text prompts: give --text")
        return EXIT_USAGE
    try:
        backend.ensure_loaded()
    except (WeightsMissingError, BackendUnavailableError) as exc:
        _err(str(exc))
        return EXIT_BACKEND
    except InferenceError as exc:
        _err(f"the '{name}' backend could not start: {exc}")
        return EXIT_BACKEND
    if text is not None:
        try:  # over the text model's token limit (Grounding DINO: 256): one line, before any image
            backend.check_text_tokens(text)
        except InferenceError as exc:
            _err(f"--text: {exc}")
            return EXIT_USAGE

    prompt_options = {}
    for key in ("box_threshold", "text_threshold", "max_detections"):
        if getattr(args, key) is not None:
            prompt_options[key] = getattr(args, key)
    prompt = Prompt(
        points=tuple(args.point),
        box=args.box,
        text=text,
        exemplars=exemplars,
        multimask=text is None and not exemplars,
        **prompt_options,
    )

    from desktop_app.core.annotation.atomic import SaveError
    from desktop_app.core.annotation.labels import LabelSet
    from desktop_app.core.formats.common import FormatError
    from desktop_app.core.formats.registry import get_exporter
    from desktop_app.core.prediction_policy import text_phrases

    labels = LabelSet(text_phrases(text) if text else [args.label])
    options = {"segmentation": "polygon" if args.polygons else "rle"} if args.format == "coco" else {}
    counts = _Counts()
    progress = tqdm(
        total=len(image_paths),
        unit="image",
        desc=f"segment ({name})",
        disable=args.no_progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        written = get_exporter(args.format)(
            _documents(image_paths, images_dir, backend, prompt, args, counts, progress),
            images_dir=images_dir,
            out_dir=Path(args.out),
            labels=labels,
            **options,
        )
    except (FormatError, SaveError) as exc:
        progress.close()
        _err(f"the export failed: {exc}")
        return EXIT_OUTPUT
    finally:
        progress.close()
    print(
        f"segmented {counts.images} image{'s' * (counts.images != 1)}, found {counts.objects} "
        f"object{'s' * (counts.objects != 1)}; wrote {len(written)} file{'s' * (len(written) != 1)} "
        f"({args.format}) to {args.out}"
    )
    if counts.skipped:
        _err(f"{counts.skipped} image{'s were' if counts.skipped != 1 else ' was'} skipped (see above)")
        return EXIT_SKIPPED
    return EXIT_OK
