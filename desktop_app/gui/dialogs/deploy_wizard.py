"""Cloud → Deploy to SageMaker…: a step-by-step view over :class:`DeploymentTracker`.

Pages: credentials → target & model → instance → package → dry run (optional) → preflight →
upload → create & wait → smoke test → use. The long steps run in the tracker (owned by the
window), so this dialog can be closed and reopened at any time; it re-reads the tracker on every
``changed`` signal. "Cancel step" cancels the running step (create/wait/smoke roll back what this
run created); "Close" only hides the dialog.

This module is the shell (frame, step list, buttons, navigation, ``refresh_view``); the pages'
widgets and page-local views are :class:`~desktop_app.gui.dialogs.deploy_wizard_pages.DeployWizardPages`.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.gui import deploy_tracker as t
from desktop_app.gui.dialogs.deploy_wizard_pages import DeployWizardPages, wrap_label

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


class DeployWizard(DeployWizardPages):
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
        self.step_state = wrap_label()
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
        self.use_button.clicked.connect(self._use)
        self.another_button.clicked.connect(self._another)

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
