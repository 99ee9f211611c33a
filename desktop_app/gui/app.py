"""Start the Qt application: settings, the main window, then what to open.

The window is shown before anything slow happens: torch and the models are loaded in the
inference worker's thread after the window is up, never here.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from desktop_app.core.samples import SAMPLE_IMAGE
from inference.paths import APP_NAME


def unexpected_error_report(exc_type, exc, tb, window) -> str:
    """What to tell the person after a bug: what failed (where), what was saved — only what
    really was — and what they can do. Saves what can be saved first (``window.emergency_save``)."""
    frames = traceback.extract_tb(tb) if tb is not None else []
    where = f" in {frames[-1].name} ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    what = f"{exc_type.__name__}{where}: {exc}" if str(exc) else f"{exc_type.__name__}{where}"
    text = f"Something went wrong inside LangSAM Studio — a bug, not something you did ({what})."
    if window is None or not hasattr(window, "emergency_save"):
        return text + " Nothing could be saved automatically. Details are in the terminal."
    try:
        all_saved, unsaved = window.emergency_save()
    except Exception as save_exc:  # noqa: BLE001 - the report must never raise
        return text + f" Saving your annotations failed too ({save_exc}); do not close the window, try Ctrl+S."
    if all_saved:
        return text + " Your annotations were saved. You can keep working; details are in the terminal."
    names = ", ".join(unsaved[:5]) + (" …" if len(unsaved) > 5 else "")
    return (
        text + f" The annotations of {names} could NOT be saved yet; they are kept in memory. "
        "Keep the window open, fix the cause shown in the messages (bell) and press Ctrl+S."
    )


def _install_excepthook() -> None:
    """An unexpected error in a slot is printed and reported (what failed, what was saved); the
    app keeps running."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    def hook(exc_type, exc, tb) -> None:
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        app = QApplication.instance()
        if not isinstance(app, QApplication):  # None, or (never here) a widget-less QCoreApplication
            return
        # duck-typed: the top-level widget with emergency_save() is the main window (show_error too)
        window: Any = next((w for w in app.topLevelWidgets() if hasattr(w, "emergency_save") and w.isVisible()), None)
        text = unexpected_error_report(exc_type, exc, tb, window)
        if window is not None:
            window.show_error(text)
        if os.environ.get("QT_QPA_PLATFORM") != "offscreen":
            QMessageBox.critical(app.activeWindow(), "Unexpected error", text)

    sys.excepthook = hook


def initial_target(argv: Sequence[str], settings) -> tuple[str, str | None]:
    """What to open at start: ('path', p) from the command line, ('restore', folder) for the
    last session, ('sample', path) on a fresh install, or ('none', None)."""
    paths = [a for a in argv if not a.startswith("-")]
    if paths:
        return "path", os.path.abspath(paths[0])
    last = settings.last_folder
    if last and Path(last).is_dir():
        return "restore", last
    if not settings.first_run_done and SAMPLE_IMAGE.is_file():
        return "sample", str(SAMPLE_IMAGE)
    return "none", None


def create_window(argv: Sequence[str] = ()):
    """Build settings and the main window and schedule the initial open (used by tests too)."""
    from PySide6.QtCore import QTimer

    from desktop_app.gui.main_window import MainWindow
    from desktop_app.gui.settings import AppSettings

    settings = AppSettings()
    window = MainWindow(settings=settings)
    kind, target = initial_target(argv, settings)

    def open_initial() -> None:
        if kind == "path" and target:
            window.navigation.open_path(target)
        elif kind == "restore" and target:
            window.navigation.open_folder(target, select=settings.last_image or None)
        elif kind == "sample" and target:
            window.navigation.open_path(target)
        settings.first_run_done = True
        window.start_inference()

    QTimer.singleShot(0, open_initial)
    return window


def _install_logging() -> None:
    """Warnings and errors to stderr, with every known secret value redacted from each record
    (a handler filter, so records of child loggers such as botocore's are covered too)."""
    import logging

    from desktop_app.core.secrets import install_log_redaction

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()


def run_app(argv: Sequence[str]) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setApplicationName("LangSAM Studio")
    app.setOrganizationName(APP_NAME)
    _install_excepthook()
    _install_logging()
    window = create_window(argv)
    window.show()
    _close_on_signals(app, window)
    return app.exec()


def _close_on_signals(app, window) -> None:
    """Ctrl+C or SIGTERM in a terminal closes the window normally (saving first). Python runs
    signal handlers only when it has control, so a timer hands it control a few times a second."""
    import signal

    from PySide6.QtCore import QTimer

    def close(*_args) -> None:
        window.close()
        app.quit()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, close)
        except (ValueError, OSError):  # not the main thread, or the platform lacks it
            pass
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)
