"""The main window's dialogs: Help → Keyboard shortcuts, Inference → Models…, Edit → Settings…,
File → Export… / Import…, Help → About.

:class:`WindowDialogs` belongs to the window (``window.dialogs``). Each opener creates its dialog
on first use (from ``desktop_app/gui/dialogs``, imported lazily) and keeps it in the window's
``_dialogs`` by name, so reopening shows the same one and closing the window can cancel the
background work a dialog still runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

if TYPE_CHECKING:
    from desktop_app.gui.main_window import MainWindow  # imports this module at run time


class WindowDialogs(QObject):
    """A child of the window (a QObject, so the menu actions connected to its openers hold no
    reference that would keep a closed window alive)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window

    def show_shortcuts(self) -> None:
        from desktop_app.gui.dialogs.shortcuts_dialog import ShortcutsDialog

        w = self.window
        dialog = ShortcutsDialog(w.all_actions(), parent=w)
        w._dialogs["shortcuts"] = dialog
        dialog.show()

    def show_models(self) -> None:
        from desktop_app.gui.dialogs.models_dialog import ModelsDialog

        w = self.window
        dialog = w._dialogs.get("models")
        if not isinstance(dialog, ModelsDialog):  # None until first shown; "models" only ever holds a ModelsDialog
            from inference.weights import WeightsStore

            dialog = ModelsDialog(store=WeightsStore(cache_dir=w.settings.cache_dir or None), parent=w)
            dialog.weights_changed.connect(w.start_inference)
            w._dialogs["models"] = dialog
        dialog.refresh()
        dialog.show()
        dialog.raise_()

    def show_settings(self) -> None:
        """Edit → Settings… (desktop_app/gui/dialogs/settings_dialog.py); Save applies at once."""
        from desktop_app.core.secrets import default_store
        from desktop_app.gui.dialogs.settings_dialog import SettingsDialog

        w = self.window
        dialog = w._dialogs.get("settings")
        if not isinstance(dialog, SettingsDialog):  # None until first shown; "settings" only ever holds one
            dialog = SettingsDialog(settings=w.settings, store=default_store(), open_models=self.show_models, parent=w)
            dialog.saved.connect(self._apply_saved_settings)
            w._dialogs["settings"] = dialog
        dialog.load()
        dialog.show()
        dialog.raise_()

    def _apply_saved_settings(self, changed: dict) -> None:
        """What Save changed takes effect: backend/device through the Backend menu's path."""
        w = self.window
        s = w.settings
        if "inference/prefetch_count" in changed:
            w.controller.worker.prefetch_count = s.prefetch_count
        if "editing/autosave" in changed:
            w.actions_by_name["autosave"].setChecked(s.autosave)
        if {"inference/backend", "inference/device", "inference/cache_dir"} & changed.keys():
            w.backend_menu.set_choice(s.backend, s.device)
            w.choose_backend(s.backend, s.device)

    def show_export(self) -> None:
        from desktop_app.gui.dialogs.export_dialog import ExportDialog

        w = self.window
        if w.project is None:
            w.show_error("open a folder or an image first")
            return
        w.flush_saves()
        dialog = ExportDialog(project=w.project, labels=w.label_editor.labels, current=w.current_name, parent=w)
        self._mirror_progress(dialog.task, "exporting")
        w._dialogs["export"] = dialog
        dialog.show()

    def show_import(self) -> None:
        """File → Import… (gui/dialogs/import_dialog.py); afterwards re-read like a batch."""
        from desktop_app.gui.dialogs.import_dialog import ImportDialog

        w = self.window
        if w.project is None:
            w.show_error("open a folder first")
            return
        w.flush_saves()
        dialog = ImportDialog(project=w.project, parent=w)
        dialog.imported.connect(w.navigation.reload_from_disk)
        self._mirror_progress(dialog.task, "importing")
        w._dialogs["import"] = dialog
        dialog.open()

    def _mirror_progress(self, task, what: str) -> None:
        """Background work of a dialog also shows in the status bar."""
        panel = self.window.status_panel
        task.progress.connect(
            lambda done, total, _t: panel.set_work(
                f"{what} {done}/{total}" if total > 0 else f"{what}…", done=done, total=max(total, 0)
            )
        )
        task.ended.connect(lambda: panel.set_work(""))

    def about(self) -> None:
        QMessageBox.about(
            self.window,
            "LangSAM Studio",
            "LangSAM Studio: segment images with text, points and "
            "boxes (Grounding DINO + SAM 2), fix, label and export them.",
        )
