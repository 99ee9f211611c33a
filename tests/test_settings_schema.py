"""The settings schema (desktop_app/core/settings_schema.py), without Qt: defaults, validation
sentences, environment overrides, the INI reader and the old project's .env mapping."""

from __future__ import annotations

import pytest

from desktop_app.core import backend_choices
from desktop_app.core.settings_schema import (
    BY_KEY,
    GROUPS,
    SECRET_KEYS,
    SETTINGS,
    Kind,
    Origin,
    aws_service_endpoints,
    defaults,
    dotenv_import,
    effective,
    get_setting,
    read_ini,
    settings_in,
    validate_all,
)


def test_every_row_is_well_formed():
    assert len(BY_KEY) == len(SETTINGS)
    for s in SETTINGS:
        assert s.group in GROUPS and s.label and "/" in s.key
        if not s.secret:
            assert s.validate(s.default) is None, s.key
    assert {g for g in GROUPS} == {s.group for s in SETTINGS}
    assert set(SECRET_KEYS) == {
        "remote/server_token",
        "aws/access_key_id",
        "aws/secret_access_key",
        "aws/session_token",
        "openai/api_key",
        "huggingface/token",
    }


def test_defaults_match_the_app_settings_history():
    d = defaults()
    assert d["inference/backend"] == "auto" and d["inference/device"] == "auto"
    assert d["inference/prefetch_count"] == 1 and d["editing/autosave"] is True
    assert d["editing/autosave_delay_ms"] == 500
    assert not any(k in d for k in SECRET_KEYS)  # secrets have no INI default at all


def test_backend_choices_come_from_the_registry():
    assert get_setting("inference/backend").choices == backend_choices.choice_names()
    assert get_setting("inference/backend").kind is Kind.CHOICE


def test_a_new_backend_choice_is_valid_at_once(monkeypatch):
    from dataclasses import replace

    monkeypatch.setitem(backend_choices.CHOICES, "remote", replace(backend_choices.CHOICES["classic"], name="remote"))
    assert get_setting("inference/backend").validate("remote") is None
    assert "remote" in get_setting("inference/backend").current_choices()


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("inference/backend", "gpt", "must be one of auto"),
        ("inference/device", "tpu", "cuda:N"),
        ("inference/prefetch_count", 9, "at most 8"),
        ("inference/prefetch_count", "two", "whole number"),
        ("editing/autosave", "maybe", "on or off"),
        ("remote/server_url", "gpu-box:8080", "http or https URL"),
        ("remote/async_output_s3", "https://x/y", "s3 URL"),
        ("aws/role_arn", "SageMakerRole", "arn:aws:iam::123456789012:role/Name"),
        ("aws/model_bucket", "My_Bucket", "not a valid S3 bucket name"),
        ("aws/region", "Europe", "region name"),
        ("inference/cache_dir", __file__, "is a file"),
    ],
)
def test_validation_returns_a_sentence(key, value, words):
    sentence = get_setting(key).validate(value)
    assert sentence and words in sentence and sentence.endswith(".")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("inference/device", "cuda:1"),
        ("inference/prefetch_count", "0"),
        ("editing/autosave", "false"),
        ("remote/server_url", "http://127.0.0.1:8080"),
        ("remote/async_output_s3", "s3://bucket/out/"),
        ("aws/role_arn", "arn:aws:iam::123456789012:role/service-role/SageMaker"),
        ("aws/region", "eu-west-1"),
        ("aws/model_bucket", "my-model-bucket"),
        ("remote/endpoint_name", ""),
    ],
)
def test_valid_values_pass(key, value):
    assert get_setting(key).validate(value) is None


def test_validate_all_names_unknown_keys():
    problems = validate_all({"inference/backend": "sam2", "nope/x": 1, "aws/region": "x"})
    assert set(problems) == {"nope/x", "aws/region"}


def test_a_secret_sentence_never_contains_the_value():
    sentence = get_setting("openai/api_key").validate(" sk-secret-value\n")
    assert sentence and "sk-secret-value" not in sentence


