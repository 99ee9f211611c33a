"""The ``langsam-studio`` command. No sub-command (or only paths) starts the app.

Each sub-command lives in its own module of this package exposing ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only to build the parser,
so they import heavy packages (torch, Qt, boto3) inside ``run``.

A sub-command whose module cannot be imported because a third-party package is missing (an
optional part not installed in this environment) is still listed; running it says which package
is missing and exits 1. Any other import failure is a bug in our code and is raised, never hidden.
An unknown sub-command is an argument error (exit 2) naming the known ones.

Exit codes: 0 success, 1 the command failed (its message says why), 2 bad arguments,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import NoReturn

SUBCOMMANDS: dict[str, str] = {
    "app": "desktop_app.cli.app_command",
    "segment": "desktop_app.cli.segment_command",
    "import": "desktop_app.cli.import_command",
    "assist": "desktop_app.cli.assist_command",
    "models": "desktop_app.cli.models_command",
    "serve": "desktop_app.cli.serve_command",
    "deploy": "desktop_app.cli.deploy_command",
    "batch-transform": "desktop_app.cli.batch_transform_command",
}
OUR_PACKAGES = frozenset({"desktop_app", "inference", "cloud"})
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def version() -> str:
    try:
        return metadata.version("langsam-studio")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: ...`` and where to read the usage, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see: {self.prog} --help)\n")


def _import_subcommand(module_name: str) -> ModuleType | str:
    """The sub-command's module, or a sentence naming the missing third-party package."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing in OUR_PACKAGES:
            raise  # our own code is broken: show it, do not hide the command
        return (
            f"this command needs the Python package '{missing}', which is not installed here "
            f"(pip install '{missing}' or reinstall langsam-studio with its dependencies)"
        )


def _unavailable(reason: str) -> Callable[[argparse.Namespace], int]:
    def run(_args: argparse.Namespace) -> int:
        print(f"error: {reason}", file=sys.stderr)
        return EXIT_FAILED

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="langsam-studio",
        description="LangSAM Studio: segment images with text, point and box prompts. "
        "Run without a command (or with an image or folder) to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = _import_subcommand(module_name)
        if isinstance(module, str):
            p = sub.add_parser(name, help=f"(unavailable: {module})", add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(_run=_unavailable(module))
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _opens_app(args: Sequence[str]) -> bool:
    """Whether these arguments mean "open the app": none, or only existing paths."""
    return not args or all(not a.startswith("-") and Path(a).exists() for a in args)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] != ["app"] and _opens_app(args_list):
        args_list = ["app", *args_list]  # ``langsam-studio`` or ``langsam-studio some/folder``
    parser = build_parser()
    args = parser.parse_args(args_list)  # unknown command or bad argument: message + exit 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
