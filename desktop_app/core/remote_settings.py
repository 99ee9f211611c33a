"""The setting values a remote backend needs (issue 9 part 3), read without Qt.

:func:`remote_values` gives ``{setting key: value}`` for the keys the remote backend choices use
(``remote/…``, ``aws/…``): non-secret ones by :func:`desktop_app.core.settings_schema.effective`
(environment, then the stored value, then the default), secrets from
:class:`desktop_app.core.secrets.SecretStore` (environment first). The result goes to
:func:`desktop_app.core.backend_choices.backend_request` (``remote=``); it holds secrets: never
log or show it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REMOTE_KEYS: tuple[str, ...] = (
    "remote/server_url",
    "remote/server_token",
    "remote/endpoint_name",
    "remote/endpoint_region",
    "remote/async_output_s3",
    "aws/profile",
    "aws/region",
    "aws/access_key_id",
    "aws/secret_access_key",
    "aws/session_token",
    "aws/endpoint_url",
)


def remote_values(
    stored: Mapping[str, Any], *, secrets: Any | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Values in force for :data:`REMOTE_KEYS`; ``stored`` holds the settings file's values."""
    from desktop_app.core.settings_schema import BY_KEY, effective

    out: dict[str, Any] = {}
    for key in REMOTE_KEYS:
        setting = BY_KEY.get(key)
        if setting is None:
            continue
        if setting.secret:
            value = _secret(key, secrets)
        else:
            value = effective(key, stored, environ).value
        if value not in (None, ""):
            out[key] = value
    return out


def _secret(key: str, store: Any | None) -> str | None:
    try:
        if store is None:
            from desktop_app.core.secrets import SecretStore

            store = SecretStore()
        secret = store.get(key)
    except Exception:  # noqa: BLE001 - no keyring here: the remote call says the token is missing
        return None
    return None if secret is None else secret.value
