"""The deploy wizard, the Cloud endpoints window and the exit prompt (issue 10 part 3).

Control plane: moto's server (``fixtures_deploy.moto_clients``); inference for the smoke test: the
real classic server (``fixtures_server.run_server``) through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``.
Failure branches that moto cannot produce use botocore's Stubber for the SageMaker client. The
packages are real Ray packages of the classic backend (no weights: a few seconds).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from fixtures_deploy import MOTO_BUCKET
from fixtures_server import classic_factory, run_server

MOTO_CPU = "ml.c5.xlarge"
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def runtime_server():
    with run_server(backend_factory=classic_factory) as handle:
        yield handle


@pytest.fixture()
def aws_app_env(moto_clients, monkeypatch, runtime_server):
    """The app's AWS settings in force point at moto (environment variables win over the file)."""
    s = moto_clients.settings
    monkeypatch.setenv("AWS_ENDPOINT_URL", s.endpoint_url)
    monkeypatch.setenv("AWS_ARN_ROLE", s.role_arn)
    monkeypatch.setenv("MODEL_BUCKET", s.bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime_server.url)
    from desktop_app.core.secrets import reset_default_store

    reset_default_store()
    yield moto_clients
    reset_default_store()


def _sm(moto_clients):
    sm = moto_clients.client("sagemaker")
    return (
        len(sm.list_endpoints()["Endpoints"]),
        len(sm.list_endpoint_configs()["EndpointConfigs"]),
        len(sm.list_models()["Models"]),
    )


def _fast(tracker, package_cache_dir, **choices):
    tracker.cache_dir = package_cache_dir
    tracker.sleep = lambda s: __import__("time").sleep(min(s, 0.05))
    tracker.set_choices(
        **{
            "poll_s": 0.05,
            "instance_type": MOTO_CPU,
            "backend": "classic",
            "target": "ray",
            "name": "wizard-e2e",
            **choices,
        }
    )


def _wait_step(qtbot, tracker, step, timeout=300_000):  # a bound, not a speed check: a loaded CI machine is slow
    qtbot.waitUntil(lambda: tracker.status[step] not in ("running", "pending") and not tracker.running, timeout=timeout)
    return tracker.status[step]


# -- Qt-free parts ----------------------------------------------------------------------------
def test_price_table_is_dated_indicative_and_complete():
    from cloud.pricing import INSTANCE_TYPES, PRICES_DATE, PRICES_NOTE, cost_so_far, hourly_price

    names = {t.name for t in INSTANCE_TYPES}
    assert {
        "ml.c5.xlarge",
        "ml.m5.xlarge",
        "ml.g4dn.xlarge",
        "ml.g5.xlarge",
        "ml.g5.2xlarge",
        "ml.g6.xlarge",
        "ml.p3.2xlarge",
    } <= names
    assert PRICES_DATE in PRICES_NOTE and "ndicative" in PRICES_NOTE
    for t in INSTANCE_TYPES:
        assert t.vcpu > 0 and t.memory_gib > 0 and t.usd_per_hour > 0
        assert (t.gpus > 0) == (t.gpu_memory_gib > 0) == bool(t.gpu)
    assert cost_so_far("ml.g5.xlarge", 2, count=2) == pytest.approx(4 * hourly_price("ml.g5.xlarge"))
    assert cost_so_far("ml.unknown", 1) is None


def test_the_ledger_records_updates_forgets_and_survives_a_damaged_file(tmp_path):
    from desktop_app.core.cloud_ledger import EndpointLedger, EndpointRecord

    ledger = EndpointLedger(tmp_path / "l.json")
    ledger.record(EndpointRecord(name="a", region="us-east-1", instance_type="ml.g5.xlarge", created_at=100.0))
    ledger.record(EndpointRecord(name="a", region="eu-west-1", instance_type="ml.g5.xlarge", status="InService"))
    assert ledger.update("a", "us-east-1", status="InService").created_at == 100.0
    assert sorted(r.region for r in ledger.live()) == ["eu-west-1", "us-east-1"]
    ledger.forget("a", "eu-west-1")
    assert [r.region for r in EndpointLedger(tmp_path / "l.json").records()] == ["us-east-1"]
    (tmp_path / "l.json").write_text("{not json")
    assert EndpointLedger(tmp_path / "l.json").records() == []


