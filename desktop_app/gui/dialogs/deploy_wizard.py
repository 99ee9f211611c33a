"""Cloud → Deploy to SageMaker…: a step-by-step view over :class:`DeploymentTracker`.

Pages: credentials → target & model → instance → package → dry run (optional) → preflight →
upload → create & wait → smoke test → use. The long steps run in the tracker (owned by the
window), so this dialog can be closed and reopened at any time; it re-reads the tracker on every
``changed`` signal. "Cancel step" cancels the running step (create/wait/smoke roll back what this
run created); "Close" only hides the dialog.
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
    QListWidget,
    QPlainTextEdit,
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

PAGES = (
    "Credentials",
    "Target & model",
    "Instance",
    "Package",
    "Dry run (optional)",
    "Preflight",
    "Upload",
    "Create & wait",
    "Smoke test",
    "Use the endpoint",
)
STEP_OF_PAGE = {0: "credentials", 3: "package", 4: "dryrun", 5: "preflight", 6: "upload", 7: "deploy", 8: "smoke"}
PAGE_OF_STEP = {v: k for k, v in STEP_OF_PAGE.items()}
MARK = {t.DONE: "✓", t.FAILED: "✗", t.RUNNING: "…", t.CANCELLED: "⊘", t.SKIPPED: "–", t.PENDING: ""}


def _wrap(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _table(headers: list[str], *, stretch: tuple[int, ...] = ()) -> QTableWidget:
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


def _item(text: str, *, colour: str | None = None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if colour:
        from PySide6.QtGui import QColor

        item.setForeground(QColor(colour))
    return item


class DeployWizard(QDialog):
    def __init__(
        self,
        tracker: t.DeploymentTracker,
        *,
        use_endpoint: Callable[[str, str], None] | None = None,
        open_settings: Callable[[], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Deploy to SageMaker")
        self.setObjectName("deploy_wizard")
        self.tracker = tracker
        self._use_endpoint = use_endpoint
        self.resize(980, 640)

        self.steps = QListWidget()
        self.steps.setObjectName("steps")
        self.steps.setFixedWidth(190)
        self.steps.addItems([f"{i + 1}. {p}" for i, p in enumerate(PAGES)])
        self.steps.currentRowChanged.connect(self._clicked_step)
        self.stack = QStackedWidget()
        self.title = QLabel()
        self.title.setStyleSheet("font-size: 15pt; font-weight: 600;")
        self.step_state = _wrap()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(10)
        self.busy.setTextVisible(False)
        self.log_view = QPlainTextEdit()
        self.log_view.setObjectName("log")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(t.MAX_LOG)
        self.log_view.setPlaceholderText("The log of the running step appears here.")

        self._build_pages(open_settings)

        self.back_button = QPushButton("‹ Back")
        self.next_button = QPushButton("Next ›")
        self.next_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel step")
        self.cancel_button.setToolTip(
            "Stop the running step; while creating the endpoint this deletes what this run created (rollback)"
        )
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip(
            "Hide this window; a running step goes on (Cloud → Deploy to SageMaker… shows it again)"
        )
        self.back_button.clicked.connect(lambda: self.go(self.stack.currentIndex() - 1))
        self.next_button.clicked.connect(self.next)
        self.cancel_button.clicked.connect(tracker.cancel)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        for b in (self.back_button, self.next_button, self.close_button):
            buttons.addWidget(b)

        right = QVBoxLayout()
        right.addWidget(self.title)
        right.addWidget(self.step_state)
        right.addWidget(self.busy)
        right.addWidget(self.stack, 3)
        right.addWidget(self.log_view, 2)
        right.addLayout(buttons)
        layout = QHBoxLayout(self)
        layout.addWidget(self.steps)
        layout.addLayout(right, 1)

        self.log_view.setPlainText("\n".join(tracker.log))
        tracker.changed.connect(self.refresh_view)
        tracker.line.connect(self.log_view.appendPlainText)
        tracker.upload_progress.connect(self._show_bytes)
        self.go(tracker.page if not tracker.running else PAGE_OF_STEP.get(tracker.current or "", tracker.page))
        if tracker.status["credentials"] == t.PENDING and not tracker.running:
            tracker.check_credentials()

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
        self.cred_summary = _wrap()
        self.cred_table = _table(["", "Check", "Result"], stretch=(2,))
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
            _wrap("The deployment uses the AWS settings of the app (Settings → AWS)."),
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
        self.choice_problem = _wrap()
        self.choice_problem.setStyleSheet("color: #b00020;")
        self._page(form_page, self.choice_problem)

        # 2 instance type
        self.instance_table = _table(["Instance", "vCPU", "Memory", "GPU", "GPU memory", "$/hour", "Note"])
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
                self.instance_table.setItem(r, c, _item(text))
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 8)
        self.price_line = _wrap()
        count_row = QHBoxLayout()
        count_row.addWidget(QLabel("Instances"))
        count_row.addWidget(self.count_spin)
        count_row.addWidget(self.price_line, 1)
        count_holder = QWidget()
        count_holder.setLayout(count_row)
        note = _wrap(PRICES_NOTE)
        note.setStyleSheet("color: #555;")
        self.instance_table.itemSelectionChanged.connect(self._show_price)
        self.count_spin.valueChanged.connect(self._show_price)
        self._page(self.instance_table, count_holder, note, stretch=False)

        # 3 package
        self.package_again = QPushButton("Build again")
        self.package_again.clicked.connect(self.tracker.build_package)
        self._page(
            _wrap(
                "The package holds the inference code, its wheels and the model weights, built for "
                "the chosen container. The log below shows the build."
            ),
            self.package_again,
        )

        # 4 dry run
        self.dry_button = QPushButton("Run the local dry run")
        self.dry_button.setObjectName("run_dry_run")
        self.dry_button.clicked.connect(self.tracker.run_dry_run)
        self.dry_verdict = _wrap()
        self.dry_verdict.setObjectName("dry_verdict")
        self._page(
            _wrap(
                "Optional: serve the package on this computer in the container's real serving stack "
                "and send one request, before any money is spent. It needs the local serving "
                "environment (created on first use, minutes). Next skips it."
            ),
            self.dry_button,
            self.dry_verdict,
        )

        # 5 preflight
        self.preflight_table = _table(["", "Check", "Result", "Fix"], stretch=(2, 3))
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
            _wrap(
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
            _wrap(
                "SageMaker creates the model, the endpoint configuration and the endpoint, then starts "
                "the instance (usually 5–15 minutes). The endpoint's CloudWatch log lines appear below "
                "as they arrive. Cancel deletes what this run created."
            ),
            self.endpoint_state,
            self.create_again,
        )

        # 8 smoke test
        self.smoke_text = _wrap()
        self.smoke_text.setObjectName("smoke_text")
        self._page(
            _wrap("A small real request (a 64×64 image and a box) checks that the model answers."), self.smoke_text
        )

        # 9 use
        self.use_text = _wrap()
        self.use_button = QPushButton("Use this endpoint now")
        self.use_button.setObjectName("use_endpoint")
        self.use_button.clicked.connect(self._use)
        bill = _wrap(
            "The endpoint bills every hour until it is deleted: Cloud → Endpoints… lists it with its "
            "cost so far and deletes it."
        )
        bill.setStyleSheet("color: #8a5300;")
        self.another_button = QPushButton("Start another deployment")
        self.another_button.setToolTip("Forget this run's steps (the endpoint stays; Cloud → Endpoints… lists it)")
        self.another_button.clicked.connect(self._another)
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

    # -- navigation ------------------------------------------------------------------------
    def _clicked_step(self, row: int) -> None:
        if row != self.stack.currentIndex() and row >= 0:
            if row <= self._furthest():
                self.go(row)
            else:
                self.steps.setCurrentRow(self.stack.currentIndex())

    def _furthest(self) -> int:
        """The last page the person may jump to: after every page whose step is done."""
        s = self.tracker.status
        ok = (t.DONE, t.SKIPPED)
        furthest = 3
        for page in range(3, len(PAGES)):
            step = STEP_OF_PAGE.get(page)
            furthest = page
            if step and s[step] not in ok and step != "dryrun":
                break
        return max(furthest, PAGE_OF_STEP.get(self.tracker.current or "", 0))

    def go(self, page: int) -> None:
        page = max(0, min(len(PAGES) - 1, page))
        if self.stack.currentIndex() in (1, 2) and page != self.stack.currentIndex():
            problem = self._save_choices()
            self.choice_problem.setText(problem or "")
            if problem and page > self.stack.currentIndex():
                return
        self.stack.setCurrentIndex(page)
        self.tracker.page = page
        self.steps.blockSignals(True)
        self.steps.setCurrentRow(page)
        self.steps.blockSignals(False)
        self.refresh_view()

    def next(self) -> None:
        """Next page; a long step whose page we enter starts (if it has not run yet)."""
        page, tr = self.stack.currentIndex(), self.tracker
        if not self._next_allowed(page):
            return
        if page in (1, 2):
            problem = self._save_choices()
            self.choice_problem.setText(problem or "")
            if problem:
                return
        if page == 4 and tr.status["dryrun"] != t.DONE:
            tr.skip_dry_run()
        target = page + 1
        self.go(target)
        step = STEP_OF_PAGE.get(target)
        if step and tr.status[step] in (t.PENDING,) and not tr.running:
            {"package": tr.build_package, "preflight": tr.run_preflight, "upload": tr.upload, "deploy": tr.create}.get(
                step, lambda: None
            )()

    # -- rendering -------------------------------------------------------------------------
    def refresh_view(self) -> None:  # not ``render``: that is QWidget.render(device)
        tr, page = self.tracker, self.stack.currentIndex()
        step = STEP_OF_PAGE.get(page)
        for i in range(len(PAGES)):
            s = STEP_OF_PAGE.get(i)
            chosen = i in (1, 2) and tr.status["package"] != t.PENDING  # the choices went into a package
            mark = MARK.get(tr.status[s], "") if s else ("✓" if chosen else "")
            self.steps.item(i).setText(f"{i + 1}. {PAGES[i]}" + (f"   {mark}" if mark else ""))
        self.title.setText(PAGES[page])
        state = tr.status.get(step, "") if step else ""
        words = {
            t.RUNNING: "Running…",
            t.DONE: "Done.",
            t.FAILED: "Failed.",
            t.CANCELLED: "Cancelled.",
            t.SKIPPED: "Skipped.",
            t.PENDING: "",
        }.get(state, "")
        text = tr.text.get(step, "") if step else ""
        self.step_state.setText(" ".join(x for x in (words, text) if x))
        colour = {t.FAILED: "#b00020", t.CANCELLED: "#8a5300", t.DONE: "#1b5e20"}.get(state, "")
        self.step_state.setStyleSheet(f"color: {colour};" if colour else "")
        running_here = tr.running and (tr.current == step or (page == 7 and tr.current == "smoke"))
        self.busy.setVisible(running_here and page != 6)
        self.cancel_button.setEnabled(tr.running)
        self.cancel_button.setText(f"Cancel {tr.current}" if tr.running else "Cancel step")
        self.back_button.setEnabled(page > 0)
        self.next_button.setEnabled(self._next_allowed(page))
        self.next_button.setText(self._next_text(page))
        self.log_view.setVisible(page >= 3 and page not in (5, 9))  # the preflight table says it all
        editable = not tr.running and not tr.deployed
        for w in (
            self.name_edit,
            self.target_combo,
            self.backend_combo,
            self.smoke_box,
            self.instance_table,
            self.count_spin,
        ):
            w.setEnabled(editable)
        self.image_edit.setEnabled(editable and self.target_combo.currentData() == "byoc")
        idle = not tr.running
        self.cred_again.setEnabled(idle)
        self.package_again.setEnabled(idle and tr.status["package"] != t.PENDING and not tr.deployed)
        self.dry_button.setEnabled(idle and tr.package is not None)
        self.preflight_again.setEnabled(idle and tr.package is not None and not tr.deployed)
        self.upload_again.setEnabled(idle and tr.status["upload"] in (t.FAILED, t.CANCELLED))
        self.create_again.setEnabled(
            idle
            and tr.status["deploy"] in (t.FAILED, t.CANCELLED)
            or idle
            and tr.status["smoke"] in (t.FAILED, t.CANCELLED)
        )
        if page == 0:
            self._render_credentials()
        self._render_checks()
        self.dry_verdict.setText(tr.text["dryrun"])
        done, total = tr.uploaded
        self.upload_bar.setRange(0, max(total, 1))
        self.upload_bar.setValue(done if total else (1 if tr.status["upload"] == t.DONE else 0))
        self.upload_bar.setFormat(f"{done / 1e6:.1f} of {total / 1e6:.1f} MB (%p%)" if total else "%p%")
        self.endpoint_state.setText(f"Endpoint {tr.choices.name}: {tr.endpoint_status or '—'}")
        self.smoke_text.setText(tr.text["smoke"] or ("Waiting for the endpoint…" if tr.running else ""))
        if tr.result is not None:
            self.use_text.setText(
                f"Endpoint {tr.result.spec.endpoint_name} in {tr.result.spec.region} is "
                f"{tr.result.state.status}. Use it as the app's backend (Inference → SageMaker "
                "endpoint): the settings get its name and region."
            )
        else:
            self.use_text.setText("No endpoint yet.")
        self.use_button.setEnabled(tr.result is not None and self._use_endpoint is not None)
        self.another_button.setEnabled(not tr.running and tr.status["credentials"] != t.PENDING)

    def _next_allowed(self, page: int) -> bool:
        tr = self.tracker
        if page >= len(PAGES) - 1:
            return False
        following = STEP_OF_PAGE.get(page + 1)
        starts = following in ("package", "preflight", "upload", "deploy")
        if tr.running and starts and following is not None and tr.status[following] == t.PENDING:
            return False  # entering that page starts its step: after the running one
        step = STEP_OF_PAGE.get(page)
        if step in ("credentials", None) or step == "dryrun":
            return not (step == "dryrun" and tr.status["dryrun"] == t.RUNNING)
        return tr.status[step] in (t.DONE, t.SKIPPED)

    def _next_text(self, page: int) -> str:
        from cloud.pricing import format_usd, hourly_price

        tr = self.tracker
        if page == 2 and tr.status["package"] == t.PENDING:
            return "Build package ›"
        if page == 4 and tr.status["dryrun"] != t.DONE:
            return "Skip › preflight"
        if page == 6 and tr.status["deploy"] == t.PENDING:
            price = hourly_price(tr.choices.instance_type)
            cost = f" (about {format_usd(price * tr.choices.instance_count)}/h)" if price else ""
            return f"Create endpoint{cost} ›"
        return "Next ›"

    def _render_credentials(self) -> None:
        from desktop_app.core import deploy_jobs as jobs

        tr = self.tracker
        try:
            self.cred_summary.setText(jobs.describe(tr.values()))
        except Exception as exc:  # noqa: BLE001
            self.cred_summary.setText(f"The AWS settings cannot be read: {type(exc).__name__}")
        rows = tr.credential_rows
        self.cred_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            self.cred_table.setItem(r, 0, _item("✓" if row.ok else "✗", colour="#1b5e20" if row.ok else "#b00020"))
            self.cred_table.setItem(r, 1, _item(row.check))
            self.cred_table.setItem(r, 2, _item(row.sentence))
        self.cred_table.resizeRowsToContents()

    def _render_checks(self) -> None:
        checks = self.tracker.checks
        if self.preflight_table.rowCount() == len(checks) and checks:
            return
        self.preflight_table.setRowCount(len(checks))
        for r, c in enumerate(checks):
            level = getattr(c.level, "value", str(c.level))
            mark, colour = {"ok": ("✓", "#1b5e20"), "warning": ("!", "#8a5300")}.get(level, ("✗", "#b00020"))
            self.preflight_table.setItem(r, 0, _item(mark, colour=colour))
            self.preflight_table.setItem(r, 1, _item(c.name))
            self.preflight_table.setItem(r, 2, _item(c.message))
            self.preflight_table.setItem(r, 3, _item(c.fix if level != "ok" else ""))
        self.preflight_table.resizeRowsToContents()

    def _show_bytes(self, done: int, total: int) -> None:
        if self.stack.currentIndex() == 6:
            self.upload_bar.setRange(0, max(total, 1))
            self.upload_bar.setValue(done)
            self.upload_bar.setFormat(f"{done / 1e6:.1f} of {total / 1e6:.1f} MB (%p%)")

    def _another(self) -> None:
        if not self.tracker.running:
            self.tracker.reset()
            self.log_view.clear()
            self.use_button.setText("Use this endpoint now")
            self._load_choices()
            self.go(0)
            self.tracker.check_credentials()

    def _use(self) -> None:
        result = self.tracker.result
        if result is not None and self._use_endpoint is not None:
            self._use_endpoint(result.spec.endpoint_name, result.spec.region)
            self.use_button.setText("In use ✓")
