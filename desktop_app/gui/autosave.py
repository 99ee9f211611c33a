"""Never lose work: throttled auto-save through a background writer thread.

Every change calls :meth:`Autosaver.changed`. The first change after a quiet spell is saved at
once; changes that follow within ``delay_ms`` are coalesced and saved when that interval ends
(a throttle, not a pure debounce: a stream of quick edits still reaches the disk every
``delay_ms``). Saving snapshots the document on the GUI thread (a shallow copy: objects and
their masks are immutable, edits replace them) and hands it to :class:`DocumentWriter`, whose
thread encodes the masks and writes the file atomically through :meth:`ProjectFolder.save`. So
the GUI never waits on RLE encoding or fsync, and a crash loses at most the edits of the last
``delay_ms`` — at a person's pace, the last edit.

:meth:`Autosaver.flush` saves now and waits for the writer; the window calls it before it
switches images, opens another folder or closes.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_app.core.annotation.document import ImageDocument


def snapshot(doc: ImageDocument) -> ImageDocument:
    """A copy that later edits of ``doc`` do not change (objects are immutable)."""
    return ImageDocument(image_name=doc.image_name, width=doc.width, height=doc.height,
                         objects=list(doc.objects), status=doc.status)


@dataclass(frozen=True, kw_only=True, eq=False)
class _Write:
    project: object  # ProjectFolder
    doc: ImageDocument
    done: threading.Event


class DocumentWriter:
    """One thread writing documents in order. ``on_saved(name)`` / ``on_failed(name, message)`` are
    called from the writer thread (connect them to queued Qt signals)."""

    def __init__(self, *, on_saved: Callable[[str], None], on_failed: Callable[[str, str], None]) -> None:
        self._queue: queue.Queue[_Write | None] = queue.Queue()
        self._on_saved, self._on_failed = on_saved, on_failed
        self._thread = threading.Thread(target=self._run, name="autosave-writer", daemon=True)
        self._thread.start()

    def submit(self, project, doc: ImageDocument) -> threading.Event:
        item = _Write(project=project, doc=doc, done=threading.Event())
        self._queue.put(item)
        return item.done

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is written; True if it was in time."""
        marker = threading.Event()
        self._queue.put(_Write(project=None, doc=None, done=marker))  # type: ignore[arg-type]
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
            if item.project is None:
                item.done.set()
                continue
            try:
                item.project.save(item.doc)
            except Exception as exc:  # SaveError, OSError, a full disk: tell the person, keep going
                self._on_failed(item.doc.image_name, str(exc))
            else:
                self._on_saved(item.doc.image_name)
            finally:
                item.done.set()


class Autosaver(QObject):
    """Saves the current document at most ``delay_ms`` after each change (if enabled)."""

    saved = Signal(str)  # image name (queued from the writer thread)
    failed = Signal(str, str)  # image name, message for a person

    def __init__(self, *, delay_ms: int = 500, enabled: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.enabled = enabled
        self._project = None
        self._doc: ImageDocument | None = None
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(delay_ms))
        self._timer.timeout.connect(self._interval_ended)
        self._writer = DocumentWriter(on_saved=self.saved.emit, on_failed=self.failed.emit)

    @property
    def dirty(self) -> bool:
        return self._dirty

    def set_document(self, project, doc: ImageDocument | None) -> None:
        """Follow another document; the previous one must have been flushed first."""
        self._timer.stop()
        self._project, self._doc, self._dirty = project, doc, False

    def changed(self) -> None:
        """The current document changed: save now, or when the current interval ends."""
        self._dirty = True
        if self.enabled and not self._timer.isActive():
            self.save_now()
            self._timer.start()  # the cool-down during which further changes are coalesced

    def _interval_ended(self) -> None:
        if self._dirty:
            self.save_now()
            self._timer.start()

    def save_now(self) -> None:
        """Hand the current document to the writer now (does not wait)."""
        if self._dirty and self._project is not None and self._doc is not None:
            self._dirty = False
            self._writer.submit(self._project, snapshot(self._doc))

    def flush(self, timeout: float = 30.0) -> bool:
        """Save now and wait until the file is on disk (before switching images / closing)."""
        self.save_now()
        return self._writer.flush(timeout)

    def close(self) -> None:
        self.save_now()
        self._writer.close()
