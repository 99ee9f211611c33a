"""The ``langsam-studio`` command: :mod:`desktop_app.cli.main` plus one module per sub-command."""

from desktop_app.cli.main import main

__all__ = ["main"]
