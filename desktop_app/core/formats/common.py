"""What every exporter and importer shares: class lists, output names, results, errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument
from desktop_app.core.annotation.labels import LabelSet
from desktop_app.core.annotation.storage import MAX_MASK_PIXELS
from desktop_app.core.object_ops import is_rectangle
from inference.errors import StudioError

Labels = LabelSet | Sequence[str] | None
Progress = Callable[[int], None]  # called with the number of images done so far


class FormatError(StudioError, ValueError):
    """An export or import cannot proceed; ``str(err)`` says why, for a person."""


ImageSizes = Mapping[str, tuple[int, int]]  # image file name -> (width, height) of the real image


def load_json_file(path: Path, *, what: str) -> Any:
    """A JSON file from another tool: NaN/Infinity refused, deep nesting caught; every problem
    is a :class:`FormatError` naming the file."""

    def reject(name: str) -> Any:
        raise ValueError(f"it contains {name}, which JSON does not allow")

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"'{path}' does not exist") from None
    except OSError as exc:
        raise FormatError(f"cannot read '{path}': {exc.strerror or exc}") from None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=reject)
    except UnicodeDecodeError:
        raise FormatError(f"'{path}' is not a {what}: it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"'{path}' is not a {what}: invalid JSON at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise FormatError(f"'{path}' is not a {what}: its JSON is nested too deeply") from None
    except (ValueError, OverflowError, MemoryError) as exc:
        raise FormatError(f"'{path}' is not a {what}: {str(exc)[:120]}") from None


def check_declared_size(
    image_name: str, width: Any, height: Any, image_sizes: ImageSizes | None
) -> tuple[str, int, int]:
    """Validate an image size a file declares before any mask of that size is made: positive
    ints, at most ``MAX_MASK_PIXELS`` pixels (the document format's rule), and, given the real
    images' sizes, equal to that image's size. Returns (image name in the folder, w, h);
    raises ``ValueError`` with the reason."""
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise ValueError(f"the image size {width!r}x{height!r} is not two positive integers")
    if width * height > MAX_MASK_PIXELS:
        raise ValueError(f"the image size {width}x{height} is larger than LangSAM Studio can hold")
    if image_sizes is None:
        return image_name, width, height
    name = image_name if image_name in image_sizes else PurePosixPath(image_name.replace("\\", "/")).name
    real = image_sizes.get(name)
    if real is None:
        raise ValueError(f"'{image_name}' is not an image of the folder")
    if tuple(real) != (width, height):
        raise ValueError(f"it was made for a {width}x{height} image but '{name}' is {real[0]}x{real[1]}")
    return name, width, height


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


def rectangle_box(obj: AnnotationObject) -> tuple[int, int, int, int] | None:
    """The xyxy box (x1, y1 exclusive) an object is exported as when it is a rectangle: kind
    "rectangle" and its mask exactly fills that box (the mask is the truth: a rectangle someone
    brushed over exports as a mask). ``None`` otherwise; exporters then write the mask's outline."""
    if obj.kind != "rectangle" or not is_rectangle(obj.mask):
        return None
    return obj.bbox


def rectangle_ring(box: tuple[int, int, int, int]) -> np.ndarray:
    """The 4 pixel-corner vertices of an xyxy box, in the order ``mask_to_polygons`` traces them."""
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x0, y1], [x1, y1], [x1, y0]], dtype=np.float64)


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


# -- train/val/test split ---------------------------------------------------------------------
SPLIT_NAMES = ("train", "val", "test")
Split = dict[str, float]  # {"train": 0.8, "val": 0.2} (fractions, normalised to sum 1)
SplitSpec = str | Sequence[float] | dict[str, float] | None  # what exporters accept (parse_split)


def parse_split(value: SplitSpec) -> Split | None:
    """``"80/20"``, ``"0.7,0.2,0.1"``, ``(8, 2)`` or ``{"train": .8, "val": .2}`` -> fractions of
    train/val(/test) summing to 1; ``None``/``""`` -> no split. Raises :class:`FormatError`."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, dict):
        unknown = set(value) - set(SPLIT_NAMES)
        if unknown:
            raise FormatError(f"split parts must be {', '.join(SPLIT_NAMES)}, got {', '.join(sorted(unknown))}")
        parts = [float(value.get(n, 0.0)) for n in SPLIT_NAMES]
    else:
        if isinstance(value, str):
            try:
                parts = [float(p) for p in re.split(r"[/,:\s]+", value.strip()) if p]
            except ValueError:
                raise FormatError(f"a split is like 80/20 or 70/20/10 (train/val/test), got '{value}'") from None
        else:
            parts = [float(p) for p in value]
    if not 2 <= len(parts) <= 3 or any(not (p >= 0) or p == float("inf") for p in parts) or sum(parts) <= 0:
        raise FormatError(f"a split is 2 or 3 non-negative parts (train/val/test) like 80/20, got {value!r}")
    total = sum(parts)
    if parts[0] <= 0:
        raise FormatError("a split needs a train part above 0")
    return {name: p / total for name, p in zip(SPLIT_NAMES, parts) if p > 0 or name != "test"}


def split_of(image_name: str, split: Split, *, seed: int = 0) -> str:
    """Which part an image goes to: a hash of the seed and the image name, so the same image
    lands in the same part whatever else is in the folder and on every run and machine
    (fractions are met on average, not exactly, for a handful of images)."""
    digest = hashlib.sha256(f"{int(seed)}\0{image_name}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    acc = 0.0
    names = [n for n in SPLIT_NAMES if n in split]
    for name in names:
        acc += split[name]
        if u < acc:
            return name
    return names[-1]
