"""One :class:`ImageDocument` as a JSON file (masks as COCO RLE), written atomically.

Layout (see docs/adr/0002-annotation-storage.md): the first line holds the small header
(format, version, status, object count, labels, image size) and ends with a comma; then one
object per line. The whole file is ordinary JSON; :func:`read_summary` parses only line one, so
a file list of thousands of images never decodes a mask.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from desktop_app.core.annotation.atomic import write_bytes_atomic
from desktop_app.core.annotation.document import OBJECT_KINDS, AnnotationObject, ImageDocument, ImageStatus
from inference.errors import StudioError
from inference.masks import mask_to_rle, rle_to_mask

FORMAT_NAME = "langsam-studio"
FORMAT_VERSION = 1
_HEADER_LIMIT = 256 * 1024  # the first line is far smaller; more means someone reformatted it

# Limits on what is read from disk, checked before any decoder (json, pycocotools) sees it.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # a real document is KBs to a few MBs
MAX_NESTING = 64  # JSON containers inside each other; a real document is < 10 deep
MAX_OBJECTS = 100_000
# pycocotools keeps run lengths in 32-bit unsigned ints and its buffer size in a C ``long``
# (32 bits on Windows): a mask of 2**31 pixels or more cannot be decoded safely anywhere.
MAX_MASK_PIXELS = 2**31 - 1


class DocumentFileError(ValueError):
    """An annotation file cannot be read; ``str(err)`` names the file and the problem."""


class FutureVersionError(DocumentFileError):
    """The file was written by a newer LangSAM Studio with a format this version cannot read."""


class DamagedDocumentError(DocumentFileError):
    """The file's content is unusable: not JSON, not ours, wrong types, absurd or impossible
    numbers, too large, or made for an image of another size. Such a file is never overwritten:
    :meth:`~desktop_app.core.annotation.project.ProjectFolder.move_aside` keeps it as a backup."""


class ImageSizeMismatchError(DamagedDocumentError):
    """The file is readable but was made for an image of another size (the image was replaced)."""


class DocumentChangedOnDisk(StudioError):
    """The annotation file was changed by someone else (another window, a sync tool, a batch run
    in another process) after it was loaded; it was not overwritten. Save again with
    ``force=True`` to replace it (the other version is then kept as a backup)."""

    def __init__(self, message: str, *, path: Path, image_name: str) -> None:
        super().__init__(message)
        self.path = path
        self.image_name = image_name


@dataclass(frozen=True, kw_only=True)
class ImageSummary:
    """What a file list shows per image, read without decoding masks."""

    image_name: str
    status: ImageStatus
    object_count: int
    labels: tuple[str, ...] = ()
    error: str | None = None  # the file exists but cannot be read: why


# -- writing ---------------------------------------------------------------------------------
def _header(doc: ImageDocument) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "status": ImageStatus(doc.status).value,
        "object_count": len(doc.objects),
        "labels": doc.labels(),
        "image": {"name": doc.image_name, "width": int(doc.width), "height": int(doc.height)},
    }


def object_to_json(obj: AnnotationObject) -> dict[str, Any]:
    bbox = obj.bbox
    return {
        "id": obj.id,
        "label": obj.label,
        "score": None if obj.score is None or not math.isfinite(obj.score) else float(obj.score),
        "source": obj.source,
        "prompt": obj.prompt,
        "hidden": bool(obj.hidden),
        "needs_review": bool(obj.needs_review),
        "kind": obj.kind,  # "mask" | "rectangle"; absent in older files (read as "mask")
        "bbox": None if bbox is None else list(bbox),  # xyxy, for readers that skip the mask
        "area": obj.area,
        "mask": mask_to_rle(obj.mask),
    }


def document_to_bytes(doc: ImageDocument) -> bytes:
    header = json.dumps(_header(doc), ensure_ascii=False)
    extra = json.dumps({"saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    objects = ",\n".join(json.dumps(object_to_json(o), ensure_ascii=False, default=_json_default) for o in doc.objects)
    text = (
        header[:-1] + ",\n" + extra[1:-1] + ",\n" + '"objects": [' + ("\n" + objects + "\n" if objects else "") + "]}\n"
    )
    return text.encode("utf-8")


def _json_default(value: Any) -> Any:
    """Prompts may carry NumPy numbers or arrays; anything else unknown is kept as text."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def save_document(doc: ImageDocument, path: str | os.PathLike[str]) -> Path:
    """Write atomically; raises :class:`~desktop_app.core.annotation.atomic.SaveError` on failure,
    leaving any previous file untouched."""
    return write_bytes_atomic(path, document_to_bytes(doc))


