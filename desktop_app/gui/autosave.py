"""Never lose work: throttled auto-save through a background writer thread.

Every change calls :meth:`Autosaver.changed`. The first change after a quiet spell is saved at
once; changes that follow within ``delay_ms`` are coalesced and saved when that interval ends
(a throttle, not a pure debounce: a stream of quick edits still reaches the disk every
``delay_ms``). Saving snapshots the document on the GUI thread (a shallow copy: objects and
their masks are immutable, edits replace them) and hands it to :class:`DocumentWriter`, whose
thread encodes the masks and writes the file atomically through :meth:`ProjectFolder.save`. So
the GUI never waits on RLE encoding or fsync, and a crash loses at most the edits of the last
``delay_ms`` — at a person's pace, the last edit.

A document is clean only once a write of its latest version **succeeded**: every change bumps
the document's version, a successful write records the version it wrote. A failed write (a
full disk, a read-only folder) leaves the document dirty and in memory — also after the person
moves to another image (:meth:`Autosaver.in_memory` hands it back when they return) — and is
retried with a growing delay. A file changed on disk by someone else is never retried
automatically: ``conflict`` asks the window what to do (:meth:`Autosaver.save_forced`).

:meth:`Autosaver.flush` saves now and waits for the writer; the window calls it before it
switches images, opens another folder or closes; :meth:`Autosaver.unsaved` then says what is
still not on disk.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_app.core.annotation.document import ImageDocument

RETRY_DELAYS_MS = (1000, 2000, 5000, 10_000, 30_000, 60_000)  # then every minute


def snapshot(doc: ImageDocument) -> ImageDocument:
    """A copy that later edits of ``doc`` do not change (objects are immutable)."""
    return ImageDocument(
        image_name=doc.image_name, width=doc.width, height=doc.height, objects=list(doc.objects), status=doc.status
    )


@dataclass(eq=False)
class SaveEntry:
    """One document the autosaver answers for. ``version`` counts changes; ``saved_version`` is
    the newest version known to be on disk. Fields are written by both threads under ``lock``."""

    project: object  # ProjectFolder
    doc: ImageDocument
    version: int = 0
    saved_version: int = 0
    error: str | None = None  # the last write's failure, for a person
    exception: BaseException | None = None
    attempts: int = 0  # failed writes in a row
    force: bool = False  # the next write may replace a file changed on disk (the person chose it)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.doc.image_name

    @property
    def dirty(self) -> bool:
        with self.lock:
            return self.version > self.saved_version

    @property
    def conflict(self) -> bool:
        from desktop_app.core.annotation.storage import DocumentChangedOnDisk

        return isinstance(self.exception, DocumentChangedOnDisk)


def _key(project, name: str) -> tuple[str, str]:
    folder = getattr(project, "folder", None)
    return (str(Path(folder).resolve()) if folder is not None else str(id(project)), name)


@dataclass(frozen=True, kw_only=True, eq=False)
class _Write:
    entry: SaveEntry | None
    doc: ImageDocument | None
    version: int
    done: threading.Event


class DocumentWriter:
    """One thread writing documents in order. ``on_saved(entry)`` / ``on_failed(entry)`` are called
    from the writer thread after the entry's fields were updated (connect them to queued signals)."""

    def __init__(self, *, on_saved: Callable[[SaveEntry], None], on_failed: Callable[[SaveEntry], None]) -> None:
        self._queue: queue.Queue[_Write | None] = queue.Queue()
        self._on_saved, self._on_failed = on_saved, on_failed
        self._thread = threading.Thread(target=self._run, name="autosave-writer", daemon=True)
        self._thread.start()

    def submit(self, entry: SaveEntry, doc: ImageDocument, version: int) -> threading.Event:
        item = _Write(entry=entry, doc=doc, version=version, done=threading.Event())
        self._queue.put(item)
        return item.done

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is written (or failed); True if in time."""
        marker = threading.Event()
        self._queue.put(_Write(entry=None, doc=None, version=0, done=marker))
        return marker.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            entry = item.entry
            if entry is None or item.doc is None:
                item.done.set()
                continue
            try:
                entry.project.save(item.doc, force=entry.force)  # type: ignore[attr-defined]
            except Exception as exc:  # SaveError, a full disk, a conflict: tell the person, keep going
                with entry.lock:
                    entry.error, entry.exception = str(exc), exc
                    entry.attempts += 1
                self._on_failed(entry)
            else:
                with entry.lock:
                    entry.saved_version = max(entry.saved_version, item.version)
                    entry.error, entry.exception, entry.attempts, entry.force = None, None, 0, False
                self._on_saved(entry)
            finally:
                item.done.set()


class Autosaver(QObject):
    """Saves the current document at most ``delay_ms`` after each change (if enabled), keeps
    documents whose write failed in memory and retries them."""

    saved = Signal(str)  # image name (queued from the writer thread)
    failed = Signal(str, str)  # image name, message for a person
    conflict = Signal(str, str)  # image name, message: the file was changed on disk by someone else
    state_changed = Signal()  # the set of unsaved documents or their errors changed

    _saved_entry = Signal(object)
    _failed_entry = Signal(object)

    def __init__(self, *, delay_ms: int = 500, enabled: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.enabled = enabled
        self.retry_delays_ms: tuple[int, ...] = RETRY_DELAYS_MS
        self._entries: dict[tuple[str, str], SaveEntry] = {}
        self._current: SaveEntry | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(delay_ms))
        self._timer.timeout.connect(self._interval_ended)
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self.retry_now)
        self._saved_entry.connect(self._on_saved)
        self._failed_entry.connect(self._on_failed)
        self._writer = DocumentWriter(on_saved=self._saved_entry.emit, on_failed=self._failed_entry.emit)

    # -- which document --------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self._current is not None and self._current.dirty

    @property
    def document(self) -> ImageDocument | None:
        return None if self._current is None else self._current.doc

    def set_document(self, project, doc: ImageDocument | None) -> None:
        """Follow another document. The previous one stays in memory (and is retried) while it
        has changes that are not on disk; a clean one is let go."""
        self._timer.stop()
        old = self._current
        if old is not None and not old.dirty and self._entries.get(_key(old.project, old.name)) is old:
            del self._entries[_key(old.project, old.name)]
        self._current = None
        if project is None or doc is None:
            return
        key = _key(project, doc.image_name)
        entry = self._entries.get(key)
        if entry is None or entry.doc is not doc:
            entry = self._entries[key] = SaveEntry(project=project, doc=doc)
        self._current = entry

    def in_memory(self, project, name: str) -> ImageDocument | None:
        """The unsaved document of ``name`` kept here (a failed write), else ``None``."""
        entry = self._entries.get(_key(project, name))
        return entry.doc if entry is not None and entry.dirty else None

    def unsaved(self) -> list[SaveEntry]:
        """Documents whose latest changes are not on disk (after a :meth:`flush`: failed writes)."""
        return [e for e in self._entries.values() if e.dirty]

    def failed_entries(self) -> list[SaveEntry]:
        return [e for e in self._entries.values() if e.dirty and e.error]

    def discard(self, project=None, name: str | None = None) -> None:
        """Forget unsaved changes: of one document, or of all (the person chose Discard)."""
        for key, entry in list(self._entries.items()):
            if name is None or key == _key(project, name):
                with entry.lock:
                    entry.saved_version = entry.version
                    entry.error = entry.exception = None
                if entry is not self._current:
                    del self._entries[key]
        self.state_changed.emit()

    def replace_project(self, old, new) -> None:
        """Annotations of ``old`` go to ``new`` from now on (e.g. another folder was chosen)."""
        for key, entry in list(self._entries.items()):
            if entry.project is old:
                del self._entries[key]
                entry.project = new
                with entry.lock:
                    entry.error = entry.exception = None
                    entry.attempts = 0
                self._entries[_key(new, entry.name)] = entry

    # -- saving ----------------------------------------------------------------------------
    def changed(self) -> None:
        """The current document changed: save now, or when the current interval ends."""
        entry = self._current
        if entry is None:
            return
        with entry.lock:
            entry.version += 1
        if self.enabled and not self._timer.isActive():
            self.save_now()
            self._timer.start()  # the cool-down during which further changes are coalesced

    def _interval_ended(self) -> None:
        if self.dirty:
            self.save_now()
            self._timer.start()

    def _submit(self, entry: SaveEntry) -> None:
        with entry.lock:
            version = entry.version
        self._writer.submit(entry, snapshot(entry.doc), version)

    def save_now(self) -> None:
        """Hand the current document to the writer now (does not wait)."""
        entry = self._current
        if entry is not None and entry.dirty and not entry.conflict:
            self._submit(entry)

    def save_forced(self, project, name: str) -> None:
        """Write ``name`` even though its file changed on disk (the other version is kept as a
        backup by the storage)."""
        entry = self._entries.get(_key(project, name))
        if entry is not None:
            entry.force = True
            with entry.lock:
                entry.error = entry.exception = None
            self._submit(entry)

    def retry_now(self) -> None:
        """Write every unsaved document again (the retry timer, Ctrl+S, "Save again")."""
        self._retry.stop()
        for entry in self.unsaved():
            if not entry.conflict:
                self._submit(entry)

    def flush(self, timeout: float = 30.0) -> bool:
        """Save every unsaved document now and wait until written or failed; True if in time.
        What is still not on disk afterwards is in :meth:`unsaved`."""
        for entry in self.unsaved():
            if not entry.conflict:
                self._submit(entry)
        return self._writer.flush(timeout)

    def close(self) -> None:
        self._retry.stop()
        self._timer.stop()
        self.flush()
        self._writer.close()

    # -- answers from the writer (GUI thread) -------------------------------------------------
    def _on_saved(self, entry: SaveEntry) -> None:
        if entry is not self._current and not entry.dirty:
            key = _key(entry.project, entry.name)
            if self._entries.get(key) is entry:
                del self._entries[key]
        self.saved.emit(entry.name)
        self.state_changed.emit()

    def _on_failed(self, entry: SaveEntry) -> None:
        if not entry.dirty:  # a newer write already succeeded
            return
        message = entry.error or "unknown error"
        if entry.conflict:
            self.conflict.emit(entry.name, message)
        else:
            self.failed.emit(entry.name, message)
            delays = self.retry_delays_ms
            delay = delays[min(entry.attempts, len(delays)) - 1] if delays else 0
            if delays and (not self._retry.isActive() or self._retry.remainingTime() > delay):
                self._retry.start(delay)
        self.state_changed.emit()
