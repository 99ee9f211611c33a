"""The secret store (desktop_app/core/secrets.py) over REAL keyring backends registered through
keyring's own API: an in-memory KeyringBackend subclass, and keyring's fail backend for the
no-keyring path. Also: the opt-in file store's permissions, environment overrides, redaction."""

from __future__ import annotations

import logging
import os
import stat
import sys

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import KeyringLocked, PasswordDeleteError

from desktop_app.core.secrets import (
    Secret,
    SecretOrigin,
    SecretStore,
    SecretStoreError,
    StorageKind,
    install_log_redaction,
    keyring_problem,
    redact,
    settings_in_force,
)
from inference.errors import StudioError
from inference.paths import APP_NAME

KEY = "sk-test-0123456789abcdefSECRET"


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps passwords in a dict."""

    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        if self.passwords.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


class LockedKeyring(MemoryKeyring):
    """A keyring whose errors (like some real ones) repeat what they were given."""

    def set_password(self, service, username, password):
        raise KeyringLocked(f"cannot store {password!r} for {username}: collection is locked")


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_keyring_store_round_trip(memory_keyring):
    store = SecretStore(environ={})
    assert store.keyring_available and store.backend_kind is StorageKind.KEYRING
    assert "system keyring" in store.status()
    assert store.get("openai/api_key") is None
    assert store.set("openai/api_key", KEY) is SecretOrigin.KEYRING
    assert memory_keyring.passwords[(APP_NAME, "openai/api_key")] == KEY
    secret = store.get("openai/api_key")
    assert secret == Secret("openai/api_key", KEY, SecretOrigin.KEYRING)
    # a fresh store (a restart) reads it from the keyring
    assert SecretStore(environ={}).get("openai/api_key").value == KEY
    store.delete("openai/api_key")
    store.delete("openai/api_key")  # twice is fine
    assert store.get("openai/api_key") is None and not memory_keyring.passwords


def test_empty_value_deletes(memory_keyring):
    store = SecretStore(environ={})
    store.set("huggingface/token", "hf_abcdefghijkl")
    store.set("huggingface/token", "")
    assert store.get("huggingface/token") is None


def test_non_secret_keys_are_refused(memory_keyring):
    with pytest.raises(ValueError, match="not a secret"):
        SecretStore(environ={}).set("aws/region", "eu-west-1")


def test_the_value_never_shows_in_repr_or_str(memory_keyring):
    store = SecretStore(environ={})
    store.set("openai/api_key", KEY)
    secret = store.get("openai/api_key")
    for text in (repr(secret), str(secret), repr(store), store.status()):
        assert KEY not in text
    assert "****" in str(secret)


def test_environment_overrides_and_is_reported(memory_keyring):
    store = SecretStore(environ={"OPENAI_API_KEY": "sk-from-env-abcdef"})
    store.set("openai/api_key", KEY)
    secret = store.get("openai/api_key")
    assert (secret.value, secret.origin, secret.env_name) == (
        "sk-from-env-abcdef",
        SecretOrigin.ENVIRONMENT,
        "OPENAI_API_KEY",
    )
    assert "from environment (OPENAI_API_KEY)" in str(secret)
    assert store.get("openai/api_key", environment=False).value == KEY  # stored, not overwritten
    assert memory_keyring.passwords[(APP_NAME, "openai/api_key")] == KEY
    hf = SecretStore(environ={"HUGGING_FACE_HUB_TOKEN": "hf_legacy_name_1"}).get("huggingface/token")
    assert hf.env_name == "HUGGING_FACE_HUB_TOKEN"


def test_keyring_errors_become_studio_errors_without_the_value():
    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    try:
        store = SecretStore(environ={})
        with pytest.raises(SecretStoreError) as info:
            store.set("openai/api_key", "never-seen-before-" + KEY)
    finally:
        keyring.set_keyring(previous)
    assert isinstance(info.value, StudioError)
    assert KEY not in str(info.value) and info.value.__cause__ is None and info.value.__context__ is None
    assert "keyring" in str(info.value) and "session only" in str(info.value)


# -- no keyring ------------------------------------------------------------------------------------
def test_no_keyring_defaults_to_session_only(no_keyring, tmp_path):
    assert keyring_problem() is not None
    store = SecretStore(environ={}, file_path=tmp_path / "secrets.json")
    assert not store.keyring_available and store.backend_kind is StorageKind.SESSION
    status = store.status()
    assert "No system keyring is available" in status and "this session only" in status and "file" in status
    assert store.set("openai/api_key", KEY) is SecretOrigin.SESSION
    assert store.get("openai/api_key").origin is SecretOrigin.SESSION
    assert not (tmp_path / "secrets.json").exists()  # never a silent plain-text fallback
    assert SecretStore(environ={}, file_path=tmp_path / "secrets.json").get("openai/api_key") is None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_opt_in_file_store_is_owner_only(no_keyring, tmp_path):
    path = tmp_path / "conf" / "secrets.json"
    store = SecretStore(environ={}, file_path=path)
    store.set("aws/secret_access_key", "aws-secret-abcdef")
    warning = store.use_file()
    assert "plain text" in warning and str(path) in warning and "0600" in warning
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.backend_kind is StorageKind.FILE and "plain text" in store.status()
    assert store.get("aws/secret_access_key").origin is SecretOrigin.FILE  # the session value moved in
    assert store.set("openai/api_key", KEY) is SecretOrigin.FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # a restart finds the file: the opt-in persists
    again = SecretStore(environ={}, file_path=path)
    assert again.backend_kind is StorageKind.FILE and again.get("openai/api_key").value == KEY
    again.use_session()  # opting out removes the file, values stay for the session
    assert not path.exists() and again.get("openai/api_key").origin is SecretOrigin.SESSION


def test_file_store_under_the_config_folder_by_default(no_keyring):
    from inference.paths import config_dir

    assert SecretStore(environ={}).file_path == config_dir() / "secrets.json"


# -- redaction -------------------------------------------------------------------------------------
def test_redact_removes_every_known_value(memory_keyring):
    store = SecretStore(environ={})
    store.set("openai/api_key", KEY)
    store.set("aws/access_key_id", "AKIAABCDEFGHIJKLMNOP")
    text = f"request with {KEY} and AKIAABCDEFGHIJKLMNOP and extra-secret-xyz failed"
    clean = redact(text, extra=["extra-secret-xyz"])
    assert KEY not in clean and "AKIAABCDEFGHIJKLMNOP" not in clean and "extra-secret-xyz" not in clean
    assert store.redact(KEY) == "****"
    store.delete("openai/api_key")
    assert KEY not in redact(f"old {KEY}")  # a deleted value stays known


def test_log_filter_redacts(memory_keyring, caplog):
    store = SecretStore(environ={})
    store.set("remote/server_token", "token-abcdef-123456")
    logger = logging.getLogger("langsam.test_secrets")
    flt = install_log_redaction(logger)
    try:
        with caplog.at_level(logging.INFO, logger="langsam.test_secrets"):
            logger.info("connecting with %s", "token-abcdef-123456")
    finally:
        logger.removeFilter(flt)
    assert "token-abcdef-123456" not in caplog.text and "****" in caplog.text


def test_settings_in_force_merges_env_stored_and_secrets(memory_keyring):
    store = SecretStore(environ={"OPENAI_BASE_URL": "ignored-by-store"})
    store.set("openai/api_key", KEY)
    values = settings_in_force({"openai/model": "gpt-x", "aws/region": "eu-west-1"}, store, {"AWS_REGION": "us-east-2"})
    assert values["openai/api_key"] == KEY and values["openai/model"] == "gpt-x"
    assert values["aws/region"] == "us-east-2" and values["huggingface/token"] is None
    assert values["inference/backend"] == "auto"
