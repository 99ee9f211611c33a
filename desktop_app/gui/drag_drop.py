"""Drag and drop onto the window: an image file opens its folder with that image shown, a folder
opens as a project, both through ``window.navigation.open_path`` (so saving first and the
sample's copy rules apply). Several items: the first usable one is opened and the status bar says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

from desktop_app.core.annotation.project import is_image_file

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.main_window import MainWindow


def dropped_paths(event: QDropEvent) -> list[Path]:
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


def openable(paths: list[Path]) -> Path | None:
    """The first folder or image file among ``paths``."""
    for p in paths:
        if p.is_dir() or (p.is_file() and is_image_file(p)):
            return p
    return None


class DropOpener(QObject):
    """Accepts drops of images and folders on the whole window (the canvas and the panels do not
    take file drops themselves, so Qt hands them to the window)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        window.setAcceptDrops(True)
        window.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if obj is not self.window:
            return False
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            assert isinstance(event, (QDragEnterEvent, QDragMoveEvent))
            if openable(dropped_paths(event)) is not None:
                event.acceptProposedAction()
            else:
                event.ignore()
            return True
        if kind == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            self.open_dropped(dropped_paths(event))
            event.acceptProposedAction()
            return True
        return False

    def open_dropped(self, paths: list[Path]) -> bool:
        target = openable(paths)
        if target is None:
            names = ", ".join(p.name for p in paths[:3]) or "nothing"
            self.window.show_error(f"cannot open {names}: drop an image file or a folder of images")
            return False
        if len(paths) > 1:
            self.window.status_panel.message(f"opened {target.name} (the first of {len(paths)} dropped items)")
        self.window.navigation.open_path(str(target))
        return True
