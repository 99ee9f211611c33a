"""Opening images in the window: the Qt side of :class:`desktop_app.core.navigation.Navigator`.

Every way to open an image (D / A, the file list, "Open anyway", a folder's first image) goes
through :meth:`ImageNavigation.open`. The navigator decides; the controller loads (nothing is
editable while it does); the answer is either the image on screen (``document_loaded``) or a
failed image: the canvas says why (:class:`EmptyState`), the file list marks it, and D / A move
on. The document for an image comes from, in order: the autosaver (changes whose write failed),
the undo history of a recently visited image (so Ctrl+Z still works after D, A), the disk —
through :meth:`ProjectFolder.open_document`, which moves a damaged or mismatched file aside.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QDesktopServices

from desktop_app.core.annotation.document import ImageDocument
from desktop_app.core.navigation import Navigator, NavState
from desktop_app.gui.widgets.empty_state import EmptyState
from desktop_app.gui.widgets.notifications import Level


class ImageNavigation(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.nav = Navigator()
        self.empty = EmptyState(window.canvas)
        c = window.controller
        c.report_load_failures_as_errors = False
        c.load_failed.connect(self._on_failed)
        c.document_loaded.connect(self._on_loaded)
        # the annotation file as it was when our in-memory copy matched it (loaded or saved)
        self._stamps: dict[str, tuple[int, int, int] | None] = {}
        window.autosaver.saved.connect(self._on_saved)
        # called with the name before an image is opened (the background batch leaves it alone)
        self.on_open: list[Callable[[str], None]] = []

    # -- requests ---------------------------------------------------------------------------
    def open(self, name: str, *, force: bool = False) -> None:
        w = self.window
        if w.project is None:
            return
        for hook in self.on_open:
            hook(name)
        action = self.nav.request(name, force=force)
        if action.kind == "nothing":
            return
        if action.kind == "restore":  # D then A before the next image appeared: stay here
            w.controller.cancel_load()
            w._loading_name = None
            w.file_list.set_current(name)
            return
        w.flush_saves()
        w._loading_name = name
        w.file_list.set_current(name)
        if w.controller.image is None:
            self.empty.show_state("loading", f"Opening {name}…", "")
        w.controller.load_image(str(w.project.image_path(name)), self._provider(w.project, name))

    def step(self, delta: int) -> None:
        names = self.window.file_list.visible_names()
        if not names:
            return
        name = self.nav.step(names, delta)
        if name is None:
            self.window.status_panel.message("this is the last image" if delta > 0 else "this is the first image")
        else:
            self.open(name)

    def open_anyway(self, name: str) -> None:
        """Open an image past the pixel limit (the person chose it)."""
        w = self.window
        if w.project is None:
            return
        w.controller.cache.allow_large(str(w.project.image_path(name)))
        self.open(name, force=True)

    def clear(self, *, kind: str = "", title: str = "", text: str = "") -> None:
        """Nothing to show: the canvas is cleared and not editable; ``title`` says why."""
        self.nav.clear()
        self.window.controller.clear()
        self.window._loading_name = None
        if title:
            self.empty.show_state(kind, title, text)
        else:
            self.empty.clear()

    @property
    def state(self) -> NavState:
        return self.nav.state

    # -- the document of an image -----------------------------------------------------------
    def _provider(self, project, name: str):
        w = self.window

        def provide(image) -> ImageDocument:
            doc = w.autosaver.in_memory(project, name)  # changes not on disk yet: the person's work
            if doc is None:
                doc = w.controller.histories.document_for(image.path)
                if doc is not None and self._stamps.get(image.path, 0) != _stamp(project, name):
                    w.controller.histories.forget(image.path)  # rewritten elsewhere: read it again
                    doc = None
            if doc is not None and (doc.width, doc.height) == (image.width, image.height):
                return doc
            stamp = _stamp(project, name)
            opened = project.open_document(name, size=(image.width, image.height))
            self._stamps[image.path] = stamp if opened.backup is None else _stamp(project, name)
            if opened.backup is not None:
                self._tell_backup(name, Path(opened.backup), opened.problem or "")
            return opened.document

        return provide

    def _tell_backup(self, name: str, backup: Path, problem: str) -> None:
        self.window.status_panel.center.notify(
            f"The annotations of {name} could not be used ({problem}). They were moved, unchanged, to '{backup}'",
            level=Level.WARNING,
            key=f"backup:{name}",
            hint="The image starts with no objects; open the backup to copy what you need.",
            actions=[
                ("Open backup", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(backup)))),
                ("Start fresh", lambda: None),
            ],
        )

    # -- answers ----------------------------------------------------------------------------
    def _on_saved(self, name: str) -> None:
        project = self.window.project
        if project is not None:
            self._stamps[str(project.image_path(name))] = _stamp(project, name)

    def _on_loaded(self, path: str, _document) -> None:
        name = Path(path).name
        self.nav.loaded(name)
        self.empty.clear()
        if self.window.file_list.model.note(name) in ("cannot open", "too large"):
            self.window.file_list.set_note(name, "")

    def _on_failed(self, path: str, message: str, too_large: bool) -> None:
        w = self.window
        name = Path(path).name
        if not self.nav.failed(name, message, too_large=too_large):
            return
        w._loading_name = None
        w.current_name = name
        w.autosaver.set_document(None, None)
        w._refresh_objects()
        w.file_list.set_note(name, "too large" if too_large else "cannot open")
        actions = [("Skip to next image (D)", lambda: self.step(1))]
        if too_large:
            actions.insert(0, ("Open anyway", lambda: self.open_anyway(name)))
            hint = (
                "Open it anyway if this computer has the memory for it, raise the pixel limit in "
                "the settings, or skip it with D / A."
            )
        else:
            hint = "Nothing was changed. Replace or fix the file, or skip it with D / A."
        self.empty.show_state("failed", f"{name} could not be opened", f"{message}\n\n{hint}", actions)
        w.status_panel.center.notify(
            f"{name} could not be opened: {message}", level=Level.INFO, hint=hint, key=f"open:{name}"
        )  # the canvas says it; kept in the history


def _stamp(project, name: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(project.annotation_path(name))
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
