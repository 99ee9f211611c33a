"""The running deployment, owned by the window, not by the wizard dialog.

:class:`DeploymentTracker` holds the wizard's choices, each step's state and text, the log and
the one :class:`BackgroundTask` that runs the current long step (``desktop_app.core.deploy_jobs``).
The wizard is only a view over it: closing the wizard leaves the step running; reopening shows the
live state (``changed`` re-renders, ``line`` appends to the log). Cancel cancels the task's token:
the step's job raises :class:`Cancelled` at its next callback/poll and, during create/wait/smoke,
``deploy_up`` rolls back what this run created before the task reports ``cancelled``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop_app.core import deploy_jobs as jobs
from desktop_app.gui.dialogs.background import BackgroundTask
from inference.cancel import CancelReason

# long steps, in order; "deploy" is create + wait for InService, "smoke" the test request after it
STEPS = ("credentials", "package", "dryrun", "preflight", "upload", "deploy", "smoke")
PENDING, RUNNING, DONE, FAILED, CANCELLED, SKIPPED = "pending", "running", "done", "failed", "cancelled", "skipped"
MAX_LOG = 2000


class DeploymentTracker(QObject):
    changed = Signal()  # any state change: the view re-reads the tracker
    line = Signal(str)  # one more log line
    upload_progress = Signal(int, int)

    _say = Signal(str)  # from the job's thread, queued onto the GUI thread
    _check = Signal(object)
    _bytes = Signal(int, int)

    def __init__(
        self,
        *,
        values: Callable[[], Mapping[str, Any]],
        ledger: Any,
        work_dir: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._values = values
        self.ledger = ledger
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="langsam-deploy-"))
        self.task = BackgroundTask(self)
        self.task.finished.connect(self._finished)
        self.task.failed.connect(self._failed)
        self.task.cancelled.connect(self._cancelled)
        self._say.connect(self._on_say)
        self._check.connect(self._on_check)
        self._bytes.connect(self._on_bytes)
        self.cache_dir: Path | None = None
        self.venv_dir: Path | None = None
        self.sleep: Callable[[float], None] | None = None  # tests: a faster poll
        self.clients: Any = None  # tests: AwsClients to use instead of the settings' (e.g. a Stubber)
        self.reset()

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        self.choices = jobs.DeployChoices()
        self.status: dict[str, str] = dict.fromkeys(STEPS, PENDING)
        self.text: dict[str, str] = dict.fromkeys(STEPS, "")
        self.credential_rows: list[Any] = []
        self.checks: list[Any] = []
        self.log: list[str] = []
        self.package: Path | None = None
        self.uploaded = (0, 0)
        self.endpoint_status = ""
        self.result: Any = None
        self.current: str | None = None
        self.page = 0  # the page the wizard showed last (reopening returns there)
        self.changed.emit()

    @property
    def running(self) -> bool:
        return self.current is not None

    @property
    def deployed(self) -> bool:
        return self.result is not None

    def set_choices(self, **changes: Any) -> None:
        new = dataclasses.replace(self.choices, **changes)
        if new != self.choices:
            affects_package = any(getattr(new, k) != getattr(self.choices, k) for k in ("target", "backend"))
            self.choices = new
            for step in STEPS[1:] if affects_package else STEPS[3:]:
                if self.status[step] != RUNNING and not self.deployed:
                    self.status[step], self.text[step] = PENDING, ""
            if affects_package:
                self.package = None
            self.changed.emit()

    def values(self) -> Mapping[str, Any]:
        return self._values()

    def _add(self, text: str) -> None:
        from cloud.aws.env import redact

        text = redact(text)
        self.log.append(text)
        del self.log[:-MAX_LOG]
        self.line.emit(text)

    # -- steps -----------------------------------------------------------------------------
    def _start(self, step: str, job: Callable[[Any, Any], Any]) -> bool:
        if self.running or self.task.running:
            return False
        self.current = step
        self.status[step], self.text[step] = RUNNING, ""
        self._add(f"— {step} —")
        self.changed.emit()
        self.task.start(job, name=f"deploy-{step}")
        return True

    def check_credentials(self) -> bool:
        values = self.values()
        self.credential_rows = []
        return self._start("credentials", lambda _r, cancel: jobs.check_credentials(values, cancel=cancel))

    def build_package(self) -> bool:
        choices, out = self.choices, self.work_dir / f"package-{self.choices.target}-{self.choices.backend}"
        return self._start(
            "package",
            lambda _r, cancel: jobs.build(choices, out, log=self._say.emit, cancel=cancel, cache_dir=self.cache_dir),
        )

    def run_dry_run(self) -> bool:
        choices, package = self.choices, self.package
        return self._start(
            "dryrun",
            lambda _r, cancel: jobs.dry_run(
                choices, package, log=self._say.emit, cancel=cancel, venv_dir=self.venv_dir
            ),
        )

    def skip_dry_run(self) -> None:
        if self.status["dryrun"] in (PENDING, FAILED, CANCELLED) and not self.running:
            self.status["dryrun"], self.text["dryrun"] = SKIPPED, "Skipped: no local dry run."
            self.changed.emit()

    def run_preflight(self) -> bool:
        values, choices, package = self.values(), self.choices, self.package
        self.checks = []
        return self._start(
            "preflight",
            lambda _r, cancel: jobs.preflight(
                values, choices, package, on_check=self._check.emit, cancel=cancel, clients=self.clients
            ),
        )

    def upload(self) -> bool:
        values, choices, package = self.values(), self.choices, self.package
        if package is None:
            self.status["upload"], self.text["upload"] = FAILED, "Build the package first."
            self.changed.emit()
            return False
        self.uploaded = (0, 0)
        return self._start(
            "upload",
            lambda _r, cancel: jobs.upload(
                values, choices, package, progress=self._bytes.emit, cancel=cancel, clients=self.clients
            ),
        )

    def create(self) -> bool:
        values, choices, package = self.values(), self.choices, self.package
        self.endpoint_status = ""
        self.status["smoke"], self.text["smoke"] = PENDING, ""
        return self._start(
            "deploy",
            lambda _r, cancel: jobs.create(
                values,
                choices,
                package,
                say=self._say.emit,
                log_line=lambda line: self._say.emit(f"  | {line.stream.split('/')[-1][:12]} {line.message}"),
                cancel=cancel,
                ledger=self.ledger,
                sleep=self._sleep(cancel),
                clients=self.clients,
            ),
        )

    def _sleep(self, cancel: Any) -> Callable[[float], None] | None:
        if self.sleep is None:
            return None
        fast = self.sleep

        def sleep(seconds: float) -> None:
            cancel.raise_if_cancelled()
            fast(seconds)
            cancel.raise_if_cancelled()

        return sleep

    def cancel(self) -> None:
        if self.running:
            self._add("cancelling… (what this run created is rolled back)")
            self.task.cancel(CancelReason.USER)

    def wait(self, timeout: float | None = None) -> bool:
        return self.task.wait(timeout)

    # -- results (GUI thread) --------------------------------------------------------------
    def _on_say(self, text: str) -> None:
        self._add(text)
        if self.current == "deploy":
            if "] endpoint " in text and ": " in text:
                self.endpoint_status = text.rsplit(": ", 1)[-1].strip()
                if self.endpoint_status == "InService" and self.choices.smoke:
                    self.status["deploy"], self.text["deploy"] = DONE, "The endpoint is InService."
                    self.status["smoke"] = RUNNING
                    self.current = "smoke"
            self.changed.emit()
        elif self.current == "smoke":
            self.changed.emit()

    def _on_check(self, result: Any) -> None:
        self.checks.append(result)
        self._add(result.line())
        self.changed.emit()

    def _on_bytes(self, done: int, total: int) -> None:
        self.uploaded = (done, total)
        self.upload_progress.emit(done, total)

    def _finished(self, result: Any) -> None:
        step, self.current = self.current, None
        if step is None:
            return
        self.status[step] = DONE
        if step == "credentials":
            self.credential_rows = list(result)
            bad = [r for r in result if not r.ok]
            self.text[step] = "All checks passed." if not bad else f"{len(bad)} problem(s): see the fixes below."
        elif step == "package":
            self.package = result.path
            self.text[step] = (
                f"{result.path} ({result.kind}, {result.size_bytes / 1e6:.1f} MB, backend "
                f"{result.backend}, for {result.target}) in {result.seconds:.0f} s"
            )
        elif step == "dryrun":
            self.status[step] = DONE if result.ok else FAILED
            self.text[step] = result.text
        elif step == "preflight":
            self.status[step] = DONE if result.ok else FAILED
            n = len(result.failures)
            warnings = sum(1 for c in result.checks if getattr(c.level, "value", c.level) == "warning")
            note = f" ({warnings} warning(s): read them, they do not stop the deployment)" if warnings else ""
            self.text[step] = (
                f"Every check passed{note}."
                if result.ok
                else f"{n} check(s) failed: fix them and run the checks again."
            )
        elif step == "upload":
            self.text[step] = (
                f"Uploaded {result.size / 1e6:.1f} MB in {result.seconds:.1f} s to {result.s3_uri}"
                if result.uploaded
                else f"Already in S3 (same content), not sent again: {result.s3_uri}"
            )
        elif step in ("deploy", "smoke"):
            self.result = result
            self.endpoint_status = result.state.status
            self.status["deploy"] = DONE
            self.text["deploy"] = (
                f"Endpoint {result.spec.endpoint_name} is {result.state.status} ({result.applied.endpoint_action})."
            )
            if result.smoke is not None:
                self.status["smoke"] = DONE
                self.text["smoke"] = (
                    f"The model answers: {result.smoke.answer}; first answer after "
                    f"{result.smoke.seconds_to_answer:.0f} s, {result.smoke.attempts} attempt(s)."
                )
            else:
                self.status["smoke"], self.text["smoke"] = SKIPPED, "No smoke test was asked for."
        self.changed.emit()

    def _failed(self, message: str) -> None:
        from cloud.aws.env import redact

        step, self.current = self.current, None
        if step is None:
            return
        self.status[step], self.text[step] = FAILED, redact(message)
        if step == "smoke":
            self.text["smoke"] += " The endpoint was rolled back."
        self._add(f"failed: {redact(message)}")
        self.changed.emit()

    def _cancelled(self, message: str) -> None:
        step, self.current = self.current, None
        if step is None:
            return
        undone = " What this run created was deleted." if step in ("deploy", "smoke") else ""
        self.status[step], self.text[step] = CANCELLED, f"Cancelled ({message}).{undone}"
        self._add(f"cancelled: {message}")
        self.changed.emit()


__all__ = ["DeploymentTracker", "STEPS"]
