"""What the window does when saving fails: say it, mark it, retry it, and never lose it.

:class:`SaveGuard` listens to the :class:`~desktop_app.gui.autosave.Autosaver`:

* a failed write marks the image "not saved" in the file list and the window title and posts an
  error that stays until the image is saved (the autosaver retries with a growing delay; "Save
  again" retries now). A folder that cannot be written (permissions, read-only disk) offers at
  once to save the annotations to another folder (kept per folder in the app's settings);
* a file changed on disk by someone else (another window, another computer) is never
  overwritten silently: the person chooses Reload theirs / Keep mine / Save mine as a copy;
* closing the window with unsaved work asks: Save again / Discard / Cancel.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox

from desktop_app.gui.widgets.notifications import Level

_NO_WRITE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST}


def _errno_of(exc: BaseException | None) -> int | None:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno:
            return exc.errno
        exc = exc.__cause__
    return None


class SaveGuard(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        saver = window.autosaver
        saver.failed.connect(self._on_failed)
        saver.saved.connect(self._on_saved)
        saver.conflict.connect(self._on_conflict)
        saver.state_changed.connect(self.update_marks)

    # -- marks ------------------------------------------------------------------------------
    def update_marks(self) -> None:
        w = self.window
        failed = {e.name for e in w.autosaver.failed_entries()}
        for entry in w.file_list.model.entries():
            w.file_list.set_note(
                entry.name,
                "not saved"
                if entry.name in failed
                else ("" if w.file_list.model.note(entry.name) == "not saved" else w.file_list.model.note(entry.name)),
            )
        self.update_title()

    def update_title(self) -> None:
        w = self.window
        title = "LangSAM Studio"
        if w.project is not None:
            title += f" — {Path(w.project.folder).name}"
        if w.current_name:
            title += f" — {w.current_name}"
        failed = w.autosaver.failed_entries()
        if failed:
            title += " (not saved)" if any(e.name == w.current_name for e in failed) else ""
            title += (
                f" — {len(failed)} image{'s' if len(failed) != 1 else ''} not saved"
                if any(e.name != w.current_name for e in failed)
                else ""
            )
        if w.windowTitle() != title:
            w.setWindowTitle(title)

    # -- answers from the autosaver -----------------------------------------------------------
    def _on_saved(self, name: str) -> None:
        w = self.window
        w.status_panel.set_saved(f"saved {name}")
        w.status_panel.center.resolve(f"save:{name}")
        self.update_marks()

    def _on_failed(self, name: str, message: str) -> None:
        w = self.window
        entry = next((e for e in w.autosaver.failed_entries() if e.name == name), None)
        no_write = entry is not None and _errno_of(entry.exception) in _NO_WRITE
        actions = [("Save again", w.autosaver.retry_now)]
        if no_write:
            actions.append(("Save annotations to another folder…", self.ask_other_folder))
            hint = (
                "Your changes are kept in memory. This folder cannot be written: save the annotations "
                "to another folder, or fix the folder's permissions and press Save again."
            )
        elif _errno_of(entry.exception if entry else None) in (errno.ENOSPC, errno.EDQUOT):
            hint = (
                "Your changes are kept in memory and saving is retried by itself. Free some disk "
                "space; do not close the app before it says 'saved'."
            )
        else:
            hint = "Your changes are kept in memory and saving is retried by itself."
        w.status_panel.show_error(f"{name} is not saved: {message}", hint=hint, actions=actions, key=f"save:{name}")
        self.update_marks()

    def _on_conflict(self, name: str, message: str) -> None:
        w = self.window
        project = w.project
        w.status_panel.show_error(
            f"{name} was changed by another window or program since you opened it; your changes are "
            f"kept in memory and were not written over theirs",
            hint="Choose: reload their version (yours is dropped), keep yours (theirs is kept as a "
            "backup), or save yours as a copy and reload theirs.",
            key=f"save:{name}",
            actions=[
                ("Reload theirs", lambda: self.reload_theirs(project, name)),
                ("Keep mine", lambda: self.keep_mine(project, name)),
                ("Save mine as a copy", lambda: self.save_copy(project, name)),
            ],
        )
        self.update_marks()

    # -- choices ------------------------------------------------------------------------------
    def reload_theirs(self, project, name: str) -> None:
        w = self.window
        w.autosaver.discard(project, name)
        if project is not None:
            w.controller.histories.forget(str(project.image_path(name)))
        if w.current_name == name:
            w.autosaver.set_document(None, None)
            w.navigation.open(name, force=True)
        self.update_marks()

    def keep_mine(self, project, name: str) -> None:
        self.window.autosaver.save_forced(project, name)

    def save_copy(self, project, name: str) -> Path | None:
        """Write my version beside theirs (``.langsam/backups/<image>.json.mine-<time>``), then
        reload theirs."""
        from desktop_app.core.annotation.atomic import write_bytes_atomic
        from desktop_app.core.annotation.storage import document_to_bytes

        doc = self.window.autosaver.in_memory(project, name)
        target = None
        if doc is not None:
            target = project.meta_dir / "backups" / f"{name}.json.mine-{time.strftime('%Y%m%d-%H%M%S')}"
            try:
                write_bytes_atomic(target, document_to_bytes(doc))
            except OSError as exc:
                self.window.show_error(f"your copy of {name} could not be written: {exc}")
                return None
            self.window.status_panel.center.notify(f"Your version of {name} was saved as '{target}'", level=Level.INFO)
        self.reload_theirs(project, name)
        return target

    def ask_other_folder(self) -> None:
        w = self.window
        if w.project is None:
            return
        folder = QFileDialog.getExistingDirectory(w, "Save annotations to another folder", str(Path.home()))
        if folder:
            self.use_annotation_folder(folder)

    def use_annotation_folder(self, folder: str) -> None:
        """Save this project's annotations to ``folder`` from now on (remembered per folder)."""
        from desktop_app.core.annotation_location import RedirectedProject

        w = self.window
        old = w.project
        try:
            new = RedirectedProject(old.folder, folder)
        except OSError as exc:
            w.show_error(f"'{folder}' cannot be used for the annotations: {exc}")
            return
        redirects = w.settings.annotation_folders
        redirects[str(Path(old.folder).resolve())] = str(Path(folder).resolve())
        w.settings.annotation_folders = redirects
        w.project = new
        w.label_editor.project = new
        w.autosaver.replace_project(old, new)
        cur = w.autosaver.document
        if cur is not None:
            w.autosaver.set_document(new, cur)
        w.label_editor.save()
        w.autosaver.retry_now()
        w.status_panel.center.notify(f"Annotations of this folder are now saved in '{folder}'", level=Level.INFO)

    # -- closing ------------------------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Flush; with work still not on disk ask Save again / Discard / Cancel. True: close."""
        w = self.window
        while True:
            w.autosaver.flush()
            unsaved = w.autosaver.unsaved()
            if not unsaved:
                return True
            names = ", ".join(e.name for e in unsaved[:5]) + (" …" if len(unsaved) > 5 else "")
            reason = next((e.error for e in unsaved if e.error), "") or "saving did not finish"
            box = QMessageBox(
                QMessageBox.Icon.Warning,
                "Unsaved annotations",
                f"The annotations of {len(unsaved)} image(s) are not saved: {names}.\n\nReason: {reason}",
                parent=w,
            )
            again = box.addButton("Save again", QMessageBox.ButtonRole.AcceptRole)
            discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(again)
            box.exec()
            clicked = box.clickedButton()
            if clicked is again:
                continue
            if clicked is discard:
                w.autosaver.discard()
                return True
            return False
