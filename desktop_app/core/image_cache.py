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

from desktop_app.core.contrast import Window, apply_window, auto_window
from inference.images import ImageSource, default_max_pixels, image_key, load_image_with_raw
from inference.lru import ByteBoundedLRU

DEFAULT_DECODED_CACHE_BYTES = 768 * 1024 * 1024  # five 8000x6000 RGB images
_NO_LIMIT = 2**62


def effective_max_pixels(setting: int | None) -> int:
    """The app's pixel limit: ``LANGSAM_MAX_PIXELS`` when set (an override), else the setting,
    else :data:`inference.images.DEFAULT_MAX_PIXELS`."""
    return default_max_pixels(setting)


@dataclass(frozen=True, kw_only=True, eq=False)
class DecodedImage:
    """An (H, W, 3) uint8 RGB image and its content key (the embedding cache key)."""

    path: str
    array: np.ndarray = field(repr=False)
    key: str
    # a more-than-8-bit image: its raw (H, W) uint16 samples and the contrast window that made
    # ``array`` (what is shown AND what the model gets); ``auto``: the percentile stretch
    raw: np.ndarray | None = field(default=None, repr=False)
    window: Window | None = None
    auto: bool = True

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
        self._windows: dict[str, Window] = {}  # contrast windows a person chose (else auto)

    def set_window(self, path: str, window: Window | None) -> None:
        """The contrast window of a high-bit-depth image (``None``: auto-contrast); the next
        :meth:`get_or_load` applies it to what is shown and what the model gets."""
        with self._guard:
            if window is None:
                self._windows.pop(os.path.abspath(path), None)
            else:
                self._windows[os.path.abspath(path)] = window

    def window_for(self, path: str) -> Window | None:
        """The window a person chose for ``path`` (``None``: auto-contrast)."""
        with self._guard:
            return self._windows.get(os.path.abspath(path))

    @staticmethod
    def _windowed(path: str, raw: np.ndarray, window: Window | None) -> DecodedImage:
        applied = window or auto_window(raw)
        array = apply_window(raw, applied)
        return DecodedImage(path=path, array=array, key=image_key(array), raw=raw, window=applied, auto=window is None)

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
            chosen = self.window_for(path)
            if hit is not None and (hit.raw is None or (hit.window == chosen if chosen else hit.auto)):
                return hit
            if hit is not None:  # a high-bit-depth image whose window changed: re-map its raw samples
                raw = hit.raw
            else:
                limit = _NO_LIMIT if key[0] in self._allowed else self.max_pixels
                array, raw = load_image_with_raw(path, max_pixels=limit)
                if raw is None:
                    decoded = DecodedImage(path=path, array=array, key=image_key(array))
                    self._lru.put(key, decoded, nbytes=array.nbytes)
                    return decoded
                del array
            assert raw is not None
            decoded = self._windowed(path, raw, chosen)
            self._lru.put(key, decoded, nbytes=decoded.array.nbytes + raw.nbytes)
            return decoded

    def key_for_array(self, array: np.ndarray) -> str:
        return image_key(array)

    def clear(self) -> None:
        self._lru.clear()

    @property
    def nbytes(self) -> int:
        return self._lru.nbytes
