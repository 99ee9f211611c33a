"""The window's object clipboard: Ctrl+C keeps copies of the selected objects (masks as bbox
crops, :class:`desktop_app.core.object_ops.ObjectCopy`); Ctrl+V pastes them onto the image on
screen, which may be another image (frames of a sequence): same size = same positions, another
size = the same pixel positions clipped to the image (never scaled). It lives as long as the window,
so copying on one image and pasting after D (next image) works.
"""

from __future__ import annotations

from collections.abc import Sequence

from desktop_app.core.annotation.document import AnnotationObject
from desktop_app.core.object_ops import ObjectCopy, PasteResult, copy_objects, paste_copies


class ObjectClipboard:
    def __init__(self) -> None:
        self._copies: list[ObjectCopy] = []
        self.source_image: str | None = None  # the image the copies came from

    def __len__(self) -> int:
        return len(self._copies)

    def copy(self, objects: Sequence[AnnotationObject], *, image_name: str | None = None) -> int:
        """Replace the clipboard with copies of ``objects``; how many were copied."""
        copies = copy_objects(objects)
        if copies:
            self._copies, self.source_image = copies, image_name
        return len(copies)

    def paste(self, *, width: int, height: int) -> PasteResult:
        """New objects (new ids) for an image of this size."""
        return paste_copies(self._copies, width=width, height=height)
