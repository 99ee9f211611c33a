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
from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus
from inference.masks import mask_to_rle, rle_to_mask

FORMAT_NAME = "langsam-studio"
FORMAT_VERSION = 1
_HEADER_LIMIT = 256 * 1024  # the first line is far smaller; more means someone reformatted it


class DocumentFileError(ValueError):
    """An annotation file cannot be read; ``str(err)`` names the file and the problem."""


class FutureVersionError(DocumentFileError):
    """The file was written by a newer LangSAM Studio with a format this version cannot read."""


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
        "bbox": None if bbox is None else list(bbox),  # xyxy, for readers that skip the mask
        "area": obj.area,
        "mask": mask_to_rle(obj.mask),
    }


def document_to_bytes(doc: ImageDocument) -> bytes:
    header = json.dumps(_header(doc), ensure_ascii=False)
    extra = json.dumps({"saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    objects = ",\n".join(json.dumps(object_to_json(o), ensure_ascii=False, default=_json_default)
                         for o in doc.objects)
    text = (header[:-1] + ",\n" + extra[1:-1] + ",\n"
            + '"objects": [' + ("\n" + objects + "\n" if objects else "") + "]}\n")
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


def save_document(doc: ImageDocument, path: str | os.PathLike) -> Path:
    """Write atomically; raises :class:`~desktop_app.core.annotation.atomic.SaveError` on failure,
    leaving any previous file untouched."""
    return write_bytes_atomic(path, document_to_bytes(doc))


# -- reading ---------------------------------------------------------------------------------
def _check_format(data: Any, source: str) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise DocumentFileError(f"{source} is not a LangSAM Studio annotation file")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DocumentFileError(f"{source} has no valid format version")
    if version > FORMAT_VERSION:
        raise FutureVersionError(
            f"{source} was saved by a newer LangSAM Studio (annotation format version {version}); "
            f"this version reads up to version {FORMAT_VERSION}. Update LangSAM Studio to open it; "
            f"the file has not been changed.")


def _status(value: Any, source: str) -> ImageStatus:
    try:
        return ImageStatus(value)
    except ValueError:
        raise DocumentFileError(f"{source} has an unknown status {value!r}") from None


def _read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DocumentFileError(f"cannot read '{path}': {exc.strerror or exc}") from exc
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DocumentFileError(f"'{path}' is not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise DocumentFileError(
            f"'{path}' is damaged: invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})") from exc


def document_from_json(data: Any, *, source: str = "the annotation file",
                       image_name: str | None = None) -> ImageDocument:
    _check_format(data, source)
    image = data.get("image")
    if not isinstance(image, dict):
        raise DocumentFileError(f"{source} has no 'image' entry")
    width, height = image.get("width"), image.get("height")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise DocumentFileError(f"{source} has an invalid image size {width!r}x{height!r}")
    objects_json = data.get("objects", [])
    if not isinstance(objects_json, list):
        raise DocumentFileError(f"{source}: 'objects' must be a list")
    objects = [_object_from_json(o, source=source, index=i, width=width, height=height)
               for i, o in enumerate(objects_json)]
    name = image_name if image_name is not None else image.get("name")
    if not isinstance(name, str) or not name:
        raise DocumentFileError(f"{source} has no image name")
    doc = ImageDocument(image_name=name, width=width, height=height,
                        status=_status(data.get("status", "in_progress"), source))
    doc.extend(objects)
    return doc


def _object_from_json(entry: Any, *, source: str, index: int, width: int, height: int
                      ) -> AnnotationObject:
    where = f"{source}, object {index + 1}"
    if not isinstance(entry, dict):
        raise DocumentFileError(f"{where} is not an object")
    label = entry.get("label")
    if not isinstance(label, str) or not label:
        raise DocumentFileError(f"{where} has no label")
    rle = entry.get("mask")
    try:
        mask = rle_to_mask(rle)
    except ValueError as exc:
        raise DocumentFileError(f"{where}: {exc}") from None
    if mask.shape != (height, width):
        raise DocumentFileError(f"{where}: its mask is {mask.shape[1]}x{mask.shape[0]} but the image "
                                f"is {width}x{height}")
    score = entry.get("score")
    if score is not None and not isinstance(score, (int, float)):
        raise DocumentFileError(f"{where} has a non-numeric score")
    prompt = entry.get("prompt")
    kwargs: dict[str, Any] = {}
    if isinstance(entry.get("id"), str) and entry["id"]:
        kwargs["id"] = entry["id"]
    return AnnotationObject(
        label=label, mask=mask, score=None if score is None else float(score),
        source=str(entry.get("source", "manual")), prompt=prompt if isinstance(prompt, dict) else None,
        hidden=bool(entry.get("hidden", False)), needs_review=bool(entry.get("needs_review", False)),
        **kwargs)


def load_document(path: str | os.PathLike, *, image_name: str | None = None) -> ImageDocument:
    """Read a document. Raises ``FileNotFoundError`` when absent, :class:`DocumentFileError`
    (or :class:`FutureVersionError`) when unreadable."""
    path = Path(path)
    return document_from_json(_read_json(path), source=f"'{path}'", image_name=image_name)


def read_summary(path: str | os.PathLike, *, image_name: str) -> ImageSummary:
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
        return ImageSummary(image_name=image_name, status=ImageStatus.IN_PROGRESS, object_count=0,
                            error=f"cannot read '{path}': {exc.strerror or exc}")
    header: Any = None
    if first.rstrip(b"\r\n").endswith(b","):
        try:
            header = json.loads(first.rstrip(b"\r\n")[:-1].decode("utf-8") + "}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            header = None
    if not (isinstance(header, dict) and isinstance(header.get("object_count"), int)
            and "status" in header):
        try:  # reformatted by hand or another tool: read it all
            header = _read_json(path)
            if isinstance(header, dict) and isinstance(header.get("objects"), list):
                header.setdefault("object_count", len(header["objects"]))
                header.setdefault("labels", sorted({o.get("label", "") for o in header["objects"]
                                                    if isinstance(o, dict)}))
        except (DocumentFileError, FileNotFoundError) as exc:
            return ImageSummary(image_name=image_name, status=ImageStatus.IN_PROGRESS,
                                object_count=0, error=str(exc))
    try:
        _check_format(header, f"'{path}'")
        status = _status(header.get("status", "in_progress"), f"'{path}'")
    except DocumentFileError as exc:
        return ImageSummary(image_name=image_name, status=ImageStatus.IN_PROGRESS, object_count=0,
                            error=str(exc))
    labels = header.get("labels") if isinstance(header.get("labels"), list) else []
    return ImageSummary(image_name=image_name, status=status,
                        object_count=int(header.get("object_count", 0)),
                        labels=tuple(str(x) for x in labels))
