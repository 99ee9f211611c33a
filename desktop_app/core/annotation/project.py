"""A folder of images and its annotations: ``<folder>/.langsam/<image name>.json`` per image and
``<folder>/.langsam/project.json`` for the label set."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from desktop_app.core.annotation.atomic import (
    SaveError,
    clean_stale_temp_files,
    fsync_dir,
    write_bytes_atomic,
)
from desktop_app.core.annotation.document import ImageDocument, ImageStatus
from desktop_app.core.annotation.labels import LabelSet
from desktop_app.core.annotation.storage import (
    DamagedDocumentError,
    DocumentChangedOnDisk,
    DocumentFileError,
    FutureVersionError,
    ImageSizeMismatchError,
    ImageSummary,
    document_from_bytes,
    document_to_bytes,
    load_document,
    read_document_bytes,
    read_summary,
)

META_DIR = ".langsam"
PROJECT_FILE = "project.json"
BACKUP_DIR = "backups"  # <folder>/.langsam/backups/<image>.json.<reason>-YYYYmmdd-HHMMSS

_OURS, _DAMAGED, _NEWER, _UNREADABLE = "ours", "damaged", "newer", "unreadable"


@dataclass(frozen=True)
class _DiskState:
    """What the annotation file was when last loaded or saved here."""

    stamp: tuple[int, int, int, int] | None  # (device, inode, mtime_ns, size); None: no file
    sha256: str | None = None
    kind: str = _OURS  # _OURS | _DAMAGED | _NEWER | _UNREADABLE


def _stamp_of(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        return _stamp_of(os.stat(path))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SaveError(exc.errno, f"cannot check '{path}': {exc.strerror or exc}") from exc


@dataclass(frozen=True, kw_only=True)
class OpenedDocument:
    """What :meth:`ProjectFolder.open_document` found: the document to edit, and when the old
    file could not be used, where it was moved (``backup``) and why (``problem``)."""

    document: ImageDocument
    backup: Path | None = None
    problem: str | None = None


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


def is_image_file(path: str | os.PathLike[str]) -> bool:
    name = os.path.basename(os.fspath(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in image_extensions()


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str, str] | str, ...]:
    """``img2.png`` before ``img10.png``; case-insensitive, stable for ties."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), p) if p.isdigit() else (1, p.casefold(), p) for p in parts) + (name,)


