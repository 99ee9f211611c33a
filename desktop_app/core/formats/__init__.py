"""Exporters and importers for other tools' formats (COCO, labelme, YOLO-seg, PNG masks).

Qt-free. Use :mod:`desktop_app.core.formats.registry` to pick one by name.
"""
