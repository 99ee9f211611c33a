"""The Cloud menu's wiring, kept out of main_window.py: Deploy to SageMaker…, Endpoints…, the
"Use this endpoint now" switch and the exit prompt for endpoints this app left running.

``cloud_handlers(window)`` gives the action handlers; ``confirm_close(window)`` is called from
``MainWindow.closeEvent`` (False: stay open). The :class:`DeploymentTracker` lives here, owned by
the window (``window._cloud``), so the wizard dialog can be closed and reopened while a step runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEventLoop, QObject
from PySide6.QtWidgets import QAbstractButton, QMessageBox, QWidget

CLOSE_WAIT_S = 180.0  # a rollback at exit: delete calls, no waiting for the instance


class CloudWiring(QObject):
    def __init__(self, window: Any) -> None:
        super().__init__(window)
        from desktop_app.core.cloud_ledger import EndpointLedger
        from desktop_app.gui.deploy_tracker import DeploymentTracker

        self.window = window
        self.ledger = EndpointLedger()
        self.tracker = DeploymentTracker(values=self.values, ledger=self.ledger, parent=self)
        self.tracker.changed.connect(self._mirror_status)
        self.wizard: Any = None
        self.endpoints: Any = None

    def values(self) -> dict[str, Any]:
        """Settings in force, secrets included (never log them)."""
        from desktop_app.core import deploy_jobs as jobs
        from desktop_app.core.secrets import default_store

        return jobs.app_values(self.window.settings.values(), default_store())

    # -- windows ---------------------------------------------------------------------------
    def show_wizard(self) -> Any:
        from desktop_app.gui.dialogs.deploy_wizard import DeployWizard

        if self.wizard is None:
            self.wizard = DeployWizard(
                self.tracker,
                use_endpoint=self.use_endpoint,
                open_settings=self.window.dialogs.show_settings,
                parent=self.window,
            )
            self.wizard.destroyed.connect(lambda *_: setattr(self, "wizard", None))
        self.wizard.show()
        self.wizard.raise_()
        return self.wizard

    def close_wizard(self) -> None:
        """Close and destroy the dialog (the tracker and its running step stay)."""
        if self.wizard is not None:
            wizard, self.wizard = self.wizard, None
            wizard.close()
            wizard.deleteLater()

    def show_endpoints(self) -> Any:
        from desktop_app.gui.dialogs.cloud_endpoints import CloudEndpointsDialog

        if self.endpoints is None:
            self.endpoints = CloudEndpointsDialog(values=self.values, ledger=self.ledger, parent=self.window)
        else:
            self.endpoints.show_records([(r, None) for r in self.ledger.records()])
        self.endpoints.show()
        self.endpoints.raise_()
        if self.ledger.records():
            self.endpoints.refresh()
        return self.endpoints

    # -- use the endpoint ------------------------------------------------------------------
    def use_endpoint(self, name: str, region: str) -> None:
        """Write remote/endpoint_name + region and switch the backend the way the Backend menu does."""
        window, s = self.window, self.window.settings
        s.set_value("remote/endpoint_name", name)
        if region:
            s.set_value("remote/endpoint_region", region)
        s.sync()
        window.backend_menu.set_choice("sagemaker", s.device)
        window.choose_backend("sagemaker", s.device)
        window.status_panel.message(f"using the SageMaker endpoint {name} ({region})")

    def _mirror_status(self) -> None:
        tr, panel = self.tracker, getattr(self.window, "status_panel", None)
        if panel is None:
            return
        if tr.running:
            panel.set_work(f"deploy: {tr.current}…", done=0, total=0)
        else:
            panel.set_work("")

    # -- closing ---------------------------------------------------------------------------
    def confirm_close(self) -> bool:
        tr = self.tracker
        if tr.running:
            answer = ask_close(
                self.window,
                "A deployment is running",
                f'The deployment {tr.choices.name} is at the step "{tr.current}". Cancel it (what '
                "this run created in AWS is deleted) and quit, or leave it to finish in AWS?",
                {"delete": "Cancel it and quit", "keep": "Leave it and quit", "cancel": "Stay"},
            )
            if answer == "cancel":
                return False
            if answer == "delete":
                tr.cancel()
                _spin_until(lambda: not tr.task.running, CLOSE_WAIT_S)
        live = self.ledger.live()
        if not live:
            return True
        names = ", ".join(f"{r.name} ({r.region}, {r.instance_type})" for r in live)
        answer = ask_close(
            self.window,
            "Endpoints still running",
            f"{len(live)} SageMaker endpoint(s) this app created still run and bill every hour: "
            f"{names}. Delete them now?",
            {"delete": "Delete and quit", "keep": "Keep them running and quit", "cancel": "Stay"},
        )
        if answer == "cancel":
            return False
        if answer == "delete":
            self.delete_blocking([(r.name, r.region) for r in live])
        return True

    def delete_blocking(self, endpoints: list[tuple[str, str]]) -> list[str]:
        """Delete endpoints off the GUI thread while the event loop keeps the window painted."""
        from desktop_app.core import deploy_jobs as jobs
        from desktop_app.gui.dialogs.background import BackgroundTask

        values, problems = self.values(), []

        def job(_report: Any, cancel: Any) -> None:
            for name, region in endpoints:
                try:
                    jobs.delete(values, name, region, self.ledger, say=lambda _t: None, cancel=cancel)
                except Exception as exc:  # noqa: BLE001 - tell, and go on with the others
                    problems.append(f"{name}: {exc}")

        task = BackgroundTask()
        task.start(job, name="delete-at-exit")
        _spin_until(lambda: not task.running, CLOSE_WAIT_S)
        if problems:
            QMessageBox.warning(
                self.window,
                "Endpoints not deleted",
                "\n".join(problems) + "\nDelete them with `langsam-studio deploy down NAME` or in the AWS console.",
            )
        return problems


def _spin_until(done: Callable[[], bool], timeout_s: float) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    while not done() and time.monotonic() < deadline:
        loop.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.02)
    loop.processEvents()  # deliver the last queued results


def ask_close(parent: QWidget, title: str, text: str, choices: dict[str, str]) -> str:
    """A three-way question; returns a key of ``choices`` (tests replace this function)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=parent)
    buttons: dict[QAbstractButton, str] = {
        box.addButton(choices["delete"], QMessageBox.ButtonRole.DestructiveRole): "delete",
        box.addButton(choices["keep"], QMessageBox.ButtonRole.AcceptRole): "keep",
    }
    stay = box.addButton(choices["cancel"], QMessageBox.ButtonRole.RejectRole)
    buttons[stay] = "cancel"
    box.setDefaultButton(stay)
    box.exec()
    return buttons.get(box.clickedButton(), "cancel")


def wiring(window: Any) -> CloudWiring:
    if getattr(window, "_cloud", None) is None:
        window._cloud = CloudWiring(window)
    return window._cloud


def cloud_handlers(window: Any) -> dict[str, Callable[[], Any]]:
    return {
        "deploy_wizard": lambda: wiring(window).show_wizard(),
        "cloud_endpoints": lambda: wiring(window).show_endpoints(),
    }


def confirm_close(window: Any) -> bool:
    """MainWindow.closeEvent's hook: False keeps the window open."""
    from desktop_app.core.cloud_ledger import EndpointLedger

    cloud = getattr(window, "_cloud", None)
    if cloud is None:
        if not EndpointLedger().live():
            return True  # nothing deployed by this app is running: no Cloud code loaded at all
        cloud = wiring(window)
    return cloud.confirm_close()
