"""The one registry of backend choices: it agrees with the inference registry, and the settings,
the Backend menu and every CLI ``--backend`` read it (a new entry shows up everywhere)."""

from __future__ import annotations

import argparse

import pytest

from desktop_app.core import backend_choices as bc
from desktop_app.core.backend_choices import (
    AUTO,
    CHOICES,
    BackendChoice,
    BackendKind,
    Capability,
    backend_request,
    resolve_backend_name,
)


def test_names_agree_with_the_inference_registry():
    from inference.backends import registry

    assert set(bc.backend_names()) == set(registry._PROVIDERS) == set(registry.backend_names())
    assert AUTO in CHOICES and AUTO not in registry._PROVIDERS
    assert list(CHOICES)[0] == AUTO  # the menu starts with it


def test_entries_describe_what_the_backend_classes_can_do():
    from inference.backends.registry import backend_class

    for name in bc.local_backend_names():  # the remote ones: tests/test_remote_backends.py
        choice, cls = CHOICES[name], backend_class(name)  # imports the module only (no torch, no weights)
        assert cls.name == name and choice.kind is BackendKind.LOCAL
        assert choice.can(Capability.TEXT) == cls.supports_text
        assert choice.can(Capability.POINTS) == cls.supports_points
        assert choice.title and choice.summary and choice.settings == ()
        assert set(choice.weights) <= {"sam2", "gdino", "sam3"}
        assert choice.can(Capability.EXEMPLARS) == cls.supports_exemplars
    assert not CHOICES["classic"].uses_device and not CHOICES["classic"].weights
    assert CHOICES["langsam"].weights == ("sam2", "gdino")


def _fake_weights(tmp_path, *families):
    from fixtures_weights import make_gdino_files, make_torch_like_checkpoint
    from inference.weights import DEFAULT_GDINO, DEFAULT_SAM2, WeightsStore

    store = WeightsStore()
    if "sam2" in families:
        path = tmp_path / "sam2.pt"
        path.write_bytes(make_torch_like_checkpoint(1000))
        store.set_override(DEFAULT_SAM2, path)
    if "gdino" in families:
        folder = tmp_path / "gdino"
        folder.mkdir()
        for name, data in make_gdino_files().items():
            (folder / name).write_bytes(data)
        store.set_override(DEFAULT_GDINO, folder)
    return store


@pytest.mark.parametrize("families, expected", [((), "classic"), (("sam2",), "sam2"), (("sam2", "gdino"), "langsam")])
def test_auto_is_the_best_installed_and_agrees_with_the_weights_store(tmp_path, families, expected):
    from inference.weights import default_backend_name

    store = _fake_weights(tmp_path, *families)
    assert resolve_backend_name(AUTO, store=store) == expected == default_backend_name(store)
    assert resolve_backend_name("classic", store=store) == "classic"  # a name is itself
    # a text prompt needs Lang-SAM: the one that can answer it, even before its weights are there
    assert resolve_backend_name(AUTO, store=store, needs=Capability.TEXT) == "langsam"
    request = backend_request(backend=AUTO, device="cpu")
    assert request.name == expected
    if expected == "classic":
        assert dict(request.options) == {"device": "cpu"}
    if "sam2" in families:
        assert request.options["model"] and request.options["checkpoint"].endswith("sam2.pt")
    assert ("gdino_path" in request.options) == (expected == "langsam")
    # an explicit choice gets the weights it needs, and only those
    assert set(backend_request(backend="sam2", device="cpu").options) <= {"device", "model", "checkpoint"}


def test_settings_validate_with_the_registry(monkeypatch):
    from desktop_app.gui.settings import AppSettings

    settings = AppSettings()
    for name in CHOICES:
        settings.backend = name
        assert AppSettings().backend == name
    with pytest.raises(ValueError, match="auto, langsam, sam2, classic"):
        settings.backend = "nonsense"
    settings.device = "cuda:1"
    assert AppSettings().device == "cuda:1"
    with pytest.raises(ValueError):
        settings.device = "cuda:x"
    # a new entry is accepted at once, no other list to edit
    monkeypatch.setitem(CHOICES, "remote", _remote())
    settings.backend = "remote"
    assert AppSettings().backend == "remote"


def _remote() -> BackendChoice:
    return BackendChoice(
        name="remote",
        title="My server",
        kind=BackendKind.SERVER,
        uses_device=False,
        capabilities=Capability.TEXT | Capability.POINTS | Capability.BOXES,
        settings=("inference/server_url",),
        summary="our own server",
    )


def test_menu_items_are_the_registry(qtbot, monkeypatch):
    from desktop_app.gui.widgets.backend_menu import DEVICE_TITLES, BackendMenu
    from inference.device import DEVICE_CHOICES

    monkeypatch.setitem(CHOICES, "remote", _remote())
    menu = BackendMenu(backend="sam2", device="cpu")
    qtbot.addWidget(menu)
    assert list(menu.backend_actions) == list(CHOICES)
    assert [a.text() for a in menu.backend_actions.values()] == [c.title for c in CHOICES.values()]
    assert list(DEVICE_TITLES) == list(DEVICE_CHOICES)
    assert menu.backend_actions["sam2"].isChecked() and all(a.isEnabled() for a in menu.device_actions.values())
    with qtbot.waitSignal(menu.choice_changed) as blocker:
        menu.backend_actions["classic"].trigger()
    assert blocker.args == ["classic", "cpu"]
    assert not any(a.isEnabled() for a in menu.device_actions.values())  # classic runs without a device


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


def _parser(module_name: str, add: str = "add_arguments") -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser()
    getattr(importlib.import_module(module_name), add)(parser)
    return parser


def test_cli_backend_options_come_from_the_registry(monkeypatch, capsys, tmp_path):
    import numpy as np
    from PIL import Image

    from desktop_app.cli.main import main

    monkeypatch.setitem(CHOICES, "remote", _remote())
    segment = _option(_parser("desktop_app.cli.segment_command"), "--backend")
    assert all(f"{name} (" in segment.help for name in CHOICES)  # every choice, remote ones too
    serve = _option(_parser("desktop_app.cli.serve_command"), "--backend")
    assert tuple(serve.choices) == ("langsam", "sam2", "classic", "sam3")  # only what runs in this process
    assert all(f"{name} (" in serve.help for name in serve.choices) and "remote" not in serve.help
    package = _option(_parser("desktop_app.cli.deploy_package_command", "_add_model_arguments"), "--backend")
    assert tuple(package.choices) == bc.local_backend_names()
    # segment: an unknown name is refused with the registry's list (exit 2, no traceback)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    code = main(
        [
            "segment",
            str(tmp_path / "a.png"),
            "--point",
            "1,1",
            "--backend",
            "nonsense",
            "--format",
            "coco",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        code == 2
        and "unknown backend 'nonsense': choose one of auto, langsam, sam2, classic, sam3, server, sagemaker, remote"
        in err
    )
