"""Test-wide settings: no display, no network, isolated caches and settings.

Fixture modules live beside this file as ``fixtures_*.py``; pytest loads them as plugins (see
``pytest_plugins``), and tests import their helper functions by name (``from fixtures_app import key``).

Markers (registered in pyproject.toml): ``gui`` is applied here to every test that uses Qt widgets
(qtbot, or a fixture that builds a window or canvas), and ``slow`` to every test that uses a fixture
building a model or a package; test modules set ``slow`` and ``dlc`` themselves where that is not enough.
``make test-fast`` deselects all three.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

pytest_plugins = [
    "fixtures_weights",
    "fixtures_models",
    "fixtures_server",
    "fixtures_formats",
    "fixtures_deploy",
    "fixtures_app",
    "fixtures_package",
    "fixtures_app_core",
    "fixtures_sam3",
    "fixtures_openai",
]

# Fixtures that build Qt widgets. item.fixturenames is the transitive closure, so anything built
# on these (or on qtbot) is caught too; qapp alone (a QApplication, no widget) is enough to count.
GUI_FIXTURES = frozenset({"qtbot", "qapp", "make_window", "core_app"})
# Fixtures that build real models or packages (random-weight SAM 2 / Grounding DINO, wheels, the
# DLC environment): the first test to use one pays tens of seconds, so every user counts as slow.
SLOW_FIXTURES = frozenset(
    {
        "tiny_sam2_checkpoint",
        "tiny_gdino_dir",
        "sam2_backend",
        "langsam_backend",
        "build_test_package",
        "local_classic_package",
        "dlc_venv",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if GUI_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.gui)
        if SLOW_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Caches and settings of the code under test never touch the real user folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LANGSAM_STUDIO_HOME", str(home))
    yield home
