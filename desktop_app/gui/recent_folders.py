"""File → Open Recent: the last 10 folders opened (newest first), kept in ``AppSettings.recent_folders``.

A folder that no longer exists is shown greyed with "(missing)"; "Remove missing folders" drops
them. Choosing a folder that vanished after the menu was shown says so and removes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.main_window import MainWindow

MAX_RECENT = 10


class RecentFolders(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.menu = QMenu("Open &Recent", window)
        self.menu.setObjectName("menu_open_recent")
        self.menu.aboutToShow.connect(self.rebuild)
        anchor = window.actions_by_name["open_folder"]
        file_menu = next((m for m in anchor.associatedObjects() if isinstance(m, QMenu)), None)
        if file_menu is not None:
            actions = file_menu.actions()
            i = actions.index(anchor)
            before = actions[i + 1] if i + 1 < len(actions) else None
            if before is None:
                file_menu.addMenu(self.menu)
            else:
                file_menu.insertMenu(before, self.menu)
        self.rebuild()

    @property
    def folders(self) -> list[str]:
        return self.window.settings.recent_folders

    def add(self, folder: str) -> None:
        folder = str(folder)
        self.window.settings.recent_folders = [folder, *(f for f in self.folders if f != folder)][:MAX_RECENT]
        self.rebuild()

    def remove(self, folders: list[str]) -> None:
        gone = set(folders)
        self.window.settings.recent_folders = [f for f in self.folders if f not in gone]
        self.rebuild()

    def missing(self) -> list[str]:
        return [f for f in self.folders if not Path(f).is_dir()]

    def rebuild(self) -> None:
        self.menu.clear()
        folders = self.folders
        if not folders:
            empty = self.menu.addAction("No recent folders")
            empty.setEnabled(False)
            return
        missing = set(self.missing())
        for i, folder in enumerate(folders, start=1):
            name = Path(folder).name or folder
            gone = folder in missing
            action = QAction(f"&{i % 10} {name}" + ("  (missing)" if gone else ""), self.menu)
            action.setData(folder)
            action.setToolTip(f"{folder} no longer exists" if gone else folder)
            action.setStatusTip(action.toolTip())
            action.setEnabled(not gone)
            action.triggered.connect(lambda _=False, f=folder: self.open(f))
            self.menu.addAction(action)
        self.menu.setToolTipsVisible(True)
        self.menu.addSeparator()
        if missing:
            prune = self.menu.addAction(f"Remove missing folders ({len(missing)})")
            prune.triggered.connect(lambda: self.remove(self.missing()))
        clear = self.menu.addAction("Clear list")
        clear.triggered.connect(lambda: self.remove(list(self.folders)))

    def open(self, folder: str) -> None:
        if not Path(folder).is_dir():
            self.remove([folder])
            self.window.show_error(f"'{folder}' no longer exists; it was removed from File → Open Recent")
            return
        self.window.navigation.open_path(folder)
