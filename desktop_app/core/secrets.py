"""Secrets (API keys, tokens, AWS keys): kept in the system keyring, never in the settings file.

Where a secret comes from, highest first:

1. an environment variable named in its schema row (``OPENAI_API_KEY`` …): used, reported as
   "from environment", never stored;
2. the value set in this session (kept in memory);
3. the system keyring (service :data:`inference.paths.APP_NAME`, user name = the setting key);
   or, only when the person chose it, the secrets file (``secrets.json`` in the config folder,
   permissions 0600, plain text).

Where no keyring works (headless Linux without a Secret Service: keyring's ``fail`` backend, a
chainer with no backends, or a plain-text ``keyrings.alt`` backend), :meth:`SecretStore.status`
says so and secrets are kept for this session only — unless the person opts into the file with
:meth:`SecretStore.use_file`. There is no silent plain-text fallback.

A secret's value never appears in a ``repr``, a log line or an error: :class:`Secret` hides it,
keyring errors become :class:`SecretStoreError` without it, and :func:`redact` removes every
value any store has seen from a text.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from desktop_app.core.settings_schema import BY_KEY, SECRET_KEYS
from inference.errors import StudioError
from inference.paths import APP_NAME, config_dir

SECRETS_FILE = "secrets.json"
MASK = "****"
_MIN_REDACT = 4  # shorter values would mask ordinary words


class SecretOrigin(str, Enum):
    KEYRING = "keyring"
    SESSION = "session"
    FILE = "file"
    ENVIRONMENT = "environment"

    @property
    def words(self) -> str:
        return {
            "keyring": "in the system keyring",
            "session": "for this session only",
            "file": "in the secrets file",
            "environment": "from environment",
        }[self.value]


class StorageKind(str, Enum):
    """Where :meth:`SecretStore.set` writes."""

    KEYRING = "keyring"
    SESSION = "session"  # memory only: gone when the app quits
    FILE = "file"  # the opt-in secrets file (0600, plain text)


class SecretStoreError(StudioError):
    """The keyring or the secrets file failed; the message never contains a secret's value."""


@dataclass(frozen=True)
class Secret:
    """A secret's value and where it came from. ``repr``/``str`` never show the value."""

    key: str
    value: str = field(repr=False)
    origin: SecretOrigin
    env_name: str | None = None  # the variable, when origin is ENVIRONMENT

    def __str__(self) -> str:
        where = f"from environment ({self.env_name})" if self.env_name else self.origin.words
        return f"{self.key}: {MASK} ({where})"


# every store alive, so redact() knows every value seen anywhere in the process
_STORES: weakref.WeakSet[SecretStore] = weakref.WeakSet()
_SEEN: set[str] = set()  # values that were set/read and since deleted (still to be scrubbed)
_SEEN_LOCK = threading.Lock()


