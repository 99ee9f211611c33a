"""Where a project's annotations are written when its own folder cannot take them.

A read-only image folder (a mounted card, a shared drive) cannot hold ``.langsam/``. The person
may then choose another folder for the annotations; :class:`RedirectedProject` is the same
:class:`ProjectFolder` (images from the image folder) whose ``.langsam`` content lives there.
The choice is kept per image folder in the app's settings (the project's own settings file is in
the folder that cannot be written): :func:`encode_redirects` / :func:`decode_redirects`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from desktop_app.core.annotation.project import PROJECT_FILE, ProjectFolder


class RedirectedProject(ProjectFolder):
    """A project whose annotations and label set live in ``annotation_dir``."""

    def __init__(self, folder: str | os.PathLike[str], annotation_dir: str | os.PathLike[str]) -> None:
        self._annotation_dir = Path(annotation_dir)
        self._annotation_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(folder)
        own = Path(folder) / ".langsam" / PROJECT_FILE
        if not self.project_file.exists() and own.is_file():
            try:  # start from the folder's label set
                shutil.copyfile(own, self.project_file)
            except OSError:
                pass

    @property
    def meta_dir(self) -> Path:
        return self._annotation_dir


def open_project(folder: str | os.PathLike[str], redirects: dict[str, str]) -> ProjectFolder:
    """The folder's project, with its annotations where the person chose to keep them."""
    target = redirects.get(str(Path(folder).resolve()))
    return RedirectedProject(folder, target) if target else ProjectFolder(folder)


def decode_redirects(text: str) -> dict[str, str]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def encode_redirects(redirects: dict[str, str]) -> str:
    return json.dumps(redirects, sort_keys=True)
