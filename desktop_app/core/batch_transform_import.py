"""Bring SageMaker Batch Transform results back into a project, for review.

Qt-free and boto3-free: the records come in as ``(relative input key, body)`` pairs (the CLI
reads them from S3 with :func:`cloud.batch_transform.results.iter_records`, a test from disk).

Per record (``<input key>.out``, see ``docs/deploy.md`` "Batch Transform"):

1. the image: the project image whose name is the relative key (``a.jpg``), else the one whose
   name is the key's last part (``sub/a.jpg`` -> ``a.jpg``) when exactly that image exists;
   other records are reported and skipped;
2. the body is decoded with :func:`inference.protocol.decode_response` (an error body — a record
   the model refused — is reported with the model's own message); its ``image_size`` must be the
   image's (EXIF rotation applied), else the record is for another picture and is skipped;
3. objects are made by THE rule, :func:`desktop_app.core.prediction_policy.objects_from_prediction`,
   with the job's prompt (from the run's manifest), ``needs_review=True`` and their provenance;
4. merged, never replacing: the objects are *added* to the image's saved document; one identical
   to an object already there (same label, same mask) is skipped, so importing twice changes
   nothing. A document that gained objects gets status REVIEW (nobody looked at them yet). A
   document that cannot be loaded (damaged, newer version, unreadable) is left untouched and the
   image skipped with a message (nothing is moved aside); one changed on disk meanwhile is not
   overwritten.

Labels the new objects use are appended to the project's label set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from desktop_app.core.annotation.document import ImageStatus
from desktop_app.core.annotation.project import ProjectFolder, image_size
from desktop_app.core.annotation.storage import DocumentFileError
from desktop_app.core.importing import add_new_objects, merge_detail_lines, save_merged
from desktop_app.core.prediction_policy import DEFAULT_LABEL, objects_from_prediction
from inference.errors import StudioError
from inference.prompts import Prompt

Report = Callable[[int, str], None]  # report(records seen, image name)


@dataclass(kw_only=True)
class BatchImportSummary:
    records: int = 0
    images_changed: list[str] = field(default_factory=list)
    objects_added: int = 0
    duplicates_skipped: int = 0
    no_objects: int = 0  # answered, but nothing found
    refused: int = 0  # records holding the model's error answer
    labels_added: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"{self.records} record(s): added {self.objects_added} object(s) to {len(self.images_changed)} "
            f"image(s) for review; {self.duplicates_skipped} already present skipped; "
            f"{self.no_objects} image(s) with nothing found"
        ]
        return out + merge_detail_lines(self)


def image_for_key(key: str, names: set[str]) -> str | None:
    """The project image a record's relative input key stands for (see the module docstring)."""
    if key in names:
        return key
    base = PurePosixPath(key).name
    return base if base in names else None


def import_records(
    project: ProjectFolder,
    records: Iterable[tuple[str, bytes]],
    *,
    prompt: Prompt,
    fallback_label: str = DEFAULT_LABEL,
    report: Report | None = None,
) -> BatchImportSummary:
    """Merge every record into ``project`` (module docstring); returns what was done."""
    from inference.protocol import ProtocolError, decode_response

    summary = BatchImportSummary()
    names = set(project.images())
    labels = project.load_labels()
    seen: set[str] = set()
    for key, body in records:
        summary.records += 1
        name = image_for_key(key, names)
        if report is not None:
            report(summary.records, name or key)
        if name is None:
            summary.problems.append(f"'{key}': no image of that name in '{project.folder}': skipped")
            continue
        if name in seen and name != key:
            summary.problems.append(f"'{key}': another record already went to '{name}': skipped")
            continue
        seen.add(name)
        try:
            answer = decode_response(body)
        except ProtocolError as exc:
            summary.refused += 1
            summary.problems.append(f"'{key}': the model answered an error ({exc.code}): {exc}")
            continue
        prediction = answer.prediction
        try:
            width, height = image_size(project.image_path(name))
        except StudioError as exc:
            summary.problems.append(f"'{name}' skipped: {exc}")
            continue
        if prediction.image_size != (height, width):
            h, w = prediction.image_size
            summary.problems.append(
                f"'{key}': the result is for a {w}x{h} image but '{name}' is {width}x{height}: "
                "skipped (another picture of the same name?)"
            )
            continue
        objects = objects_from_prediction(
            prediction=prediction, prompt=prompt, fallback_label=fallback_label, needs_review=True
        )
        if not objects:
            summary.no_objects += 1
            continue
        try:
            doc = project.load(name, size=(width, height))
        except (StudioError, DocumentFileError, OSError) as exc:  # damaged, newer, unreadable: left untouched
            summary.problems.append(f"'{name}' skipped: its annotations cannot be read, so nothing was added ({exc})")
            continue
        added, skipped = add_new_objects(doc, objects)
        summary.duplicates_skipped += skipped
        if not added:
            continue
        doc.status = ImageStatus.REVIEW
        save_merged(project, doc, name=name, added=added, labels=labels, summary=summary)
    if summary.labels_added:
        project.save_labels(labels)
    return summary


__all__ = ["BatchImportSummary", "image_for_key", "import_records"]
