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
    ImageSizes,
    ImportResult,
    Labels,
    Progress,
    SplitSpec,
    check_declared_size,
    exportable_objects,
    image_relpath,
    iterate,
    load_json_file,
    parse_split,
    prepare_out_dir,
    rectangle_box,
    rectangle_ring,
    split_of,
    working_labels,
)
from desktop_app.core.object_ops import is_rectangle
from inference.masks import (
    DEFAULT_POLYGON_TOLERANCE,
    flat_to_ring,
    join_rings,
    mask_bbox,
    mask_to_rle,
    mask_to_simple_polygons,
    polygons_to_mask,
    ring_to_flat,
    rle_to_mask,
    xyxy_to_xywh,
)

Segmentation = Literal["rle", "polygon"]


def object_segmentation(
    obj: AnnotationObject, *, segmentation: Segmentation, tolerance: float = DEFAULT_POLYGON_TOLERANCE
) -> Any:
    """RLE (exact), or polygons simplified within ``tolerance`` pixels (0: exact pixel edges);
    a rectangle object (:func:`~desktop_app.core.formats.common.rectangle_box`) is its 4 corners."""
    if segmentation == "rle":
        return mask_to_rle(obj.mask)
    box = rectangle_box(obj)
    if box is not None:
        return [ring_to_flat(rectangle_ring(box))]
    polygons = []
    for outer, holes in mask_to_simple_polygons(obj.mask, tolerance=tolerance):
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
    polygon_tolerance: float = DEFAULT_POLYGON_TOLERANCE,
    file_name: str = "annotations.json",
    split: SplitSpec = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[Path]:
    """Write ``out_dir/file_name``; returns ``[that path]``.

    ``file_name`` entries are image names relative to ``images_dir`` (COCO's convention: the
    loader joins them to the image root it is given). With ``split`` (e.g. ``"80/20"``, see
    :func:`~desktop_app.core.formats.common.parse_split`) one file per part is written instead,
    ``annotations_train.json``, ``annotations_val.json`` (``_test``), each with every category;
    which part an image goes to depends only on its name and ``seed``. Polygons are simplified
    within ``polygon_tolerance`` pixels (0: exact pixel edges); RLE is always exact.
    """
    if segmentation not in ("rle", "polygon"):
        raise FormatError(f"COCO segmentation must be 'rle' or 'polygon', got {segmentation!r}")
    parts = parse_split(split)
    out = prepare_out_dir(out_dir)
    label_set = working_labels(labels)
    part_names = list(parts) if parts else [""]
    images: dict[str, list[dict[str, Any]]] = {p: [] for p in part_names}
    annotations: dict[str, list[dict[str, Any]]] = {p: [] for p in part_names}
    n_annotations = 0
    for image_id, doc in enumerate(iterate(documents, progress), start=1):
        part = split_of(doc.image_name, parts, seed=seed) if parts else ""
        images[part].append(
            {
                "id": image_id,
                "file_name": str(image_relpath(doc.image_name)),
                "width": int(doc.width),
                "height": int(doc.height),
            }
        )
        for obj in exportable_objects(doc):
            label_set.add(obj.label)
            n_annotations += 1
            ann: dict[str, Any] = {
                "id": n_annotations,
                "image_id": image_id,
                "category_id": label_set.index_of(obj.label) + 1,
                "segmentation": object_segmentation(obj, segmentation=segmentation, tolerance=polygon_tolerance),
                "area": obj.area,
                "bbox": xyxy_to_xywh(cast("tuple[int, int, int, int]", obj.bbox)),  # exportable: not empty
                "iscrowd": 0,
            }
            if obj.score is not None and np.isfinite(obj.score):
                ann["score"] = round(float(obj.score), 4)
            annotations[part].append(ann)
    written = []
    name = Path(file_name)
    for part in part_names:
        data = {
            "info": {
                "description": "Exported by LangSAM Studio" + (f" ({part} part)" if part else ""),
                "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "images_dir": os.fspath(Path(images_dir).resolve()),
            },
            "licenses": [],
            "images": images[part],
            "annotations": annotations[part],
            "categories": [{"id": i + 1, "name": label.name, "supercategory": ""} for i, label in enumerate(label_set)],
        }
        target = out / (f"{name.stem}_{part}{name.suffix}" if part else file_name)
        written.append(write_text_atomic(target, json.dumps(data, ensure_ascii=False)))
    return written


