"""``langsam-studio app [PATH ...]``: open the desktop app (also what a bare ``langsam-studio`` does)."""

from __future__ import annotations

import argparse

HELP = "open the desktop app (the default when no command is given)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", help="an image or a folder to open")


def run(args: argparse.Namespace) -> int:
    from desktop_app.gui.app import run_app  # Qt only when the app really starts

    return run_app(list(args.paths))
