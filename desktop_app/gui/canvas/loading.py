"""Decoding images off the GUI thread, with a small byte-bounded cache of decoded images.

:class:`DecodedImageCache` is shared by the :class:`ImageLoader` (what the canvas shows) and the
inference worker (what the model sees), so an image prefetched by the worker opens instantly and
is decoded once. :class:`ImageLoader` decodes in a background thread and also builds the display
pyramid there, then emits ``loaded(request_id, LoadedImage)`` on the GUI thread.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop_app.gui.canvas.pyramid import DisplayPyramid, build_pyramid
from inference.embedding_cache import ByteBoundedLRU
from inference.errors import InferenceError
from inference.images import image_key, load_image

DEFAULT_DECODED_CACHE_BYTES = 768 * 1024 * 1024  # five 8000x6000 RGB images


@dataclass(frozen=True, kw_only=True, eq=False)
class DecodedImage:
    """An (H, W, 3) uint8 RGB image and its content key (the embedding cache key)."""

    path: str
    array: np.ndarray = field(repr=False)
    key: str

    @property
    def height(self) -> int:
        return int(self.array.shape[0])

    @property
    def width(self) -> int:
        return int(self.array.shape[1])


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


class DecodedImageCache:
    """Thread-safe: path (+ modification time and size) -> :class:`DecodedImage`, LRU by bytes."""

    def __init__(self, *, max_bytes: int = DEFAULT_DECODED_CACHE_BYTES) -> None:
        self._lru: ByteBoundedLRU[DecodedImage] = ByteBoundedLRU(max_bytes=max_bytes)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def _cache_key(path: str) -> tuple[str, int, int]:
        try:
            st = os.stat(path)
            return (os.path.abspath(path), st.st_mtime_ns, st.st_size)
        except OSError:
            return (os.path.abspath(path), 0, 0)

    def get(self, path: str) -> DecodedImage | None:
        return self._lru.get(self._cache_key(path))

    def get_or_load(self, path: str) -> DecodedImage:
        """Decode ``path`` (once, even if two threads ask at the same time).

        Raises :class:`inference.errors.ImageLoadError` with a message for a person.
        """
        path = os.fspath(path)
        key = self._cache_key(path)
        with self._guard:
            lock = self._locks.setdefault(key[0], threading.Lock())
        with lock:
            hit = self._lru.get(key)
            if hit is not None:
                return hit
            array = load_image(path)
            decoded = DecodedImage(path=path, array=array, key=image_key(array))
            self._lru.put(key, decoded, nbytes=array.nbytes)
            return decoded

    def key_for_array(self, array: np.ndarray) -> str:
        return image_key(array)

    def clear(self) -> None:
        self._lru.clear()

    @property
    def nbytes(self) -> int:
        return self._lru.nbytes


class ImageLoader(QObject):
    """Decodes images and builds their display pyramids in one background thread."""

    loaded = Signal(int, object)  # request_id, LoadedImage
    failed = Signal(int, str)  # request_id, message for a person

    def __init__(self, *, cache: DecodedImageCache, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-loader")
        self._next_id = 0
        self._latest = 0
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

    def _work(self, request_id: int, path: str) -> None:
        if request_id != self._latest:
            return
        try:
            decoded = self.cache.get_or_load(path)
            if request_id != self._latest:
                return
            loaded = LoadedImage(decoded=decoded, pyramid=build_pyramid(decoded.array))
        except InferenceError as exc:
            self.failed.emit(request_id, str(exc))
            return
        except Exception as exc:  # e.g. MemoryError on a huge image: a message, not a crash
            self.failed.emit(request_id, f"'{path}' could not be opened: {type(exc).__name__}: {exc}")
            return
        if request_id == self._latest:
            self.loaded.emit(request_id, loaded)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
