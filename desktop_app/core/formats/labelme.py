"""labelme JSON, one file per image, written the way labelme's ``LabelFile`` loads it.

Shapes (see docs/adr/0002): ``polygon`` in labelme's own convention (vertices through the
centres of boundary pixels; labelme fills the polygon *and* its outline), or ``mask`` (labelme
>= 5.3: ``points`` = inclusive integer corners of the box, ``mask`` = base64 PNG of that crop)
for objects with holes or too small for a polygon, or ``rectangle`` (2 points: the inclusive
integer corners of the box, which labelme fills inclusively) for objects of kind "rectangle";
a ``rectangle`` shape reads back as kind "rectangle". ``imagePath`` is relative to the JSON
file, ``imageData`` is null.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw

from desktop_app.core.annotation.atomic import write_text_atomic
from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus
from desktop_app.core.annotation.labels import LabelSet
from desktop_app.core.formats.common import (
    FormatError,
    ImageSizes,
    ImportResult,
    Labels,
    Progress,
    StemAllocator,
    check_declared_size,
    exportable_objects,
    image_relpath,
    iterate,
    load_json_file,
    prepare_out_dir,
    rectangle_box,
    working_labels,
)
from desktop_app.core.object_ops import is_rectangle
from inference.masks import DEFAULT_POLYGON_TOLERANCE, MIN_SIMPLIFIED_IOU, mask_bbox

LABELME_VERSION = "5.5.0"  # mask shapes exist since 5.3; older labelme reads polygons only
ShapeMode = Literal["auto", "polygon", "mask"]


# -- masks <-> labelme shapes -------------------------------------------------------------------
def _centre_contours(mask: np.ndarray, epsilon: float) -> tuple[list[np.ndarray], bool]:
    """Outer contours through boundary-pixel centres, and whether the mask has holes."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return [], False
    hierarchy = hierarchy[0]
    outers, has_holes = [], False
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:
            has_holes = True
            continue
        if epsilon > 0 and len(contour) > 3:
            simplified = cv2.approxPolyDP(contour, epsilon, True)
            if len(simplified) >= 3:
                contour = simplified
        outers.append(contour.reshape(-1, 2).astype(np.float64))
    return outers, has_holes


