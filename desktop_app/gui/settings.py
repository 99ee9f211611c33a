"""The app's persistent settings: typed properties over one INI file (QSettings).

Where the file lives: ``$LANGSAM_STUDIO_HOME/settings.ini`` when that variable is set (tests set it
to a temp dir, so a test never sees a person's settings), else the platform's config folder
(``platformdirs.user_config_dir("langsam-studio")``): :func:`inference.paths.config_dir`. Never
inside the package folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from desktop_app.core.backend_choices import AUTO, CHOICES, choice_names, is_device_choice
from desktop_app.core.settings_schema import BY_KEY as SCHEMA  # defaults, bounds, validation
from inference.device import DEVICE_CHOICES
from inference.paths import config_dir as settings_dir  # the one home-folder policy


def settings_path() -> Path:
    return settings_dir() / "settings.ini"


class AppSettings:
    """Typed access to the app's settings. Every setter writes through at once."""

    def __init__(self, *, path: str | os.PathLike | None = None) -> None:
        target = Path(path) if path is not None else settings_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        self._qs = QSettings(str(target), QSettings.Format.IniFormat)
        self.path = target

    # -- plumbing --------------------------------------------------------------------------
    def _get_str(self, key: str, default: str) -> str:
        value = self._qs.value(key, default)
        return default if value is None else str(value)

    def _get_int(self, key: str, default: int) -> int:
        # QSettings.value() is typed ``object``: a str from the file, or the int default; int()
        # takes either and the except below catches anything else.
        value: Any = self._qs.value(key, default)
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    def _get_bool(self, key: str, default: bool) -> bool:
        value = self._qs.value(key, default)
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)

    def _set(self, key: str, value: Any) -> None:
        self._qs.setValue(key, value)
        self._qs.sync()

    def sync(self) -> None:
        self._qs.sync()

    # -- session ---------------------------------------------------------------------------
    @property
    def first_run_done(self) -> bool:
        return self._get_bool("session/first_run_done", False)

    @first_run_done.setter
    def first_run_done(self, value: bool) -> None:
        self._set("session/first_run_done", bool(value))

    @property
    def last_folder(self) -> str:
        return self._get_str("session/last_folder", "")

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self._set("session/last_folder", str(value))

    @property
    def last_image(self) -> str:
        """File name (relative to :attr:`last_folder`) of the image last shown."""
        return self._get_str("session/last_image", "")

    @last_image.setter
    def last_image(self, value: str) -> None:
        self._set("session/last_image", str(value))

    @property
    def recent_folders(self) -> list[str]:
        """Folders opened lately, newest first (File → Open Recent; at most 10)."""
        import json

        try:
            value = json.loads(self._get_str("session/recent_folders", "[]"))
        except ValueError:
            return []
        return [v for v in value if isinstance(v, str) and v][:10] if isinstance(value, list) else []

    @recent_folders.setter
    def recent_folders(self, value: list[str]) -> None:
        import json

        self._set("session/recent_folders", json.dumps([str(v) for v in value][:10]))

    @property
    def window_geometry(self) -> QByteArray | None:
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @window_geometry.setter
    def window_geometry(self, value: QByteArray) -> None:
        self._set("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self._qs.value("window/state")
        return value if isinstance(value, QByteArray) else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._set("window/state", value)

    # -- inference -------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """A name of :data:`desktop_app.core.backend_choices.CHOICES` (an unknown one reads as auto)."""
        value = self._get_str("inference/backend", AUTO)
        return value if value in CHOICES else AUTO

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in CHOICES:
            raise ValueError(f"backend must be one of {', '.join(choice_names())}, got {value!r}")
        self._set("inference/backend", value)

    @property
    def device(self) -> str:
        value = self._get_str("inference/device", "auto")
        return value if is_device_choice(value) else "auto"

    @device.setter
    def device(self, value: str) -> None:
        if not is_device_choice(value):
            raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)} or cuda:N, got {value!r}")
        self._set("inference/device", value)

    @property
    def cache_dir(self) -> str:
        """Where model weights are kept; '' means the weights store's default."""
        return self._get_str("inference/cache_dir", "")

    @cache_dir.setter
    def cache_dir(self, value: str) -> None:
        self._set("inference/cache_dir", str(value))

    @property
    def max_image_pixels(self) -> int:
        """Images with more pixels are not opened unless the person chooses "Open anyway"
        (``LANGSAM_MAX_PIXELS`` overrides it: :func:`desktop_app.core.image_cache.effective_max_pixels`)."""
        from inference.images import DEFAULT_MAX_PIXELS

        return max(1_000_000, self._get_int("inference/max_image_pixels", DEFAULT_MAX_PIXELS))

    @max_image_pixels.setter
    def max_image_pixels(self, value: int) -> None:
        self._set("inference/max_image_pixels", max(1_000_000, int(value)))

    @property
    def prefetch_count(self) -> int:
        """How many following images to encode in the background (0 = off)."""
        return self._get_bounded("inference/prefetch_count")

    @prefetch_count.setter
    def prefetch_count(self, value: int) -> None:
        self._set("inference/prefetch_count", self._clamp("inference/prefetch_count", value))

    # -- editing ---------------------------------------------------------------------------
    @property
    def autosave(self) -> bool:
        return self._get_bool("editing/autosave", SCHEMA["editing/autosave"].default)

    @autosave.setter
    def autosave(self, value: bool) -> None:
        self._set("editing/autosave", bool(value))

    @property
    def annotation_folders(self) -> dict[str, str]:
        """Image folder -> the folder its annotations are saved in, when the person chose one
        because the image folder could not be written (kept here: that folder's own
        ``.langsam/project.json`` is what could not be written)."""
        from desktop_app.core.annotation_location import decode_redirects

        return decode_redirects(self._get_str("editing/annotation_folders", "{}"))

    @annotation_folders.setter
    def annotation_folders(self, value: dict[str, str]) -> None:
        from desktop_app.core.annotation_location import encode_redirects

        self._set("editing/annotation_folders", encode_redirects(value))

    @property
    def autosave_delay_ms(self) -> int:
        return self._get_bounded("editing/autosave_delay_ms")

    @autosave_delay_ms.setter
    def autosave_delay_ms(self, value: int) -> None:
        self._set("editing/autosave_delay_ms", int(value))

    # -- any schema setting (desktop_app.core.settings_schema) -------------------------------
    def _clamp(self, key: str, value: Any) -> int:
        row = SCHEMA[key]
        low = int(row.minimum) if row.minimum is not None else int(value)
        high = int(row.maximum) if row.maximum is not None else int(value)
        return max(low, min(high, int(value)))

    def _get_bounded(self, key: str) -> int:
        return self._clamp(key, self._get_int(key, SCHEMA[key].default))

    def value(self, key: str) -> Any:
        """The stored value of a non-secret schema setting, typed by its kind; the schema default
        when it is missing or invalid. (The environment is not applied here:
        :func:`desktop_app.core.settings_schema.effective` does that.)"""
        row = SCHEMA[key]
        if row.secret:
            raise ValueError(f"{key} is a secret: read it from the secret store")
        raw = self._qs.value(key, None)
        if raw is None or row.validate(raw) is not None:
            return row.default
        return row.parse(raw)

    def set_value(self, key: str, value: Any) -> None:
        """Validate (the schema's sentence as ValueError) and write a non-secret setting."""
        row = SCHEMA[key]
        if row.secret:
            raise ValueError(f"{key} is a secret: it is never written to the settings file")
        problem = row.validate(value)
        if problem:
            raise ValueError(problem)
        self._set(key, row.to_ini(value))

    def values(self) -> dict[str, Any]:
        """Every non-secret schema setting's stored value (or default)."""
        return {key: self.value(key) for key, row in SCHEMA.items() if not row.secret}
