"""One image's annotations: objects with label, full-resolution mask, score and origin.

Objects are immutable; edits replace an object with a new one (``dataclasses.replace``), which
keeps undo simple. Qt-free: used by the app, the CLI and the exporters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np

from inference.masks import mask_bbox


class ImageStatus(str, Enum):
    NEW = "new"  # never annotated
    IN_PROGRESS = "in_progress"
    REVIEW = "review"  # made by a batch run; a person has not checked it yet
    DONE = "done"


# What an object is drawn and exported as (its mask is always the truth): "mask" (any shape) or
# "rectangle" (drawn with the rectangle tool, for detection datasets: exporters may write its bbox).
OBJECT_KINDS: tuple[str, ...] = ("mask", "rectangle")


def new_object_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True, kw_only=True, eq=False)
class AnnotationObject:
    """One labelled object. ``mask`` is (H, W) bool at the image's full resolution."""

    label: str
    mask: np.ndarray = field(repr=False)
    id: str = field(default_factory=new_object_id)
    score: float | None = None
    source: str = "manual"  # points | box | text | exemplar | polygon | brush | batch | import
    prompt: dict[str, Any] | None = None  # JSON-able description of the prompt that made it
    hidden: bool = False
    needs_review: bool = False
    kind: str = "mask"  # one of OBJECT_KINDS

    def __post_init__(self) -> None:
        if self.mask.ndim != 2:
            raise ValueError(f"mask must be 2-D, got shape {self.mask.shape}")
        if self.mask.dtype != np.bool_:
            object.__setattr__(self, "mask", self.mask.astype(bool))
        if self.kind not in OBJECT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(OBJECT_KINDS)}, got {self.kind!r}")

    @property
    def bbox(self) -> tuple[int, int, int, int] | None:
        """xyxy (x1, y1 exclusive), ``None`` when the mask is empty."""
        return mask_bbox(self.mask)

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))

    def with_changes(self, **changes: Any) -> AnnotationObject:
        return replace(self, **changes)


@dataclass(kw_only=True, eq=False)
class ImageDocument:
    """The annotations of one image."""

    image_name: str  # file name relative to the project folder
    width: int
    height: int
    objects: list[AnnotationObject] = field(default_factory=list)
    status: ImageStatus = ImageStatus.NEW

    def __iter__(self) -> Iterator[AnnotationObject]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def index_of(self, object_id: str) -> int:
        for i, obj in enumerate(self.objects):
            if obj.id == object_id:
                return i
        raise KeyError(object_id)

    def get(self, object_id: str) -> AnnotationObject:
        return self.objects[self.index_of(object_id)]

    def add(self, obj: AnnotationObject, *, index: int | None = None) -> None:
        self._check_size(obj)
        self.objects.insert(len(self.objects) if index is None else index, obj)

    def remove(self, object_id: str) -> AnnotationObject:
        return self.objects.pop(self.index_of(object_id))

    def replace(self, obj: AnnotationObject) -> AnnotationObject:
        """Put ``obj`` where the object with the same id is; returns the old one."""
        self._check_size(obj)
        i = self.index_of(obj.id)
        old = self.objects[i]
        self.objects[i] = obj
        return old

    def labels(self) -> list[str]:
        return sorted({o.label for o in self.objects})

    def extend(self, objs: Iterable[AnnotationObject]) -> None:
        for obj in objs:
            self.add(obj)

    def _check_size(self, obj: AnnotationObject) -> None:
        if obj.mask.shape != (self.height, self.width):
            raise ValueError(
                f"object mask is {obj.mask.shape[1]}x{obj.mask.shape[0]} but the image is {self.width}x{self.height}"
            )
