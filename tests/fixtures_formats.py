"""Shared fixtures of the formats tests: a small image folder with awkward annotations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument, ImageStatus
from desktop_app.core.annotation.labels import LabelSet


@dataclass
class SampleProject:
    images_dir: Path
    documents: list[ImageDocument]
    labels: LabelSet


def _disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def sample_masks(h: int = 48, w: int = 64) -> dict[str, np.ndarray]:
    """Masks that break naive codecs: a rectangle, a ring with a hole, two pieces, a single
    pixel, a blob on the image border."""
    rect = np.zeros((h, w), bool)
    rect[5:20, 8:30] = True
    ring = _disc(h, w, 44, 24, 15) & ~_disc(h, w, 44, 24, 6)
    pieces = np.zeros((h, w), bool)
    pieces[30:40, 2:10] = True
    pieces[42:46, 14:20] = True
    pixel = np.zeros((h, w), bool)
    pixel[1, 62] = True
    border = _disc(h, w, 0, h, 10)
    return {"rect": rect, "ring": ring, "pieces": pieces, "pixel": pixel, "border": border}


def make_sample_project(root: Path) -> SampleProject:
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    masks = sample_masks()
    doc1 = ImageDocument(image_name="b 1.png", width=64, height=48, status=ImageStatus.DONE)
    doc1.add(AnnotationObject(label="cat", mask=masks["rect"], score=0.9, source="text"))
    doc1.add(AnnotationObject(label="donut", mask=masks["ring"], source="points"))
    doc1.add(AnnotationObject(label="cat", mask=masks["pieces"]))
    doc1.add(AnnotationObject(label="speck", mask=masks["pixel"]))
    doc1.add(AnnotationObject(label="dog", mask=masks["border"]))
    doc2 = ImageDocument(image_name="a.jpg", width=64, height=48, status=ImageStatus.REVIEW)
    doc2.add(AnnotationObject(label="dog", mask=masks["rect"] | masks["pixel"]))
    doc2.add(AnnotationObject(label="empty", mask=np.zeros((48, 64), bool)))  # nothing to export
    doc3 = ImageDocument(image_name="c.png", width=64, height=48, status=ImageStatus.NEW)  # no objects
    rng = np.random.default_rng(0)
    for doc in (doc1, doc2, doc3):
        pixels = rng.integers(0, 255, size=(doc.height, doc.width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images_dir / doc.image_name, quality=95)
    labels = LabelSet(["dog", "cat", "unused"])  # "donut", "speck" are only in the documents
    return SampleProject(images_dir=images_dir, documents=[doc1, doc2, doc3], labels=labels)


@pytest.fixture
def sample_project(tmp_path) -> SampleProject:
    return make_sample_project(tmp_path)
