"""Decoded images shared by whoever needs the pixels: the canvas's loader and the inference worker.

One :class:`DecodedImageCache` is shared by :class:`desktop_app.gui.canvas.loading.ImageLoader`
(what the canvas shows) and the inference scheduler (what the model sees), so an image the worker
prefetched opens instantly and every image is decoded once. Qt-free: the scheduler and its tests
use it without a display.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import numpy as np

from inference.images import DEFAULT_MAX_PIXELS, ImageSource, image_key, load_image
from inference.lru import ByteBoundedLRU

DEFAULT_DECODED_CACHE_BYTES = 768 * 1024 * 1024  # five 8000x6000 RGB images
_NO_LIMIT = 2**62


def effective_max_pixels(setting: int | None) -> int:
    """The app's pixel limit: ``LANGSAM_MAX_PIXELS`` when set (an override), else the setting,
    else :data:`inference.images.DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get("LANGSAM_MAX_PIXELS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return int(setting) if setting else DEFAULT_MAX_PIXELS


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

    @property
    def source(self) -> ImageSource:
        """The file the pixels were decoded from (what a remote backend may send instead)."""
        return ImageSource(path=self.path)


class DecodedImageCache:
    """Thread-safe: path (+ modification time and size) -> :class:`DecodedImage`, LRU by bytes.

    Keyed by the file's stat as well as its path so an image edited on disk is decoded again.
    """

    def __init__(self, *, max_bytes: int = DEFAULT_DECODED_CACHE_BYTES) -> None:
        self._lru: ByteBoundedLRU[DecodedImage] = ByteBoundedLRU(max_bytes=max_bytes)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.max_pixels: int | None = None  # None: inference.images' default (LANGSAM_MAX_PIXELS)
        self._allowed: set[str] = set()  # paths the person chose to open past the limit

    def allow_large(self, path: str) -> None:
        """Open ``path`` even past the pixel limit (the person chose "Open anyway")."""
        with self._guard:
            self._allowed.add(os.path.abspath(path))

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
            limit = _NO_LIMIT if key[0] in self._allowed else self.max_pixels
            array = load_image(path, max_pixels=limit)
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
