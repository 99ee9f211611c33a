"""Import annotations made elsewhere (COCO, labelme, YOLO-seg, PNG masks) into a project.

Qt-free: the ``import`` CLI sub-command and File → Import… (``gui/dialogs/import_dialog.py``)
both call :func:`import_annotations`.

**Merge rule.** Imported objects are *added* to the image's saved document, never replacing
it: an imported object identical to one already there (same label and the very same mask,
pixel for pixel) is skipped, so importing the same file twice changes nothing. Everything else
of the document (its other objects, their order and ids, its status) is kept; an image that
had no annotations (status NEW) becomes "in progress". Labels the imported objects use are
appended to the project's label set (existing labels keep their order and colours).

**Validation.** Every document is checked against the real image of the folder before it is
merged: an image the folder does not have, or of another size, is skipped and reported (COCO
and labelme entries are checked before any mask is decoded, so a file cannot make us allocate
masks of a size it merely declares). A file that cannot be read raises
:class:`~desktop_app.core.formats.common.FormatError` naming it; a bad entry inside a file is a
one-line problem in the summary. An annotation file of the project that cannot be loaded
(damaged, newer version) is left untouched and reported; nothing is ever moved aside here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus, new_object_id
from desktop_app.core.annotation.project import ProjectFolder, image_size
from desktop_app.core.annotation.storage import DocumentFileError
from desktop_app.core.formats.common import FormatError, ImageSizes, ImportResult
from inference.cancel import CancelToken
from inference.errors import StudioError

if TYPE_CHECKING:
    from desktop_app.core.annotation.labels import LabelSet

IMPORT_FORMATS = ("coco", "labelme", "yolo", "png")
Report = Callable[[int, int, str], None]  # report(done, total, text)


@dataclass(kw_only=True)
class ImportSummary:
    """What an import did; ``lines()`` says it for a person."""

    images_changed: list[str] = field(default_factory=list)  # image names whose document was written
    objects_added: int = 0
    duplicates_skipped: int = 0  # identical (label and mask) to an object already there
    documents_read: int = 0
    labels_added: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line each: skipped entries, files, images

    def lines(self) -> list[str]:
        out = [
            f"added {self.objects_added} object(s) to {len(self.images_changed)} image(s); "
            f"{self.duplicates_skipped} already present (same label and mask) skipped"
        ]
        return out + merge_detail_lines(self)


def _no_report(done: int, total: int, text: str) -> None:
    pass


def folder_image_sizes(project: ProjectFolder) -> tuple[ImageSizes, list[str]]:
    """(width, height) of every image of the project (header only), and the images that
    cannot be read."""
    sizes: dict[str, tuple[int, int]] = {}
    problems: list[str] = []
    for name in project.images():
        try:
            sizes[name] = image_size(project.image_path(name))
        except StudioError as exc:
            problems.append(f"image '{name}' skipped: {exc}")
    return sizes, problems


def read_annotations(
    format_name: str, source: str | os.PathLike[str], *, images_dir: str | os.PathLike[str], sizes: ImageSizes
) -> ImportResult:
    """Read ``source`` (a file or folder in ``format_name``) for the images of ``images_dir``."""
    source = Path(source)
    if format_name not in IMPORT_FORMATS:
        raise FormatError(f"unknown import format '{format_name}': choose one of {', '.join(IMPORT_FORMATS)}")
    if not source.exists():
        raise FormatError(f"'{source}' does not exist")
    if format_name == "coco":
        from desktop_app.core.formats.coco import import_coco

        files = sorted(source.glob("*.json")) if source.is_dir() else [source]
        if not files:
            raise FormatError(f"'{source}' holds no COCO .json file")
        results = [import_coco(f, image_sizes=sizes) for f in files]  # e.g. annotations_train/val.json
        return _concat(results)
    if format_name == "labelme":
        from desktop_app.core.formats.labelme import import_labelme

        return import_labelme([source], image_sizes=sizes)
    if not source.is_dir():
        raise FormatError(f"'{source}' is a file; a {format_name} import reads an exported folder")
    if format_name == "yolo":
        from desktop_app.core.formats.yolo import import_yolo

        return import_yolo(source, images_dir=images_dir)
    from desktop_app.core.formats.png import import_png

    return import_png(source, images_dir=images_dir)


def _concat(results: list[ImportResult]) -> ImportResult:
    from desktop_app.core.annotation.labels import LabelSet

    labels = LabelSet()
    for r in results:
        labels.ensure([lab.name for lab in r.labels])
    return ImportResult(
        documents=tuple(d for r in results for d in r.documents),
        labels=labels,
        warnings=tuple(w for r in results for w in r.warnings),
    )


def same_object(a: AnnotationObject, b: AnnotationObject) -> bool:
    """The merge rule's duplicate: the same label and the same mask."""
    return a.label == b.label and a.mask.shape == b.mask.shape and bool(np.array_equal(a.mask, b.mask))


