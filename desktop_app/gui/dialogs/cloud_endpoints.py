"""Cloud → Endpoints…: the SageMaker endpoints THIS app created, what they cost so far, Delete.

Rows come from the app's ledger (:mod:`desktop_app.core.cloud_ledger`) at once, then Refresh asks
AWS for each one's live status off the GUI thread. Cost so far = hours since creation × the
indicative hourly price of :mod:`cloud.pricing` × instances. Delete runs ``deploy_down`` off the
GUI thread and forgets the endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.gui.dialogs.background import BackgroundTask

COLUMNS = ["Endpoint", "Region", "Status", "Instance", "Age", "Cost so far (≈)"]


def format_age(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def confirm_delete(parent: QWidget, name: str) -> bool:
    """Ask before deleting (tests replace this function)."""
    answer = QMessageBox.question(
        parent,
        "Delete endpoint",
        f"Delete the endpoint {name}, its configuration and its model? It stops billing; "
        "the app can deploy it again later.",
    )
    return answer == QMessageBox.StandardButton.Yes


class CloudEndpointsDialog(QDialog):
    def __init__(self, *, values: Callable[[], Mapping[str, Any]], ledger: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Cloud endpoints")
        self.setObjectName("cloud_endpoints")
        self.resize(860, 360)
        self._values, self.ledger = values, ledger
        self.rows: list[tuple[Any, Any]] = []
        self.task = BackgroundTask(self)
        self.task.finished.connect(self._finished)
        self.task.failed.connect(lambda m: self._say(f"Failed: {m}", error=True))
        self.task.cancelled.connect(lambda m: self._say(f"Cancelled: {m}"))
        self.task.ended.connect(self._ended)
        self._doing = ""

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("endpoints")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._enable)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setObjectName("delete_endpoint")
        self.delete_data = QCheckBox("also delete the uploaded model data")
        close = QPushButton("Close")
        self.refresh_button.clicked.connect(self.refresh)
        self.delete_button.clicked.connect(self.delete_selected)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for w in (self.refresh_button, self.delete_button, self.delete_data):
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel("SageMaker endpoints created by this app. A running endpoint bills every hour until it is deleted.")
        )
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        from cloud.pricing import PRICES_NOTE

        self.note.setText(f"Cost so far = hours since creation × instances × the hourly price. {PRICES_NOTE}")
        self.note.setStyleSheet("color: #555;")
        self.show_records([(r, None) for r in ledger.records()])

    # -- data ------------------------------------------------------------------------------
    def refresh(self) -> None:
        from desktop_app.core import deploy_jobs as jobs

        if self.task.running:
            return
        values, ledger = self._values(), self.ledger
        self._doing = "refresh"
        self._say("Asking AWS for the status of each endpoint…")
        self.task.start(lambda _r, cancel: jobs.refresh_records(values, ledger, cancel=cancel), name="endpoints")
        self._enable()

    def delete_selected(self) -> None:
        from desktop_app.core import deploy_jobs as jobs

        record = self.selected()
        if record is None or self.task.running or not confirm_delete(self, record.name):
            return
        values, ledger, with_data = self._values(), self.ledger, self.delete_data.isChecked()
        lines: list[str] = []
        self._doing = f"delete {record.name}"
        self._say(f"Deleting {record.name}…")
        self.task.start(
            lambda _r, cancel: (
                jobs.delete(
                    values,
                    record.name,
                    record.region,
                    ledger,
                    say=lines.append,
                    delete_model_data=with_data,
                    cancel=cancel,
                ),
                record,
            ),
            name="endpoint-delete",
        )
        self._enable()

    def selected(self) -> Any:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.rows):
            return None
        return self.rows[rows[0].row()][0]

    def show_records(self, rows: list[tuple[Any, Any]]) -> None:
        from cloud.pricing import cost_so_far, format_usd

        self.rows = list(rows)
        self.table.setRowCount(len(rows))
        now = time.time()
        for r, (rec, live) in enumerate(rows):
            status = rec.status if not isinstance(live, str) else f"{rec.status} ({live})"
            hours = rec.hours(now)
            cells = [
                rec.name,
                rec.region,
                status,
                f"{rec.instance_count} × {rec.instance_type}",
                format_age(hours),
                format_usd(cost_so_far(rec.instance_type, hours, count=rec.instance_count)),
            ]
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        if not rows:
            self._say("This app has not created any endpoint (or they were all deleted).")
        self._enable()

    # -- results ---------------------------------------------------------------------------
    def _finished(self, result: Any) -> None:
        if self._doing == "refresh":
            self.show_records(result)
            if result:
                live = sum(1 for rec, _ in result if rec.live)
                self._say(f"{len(result)} endpoint(s), {live} running (status from AWS).")
        else:
            down, record = result
            gone = ", ".join(down.deleted) if getattr(down, "deleted", None) else "nothing left to delete"
            self.show_records([(r, None) for r in self.ledger.records()])
            self._say(f"Deleted {record.name}: {gone}.")

    def _ended(self) -> None:
        self._doing = ""
        self._enable()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;" if error else "")

    def _enable(self) -> None:
        busy = self.task.running
        self.refresh_button.setEnabled(not busy)
        self.delete_button.setEnabled(not busy and self.selected() is not None)
