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
    StemAllocator,
    exportable_objects,
    image_relpath,
    iterate,
    prepare_out_dir,
    working_labels,
)
from inference.masks import join_rings, mask_bbox, mask_to_polygons, polygons_to_mask

DECIMALS = 6


def object_line(
    obj: AnnotationObject, *, class_index: int, width: int, height: int, epsilon: float = 0.0
) -> str | None:
    ring = join_rings(mask_to_polygons(obj.mask, epsilon=epsilon))
    if ring is None:
        return None
    norm = ring / np.array([width, height], dtype=np.float64)
    coords = " ".join(f"{v:.{DECIMALS}f}".rstrip("0").rstrip(".") if v else "0" for v in norm.ravel())
    return f"{class_index} {coords}"


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
    polygon_epsilon: float = 0.0,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the dataset; returns the label files, ``classes.txt`` and ``data.yaml``."""
    out = prepare_out_dir(out_dir)
    images_root = Path(images_dir)
    label_set = working_labels(labels)
    stems = StemAllocator()
    written: list[Path] = []
    for doc in iterate(documents, progress):
        rel = image_relpath(doc.image_name)
        stem = stems.stem(doc.image_name)
        lines = []
        for obj in exportable_objects(doc):
            label_set.add(obj.label)
            line = object_line(
                obj,
                class_index=label_set.index_of(obj.label),
                width=doc.width,
                height=doc.height,
                epsilon=polygon_epsilon,
            )
            if line is not None:
                lines.append(line)
        written.append(write_text_atomic(out / "labels" / f"{stem}.txt", "".join(line + "\n" for line in lines)))
        if copy_images:
            source = images_root / rel
            if not source.is_file():
                raise FormatError(f"cannot copy '{source}' into the dataset: the image is missing")
            try:
                _place_image(source, out / "images" / f"{stem}{rel.suffix}")
            except OSError as exc:
                raise FormatError(f"cannot copy '{source}' into the dataset: {exc.strerror or exc}") from exc
    written.append(write_text_atomic(out / "classes.txt", "".join(f"{n}\n" for n in label_set.names)))
    image_root = "images" if copy_images else os.fspath(images_root.resolve())
    yaml = [
        f"path: {_yaml_str(os.fspath(out.resolve()))}",
        f"train: {_yaml_str(image_root)}",
        f"val: {_yaml_str(image_root)}",
        "names:",
    ]
    yaml += [f"  {i}: {_yaml_str(name)}" for i, name in enumerate(label_set.names)]
    written.append(write_text_atomic(out / "data.yaml", "\n".join(yaml) + "\n"))
    return written


# -- import -----------------------------------------------------------------------------------
def _read_classes(root: Path) -> list[str]:
    classes = root / "classes.txt"
    if classes.is_file():
        return [line.strip() for line in classes.read_text(encoding="utf-8").splitlines() if line.strip()]
    data_yaml = root / "data.yaml"
    if data_yaml.is_file():
        import yaml  # PyYAML comes with huggingface_hub

        names = (yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}).get("names", [])
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names)]
        return [str(n) for n in names]
    raise FormatError(f"'{root}' has neither classes.txt nor data.yaml: the class names are unknown")


def line_to_mask(line: str, *, width: int, height: int) -> np.ndarray:
    """One label line (polygon, or ``cx cy w h`` box) to a mask; raises ``ValueError``."""
    values = [float(v) for v in line.split()[1:]]
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


def import_yolo(
    dataset_dir: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    status: ImageStatus = ImageStatus.IN_PROGRESS,
) -> ImportResult:
    """Read ``labels/*.txt`` with the images of ``images_dir`` (default ``<dataset>/images``),
    whose sizes give the pixel coordinates."""
    root = Path(dataset_dir)
    names = _read_classes(root)
    labels = LabelSet(names)
    img_root = Path(images_dir) if images_dir is not None else root / "images"
    if not img_root.is_dir():
        raise FormatError(f"'{img_root}' is not a folder of images")
    warnings: list[str] = []
    documents: list[ImageDocument] = []
    for name in natural_sorted(p.name for p in img_root.iterdir() if is_image_file(p.name)):
        width, height = image_size(img_root / name)
        doc = ImageDocument(image_name=name, width=width, height=height, status=status)
        label_file = root / "labels" / f"{Path(name).stem}.txt"
        if label_file.is_file():
            for n, line in enumerate(label_file.read_text(encoding="utf-8").splitlines(), start=1):
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
                    doc.add(AnnotationObject(label=label, mask=mask, source="import"))
        documents.append(doc)
    return ImportResult(documents=tuple(documents), labels=labels, warnings=tuple(warnings))
