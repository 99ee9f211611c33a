"""Undoable edits of an :class:`~desktop_app.core.annotation.document.ImageDocument`.

Every change a person makes goes through a ``QUndoCommand`` pushed on the image's
:class:`DocumentHistory` (one ``QUndoStack`` per image). A command is a list of small operations
(add / remove an object, xor a mask region, set a field) applied in order and reverted in
reverse. Masks are never stored as full copies: removed objects are kept as their bounding-box
crop, bit-packed and zlib-compressed, and mask edits (brush, eraser, merge, subtract) as the
compressed xor of old and new restricted to the changed bounding box. Each stack keeps at least
:data:`DEFAULT_UNDO_LIMIT` steps and at most ``max_bytes`` of compressed history (oldest steps
are dropped first). ``DocumentHistory.changed`` fires after every do / undo / redo; the shell
auto-saves on it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument
from inference.masks import mask_bbox

DEFAULT_UNDO_LIMIT = 200
DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024  # per image
DEFAULT_TOTAL_HISTORY_BYTES = 512 * 1024 * 1024  # all images kept by a HistoryStore


# -- compressed masks ----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, eq=False)
class PackedMask:
    """A bool mask stored as its bbox crop, bit-packed and zlib-compressed."""

    height: int
    width: int
    bbox: tuple[int, int, int, int] | None  # xyxy, x1/y1 exclusive; None = empty
    data: bytes = field(repr=False)

    @classmethod
    def pack(cls, mask: np.ndarray, *, bbox: tuple[int, int, int, int] | None = None) -> PackedMask:
        """Compress ``mask`` (only its ``bbox`` region, the tight box by default)."""
        h, w = mask.shape
        box = mask_bbox(mask) if bbox is None else bbox
        if box is None:
            return cls(height=h, width=w, bbox=None, data=b"")
        x0, y0, x1, y1 = box
        crop = np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=bool)
        return cls(height=h, width=w, bbox=box, data=zlib.compress(np.packbits(crop).tobytes(), 1))

    def crop(self) -> np.ndarray:
        """The bbox region as a bool array (empty array when there is no bbox)."""
        if self.bbox is None:
            return np.zeros((0, 0), dtype=bool)
        x0, y0, x1, y1 = self.bbox
        n = (x1 - x0) * (y1 - y0)
        bits = np.unpackbits(np.frombuffer(zlib.decompress(self.data), dtype=np.uint8), count=n)
        return bits.reshape(y1 - y0, x1 - x0).astype(bool)

    def unpack(self) -> np.ndarray:
        mask = np.zeros((self.height, self.width), dtype=bool)
        if self.bbox is not None:
            x0, y0, x1, y1 = self.bbox
            mask[y0:y1, x0:x1] = self.crop()
        return mask

    @property
    def nbytes(self) -> int:
        return len(self.data) + 64


def mask_diff(old: np.ndarray, new: np.ndarray) -> PackedMask:
    """The compressed xor of two masks, restricted to the bbox of the changed pixels."""
    if old.shape != new.shape:
        raise ValueError(f"mask shapes differ: {old.shape} vs {new.shape}")
    changed = np.logical_xor(old, new)
    return PackedMask.pack(changed)


def apply_diff(mask: np.ndarray, diff: PackedMask) -> np.ndarray:
    """A new mask: ``mask`` xor ``diff`` (the same call undoes and redoes)."""
    out = mask.copy()
    if diff.bbox is not None:
        x0, y0, x1, y1 = diff.bbox
        out[y0:y1, x0:x1] ^= diff.crop()
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class PackedObject:
    """An :class:`AnnotationObject` with its mask compressed (kept by remove/add history)."""

    fields: dict[str, Any] = field(repr=False)
    mask: PackedMask

    @classmethod
    def pack(cls, obj: AnnotationObject) -> PackedObject:
        fields = {k: getattr(obj, k) for k in obj.__dataclass_fields__ if k != "mask"}
        return cls(fields=fields, mask=PackedMask.pack(obj.mask))

    def unpack(self) -> AnnotationObject:
        return AnnotationObject(mask=self.mask.unpack(), **self.fields)

    @property
    def nbytes(self) -> int:
        return self.mask.nbytes + 256


# -- operations ------------------------------------------------------------------------------
class _Op:
    nbytes = 64
    object_id = ""

    def apply(self, doc: ImageDocument) -> None:
        raise NotImplementedError

    def revert(self, doc: ImageDocument) -> None:
        raise NotImplementedError


class _AddOp(_Op):
    def __init__(self, obj: AnnotationObject, index: int | None) -> None:
        self.packed = PackedObject.pack(obj)
        self.object_id = obj.id
        self.index = index
        self._live: AnnotationObject | None = obj  # reused on the first apply (no unpacking)

    def apply(self, doc: ImageDocument) -> None:
        obj, self._live = (self._live or self.packed.unpack()), None
        doc.add(obj, index=self.index)

    def revert(self, doc: ImageDocument) -> None:
        doc.remove(self.object_id)

    @property
    def nbytes(self) -> int:  # type: ignore[override]
        return self.packed.nbytes


class _RemoveOp(_Op):
    def __init__(self, obj: AnnotationObject) -> None:
        self.packed = PackedObject.pack(obj)
        self.object_id = obj.id
        self.index = 0

    def apply(self, doc: ImageDocument) -> None:
        self.index = doc.index_of(self.object_id)
        doc.remove(self.object_id)

    def revert(self, doc: ImageDocument) -> None:
        doc.add(self.packed.unpack(), index=self.index)

    @property
    def nbytes(self) -> int:  # type: ignore[override]
        return self.packed.nbytes


class _MaskOp(_Op):
    def __init__(self, object_id: str, diff: PackedMask) -> None:
        self.object_id = object_id
        self.diff = diff

    def _flip(self, doc: ImageDocument) -> None:
        obj = doc.get(self.object_id)
        doc.replace(obj.with_changes(mask=apply_diff(obj.mask, self.diff)))

    apply = _flip
    revert = _flip

    @property
    def nbytes(self) -> int:  # type: ignore[override]
        return self.diff.nbytes


class _FieldOp(_Op):
    def __init__(self, object_id: str, name: str, old: Any, new: Any) -> None:
        self.object_id, self.name, self.old, self.new = object_id, name, old, new

    def apply(self, doc: ImageDocument) -> None:
        doc.replace(doc.get(self.object_id).with_changes(**{self.name: self.new}))

    def revert(self, doc: ImageDocument) -> None:
        doc.replace(doc.get(self.object_id).with_changes(**{self.name: self.old}))


# -- commands ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DocumentChange:
    """What a do / undo / redo touched: ``kind`` is the command's kind, ``object_ids`` the objects."""

    kind: str
    object_ids: tuple[str, ...]
    undo: bool = False


