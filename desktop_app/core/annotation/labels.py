"""The project's label set: ordered names with colours, stored in ``.langsam/project.json``.

The order is meaningful: it gives digit shortcuts in the app and class ids in the exports
(COCO category ``index + 1``, YOLO class ``index``, semantic PNG value ``index + 1``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop_app.core.annotation.atomic import write_json_atomic
from desktop_app.core.palette import hex_to_rgb, new_label_color

PROJECT_FORMAT = "langsam-studio-project"
PROJECT_VERSION = 1

_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


class LabelError(ValueError):
    """A label operation is not possible (duplicate name, unknown label, bad colour)."""


class ProjectFileError(ValueError):
    """``project.json`` cannot be read; ``str(err)`` says which file and why."""


@dataclass(frozen=True, kw_only=True)
class Label:
    name: str
    color: str  # "#rrggbb"

    @property
    def rgb(self) -> tuple[int, int, int]:
        return hex_to_rgb(self.color)


def normalise_color(color: str | tuple[int, int, int]) -> str:
    if isinstance(color, (tuple, list)):
        if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
            raise LabelError(f"a colour needs three values 0-255, got {color!r}")
        return "#{:02x}{:02x}{:02x}".format(*color)
    if not isinstance(color, str) or not _COLOR_RE.match(color.strip()):
        raise LabelError(f"a colour must look like #rrggbb, got {color!r}")
    return color.strip().lower()


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise LabelError("a label name cannot be empty")
    cleaned = " ".join(name.split())
    if len(cleaned) > 200:
        raise LabelError("a label name can have at most 200 characters")
    return cleaned


class LabelSet:
    """Ordered, unique label names with colours. Mutable; the app saves it after each change."""

    def __init__(self, labels: Iterable[Label | str] = ()) -> None:
        self._labels: list[Label] = []
        for item in labels:
            if isinstance(item, Label):
                self.add(item.name, color=item.color)
            else:
                self.add(item)

    # -- queries ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Label]:
        return iter(list(self._labels))

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, name: object) -> bool:
        return any(label.name == name for label in self._labels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSet) and self._labels == other._labels

    def __repr__(self) -> str:
        return f"LabelSet({[label.name for label in self._labels]!r})"

    @property
    def names(self) -> list[str]:
        return [label.name for label in self._labels]

    def index_of(self, name: str) -> int:
        for i, label in enumerate(self._labels):
            if label.name == name:
                return i
        raise LabelError(f"there is no label '{name}'")

    def get(self, name: str) -> Label:
        return self._labels[self.index_of(name)]

    # -- edits -----------------------------------------------------------------------------
    def add(self, name: str, *, color: str | tuple[int, int, int] | None = None) -> Label:
        """Append a label (returns the existing one if the name is already there)."""
        name = _check_name(name)
        if name in self:
            return self.get(name)
        if color is None:  # the one colour policy: the canvas showed this colour before the label was added
            color = new_label_color(name, taken=[label.color for label in self._labels])
        label = Label(name=name, color=normalise_color(color))
        self._labels.append(label)
        return label

    def ensure(self, names: Iterable[str]) -> list[Label]:
        """Add every name not yet present, in order; returns the labels for ``names``."""
        return [self.add(name) for name in names]

    def rename(self, old: str, new: str) -> Label:
        new = _check_name(new)
        i = self.index_of(old)
        if new != old and new in self:
            raise LabelError(f"a label named '{new}' already exists")
        self._labels[i] = Label(name=new, color=self._labels[i].color)
        return self._labels[i]

    def recolor(self, name: str, color: str | tuple[int, int, int]) -> Label:
        i = self.index_of(name)
        self._labels[i] = Label(name=name, color=normalise_color(color))
        return self._labels[i]

    recolour = recolor

    def delete(self, name: str) -> Label:
        return self._labels.pop(self.index_of(name))

    def move(self, name: str, index: int) -> None:
        label = self._labels.pop(self.index_of(name))
        self._labels.insert(max(0, min(index, len(self._labels))), label)

    # -- storage ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": PROJECT_FORMAT,
            "version": PROJECT_VERSION,
            "labels": [{"name": label.name, "color": label.color} for label in self._labels],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "the project file") -> LabelSet:
        if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
            raise ProjectFileError(f"{source} is not a LangSAM Studio project file")
        version = data.get("version")
        if not isinstance(version, int) or version < 1:
            raise ProjectFileError(f"{source} has no valid version number")
        if version > PROJECT_VERSION:
            raise ProjectFileError(
                f"{source} was written by a newer LangSAM Studio (project format version {version}); "
                f"this version reads up to version {PROJECT_VERSION}. Update LangSAM Studio to open it."
            )
        labels = data.get("labels", [])
        if not isinstance(labels, list):
            raise ProjectFileError(f"{source}: 'labels' must be a list")
        result = cls()
        for i, entry in enumerate(labels):
            try:
                result.add(entry["name"], color=entry.get("color"))
            except (KeyError, TypeError, AttributeError, LabelError) as exc:
                raise ProjectFileError(f"{source}: label {i + 1} is invalid ({exc})") from None
        return result

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically, keeping any other keys the project file holds."""
        data = self.to_json()
        try:
            existing = json.loads(Path(path).read_bytes().decode("utf-8"))
        except (OSError, ValueError):
            existing = None
        if isinstance(existing, dict) and existing.get("format") == PROJECT_FORMAT:
            data = {**existing, **data}
        return write_json_atomic(path, data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelSet:
        """Read a label set; a missing file is an empty set."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise ProjectFileError(f"cannot read '{path}': {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProjectFileError(f"'{path}' is not valid JSON ({exc})") from exc
        return cls.from_json(data, source=f"'{path}'")
