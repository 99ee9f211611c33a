"""File -> Import…: COCO, labelme, YOLO-seg or PNG masks merged into the open folder's project.

The Qt face of :mod:`desktop_app.core.importing` (merge rule and validation are there). The
import runs in a background thread with progress and cancel; when it ends, ``imported`` is
emitted (also after a cancel: what was merged so far is saved) and the window re-reads the file
list, the labels and the image on screen.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.gui.dialogs.background import BackgroundTask
from desktop_app.gui.dialogs.task_panel import task_panel

SOURCE_HINTS = {
    "coco": "an annotations .json file (or a folder of them, e.g. annotations_train/val.json)",
    "labelme": "a labelme .json file, or a folder of them",
    "yolo": "a dataset folder with labels/ and classes.txt or data.yaml",
    "png": "a folder with masks/ or semantic/ and classes.txt",
}


class _Failed:
    """A job result meaning "the import could not run" (a StudioError's text)."""

    def __init__(self, message: str) -> None:
        self.message = message


class ImportDialog(QDialog):
    imported = Signal(object)  # ImportSummary (None after a failure)

    def __init__(self, *, project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from desktop_app.core.formats.registry import FORMATS
        from desktop_app.core.importing import IMPORT_FORMATS

        self.setWindowTitle("Import annotations")
        self.project = project
        self.summary = None
        self.task = BackgroundTask(self)
        self.task.progress.connect(self._progress)
        self.task.finished.connect(self._finished)
        self.task.failed.connect(lambda message: self._ended(f"The import failed: {message}", None))
        self.task.cancelled.connect(
            lambda message: self._ended(f"Cancelled ({message}); images merged so far are saved.", None)
        )

        self.format_box = QComboBox()
        for name in IMPORT_FORMATS:
            self.format_box.addItem(FORMATS[name].title, name)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.source = QLineEdit()
        self.source.setObjectName("import_source")
        choose_file = QPushButton("File…")
        choose_file.clicked.connect(self._browse_file)
        choose_folder = QPushButton("Folder…")
        choose_folder.clicked.connect(self._browse_folder)
        row = QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(choose_file)
        row.addWidget(choose_folder)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Format:", self.format_box)
        form.addRow("From:", row)
        form.addRow("", self.hint)
        form.addRow("Into:", QLabel(str(project.folder)))
        note = QLabel(
            "Imported objects are added to each image's annotations; an object identical to one already "
            "there (same label and mask) is skipped. Nothing is replaced."
        )
        note.setWordWrap(True)
        panel = task_panel(self, "Import", self.start)
        self.progress_bar, self.log = panel.progress_bar, panel.log
        self.import_button, self.close_button, buttons = panel.action_button, panel.close_button, panel.buttons
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.log, 1)
        layout.addWidget(buttons)
        self.resize(640, 380)
        self._format_changed()

    def set_format(self, name: str) -> None:
        self.format_box.setCurrentIndex(max(0, self.format_box.findData(name)))

    def _format_changed(self) -> None:
        self.hint.setText(SOURCE_HINTS.get(self.format_box.currentData(), ""))

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import from", str(self.project.folder), "JSON (*.json);;All (*)")
        if path:
            self.source.setText(path)

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import from", str(self.project.folder))
        if folder:
            self.source.setText(folder)

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.task.running:
            return
        source = self.source.text().strip()
        if not source:
            self.log.setPlainText("Choose the file or folder to import.")
            return
        name, project = self.format_box.currentData(), self.project
        self.import_button.setEnabled(False)
        self.close_button.setText("Cancel")
        self.progress_bar.setRange(0, 0)
        self.log.setPlainText(f"Importing {name} from {source}…")

        def job(report, cancel):
            from desktop_app.core.annotation.labels import LabelError, ProjectFileError
            from desktop_app.core.importing import import_annotations
            from inference.errors import Cancelled, StudioError

            try:
                return import_annotations(project, name, source, report=report, cancel=cancel)
            except Cancelled:
                raise
            except (StudioError, LabelError, ProjectFileError) as exc:
                return _Failed(str(exc))

        self.task.start(job, name="import")

    def _progress(self, done: int, total: int, _text: str) -> None:
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)

    def _finished(self, result) -> None:
        if isinstance(result, _Failed):
            self._ended(f"The import failed: {result.message}", None)
            return
        self.summary = result
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)
        self._ended("\n".join(result.lines()), result)

    def _ended(self, message: str, summary) -> None:
        self.log.appendPlainText(message)
        self.import_button.setEnabled(True)
        self.close_button.setText("Close")
        self.imported.emit(summary)

    def reject(self) -> None:
        if self.task.running:
            self.task.cancel("the import was cancelled")
            return
        super().reject()