class DocumentCommand(QUndoCommand):
    """Base class: a named list of operations on the history's document."""

    kind = "edit"

    def __init__(self, history: DocumentHistory, ops: Sequence[_Op], text: str, *, applied: bool = False) -> None:
        super().__init__(text)
        self.history = history
        self.ops = list(ops)
        self._skip_redo = applied  # a replayed command whose effect is already in the document

    @property
    def nbytes(self) -> int:
        return 128 + sum(op.nbytes for op in self.ops)

    @property
    def object_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(op.object_id for op in self.ops if op.object_id))

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        doc = self.history.document
        for op in self.ops:
            op.apply(doc)
        self.history._notify(DocumentChange(kind=self.kind, object_ids=self.object_ids))

    def undo(self) -> None:
        doc = self.history.document
        for op in reversed(self.ops):
            op.revert(doc)
        self.history._notify(DocumentChange(kind=self.kind, object_ids=self.object_ids, undo=True))

    def replay(self) -> DocumentCommand:
        """A copy holding the same operations, marked as already applied."""
        clone = type(self).__new__(type(self))
        DocumentCommand.__init__(clone, self.history, self.ops, self.text(), applied=True)
        return clone


class AddObjectsCommand(DocumentCommand):
    kind = "add"

    def __init__(
        self, history: DocumentHistory, *, objects: Sequence[AnnotationObject], text: str | None = None
    ) -> None:
        objs = list(objects)
        super().__init__(
            history,
            [_AddOp(o, None) for o in objs],
            text or (f"Add {objs[0].label}" if len(objs) == 1 else f"Add {len(objs)} objects"),
        )


class RemoveObjectsCommand(DocumentCommand):
    kind = "remove"

    def __init__(self, history: DocumentHistory, *, object_ids: Sequence[str], text: str | None = None) -> None:
        doc = history.document
        ops = [_RemoveOp(doc.get(i)) for i in object_ids]
        super().__init__(history, ops, text or f"Delete {len(ops)} object{'s' if len(ops) != 1 else ''}")