def add_new_objects(
    existing: ImageDocument,
    objects: Iterable[AnnotationObject],
    *,
    prepare: Callable[[AnnotationObject], AnnotationObject] | None = None,
) -> tuple[int, int]:
    """Add each object (``prepare``d first, if given) that is not already in ``existing`` (same
    label and mask, :func:`same_object`; objects added earlier count too); (added, skipped)."""
    added = skipped = 0
    for obj in objects:
        if any(same_object(obj, other) for other in existing.objects):
            skipped += 1
            continue
        existing.add(prepare(obj) if prepare is not None else obj)
        added += 1
    return added, skipped


def merge_document(existing: ImageDocument, imported: ImageDocument) -> tuple[int, int]:
    """Add ``imported``'s objects to ``existing`` (see the merge rule); (added, skipped)."""
    added, skipped = add_new_objects(
        existing,
        (obj for obj in imported.objects if obj.mask.any()),
        prepare=lambda obj: obj.with_changes(id=new_object_id(), source="import"),
    )
    if added and existing.status == ImageStatus.NEW:
        existing.status = ImageStatus.IN_PROGRESS
    return added, skipped


class MergeSummary(Protocol):
    """What :func:`save_merged` records into (an import's or a Batch Transform import's summary)."""

    images_changed: list[str]
    objects_added: int
    labels_added: list[str]
    problems: list[str]


def merge_detail_lines(summary: MergeSummary) -> list[str]:
    """The lines after a merge summary's first: the labels it added, then its problems."""
    out = []
    if summary.labels_added:
        out.append(f"new labels: {', '.join(summary.labels_added)}")
    if summary.problems:
        out.append(f"{len(summary.problems)} problem(s):")
        out += [f"  {p}" for p in summary.problems]
    return out


def save_merged(
    project: ProjectFolder, doc: ImageDocument, *, name: str, added: int, labels: LabelSet, summary: MergeSummary
) -> None:
    """Write a document that received ``added`` objects and record it in ``summary``; labels the
    project does not have yet are added to ``labels`` (the caller saves them once, at the end).
    A failed write is one line in ``summary.problems``."""
    try:
        project.save(doc)
    except (StudioError, DocumentFileError) as exc:
        summary.problems.append(f"'{name}' not written: {exc}")
        return
    except OSError as exc:
        summary.problems.append(f"'{name}' not written: {exc.strerror or exc}")
        return
    summary.objects_added += added
    summary.images_changed.append(name)
    new = [lab for lab in doc.labels() if lab not in labels]
    if new:
        labels.ensure(new)
        summary.labels_added.extend(new)


def import_annotations(
    project: ProjectFolder,
    format_name: str,
    source: str | os.PathLike[str],
    *,
    report: Report = _no_report,
    cancel: CancelToken | None = None,
) -> ImportSummary:
    """Read ``source`` and merge it into ``project`` (module docstring); returns the summary.

    Raises :class:`FormatError` when ``source`` cannot be read at all. ``cancel`` (an
    :class:`inference.cancel.CancelToken`) is checked between images; what was merged before a
    cancel stays saved.
    """
    report(0, 0, "reading…")
    sizes, problems = folder_image_sizes(project)
    result = read_annotations(format_name, source, images_dir=project.folder, sizes=sizes)
    summary = ImportSummary(documents_read=len(result.documents), problems=[*problems, *result.warnings])
    merged: dict[str, list[ImageDocument]] = {}
    for doc in result.documents:  # several documents may name one image (labelme + COCO parts)
        name = doc.image_name if doc.image_name in sizes else Path(doc.image_name.replace("\\", "/")).name
        if name not in sizes:
            summary.problems.append(f"'{doc.image_name}' is not an image of '{project.folder}': skipped")
            continue
        if sizes[name] != (doc.width, doc.height):
            w, h = sizes[name]
            summary.problems.append(
                f"annotations for '{name}' were made for a {doc.width}x{doc.height} image but it is {w}x{h}: skipped"
            )
            continue
        merged.setdefault(name, []).append(doc)
    labels = project.load_labels()
    total = len(merged)
    for i, (name, docs) in enumerate(merged.items()):
        if cancel is not None:
            cancel.raise_if_cancelled()
        report(i, total, name)
        try:
            existing = project.load(name, size=sizes[name])
        except StudioError as exc:
            summary.problems.append(f"'{name}' skipped: its annotations cannot be read ({exc})")
            continue
        added = skipped = 0
        for doc in docs:
            a, s = merge_document(existing, doc)
            added, skipped = added + a, skipped + s
        summary.duplicates_skipped += skipped
        if added:
            save_merged(project, existing, name=name, added=added, labels=labels, summary=summary)
    if summary.labels_added:
        project.save_labels(labels)
    report(total, total, "finished")
    return summary
