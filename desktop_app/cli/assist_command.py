"""``langsam-studio assist "INSTRUCTION"``: ask the prompt assistant (OpenAI or an
OpenAI-compatible server) for the phrases of a text prompt and print them, one per line.

The key comes from OPENAI_API_KEY or the app's secret store (Settings → OpenAI); the model and
base URL from --model/--base-url, OPENAI_MODEL/OPENAI_BASE_URL, or the settings. With --image the
picture is sent too (downscaled to a JPEG, at most 768 px); a notice on stderr says so.

Exit codes: 0 phrases printed; 1 the assistant could not answer (the one-line ``error:`` says
why and what to do); 2 bad arguments (a missing or unreadable --image, an empty instruction).
"""

from __future__ import annotations

import argparse
import sys

HELP = "ask the prompt assistant (OpenAI or a compatible server) which phrases to segment"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EPILOG = (
    "examples:\n"
    '  langsam-studio assist "every damaged car part, not reflections" --labels dent,scratch\n'
    '  langsam-studio assist "the fruit" --image bowl.jpg --base-url http://localhost:11434/v1 '
    "--model llava\n"
    "\nexit codes: 0 phrases printed, 1 the assistant could not answer, 2 bad arguments"
)


def _labels(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("instruction", help='what to find, in words, e.g. "every damaged car part, not reflections"')
    parser.add_argument(
        "--image", metavar="FILE", help="also send this image (downscaled JPEG, at most 768 px) so the phrases fit it"
    )
    parser.add_argument(
        "--labels",
        type=_labels,
        default=[],
        metavar="A,B,C",
        help="the project's label names: phrases that fit one are replaced by it",
    )
    parser.add_argument("--model", help="chat model (default: OPENAI_MODEL or Settings → OpenAI, else gpt-4o-mini)")
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="an OpenAI-compatible server, e.g. http://localhost:11434/v1 (default: OpenAI)",
    )
    parser.add_argument(
        "--timeout", type=_timeout, default=None, metavar="SECONDS", help="give up after this many seconds (default 60)"
    )


def _error(message: str) -> None:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)


def resolve_phrases(
    *,
    instruction: str,
    labels: list[str] | None = None,
    image: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
):
    """The assistant's answer for these options (raises a StudioError with the reason); prints the
    image notice on stderr when an image is sent. Shared with ``segment --instruction``."""
    from desktop_app.core.assistant_config import ask, resolve_config
    from inference.assistant import image_notice

    config = resolve_config(model=model, base_url=base_url, timeout=timeout)
    if image is not None:
        print(f"note: {image_notice(config.base_url)}", file=sys.stderr)
    return ask(config, instruction, labels=labels or (), image=image)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inference.assistant import AssistantImageError
    from inference.errors import StudioError

    if not args.instruction.strip():
        _error('the instruction is empty: say what to find, e.g. "every damaged car part, not reflections"')
        return EXIT_USAGE
    if args.image is not None and not Path(args.image).is_file():
        _error(f"the image '{args.image}' does not exist")
        return EXIT_USAGE
    try:
        answer = resolve_phrases(
            instruction=args.instruction,
            labels=args.labels,
            image=args.image,
            model=args.model,
            base_url=args.base_url,
            timeout=args.timeout,
        )
    except AssistantImageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except StudioError as exc:
        _error(str(exc))
        return EXIT_FAILED
    for phrase in answer.prompt_phrases():
        print(phrase)
    if answer.notes:
        print(f"note: {answer.notes}", file=sys.stderr)
    return EXIT_OK
