"""PNG masks: one binary PNG per object and one semantic label PNG per image.

- ``masks/<stem>/<NNN>_<class id>_<label>.png``: 8-bit, 0 = outside, 255 = inside, full image
  size; ``NNN`` is the object's order in the document (drawing order).
- ``semantic/<stem>.png``: palette mode, pixel value = class id (label index + 1), 0 =
  background; later objects cover earlier ones; the palette holds the label colours.
- ``classes.txt``: line *i* names class *i* (line 0 is ``_background_``).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from desktop_app.core.annotation.atomic import write_bytes_atomic, write_text_atomic
from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus
from desktop_app.core.annotation.labels import LabelSet
from desktop_app.core.annotation.project import is_image_file
from desktop_app.core.formats.common import (
    FormatError,
    ImportResult,
    Labels,
    Progress,
    StemAllocator,
    exportable_objects,
    iterate,
    prepare_out_dir,
    safe_filename_part,
    working_labels,
)

BACKGROUND = "_background_"
MAX_CLASSES = 255
_OBJECT_FILE = re.compile(r"^(\d+)_(\d+)_.*\.png$")


def _png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _palette(label_set: LabelSet) -> list[int]:
    colours = [(0, 0, 0)] + [label.rgb for label in label_set]
    colours += [(0, 0, 0)] * (256 - len(colours))
    return [c for rgb in colours for c in rgb]


def semantic_map(objects: Iterable[AnnotationObject], *, label_set: LabelSet, width: int, height: int) -> np.ndarray:
    classes = np.zeros((height, width), dtype=np.uint8)
    for obj in objects:
        classes[obj.mask] = label_set.index_of(obj.label) + 1
    return classes


def export_png(
    documents: Iterable[ImageDocument],
    *,
    images_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    labels: Labels = None,
    per_object: bool = True,
    semantic: bool = True,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the PNGs and ``classes.txt``; returns every written path."""
    del images_dir  # masks are standalone; image names only give the output names
    out = prepare_out_dir(out_dir)
    label_set = working_labels(labels)
    stems = StemAllocator()
    written: list[Path] = []
    semantic_files: list[tuple[Path, int]] = []  # path, number of labels its palette has
    for doc in iterate(documents, progress):
        stem = stems.stem(doc.image_name)
        objects = exportable_objects(doc)
        for obj in objects:
            label_set.add(obj.label)
        if len(label_set) > MAX_CLASSES:
            raise FormatError(
                f"a palette PNG holds at most {MAX_CLASSES} classes, this export has "
                f"{len(label_set)}; export COCO or per-object masks instead"
            )
        if per_object:
            for n, obj in enumerate(objects, start=1):
                cls = label_set.index_of(obj.label) + 1
                name = f"{n:03d}_{cls}_{safe_filename_part(obj.label)}.png"
                img = Image.fromarray(obj.mask.astype(np.uint8) * 255, mode="L")
                written.append(write_bytes_atomic(out / "masks" / stem / name, _png_bytes(img)))
        if semantic:
            classes = semantic_map(objects, label_set=label_set, width=doc.width, height=doc.height)
            path = out / "semantic" / f"{stem}.png"
            written.append(_write_semantic(path, classes, label_set))
            semantic_files.append((path, len(label_set)))
    for path, known in semantic_files:
        if known < len(label_set):
            # labels met after this image was written: give its palette their colours too
            with Image.open(path) as img:
                classes = np.asarray(img)
            _write_semantic(path, classes, label_set)
    written.append(write_text_atomic(out / "classes.txt", "".join(f"{n}\n" for n in [BACKGROUND, *label_set.names])))
    return written


def _write_semantic(path: Path, classes: np.ndarray, label_set: LabelSet) -> Path:
    height, width = classes.shape
    img = Image.frombytes("P", (width, height), np.ascontiguousarray(classes, dtype=np.uint8).tobytes())
    img.putpalette(_palette(label_set))
    return write_bytes_atomic(path, _png_bytes(img))


# -- import -----------------------------------------------------------------------------------
def _read_classes(root: Path) -> list[str]:
    file = root / "classes.txt"
    if not file.is_file():
        raise FormatError(f"'{root}' has no classes.txt: the class names are unknown")
    try:
        names = [line.rstrip("\n") for line in file.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read '{file}': {exc}") from None
    return names[1:] if names and names[0] == BACKGROUND else names


def import_png(
    export_dir: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    status: ImageStatus = ImageStatus.IN_PROGRESS,
) -> ImportResult:
    """Read per-object masks (``masks/<stem>/``), or semantic PNGs when there are none (one
    object per class). ``images_dir`` maps stems back to image file names."""
    root = Path(export_dir)
    if not root.is_dir():
        raise FormatError(
            f"'{root}' is not a folder (a PNG export is a folder with masks/ or semantic/ and classes.txt)"
        )
    names = _read_classes(root)
    labels = LabelSet(names)
    by_stem: dict[str, str] = {}
    if images_dir is not None:
        for p in Path(images_dir).iterdir():
            if is_image_file(p.name):
                by_stem.setdefault(p.stem, p.name)
    warnings: list[str] = []
    documents: list[ImageDocument] = []
    masks_root, semantic_root = root / "masks", root / "semantic"
    stems = sorted({p.stem for p in semantic_root.glob("*.png")} if semantic_root.is_dir() else set())
    if masks_root.is_dir():
        stems = sorted(set(stems) | {p.name for p in masks_root.iterdir() if p.is_dir()})
    for stem in stems:
        image_name = by_stem.get(stem, f"{stem}.png")
        object_files = sorted((masks_root / stem).glob("*.png")) if (masks_root / stem).is_dir() else []
        doc: ImageDocument | None = None
        if object_files:
            for file in object_files:
                match = _OBJECT_FILE.match(file.name)
                if match is None or not 1 <= int(match.group(2)) <= len(names):
                    warnings.append(f"skipped '{file}': its name does not give a known class")
                    continue
                try:
                    with Image.open(file) as img:
                        mask = np.asarray(img.convert("L")) > 127
                except (OSError, ValueError, Image.DecompressionBombError) as exc:
                    warnings.append(f"skipped '{file}': not a PNG mask Pillow can read ({exc})")
                    continue
                if doc is None:
                    doc = ImageDocument(image_name=image_name, width=mask.shape[1], height=mask.shape[0], status=status)
                if mask.shape != (doc.height, doc.width):
                    warnings.append(f"skipped '{file}': its size differs from the other masks")
                    continue
                if mask.any():
                    doc.add(AnnotationObject(label=names[int(match.group(2)) - 1], mask=mask, source="import"))
        elif (semantic_root / f"{stem}.png").is_file():
            try:
                with Image.open(semantic_root / f"{stem}.png") as img:
                    classes = np.asarray(img if img.mode == "P" else img.convert("L"))
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                warnings.append(f"skipped '{semantic_root / f'{stem}.png'}': not a PNG Pillow can read ({exc})")
                continue
            if classes.ndim != 2:
                warnings.append(f"skipped '{semantic_root / f'{stem}.png'}': not a single-channel class map")
                continue
            doc = ImageDocument(image_name=image_name, width=classes.shape[1], height=classes.shape[0], status=status)
            for value in sorted(set(np.unique(classes).tolist()) - {0}):
                if value > len(names):
                    warnings.append(f"'{stem}.png': value {value} is not a known class")
                    continue
                doc.add(AnnotationObject(label=names[value - 1], mask=classes == value, source="import"))
        if doc is not None:
            documents.append(doc)
    return ImportResult(documents=tuple(documents), labels=labels, warnings=tuple(warnings))
