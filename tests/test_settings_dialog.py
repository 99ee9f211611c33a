"""Edit → Settings… from the real window: fields generated from the schema, Save to the INI and
the secret store, reload, .env import, the server Test against a real in-process server, the AWS
Test against moto's server, and no secret value in the settings file, log or error texts."""

from __future__ import annotations

import json
import logging
import urllib.request

import keyring
import pytest
from keyring.backends import fail

from fixtures_server import classic_factory, run_server

SERVER_TOKEN = "srv-token-abcdefgh12345678"
OPENAI_KEY = "sk-dialog-test-key-0123456789"
AWS_SECRET = "moto-secret-key-ZZZ0123456789abcdef"
AWS_KEY_ID = "AKIAMOTODIALOGTEST01"


@pytest.fixture
def no_keyring(monkeypatch):
    from desktop_app.core import secrets

    for name in (
        "OPENAI_API_KEY",
        "LANGSAM_SERVER_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_ARN_ROLE",
        "MODEL_BUCKET",
        "AWS_ENDPOINT_URL",
        "HF_TOKEN",
        "OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    secrets.reset_default_store()
    yield
    keyring.set_keyring(previous)
    secrets.reset_default_store()


def open_settings(window, qtbot):
    action = window.actions_by_name["settings"]
    assert action.shortcut().toString() == "Ctrl+,"
    assert action.menuRole() == action.MenuRole.PreferencesRole
    assert action.property("group") == "Edit"
    action.trigger()
    dialog = window._dialogs["settings"]
    qtbot.waitExposed(dialog)
    return dialog


def field(dialog, key):
    return dialog.fields[key]


def run_check(dialog, qtbot, name, timeout=30_000):
    qtbot.waitUntil(dialog.test_buttons[name].isEnabled)  # the previous run has ended
    with qtbot.waitSignal(dialog.check_finished, timeout=timeout):
        dialog.test_buttons[name].click()
    return dialog.test_results[name].property("rows"), dialog.test_results[name].text()


def test_fields_save_reload_and_apply(make_window, qtbot, no_keyring):
    from desktop_app.gui.settings import AppSettings

    window = make_window()
    dialog = open_settings(window, qtbot)
    assert "No system keyring" in dialog.storage_label.text() and dialog.session_radio.isChecked()
    assert dialog.session_radio.isVisible() and dialog.file_radio.isVisible()
    assert [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())] == [
        "General",
        "Models",
        "Remote",
        "AWS",
        "OpenAI",
        "Hugging Face",
    ]
    backend = field(dialog, "inference/backend").editor
    backend.setCurrentIndex(backend.findData("classic"))
    field(dialog, "inference/prefetch_count").editor.setValue(3)
    field(dialog, "editing/autosave").editor.setChecked(False)
    # an invalid value: nothing saved, the sentence under the field
    field(dialog, "remote/server_url").editor.setText("gpu-box:8080")
    assert not dialog.save()
    error = field(dialog, "remote/server_url").error
    assert error.isVisibleTo(dialog) and "http or https URL" in error.text()
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Remote"
    assert AppSettings().backend == "auto"
    field(dialog, "remote/server_url").editor.setText("http://127.0.0.1:9")
    field(dialog, "remote/server_token").editor.setText(SERVER_TOKEN)
    secret_edit = field(dialog, "remote/server_token").editor
    assert secret_edit.echoMode() == secret_edit.EchoMode.Password
    field(dialog, "remote/server_token").button.click()
    assert secret_edit.echoMode() == secret_edit.EchoMode.Normal
    with qtbot.waitSignal(dialog.saved) as saved:
        assert dialog.save()
    assert set(saved.args[0]) == {
        "inference/backend",
        "inference/prefetch_count",
        "editing/autosave",
        "remote/server_url",
    }
    # the window applied it through the Backend menu's path
    assert window.settings.backend == "classic" and window.backend_menu.backend_actions["classic"].isChecked()
    assert window.controller.worker.prefetch_count == 3
    assert not window.actions_by_name["autosave"].isChecked()
    # reload: a fresh AppSettings and a re-opened dialog show the values; the token is session-only
    fresh = AppSettings()
    assert (fresh.backend, fresh.prefetch_count, fresh.autosave) == ("classic", 3, False)
    assert fresh.value("remote/server_url") == "http://127.0.0.1:9"
    dialog.close()
    dialog = open_settings(window, qtbot)
    assert field(dialog, "remote/server_token").value() == SERVER_TOKEN
    assert field(dialog, "inference/prefetch_count").value() == 3
    ini = fresh.path.read_text(encoding="utf-8")
    assert "server_url" in ini and SERVER_TOKEN not in ini and "server_token" not in ini


