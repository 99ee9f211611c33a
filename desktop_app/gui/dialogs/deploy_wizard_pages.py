"""The ten pages of :class:`~desktop_app.gui.dialogs.deploy_wizard.DeployWizard` and what each shows.

:class:`DeployWizardPages` builds the pages' widgets into the dialog's ``stack`` (credentials,
target & model, instance, package, dry run, preflight, upload, create & wait, smoke test, use),
fills the choice pages from the tracker and copies them back, and renders the page-local views
(credential checks, preflight table, price line, upload bar). The wizard shell (frame, navigation,
``refresh_view``) is :mod:`desktop_app.gui.dialogs.deploy_wizard`.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.gui import deploy_tracker as t


def wrap_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def read_only_table(headers: list[str], *, stretch: tuple[int, ...] = ()) -> QTableWidget:
    """A read-only table; ``stretch`` columns share the width and wrap their text (no sideways scrolling)."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setWordWrap(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    for column in stretch:
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
    if stretch:
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    else:
        header.setStretchLastSection(True)
    return table


def table_item(text: str, *, colour: str | None = None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if colour:
        from PySide6.QtGui import QColor

        item.setForeground(QColor(colour))
    return item


class DeployWizardPages(QDialog):
    """The wizard's pages; the subclass sets ``tracker`` and ``stack`` before :meth:`_build_pages`."""

    tracker: t.DeploymentTracker
    stack: QStackedWidget

    # -- pages -----------------------------------------------------------------------------
    def _page(self, *widgets: QWidget, stretch: bool = True) -> QWidget:
        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(0, 0, 0, 0)
        for w in widgets:
            box.addWidget(w)
        if stretch:
            box.addStretch(1)
        self.stack.addWidget(page)
        return page

    def _build_pages(self, open_settings: Callable[[], None] | None) -> None:
        from cloud.pricing import INSTANCE_TYPES, PRICES_NOTE
        from desktop_app.core import deploy_jobs as jobs
        from desktop_app.core.backend_choices import CHOICES, local_backend_names

        # 0 credentials
        self.cred_summary = wrap_label()
        self.cred_table = read_only_table(["", "Check", "Result"], stretch=(2,))
        self.cred_again = QPushButton("Check again")
        self.cred_again.clicked.connect(self.tracker.check_credentials)
        row = QHBoxLayout()
        row.addWidget(self.cred_again)
        if open_settings is not None:
            edit = QPushButton("Settings → AWS…")
            edit.clicked.connect(open_settings)
            row.addWidget(edit)
        row.addStretch(1)
        holder = QWidget()
        holder.setLayout(row)
        self._page(
            wrap_label("The deployment uses the AWS settings of the app (Settings → AWS)."),
            self.cred_summary,
            self.cred_table,
            holder,
            stretch=False,
        )

        # 1 target and model
        self.name_edit = QLineEdit(self.tracker.choices.name)
        self.name_edit.setObjectName("deployment_name")
        self.target_combo = QComboBox()
        self.target_combo.setObjectName("target")
        for key in jobs.available_targets():
            self.target_combo.addItem(jobs.TARGET_TITLES[key], key)
        self.image_edit = QLineEdit()
        self.image_edit.setPlaceholderText("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-image:tag")
        self.backend_combo = QComboBox()
        self.backend_combo.setObjectName("backend")
        for name in local_backend_names():
            self.backend_combo.addItem(CHOICES[name].title, name)
        self.smoke_box = QCheckBox("Send a test request once the endpoint is InService (smoke test)")
        self.smoke_box.setChecked(True)
        self.target_combo.currentIndexChanged.connect(self._target_changed)
        form_page = QWidget()
        form = QFormLayout(form_page)
        form.addRow("Deployment (endpoint) name", self.name_edit)
        form.addRow("Container", self.target_combo)
        form.addRow("Image URI (BYOC)", self.image_edit)
        form.addRow("What it runs", self.backend_combo)
        form.addRow("", self.smoke_box)
        self.choice_problem = wrap_label()
        self.choice_problem.setStyleSheet("color: #b00020;")
        self._page(form_page, self.choice_problem)

        # 2 instance type
        self.instance_table = read_only_table(["Instance", "vCPU", "Memory", "GPU", "GPU memory", "$/hour", "Note"])
        self.instance_table.setObjectName("instances")
        self.instance_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.instance_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for it in INSTANCE_TYPES:
            r = self.instance_table.rowCount()
            self.instance_table.insertRow(r)
            cells = [
                it.name,
                str(it.vcpu),
                f"{it.memory_gib:g} GiB",
                f"{it.gpus} × {it.gpu}" if it.gpus else "—",
                f"{it.gpu_memory_gib:g} GiB" if it.gpus else "—",
                f"${it.usd_per_hour:.3f}",
                it.note,
            ]
            for c, text in enumerate(cells):
                self.instance_table.setItem(r, c, table_item(text))
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 8)
        self.price_line = wrap_label()
        count_row = QHBoxLayout()
        count_row.addWidget(QLabel("Instances"))
        count_row.addWidget(self.count_spin)
        count_row.addWidget(self.price_line, 1)
        count_holder = QWidget()
        count_holder.setLayout(count_row)
        note = wrap_label(PRICES_NOTE)
        note.setStyleSheet("color: #555;")
        self.instance_table.itemSelectionChanged.connect(self._show_price)
        self.count_spin.valueChanged.connect(self._show_price)
        self._page(self.instance_table, count_holder, note, stretch=False)

        # 3 package
        self.package_again = QPushButton("Build again")
        self.package_again.clicked.connect(self.tracker.build_package)
        self._page(
            wrap_label(
                "The package holds the inference code, its wheels and the model weights, built for "
                "the chosen container. The log below shows the build."
            ),
            self.package_again,
        )

        # 4 dry run
        self.dry_button = QPushButton("Run the local dry run")
        self.dry_button.setObjectName("run_dry_run")
        self.dry_button.clicked.connect(self.tracker.run_dry_run)
        self.dry_verdict = wrap_label()
        self.dry_verdict.setObjectName("dry_verdict")
        self._page(
            wrap_label(
                "Optional: serve the package on this computer in the container's real serving stack "
                "and send one request, before any money is spent. It needs the local serving "
                "environment (created on first use, minutes). Next skips it."
            ),
            self.dry_button,
            self.dry_verdict,
        )

        # 5 preflight
        self.preflight_table = read_only_table(["", "Check", "Result", "Fix"], stretch=(2, 3))
        self.preflight_table.setObjectName("preflight")
        self.preflight_again = QPushButton("Run the checks again")
        self.preflight_again.clicked.connect(self.tracker.run_preflight)
        self._page(self.preflight_table, self.preflight_again, stretch=False)

        # 6 upload
        self.upload_bar = QProgressBar()
        self.upload_bar.setObjectName("upload_bar")
        self.upload_again = QPushButton("Upload again")
        self.upload_again.clicked.connect(self.tracker.upload)
        self._page(
            wrap_label(
                "The package goes to the model bucket under a name made of its content: a finished "
                "upload is never sent twice (running this step again skips it)."
            ),
            self.upload_bar,
            self.upload_again,
        )

        # 7 create & wait
        self.endpoint_state = QLabel()
        self.endpoint_state.setObjectName("endpoint_state")
        self.endpoint_state.setStyleSheet("font-size: 13pt;")
        self.create_again = QPushButton("Create again")
        self.create_again.clicked.connect(self.tracker.create)
        self._page(
            wrap_label(
                "SageMaker creates the model, the endpoint configuration and the endpoint, then starts "
                "the instance (usually 5–15 minutes). The endpoint's CloudWatch log lines appear below "
                "as they arrive. Cancel deletes what this run created."
            ),
            self.endpoint_state,
            self.create_again,
        )

        # 8 smoke test
        self.smoke_text = wrap_label()
        self.smoke_text.setObjectName("smoke_text")
        self._page(
            wrap_label("A small real request (a 64×64 image and a box) checks that the model answers."), self.smoke_text
        )

        # 9 use
        self.use_text = wrap_label()
        self.use_button = QPushButton("Use this endpoint now")
        self.use_button.setObjectName("use_endpoint")
        bill = wrap_label(
            "The endpoint bills every hour until it is deleted: Cloud → Endpoints… lists it with its "
            "cost so far and deletes it."
        )
        bill.setStyleSheet("color: #8a5300;")
        self.another_button = QPushButton("Start another deployment")
        self.another_button.setToolTip("Forget this run's steps (the endpoint stays; Cloud → Endpoints… lists it)")
        self._page(self.use_text, self.use_button, bill, self.another_button)

        self._load_choices()

    def _load_choices(self) -> None:
        c = self.tracker.choices
        self.name_edit.setText(c.name)
        i = self.target_combo.findData(c.target)
        self.target_combo.setCurrentIndex(max(0, i))
        self.backend_combo.setCurrentIndex(max(0, self.backend_combo.findData(c.backend)))
        self.image_edit.setText(c.image_uri or "")
        self.smoke_box.setChecked(c.smoke)
        self.count_spin.setValue(c.instance_count)
        for r in range(self.instance_table.rowCount()):
            if self._instance_name(r) == c.instance_type:
                self.instance_table.selectRow(r)
        self._target_changed()
        self._show_price()

    def _target_changed(self) -> None:
        self.image_edit.setEnabled(self.target_combo.currentData() == "byoc")

    def _selected_instance(self) -> str:
        rows = self.instance_table.selectionModel().selectedRows()
        return self._instance_name(rows[0].row()) if rows else self.tracker.choices.instance_type

    def _instance_name(self, row: int) -> str:
        item = self.instance_table.item(row, 0)
        assert item is not None  # every cell of the table is filled in __init__
        return item.text()

    def _show_price(self) -> None:
        from cloud.pricing import format_usd, hourly_price

        price = hourly_price(self._selected_instance())
        n = self.count_spin.value()
        self.price_line.setText(
            f"about {format_usd(price * n if price else None)} per hour, "
            f"{format_usd(price * n * 24 if price else None)} per day while it runs"
        )

    def _save_choices(self) -> str | None:
        """Copy the form into the tracker; a sentence when something is wrong."""
        from cloud.deploy.spec import endpoint_name_problem

        name = self.name_edit.text().strip()
        problem = endpoint_name_problem(name)
        if problem:
            return f"The deployment name: {problem}."
        target = self.target_combo.currentData()
        image = self.image_edit.text().strip() or None
        if target == "byoc" and not image:
            return "Your own container needs its image URI."
        if not self.tracker.running:
            self.tracker.set_choices(
                name=name,
                target=target,
                backend=self.backend_combo.currentData(),
                image_uri=image if target == "byoc" else None,
                smoke=self.smoke_box.isChecked(),
                instance_type=self._selected_instance(),
                instance_count=self.count_spin.value(),
            )
        return None

    # -- page-local views ------------------------------------------------------------------
    def _render_credentials(self) -> None:
        from desktop_app.core import deploy_jobs as jobs

        tr = self.tracker
        rows = tr.credential_rows
        if rows is getattr(self, "_cred_rows_shown", None):
            return  # repainted for another step: the settings and keyring were read for these rows
        self._cred_rows_shown = rows
        try:
            self.cred_summary.setText(jobs.describe(tr.values()))
        except Exception as exc:  # noqa: BLE001
            self.cred_summary.setText(f"The AWS settings cannot be read: {type(exc).__name__}")
        self.cred_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            self.cred_table.setItem(r, 0, table_item("✓" if row.ok else "✗", colour="#1b5e20" if row.ok else "#b00020"))
            self.cred_table.setItem(r, 1, table_item(row.check))
            self.cred_table.setItem(r, 2, table_item(row.sentence))
        self.cred_table.resizeRowsToContents()

    def _render_checks(self) -> None:
        checks = self.tracker.checks
        if self.preflight_table.rowCount() == len(checks) and checks:
            return
        self.preflight_table.setRowCount(len(checks))
        for r, c in enumerate(checks):
            level = getattr(c.level, "value", str(c.level))
            mark, colour = {"ok": ("✓", "#1b5e20"), "warning": ("!", "#8a5300")}.get(level, ("✗", "#b00020"))
            self.preflight_table.setItem(r, 0, table_item(mark, colour=colour))
            self.preflight_table.setItem(r, 1, table_item(c.name))
            self.preflight_table.setItem(r, 2, table_item(c.message))
            self.preflight_table.setItem(r, 3, table_item(c.fix if level != "ok" else ""))
        self.preflight_table.resizeRowsToContents()

    def _show_bytes(self, done: int, total: int) -> None:
        if self.stack.currentIndex() == 6:
            self.upload_bar.setRange(0, max(total, 1))
            self.upload_bar.setValue(done)
            self.upload_bar.setFormat(f"{done / 1e6:.1f} of {total / 1e6:.1f} MB (%p%)")
