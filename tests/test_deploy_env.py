"""Where credentials come from (.env never overrides the environment) and that secrets never print."""

from __future__ import annotations

import pytest

from cloud.aws.env import AwsSettings, describe_credentials, make_session, redact, resolve_settings

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def _dotenv(tmp_path, **values):
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def test_dotenv_supplies_the_old_names_without_overriding_the_environment(tmp_path):
    path = _dotenv(
        tmp_path,
        AWS_ACCESS_KEY_ID=KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_ARN_ROLE="arn:aws:iam::1:role/FromFile",
        MODEL_BUCKET="file-bucket",
    )
    s = resolve_settings(env_file=path, environ={"AWS_DEFAULT_REGION": "us-east-2"})
    assert s.region == "us-east-2" and s.sources["AWS_DEFAULT_REGION"] == "environment"
    assert s.role_arn.endswith("FromFile") and s.bucket == "file-bucket" and s.sources["MODEL_BUCKET"] == ".env"
    assert s.access_key_id == KEY_ID and s.secret_access_key == SECRET
    env_keys = resolve_settings(
        env_file=path, environ={"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00000", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    )
    assert env_keys.access_key_id is None  # boto3's chain uses the environment's keys, not the file's
    assert env_keys.sources["AWS_ACCESS_KEY_ID"] == "environment"
    explicit = resolve_settings(env_file=path, environ={}, region="ap-south-1", bucket="cli-bucket", profile="dev")
    assert (explicit.region, explicit.bucket, explicit.profile) == ("ap-south-1", "cli-bucket", "dev")
    assert explicit.access_key_id is None  # a profile given on purpose wins over a stray .env


def test_default_dotenv_is_the_current_folder_and_a_missing_given_file_is_an_error(tmp_path, monkeypatch):
    from cloud.aws.errors import DeployError

    monkeypatch.chdir(tmp_path)
    assert resolve_settings(environ={}).region is None
    _dotenv(tmp_path, AWS_DEFAULT_REGION="sa-east-1")
    assert resolve_settings(environ={}).region == "sa-east-1"
    with pytest.raises(DeployError, match="does not exist"):
        resolve_settings(env_file=tmp_path / "nope.env", environ={})


def test_secrets_are_never_in_reprs_descriptions_or_redacted_text(tmp_path):
    s = resolve_settings(env_file=_dotenv(tmp_path, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET), environ={})
    assert SECRET not in repr(s) and KEY_ID not in repr(s)
    text = describe_credentials(s)
    assert SECRET not in text and KEY_ID not in text and "AKIA" in text
    leaked = f"signing with {KEY_ID} and {SECRET}"
    clean = redact(leaked, s)
    assert SECRET not in clean and KEY_ID not in clean
    session = make_session(s)
    assert session.get_credentials().access_key == KEY_ID and session.region_name is None


def test_cli_does_not_print_secrets(tmp_path, moto_url, capsys, monkeypatch):
    from desktop_app.cli.main import main

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    path = _dotenv(
        tmp_path,
        AWS_ACCESS_KEY_ID=KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        MODEL_BUCKET="no-such-bucket-xyz",
        AWS_ARN_ROLE="arn:aws:iam::123456789012:role/none",
    )
    code = main(
        [
            "deploy",
            "up",
            "demo",
            "--archive",
            str(path),
            "--env-file",
            str(path),
            "--endpoint-url",
            moto_url,
            "--preflight-only",
        ]
    )
    out = capsys.readouterr()
    assert code == 1 and "[FAIL] bucket" in out.out and "AKIA" in out.out
    assert SECRET not in out.out + out.err and KEY_ID not in out.out + out.err


def test_an_import_error_in_our_own_code_surfaces_with_its_message(monkeypatch):
    import sys

    from desktop_app.cli.main import main

    monkeypatch.setitem(sys.modules, "desktop_app.cli.deploy_package_command", None)  # import raises ImportError
    with pytest.raises(ImportError, match="desktop_app.cli.deploy_package_command"):
        main(["deploy", "package"])


def test_a_missing_third_party_package_is_explained_not_a_crash(monkeypatch, capsys):
    from desktop_app.cli import deploy_command
    from desktop_app.cli.main import main

    def up(_args):
        raise ModuleNotFoundError("No module named 'boto3'", name="boto3")

    monkeypatch.setattr(deploy_command, "_up", up)
    assert main(["deploy", "up", "demo", "--preflight-only"]) == 1
    err = capsys.readouterr().err
    assert "needs the Python package 'boto3'" in err and "pip install 'boto3'" in err

    def broken(_args):
        raise ModuleNotFoundError("No module named 'cloud.nope'", name="cloud.nope")

    monkeypatch.setattr(deploy_command, "_up", broken)
    with pytest.raises(ModuleNotFoundError, match="cloud.nope"):
        main(["deploy", "up", "demo"])


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        AwsSettings(region="x").region = "y"  # type: ignore[misc]


def test_measured_load_comes_from_a_number_or_a_test_local_report(tmp_path):
    import json

    from cloud.aws.errors import DeployError
    from desktop_app.cli.deploy_command import _measured

    assert _measured("95") == (95.0, None) and _measured(None) == (None, None)
    report = tmp_path / "local.json"
    report.write_text(json.dumps({"ok": True, "startup_seconds": 41.5, "invoke_latency": 2.25}))
    assert _measured(str(report)) == (41.5, 2.25)
    with pytest.raises(DeployError, match="neither a number"):
        _measured(str(tmp_path / "missing.json"))


def test_preflight_without_a_region_stops_before_any_call(monkeypatch, tmp_path):
    from cloud.aws.env import AwsClients
    from cloud.deploy.preflight import Level, run_preflight

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    clients = AwsClients(AwsSettings(region=None, access_key_id="AKIAEXAMPLE0000000000", secret_access_key="x" * 20))
    report = run_preflight(clients, name="demo", role_arn=None, bucket=None, instance_type="ml.g5.xlarge")
    assert not report.ok and [c.code for c in report.checks if c.level is Level.FAIL] == ["no-region"]
    assert "AWS_DEFAULT_REGION" in report.failures[0].fix


def test_cli_invoke_against_a_local_server(classic_server, tmp_path, capsys, monkeypatch):
    from desktop_app.cli.main import main
    from fixtures_server import encode_image, scene_image

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE0000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-secret-value")
    image = tmp_path / "scene.png"
    image.write_bytes(encode_image(scene_image(5)))
    out = tmp_path / "answer.json"
    code = main(
        [
            "deploy",
            "invoke",
            "local",
            "--runtime-url",
            classic_server.url,
            "--region",
            "us-east-1",
            "--image-file",
            str(image),
            "--box",
            "40,60,160,180",
            "--output",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "backend classic" in printed and "0: score" in printed and out.stat().st_size > 0
    assert (
        main(
            [
                "deploy",
                "invoke",
                "local",
                "--runtime-url",
                classic_server.url,
                "--region",
                "us-east-1",
                "--image-file",
                str(image),
                "--point",
                "9999,5",
            ]
        )
        == 2
    )  # refused locally, before the call
    assert "outside" in capsys.readouterr().err
