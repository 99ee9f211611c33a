"""Applies what a person does in the label list to the project's :class:`LabelSet`, the
annotation controller (active label, relabelling) and the canvas colours.

The label set belongs to the project folder (``.langsam/project.json``); every change is saved
at once. Labels that appear on objects (text detections, batch runs, imports) are added to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QWidget

from desktop_app.core.annotation.labels import LabelError, LabelSet
from desktop_app.gui.widgets.label_list import LabelListWidget

if TYPE_CHECKING:
    from desktop_app.core.annotation.project import ProjectFolder


class LabelEditor(QObject):
    labels_changed = Signal()  # names, order or colours changed (refresh views that show colours)

    def __init__(
        self, *, view: LabelListWidget, controller, show_error: Callable[[str], None], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.view, self.controller, self.show_error = view, controller, show_error
        self.labels = LabelSet()
        self.project: ProjectFolder | None = None
        view.label_activated.connect(controller.set_active_label)
        view.add_requested.connect(self.add)
        view.rename_requested.connect(self.rename)
        view.recolour_requested.connect(self.recolour)
        view.delete_requested.connect(self.delete)
        controller.active_label_changed.connect(view.set_active)

    # -- project ---------------------------------------------------------------------------
    def set_project(self, project, labels: LabelSet) -> None:
        if not len(labels):
            labels.add(self.controller.active_label)  # a first class to start with
        self.project, self.labels = project, labels
        self.refresh()

    def colours(self) -> dict[str, str]:
        return {lab.name: lab.color for lab in self.labels}

    def refresh(self) -> None:
        self.view.set_labels([(lab.name, lab.color) for lab in self.labels], active=self.controller.active_label)
        self.controller.canvas.set_label_colours({lab.name: lab.rgb for lab in self.labels})
        self.labels_changed.emit()

    def save(self) -> None:
        if self.project is not None:
            try:
                self.project.save_labels(self.labels)
            except OSError as exc:
                self.show_error(f"could not save the label list: {exc}")
        self.refresh()

    def ensure(self, names: Iterable[str], *, save: bool = True) -> None:
        """Add labels met on objects; saves only if something was new."""
        new = [n for n in names if n not in self.labels]
        if new:
            self.labels.ensure(new)
            self.save() if save else self.refresh()

    # -- edits -----------------------------------------------------------------------------
    def _edit(self, func, *args) -> bool:
        try:
            func(*args)
        except LabelError as exc:
            self.show_error(str(exc))
            return False
        self.save()
        return True

    def add(self, name: str) -> None:
        if self._edit(self.labels.add, name):
            self.controller.set_active_label(" ".join(name.split()))

    def rename(self, old: str, new: str) -> None:
        """Renames the class; the current image's objects follow in one undo step."""
        if not self._edit(self.labels.rename, old, new):
            return
        new = self.labels.names[self.labels.index_of(" ".join(new.split()))]
        doc = self.controller.document
        if doc is not None:
            ids = [o.id for o in doc.objects if o.label == old]
            if ids:
                keep = self.controller.selected_ids
                self.controller.select(ids)
                self.controller.change_label_selected(new)
                self.controller.select(keep)
        if self.controller.active_label == old:
            self.controller.set_active_label(new)
        self._rename_in_other_images(old, new, skip=doc.image_name if doc is not None else None)

    def _rename_in_other_images(self, old: str, new: str, *, skip: str | None) -> None:
        """The class is renamed in every saved image (not undoable there: it is a project edit)."""
        from desktop_app.core.annotation.storage import DocumentFileError

        if self.project is None:
            return
        for summary in self.project.summaries():
            if summary.image_name == skip or old not in summary.labels:
                continue
            try:
                other = self.project.load(summary.image_name)
                for obj in list(other.objects):
                    if obj.label == old:
                        other.replace(obj.with_changes(label=new))
                self.project.save(other)
            except (DocumentFileError, OSError) as exc:
                self.show_error(f"'{old}' was not renamed in {summary.image_name}: {exc}")

    def recolour(self, name: str, colour: str) -> None:
        self._edit(self.labels.recolor, name, colour)

    def delete(self, name: str) -> bool:
        """Delete a label. When objects use it, ask: relabel them to another label, delete them,
        or cancel — else the label would come back with the next image that uses it."""
        from PySide6.QtWidgets import QMessageBox

        if name not in self.labels:
            return False
        doc = self.controller.document
        here = [o.id for o in doc.objects if o.label == name] if doc is not None else []
        skip = doc.image_name if doc is not None else None
        others = [
            s.image_name
            for s in (self.project.summaries() if self.project is not None else [])
            if s.image_name != skip and name in s.labels
        ]
        count = len(here) + len(others)
        if count:
            rest = [n for n in self.labels.names if n != name]
            target = self.controller.active_label if self.controller.active_label in rest else (rest[0] if rest else "")
            box = QMessageBox(
                QMessageBox.Icon.Question,
                "Delete label",
                f"'{name}' is used by {len(here)} object(s) on this image"
                + (f" and by objects on {len(others)} other image(s)" if others else "")
                + ". What should happen to them?",
                parent=self.view,
            )
            relabel = (
                box.addButton(f"Relabel them to '{target}'", QMessageBox.ButtonRole.AcceptRole) if target else None
            )
            remove = box.addButton("Delete them", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            clicked = box.clickedButton()
            if clicked is not remove and (relabel is None or clicked is not relabel):
                return False
            new = target if clicked is relabel else None
            if here:
                keep = [i for i in self.controller.selected_ids if i not in here]
                self.controller.select(here)
                self.controller.change_label_selected(new) if new else self.controller.delete_selected()
                self.controller.select(keep)
            self._apply_in_other_images(others, name, new)
        if self.controller.active_label == name and len(self.labels) > 1:
            self.controller.set_active_label(next(n for n in self.labels.names if n != name))
        return self._edit(self.labels.delete, name)

    def _apply_in_other_images(self, names: list[str], old: str, new: str | None) -> None:
        from desktop_app.core.annotation.storage import DocumentFileError

        for image_name in names:
            assert self.project is not None  # the names come from the project's summaries
            try:
                other = self.project.load(image_name)
                for obj in list(other.objects):
                    if obj.label == old:
                        if new:
                            other.replace(obj.with_changes(label=new))
                        else:
                            other.remove(obj.id)
                self.project.save(other)
            except (DocumentFileError, OSError) as exc:
                self.show_error(f"the objects labelled '{old}' in {image_name} were not changed: {exc}")

    def use_number(self, number: int) -> str | None:
        """Digit keys: label ``number`` becomes active and selected objects take it."""
        name = self.view.name_at(number)
        if name is None:
            self.show_error(f"there is no label {number}: add one with Ctrl+L")
            return None
        self.controller.set_active_label(name)
        if self.controller.selected_ids:
            self.controller.change_label_selected(name)
        return name

    def ask_relabel(self, parent: QWidget) -> None:
        if not self.controller.selected_ids:
            self.show_error("select objects first (click them in the object list, or with the V tool)")
            return
        names = self.labels.names or [self.controller.active_label]
        current = self.controller.document.get(self.controller.selected_ids[0]).label
        index = names.index(current) if current in names else 0
        name, ok = QInputDialog.getItem(parent, "Change label", "Label for the selected objects:", names, index, True)
        if ok and name.strip():
            self.ensure([" ".join(name.split())])
            self.controller.change_label_selected(" ".join(name.split()))