# -- reading ---------------------------------------------------------------------------------
def _check_format(data: Any, source: str) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise DamagedDocumentError(f"{source} is not a LangSAM Studio annotation file")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DamagedDocumentError(f"{source} has no valid format version")
    if version > FORMAT_VERSION:
        raise FutureVersionError(
            f"{source} was saved by a newer LangSAM Studio (annotation format version {version}); "
            f"this version reads up to version {FORMAT_VERSION}. Update LangSAM Studio to open it; "
            f"the file has not been changed."
        )


def _status(value: Any, source: str) -> ImageStatus:
    if not isinstance(value, str):
        raise DamagedDocumentError(f"{source} has an invalid status (not a text)")
    try:
        return ImageStatus(value)
    except ValueError:
        raise DamagedDocumentError(f"{source} has an unknown status {_short(value)}") from None


def _short(value: Any) -> str:
    """A bounded ``repr`` for messages (never recurses into a huge or deep value)."""
    if isinstance(value, (dict, list)):
        return "a list" if isinstance(value, list) else "a JSON object"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        return "a huge number"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _NonFiniteNumber(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFiniteNumber(name)


def parse_document_json(raw: bytes, *, source: str) -> Any:
    """``json.loads`` made safe for files from disk: bounded size and nesting, no NaN/Infinity;
    every problem is a :class:`DamagedDocumentError` naming ``source``."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DamagedDocumentError(
            f"{source} is {len(raw) / 2**20:.0f} MB, larger than any annotation file "
            f"({MAX_DOCUMENT_BYTES // 2**20} MB at most); it was not read"
        )
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise DamagedDocumentError(f"{source} is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise DamagedDocumentError(
            f"{source} is damaged: invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})"
        ) from None
    except _NonFiniteNumber as exc:
        raise DamagedDocumentError(
            f"{source} is damaged: it contains the number {exc}, which JSON does not allow"
        ) from None
    except RecursionError:
        raise DamagedDocumentError(f"{source} is damaged: its JSON is nested too deeply") from None
    except (ValueError, OverflowError, MemoryError) as exc:  # e.g. an integer of 5,000 digits
        raise DamagedDocumentError(f"{source} is damaged: {str(exc)[:120]}") from None
    _check_nesting(data, source)
    return data


def _check_nesting(data: Any, source: str) -> None:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            raise DamagedDocumentError(f"{source} is damaged: its JSON is nested more than {MAX_NESTING} levels deep")
        children = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in children if isinstance(v, (dict, list)))


def read_document_bytes(path: str | os.PathLike[str]) -> tuple[bytes, os.stat_result]:
    """The file's bytes and the ``fstat`` of what was read (for change detection).

    Raises ``FileNotFoundError`` when absent, :class:`DocumentFileError` when unreadable and
    :class:`DamagedDocumentError` when larger than :data:`MAX_DOCUMENT_BYTES` (then not read).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            if st.st_size > MAX_DOCUMENT_BYTES:
                raise DamagedDocumentError(
                    f"'{path}' is {st.st_size / 2**20:.0f} MB, larger than any annotation file "
                    f"({MAX_DOCUMENT_BYTES // 2**20} MB at most); it was not read"
                )
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise
    except IsADirectoryError as exc:
        raise DamagedDocumentError(f"'{path}' is a folder, not an annotation file") from exc
    except OSError as exc:
        raise DocumentFileError(f"cannot read '{path}': {exc.strerror or exc}") from exc
    return raw, st


def _read_json(path: Path) -> Any:
    raw, _ = read_document_bytes(path)
    return parse_document_json(raw, source=f"'{path}'")


def document_from_bytes(
    raw: bytes, *, source: str, image_name: str | None = None, expected_size: tuple[int, int] | None = None
) -> ImageDocument:
    """Parse and validate a document file's bytes; see :func:`document_from_json`."""
    return document_from_json(
        parse_document_json(raw, source=source), source=source, image_name=image_name, expected_size=expected_size
    )


def document_from_json(
    data: Any,
    *,
    source: str = "the annotation file",
    image_name: str | None = None,
    expected_size: tuple[int, int] | None = None,
) -> ImageDocument:
    """Validate everything, then decode the masks.

    ``expected_size`` = (width, height) of the image the document belongs to, when known: a
    document for another size is refused before any mask is decoded. Every problem raises
    :class:`DamagedDocumentError` (or :class:`FutureVersionError`); nothing else escapes.
    """
    try:
        return _document_from_json(data, source=source, image_name=image_name, expected_size=expected_size)
    except DocumentFileError:
        raise
    except RecursionError:
        raise DamagedDocumentError(f"{source} is damaged: its JSON is nested too deeply") from None
    except (ValueError, TypeError, OverflowError, KeyError, IndexError, AttributeError, MemoryError) as exc:
        # the checks below should leave nothing for here; a last net so no other type escapes
        raise DamagedDocumentError(f"{source} is damaged ({type(exc).__name__}: {str(exc)[:120]})") from None


def _document_from_json(
    data: Any, *, source: str, image_name: str | None, expected_size: tuple[int, int] | None
) -> ImageDocument:
    _check_nesting(data, source)
    _check_format(data, source)
    image = data.get("image")
    if not isinstance(image, dict):
        raise DamagedDocumentError(f"{source} has no 'image' entry")
    width: Any = image.get("width")  # checked just below
    height: Any = image.get("height")
    if not all(_is_int(v) and 0 < v <= MAX_MASK_PIXELS for v in (width, height)):
        raise DamagedDocumentError(f"{source} has an invalid image size {_short(width)}x{_short(height)}")
    name = image_name if image_name is not None else image.get("name")
    if not isinstance(name, str) or not name:
        raise DamagedDocumentError(f"{source} has no image name")
    if expected_size is not None and (int(expected_size[0]), int(expected_size[1])) != (width, height):
        raise ImageSizeMismatchError(
            f"the annotations in {source} were made for a {width}x{height} image but '{name}' is "
            f"now {int(expected_size[0])}x{int(expected_size[1])}"
        )
    if width * height > MAX_MASK_PIXELS:
        raise DamagedDocumentError(
            f"{source} declares an image of {width}x{height} pixels, more than LangSAM Studio can "
            f"hold ({MAX_MASK_PIXELS:,} pixels at most)"
        )
    status = _status(data.get("status", "in_progress"), source)
    objects_json = data.get("objects", [])
    if not isinstance(objects_json, list):
        raise DamagedDocumentError(f"{source}: 'objects' must be a list")
    if len(objects_json) > MAX_OBJECTS:
        raise DamagedDocumentError(
            f"{source} has {len(objects_json):,} objects, more than {MAX_OBJECTS:,}; it was not read"
        )
    # every object is checked before the first mask is decoded
    for i, entry in enumerate(objects_json):
        _check_object(entry, where=f"{source}, object {i + 1}", width=width, height=height)
    objects = [
        _object_from_json(o, source=source, index=i, width=width, height=height) for i, o in enumerate(objects_json)
    ]
    doc = ImageDocument(image_name=name, width=width, height=height, status=status)
    doc.extend(objects)
    return doc


def _check_object(entry: Any, *, where: str, width: int, height: int) -> None:
    """Types and ranges of one object, and its RLE's size and counts type, without decoding."""
    if not isinstance(entry, dict):
        raise DamagedDocumentError(f"{where} is not an object")
    label = entry.get("label")
    if not isinstance(label, str) or not label:
        raise DamagedDocumentError(f"{where} has no label")
    for key in ("id", "source"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise DamagedDocumentError(f"{where}: '{key}' must be a text, not {_short(entry[key])}")
    for key in ("hidden", "needs_review"):
        if entry.get(key) is not None and not isinstance(entry[key], bool):
            raise DamagedDocumentError(f"{where}: '{key}' must be true or false, not {_short(entry[key])}")
    kind = entry.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise DamagedDocumentError(f"{where}: 'kind' must be a text, not {_short(kind)}")
    if kind is not None and kind not in OBJECT_KINDS:
        raise DamagedDocumentError(
            f"{where} has an unknown kind {_short(kind)} (one of {', '.join(OBJECT_KINDS)} is required)"
        )
    if entry.get("prompt") is not None and not isinstance(entry["prompt"], dict):
        raise DamagedDocumentError(f"{where}: 'prompt' must be a JSON object")
    score = entry.get("score")
    valid_score = (
        score is None or (_is_int(score) and abs(score) < 2**53) or (isinstance(score, float) and math.isfinite(score))
    )
    if not valid_score:
        raise DamagedDocumentError(f"{where} has an invalid score {_short(score)} (a finite number is required)")
    rle = entry.get("mask")
    if not isinstance(rle, dict):
        raise DamagedDocumentError(f"{where}: its mask is missing or is not an RLE object")
    size, counts = rle.get("size"), rle.get("counts")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(_is_int(v) for v in size)
        or (size[0], size[1]) != (height, width)
    ):
        shown = (
            f"{size[1]}x{size[0]}"
            if isinstance(size, list) and len(size) == 2 and all(_is_int(v) and abs(v) < 10**12 for v in size)
            else _short(size)
        )
        raise DamagedDocumentError(f"{where}: its mask is {shown} but the image is {width}x{height}")
    pixels = width * height
    if isinstance(counts, list):
        if len(counts) > pixels + 1 or not all(_is_int(c) and 0 <= c <= pixels for c in counts):
            raise DamagedDocumentError(f"{where}: its mask's run lengths are invalid")
        if sum(counts) != pixels:
            raise DamagedDocumentError(
                f"{where}: its mask's run lengths do not cover the {width}x{height} image exactly"
            )
    elif isinstance(counts, str):
        if not counts.isascii() or len(counts) > 12 * (pixels + 1):
            raise DamagedDocumentError(f"{where}: its mask's counts are not a valid RLE string")
        # every run length (in range, summing to width*height) is checked by inference.masks
        # before pycocotools decodes: see rle_to_mask in _object_from_json
    else:
        raise DamagedDocumentError(f"{where}: its mask's counts must be a string or a list, not {_short(counts)}")


def _object_from_json(entry: Any, *, source: str, index: int, width: int, height: int) -> AnnotationObject:
    where = f"{source}, object {index + 1}"
    _check_object(entry, where=where, width=width, height=height)  # before any decoding
    label: str = entry["label"]
    try:
        mask = rle_to_mask(entry["mask"])  # validates every run length before pycocotools
    except ValueError as exc:
        raise DamagedDocumentError(f"{where}: {exc}") from None
    if mask.shape != (height, width):
        raise DamagedDocumentError(
            f"{where}: its mask is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height}"
        )
    score = entry.get("score")
    prompt = entry.get("prompt")
    kwargs: dict[str, Any] = {}
    if isinstance(entry.get("id"), str) and entry["id"]:
        kwargs["id"] = entry["id"]
    return AnnotationObject(
        label=label,
        mask=mask,
        score=None if score is None else float(score),
        source=str(entry.get("source") or "manual"),
        prompt=prompt if isinstance(prompt, dict) else None,
        hidden=bool(entry.get("hidden", False)),
        needs_review=bool(entry.get("needs_review", False)),
        kind=entry.get("kind") or "mask",
        **kwargs,
    )


def load_document(
    path: str | os.PathLike[str], *, image_name: str | None = None, expected_size: tuple[int, int] | None = None
) -> ImageDocument:
    """Read and validate a document. Raises ``FileNotFoundError`` when absent,
    :class:`DamagedDocumentError` when its content is unusable (or made for an image of another
    ``expected_size`` = (width, height)), :class:`FutureVersionError` for a newer format, and
    :class:`DocumentFileError` when it cannot be read (permissions)."""
    path = Path(path)
    raw, _ = read_document_bytes(path)
    return document_from_bytes(raw, source=f"'{path}'", image_name=image_name, expected_size=expected_size)


def read_summary(path: str | os.PathLike[str], *, image_name: str) -> ImageSummary:
    """Status and object count from the header line only; a missing file is a NEW image.

    Never raises for a damaged file: the summary then carries ``error``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            first = handle.readline(_HEADER_LIMIT)
    except FileNotFoundError:
        return ImageSummary(image_name=image_name, status=ImageStatus.NEW, object_count=0)
    except OSError as exc:
        return ImageSummary(
            image_name=image_name,
            status=ImageStatus.IN_PROGRESS,
            object_count=0,
            error=f"cannot read '{path}': {exc.strerror or exc}",
        )
    header: Any = None
    if first.rstrip(b"\r\n").endswith(b","):
        try:
            header = json.loads(first.rstrip(b"\r\n")[:-1].decode("utf-8") + "}")
        except (ValueError, RecursionError):  # not UTF-8, not JSON, too deep, 5,000-digit ints
            header = None
    if not (isinstance(header, dict) and isinstance(header.get("object_count"), int) and "status" in header):
        try:  # reformatted by hand or another tool: read it all
            header = _read_json(path)
            if isinstance(header, dict) and isinstance(header.get("objects"), list):
                header.setdefault("object_count", len(header["objects"]))
                header.setdefault(
                    "labels",
                    sorted(
                        {
                            o["label"]
                            for o in header["objects"]
                            if isinstance(o, dict) and isinstance(o.get("label"), str)
                        }
                    ),
                )
        except (DocumentFileError, FileNotFoundError) as exc:
            return ImageSummary(image_name=image_name, status=ImageStatus.IN_PROGRESS, object_count=0, error=str(exc))
    try:
        _check_format(header, f"'{path}'")
        status = _status(header.get("status", "in_progress"), f"'{path}'")
    except DocumentFileError as exc:
        return ImageSummary(image_name=image_name, status=ImageStatus.IN_PROGRESS, object_count=0, error=str(exc))
    count = header.get("object_count", 0)
    if not _is_int(count) or not 0 <= count <= MAX_OBJECTS:
        return ImageSummary(
            image_name=image_name,
            status=ImageStatus.IN_PROGRESS,
            object_count=0,
            error=f"'{path}' is damaged: invalid object count {_short(count)}",
        )
    labels = header.get("labels") if isinstance(header.get("labels"), list) else []
    return ImageSummary(
        image_name=image_name,
        status=status,
        object_count=count,
        labels=tuple(x for x in labels if isinstance(x, str) and x),
    )
