"""Contrast of images with more than 8 bits per sample (16-bit, and 12-bit stored in 16).

A :class:`Window` (low, high) in raw sample values maps ``low`` and below to 0 and ``high`` and
above to 255, linearly in between; :func:`auto_window` picks it by a percentile stretch (0.5 to
99.5 % by default, so a few hot or dead pixels do not decide it). :func:`apply_window` makes the
(H, W, 3) uint8 RGB image that is both SHOWN and FED TO THE MODEL (the decoded-image cache
applies it: :mod:`desktop_app.core.image_cache`), so the model sees the stretched image too.

Memory: nothing goes through float64. The window becomes a 65536-entry uint8 look-up table and
the raw image is mapped through it in row chunks (~1 M samples), so a 144 MP 16-bit image costs
its raw uint16 copy, the uint8 result and a few MB of chunk temporaries. Qt-free.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

AUTO_PERCENTILES = (0.5, 99.5)
U16_MAX = 65535
CHUNK_SAMPLES = 1 << 20  # samples per chunk (index temporaries are 8 bytes each)


@dataclass(frozen=True)
class Window:
    """Raw values ``low``..``high`` span the 8-bit output (window/level: ``level`` is the middle)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        low, high = float(self.low), float(self.high)
        if high <= low:
            high = low + 1.0
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def level(self) -> float:
        return (self.low + self.high) / 2

    @property
    def width(self) -> float:
        return self.high - self.low

    @classmethod
    def from_level(cls, level: float, width: float) -> Window:
        width = max(float(width), 1.0)
        return cls(level - width / 2, level + width / 2)

    def describe(self) -> str:
        return f"{self.low:.0f}–{self.high:.0f}"


def _row_chunks(shape: tuple[int, ...]) -> Iterator[slice]:
    rows = shape[0]
    per_row = max(int(np.prod(shape[1:])), 1)
    step = max(CHUNK_SAMPLES // per_row, 1)
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


def as_uint16(raw: np.ndarray) -> np.ndarray:
    """``raw`` as native-endian uint16 (values outside 0..65535 clipped), copied only if needed."""
    if raw.dtype == np.uint16 and raw.dtype.isnative:
        return raw
    if raw.dtype.kind == "u" and raw.dtype.itemsize <= 2:
        return raw.astype(np.uint16)
    out = np.empty(raw.shape, dtype=np.uint16)
    for rows in _row_chunks(raw.shape):
        np.clip(raw[rows], 0, U16_MAX, out=out[rows], casting="unsafe")
    return out


def histogram(raw: np.ndarray) -> np.ndarray:
    """Counts of every uint16 value (65536 bins), computed in chunks."""
    raw = as_uint16(raw)
    counts = np.zeros(U16_MAX + 1, dtype=np.int64)
    for rows in _row_chunks(raw.shape):
        counts += np.bincount(raw[rows].ravel(), minlength=U16_MAX + 1)
    return counts


def auto_window(
    raw: np.ndarray, *, low_pct: float = AUTO_PERCENTILES[0], high_pct: float = AUTO_PERCENTILES[1]
) -> Window:
    """The percentile stretch: the values below which ``low_pct`` % and ``high_pct`` % of the
    samples lie (a flat image gets a one-value-wide window around its value)."""
    counts = histogram(raw)
    total = int(counts.sum())
    if total == 0:
        return Window(0, U16_MAX)
    cumulative = np.cumsum(counts)
    low = int(np.searchsorted(cumulative, total * low_pct / 100.0, side="left"))
    high = int(np.searchsorted(cumulative, total * high_pct / 100.0, side="left"))
    return Window(low, max(high, low + 1))


def window_lut(window: Window) -> np.ndarray:
    """The 65536-entry uint8 table of ``window`` (float32, 256 KB while it is built)."""
    values = np.arange(U16_MAX + 1, dtype=np.float32)
    scale = np.float32(255.0 / window.width)
    lut: np.ndarray = np.clip(np.rint((values - np.float32(window.low)) * scale), 0, 255)
    return lut.astype(np.uint8)


def apply_window(raw: np.ndarray, window: Window) -> np.ndarray:
    """(H, W) or (H, W, 3) raw samples -> (H, W, 3) C-contiguous uint8 RGB through ``window``."""
    raw = as_uint16(raw)
    if raw.ndim == 3:
        raw = raw[:, :, :3]
    lut = window_lut(window)
    out = np.empty((raw.shape[0], raw.shape[1], 3), dtype=np.uint8)
    for rows in _row_chunks(raw.shape):
        mapped = lut[raw[rows]]
        out[rows] = mapped[:, :, None] if mapped.ndim == 2 else mapped
    return out
