"""Inference -> Backend / Device submenus.

The backend items are :data:`desktop_app.core.backend_choices.CHOICES` (titles and order come
from there); what the chosen settings mean as a backend request is
:func:`desktop_app.core.backend_choices.backend_request`. The Device items are greyed out for a
backend that runs without one (classic).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

from desktop_app.core.backend_choices import CHOICES
from inference.device import DEVICE_CHOICES

_DEVICE_TITLES = {"auto": "Automatic (GPU if usable)", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)", "cpu": "CPU"}
DEVICE_TITLES = {key: _DEVICE_TITLES.get(key, key) for key in DEVICE_CHOICES}  # in inference.device's order


class BackendMenu(QMenu):
    """Radio items for backend and device; emits ``choice_changed(backend, device)``."""

    choice_changed = Signal(str, str)

    def __init__(self, *, backend: str, device: str, parent: QWidget | None = None) -> None:
        super().__init__("&Backend", parent)
        self._backend, self._device = backend, device
        titles = {name: choice.title for name, choice in CHOICES.items()}
        self.backend_actions = self._group(titles, backend, self._pick_backend)
        self.addSeparator()
        self.addSection("Device")
        self.device_actions = self._group(DEVICE_TITLES, device, self._pick_device)
        self._enable_devices()

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

    def _enable_devices(self) -> None:
        choice = CHOICES.get(self._backend)
        for action in self.device_actions.values():
            action.setEnabled(choice is None or choice.uses_device)

    def _pick_backend(self, key: str) -> None:
        self._backend = key
        self._enable_devices()
        self.choice_changed.emit(self._backend, self._device)

    def set_choice(self, backend: str, device: str) -> None:
        """Show ``backend`` / ``device`` as chosen (Settings… changed them) without emitting."""
        self._backend, self._device = backend, device
        for key, action in self.backend_actions.items():
            action.setChecked(key == backend)
        for key, action in self.device_actions.items():
            action.setChecked(key == device)
        self._enable_devices()

    def _pick_device(self, key: str) -> None:
        self._device = key
        self.choice_changed.emit(self._backend, self._device)