# -- import -----------------------------------------------------------------------------------
def _decode(seg: Any, bbox: Any, *, height: int, width: int) -> np.ndarray:
    """The annotation's mask: its polygons, its RLE, or (detection only) its bbox."""
    if isinstance(seg, list) and seg:
        rings = [flat_to_ring(p) for p in seg if isinstance(p, list) and len(p) >= 6]
        if not rings:
            raise ValueError("its polygons have fewer than 3 points")
        return polygons_to_mask(rings, height=height, width=width)
    if isinstance(seg, dict):
        size = seg.get("size")
        if not isinstance(size, list) or [*size] != [height, width]:  # before decoding anything
            raise ValueError(f"its RLE size {size!r} is not the image's [height, width] [{height}, {width}]")
        return rle_to_mask(seg)
    if isinstance(bbox, list) and len(bbox) == 4:  # detection-only annotation: its box
        x, y, w, h = (float(v) for v in bbox)
        ring = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
        return polygons_to_mask([ring], height=height, width=width)
    raise ValueError("it has neither a segmentation nor a bbox")


def import_coco(
    path: str | os.PathLike[str],
    *,
    status: ImageStatus = ImageStatus.IN_PROGRESS,
    image_sizes: ImageSizes | None = None,
) -> ImportResult:
    """Read a COCO instances file into documents (one per image entry, in file order).

    ``image_sizes`` (image name -> real (width, height)): entries for other images or sizes
    are skipped with a warning before any of their masks is decoded.
    """
    path = Path(path)
    data = load_json_file(path, what="COCO JSON file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(f"'{path}' is not a COCO file: it has no 'images' list")
    raw_categories = data.get("categories", [])
    if not isinstance(raw_categories, list):
        raise FormatError(f"'{path}' is not a COCO file: 'categories' is not a list")
    categories: dict[int, str] = {
        int(c["id"]): str(c["name"])
        for c in raw_categories
        if isinstance(c, dict) and isinstance(c.get("id"), int) and isinstance(c.get("name"), str) and c.get("name")
    }
    labels = LabelSet()
    for cat_id in sorted(categories):
        labels.add(categories[cat_id])
    warnings: list[str] = []
    docs: dict[Any, ImageDocument] = {}
    for entry in data["images"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            warnings.append(f"'{path}': skipped image entry {entry!r:.80}: it needs file_name, width and height")
            continue
        try:
            name, width, height = check_declared_size(
                entry["file_name"], entry.get("width"), entry.get("height"), image_sizes
            )
        except ValueError as exc:
            warnings.append(f"'{path}': skipped image '{entry['file_name']}': {exc}")
            continue
        docs[entry.get("id")] = ImageDocument(image_name=name, width=width, height=height, status=status)
    annotations = data.get("annotations", [])
    for ann in annotations if isinstance(annotations, list) else []:
        if not isinstance(ann, dict):
            continue
        doc = docs.get(ann.get("image_id"))
        if doc is None:
            if image_sizes is None:
                warnings.append(f"'{path}': skipped annotation {ann.get('id')}: unknown image id {ann.get('image_id')}")
            continue
        category = ann.get("category_id")
        label = categories.get(category) if isinstance(category, int) else None
        if label is None:
            warnings.append(f"'{path}': skipped annotation {ann.get('id')}: unknown category {ann.get('category_id')}")
            continue
        try:
            seg = ann.get("segmentation")
            mask = _decode(seg, ann.get("bbox"), height=doc.height, width=doc.width)
        except (ValueError, TypeError) as exc:
            warnings.append(f"'{path}': skipped annotation {ann.get('id')} on '{doc.image_name}': {exc}")
            continue
        if mask_bbox(mask) is None:
            warnings.append(f"'{path}': skipped annotation {ann.get('id')} on '{doc.image_name}': empty mask")
            continue
        score = ann.get("score")
        box_only = not isinstance(seg, dict) and not (isinstance(seg, list) and seg)  # detection: a box
        doc.add(
            AnnotationObject(
                label=label,
                mask=mask,
                source="import",
                kind="rectangle" if box_only and is_rectangle(mask) else "mask",
                score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
            )
        )
    return ImportResult(documents=tuple(docs.values()), labels=labels, warnings=tuple(warnings))