def test_environment_values_are_read_only(make_window, qtbot, no_keyring, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    window = make_window()
    dialog = open_settings(window, qtbot)
    key = field(dialog, "openai/api_key")
    assert not key.editor.isEnabled() and key.editor.text() == ""
    assert "from environment: OPENAI_API_KEY" in key.editor.placeholderText()
    assert "From environment: OPENAI_API_KEY" in key.note.text()
    region = field(dialog, "aws/region")
    assert not region.editor.isEnabled() and region.value() == "eu-north-1"
    assert dialog.values()["openai/api_key"] == OPENAI_KEY
    assert dialog.save()
    assert window.settings.value("aws/region") == ""  # used, not stored


def test_import_dotenv_says_where_each_value_went(make_window, qtbot, no_keyring, tmp_path):
    from desktop_app.core.secrets import default_store

    env = tmp_path / ".env"
    env.write_text(
        f"OPENAI_API_KEY={OPENAI_KEY}\nMODEL_BUCKET=old-bucket\nAWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"
        f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\nAWS_DEFAULT_REGION=eu-central-1\n"
        "AWS_ARN_ROLE=arn:aws:iam::123456789012:role/Old\nUNRELATED=1\n",
        encoding="utf-8",
    )
    window = make_window()
    dialog = open_settings(window, qtbot)
    text = dialog.import_dotenv(env)
    assert "Imported 6 value(s)" in text
    assert "OPENAI_API_KEY → API key (OpenAI), kept in this session only" in text
    assert "AWS_SECRET_ACCESS_KEY → Secret access key (AWS), kept in this session only" in text
    assert "MODEL_BUCKET → Model bucket (AWS), saved in the settings" in text
    assert "UNRELATED" in text and OPENAI_KEY not in text and AWS_SECRET not in text
    assert dialog.message.text() == text
    assert window.settings.value("aws/model_bucket") == "old-bucket"
    assert window.settings.value("aws/region") == "eu-central-1"
    assert default_store().get("openai/api_key").value == OPENAI_KEY
    assert field(dialog, "aws/secret_access_key").value() == AWS_SECRET  # fields reloaded
    # the file choice: opt in, and the next import goes to the owner-only file
    dialog.file_radio.setChecked(True)
    assert "plain text" in dialog.storage_label.text()
    text = dialog.import_dotenv(env)
    assert "kept in the secrets file" in text
    assert default_store().file_path.is_file()


def test_server_check_against_a_real_server(make_window, qtbot, no_keyring):
    from inference.server.config import ServerConfig

    window = make_window()
    dialog = open_settings(window, qtbot)
    with run_server(backend_factory=classic_factory, config=ServerConfig(token=SERVER_TOKEN)) as server:
        dialog.tabs.setCurrentIndex(2)
        field(dialog, "remote/server_url").editor.setText(server.url)
        field(dialog, "remote/server_token").editor.setText("wrong-token-123456")
        rows, text = run_check(dialog, qtbot, "Remote server")
        assert [(r.check, r.ok) for r in rows] == [("ping", True), ("token", False)]
        assert "backend classic" in rows[0].sentence and "rejected the token" in rows[1].sentence
        assert "wrong-token-123456" not in text
        field(dialog, "remote/server_token").editor.setText(SERVER_TOKEN)
        rows, text = run_check(dialog, qtbot, "Remote server")
        assert all(r.ok for r in rows) and "accepts the token" in rows[1].sentence
        assert SERVER_TOKEN not in text
    rows, _ = run_check(dialog, qtbot, "Remote server")  # the server is gone
    assert not rows[0].ok and "Nothing answers at" in rows[0].sentence and "Fix:" in rows[0].sentence


TRUST_SAGEMAKER = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
TRUST_EC2 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def test_aws_check_against_moto(make_window, qtbot, no_keyring, moto_url, monkeypatch, caplog):
    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    setup = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
    setup.client("s3").create_bucket(Bucket="dialog-models")
    good = setup.client("iam").create_role(RoleName="SmRole", AssumeRolePolicyDocument=json.dumps(TRUST_SAGEMAKER))
    bad = setup.client("iam").create_role(RoleName="Ec2Role", AssumeRolePolicyDocument=json.dumps(TRUST_EC2))

    caplog.set_level(logging.DEBUG)
    window = make_window()
    dialog = open_settings(window, qtbot)
    dialog.tabs.setCurrentIndex(3)
    assert not field(dialog, "aws/endpoint_url").editor.isEnabled()  # from AWS_ENDPOINT_URL
    field(dialog, "aws/access_key_id").editor.setText(AWS_KEY_ID)
    field(dialog, "aws/secret_access_key").editor.setText(AWS_SECRET)
    field(dialog, "aws/region").editor.setText("us-east-1")
    field(dialog, "aws/role_arn").editor.setText(good["Role"]["Arn"])
    field(dialog, "aws/model_bucket").editor.setText("dialog-models")
    rows, text = run_check(dialog, qtbot, "AWS")
    assert [r.check for r in rows] == ["identity", "region", "role", "bucket"]
    assert all(r.ok for r in rows), rows
    assert "account 123456789012" in rows[0].sentence and "arn:aws:" in rows[0].sentence
    assert "us-east-1" in rows[1].sentence and "SageMaker may assume it" in rows[2].sentence
    # wrong role and bucket: the reason and the fix
    field(dialog, "aws/role_arn").editor.setText(bad["Role"]["Arn"])
    field(dialog, "aws/model_bucket").editor.setText("no-such-bucket-here")
    rows, text = run_check(dialog, qtbot, "AWS")
    by = {r.check: r for r in rows}
    assert not by["role"].ok and "does not allow sagemaker.amazonaws.com" in by["role"].sentence
    assert not by["bucket"].ok and "does not exist" in by["bucket"].sentence and "Fix:" in by["bucket"].sentence
    # the endpoint check: no such endpoint
    field(dialog, "remote/endpoint_name").editor.setText("not-deployed")
    rows, _ = run_check(dialog, qtbot, "Remote endpoint")
    assert not rows[0].ok and "not-deployed" in rows[0].sentence and "Fix:" in rows[0].sentence
    assert dialog.save()

    # after a session that used secrets: none of them in the INI, the log, or any shown text
    texts = [
        dialog.message.text(),
        *(label.text() for label in dialog.test_results.values()),
        *(f.error.text() for f in dialog.fields.values()),
        caplog.text,
        window.settings.path.read_text(encoding="utf-8"),
    ]
    for secret in (AWS_SECRET,):
        assert not any(secret in t for t in texts)
    assert AWS_KEY_ID not in window.settings.path.read_text(encoding="utf-8")


def test_no_secret_in_errors_files_or_logs(make_window, qtbot, no_keyring, caplog, tmp_path):
    """A whole session with secrets: wrong OpenAI base URL, HF offline, a keyring that fails."""
    from desktop_app.core.secrets import default_store

    caplog.set_level(logging.DEBUG)
    window = make_window()
    dialog = open_settings(window, qtbot)
    field(dialog, "openai/api_key").editor.setText(OPENAI_KEY)
    field(dialog, "openai/base_url").editor.setText("http://127.0.0.1:9/v1")
    field(dialog, "huggingface/token").editor.setText("hf_dialogtesttoken0123")
    field(dialog, "remote/server_token").editor.setText(SERVER_TOKEN)
    rows, openai_text = run_check(dialog, qtbot, "OpenAI")
    assert not rows[0].ok and "cannot be reached" in rows[0].sentence and "Fix:" in rows[0].sentence
    rows, hf_text = run_check(dialog, qtbot, "Hugging Face")
    assert not rows[0].ok and "offline" in rows[0].sentence
    assert dialog.save()
    dialog.file_radio.setChecked(True)
    assert dialog.save()
    secrets_file = default_store().file_path
    texts = [
        openai_text,
        hf_text,
        dialog.message.text(),
        caplog.text,
        window.settings.path.read_text(encoding="utf-8"),
        repr(default_store()),
        default_store().status(),
    ]
    for value in (OPENAI_KEY, "hf_dialogtesttoken0123", SERVER_TOKEN):
        assert not any(value in t for t in texts), value
        assert value in secrets_file.read_text(encoding="utf-8")  # the opted-in file does hold them
