"""COCO instance segmentation: export (RLE or polygons) and import back into documents.

Category id = label index + 1 (0 is COCO's "no category"); image ids count from 1 in document
order; ``segmentation`` is compressed RLE (exact) or polygons in COCO's pixel-corner convention
(holes joined to their outer ring, so pycocotools gives back the same mask).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from desktop_app.core.annotation.atomic import write_text_atomic
from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus
from desktop_app.core.annotation.labels import LabelSet
from desktop_app.core.formats.common import (
    FormatError,
    ImportResult,
    Labels,
    Progress,
    exportable_objects,
    image_relpath,
    iterate,
    prepare_out_dir,
    working_labels,
)
from inference.masks import (
    flat_to_ring,
    join_rings,
    mask_bbox,
    mask_to_polygons,
    mask_to_rle,
    polygons_to_mask,
    ring_to_flat,
    rle_to_mask,
    xyxy_to_xywh,
)

Segmentation = Literal["rle", "polygon"]


def object_segmentation(obj: AnnotationObject, *, segmentation: Segmentation, epsilon: float = 0.0) -> Any:
    if segmentation == "rle":
        return mask_to_rle(obj.mask)
    polygons = []
    for outer, holes in mask_to_polygons(obj.mask, epsilon=epsilon):
        ring = join_rings([(outer, holes)]) if holes else outer
        if ring is not None and len(ring) >= 3:
            polygons.append(ring_to_flat(ring))
    return polygons


def export_coco(
    documents: Iterable[ImageDocument],
    *,
    images_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    labels: Labels = None,
    segmentation: Segmentation = "rle",
    polygon_epsilon: float = 0.0,
    file_name: str = "annotations.json",
    progress: Progress | None = None,
) -> list[Path]:
    """Write ``out_dir/file_name``; returns ``[that path]``.

    ``file_name`` entries are image names relative to ``images_dir`` (COCO's convention: the
    loader joins them to the image root it is given).
    """
    if segmentation not in ("rle", "polygon"):
        raise FormatError(f"COCO segmentation must be 'rle' or 'polygon', got {segmentation!r}")
    out = prepare_out_dir(out_dir)
    label_set = working_labels(labels)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, doc in enumerate(iterate(documents, progress), start=1):
        images.append(
            {
                "id": image_id,
                "file_name": str(image_relpath(doc.image_name)),
                "width": int(doc.width),
                "height": int(doc.height),
            }
        )
        for obj in exportable_objects(doc):
            label_set.add(obj.label)
            ann: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": label_set.index_of(obj.label) + 1,
                "segmentation": object_segmentation(obj, segmentation=segmentation, epsilon=polygon_epsilon),
                "area": obj.area,
                "bbox": xyxy_to_xywh(cast("tuple[int, int, int, int]", obj.bbox)),  # exportable: not empty
                "iscrowd": 0,
            }
            if obj.score is not None and np.isfinite(obj.score):
                ann["score"] = round(float(obj.score), 4)
            annotations.append(ann)
    data = {
        "info": {
            "description": "Exported by LangSAM Studio",
            "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "images_dir": os.fspath(Path(images_dir).resolve()),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": label.name, "supercategory": ""} for i, label in enumerate(label_set)],
    }
    path = write_text_atomic(out / file_name, json.dumps(data, ensure_ascii=False))
    return [path]


# -- import -----------------------------------------------------------------------------------
def _decode(seg: Any, bbox: Any, *, height: int, width: int) -> np.ndarray:
    if isinstance(seg, list) and seg:
        rings = [flat_to_ring(p) for p in seg if isinstance(p, list) and len(p) >= 6]
        if not rings:
            raise ValueError("its polygons have fewer than 3 points")
        return polygons_to_mask(rings, height=height, width=width)
    if isinstance(seg, dict):
        mask = rle_to_mask(seg)
        if mask.shape != (height, width):
            raise ValueError(f"its RLE is {mask.shape[1]}x{mask.shape[0]}, the image {width}x{height}")
        return mask
    if isinstance(bbox, list) and len(bbox) == 4:  # detection-only annotation: its box
        x, y, w, h = (float(v) for v in bbox)
        ring = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
        return polygons_to_mask([ring], height=height, width=width)
    raise ValueError("it has neither a segmentation nor a bbox")


def import_coco(path: str | os.PathLike[str], *, status: ImageStatus = ImageStatus.IN_PROGRESS) -> ImportResult:
    """Read a COCO instances file into documents (one per image entry, in file order)."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise FormatError(f"'{path}' does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"'{path}' is not a readable COCO JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(f"'{path}' is not a COCO file: it has no 'images' list")
    categories = {c.get("id"): str(c.get("name")) for c in data.get("categories", []) if isinstance(c, dict)}
    labels = LabelSet()
    for cat_id in sorted(k for k in categories if isinstance(k, int)):
        labels.add(categories[cat_id])
    warnings: list[str] = []
    docs: dict[Any, ImageDocument] = {}
    for entry in data["images"]:
        try:
            name = str(entry["file_name"])
            width, height = int(entry["width"]), int(entry["height"])
            if width <= 0 or height <= 0:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            warnings.append(f"skipped image entry {entry!r:.80}: it needs file_name, width and height")
            continue
        docs[entry.get("id")] = ImageDocument(image_name=name, width=width, height=height, status=status)
    for ann in data.get("annotations", []):
        if not isinstance(ann, dict):
            continue
        doc = docs.get(ann.get("image_id"))
        if doc is None:
            warnings.append(f"skipped annotation {ann.get('id')}: unknown image id {ann.get('image_id')}")
            continue
        label = categories.get(ann.get("category_id"))
        if label is None:
            warnings.append(f"skipped annotation {ann.get('id')}: unknown category {ann.get('category_id')}")
            continue
        try:
            mask = _decode(ann.get("segmentation"), ann.get("bbox"), height=doc.height, width=doc.width)
        except ValueError as exc:
            warnings.append(f"skipped annotation {ann.get('id')} on '{doc.image_name}': {exc}")
            continue
        if mask_bbox(mask) is None:
            warnings.append(f"skipped annotation {ann.get('id')} on '{doc.image_name}': empty mask")
            continue
        score = ann.get("score")
        doc.add(
            AnnotationObject(
                label=label, mask=mask, source="import", score=float(score) if isinstance(score, (int, float)) else None
            )
        )
    return ImportResult(documents=tuple(docs.values()), labels=labels, warnings=tuple(warnings))
