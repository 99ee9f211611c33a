"""YOLO segmentation (Ultralytics): ``labels/<stem>.txt`` with one object per line,
``<class index> x1 y1 x2 y2 ...`` normalised to 0-1, plus ``classes.txt`` and ``data.yaml``.

One line holds one polygon, so an object's pieces and holes are joined by zero-width bridges
(as Ultralytics' own mask converter does); rasterised with the even-odd rule they give back
the mask. Images are hard-linked (copied across file systems) into ``images/`` so that the
``images/`` <-> ``labels/`` layout Ultralytics expects is complete.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from desktop_app.core.annotation.atomic import write_text_atomic
from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus
from desktop_app.core.annotation.labels import LabelSet
from desktop_app.core.annotation.project import image_size, is_image_file, natural_sorted
from desktop_app.core.formats.common import (
    FormatError,
    ImportResult,
    Labels,
    Progress,
    SplitSpec,
    StemAllocator,
    exportable_objects,
    image_relpath,
    iterate,
    parse_split,
    prepare_out_dir,
    rectangle_box,
    rectangle_ring,
    split_of,
    working_labels,
)
from desktop_app.core.object_ops import is_rectangle
from inference.errors import StudioError
from inference.masks import DEFAULT_POLYGON_TOLERANCE, join_rings, mask_bbox, mask_to_simple_polygons, polygons_to_mask

DECIMALS = 6


def object_line(
    obj: AnnotationObject,
    *,
    class_index: int,
    width: int,
    height: int,
    tolerance: float = DEFAULT_POLYGON_TOLERANCE,
    boxes_only: bool = False,
) -> str | None:
    """``<class> x1 y1 x2 y2 ...`` (segmentation), or ``<class> cx cy w h`` with ``boxes_only``
    (detection); normalised to 0-1. ``None`` for an empty mask. A rectangle object
    (:func:`~desktop_app.core.formats.common.rectangle_box`) is its 4 corners, not simplified."""
    if boxes_only:
        box = mask_bbox(obj.mask)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        values = [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height]
        return f"{class_index} " + " ".join(_number(v) for v in values)
    box = rectangle_box(obj)
    if box is not None:
        ring: np.ndarray | None = rectangle_ring(box)
    else:
        ring = join_rings(mask_to_simple_polygons(obj.mask, tolerance=tolerance))
    if ring is None:
        return None
    norm = ring / np.array([width, height], dtype=np.float64)
    return f"{class_index} " + " ".join(_number(v) for v in norm.ravel())


def _number(v: float) -> str:
    return f"{v:.{DECIMALS}f}".rstrip("0").rstrip(".") if v else "0"


def _place_image(source: Path, target: Path) -> None:
    if target.exists():
        if target.samefile(source):
            return
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _yaml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def export_yolo(
    documents: Iterable[ImageDocument],
    *,
    images_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    labels: Labels = None,
    copy_images: bool = True,
    polygon_tolerance: float = DEFAULT_POLYGON_TOLERANCE,
    boxes_only: bool = False,
    split: SplitSpec = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the dataset; returns the label files, ``classes.txt`` and ``data.yaml``.

    ``boxes_only``: detection labels (``class cx cy w h``) instead of polygons. ``split`` (e.g.
    ``"80/20"``): ``images/train``, ``images/val`` (``/test``) and ``labels/<part>/``, with
    ``data.yaml`` pointing at them; an image's part depends only on its name and ``seed``.
    Without ``copy_images`` the parts are ``train.txt``/``val.txt`` lists of image paths.
    """
    parts = parse_split(split)
    out = prepare_out_dir(out_dir)
    images_root = Path(images_dir)
    label_set = working_labels(labels)
    stems = StemAllocator()
    written: list[Path] = []
    lists: dict[str, list[str]] = {p: [] for p in parts} if parts else {}
    for doc in iterate(documents, progress):
        rel = image_relpath(doc.image_name)
        stem = stems.stem(doc.image_name)
        part = split_of(doc.image_name, parts, seed=seed) if parts else ""
        sub = f"{part}/" if part else ""
        lines = []
        for obj in exportable_objects(doc):
            label_set.add(obj.label)
            line = object_line(
                obj,
                class_index=label_set.index_of(obj.label),
                width=doc.width,
                height=doc.height,
                tolerance=polygon_tolerance,
                boxes_only=boxes_only,
            )
            if line is not None:
                lines.append(line)
        written.append(write_text_atomic(out / "labels" / f"{sub}{stem}.txt", "".join(line + "\n" for line in lines)))
        source = images_root / rel
        if part:
            lists[part].append(os.fspath(source.resolve()))
        if copy_images:
            if not source.is_file():
                raise FormatError(f"cannot copy '{source}' into the dataset: the image is missing")
            try:
                _place_image(source, out / "images" / f"{sub}{stem}{rel.suffix}")
            except OSError as exc:
                raise FormatError(f"cannot copy '{source}' into the dataset: {exc.strerror or exc}") from exc
    written.append(write_text_atomic(out / "classes.txt", "".join(f"{n}\n" for n in label_set.names)))
    if parts and copy_images:
        roots = {p: f"images/{p}" for p in parts}
    elif parts:
        for p, paths in lists.items():
            written.append(write_text_atomic(out / f"{p}.txt", "".join(f"{x}\n" for x in paths)))
        roots = {p: f"{p}.txt" for p in parts}
    else:
        root = "images" if copy_images else os.fspath(images_root.resolve())
        roots = {"train": root, "val": root}
    yaml = [f"path: {_yaml_str(os.fspath(out.resolve()))}"]
    yaml += [f"{p}: {_yaml_str(r)}" for p, r in roots.items()]
    if boxes_only:
        yaml.append("task: detect")
    yaml.append("names:")
    yaml += [f"  {i}: {_yaml_str(name)}" for i, name in enumerate(label_set.names)]
    written.append(write_text_atomic(out / "data.yaml", "\n".join(yaml) + "\n"))
    return written