def _png_b64(crop: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(crop.astype(np.uint8)).save(buffer, format="PNG")  # values 0/1, as labelme
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _shape(
    label: str,
    points: list[list[float]],
    shape_type: str,
    *,
    group_id: int | None = None,
    mask: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    return {
        "label": label,
        "points": points,
        "group_id": group_id,
        "description": description,
        "shape_type": shape_type,
        "flags": {},
        "mask": mask,
    }


def object_shapes(
    obj: AnnotationObject,
    *,
    mode: ShapeMode = "auto",
    group_id: int | None = None,
    epsilon: float = DEFAULT_POLYGON_TOLERANCE,
) -> list[dict[str, Any]]:
    """labelme shapes for one object (several polygons share ``group_id`` when it has pieces).

    Polygons are simplified within ``epsilon`` pixels (Douglas-Peucker); when that moves the
    filled result below ``MIN_SIMPLIFIED_IOU`` of the unsimplified polygons (thin strokes), the
    tolerance is halved, twice, then dropped (as ``inference.masks.mask_to_simple_polygons``).
    In ``auto`` mode a rectangle object (:func:`~desktop_app.core.formats.common.rectangle_box`)
    is one ``rectangle`` shape, exact; ``polygon`` mode gives its 4 corners, ``mask`` its crop.
    """
    box = rectangle_box(obj)
    if box is not None and mode == "auto":
        x0, y0, x1, y1 = box
        description = "" if obj.score is None else f"score={obj.score:.3f}"
        points = [[float(x0), float(y0)], [float(x1 - 1), float(y1 - 1)]]
        return [_shape(obj.label, points, "rectangle", description=description)]
    shapes = _object_shapes(obj, mode=mode, group_id=group_id, epsilon=0.0)
    if epsilon <= 0 or not any(s["shape_type"] == "polygon" and len(s["points"]) > 3 for s in shapes):
        return shapes
    h, w = obj.mask.shape
    exact = _fill(shapes, height=h, width=w)
    for _ in range(3):
        simple = _object_shapes(obj, mode=mode, group_id=group_id, epsilon=epsilon)
        back = _fill(simple, height=h, width=w)
        union = np.count_nonzero(back | exact)
        if union == 0 or np.count_nonzero(back & exact) / union >= MIN_SIMPLIFIED_IOU:
            return simple
        epsilon /= 2
    return shapes


def _fill(shapes: list[dict[str, Any]], *, height: int, width: int) -> np.ndarray:
    out = np.zeros((height, width), dtype=bool)
    for shape in shapes:
        out |= shape_to_mask(shape, height=height, width=width)
    return out


def _object_shapes(
    obj: AnnotationObject, *, mode: ShapeMode, group_id: int | None, epsilon: float
) -> list[dict[str, Any]]:
    box = mask_bbox(obj.mask)
    if box is None:
        return []
    description = "" if obj.score is None else f"score={obj.score:.3f}"
    if mode != "mask":
        contours, has_holes = _centre_contours(obj.mask, epsilon)
        too_small = any(len(c) < 3 for c in contours)
        if mode == "polygon" or not (has_holes or too_small):
            gid = group_id if len(contours) > 1 else None
            shapes = []
            for contour in contours:
                points = contour.tolist()
                while len(points) < 3:  # a one- or two-pixel piece: labelme still draws it
                    points.append(list(points[-1]))
                shapes.append(_shape(obj.label, points, "polygon", group_id=gid, description=description))
            return shapes
    x0, y0, x1, y1 = box
    crop = obj.mask[y0:y1, x0:x1]
    return [
        _shape(
            obj.label,
            [[float(x0), float(y0)], [float(x1 - 1), float(y1 - 1)]],
            "mask",
            mask=_png_b64(crop),
            description=description,
        )
    ]


def export_labelme(
    documents: Iterable[ImageDocument],
    *,
    images_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    labels: Labels = None,
    shape_type: ShapeMode = "auto",
    polygon_tolerance: float = DEFAULT_POLYGON_TOLERANCE,
    progress: Progress | None = None,
) -> list[Path]:
    """One ``<image stem>.json`` per document in ``out_dir``; returns the written paths.

    Write into the image folder itself (``out_dir == images_dir``) to open it in labelme
    directly; elsewhere ``imagePath`` points back to the image with a relative path.
    """
    if shape_type not in ("auto", "polygon", "mask"):
        raise FormatError(f"labelme shape_type must be auto, polygon or mask, got {shape_type!r}")
    out = prepare_out_dir(out_dir)
    images_root = Path(images_dir).resolve()
    working_labels(labels)  # validates; labelme files carry label names, not ids
    stems = StemAllocator()
    written: list[Path] = []
    for doc in iterate(documents, progress):
        rel = image_relpath(doc.image_name)
        json_path = out / f"{stems.stem(doc.image_name)}.json"
        image_path = os.path.relpath(images_root / rel, json_path.parent.resolve())
        shapes: list[dict[str, Any]] = []
        for group_id, obj in enumerate(exportable_objects(doc), start=1):
            shapes.extend(object_shapes(obj, mode=shape_type, group_id=group_id, epsilon=polygon_tolerance))
        data: dict[str, Any] = {
            "version": LABELME_VERSION,
            "flags": {},
            "shapes": shapes,
            "imagePath": Path(image_path).as_posix(),
            "imageData": None,
            "imageHeight": int(doc.height),
            "imageWidth": int(doc.width),
        }
        written.append(write_text_atomic(json_path, json.dumps(data, ensure_ascii=False, indent=2)))
    return written


# -- import -----------------------------------------------------------------------------------
def shape_to_mask(shape: dict[str, Any], *, height: int, width: int) -> np.ndarray:
    """Rasterise one labelme shape the way labelme does (PIL, outline included)."""
    shape_type = shape.get("shape_type") or "polygon"
    points = shape.get("points")
    if not isinstance(points, list) or not points:
        raise ValueError("it has no points")
    xy = [(float(p[0]), float(p[1])) for p in points]
    if shape_type == "mask":
        raw = shape.get("mask")
        if not isinstance(raw, str):
            raise ValueError("its mask is missing")
        with Image.open(io.BytesIO(base64.b64decode(raw))) as img:
            crop = np.asarray(img.convert("L")) > 0
        x1, y1 = (int(round(v)) for v in xy[0])
        full = np.zeros((height, width), dtype=bool)
        ys, xs = max(y1, 0), max(x1, 0)
        ye, xe = min(y1 + crop.shape[0], height), min(x1 + crop.shape[1], width)
        if ys < ye and xs < xe:
            full[ys:ye, xs:xe] = crop[ys - y1 : ye - y1, xs - x1 : xe - x1]
        return full
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if shape_type == "rectangle" and len(xy) == 2:
        (ax, ay), (bx, by) = xy
        draw.rectangle(((min(ax, bx), min(ay, by)), (max(ax, bx), max(ay, by))), outline=1, fill=1)
    elif shape_type == "circle" and len(xy) == 2:
        (cx, cy), (px, py) = xy
        r = float(np.hypot(cx - px, cy - py))
        draw.ellipse(((cx - r, cy - r), (cx + r, cy + r)), outline=1, fill=1)
    elif shape_type in ("polygon", "oriented_rectangle") and len(xy) >= 3:
        draw.polygon(xy, outline=1, fill=1)
    else:
        raise ValueError(f"shape_type '{shape_type}' with {len(xy)} points has no area")
    return np.asarray(canvas, dtype=bool)


def import_labelme(
    paths: Iterable[str | os.PathLike[str]],
    *,
    status: ImageStatus = ImageStatus.IN_PROGRESS,
    image_sizes: ImageSizes | None = None,
) -> ImportResult:
    """Read labelme JSON files (or every ``*.json`` of the folders given).

    Shapes with the same label and ``group_id`` become one object (labelme's instance rule).
    ``image_name`` is ``imagePath`` as written (relative to the JSON file's folder), or, given
    ``image_sizes`` (image name -> real (width, height)), the folder's image of that name; files
    for other images or sizes are skipped with a warning before any shape is drawn.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.glob("*.json") if not f.name.startswith(".")))
        elif p.exists():
            files.append(p)
        else:
            raise FormatError(f"'{p}' does not exist")
    labels = LabelSet()
    documents: list[ImageDocument] = []
    warnings: list[str] = []
    for file in files:
        try:
            data = load_json_file(file, what="labelme file")
            if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
                raise FormatError(f"'{file}' is not a labelme file: it has no 'shapes' list")
            if not isinstance(data.get("imagePath"), str) or not data["imagePath"]:
                raise FormatError(f"'{file}' is not a labelme file: it has no imagePath")
            image_name, width, height = check_declared_size(
                str(data["imagePath"]).replace("\\", "/"), data.get("imageWidth"), data.get("imageHeight"), image_sizes
            )
            shapes = data["shapes"]
        except FormatError as exc:
            warnings.append(f"skipped {exc}")
            continue
        except ValueError as exc:
            warnings.append(f"skipped '{file}': {exc}")
            continue
        doc = ImageDocument(image_name=image_name, width=width, height=height, status=status)
        groups: dict[tuple[str, Any], np.ndarray] = {}
        order: list[tuple[str, Any]] = []
        not_rectangles: set[tuple[str, Any]] = set()  # groups with a shape other than a rectangle
        for i, shape in enumerate(shapes):
            label = shape.get("label") if isinstance(shape, dict) else None
            if not isinstance(label, str) or not label:
                warnings.append(f"'{file}': skipped shape {i + 1} without a label")
                continue
            try:
                mask = shape_to_mask(shape, height=height, width=width)
            except (ValueError, OSError, TypeError, IndexError, binascii.Error) as exc:
                warnings.append(f"'{file}': skipped shape {i + 1} ({label}): {exc}")
                continue
            group = shape.get("group_id")
            key = (label, group if isinstance(group, (int, str)) else ("shape", i))
            if key not in groups:
                groups[key] = np.zeros((height, width), dtype=bool)
                order.append(key)
            groups[key] |= mask
            if shape.get("shape_type") != "rectangle":
                not_rectangles.add(key)
        for key in order:
            if groups[key].any():
                labels.add(key[0])
                rectangle = key not in not_rectangles and is_rectangle(groups[key])
                kind = "rectangle" if rectangle else "mask"
                doc.add(AnnotationObject(label=key[0], mask=groups[key], source="import", kind=kind))
        documents.append(doc)
    return ImportResult(documents=tuple(documents), labels=labels, warnings=tuple(warnings))
