"""Batch over a folder, in the background, while the person keeps annotating.

:class:`BatchRunner` belongs to the window. Inference → Batch (Ctrl+B) opens the
:class:`~desktop_app.gui.dialogs.batch_dialog.BatchDialog`, which only configures; Run closes it
and starts :func:`desktop_app.core.batch.run_batch` in a background thread
(:class:`~desktop_app.gui.dialogs.background.BackgroundTask`). Every prediction goes through the
window's ONE inference worker (``predict_blocking``), queued below interactive prompts and
encodings: a click or a text prompt on the image on screen preempts a running batch call, which
is re-queued (the scheduler's policy, docs/adr/0005).

What the person sees: "Batch: 12/40 · Cancel" in the status bar; each image's file-list entry
turns "review" as soon as its file is written; an image that fails is a notification (not a
modal box); at the end a notification "40 images done, 37 with results to review" with
"Show images to review" (the file list's review filter).

**Conflict rule** — the batch never overwrites what the person is working on. It leaves alone
(and names in the final notification):

* the image on screen, or being opened (navigation calls :meth:`BatchRunner.claim` under the
  batch's write lock before it reads a document, so an image is either written by the batch
  before the editor reads it, or not written at all);
* images whose changes are kept in memory, not on disk yet (``Autosaver.in_memory``: a pending
  or failed save, a conflict);
* images whose file was saved by anyone after the batch read it: the batch writes through a
  project instance of its own, so the storage's changed-on-disk check
  (``DocumentChangedOnDisk``) applies between the batch and the editor too.

Closing the window during a batch asks: cancel the batch and close, or keep running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox

from desktop_app.core.annotation.document import ImageStatus
from desktop_app.core.backend_choices import CHOICES, Capability
from desktop_app.core.batch import BatchGuard, BatchResult, ImageOutcome, Outcome, summarise
from desktop_app.gui.dialogs.background import BackgroundTask
from desktop_app.gui.widgets.batch_progress import BatchProgressWidget
from desktop_app.gui.widgets.file_list import FileEntry
from desktop_app.gui.widgets.notifications import Level

if TYPE_CHECKING:
    from desktop_app.gui.dialogs.batch_dialog import BatchSettings

OPEN_IN_EDITOR = "open in the editor"
NOT_SAVED_YET = "has changes not saved yet"


class BatchRunner(QObject):
    """One background batch at a time for ``window`` (a MainWindow)."""

    started = Signal(int)  # total images
    progress = Signal(int, int)  # images settled, total
    image_settled = Signal(object)  # ImageOutcome, on the GUI thread
    ended = Signal(str, object)  # "finished" | "cancelled" | "failed", BatchResult of what was settled
    _outcome = Signal(object)  # from the batch thread

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.task = BackgroundTask(self)
        self.widget = BatchProgressWidget()
        window.status_panel.addPermanentWidget(self.widget)
        self.widget.cancel_requested.connect(self.cancel)
        self.guard = BatchGuard(busy=self._busy)
        self._claimed: str | None = None
        self._project = None  # the window's project the running batch belongs to
        self._total = 0
        self._prompt_text = ""
        self._outcomes: list[ImageOutcome] = []
        self.last_notification = None
        self._outcome.connect(self._on_outcome)
        self.task.finished.connect(lambda result: self._end("finished", ""))
        self.task.cancelled.connect(lambda message: self._end("cancelled", message))
        self.task.failed.connect(lambda message: self._end("failed", message))
        window.navigation.on_open.append(self.claim)
        # while a batch runs the worker is always busy: the batch widget is the one busy sign, not a
        # second "working…" bar (queued: runs after the window's own busy_changed handler)
        window.controller.busy_changed.connect(self._hide_generic_busy, Qt.ConnectionType.QueuedConnection)

    # -- state ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.task.running or self._project is not None

    def done_count(self) -> int:
        return len(self._outcomes)

    # -- starting ---------------------------------------------------------------------------
    def show_dialog(self) -> None:
        """Inference → Batch (Ctrl+B)."""
        from desktop_app.gui.dialogs.batch_dialog import BatchDialog

        w = self.window
        if w.project is None:
            w.show_error("open a folder first")
            return
        dialog = BatchDialog(
            project=w.project, check_ready=self.text_problem, busy=self._busy_text, text=w.prompt_bar.text(), parent=w
        )
        dialog.start_requested.connect(self.start)
        w._dialogs["batch"] = dialog
        dialog.open()

    def _busy_text(self) -> str | None:
        if not self.running:
            return None
        return (
            f"A batch is already running ({self.done_count()}/{self._total}); cancel it in the status "
            "bar first, or wait for it to finish."
        )

    def text_problem(self) -> str | None:
        """None when the worker's backend runs (or is loading and will run) text prompts, else why not."""
        w = self.window
        name = w.controller.worker.backend_name or ""  # asked for: says it at once, even while it loads
        choice = CHOICES.get(name)
        if choice is not None and choice.can(Capability.TEXT):
            return None  # ready, or loading (the batch waits for it)
        info = w.controller.backend_info
        if choice is None and (info is None or info.supports_text):
            return None
        name = name if choice is not None else info.backend
        failure = getattr(w, "_last_backend_failure", "")
        return (
            f"the {name} backend cannot run text prompts: the Lang-SAM models are not "
            f"installed or not chosen (Inference → Models…, then choose Lang-SAM)"
            + (f". Last problem: {failure}" if failure else "")
        )

    def start(self, settings: BatchSettings) -> bool:
        """Run ``settings`` over every image of the open folder in the background."""
        from desktop_app.core.annotation_location import open_project
        from desktop_app.core.batch import run_batch

        w = self.window
        if self.running or w.project is None:
            return False
        w.flush_saves()  # what the person did so far is on disk before the batch reads it
        try:
            names = w.project.images()
            # its own instance: the storage then tells the batch when the editor saved a file it read
            project = open_project(w.project.folder, w.settings.annotation_folders)
        except OSError as exc:
            w.show_error(f"the batch cannot start: {exc}")
            return False
        worker = w.controller.worker
        prompt, skip_done = settings.prompt, settings.skip_done
        guard, outcome = self.guard, self._outcome

        def predict(image, prompt, *, cancel=None):
            return worker.predict_blocking(image=image, prompt=prompt, cancel=cancel)

        def job(report, cancel):
            return run_batch(
                project=project,
                image_names=names,
                prompt=prompt,
                predict=predict,
                skip_done=skip_done,
                cancel=cancel,
                guard=guard,
                on_image=outcome.emit,
            )

        self._claimed = w._loading_name or w.current_name
        self._project, self._total, self._outcomes = w.project, len(names), []
        self._prompt_text = prompt.text or ""
        self.widget.start(len(names), self._prompt_text)
        w.status_panel.set_work("")
        self.task.start(job, name="batch")
        self.started.emit(len(names))
        return True

    # -- the conflict rule ----------------------------------------------------------------------
    def claim(self, name: str) -> None:
        """The editor is about to open ``name`` (GUI thread): from now on the batch leaves it alone.
        Waits for a write of the batch in progress, so the editor never reads a file the batch is
        about to replace."""
        with self.guard.lock:
            self._claimed = name

    def _busy(self, name: str) -> str | None:
        """Why the batch must not touch ``name`` now (called from the batch thread)."""
        w = self.window
        if name in (self._claimed, w.current_name, w._loading_name):
            return OPEN_IN_EDITOR
        project = self._project
        if project is not None and w.autosaver.in_memory(project, name) is not None:
            return NOT_SAVED_YET
        return None

    # -- while it runs (GUI thread) -----------------------------------------------------------
    def _on_outcome(self, outcome: ImageOutcome) -> None:
        w = self.window
        self._outcomes.append(outcome)
        here = w.project is self._project  # the person may have opened another folder meanwhile
        if outcome.outcome is Outcome.WRITTEN and here:
            w.file_list.update_entry(
                FileEntry(name=outcome.name, status=ImageStatus.REVIEW, object_count=outcome.object_count)
            )
            w.label_editor.ensure(outcome.labels, save=False)
        elif outcome.outcome is Outcome.FAILED:
            w.status_panel.center.notify(
                f"Batch: {outcome.name} was not processed: {outcome.text}",
                level=Level.ERROR,
                key=f"batch:{outcome.name}",
                hint="The other images go on; run the batch again for this one later.",
            )
        self.widget.set_progress(len(self._outcomes), self._total, outcome.name)
        self.progress.emit(len(self._outcomes), self._total)
        self.image_settled.emit(outcome)

    def _hide_generic_busy(self, busy: bool) -> None:
        if busy and self.running:
            self.window.status_panel.set_work("")

    def cancel(self) -> None:
        if self.task.running:
            self.task.cancel("the batch was cancelled")

    # -- the end -------------------------------------------------------------------------------
    def _end(self, how: str, message: str) -> None:
        w = self.window
        result = summarise(self._outcomes)
        here = w.project is self._project
        self._project = None
        self.widget.stop()
        if here and result.labels:
            w.label_editor.save()
        self.last_notification = w.status_panel.center.notify(
            self.summary_text(how, message, result),
            level=Level.ERROR if how == "failed" else Level.INFO,
            key="batch:end",
            show=True,
            actions=[("Show images to review", self.show_review)] if here and result.changed else (),
        )
        self.ended.emit(how, result)

    def summary_text(self, how: str, message: str, result: BatchResult) -> str:
        with_results = sum(1 for o in self._outcomes if o.outcome is Outcome.WRITTEN and o.objects_added)
        done = (
            f"{result.images_done} image{'s' if result.images_done != 1 else ''} done, "
            f"{with_results} with results to review"
        )
        if how == "finished":
            text = f"Batch '{self._prompt_text}' finished: {done}."
        elif how == "cancelled":
            text = (
                f"Batch '{self._prompt_text}' cancelled after {len(self._outcomes)} of {self._total} images: "
                f"{done}; the other images were not changed."
            )
        else:
            text = f"Batch '{self._prompt_text}' stopped: {message}. {done}."
        if result.left_alone:
            text += " Left alone (you were working on them): " + "; ".join(result.left_alone) + "."
        if result.skipped:
            text += f" {len(result.skipped)} image(s) marked done were not changed."
        if result.problems:
            text += f" {len(result.problems)} image(s) failed (see the messages)."
        return text

    def show_review(self) -> None:
        action = self.window.actions_by_name["filter_review"]
        if not action.isChecked():
            action.trigger()

    # -- closing -------------------------------------------------------------------------------
    def confirm_close(self) -> bool:
        """While a batch runs: cancel it and close (True), or keep running (False)."""
        if not self.running:
            return True
        if not self.ask_cancel_on_close():
            return False
        self.cancel()
        return True

    def ask_cancel_on_close(self) -> bool:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "A batch is running",
            f"The batch '{self._prompt_text}' has done {self.done_count()} of {self._total} "
            "images. Images finished so far keep their results.",
            parent=self.window,
        )
        stop = box.addButton("Cancel the batch and close", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep running", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.exec()
        return box.clickedButton() is stop

    def shutdown(self, timeout: float = 10.0) -> None:
        """The window closes (after the worker stopped, which releases a waiting batch call)."""
        self.cancel()
        self.task.wait(timeout)
