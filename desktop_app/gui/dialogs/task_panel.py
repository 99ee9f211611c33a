"""The bottom of a dialog that runs one job (File -> Export, File -> Import): a progress bar, a
read-only log, the action button (the default: Enter starts the job) and Close."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPlainTextEdit, QProgressBar, QPushButton


@dataclass(frozen=True)
class TaskPanel:
    progress_bar: QProgressBar
    log: QPlainTextEdit
    action_button: QPushButton
    close_button: QPushButton
    buttons: QDialogButtonBox


def task_panel(dialog: QDialog, action: str, start: Callable[[], object]) -> TaskPanel:
    """The widgets, with ``action`` (the button's text) running ``start`` and Close rejecting ``dialog``."""
    progress_bar = QProgressBar()
    log = QPlainTextEdit()
    log.setReadOnly(True)
    action_button = QPushButton(action)
    action_button.setDefault(True)
    action_button.clicked.connect(start)
    close_button = QPushButton("Close")
    close_button.clicked.connect(dialog.reject)
    buttons = QDialogButtonBox()
    buttons.addButton(action_button, QDialogButtonBox.ButtonRole.ActionRole)
    buttons.addButton(close_button, QDialogButtonBox.ButtonRole.RejectRole)
    return TaskPanel(progress_bar, log, action_button, close_button, buttons)
