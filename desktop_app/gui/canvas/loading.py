"""Decoding images off the GUI thread.

:class:`ImageLoader` decodes through the shared, Qt-free
:class:`~desktop_app.core.image_cache.DecodedImageCache` (which the inference worker also uses, so
an image it prefetched opens instantly) in a background thread, builds the display pyramid
there too, then emits ``loaded(request_id, LoadedImage)`` on the GUI thread. A new contrast
window of the image on screen is applied there as well (:meth:`ImageLoader.remap`: re-mapping a
16-bit image, hashing it and building its pyramid take long enough to be felt).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop_app.core.image_cache import DecodedImage, DecodedImageCache
from desktop_app.gui.canvas.pyramid import DisplayPyramid, build_pyramid
from inference.errors import ImageTooLargeError, InferenceError


@dataclass(frozen=True, kw_only=True, eq=False)
class LoadedImage:
    """What the canvas shows: the decoded image and its downscaled display levels."""

    decoded: DecodedImage
    pyramid: DisplayPyramid = field(repr=False)

    @property
    def path(self) -> str:
        return self.decoded.path

    @property
    def array(self) -> np.ndarray:
        return self.decoded.array

    @property
    def key(self) -> str:
        return self.decoded.key

    @property
    def width(self) -> int:
        return self.decoded.width

    @property
    def height(self) -> int:
        return self.decoded.height


class ImageLoader(QObject):
    """Decodes images and builds their display pyramids in one background thread."""

    loaded = Signal(int, object)  # request_id, LoadedImage
    failed = Signal(int, str, bool)  # request_id, message for a person, past the pixel limit
    remapped = Signal(int, object)  # request_id, LoadedImage: the same image with its new contrast window

    def __init__(self, *, cache: DecodedImageCache, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-loader")
        self._next_id = 0
        self._latest = 0
        self._latest_remap = 0
        self._lock = threading.Lock()

    def load(self, path: str) -> int:
        """Start loading ``path``; returns the id ``loaded``/``failed`` will carry.

        Only the latest request's answer is emitted (pressing D quickly skips images).
        """
        with self._lock:
            self._next_id += 1
            request_id = self._latest = self._next_id
        self._pool.submit(self._work, request_id, os.fspath(path))
        return request_id

    def remap(self, path: str) -> int:
        """Apply the contrast window the cache now holds for ``path`` (already decoded) in the
        loader's thread; ``remapped`` (or ``failed``) carries the returned id, the latest only."""
        with self._lock:
            self._next_id += 1
            request_id = self._latest_remap = self._next_id
        self._pool.submit(self._work, request_id, os.fspath(path), remap=True)
        return request_id

    def _work(self, request_id: int, path: str, *, remap: bool = False) -> None:
        def wanted() -> bool:
            return request_id == (self._latest_remap if remap else self._latest)

        if not wanted():
            return
        try:
            decoded = self.cache.get_or_load(path)
            if not wanted():
                return
            loaded = LoadedImage(decoded=decoded, pyramid=build_pyramid(decoded.array))
        except InferenceError as exc:
            self.failed.emit(request_id, str(exc), isinstance(exc, ImageTooLargeError))
            return
        except MemoryError:
            self.failed.emit(request_id, f"'{path}' does not fit in memory", True)
            return
        except Exception as exc:  # a bug in a decoder: a message, not a crash
            self.failed.emit(request_id, f"'{path}' could not be opened: {type(exc).__name__}: {exc}", False)
            return
        if wanted():
            (self.remapped if remap else self.loaded).emit(request_id, loaded)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
