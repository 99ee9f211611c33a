"""Export and import formats by name, for the ``segment`` CLI and the app's export dialog.

Every exporter is called as ``export(documents, images_dir=..., out_dir=..., labels=...,
progress=..., **options)`` and returns the paths it wrote; ``documents`` may be a generator (the
exporters go through it once, so a folder of thousands of images is never all in memory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from desktop_app.core.formats import coco, labelme, png, voc, yolo
from desktop_app.core.formats.common import FormatError

Exporter = Callable[..., list[Path]]


@dataclass(frozen=True, kw_only=True)
class ExportFormat:
    name: str
    title: str  # for a menu / combo box
    description: str  # one sentence for a tooltip or --help
    export: Exporter
    import_: Callable[..., object] | None = None


FORMATS: dict[str, ExportFormat] = {
    "coco": ExportFormat(
        name="coco",
        title="COCO instance segmentation (JSON)",
        description="one annotations.json; masks as RLE (exact) or polygons",
        export=coco.export_coco,
        import_=coco.import_coco,
    ),
    "labelme": ExportFormat(
        name="labelme",
        title="labelme (JSON per image)",
        description="one labelme JSON per image: polygons, or mask shapes for objects with holes",
        export=labelme.export_labelme,
        import_=labelme.import_labelme,
    ),
    "yolo": ExportFormat(
        name="yolo",
        title="YOLO segmentation (Ultralytics)",
        description="labels/*.txt with normalised polygons, classes.txt, data.yaml, images/",
        export=yolo.export_yolo,
        import_=yolo.import_yolo,
    ),
    "png": ExportFormat(
        name="png",
        title="PNG masks",
        description="a binary PNG per object and a palette PNG of class ids per image",
        export=png.export_png,
        import_=png.import_png,
    ),
    "voc": ExportFormat(
        name="voc",
        title="Pascal VOC (XML boxes)",
        description="Annotations/<image>.xml with a bndbox per object (detection only), labels.txt",
        export=voc.export_voc,
    ),
}

IMPORT_FORMATS: tuple[str, ...] = tuple(name for name, fmt in FORMATS.items() if fmt.import_ is not None)

EXPORTERS: dict[str, Exporter] = {name: fmt.export for name, fmt in FORMATS.items()}


def get_exporter(name: str) -> Exporter:
    try:
        return EXPORTERS[name]
    except KeyError:
        raise FormatError(f"unknown export format '{name}': choose one of {', '.join(FORMATS)}") from None