# -- import -----------------------------------------------------------------------------------
def _read_classes(root: Path) -> list[str]:
    classes = root / "classes.txt"
    try:
        if classes.is_file():
            return [line.strip() for line in classes.read_text(encoding="utf-8").splitlines() if line.strip()]
        data_yaml = root / "data.yaml"
        if data_yaml.is_file():
            import yaml  # PyYAML comes with huggingface_hub

            try:
                data = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise FormatError(f"'{data_yaml}' is not valid YAML ({str(exc).splitlines()[0]})") from None
            names = data.get("names", []) if isinstance(data, dict) else []
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names)]
            if not isinstance(names, list):
                raise FormatError(f"'{data_yaml}': 'names' must be a list or a mapping of class names")
            return [str(n) for n in names]
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read the class names in '{root}': {exc}") from None
    raise FormatError(f"'{root}' has neither classes.txt nor data.yaml: the class names are unknown")


def line_to_mask(line: str, *, width: int, height: int) -> np.ndarray:
    """One label line (polygon, or ``cx cy w h`` box) to a mask; raises ``ValueError``."""
    values = [float(v) for v in line.split()[1:]]
    if not all(np.isfinite(values)):
        raise ValueError("a coordinate is not a finite number")
    if len(values) == 4:
        cx, cy, w, h = values
        ring = np.array(
            [[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2], [cx + w / 2, cy + h / 2], [cx - w / 2, cy + h / 2]]
        )
    elif len(values) >= 6 and len(values) % 2 == 0:
        ring = np.asarray(values).reshape(-1, 2)
    else:
        raise ValueError(f"expected a box or a polygon, got {len(values)} numbers")
    return polygons_to_mask([ring * np.array([width, height])], height=height, width=width)


def _label_files(root: Path) -> dict[str, Path]:
    """Label files by stem: ``labels/*.txt`` and ``labels/<part>/*.txt`` (split datasets)."""
    labels_dir = root / "labels"
    found = sorted(labels_dir.rglob("*.txt")) if labels_dir.is_dir() else []
    files: dict[str, Path] = {}
    for path in found:
        files.setdefault(path.stem, path)
    return files


def import_yolo(
    dataset_dir: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    status: ImageStatus = ImageStatus.IN_PROGRESS,
) -> ImportResult:
    """Read ``labels/*.txt`` (or ``labels/<part>/*.txt``) with the images of ``images_dir``
    (default ``<dataset>/images``, its part folders included), whose sizes give the pixel
    coordinates. Images without a label file are left out; a bad line or image is a warning."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise FormatError(f"'{root}' is not a folder (a YOLO dataset is a folder with labels/ and classes.txt)")
    names = _read_classes(root)
    labels = LabelSet(names)
    img_root = Path(images_dir) if images_dir is not None else root / "images"
    if not img_root.is_dir():
        raise FormatError(f"'{img_root}' is not a folder of images")
    label_files = _label_files(root)
    if not label_files:
        raise FormatError(f"'{root / 'labels'}' holds no label files (.txt)")
    found = img_root.iterdir() if images_dir is not None else img_root.rglob("*")
    images = {p.relative_to(img_root).as_posix(): p for p in found if is_image_file(p.name) and p.is_file()}
    warnings: list[str] = []
    documents: list[ImageDocument] = []
    for name in natural_sorted(images):
        path = images[name]
        label_file = label_files.get(path.stem)
        if label_file is None:
            continue
        try:
            width, height = image_size(path)
            text = label_file.read_text(encoding="utf-8")
        except (StudioError, OSError, UnicodeDecodeError) as exc:
            warnings.append(f"skipped '{label_file}': {exc}")
            continue
        doc = ImageDocument(
            image_name=path.name if images_dir is None else name, width=width, height=height, status=status
        )
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                cls = int(line.split()[0])
                if not 0 <= cls < len(names):
                    raise IndexError(f"class {cls} is not in the {len(names)} class names")
                label = names[cls]
                mask = line_to_mask(line, width=width, height=height)
            except (ValueError, IndexError) as exc:
                warnings.append(f"'{label_file}' line {n}: skipped ({exc})")
                continue
            if mask_bbox(mask) is not None:
                box_line = len(line.split()) == 5  # class cx cy w h: a detection box
                kind = "rectangle" if box_line and is_rectangle(mask) else "mask"
                doc.add(AnnotationObject(label=label, mask=mask, source="import", kind=kind))
        documents.append(doc)
    return ImportResult(documents=tuple(documents), labels=labels, warnings=tuple(warnings))
