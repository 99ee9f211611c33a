"""A folder of images and its annotations: ``<folder>/.langsam/<image name>.json`` per image and
``<folder>/.langsam/project.json`` for the label set."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from desktop_app.core.annotation.document import ImageDocument, ImageStatus
from desktop_app.core.annotation.labels import LabelSet
from desktop_app.core.annotation.storage import (
    DocumentFileError,
    ImageSummary,
    load_document,
    read_summary,
    save_document,
)

META_DIR = ".langsam"
PROJECT_FILE = "project.json"

_EXTENSIONS: frozenset[str] | None = None


def image_extensions() -> frozenset[str]:
    """Lower-case suffixes (with the dot) of every format Pillow can open here."""
    global _EXTENSIONS
    if _EXTENSIONS is None:
        from PIL import Image

        Image.init()
        readable = set(Image.OPEN)
        exts = {ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in readable}
        # containers Pillow "opens" that are not pictures people annotate
        _EXTENSIONS = frozenset(exts - {".pdf", ".ps", ".eps", ".h5", ".hdf", ".fits", ".fit"})
    return _EXTENSIONS


def is_image_file(path: str | os.PathLike) -> bool:
    name = os.path.basename(os.fspath(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in image_extensions()


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """``img2.png`` before ``img10.png``; case-insensitive, stable for ties."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), p) if p.isdigit() else (1, p.casefold(), p) for p in parts) + (name,)


def natural_sorted(names: Iterable[str]) -> list[str]:
    return sorted(names, key=natural_key)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) as :func:`inference.images.load_image` will see it (EXIF rotation
    applied), reading only the file header."""
    from PIL import Image

    from inference.errors import ImageLoadError

    try:
        with Image.open(path) as img:
            width, height = img.size
            try:
                orientation = img.getexif().get(0x0112, 1)
            except Exception:  # a damaged EXIF block: Pillow's loader ignores it too
                orientation = 1
    except FileNotFoundError as exc:
        raise ImageLoadError(f"'{os.fspath(path)}' does not exist") from exc
    except OSError as exc:
        raise ImageLoadError(f"'{os.fspath(path)}' is not an image Pillow can read ({exc})") from exc
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


class ProjectFolder:
    """Images of one folder (not recursive) and where their annotations live."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise NotADirectoryError(f"'{self.folder}' is not a folder")
        self._summary_cache: dict[str, tuple[tuple[int, int] | None, ImageSummary]] = {}

    @property
    def meta_dir(self) -> Path:
        return self.folder / META_DIR

    @property
    def project_file(self) -> Path:
        return self.meta_dir / PROJECT_FILE

    # -- images ----------------------------------------------------------------------------
    def images(self) -> list[str]:
        """Image file names in natural order."""
        with os.scandir(self.folder) as entries:
            names = [e.name for e in entries if is_image_file(e.name) and e.is_file()]
        return natural_sorted(names)

    def image_path(self, image_name: str) -> Path:
        return self.folder / image_name

    def annotation_path(self, image_name: str) -> Path:
        return self.meta_dir / f"{image_name}.json"

    # -- documents -------------------------------------------------------------------------
    def load(self, image_name: str, *, size: tuple[int, int] | None = None) -> ImageDocument:
        """The saved document, or a new empty one (status NEW) when nothing was saved.

        ``size`` = (width, height) of the decoded image saves reading its header. Raises
        :class:`DocumentFileError` when the saved file is unreadable or is for another size.
        """
        path = self.annotation_path(image_name)
        try:
            doc = load_document(path, image_name=image_name)
        except FileNotFoundError:
            width, height = size if size is not None else image_size(self.image_path(image_name))
            return ImageDocument(image_name=image_name, width=width, height=height,
                                 status=ImageStatus.NEW)
        if size is not None and tuple(size) != (doc.width, doc.height):
            raise DocumentFileError(
                f"the annotations in '{path}' were made for a {doc.width}x{doc.height} image but "
                f"'{image_name}' is now {size[0]}x{size[1]}; move that file away to start over")
        return doc

    def save(self, doc: ImageDocument) -> Path:
        """Write atomically; a document with no objects and status NEW removes the file."""
        path = self.annotation_path(doc.image_name)
        self._summary_cache.pop(doc.image_name, None)
        if not doc.objects and doc.status == ImageStatus.NEW:
            path.unlink(missing_ok=True)
            return path
        return save_document(doc, path)

    # -- summaries -------------------------------------------------------------------------
    def summary(self, image_name: str) -> ImageSummary:
        """Status and object count, re-read only when the file changed (size + mtime)."""
        path = self.annotation_path(image_name)
        try:
            st = path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        cached = self._summary_cache.get(image_name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        result = read_summary(path, image_name=image_name)
        self._summary_cache[image_name] = (stamp, result)
        return result

    def summaries(self, image_names: Iterable[str] | None = None) -> list[ImageSummary]:
        return [self.summary(n) for n in (self.images() if image_names is None else image_names)]

    # -- labels ----------------------------------------------------------------------------
    def load_labels(self) -> LabelSet:
        return LabelSet.load(self.project_file)

    def save_labels(self, labels: LabelSet) -> Path:
        return labels.save(self.project_file)
