"""Inference -> Backend / Device submenus, and how the settings become a backend request.

``auto`` picks Lang-SAM when SAM 2 and Grounding DINO weights are installed, SAM 2 with SAM 2
only, else the classic OpenCV backend, so a fresh install without weights still answers points
and boxes. Nothing here imports torch: weights are checked by looking at files.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

BACKEND_TITLES = {
    "auto": "Automatic (best installed)",
    "langsam": "Lang-SAM: text + points + boxes",
    "sam2": "SAM 2: points + boxes",
    "classic": "Classic (OpenCV, no weights)",
}
DEVICE_TITLES = {"auto": "Automatic (GPU if usable)", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)", "cpu": "CPU"}


def backend_request(*, backend: str, device: str, cache_dir: str = "") -> tuple[str, dict[str, Any]]:
    """(backend name, options for ``create_backend``) for these settings."""
    from inference.weights import WeightsStore, default_backend_name, installed_model

    store = WeightsStore(cache_dir=cache_dir or None)
    name = default_backend_name(store) if backend == "auto" else backend
    options: dict[str, Any] = {"device": device}
    if name in ("sam2", "langsam"):
        sam2 = installed_model("sam2", store=store)
        if sam2 is not None:
            options["model"] = sam2
            options["checkpoint"] = str(store.local_path(sam2))
    if name == "langsam":
        gdino = installed_model("gdino", store=store)
        if gdino is not None:
            options["gdino_model"] = gdino
            options["gdino_path"] = str(store.local_path(gdino))
    return name, options


class BackendMenu(QMenu):
    """Radio items for backend and device; emits ``choice_changed(backend, device)``."""

    choice_changed = Signal(str, str)

    def __init__(self, *, backend: str, device: str, parent: QWidget | None = None) -> None:
        super().__init__("&Backend", parent)
        self._backend, self._device = backend, device
        self.backend_actions = self._group(BACKEND_TITLES, backend, self._pick_backend)
        self.addSeparator()
        self.addSection("Device")
        self.device_actions = self._group(DEVICE_TITLES, device, self._pick_device)

    def _group(self, titles: dict[str, str], current: str, slot) -> dict[str, QAction]:
        group = QActionGroup(self)
        group.setExclusive(True)
        actions = {}
        for key, title in titles.items():
            action = QAction(title, self)
            action.setCheckable(True)
            action.setChecked(key == current)
            action.triggered.connect(lambda _=False, k=key: slot(k))
            group.addAction(action)
            self.addAction(action)
            actions[key] = action
        return actions

    def _pick_backend(self, key: str) -> None:
        self._backend = key
        self.choice_changed.emit(self._backend, self._device)

    def _pick_device(self, key: str) -> None:
        self._device = key
        self.choice_changed.emit(self._backend, self._device)