class ReplaceMaskCommand(DocumentCommand):
    """Set an object's mask (brush, eraser, polygon edit, refine); stores only the xor diff."""

    kind = "mask"

    def __init__(self, history: DocumentHistory, *, object_id: str, mask: np.ndarray, text: str = "Edit mask") -> None:
        old = history.document.get(object_id).mask
        self.diff = mask_diff(old, np.asarray(mask, dtype=bool))
        super().__init__(history, [_MaskOp(object_id, self.diff)], text)

    @property
    def changes_anything(self) -> bool:
        return self.diff.bbox is not None


class ChangeLabelCommand(DocumentCommand):
    kind = "label"

    def __init__(self, history: DocumentHistory, *, object_ids: Sequence[str], label: str) -> None:
        doc = history.document
        ops = [_FieldOp(i, "label", doc.get(i).label, label) for i in object_ids]
        super().__init__(history, ops, f"Label as {label}")


class SetHiddenCommand(DocumentCommand):
    kind = "hidden"

    def __init__(self, history: DocumentHistory, *, object_ids: Sequence[str], hidden: bool) -> None:
        doc = history.document
        ops = [_FieldOp(i, "hidden", doc.get(i).hidden, hidden) for i in object_ids]
        super().__init__(history, ops, "Hide" if hidden else "Show")


class MergeObjectsCommand(DocumentCommand):
    """The union of the objects' masks goes to the first; the others are removed."""

    kind = "merge"

    def __init__(self, history: DocumentHistory, *, object_ids: Sequence[str]) -> None:
        if len(object_ids) < 2:
            raise ValueError("merging needs at least two objects")
        doc = history.document
        target = doc.get(object_ids[0])
        union = target.mask.copy()
        for i in object_ids[1:]:
            union |= doc.get(i).mask
        ops: list[_Op] = [_MaskOp(target.id, mask_diff(target.mask, union))]
        ops += [_RemoveOp(doc.get(i)) for i in object_ids[1:]]
        super().__init__(history, ops, f"Merge {len(object_ids)} objects")


class SubtractObjectsCommand(DocumentCommand):
    """The first object minus the union of the others (which stay as they are)."""

    kind = "subtract"

    def __init__(self, history: DocumentHistory, *, object_ids: Sequence[str]) -> None:
        if len(object_ids) < 2:
            raise ValueError("subtracting needs at least two objects")
        doc = history.document
        target = doc.get(object_ids[0])
        result = target.mask.copy()
        for i in object_ids[1:]:
            result &= ~doc.get(i).mask
        super().__init__(
            history,
            [_MaskOp(target.id, mask_diff(target.mask, result))],
            f"Subtract {len(object_ids) - 1} object{'s' if len(object_ids) > 2 else ''}",
        )


class EditOutlineCommand(DocumentCommand):
    """Vertex editing: the object's mask rasterised from its edited outline, as one step (and its
    ``kind``, e.g. a rectangle whose corner was moved becomes a mask)."""

    kind = "mask"

    def __init__(self, history: DocumentHistory, *, object_id: str, mask: np.ndarray, object_kind: str) -> None:
        obj = history.document.get(object_id)
        self.diff = mask_diff(obj.mask, np.asarray(mask, dtype=bool))
        ops: list[_Op] = [_MaskOp(object_id, self.diff)]
        if object_kind != obj.kind:
            ops.append(_FieldOp(object_id, "kind", obj.kind, object_kind))
        super().__init__(history, ops, "Edit vertices")

    @property
    def changes_anything(self) -> bool:
        return self.diff.bbox is not None or len(self.ops) > 1


class BringToFrontCommand(DocumentCommand):
    """Move objects to the end of the list: drawn last, on top, and hit first by a click."""

    kind = "order"

    def __init__(self, history: DocumentHistory, *, object_ids: Sequence[str]) -> None:
        doc = history.document
        ops: list[_Op] = []
        for i in object_ids:
            obj = doc.get(i)
            ops += [_RemoveOp(obj), _AddOp(obj, None)]
        super().__init__(history, ops, "Bring to front")


