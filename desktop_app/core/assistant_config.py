"""Where the prompt assistant's model, base URL and API key come from, and one call to ask it.

The app's window, ``langsam-studio assist`` and ``segment --instruction`` all resolve the
assistant here, by the settings schema's rule (``desktop_app.core.settings_schema``, group
"OpenAI"): an explicit value (a CLI flag) first, then the environment (``OPENAI_MODEL``,
``OPENAI_BASE_URL``, ``OPENAI_API_KEY``), then the settings file, then the default. The key comes
from the secret store (:class:`desktop_app.core.secrets.SecretStore`: environment, session,
keyring or the opt-in file); when the store cannot be used, from ``OPENAI_API_KEY`` only.

Qt-free. The asking itself is :func:`inference.assistant.suggest_phrases`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.assistant import DEFAULT_TIMEOUT, AssistantAnswer, prepare_image_jpeg, suggest_phrases
from inference.cancel import CancelToken

MODEL_KEY, BASE_URL_KEY, API_KEY_KEY = "openai/model", "openai/base_url", "openai/api_key"
DEFAULT_MODEL = "gpt-4o-mini"
KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True)
class AssistantConfig:
    """What :func:`ask` needs. ``api_key`` never shows in a ``repr``; ``key_origin`` says where it
    came from ("from environment (OPENAI_API_KEY)", "in the system keyring", "" = none)."""

    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    key_origin: str = ""


def settings_file() -> Path:
    """The app's settings INI (the same file ``desktop_app.gui.settings.AppSettings`` writes)."""
    from inference.paths import config_dir

    return config_dir() / "settings.ini"


def stored_settings() -> dict[str, Any]:
    """The settings file's values (empty when there is none), read without Qt."""
    path = settings_file()
    if not path.is_file():
        return {}
    from desktop_app.core.settings_schema import read_ini

    return read_ini(path)


def _setting(key: str, stored: Mapping[str, Any], environ: Mapping[str, str] | None, default: str) -> str:
    try:
        from desktop_app.core.settings_schema import effective
    except ImportError:  # pragma: no cover - the schema is part of the core
        env = os.environ if environ is None else environ
        names = {MODEL_KEY: "OPENAI_MODEL", BASE_URL_KEY: "OPENAI_BASE_URL"}
        return env.get(names[key]) or str(stored.get(key) or default)
    value = effective(key, stored, environ).value
    return str(value) if value not in (None, "") else default


def configured_base_url(
    *, stored: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The base URL in force (environment, settings, none = OpenAI), without touching the key."""
    values = stored_settings() if stored is None else stored
    return _setting(BASE_URL_KEY, values, environ, "") or None


def api_key(*, secret_store: Any = None, environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """The OpenAI API key and where it came from (``(None, "")`` when there is none)."""
    env = os.environ if environ is None else environ
    store = secret_store
    if store is None:
        try:
            from desktop_app.core.secrets import SecretStore

            store = SecretStore(environ=env)
        except Exception:  # no keyring package, a broken keyring: the environment still counts
            store = None
    if store is not None:
        try:
            secret = store.get(API_KEY_KEY)
        except Exception:  # a locked keyring must not stop a key from the environment
            secret = None
        if secret is not None and secret.value:
            env_name = getattr(secret, "env_name", None)
            origin = getattr(getattr(secret, "origin", None), "words", "")
            return secret.value, f"from environment ({env_name})" if env_name else str(origin)
    value = env.get(KEY_ENV)
    return (value, f"from environment ({KEY_ENV})") if value else (None, "")


def resolve_config(
    *,
    model: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    stored: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    secret_store: Any = None,
) -> AssistantConfig:
    """The assistant's configuration: explicit arguments, else environment / settings / default.

    ``stored``: the non-secret settings (``AppSettings.values()`` in the app; default: the
    settings file read without Qt)."""
    values = stored_settings() if stored is None else stored
    chosen_model = (model or "").strip() or _setting(MODEL_KEY, values, environ, DEFAULT_MODEL)
    chosen_url = (base_url or "").strip() or _setting(BASE_URL_KEY, values, environ, "") or None
    key, origin = api_key(secret_store=secret_store, environ=environ)
    return AssistantConfig(
        model=chosen_model,
        base_url=chosen_url,
        api_key=key,
        timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout),
        key_origin=origin,
    )


def ask(
    config: AssistantConfig,
    instruction: str,
    *,
    labels: Sequence[str] = (),
    image: Any = None,
    cancel: CancelToken | None = None,
) -> AssistantAnswer:
    """Ask the configured assistant. ``image``: a path, the file's bytes or pixels to send
    (downscaled to a JPEG here), or None to send none — the caller has told the person."""
    jpeg = prepare_image_jpeg(image) if image is not None else None
    return suggest_phrases(
        instruction=instruction,
        labels=labels,
        image_jpeg=jpeg,
        model=config.model,
        api_key=config.api_key,
        base_url=config.base_url,
        timeout=config.timeout,
        cancel=cancel,
    )
