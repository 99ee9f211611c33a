"""inference.paths: the one place that resolves the app's folders (settings, models, caches)."""

from __future__ import annotations

from pathlib import Path

from inference import paths


def test_home_puts_every_folder_under_it(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    monkeypatch.delenv(paths.MODELS_ENV, raising=False)
    assert paths.config_dir() == tmp_path
    assert paths.models_dir() == tmp_path / "models"
    assert paths.cache_dir() == tmp_path / "cache"


def test_models_env_wins_for_models_only(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path / "weights"))
    assert paths.models_dir() == tmp_path / "weights"
    assert paths.cache_dir() == tmp_path / "home" / "cache"


def test_platform_folders_without_home(monkeypatch):
    import platformdirs

    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    monkeypatch.delenv(paths.MODELS_ENV, raising=False)
    assert paths.config_dir() == Path(platformdirs.user_config_dir("langsam-studio"))
    assert paths.cache_dir() == Path(platformdirs.user_cache_dir("langsam-studio"))
    assert paths.models_dir() == Path(platformdirs.user_cache_dir("langsam-studio")) / "models"


def test_every_caller_uses_it(monkeypatch, tmp_path):
    from cloud.packaging.wheels import user_cache_dir
    from desktop_app.core.samples import SAMPLE_IMAGE, user_copy_dir
    from inference.weights import WeightsStore, default_models_dir

    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    monkeypatch.delenv(paths.MODELS_ENV, raising=False)
    assert default_models_dir() == WeightsStore().cache_dir == tmp_path / "models"
    assert user_cache_dir() == tmp_path / "cache"
    assert user_copy_dir() == tmp_path / "sample"
    assert SAMPLE_IMAGE.is_file()  # the bundled sample ships in resources/samples


def test_settings_live_in_the_config_folder(monkeypatch, tmp_path):
    import pytest

    pytest.importorskip("PySide6")
    from desktop_app.gui.settings import settings_path

    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    assert settings_path() == tmp_path / "settings.ini"
