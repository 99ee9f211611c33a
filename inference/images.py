"""Reading any image Pillow reads into an RGB uint8 array, safely.

Handles EXIF orientation, 16-bit, grayscale, palette, RGBA (composited on white), CMYK, and a
configurable pixel limit that replaces Pillow's decompression-bomb warning with a clear error.
:class:`ImageSource` names where pixels came from (a file or its original bytes), for backends that
would rather send the original than the pixels.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inference.errors import ImageLoadError, ImageTooLargeError


@dataclass(frozen=True, kw_only=True)
class ImageSource:
    """Where decoded pixels came from: the original file, or its original (encoded) bytes.

    Handed to backends next to the pixels so a remote backend can send the compact original
    (a JPEG is ~10x smaller than its RGB pixels) instead of re-encoding them. The pixels stay
    authoritative: a backend that uses the source must treat it as the same image (EXIF
    orientation, mode conversion and all are applied by :func:`load_image` on the other side).
    """

    path: str | None = None
    data: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("an ImageSource needs exactly one of path or data")
        if self.path is not None:
            object.__setattr__(self, "path", os.fspath(self.path))

    def read_bytes(self) -> bytes:
        """The original file's bytes (read now, so an edited file gives its new bytes).

        Raises :class:`ImageLoadError` with a message for a person if the file cannot be read.
        """
        if self.data is not None:
            return self.data
        assert self.path is not None
        try:
            return Path(self.path).read_bytes()
        except OSError as exc:
            raise ImageLoadError(f"'{self.path}' cannot be read: {exc.strerror or exc}") from exc


ImageInput = str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image | np.ndarray | ImageSource

DEFAULT_MAX_PIXELS = 200_000_000  # ~14000 x 14000; overridable per call and by LANGSAM_MAX_PIXELS
MAX_PIXELS_ENV = "LANGSAM_MAX_PIXELS"


def default_max_pixels(setting: int | None = None) -> int:
    """The pixel limit in force: ``$LANGSAM_MAX_PIXELS`` when set (it overrides), else ``setting``
    (the app's setting), else :data:`DEFAULT_MAX_PIXELS`. The one place this rule lives."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return int(setting) if setting else DEFAULT_MAX_PIXELS


def _describe(source: ImageInput) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"the {len(source)}-byte image"
    return "the image"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB with correct scaling of wide modes."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in HIGH_BIT_MODES:
        # never through float64 (a 77 KB 16-bit PNG of 144 MP used to peak at 2.3 GB): a uint8
        # look-up table applied in row chunks (see desktop_app/core/contrast.py for windows)
        arr = np.asarray(img)
        top = int(arr.max(initial=0))
        top = 65535 if mode.startswith("I;16") or top > 255 else 255
        if mode == "I" and int(arr.max(initial=0)) > 65535:
            top = int(arr.max())
        gray = _scale_to_u8(arr, top)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        gray = np.clip(np.nan_to_num((arr - lo) * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "P" and "transparency" not in img.info:
        return img.convert("RGB")  # opaque palette: straight to RGB (the RGBA detour costs 3x the memory)
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_CHUNK_SAMPLES = 1 << 20


def _scale_to_u8(arr: np.ndarray, top: int) -> np.ndarray:
    """round(arr / top * 255) as uint8, in row chunks of uint16/float32 (no full-size float64)."""
    out = np.empty(arr.shape, dtype=np.uint8)
    step = max(_CHUNK_SAMPLES // max(int(np.prod(arr.shape[1:])), 1), 1)
    if top <= 65535:
        lut = np.clip(np.rint(np.arange(65536, dtype=np.float32) * np.float32(255.0 / max(top, 1))), 0, 255)
        lut = lut.astype(np.uint8)
        for start in range(0, arr.shape[0], step):
            rows = arr[start : start + step]
            out[start : start + step] = lut[np.clip(rows, 0, 65535).astype(np.uint16, copy=False)]
        return out
    scale = np.float32(255.0 / top)
    for start in range(0, arr.shape[0], step):
        rows = arr[start : start + step].astype(np.float32)
        out[start : start + step] = np.clip(np.rint(rows * scale), 0, 255)
    return out


def raw_samples(img: Image.Image) -> np.ndarray | None:
    """The raw samples of a more-than-8-bit grayscale image as (H, W) uint16 (``None`` for an
    8-bit image, or a 32-bit "I" image whose values all fit in 8 bits)."""
    if img.mode not in HIGH_BIT_MODES:
        return None
    arr = np.asarray(img)
    if img.mode == "I":
        if int(arr.max(initial=0)) <= 255:
            return None
        out = np.empty(arr.shape, dtype=np.uint16)
        step = max(_CHUNK_SAMPLES // max(arr.shape[1], 1), 1)
        for start in range(0, arr.shape[0], step):
            np.clip(arr[start : start + step], 0, 65535, out=out[start : start + step], casting="unsafe")
        return out
    return np.ascontiguousarray(arr.astype(np.uint16, copy=False))


_PIL_LIMIT_LOCK = threading.Lock()
_PIL_LIMIT_USERS = 0
_PIL_SAVED_LIMIT: int | None = None


@contextlib.contextmanager
def _own_pixel_limit() -> Iterator[None]:
    """Switch off Pillow's decompression-bomb check (our own limit replaces it) while any
    thread is opening an image, and restore it when the last one is done."""
    global _PIL_LIMIT_USERS, _PIL_SAVED_LIMIT
    with _PIL_LIMIT_LOCK:
        if _PIL_LIMIT_USERS == 0:
            _PIL_SAVED_LIMIT = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _PIL_LIMIT_USERS += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        with _PIL_LIMIT_LOCK:
            _PIL_LIMIT_USERS -= 1
            if _PIL_LIMIT_USERS == 0:
                Image.MAX_IMAGE_PIXELS = _PIL_SAVED_LIMIT


def _check_limit(source: ImageInput, width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise ImageTooLargeError(
            f"{_describe(source)} is {width}x{height} = {width * height:,} pixels, more than the "
            f"limit of {limit:,}; raise the limit in settings (or LANGSAM_MAX_PIXELS) to open it"
        )


# Bytes per pixel of Pillow's in-memory modes ("1" is stored one byte per pixel).
_MODE_BYTES = {
    "1": 1,
    "L": 1,
    "P": 1,
    "LA": 2,
    "La": 2,
    "PA": 2,
    "I;16": 2,
    "I;16B": 2,
    "I;16L": 2,
    "I;16N": 2,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "RGBa": 4,
    "RGBX": 4,
    "CMYK": 4,
    "I": 4,
    "F": 4,
}
# Extra bytes per pixel that :func:`_to_rgb` allocates on the way to RGB, by stored mode.
_CONVERT_BYTES = {
    "RGB": 0,
    "1": 3,
    "L": 3,
    "P": 3,
    "CMYK": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 11,
    "RGBa": 15,
    "LA": 15,
    "La": 15,
    "PA": 15,
    "I;16": 14,
    "I;16B": 14,
    "I;16L": 14,
    "I;16N": 14,
    "I": 16,
    "F": 16,
}


def decode_bytes_estimate(mode: str, width: int, height: int, *, transparency: bool = False) -> int:
    """Peak bytes :func:`load_image` needs for an image of this header, before decoding it.

    The stored pixels (width x height x bands: a 38 KB palette PNG of 40 MP holds 40 MB of
    indices), a possible EXIF rotation copy, the conversions to RGB (palette and 1-bit images
    are counted at their decoded RGB size, alpha modes with their compositing buffers) and the
    final array."""
    stored = _MODE_BYTES.get(mode, 4)
    convert = _CONVERT_BYTES.get(mode, 8)
    if mode == "P" and transparency:
        convert = _CONVERT_BYTES["PA"]
    return width * height * (2 * stored + convert + 6)  # + the RGB bytes handed to numpy, and the array


def _check_decode_bytes(source: ImageInput, img: Image.Image, limit: int | None) -> None:
    if limit is None:
        return
    width, height = img.size
    need = decode_bytes_estimate(img.mode, width, height, transparency="transparency" in img.info)
    if need > limit:
        raise ImageTooLargeError(
            f"{_describe(source)} is {width}x{height} pixels in mode {img.mode}: decoding it would take about "
            f"{need / 2**20:,.0f} MiB of memory, more than the limit of {limit / 2**20:,.0f} MiB; send a smaller image"
        )


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; an unreadable EXIF block leaves the pixels as stored."""
    try:
        return ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):
        return img


def load_image_with_raw(
    source: str | os.PathLike[str] | bytes, *, max_pixels: int | None = None, max_decode_bytes: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`load_image`'s RGB array and, for a more-than-8-bit grayscale image (16-bit, 12-bit
    in 16), its raw (H, W) uint16 samples, so the app can apply a contrast window to them."""
    raw: list[np.ndarray | None] = [None]
    rgb = load_image(source, max_pixels=max_pixels, max_decode_bytes=max_decode_bytes, _raw_out=raw)
    return rgb, raw[0]


def load_image(
    source: ImageInput,
    *,
    max_pixels: int | None = None,
    max_decode_bytes: int | None = None,
    _raw_out: list[np.ndarray | None] | None = None,
) -> np.ndarray:
    """Return an (H, W, 3) C-contiguous uint8 RGB array.

    Raises :class:`ImageLoadError` (corrupt, truncated, unreadable) or
    :class:`ImageTooLargeError` (more than ``max_pixels``, or more than ``max_decode_bytes`` of
    memory to decode as estimated by :func:`decode_bytes_estimate`, both checked from the header
    before decoding), both with a user-facing message.
    """
    limit = default_max_pixels() if max_pixels is None else max_pixels
    if isinstance(source, ImageSource):
        origin: str | bytes = source.path if source.path is not None else source.read_bytes()
        return load_image(origin, max_pixels=max_pixels, max_decode_bytes=max_decode_bytes)
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_limit(source, source.shape[1], source.shape[0], limit)
        return _array_to_rgb(source)
    try:
        with _own_pixel_limit(), contextlib.ExitStack() as stack:
            if isinstance(source, Image.Image):
                img = source
            elif isinstance(source, (bytes, bytearray, memoryview)):
                img = stack.enter_context(Image.open(io.BytesIO(bytes(source))))
            else:
                img = stack.enter_context(Image.open(Path(source)))
            width, height = img.size  # from the header: nothing decoded yet
            _check_limit(source, width, height, limit)
            _check_decode_bytes(source, img, max_decode_bytes)
            img.load()
            upright = _upright(img)
            if _raw_out is not None:
                _raw_out[0] = raw_samples(upright)
            rgb = _to_rgb(upright)
            return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    except ImageLoadError:
        raise
    except FileNotFoundError as exc:
        raise ImageLoadError(f"{_describe(source)} does not exist") from exc
    except IsADirectoryError as exc:
        raise ImageLoadError(f"{_describe(source)} is a folder, not an image") from exc
    except PermissionError as exc:
        raise ImageLoadError(f"{_describe(source)} cannot be read: permission denied") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{_describe(source)} is not an image format Pillow can read") from exc
    except Image.DecompressionBombError as exc:  # only if another thread restored Pillow's limit
        raise ImageTooLargeError(f"{_describe(source)} is too large to open safely: {exc}") from exc
    except MemoryError as exc:
        raise ImageTooLargeError(f"{_describe(source)} does not fit in memory; lower its size") from exc
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise ImageLoadError(f"{_describe(source)} is corrupt or truncated: {exc}") from exc


def _array_to_rgb(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageLoadError(f"an image array must be HxW, HxWx3 or HxWx4, got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8) * 255
        elif arr.dtype == np.uint16:
            arr = (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
        elif np.issubdtype(arr.dtype, np.floating):
            arr = np.clip(np.round(arr * 255.0 if arr.max(initial=0) <= 1.0 else arr), 0, 255).astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def image_key(image: np.ndarray) -> str:
    """A content hash of a decoded image (cache key for its embedding)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((image.shape, str(image.dtype))).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()
