"""Opening folders and images in the window: the Qt side of :class:`desktop_app.core.navigation.Navigator`.

File → Open image / Open folder, a dropped file, a recent folder and the start-up target all go
through :meth:`ImageNavigation.open_path` / :meth:`ImageNavigation.open_folder`: the folder
becomes the project (its labels, the file list) and its first image (or the one asked for) opens.

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
from PySide6.QtWidgets import QFileDialog

from desktop_app.core.annotation.document import ImageDocument
from desktop_app.core.navigation import Navigator, NavState
from desktop_app.gui.widgets.empty_state import EmptyState
from desktop_app.gui.widgets.file_list import FileEntry
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

    # -- folders --------------------------------------------------------------------------
    def ask_open_image(self) -> None:
        w = self.window
        start = w.settings.last_folder or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            w, "Open image", start, "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)"
        )
        if path:
            self.open_path(path)

    def ask_open_folder(self) -> None:
        w = self.window
        folder = QFileDialog.getExistingDirectory(w, "Open folder", w.settings.last_folder or str(Path.home()))
        if folder:
            self.open_folder(folder)

    def open_path(self, path: str) -> None:
        """A folder opens as a project; an image opens its folder with that image shown. The
        bundled sample is copied to the user's data folder first (never write in the package)."""
        from desktop_app.core.samples import is_bundled_sample, user_copy

        p = Path(path)
        if p.is_dir():
            self.open_folder(str(p))
            return
        if not p.is_file():
            self.window.show_error(f"'{path}' does not exist")
            return
        if is_bundled_sample(p):
            p = user_copy(p)
        self.open_folder(str(p.parent), select=p.name)

    def open_folder(self, folder: str, *, select: str | None = None) -> bool:
        from desktop_app.core.annotation.labels import ProjectFileError
        from desktop_app.core.annotation_location import open_project

        w = self.window
        w.flush_saves()
        if w.autosaver.unsaved() and not w.save_guard.confirm_close():
            return False
        try:
            project = open_project(folder, w.settings.annotation_folders)
            labels = project.load_labels()
            names = project.images()
        except (OSError, ProjectFileError) as exc:
            w.show_error(str(exc))
            return False
        w.project, w.current_name = project, None
        w.label_editor.set_project(project, labels)
        w.autosaver.set_document(None, None)
        self.clear()
        w.settings.last_folder = str(Path(folder).resolve())
        w.editing.recent.add(w.settings.last_folder)  # File → Open Recent
        self.refresh_file_list()
        w.save_guard.update_title()
        if not names:
            self.clear(
                kind="empty-folder",
                title=f"No images in {Path(folder).name}",
                text=f"'{folder}' has no image files. Copy images into it, or open "
                "another folder (Ctrl+U) or an image (Ctrl+O).",
            )
            w._refresh_objects()
            w.status_panel.message(f"no images in {folder}")
            return True
        w.open_image(select if select in names else names[0])
        return True

    def refresh_file_list(self) -> None:
        """Re-read every image's summary (header line only) and the labels they use."""
        w = self.window
        if w.project is None:
            return
        summaries = w.project.summaries()
        w.file_list.set_entries(
            [FileEntry(name=s.image_name, status=s.status, object_count=s.object_count) for s in summaries]
        )
        w.label_editor.ensure([n for s in summaries for n in s.labels], save=False)

    def reload_from_disk(self, _result=None) -> None:
        """A batch or an import wrote documents on disk: re-read labels, the list and the image on screen."""
        w = self.window
        if w.project is None:
            return
        self.refresh_file_list()
        w.label_editor.save()
        for name in w.project.images():  # the batch's files are newer than our copies
            w.controller.histories.forget(str(w.project.image_path(name)))
        if w.current_name:
            w.autosaver.set_document(None, None)
            w.open_image(w.current_name, force=True)

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
