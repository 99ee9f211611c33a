"""inference.images.load_image on the image kinds people actually open."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from inference.errors import ImageLoadError, ImageTooLargeError
from inference.images import image_key, load_image


def _png_bytes(img: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **params)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` but holds a few bytes of data (decoding would fail)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 256, 32768, 65535]], dtype=np.uint16).repeat(3, axis=0)
    path = tmp_path / "depth.png"
    assert cv2.imwrite(str(path), values)
    assert Image.open(path).mode.startswith("I")
    rgb = load_image(path)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_16bit_rgb_png(tmp_path):
    values = np.zeros((4, 5, 3), np.uint16)
    values[..., 0], values[..., 1], values[..., 2] = 65535, 32768, 0  # RGB
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), values[..., ::-1].copy())  # OpenCV writes BGR
    assert load_image(path)[0, 0].tolist() == [255, 128, 0]


def test_grayscale_and_palette_and_rgba():
    gray = Image.fromarray(np.array([[0, 100, 255]], np.uint8), mode="L")
    assert load_image(_png_bytes(gray))[0].tolist() == [[0, 0, 0], [100, 100, 100], [255, 255, 255]]

    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    assert load_image(_png_bytes(palette, transparency=1))[0].tolist() == [[255, 0, 0], [255, 255, 255]]

    rgba = Image.new("RGBA", (1, 1), (255, 0, 0, 128))  # half-transparent red over white
    r, g, b = load_image(_png_bytes(rgba))[0, 0].tolist()
    assert r == 255 and abs(g - 127) <= 1 and abs(b - 127) <= 1


def test_cmyk_jpeg_colours():
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(buf, format="JPEG", quality=95)
    r, g, b = load_image(buf.getvalue())[8, 8].tolist()
    assert r > 220 and g < 40 and b < 40, (r, g, b)


def test_exif_orientation_6_rotates_pixels(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)  # stored landscape: left half red, right half blue
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    img.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    rgb = load_image(path)
    assert rgb.shape == (40, 20, 3), "width and height must be swapped"
    top, bottom = rgb[5, 10].tolist(), rgb[35, 10].tolist()
    assert top[0] > 200 and top[2] < 50, top  # the stored left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 50, bottom


def test_corrupt_truncated_missing_and_folder(tmp_path):
    good = _png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageLoadError, match="corrupt or truncated") as err:
        load_image(cut)
    assert str(cut) in str(err.value)
    with pytest.raises(ImageLoadError, match="not an image format"):
        load_image(b"this is not an image at all")
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(jpeg, format="JPEG")
    with pytest.raises(ImageLoadError):
        load_image(jpeg.getvalue()[:200])


def test_pixel_limit_checked_from_the_header(monkeypatch):
    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        with pytest.raises(ImageTooLargeError, match="100000x100000 = 10,000,000,000 pixels"):
            load_image(_png_header_only(100_000, 100_000))  # far past Pillow's own bomb limit
        with pytest.raises(ImageTooLargeError, match="limit of 1,000"):
            load_image(_png_header_only(50, 50), max_pixels=1000)
        monkeypatch.setenv("LANGSAM_MAX_PIXELS", "2000")
        with pytest.raises(ImageTooLargeError, match="LANGSAM_MAX_PIXELS"):
            load_image(_png_header_only(50, 50))
    assert before == Image.MAX_IMAGE_PIXELS


def test_our_limit_replaces_pillows_bomb_check(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow would refuse 10,000 pixels
    data = _png_bytes(Image.new("L", (100, 100), 9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = load_image(data)
    assert rgb.shape == (100, 100, 3) and rgb[50, 50].tolist() == [9, 9, 9]
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored for everyone else


def test_arrays_and_pil_images():
    assert load_image(np.full((2, 3), 7, np.uint8)).shape == (2, 3, 3)
    assert load_image(np.ones((2, 2), bool))[0, 0].tolist() == [255, 255, 255]
    assert load_image(np.full((1, 1, 3), 65535, np.uint16))[0, 0].tolist() == [255, 255, 255]
    assert load_image(np.full((1, 1, 4), 0.5, np.float32))[0, 0].tolist() == [128, 128, 128]
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((100, 100, 3), np.uint8), max_pixels=99)
    with pytest.raises(ImageLoadError, match="shape"):
        load_image(np.zeros((2, 2, 5), np.uint8))
    assert load_image(Image.new("LA", (1, 1), (0, 0)))[0, 0].tolist() == [255, 255, 255]


def test_image_key_depends_on_content():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert image_key(a) == image_key(a.copy()) != image_key(b)
    assert image_key(a) != image_key(np.zeros((2, 8, 3), np.uint8))
