"""The one LRU cache: thread-safe, bounded by bytes, by entry count, or both.

Used for image embeddings, Grounding DINO features, decoded images, the server's image cache
and session table, and the canvas's overlay tiles.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, overload

V = TypeVar("V")
D = TypeVar("D")


class ByteBoundedLRU(Generic[V]):
    """Keeps the most recently used entries whose sizes add up to at most ``max_bytes`` and
    whose number is at most ``max_items`` (``None``: no bound of that kind).

    An entry larger than the whole byte budget is not kept (and replaces nothing: an older
    entry under its key is dropped). ``get`` makes an entry the most recent; ``in`` does not.
    ``hits`` and ``misses`` count lookups so tests and benchmarks can prove an entry was reused.
    """

    def __init__(self, *, max_bytes: int | None = None, max_items: int | None = None) -> None:
        if max_bytes is None and max_items is None:
            raise ValueError("an LRU needs max_bytes, max_items or both")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        if max_items is not None and max_items < 0:
            raise ValueError("max_items must be >= 0")
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @overload
    def get(self, key: Hashable) -> V | None: ...

    @overload
    def get(self, key: Hashable, default: D) -> V | D: ...

    def get(self, key: Hashable, default: D | None = None) -> V | D | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return default
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def put(self, key: Hashable, value: V, *, nbytes: int | None = None) -> None:
        """Store ``value`` as the most recent entry; ``nbytes`` is required when bounded by bytes."""
        if nbytes is None:
            if self.max_bytes is not None:
                raise ValueError("this LRU is bounded by bytes: put() needs nbytes")
            nbytes = 0
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if (self.max_bytes is not None and nbytes > self.max_bytes) or self.max_items == 0:
                return
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while (self.max_bytes is not None and self._bytes > self.max_bytes) or (
                self.max_items is not None and len(self._items) > self.max_items
            ):
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size

    @overload
    def pop(self, key: Hashable) -> V | None: ...

    @overload
    def pop(self, key: Hashable, default: D) -> V | D: ...

    def pop(self, key: Hashable, default: D | None = None) -> V | D | None:
        """Remove ``key``'s entry and return its value (``default`` when there is none)."""
        with self._lock:
            item = self._items.pop(key, None)
            if item is None:
                return default
            self._bytes -= item[1]
            return item[0]

    def remove_where(self, predicate: Callable[[Hashable], bool]) -> int:
        """Remove every entry whose key ``predicate`` accepts; returns how many were removed."""
        with self._lock:
            doomed = [key for key in self._items if predicate(key)]
            for key in doomed:
                self._bytes -= self._items.pop(key)[1]
            return len(doomed)

    def keys(self) -> list[Hashable]:
        """A snapshot of the keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
