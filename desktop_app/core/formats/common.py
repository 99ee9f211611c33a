"""What every exporter and importer shares: class lists, output names, results, errors."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument
from desktop_app.core.annotation.labels import LabelSet

Labels = LabelSet | Sequence[str] | None
Progress = Callable[[int], None]  # called with the number of images done so far


class FormatError(ValueError):
    """An export or import cannot proceed; ``str(err)`` says why, for a person."""


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    """Documents read from another tool's files, the labels they use, and what was skipped."""

    documents: tuple[ImageDocument, ...]
    labels: LabelSet
    warnings: tuple[str, ...] = field(default=())


def working_labels(labels: Labels) -> LabelSet:
    """A private copy of the label set that exporters extend with labels found in documents
    (appended in the order met), so class ids of the given labels never move."""
    if labels is None:
        return LabelSet()
    if isinstance(labels, LabelSet):
        return LabelSet(list(labels))
    if isinstance(labels, str):
        raise FormatError("labels must be a list of names, not a single string")
    return LabelSet(labels)


def exportable_objects(doc: ImageDocument) -> list[AnnotationObject]:
    """Objects with at least one pixel (an empty mask has no geometry to write)."""
    return [obj for obj in doc.objects if obj.mask.any()]


def image_relpath(image_name: str) -> PurePosixPath:
    """The image's path inside the project as a safe relative POSIX path."""
    path = PurePosixPath(image_name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.name:
        raise FormatError(f"image name '{image_name}' must be a path inside the image folder")
    return path


class StemAllocator:
    """Output names without the image suffix (``a.jpg`` -> ``a``), unique even when ``a.jpg``
    and ``a.png`` are both in the folder (the second becomes ``a_png``)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def stem(self, image_name: str) -> PurePosixPath:
        rel = image_relpath(image_name)
        base = rel.with_suffix("") if rel.suffix else rel
        candidate = base
        if str(candidate).casefold() in self._used:
            candidate = base.with_name(f"{base.name}_{rel.suffix.lstrip('.').lower() or 'x'}")
            n = 2
            while str(candidate).casefold() in self._used:
                candidate = base.with_name(f"{base.name}_{n}")
                n += 1
        self._used.add(str(candidate).casefold())
        return candidate


_UNSAFE = re.compile(r"[^\w.-]+", re.UNICODE)


def safe_filename_part(text: str, *, limit: int = 60) -> str:
    cleaned = _UNSAFE.sub("_", text).strip("._") or "object"
    return cleaned[:limit]


def prepare_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FormatError(f"'{out}' exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FormatError(f"cannot create the export folder '{out}': {exc.strerror or exc}") from exc
    return out


def iterate(documents: Iterable[ImageDocument], progress: Progress | None) -> Iterable[ImageDocument]:
    for i, doc in enumerate(documents, start=1):
        yield doc
        if progress is not None:
            progress(i)