def natural_sorted(names: Iterable[str]) -> list[str]:
    return sorted(names, key=natural_key)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
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

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise NotADirectoryError(f"'{self.folder}' is not a folder")
        self._summary_cache: dict[str, tuple[tuple[int, int] | None, ImageSummary]] = {}
        self._lock = threading.RLock()  # load (GUI thread) and save (autosave thread)
        self._disk: dict[str, _DiskState] = {}
        self.last_backups: dict[str, Path] = {}  # image name -> file save() last moved aside
        # temp files of writes killed mid-way (kill -9, power loss); only old ones of our pattern
        self.removed_temp_files: list[Path] = clean_stale_temp_files(self.meta_dir, target_suffix=".json")

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

        Everything read is validated before any decoder sees it, against the image's size:
        ``size`` = (width, height) of the decoded image, else read from the image file's header
        (not compared when the image cannot be read). Raises :class:`DamagedDocumentError`
        (:class:`ImageSizeMismatchError` for another size) when the file's content is unusable,
        :class:`FutureVersionError` for a newer format, :class:`DocumentFileError` when it cannot
        be read. Neither moves nor changes the file; :meth:`save` never overwrites it (see
        :meth:`open_document` for moving it aside). Remembers what was read, so :meth:`save`
        can tell when someone else changed the file meanwhile.
        """
        path = self.annotation_path(image_name)
        try:
            raw, st = read_document_bytes(path)
        except FileNotFoundError:
            self._remember(image_name, _DiskState(stamp=None))
            width, height = size if size is not None else image_size(self.image_path(image_name))
            return ImageDocument(image_name=image_name, width=width, height=height, status=ImageStatus.NEW)
        except DamagedDocumentError:  # too large to read
            self._remember(image_name, _DiskState(stamp=_stamp(path), kind=_DAMAGED))
            raise
        state = _DiskState(stamp=_stamp_of(st), sha256=hashlib.sha256(raw).hexdigest())
        expected = size if size is not None else self._image_size_or_none(image_name)
        try:
            doc = document_from_bytes(raw, source=f"'{path}'", image_name=image_name, expected_size=expected)
        except FutureVersionError:
            self._remember(image_name, replace(state, kind=_NEWER))
            raise
        except DamagedDocumentError:
            self._remember(image_name, replace(state, kind=_DAMAGED))
            raise
        self._remember(image_name, state)
        return doc

    def open_document(self, image_name: str, *, size: tuple[int, int] | None = None) -> OpenedDocument:
        """:meth:`load` for an editor: a damaged file, or one made for an image of another size,
        is moved aside (see :meth:`move_aside`) and a new empty document returned with the backup
        path and the problem, so the person can be told where their old annotations are.

        Still raises :class:`FutureVersionError` (the file is left for the newer version),
        :class:`DocumentFileError` when the file cannot be read (permissions),
        :class:`~desktop_app.core.annotation.atomic.SaveError` when it cannot be moved aside
        (then it is left untouched), and ``ImageLoadError`` when the image size is needed but
        the image cannot be read.
        """
        for _ in range(3):  # retried only when another writer replaced the file meanwhile
            try:
                return OpenedDocument(document=self.load(image_name, size=size))
            except DamagedDocumentError as exc:
                reason = "other-size" if isinstance(exc, ImageSizeMismatchError) else "damaged"
                with self._lock:
                    seen = self._disk.get(image_name)
                    path = self.annotation_path(image_name)
                    if seen is None or seen.stamp is None or _stamp(path) != seen.stamp:
                        continue
                    backup = self._move_aside_locked(image_name, reason)
                width, height = size if size is not None else image_size(self.image_path(image_name))
                doc = ImageDocument(image_name=image_name, width=width, height=height, status=ImageStatus.NEW)
                return OpenedDocument(document=doc, backup=backup, problem=str(exc))
        return OpenedDocument(document=self.load(image_name, size=size))

    def move_aside(self, image_name: str, reason: str = "damaged") -> Path | None:
        """Move the image's annotation file to ``.langsam/backups/<image>.json.<reason>-<local
        time YYYYmmdd-HHMMSS>`` (``-2``, ``-3`` ... if taken) and return that path; ``None``
        when there is no file. Raises :class:`SaveError` (file left in place) when it cannot."""
        with self._lock:
            return self._move_aside_locked(image_name, reason)

    def save(self, doc: ImageDocument, *, force: bool = False) -> Path:
        """Write atomically; a document with no objects and status NEW removes the file.

        Never loses what is on disk:

        * a file :meth:`load` found damaged (or, for a document that was never loaded here, a
          file that is damaged or made for another image size) is moved aside first
          (:meth:`move_aside`, reason ``damaged``; the path is in :attr:`last_backups`);
        * a file changed by someone else since :meth:`load` (or the last save) raises
          :class:`DocumentChangedOnDisk`; a file of a newer format raises
          :class:`FutureVersionError`. With ``force=True`` that file is moved aside (reason
          ``replaced`` / ``newer-version``) and the document saved.

        A failed write raises :class:`SaveError` and leaves the old file intact.
        """
        name = doc.image_name
        path = self.annotation_path(name)
        with self._lock:
            self._summary_cache.pop(name, None)
            current = _stamp(path)
            if current is not None:
                self._protect(doc, path, current, force=force)
            if not doc.objects and doc.status == ImageStatus.NEW:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    raise SaveError(exc.errno, f"could not remove '{path}': {exc.strerror or exc}") from exc
                self._disk[name] = _DiskState(stamp=None)
                return path
            data = document_to_bytes(doc)
            write_bytes_atomic(path, data)
            self._disk[name] = _DiskState(stamp=_stamp(path), sha256=hashlib.sha256(data).hexdigest())
            return path

    # -- on-disk state (for save) ------------------------------------------------------------
    def _remember(self, image_name: str, state: _DiskState) -> None:
        with self._lock:
            self._disk[image_name] = state

    def _image_size_or_none(self, image_name: str) -> tuple[int, int] | None:
        try:
            return image_size(self.image_path(image_name))
        except Exception:  # missing, unreadable or a decompression bomb: nothing to compare with
            return None

    def _protect(self, doc: ImageDocument, path: Path, current: tuple[int, int, int, int], *, force: bool) -> None:
        """Called with the lock held and a file at ``path``: make sure it may be replaced."""
        name = doc.image_name
        state = self._disk.get(name)
        if state is None:  # never loaded here: look at what is there
            state = self._classify(path, doc)
        elif not self._unchanged(path, current, state):
            if not force:
                raise DocumentChangedOnDisk(
                    f"the annotations of '{name}' were changed on disk by another program or "
                    f"window after they were loaded ('{path}'); they were not overwritten. "
                    f"Reload the image to see those changes, or save again to replace them (the "
                    f"other version is then kept as a backup)",
                    path=path,
                    image_name=name,
                )
            self._last_backup(name, self._move_aside_locked(name, "replaced"))
            return
        if state.kind == _DAMAGED:
            self._last_backup(name, self._move_aside_locked(name, "damaged"))
        elif state.kind == _NEWER:
            if not force:
                raise FutureVersionError(
                    f"'{path}' was saved by a newer LangSAM Studio; it was not overwritten. "
                    f"Update LangSAM Studio to edit these annotations"
                )
            self._last_backup(name, self._move_aside_locked(name, "newer-version"))
        elif state.kind == _UNREADABLE and not force:
            raise DocumentFileError(f"cannot read '{path}', so it was not overwritten")

    def _classify(self, path: Path, doc: ImageDocument) -> _DiskState:
        try:
            load_document(path, image_name=doc.image_name, expected_size=(doc.width, doc.height))
        except FileNotFoundError:
            return _DiskState(stamp=None)
        except FutureVersionError:
            return _DiskState(stamp=_stamp(path), kind=_NEWER)
        except DamagedDocumentError:
            return _DiskState(stamp=_stamp(path), kind=_DAMAGED)
        except DocumentFileError:
            return _DiskState(stamp=_stamp(path), kind=_UNREADABLE)
        return _DiskState(stamp=_stamp(path))

    @staticmethod
    def _unchanged(path: Path, current: tuple[int, int, int, int], state: _DiskState) -> bool:
        if state.stamp is None:
            return False  # there was no file at load: someone created one
        if current == state.stamp:
            return True
        if current[3] != state.stamp[3] or state.sha256 is None:
            return False
        try:  # same size, new inode or time (a sync tool rewrote it): compare the content
            raw, _ = read_document_bytes(path)
        except (OSError, DocumentFileError):
            return False
        return hashlib.sha256(raw).hexdigest() == state.sha256

    def _last_backup(self, image_name: str, backup: Path | None) -> None:
        if backup is not None:
            self.last_backups[image_name] = backup

    def _move_aside_locked(self, image_name: str, reason: str) -> Path | None:
        path = self.annotation_path(image_name)
        if not os.path.lexists(path):
            return None
        folder = self.meta_dir / BACKUP_DIR
        tag = re.sub(r"[^a-z0-9]+", "-", reason.lower()).strip("-") or "backup"
        base = f"{image_name}.json.{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            backup, n = folder / base, 2
            while os.path.lexists(backup):
                backup, n = folder / f"{base}-{n}", n + 1
            os.replace(path, backup)
        except OSError as exc:
            raise SaveError(
                exc.errno,
                f"could not move '{path}' aside into '{folder}': "
                f"{exc.strerror or exc}; it was left as it is and nothing "
                f"was saved over it",
            ) from exc
        fsync_dir(folder)
        fsync_dir(self.meta_dir)
        self._disk[image_name] = _DiskState(stamp=None)
        self._summary_cache.pop(image_name, None)
        return backup

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
