"""Pascal VOC detection XML: ``Annotations/<stem>.xml`` per image, one ``<object>`` with a
``<bndbox>`` per object, plus ``labels.txt`` and, with a split, ``ImageSets/Main/<part>.txt``.

Boxes use VOC's convention: 1-based, inclusive pixel coordinates (a mask whose pixels span
columns 0..9 has ``xmin`` 1, ``xmax`` 10). ``difficult``, ``truncated`` and ``occluded`` are 0;
``pose`` is ``Unspecified``; ``segmented`` is 0 (masks are not written: use PNG or COCO).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from desktop_app.core.annotation.atomic import write_bytes_atomic, write_text_atomic
from desktop_app.core.annotation.document import ImageDocument
from desktop_app.core.formats.common import (
    Labels,
    Progress,
    SplitSpec,
    StemAllocator,
    exportable_objects,
    image_relpath,
    iterate,
    parse_split,
    prepare_out_dir,
    split_of,
    working_labels,
)


def _depth(path: Path) -> int:
    try:
        from PIL import Image

        with Image.open(path) as img:
            return len(img.getbands())
    except Exception:  # missing or unreadable: VOC readers expect a number; colour is the norm
        return 3


def _text(parent: ET.Element, tag: str, value: object) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = str(value)
    return element


def document_xml(doc: ImageDocument, *, folder: str, depth: int = 3) -> ET.Element:
    rel = image_relpath(doc.image_name)
    root = ET.Element("annotation")
    _text(root, "folder", folder)
    _text(root, "filename", rel.name)
    _text(root, "path", str(rel))
    source = ET.SubElement(root, "source")
    _text(source, "database", "LangSAM Studio")
    size = ET.SubElement(root, "size")
    _text(size, "width", int(doc.width))
    _text(size, "height", int(doc.height))
    _text(size, "depth", depth)
    _text(root, "segmented", 0)
    for obj in exportable_objects(doc):
        x0, y0, x1, y1 = obj.bbox  # type: ignore[misc]  # exportable: not empty
        element = ET.SubElement(root, "object")
        _text(element, "name", obj.label)
        _text(element, "pose", "Unspecified")
        _text(element, "truncated", 0)
        _text(element, "occluded", 0)
        _text(element, "difficult", 0)
        box = ET.SubElement(element, "bndbox")
        _text(box, "xmin", x0 + 1)
        _text(box, "ymin", y0 + 1)
        _text(box, "xmax", x1)
        _text(box, "ymax", y1)
    ET.indent(root)
    return root


def export_voc(
    documents: Iterable[ImageDocument],
    *,
    images_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    labels: Labels = None,
    split: SplitSpec = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the XML files, ``labels.txt`` and the split lists; returns every written path."""
    parts = parse_split(split)
    out = prepare_out_dir(out_dir)
    images_root = Path(images_dir)
    label_set = working_labels(labels)
    stems = StemAllocator()
    written: list[Path] = []
    lists: dict[str, list[str]] = {p: [] for p in parts} if parts else {"all": []}
    for doc in iterate(documents, progress):
        stem = str(stems.stem(doc.image_name))
        for obj in exportable_objects(doc):
            label_set.add(obj.label)
        root = document_xml(doc, folder=images_root.name, depth=_depth(images_root / image_relpath(doc.image_name)))
        data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        written.append(write_bytes_atomic(out / "Annotations" / f"{stem}.xml", data + b"\n"))
        lists[split_of(doc.image_name, parts, seed=seed) if parts else "all"].append(stem)
    for part, stems_of_part in lists.items():
        target = out / "ImageSets" / "Main" / f"{part}.txt"
        written.append(write_text_atomic(target, "".join(f"{s}\n" for s in stems_of_part)))
    written.append(write_text_atomic(out / "labels.txt", "".join(f"{n}\n" for n in label_set.names)))
    return written