# -- stacks ------------------------------------------------------------------------------------
class BoundedUndoStack(QUndoStack):
    """A QUndoStack with a count limit and a byte limit on the history it holds."""

    def __init__(
        self,
        *,
        undo_limit: int = DEFAULT_UNDO_LIMIT,
        max_bytes: int = DEFAULT_HISTORY_BYTES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.setUndoLimit(max(100, int(undo_limit)))
        self.max_bytes = int(max_bytes)
        self.trimming = False

    def commands(self) -> list[DocumentCommand]:
        out = []
        for i in range(self.count()):
            cmd = self.command(i)
            if isinstance(cmd, DocumentCommand):
                out.append(cmd)
        return out

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.commands())

    def push(self, cmd: QUndoCommand) -> None:
        super().push(cmd)
        self.trim_to(self.max_bytes)

    def trim_to(self, max_bytes: int) -> int:
        """Drop the oldest steps until the history is within ``max_bytes`` (keeps the newest).

        Only trims when there is nothing to redo (right after a push). Returns steps dropped.
        """
        cmds = self.commands()
        if len(cmds) <= 1 or self.index() != self.count():
            return 0
        sizes = [c.nbytes for c in cmds]
        total, drop = sum(sizes), 0
        while total > max_bytes and drop < len(cmds) - 1:
            total -= sizes[drop]
            drop += 1
        if drop == 0:
            return 0
        clean = self.cleanIndex()
        kept = [c.replay() for c in cmds[drop:]]
        self.trimming = True
        try:
            self.clear()
            for i, cmd in enumerate(kept):
                QUndoStack.push(self, cmd)
                if clean == drop + i + 1:
                    self.setClean()
            if clean < drop + 1:
                self.resetClean()
        finally:
            self.trimming = False
        return drop


class DocumentHistory(QObject):
    """One image's document and its undo stack. ``changed(DocumentChange)`` after every edit."""

    changed = Signal(object)

    def __init__(
        self,
        document: ImageDocument,
        *,
        undo_limit: int = DEFAULT_UNDO_LIMIT,
        max_bytes: int = DEFAULT_HISTORY_BYTES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.document = document
        self.stack = BoundedUndoStack(undo_limit=undo_limit, max_bytes=max_bytes, parent=self)

    def push(self, command: DocumentCommand) -> None:
        """Do ``command`` and put it on the stack."""
        self.stack.push(command)

    def _notify(self, change: DocumentChange) -> None:
        self.changed.emit(change)

    @property
    def nbytes(self) -> int:
        return self.stack.nbytes


class HistoryStore(QObject):
    """The histories of recently visited images, bounded in number and total bytes.

    ``undo_group`` always has the current image's stack active: the shell builds its Undo/Redo
    actions with ``undo_group.createUndoAction(...)``.
    """

    def __init__(
        self,
        *,
        max_images: int = 20,
        total_bytes: int = DEFAULT_TOTAL_HISTORY_BYTES,
        per_image_bytes: int = DEFAULT_HISTORY_BYTES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.undo_group = QUndoGroup(self)
        self.max_images = max(1, max_images)
        self.total_bytes = total_bytes
        self.per_image_bytes = per_image_bytes
        self._histories: dict[str, DocumentHistory] = {}

    def history_for(self, key: str, document: ImageDocument) -> DocumentHistory:
        """The history of image ``key``; a new one if ``document`` is not the one it holds."""
        history = self._histories.pop(key, None)
        if history is None or history.document is not document:
            if history is not None:
                self._drop(history)
            history = DocumentHistory(document, max_bytes=self.per_image_bytes, parent=self)
            self.undo_group.addStack(history.stack)
        self._histories[key] = history  # most recent last
        self.undo_group.setActiveStack(history.stack)
        self._enforce(keep=history)
        return history

    def histories(self) -> Iterable[DocumentHistory]:
        return list(self._histories.values())

    def document_for(self, key: str) -> ImageDocument | None:
        """The in-memory document of a recently visited image (reopening it with this very
        document keeps its undo history), or ``None``."""
        history = self._histories.get(key)
        return None if history is None else history.document

    def forget(self, key: str) -> None:
        """Drop an image's history (its file was rewritten elsewhere, e.g. by a batch run)."""
        history = self._histories.pop(key, None)
        if history is not None:
            self._drop(history)

    @property
    def nbytes(self) -> int:
        return sum(h.nbytes for h in self._histories.values())

    def _drop(self, history: DocumentHistory) -> None:
        self.undo_group.removeStack(history.stack)
        history.deleteLater()

    def _enforce(self, *, keep: DocumentHistory) -> None:
        while len(self._histories) > self.max_images or (self.nbytes > self.total_bytes and len(self._histories) > 1):
            oldest_key = next(iter(self._histories))
            if self._histories[oldest_key] is keep:
                break
            self._drop(self._histories.pop(oldest_key))
