"""File -> Export: COCO, labelme, YOLO-seg, PNG masks or Pascal VOC, for the current image or
the folder; options: polygon tolerance, a train/val(/test) split with a seed, YOLO boxes only,
and opening the folder afterwards.

The export runs in a background thread over a lazy stream of documents read from disk (the
window flushes its auto-save first), with progress and cancel; the GUI thread only shows it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.annotation.document import ImageStatus
from desktop_app.gui.dialogs.background import BackgroundTask
from desktop_app.gui.dialogs.task_panel import task_panel


def export_names(project, *, scope: str, current: str | None) -> list[str]:
    """Images to export: the current one, or every image that has annotations."""
    if scope == "current":
        return [current] if current else []
    return [
        s.image_name for s in project.summaries() if s.error is None and (s.object_count or s.status != ImageStatus.NEW)
    ]


SPLIT_CHOICES = (
    ("No split", ""),
    ("Train/val 80/20", "80/20"),
    ("Train/val 90/10", "90/10"),
    ("Train/val/test 70/20/10", "70/20/10"),
    ("Train/val/test 80/10/10", "80/10/10"),
)
POLYGON_FORMATS = ("coco", "labelme", "yolo")
SPLIT_FORMATS = ("coco", "yolo", "voc")


def export_options(name: str, *, segmentation: str, tolerance: float, split: str, seed: int, boxes_only: bool) -> dict:
    """The exporter keyword arguments the dialog's choices mean for format ``name``."""
    options: dict = {}
    if name == "coco":
        options["segmentation"] = segmentation
    if name in POLYGON_FORMATS:
        options["polygon_tolerance"] = float(tolerance)
    if name == "yolo":
        options["boxes_only"] = bool(boxes_only)
    if name in SPLIT_FORMATS and split:
        options.update(split=split, seed=int(seed))
    return options


def run_export(
    *, project, names: list[str], format_name: str, out_dir: str, labels, options: dict, report, cancel
) -> list[Path]:
    """Qt-free: stream the documents through the chosen exporter."""
    from desktop_app.core.formats.registry import get_exporter

    exporter = get_exporter(format_name)
    total = len(names)

    def documents():
        for name in names:
            cancel.raise_if_cancelled()
            yield project.load(name)

    report(0, total, "")
    from inference.errors import InferenceError, StudioError

    try:
        paths = exporter(
            documents(),
            images_dir=str(project.folder),
            out_dir=out_dir,
            labels=labels,
            progress=lambda done: report(done, total, ""),
            **options,
        )
    except StudioError as exc:
        if isinstance(exc, InferenceError):
            raise
        raise InferenceError(str(exc)) from exc  # BackgroundTask shows InferenceError text as is
    report(total, total, "")
    return list(paths)


