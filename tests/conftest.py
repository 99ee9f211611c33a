"""Test-wide settings: no display, no network, isolated caches and settings.

Fixture modules live beside this file as ``fixtures_*.py``; each is imported below.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Caches and settings of the code under test never touch the real user folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LANGSAM_STUDIO_HOME", str(home))
    yield home
from fixtures_weights import *  # noqa: F401,F403
from fixtures_models import *  # noqa: F401,F403
from fixtures_server import *  # noqa: F401,F403
from fixtures_formats import *  # noqa: F401,F403
from fixtures_deploy import *  # noqa: F401,F403
from fixtures_app import *  # noqa: F401,F403
from fixtures_package import *  # noqa: F401,F403
from fixtures_app_core import *  # noqa: F401,F403