# -- the wizard -----------------------------------------------------------------------------
def test_the_wizard_deploys_uses_lists_and_deletes_an_endpoint(make_window, qtbot, aws_app_env, package_cache_dir):
    from desktop_app.gui.cloud_wiring import wiring

    window = make_window()
    window.actions_by_name["deploy_wizard"].trigger()
    cloud = wiring(window)
    wizard, tracker = cloud.wizard, cloud.tracker
    assert wizard.isVisible() and [a.text() for a in window.menuBar().actions()][-2:] == ["&Cloud", "&Help"]
    _wait_step(qtbot, tracker, "credentials", 30_000)
    assert {r.check: r.ok for r in tracker.credential_rows} == {
        "identity": True,
        "region": True,
        "role": True,
        "bucket": True,
    }
    assert wizard.cred_table.item(0, 0).text() == "✓"

    _fast(tracker, package_cache_dir)
    wizard.next()  # -> target & model: what a person picks
    assert wizard.target_combo.currentData() == "ray"
    wizard.name_edit.setText("wizard-e2e")
    wizard.backend_combo.setCurrentIndex(wizard.backend_combo.findData("classic"))
    wizard.next()  # -> instance
    rows = [wizard.instance_table.item(r, 0).text() for r in range(wizard.instance_table.rowCount())]
    wizard.instance_table.selectRow(rows.index(MOTO_CPU))
    assert "about $0.20 per hour" in wizard.price_line.text()
    wizard.next()  # -> package: starts the build
    assert tracker.status["package"] == "running"
    assert _wait_step(qtbot, tracker, "package") == "done", tracker.text["package"]
    wizard.next()  # -> dry run (optional)
    wizard.next()  # skip -> preflight: starts the checks
    assert tracker.status["dryrun"] == "skipped"
    assert _wait_step(qtbot, tracker, "preflight") == "done", "\n".join(c.line() for c in tracker.checks)
    assert wizard.preflight_table.rowCount() == len(tracker.checks) > 5
    assert all(wizard.preflight_table.item(r, 0).text() in "✓!" for r in range(wizard.preflight_table.rowCount()))
    wizard.resize(1100, 720)
    qtbot.wait(50)
    wizard.grab().save(str(SHOTS / "13-deploy-wizard.png"))

    wizard.next()  # -> upload
    assert _wait_step(qtbot, tracker, "upload") == "done", tracker.text["upload"]
    assert wizard.upload_bar.value() == wizard.upload_bar.maximum() > 1
    assert wizard.next_button.text().startswith("Create endpoint (about $0.20/h)")
    wizard.next()  # -> create & wait, then the smoke test
    assert _wait_step(qtbot, tracker, "deploy") == "done", tracker.text["deploy"]
    assert tracker.status["smoke"] == "done" and "backend classic" in tracker.text["smoke"]
    assert tracker.result.upload is not None and not tracker.result.upload.uploaded  # uploaded once, above
    assert _sm(aws_app_env) == (1, 1, 1)
    [record] = cloud.ledger.records()
    assert (record.name, record.status, record.instance_type) == ("wizard-e2e", "InService", MOTO_CPU)

    wizard.next()
    wizard.next()  # -> use
    assert wizard.use_button.isEnabled()
    qtbot.mouseClick(wizard.use_button, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    assert window.settings.backend == "sagemaker"
    assert window.settings.value("remote/endpoint_name") == "wizard-e2e"
    assert window.settings.value("remote/endpoint_region") == "us-east-1"

    window.actions_by_name["cloud_endpoints"].trigger()
    endpoints = cloud.endpoints
    qtbot.waitUntil(lambda: not endpoints._doing and endpoints.table.rowCount() == 1, timeout=20_000)
    cells = [endpoints.table.item(0, c).text() for c in range(endpoints.table.columnCount())]
    assert cells[0] == "wizard-e2e" and cells[2] == "InService" and cells[3] == f"1 × {MOTO_CPU}"
    assert cells[4].endswith("min") and cells[5] in ("< $0.01", "$0.00")
    endpoints.table.selectRow(0)
    endpoints.grab().save(str(SHOTS / "14-cloud-endpoints.png"))
    import desktop_app.gui.dialogs.cloud_endpoints as ce

    ce_confirm = ce.confirm_delete
    ce.confirm_delete = lambda *_: True
    try:
        endpoints.delete_selected()
        qtbot.waitUntil(lambda: not endpoints.task.running and not endpoints._doing, timeout=30_000)
    finally:
        ce.confirm_delete = ce_confirm
    assert "Deleted wizard-e2e" in endpoints.status.text()
    assert endpoints.table.rowCount() == 0 and cloud.ledger.records() == []
    assert _sm(aws_app_env) == (0, 0, 0)


def _slow_runtime_env(monkeypatch):
    """A sagemaker-runtime that never answers well: 500s are retried by the smoke test (model-error)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"ErrorCode": "ModelError", "Message": "still loading"}'
            self.send_response(424)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-ErrorType", "ModelError")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{server.server_port}")
    return server


def _prepared_tracker(cloud, qtbot, package_cache_dir, **choices):
    tracker = cloud.tracker
    _fast(tracker, package_cache_dir, **choices)
    tracker.build_package()
    assert _wait_step(qtbot, tracker, "package") == "done", tracker.text["package"]
    tracker.upload()
    assert _wait_step(qtbot, tracker, "upload") == "done", tracker.text["upload"]
    return tracker


def test_cancel_rolls_back_and_the_wizard_can_be_closed_and_reopened_meanwhile(
    make_window, qtbot, aws_app_env, package_cache_dir, monkeypatch
):
    from desktop_app.gui.cloud_wiring import wiring

    server = _slow_runtime_env(monkeypatch)
    window = make_window()
    cloud = wiring(window)
    tracker = _prepared_tracker(cloud, qtbot, package_cache_dir, name="wizard-cancel")
    wizard = cloud.show_wizard()  # checks the credentials first
    wizard.go(6)
    assert not wizard.next_button.isEnabled() or not tracker.running
    _wait_step(qtbot, tracker, "credentials", 30_000)
    assert wizard.next_button.isEnabled()
    wizard.next()  # create & wait: InService at once in moto, then the smoke test keeps retrying
    qtbot.waitUntil(
        lambda: tracker.current == "smoke" and "not answering yet" in "\n".join(tracker.log), timeout=30_000
    )
    assert _sm(aws_app_env) == (1, 1, 1) and cloud.ledger.records()[0].status == "Creating"

    cloud.close_wizard()  # the step goes on without a dialog
    qtbot.wait(200)
    assert tracker.running and cloud.wizard is None
    window.actions_by_name["deploy_wizard"].trigger()
    reopened = cloud.wizard
    assert reopened is not wizard and reopened.stack.currentIndex() == 8  # the running step's page
    assert reopened.cancel_button.isEnabled() and reopened.cancel_button.text() == "Cancel smoke"
    assert "not answering yet" in reopened.log_view.toPlainText()
    assert tracker.status["deploy"] == "done" and reopened.steps.item(7).text().endswith("✓")

    qtbot.mouseClick(reopened.cancel_button, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tracker.running, timeout=30_000)
    assert tracker.status["smoke"] == "cancelled" and "deleted" in tracker.text["smoke"]
    assert "rolling back what this run created" in "\n".join(tracker.log)
    assert _sm(aws_app_env) == (0, 0, 0)  # endpoint, config and model of this run: gone
    assert cloud.ledger.records() == []
    keys = [o["Key"] for o in aws_app_env.client("s3").list_objects_v2(Bucket=MOTO_BUCKET).get("Contents", [])]
    assert any(k.endswith("/model/.complete") for k in keys)  # the upload is kept: a retry skips it
    assert "Cancelled" in reopened.step_state.text()
    server.shutdown()


def test_a_failing_smoke_test_is_explained_and_rolled_back(make_window, qtbot, aws_app_env, package_cache_dir):
    from desktop_app.gui.cloud_wiring import wiring
    from inference.server.config import ServerConfig

    window = make_window()
    cloud = wiring(window)
    with run_server(backend_factory=classic_factory, config=ServerConfig(token="x" * 32)) as locked:
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = locked.url  # restored by aws_app_env's monkeypatch
        tracker = _prepared_tracker(cloud, qtbot, package_cache_dir, name="wizard-403")
        tracker.create()
        qtbot.waitUntil(lambda: not tracker.running, timeout=60_000)
    assert tracker.status["smoke"] == "failed" and "Fix:" in tracker.text["smoke"]
    assert "rolled back" in tracker.text["smoke"]
    assert _sm(aws_app_env) == (0, 0, 0) and cloud.ledger.records() == []


def test_a_quota_error_from_sagemaker_is_explained_and_rolled_back_stubbed(
    make_window, qtbot, aws_app_env, package_cache_dir
):
    from botocore.stub import ANY

    from cloud.aws.env import AwsClients
    from desktop_app.gui.cloud_wiring import wiring
    from test_deploy_flow_stubbed import not_found
    from test_deploy_preflight import stubbed

    sm, stub = stubbed("sagemaker")

    class Hybrid(AwsClients):  # moto for S3/IAM/STS/…, the Stubber for SageMaker
        def client(self, service, **kw):
            return sm if service == "sagemaker" else super().client(service, **kw)

    window = make_window()
    cloud = wiring(window)
    tracker = _prepared_tracker(cloud, qtbot, package_cache_dir, name="wizard-quota", instance_type="ml.g5.xlarge")
    tracker.clients = Hybrid(dataclasses.replace(aws_app_env.settings))
    not_found(stub, "describe_model", "model")
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"}, None)
    not_found(stub, "describe_endpoint_config", "endpoint configuration")
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:ec/c"}, None)
    not_found(stub, "describe_endpoint", "endpoint")
    stub.add_client_error(
        "create_endpoint",
        "ResourceLimitExceeded",
        "The account-level service limit 'ml.g5.xlarge for endpoint usage' is 0 Instances, with "
        "current utilization of 0 Instances and a request delta of 1 Instances.",
        400,
    )
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": ANY})
    stub.add_response("delete_model", {}, {"ModelName": ANY})
    not_found(stub, "describe_endpoint", "endpoint")  # the app's ledger: is it there? no: forget it
    wizard = cloud.show_wizard()
    _wait_step(qtbot, tracker, "credentials", 30_000)
    wizard.go(7)
    assert tracker.create()
    qtbot.waitUntil(lambda: not tracker.running, timeout=60_000)
    stub.assert_no_pending_responses()
    assert tracker.status["deploy"] == "failed" and "Service Quotas" in tracker.text["deploy"]
    assert "Failed." in wizard.step_state.text() and wizard.create_again.isEnabled()
    assert cloud.ledger.records() == []


def test_the_dry_run_step_shows_its_verdict_in_words(make_window, qtbot, tmp_path):
    from desktop_app.gui.cloud_wiring import wiring

    window = make_window()
    cloud = wiring(window)
    tracker = cloud.tracker
    wizard = cloud.show_wizard()
    qtbot.waitUntil(lambda: not tracker.running, timeout=30_000)  # the credentials check (no AWS here)
    tracker.package = tmp_path / "no-such-package"
    wizard.go(4)
    assert wizard.dry_button.isEnabled()
    wizard.dry_button.click()
    qtbot.waitUntil(lambda: not tracker.running, timeout=10_000)
    assert tracker.status["dryrun"] == "failed"
    assert wizard.dry_verdict.text() == (
        f"The dry run cannot start: the package {tmp_path / 'no-such-package'} does not exist."
    )
    assert wizard.next_button.text() == "Skip › preflight"


# -- closing the app --------------------------------------------------------------------------
def test_closing_the_app_asks_to_delete_endpoints_it_left_running(
    make_window, qtbot, aws_app_env, monkeypatch, tmp_path
):
    import time

    import desktop_app.gui.cloud_wiring as cw
    from cloud.deploy.flow import UpOptions, deploy_up
    from desktop_app.core.cloud_ledger import EndpointLedger, EndpointRecord

    root = tmp_path / "pkg"
    (root / "code").mkdir(parents=True)
    (root / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    deploy_up(
        aws_app_env,
        UpOptions(
            name="left-running",
            archive=root,
            instance_type=MOTO_CPU,
            container="dlc",
            verify_package=False,
            smoke=False,
            poll_s=0.05,
        ),
    )
    EndpointLedger().record(
        EndpointRecord(
            name="left-running",
            region="us-east-1",
            instance_type=MOTO_CPU,
            created_at=time.time() - 7200,
            status="InService",
        )
    )
    window = make_window()
    asked = []
    monkeypatch.setattr(cw, "ask_close", lambda _w, title, text, _c: asked.append(text) or "cancel")
    window.close()
    assert window.isVisible() and "left-running" in asked[0] and "bill" in asked[0]
    assert _sm(aws_app_env)[0] == 1
    monkeypatch.setattr(cw, "ask_close", lambda *_a: "delete")
    window.close()
    assert not window.isVisible()
    assert _sm(aws_app_env) == (0, 0, 0) and EndpointLedger().records() == []


def test_closing_during_a_deployment_can_cancel_it(make_window, qtbot, aws_app_env, package_cache_dir, monkeypatch):
    import desktop_app.gui.cloud_wiring as cw

    _slow_runtime_env(monkeypatch)
    window = make_window()
    cloud = cw.wiring(window)
    tracker = _prepared_tracker(cloud, qtbot, package_cache_dir, name="wizard-exit")
    tracker.create()
    qtbot.waitUntil(lambda: tracker.current == "smoke", timeout=30_000)
    answers = iter(["delete"])
    monkeypatch.setattr(cw, "ask_close", lambda *_a: next(answers))  # a second question would raise
    window.close()
    assert not window.isVisible() and not tracker.running
    assert _sm(aws_app_env) == (0, 0, 0) and cloud.ledger.records() == []