class ExportDialog(QDialog):
    exported = Signal(list)  # written paths
    out_dir: QLineEdit  # created below, after the slots that read it are connected

    def __init__(self, *, project, labels, current: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from desktop_app.core.formats.registry import FORMATS

        self.setWindowTitle("Export annotations")
        self.project, self.labels, self.current = project, labels, current
        self.paths: list[Path] = []
        self.task = BackgroundTask(self)
        self.task.progress.connect(self._progress)
        self.task.finished.connect(self._finished)
        self.task.failed.connect(lambda message: self._ended(f"The export failed: {message}"))
        self.task.cancelled.connect(
            lambda message: self._ended(f"Cancelled ({message}); files written so far are in {self.out_dir.text()}.")
        )

        self.format_box = QComboBox()
        for fmt in FORMATS.values():
            self.format_box.addItem(fmt.title, fmt.name)
            self.format_box.setItemData(self.format_box.count() - 1, fmt.description, Qt.ItemDataRole.ToolTipRole)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.coco_mode = QComboBox()
        self.coco_mode.addItem("RLE (exact masks)", "rle")
        self.coco_mode.addItem("Polygons", "polygon")
        self.coco_mode.currentIndexChanged.connect(self._format_changed)
        from inference.masks import DEFAULT_POLYGON_TOLERANCE

        self.tolerance = QDoubleSpinBox()
        self.tolerance.setRange(0.0, 20.0)
        self.tolerance.setSingleStep(0.25)
        self.tolerance.setDecimals(2)
        self.tolerance.setSuffix(" px")
        self.tolerance.setValue(DEFAULT_POLYGON_TOLERANCE)
        self.tolerance.setToolTip(
            "Polygons are simplified (Douglas-Peucker) within this many pixels of the mask's "
            "edge; 0 keeps every pixel corner (exact, many more vertices)"
        )
        self.split_box = QComboBox()
        for text, value in SPLIT_CHOICES:
            self.split_box.addItem(text, value)
        self.split_box.setToolTip("Each image goes to a part by a hash of its name and the seed: the same on every run")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setPrefix("seed ")
        split_row = QHBoxLayout()
        split_row.addWidget(self.split_box, 1)
        split_row.addWidget(self.seed)
        self.split_box.currentIndexChanged.connect(self._format_changed)
        self.boxes_only = QCheckBox("Boxes only (YOLO detection: class cx cy w h)")
        self.boxes_only.toggled.connect(self._format_changed)
        self.open_after = QCheckBox("Open the folder after exporting")
        self.scope_current = QRadioButton("This image")
        self.scope_all = QRadioButton("Whole folder (every annotated image)")
        self.scope_group = QButtonGroup(self)
        for button in (self.scope_current, self.scope_all):
            self.scope_group.addButton(button)
        self.scope_all.setChecked(True)
        self.scope_current.setEnabled(bool(current))
        self.out_dir = QLineEdit()
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format:", self.format_box)
        form.addRow("COCO masks:", self.coco_mode)
        form.addRow("Polygon tolerance:", self.tolerance)
        form.addRow("", self.boxes_only)
        form.addRow("Split:", split_row)
        form.addRow("Images:", self.scope_current)
        form.addRow("", self.scope_all)
        form.addRow("Write to:", out_row)
        form.addRow("", self.open_after)
        self.description = QLabel()
        self.description.setWordWrap(True)
        panel = task_panel(self, "Export", self.start)
        self.progress_bar, self.log = panel.progress_bar, panel.log
        self.export_button, self.close_button, buttons = panel.action_button, panel.close_button, panel.buttons
        self.progress_bar.setValue(0)
        self.log.setMaximumHeight(90)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.description)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.log)
        layout.addWidget(buttons)
        self.resize(600, 460)
        self._format_changed()

    # -- options ---------------------------------------------------------------------------
    def set_format(self, name: str) -> None:
        self.format_box.setCurrentIndex(max(0, self.format_box.findData(name)))

    def set_scope(self, scope: str) -> None:
        (self.scope_current if scope == "current" else self.scope_all).setChecked(True)

    def scope(self) -> str:
        return "current" if self.scope_current.isChecked() else "folder"

    def _format_changed(self) -> None:
        from desktop_app.core.formats.registry import FORMATS

        name = self.format_box.currentData()
        self.coco_mode.setEnabled(name == "coco")
        polygons = (
            (name == "coco" and self.coco_mode.currentData() == "polygon")
            or name == "labelme"
            or (name == "yolo" and not self.boxes_only.isChecked())
        )
        self.tolerance.setEnabled(polygons)
        self.boxes_only.setEnabled(name == "yolo")
        self.split_box.setEnabled(name in SPLIT_FORMATS)
        self.seed.setEnabled(name in SPLIT_FORMATS and bool(self.split_box.currentData()))
        self.description.setText(FORMATS[name].description)
        folder = str(self.project.folder / "export" / name)
        if self.out_dir.text() != folder and self.sender() is not self.format_box and self.out_dir.text():
            return  # an option changed: keep the folder the person chose
        self.out_dir.setText(folder)

    def options(self) -> dict:
        return export_options(
            self.format_box.currentData(),
            segmentation=self.coco_mode.currentData(),
            tolerance=self.tolerance.value(),
            split=self.split_box.currentData(),
            seed=self.seed.value(),
            boxes_only=self.boxes_only.isChecked(),
        )

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.task.running:
            return
        names = export_names(self.project, scope=self.scope(), current=self.current)
        if not names:
            self.log.setPlainText("Nothing to export yet: no image of this folder has annotations.")
            return
        name = self.format_box.currentData()
        options = self.options()
        project, labels, out_dir = self.project, self.labels, self.out_dir.text().strip()
        if not out_dir:
            self.log.setPlainText("Choose a folder to write to.")
            return
        self.progress_bar.setRange(0, len(names))
        self.progress_bar.setValue(0)
        self.export_button.setEnabled(False)
        self.close_button.setText("Cancel")
        self.log.setPlainText(f"Exporting {len(names)} image(s) as {name}…")

        def job(report, cancel):
            return run_export(
                project=project,
                names=names,
                format_name=name,
                out_dir=out_dir,
                labels=labels,
                options=options,
                report=report,
                cancel=cancel,
            )

        self.task.start(job, name="export")

    def _progress(self, done: int, total: int, _text: str) -> None:
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)

    def _finished(self, paths: list) -> None:
        self.paths = [Path(p) for p in paths]
        self._ended(f"Wrote {len(self.paths)} file(s) to {self.out_dir.text()}.")
        self.exported.emit(self.paths)
        if self.open_after.isChecked():
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.out_dir.text()))

    def _ended(self, message: str) -> None:
        self.log.appendPlainText(message)
        self.export_button.setEnabled(True)
        self.close_button.setText("Close")

    def reject(self) -> None:
        if self.task.running:
            self.task.cancel("the export was cancelled")
            return
        super().reject()
