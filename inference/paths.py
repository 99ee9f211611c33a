"""The app's folders on disk: the one place that knows where settings, models and caches live.

``$LANGSAM_STUDIO_HOME`` puts everything under one folder (tests set it to a temp dir, so a test
never sees a person's files); otherwise each folder is the platform's (``platformdirs``):

==============  ===================================  ==========================================
folder          with ``$LANGSAM_STUDIO_HOME``        otherwise
==============  ===================================  ==========================================
config          ``HOME``                             ``user_config_dir("langsam-studio")``
models          ``HOME/models``                      ``user_cache_dir("langsam-studio")/models``
cache           ``HOME/cache``                       ``user_cache_dir("langsam-studio")``
==============  ===================================  ==========================================

``$LANGSAM_STUDIO_MODELS`` overrides the models folder alone. Nothing here creates a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "langsam-studio"
HOME_ENV = "LANGSAM_STUDIO_HOME"
MODELS_ENV = "LANGSAM_STUDIO_MODELS"


def home_override() -> Path | None:
    """``$LANGSAM_STUDIO_HOME`` as a path, or ``None`` when it is not set (or empty)."""
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else None


def config_dir() -> Path:
    """Settings (``settings.ini``) and the user's copy of the bundled sample."""
    home = home_override()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def cache_dir() -> Path:
    """Re-creatable downloads and builds (deploy packages, wheels, the local DLC venv)."""
    home = home_override()
    if home is not None:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def models_dir() -> Path:
    """The default model weights folder (a ``cache_dir`` argument of the weights store wins)."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    home = home_override()
    if home is not None:
        return home / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME)) / "models"