def test_environment_overrides_the_stored_value_and_says_which_variable():
    stored = {"aws/region": "eu-west-1", "inference/max_image_pixels": 5_000_000}
    env = {"AWS_REGION": "us-east-2"}
    got = effective("aws/region", stored, env)
    assert (got.value, got.origin, got.env_name) == ("us-east-2", Origin.ENVIRONMENT, "AWS_REGION")
    # the first listed variable wins
    got = effective("aws/region", stored, {"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "ap-south-1"})
    assert got.env_name == "AWS_DEFAULT_REGION"
    assert effective("aws/region", stored, {}).origin is Origin.SETTINGS
    assert effective("aws/region", {}, {}).origin is Origin.DEFAULT
    px = effective("inference/max_image_pixels", stored, {"LANGSAM_MAX_PIXELS": "9000000"})
    assert px.value == 9_000_000 and px.env_name == "LANGSAM_MAX_PIXELS"
    # an invalid stored value falls back to the default
    assert effective("inference/backend", {"inference/backend": "gone"}, {}).value == "auto"
    with pytest.raises(ValueError, match="secret"):
        effective("openai/api_key", {}, {})


def test_env_names_cover_the_cloud_and_ai_variables():
    names = {n for s in SETTINGS for n in s.env}
    assert {
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "HF_TOKEN",
        "LANGSAM_MAX_PIXELS",
        "AWS_ARN_ROLE",
        "MODEL_BUCKET",
    } <= names
    assert aws_service_endpoints(
        {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://x:1", "AWS_ENDPOINT_URL": "u", "AWS_ENDPOINT_URL_S3": ""}
    ) == {"sagemaker-runtime": "http://x:1"}


def test_groups_have_the_issue_rows():
    assert [s.key for s in settings_in("General")][:3] == [
        "inference/backend",
        "inference/device",
        "inference/prefetch_count",
    ]
    assert {s.key for s in settings_in("Remote")} >= {
        "remote/server_url",
        "remote/server_token",
        "remote/endpoint_name",
        "remote/endpoint_region",
        "remote/async_output_s3",
    }


def test_read_ini_parses_a_qsettings_style_file(tmp_path):
    path = tmp_path / "settings.ini"
    path.write_text(
        "[inference]\nbackend=sam2\nprefetch_count=3\ndevice=tpu\n[editing]\nautosave=false\n"
        '[remote]\nserver_url="http://h:1/"\n[openai]\napi_key=never-read\n',
        encoding="utf-8",
    )
    values = read_ini(path)
    assert values == {
        "inference/backend": "sam2",
        "inference/prefetch_count": 3,
        "editing/autosave": False,
        "remote/server_url": "http://h:1/",
    }  # invalid device left out; secrets never read
    assert read_ini(tmp_path / "missing.ini") == {}


def test_dotenv_import_maps_the_old_project_names(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "OPENAI_API_KEY=sk-old-project-key-123\nMODEL_BUCKET=old-bucket\nAWS_ACCESS_KEY_ID=AKIAOLDKEY000000TEST\n"
        "AWS_SECRET_ACCESS_KEY=oldsecret/abc+123\nAWS_DEFAULT_REGION=eu-central-1\n"
        "AWS_ARN_ROLE=arn:aws:iam::123456789012:role/Old\nSOMETHING_ELSE=1\nAWS_REGION=us-east-1\n"
        "HF_TOKEN=\n",
        encoding="utf-8",
    )
    found = dotenv_import(env)
    assert found.values == {
        "openai/api_key": "sk-old-project-key-123",
        "aws/model_bucket": "old-bucket",
        "aws/access_key_id": "AKIAOLDKEY000000TEST",
        "aws/secret_access_key": "oldsecret/abc+123",
        "aws/region": "eu-central-1",
        "aws/role_arn": "arn:aws:iam::123456789012:role/Old",
    }
    assert found.sources["aws/region"] == "AWS_DEFAULT_REGION"
    assert found.ignored == ("SOMETHING_ELSE",)
    assert "sk-old" not in repr(found)


def test_dotenv_import_reports_invalid_values(tmp_path):
    env = tmp_path / ".env"
    env.write_text("AWS_ARN_ROLE=not-an-arn\n", encoding="utf-8")
    found = dotenv_import(env)
    assert not found.values and "arn:aws:iam" in found.invalid["aws/role_arn"]
