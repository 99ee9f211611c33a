"""Inference -> Models: the known models with size and state; download (progress, cancel,
resume) in a background thread, or use a local file / folder instead.

Failures (offline, no such file, a wrong file) are shown as the weights layer's sentence,
never as a traceback. ``weights_changed`` tells the window to pick the backend again.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.gui.dialogs.background import BackgroundTask

STATE_TEXT = {
    "installed": "installed",
    "missing": "not installed",
    "partial": "partly downloaded (resume)",
    "override": "local copy",
}


def human_size(nbytes: int, *, exact: bool = True) -> str:
    value = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            text = f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
            return text if exact else f"≈ {text}"
        value /= 1000
    return f"{nbytes} B"


class ModelsDialog(QDialog):
    weights_changed = Signal()

    COLUMNS = ("Model", "Kind", "Size", "State", "Licence")

    def __init__(self, *, store=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from inference.weights import WeightsStore

        self.setWindowTitle("Models")
        self.store = store or WeightsStore()
        self.task = BackgroundTask(self)
        self.task.progress.connect(self._progress)
        self.task.finished.connect(self._download_finished)
        self.task.failed.connect(self._download_failed)
        self.task.cancelled.connect(self._download_cancelled)
        self.task.ended.connect(self._update_buttons)
        self._downloading: str | None = None

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(self.COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)

        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = QPlainTextEdit()  # long sentences (where to put files by hand) stay readable
        self.message.setReadOnly(True)
        self.message.setMaximumHeight(110)
        self.message.setPlaceholderText("Downloads and their problems are explained here.")
        self.progress_bar = QProgressBar()
        self.progress_bar.hide()

        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel download")
        self.local_button = QPushButton("Use local file…")
        self.clear_button = QPushButton("Forget local file")
        self.download_button.clicked.connect(lambda: self.start_download(self.selected_model()))
        self.cancel_button.clicked.connect(self.cancel_download)
        self.local_button.clicked.connect(self._ask_local)
        self.clear_button.clicked.connect(self._clear_override)
        row = QHBoxLayout()
        for button in (self.download_button, self.cancel_button, self.local_button, self.clear_button):
            row.addWidget(button)
        row.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        folder = QLabel(f"Models folder: {self.store.cache_dir}")
        folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(folder)
        layout.addWidget(self.table)
        layout.addWidget(self.details)
        layout.addLayout(row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.message)
        layout.addWidget(close)
        self.resize(780, 520)
        self.refresh()
        if self.table.rowCount():
            self.table.selectRow(0)

    # -- table -----------------------------------------------------------------------------
    def model_ids(self) -> list[str]:
        from inference.weights import model_ids

        return model_ids()

    def refresh(self) -> None:
        from inference.weights import get_model

        selected = self.selected_model()
        ids = self.model_ids()
        self.table.setRowCount(len(ids))
        for r, model_id in enumerate(ids):
            spec = get_model(model_id)
            state = self.store.state(model_id)
            cells = (
                spec.display_name,
                "text → boxes" if spec.kind == "gdino" else "masks (SAM 2)",
                human_size(spec.size_bytes, exact=spec.size_exact),
                STATE_TEXT.get(state, state),
                spec.licence,
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, model_id)
                item.setToolTip(spec.description)
                self.table.setItem(r, c, item)
            if model_id == selected:
                self.table.selectRow(r)
        self._update_buttons()

    def state_of(self, model_id: str) -> str:
        return self.store.state(model_id)

    def selected_model(self) -> str | None:
        items = self.table.selectedItems() if hasattr(self, "table") else []
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select_model(self, model_id: str) -> None:
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == model_id:
                self.table.selectRow(r)
                return

    def _update_buttons(self) -> None:
        from inference.weights import get_model

        model_id = self.selected_model()
        busy = self.task.running
        state = self.store.state(model_id) if model_id else None
        self.download_button.setEnabled(bool(model_id) and not busy and state in ("missing", "partial"))
        self.download_button.setText("Resume download" if state == "partial" else "Download")
        self.cancel_button.setEnabled(busy)
        self.local_button.setEnabled(bool(model_id) and not busy)
        self.clear_button.setEnabled(bool(model_id and not busy and self.store.override(model_id) is not None))
        if model_id:
            spec = get_model(model_id)
            path = self.store.local_path(model_id)
            where = f"Using {path}." if path else f"Would be stored at {self.store.target_path(model_id)}."
            self.details.setText(f"<b>{spec.display_name}</b> — {spec.description} {where}")

    # -- download --------------------------------------------------------------------------
    def start_download(self, model_id: str | None) -> None:
        if not model_id or self.task.running:
            return
        from inference.weights import download, get_model

        store = self.store
        self._downloading = model_id
        spec = get_model(model_id)
        self.message.setPlainText(f"Downloading {spec.display_name}…")
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()

        def job(report, cancel):
            return download(model_id, store=store, cancel=cancel, progress=lambda done, total: report(done, total, ""))

        self.task.start(job, name=f"download-{model_id}")
        self._update_buttons()

    def cancel_download(self) -> None:
        self.task.cancel("the download was cancelled")

    def _progress(self, done: int, total: int, _text: str) -> None:
        if total > 0:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * done / total))
            self.progress_bar.setFormat(f"{human_size(done)} of {human_size(total)}")
        else:
            self.progress_bar.setRange(0, 0)

    def _download_finished(self, path) -> None:
        self.progress_bar.hide()
        self.message.setPlainText(f"Installed at {path}.")
        self._downloading = None
        self.refresh()
        self.weights_changed.emit()

    def _download_failed(self, message: str) -> None:
        self.progress_bar.hide()
        self.message.setPlainText(message)
        self._downloading = None
        self.refresh()

    def _download_cancelled(self, message: str) -> None:
        self.progress_bar.hide()
        self.message.setPlainText(message)
        self._downloading = None
        self.refresh()

    # -- local files -----------------------------------------------------------------------
    def use_local(self, model_id: str, path: str) -> bool:
        """Use ``path`` for ``model_id``; shows why not if it cannot be used. Returns success."""
        from inference.errors import InferenceError

        try:
            resolved = self.store.set_override(model_id, path)
        except InferenceError as exc:
            self.message.setPlainText(str(exc))
            return False
        self.message.setPlainText(f"Using {resolved} for {model_id}.")
        self.refresh()
        self.weights_changed.emit()
        return True

    def _ask_local(self) -> None:
        from inference.weights import get_model

        model_id = self.selected_model()
        if not model_id:
            return
        spec = get_model(model_id)
        if spec.layout == "file":
            path, _ = QFileDialog.getOpenFileName(
                self,
                f"Checkpoint for {spec.display_name}",
                str(Path.home()),
                "PyTorch checkpoint (*.pt *.pth);;All files (*)",
            )
        else:
            path = QFileDialog.getExistingDirectory(
                self, f"Folder with {spec.display_name} (config.json, model.safetensors, tokenizer)", str(Path.home())
            )
        if path:
            self.use_local(model_id, path)

    def _clear_override(self) -> None:
        model_id = self.selected_model()
        if model_id:
            self.store.clear_override(model_id)
            self.message.setPlainText(f"{model_id} no longer uses a local copy.")
            self.refresh()
            self.weights_changed.emit()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.task.cancel("the models window was closed")
        super().closeEvent(event)

    def reject(self) -> None:
        self.task.cancel("the models window was closed")
        super().reject()