def keyring_problem(backend: object | None = None) -> str | None:
    """Why the (given or current) keyring backend cannot keep secrets safely, or ``None``."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return "the keyring package is not installed"
    kr = backend if backend is not None else keyring.get_keyring()
    if isinstance(kr, fail.Keyring):
        return "no system keyring is available (no Secret Service, KWallet, Keychain or Credential Manager)"
    try:
        from keyring.backends import chainer

        if isinstance(kr, chainer.ChainerBackend) and not kr.backends:
            return "no system keyring is available (no usable keyring backend)"
    except ImportError:  # pragma: no cover - keyring always has it
        pass
    name = f"{type(kr).__module__}.{type(kr).__name__}"
    if name.startswith("keyring.backends.null"):
        return "the keyring is switched off (null backend)"
    if name.startswith("keyrings.alt") and "plaintext" in name.lower():
        return "the only keyring found stores secrets in plain text (keyrings.alt)"
    priority = getattr(kr, "priority", 1)
    try:
        if float(priority) <= 0:
            return f"the keyring backend {type(kr).__name__} is not usable here"
    except (TypeError, ValueError):
        pass
    return None


class SecretStore:
    """Get, set and delete secrets by setting key (``"openai/api_key"``), see the module doc.

    ``environ`` (default ``os.environ``) is read at each :meth:`get`; ``keyring_backend``
    overrides ``keyring.get_keyring()`` (tests register a real backend with ``keyring.set_keyring``
    instead); ``file_path`` is where the opt-in secrets file lives (default: config folder).
    """

    def __init__(
        self,
        *,
        service: str = APP_NAME,
        environ: Mapping[str, str] | None = None,
        keyring_backend: object | None = None,
        file_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.service = service
        self._environ = environ
        self._backend = keyring_backend
        self.file_path = Path(file_path) if file_path is not None else config_dir() / SECRETS_FILE
        self._session: dict[str, str] = {}
        self._cache: dict[str, str] = {}  # values read from keyring/file (for redact)
        self._lock = threading.RLock()
        self._problem = keyring_problem(self._keyring())
        if self._problem is None:
            self._kind = StorageKind.KEYRING
        elif self.file_path.is_file():  # the person opted in earlier: the file is the opt-in
            self._kind = StorageKind.FILE
        else:
            self._kind = StorageKind.SESSION
        _STORES.add(self)

    def __repr__(self) -> str:
        return f"SecretStore(service={self.service!r}, backend_kind={self._kind.value!r})"

    # -- where ------------------------------------------------------------------------------
    def _keyring(self) -> object:
        if self._backend is not None:
            return self._backend
        import keyring

        return keyring.get_keyring()

    @property
    def backend_kind(self) -> StorageKind:
        return self._kind

    @property
    def keyring_available(self) -> bool:
        return self._problem is None

    @property
    def keyring_problem(self) -> str | None:
        return self._problem

    def keyring_name(self) -> str:
        kr = self._keyring()
        return str(getattr(kr, "name", type(kr).__name__))

    def use_session(self) -> None:
        """Keep secrets in memory only from now on (the default where no keyring works). Values
        already in the file are moved to the session and the file is removed."""
        with self._lock:
            if self._kind is StorageKind.FILE:
                self._session.update(self._read_file())
                self._remove_file()
            self._kind = StorageKind.SESSION if self._problem is not None else StorageKind.KEYRING

    def use_file(self, path: str | os.PathLike[str] | None = None) -> str:
        """Opt in to the secrets file (plain text, owner-only 0600). Session values move into it.
        Returns the warning to show the person."""
        with self._lock:
            if path is not None:
                self.file_path = Path(path)
            data = self._read_file()
            data.update(self._session)
            self._write_file(data)
            self._session.clear()
            self._kind = StorageKind.FILE
        return self.file_warning()

    def file_warning(self) -> str:
        return (
            f"Secrets are saved in plain text in {self.file_path}, readable only by your user account "
            "(permissions 0600). Anyone with access to your account or its backups can read them; "
            "prefer a system keyring where one is available."
        )

    def status(self) -> str:
        """One or two sentences: where secrets are kept and, without a keyring, what the choice is."""
        if self._kind is StorageKind.KEYRING:
            return f"Secrets are kept in the system keyring ({self.keyring_name()})."
        reason = (self._problem or "no keyring").rstrip(".")
        first = reason[0].upper() + reason[1:]
        if self._kind is StorageKind.FILE:
            return f"{first}. {self.file_warning()}"
        return (
            f"{first}. Secrets are kept for this session only and must be entered again after a restart; "
            "you can instead save them in a file readable only by you."
        )

    # -- values -----------------------------------------------------------------------------
    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def get(self, key: str, *, environment: bool = True) -> Secret | None:
        """The secret in force for ``key`` (environment first), or ``None`` when there is none.
        ``environment=False``: what this store itself holds, ignoring the environment."""
        setting = _secret_setting(key)
        env = self._env() if environment else {}
        for name in setting.env if setting is not None else ():
            value = env.get(name)
            if value:
                return Secret(key, value, SecretOrigin.ENVIRONMENT, name)
        with self._lock:
            if key in self._session:
                return Secret(key, self._session[key], SecretOrigin.SESSION)
            if self._kind is StorageKind.FILE:
                value = self._read_file().get(key)
                if value:
                    self._cache[key] = value
                    return Secret(key, value, SecretOrigin.FILE)
                return None
            if self._kind is StorageKind.KEYRING:
                value = self._call("read", lambda kr: kr.get_password(self.service, key), key)
                if value:
                    self._cache[key] = value
                    return Secret(key, value, SecretOrigin.KEYRING)
        return None

    def set(self, key: str, value: str) -> SecretOrigin:
        """Keep ``value`` for ``key`` where :attr:`backend_kind` says; an empty value deletes it.
        Returns where it went."""
        _secret_setting(key)
        if not value:
            self.delete(key)
            return SecretOrigin(self._kind.value)
        with self._lock:
            if self._kind is StorageKind.KEYRING:
                self._call("save", lambda kr: kr.set_password(self.service, key, value), key, value)
                self._cache[key] = value
                self._session.pop(key, None)
                return SecretOrigin.KEYRING
            if self._kind is StorageKind.FILE:
                data = self._read_file()
                data[key] = value
                self._write_file(data)
                self._cache[key] = value
                self._session.pop(key, None)
                return SecretOrigin.FILE
            self._session[key] = value
            return SecretOrigin.SESSION

    def delete(self, key: str) -> None:
        """Forget ``key`` here (session, keyring or file); a missing one is fine."""
        _secret_setting(key)
        with self._lock:
            for bag in (self._session, self._cache):
                old = bag.pop(key, None)
                if old:
                    _remember(old)
            if self._kind is StorageKind.KEYRING:
                from keyring.errors import PasswordDeleteError

                def forget(kr: object) -> None:
                    try:
                        kr.delete_password(self.service, key)  # type: ignore[attr-defined]
                    except PasswordDeleteError:
                        pass  # there was none

                self._call("delete", forget, key)
            elif self._kind is StorageKind.FILE:
                data = self._read_file()
                if data.pop(key, None) is not None:
                    self._write_file(data)

    def values(self) -> list[str]:
        """Every secret value this store knows (environment included): what :meth:`redact` removes."""
        env = self._env()
        found = [env.get(name) or "" for key in SECRET_KEYS for name in BY_KEY[key].env]
        with self._lock:
            found += list(self._session.values()) + list(self._cache.values())
        return [v for v in found if v]

    def redact(self, text: str) -> str:
        return redact(text)

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, what: str, fn, key: str, value: str | None = None):  # type: ignore[no-untyped-def]
        try:
            return fn(self._keyring())
        except Exception as exc:  # keyring errors, D-Bus errors, …: never with the value
            reason = redact(str(exc), extra=[value]) or type(exc).__name__
            error = SecretStoreError(
                f"The system keyring could not {what} the secret {key!r} ({type(exc).__name__}: {reason}). "
                "Unlock the keyring and try again, or keep secrets for this session only in Settings."
            )
        raise error  # outside the except block: no __context__ pointing at the original exception

    def _read_file(self) -> dict[str, str]:
        try:
            text = self.file_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretStoreError(f"The secrets file {self.file_path} cannot be read: {exc.strerror}.") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise SecretStoreError(
                f"The secrets file {self.file_path} is damaged; delete it and enter the secrets again."
            ) from None
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_file(self, data: Mapping[str, str]) -> None:
        path = self.file_path
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600) if hasattr(os, "fchmod") else None
                os.write(fd, json.dumps(dict(data), indent=1, sort_keys=True).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            os.chmod(path, 0o600)
        except OSError as exc:
            raise SecretStoreError(f"The secrets file {path} cannot be written: {exc.strerror}.") from None

    def _remove_file(self) -> None:
        try:
            self.file_path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SecretStoreError(f"The secrets file {self.file_path} cannot be removed: {exc.strerror}.") from None


def _secret_setting(key: str):  # type: ignore[no-untyped-def]
    setting = BY_KEY.get(key)
    if setting is not None and not setting.secret:
        raise ValueError(f"{key} is not a secret: it belongs in the settings file")
    return setting  # unknown keys are allowed (a backend may keep its own), without env names


def _remember(value: str) -> None:
    with _SEEN_LOCK:
        _SEEN.add(value)


def known_secret_values(extra: Iterable[str | None] = ()) -> list[str]:
    """Every secret value seen in this process (all stores, the environment's secret variables)."""
    values: set[str] = {v for v in extra if v}
    for name in (n for key in SECRET_KEYS for n in BY_KEY[key].env):
        if os.environ.get(name):
            values.add(os.environ[name])
    for store in list(_STORES):
        values.update(store.values())
    with _SEEN_LOCK:
        values.update(_SEEN)
    return sorted((v for v in values if len(v) >= _MIN_REDACT), key=len, reverse=True)


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` without any known secret value (each replaced by ``****``) and with AWS access key
    ids masked (:func:`cloud.aws.env.redact`). Use it on anything about to be shown or logged."""
    if not text:
        return text
    out = text
    for value in known_secret_values(extra):
        out = out.replace(value, MASK)
    from cloud.aws.env import redact as aws_redact

    return aws_redact(out)


class RedactingFilter(logging.Filter):
    """A logging filter that removes secret values from every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format: let logging report it
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add a :class:`RedactingFilter` to every handler of ``logger`` (default: the root logger)
    and to the logger itself; returns the filter."""
    target = logger or logging.getLogger()
    flt = RedactingFilter()
    target.addFilter(flt)
    for handler in target.handlers:
        handler.addFilter(flt)
    return flt


def settings_in_force(
    stored: Mapping[str, object], store: SecretStore | None, environ: Mapping[str, str] | None = None
) -> dict[str, object]:
    """Every schema setting's value in force, secrets included (``None`` when a secret is unset):
    environment first, then ``stored`` (e.g. ``AppSettings.values()`` or
    :func:`desktop_app.core.settings_schema.read_ini`), then the default. What a remote backend or
    the prompt assistant reads; never log the result."""
    from desktop_app.core.settings_schema import SETTINGS, effective

    out: dict[str, object] = {}
    for setting in SETTINGS:
        if setting.secret:
            secret = store.get(setting.key) if store is not None else None
            if secret is None and store is None:
                found = setting.env_value(environ)
                out[setting.key] = found[1] if found else None
            else:
                out[setting.key] = secret.value if secret else None
        else:
            out[setting.key] = effective(setting.key, stored, environ).value
    return out


_DEFAULT: SecretStore | None = None
_DEFAULT_LOCK = threading.Lock()


def default_store() -> SecretStore:
    """The app's one secret store (session-only secrets live as long as the process): the
    settings dialog, remote backends and the prompt assistant all use this one."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = SecretStore()
        return _DEFAULT


def reset_default_store() -> None:
    """Forget the process-wide store (tests; after ``$LANGSAM_STUDIO_HOME`` or the keyring changed)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        _DEFAULT = None
