"""The ``langsam-studio`` command. No sub-command starts the app.

Each sub-command lives in its own module exposing ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only to build the parser, so they must import heavy
packages (torch, Qt, boto3) inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

SUBCOMMANDS: dict[str, str] = {
    "segment": "desktop_app.cli.segment_command",
    "models": "desktop_app.cli.models_command",
    "serve": "desktop_app.cli.serve_command",
    "deploy": "desktop_app.cli.deploy_command",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="langsam-studio",
        description="LangSAM Studio: segment images with text, point and box prompts. "
                    "Run without a command to open the app.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    app = sub.add_parser("app", help="open the desktop app (the default)")
    app.add_argument("paths", nargs="*", help="an image or a folder to open")
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # a part not installed in this environment (e.g. the server in the container)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in set(SUBCOMMANDS) | {"app", "-h", "--help"}:
        # ``langsam-studio`` or ``langsam-studio some/folder`` opens the app.
        from desktop_app.gui.app import run_app

        return run_app(args_list[1:] if args_list[:1] == ["app"] else args_list)
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command == "app":
        from desktop_app.gui.app import run_app

        return run_app(args.paths)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
