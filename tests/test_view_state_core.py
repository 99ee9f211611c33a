"""Issue 12, the Qt-free parts: contrast windows for 16-/12-bit images (no float64 blow-up),
the loader's raw samples, and the one label rule for detections (never a raw decoded phrase)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from desktop_app.core.backend_choices import CHOICES, Capability
from desktop_app.core.contrast import Window, apply_window, auto_window, window_lut
from desktop_app.core.image_cache import DecodedImageCache
from desktop_app.core.prediction_policy import (
    PromptRecord,
    canonical_label,
    clean_phrase,
    object_label,
    objects_from_candidates,
    text_phrases,
)
from inference.images import load_image, load_image_with_raw
from inference.results import Candidate


def _twelve_bit(h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(0)
    raw = (1000 + rng.integers(0, 200, size=(h, w))).astype(np.uint16)  # a dim 12-bit background
    raw[30:80, 40:100] = 3000  # a bright object
    raw[0, 0], raw[0, 1] = 0, 4095  # one dead and one hot pixel: the percentiles ignore them
    return raw


def test_auto_window_is_a_percentile_stretch_and_maps_to_uint8():
    raw = _twelve_bit()
    win = auto_window(raw)
    assert 1000 <= win.low < 1010 and win.high == 3000  # not 0..4095 (the outliers)
    rgb = apply_window(raw, win)
    assert rgb.dtype == np.uint8 and rgb.shape == (*raw.shape, 3) and rgb.flags.c_contiguous
    assert rgb[50, 50].tolist() == [255, 255, 255] and rgb[0, 0].tolist() == [0, 0, 0]
    assert np.array_equal(rgb[..., 0], rgb[..., 2])
    lut = window_lut(Window(100, 200))
    assert lut[100] == 0 and lut[200] == 255 and lut[150] in (127, 128) and lut[65535] == 255
    assert Window.from_level(150, 100) == Window(100, 200) and Window(5, 5).width == 1


def test_sixteen_bit_png_loads_without_float64_and_keeps_raw(tmp_path):
    raw = np.zeros((1500, 2000), dtype=np.uint16)
    raw[500:1000, 500:1500] = 40000
    path = tmp_path / "big16.png"
    Image.fromarray(raw).save(path)
    assert path.stat().st_size < 100_000  # a small file that decodes to 3 MP
    tracemalloc.start()
    rgb, kept = load_image_with_raw(str(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    pixels = raw.size
    # float64 conversions used to need > 24 bytes a pixel (2.3 GB for a 77 KB PNG)
    assert peak < 14 * pixels, f"peak {peak / pixels:.1f} bytes per pixel"
    assert kept is not None and kept.dtype == np.uint16 and np.array_equal(kept, raw)
    assert rgb[700, 700].tolist() == [156, 156, 156]  # round(40000 / 65535 * 255) without a window
    assert np.array_equal(load_image(str(path)), rgb)
    eight = tmp_path / "eight.png"
    Image.fromarray(np.full((10, 10, 3), 7, np.uint8)).save(eight)
    assert load_image_with_raw(str(eight))[1] is None


def test_cache_applies_the_window_to_what_the_model_gets(tmp_path):
    path = tmp_path / "twelve.png"
    Image.fromarray(_twelve_bit()).save(path)
    cache = DecodedImageCache()
    auto = cache.get_or_load(str(path))
    assert auto.raw is not None and auto.auto and auto.window == auto_window(auto.raw)
    assert auto.array[50, 50].tolist() == [255, 255, 255]  # stretched, not the dark 3000/65535
    assert cache.get_or_load(str(path)) is auto  # unchanged window: the same pixels and key
    cache.set_window(str(path), Window(0, 4095))
    manual = cache.get_or_load(str(path))
    assert not manual.auto and manual.key != auto.key and manual.array[50, 50, 0] == round(3000 / 4095 * 255)
    cache.set_window(str(path), None)
    assert cache.get_or_load(str(path)).key == auto.key


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("cup", "cup"),
        ("Cup.", "cup"),
        ("cup [SEP]", "cup"),
        ("[CLS] spoon [SEP] .", "spoon"),
        ("cup spoon", "cup"),
        ("spoon cup", "spoon"),
        ("red", "red car"),
        ("cu ##p", "cup"),
        ("red car.", "red car"),
        ("zebra", None),
        ("", None),
        (None, None),
    ],
)
def test_detections_are_labelled_with_the_prompts_phrases(raw, label):
    assert canonical_label(raw, text_phrases("Cup. spoon. red  car.")) == label


def test_objects_never_get_a_raw_decoded_label():
    mask = np.ones((4, 4), bool)
    record = PromptRecord(backend="fake", model="m", text="cup. spoon.")
    cands = [
        Candidate(mask=mask, score=0.9, box=(0, 0, 4, 4), label=lab, box_score=0.8)
        for lab in ("cup [SEP]", "spoon.", "cup spoon", "zebra")
    ]
    labels = [o.label for o in objects_from_candidates(candidates=cands, record=record, fallback_label="thing")]
    assert labels == ["cup", "spoon", "cup", "thing"]
    one = Candidate(mask=mask, score=0.9, box=(0, 0, 4, 4), label="[SEP]", box_score=0.5)
    assert object_label(one, text="cup.", fallback="x") == "cup"
    assert clean_phrase("Car [SEP] .") == "car" and text_phrases("cup. cup. ,spoon") == ["cup", "spoon"]


def test_exemplar_capability_exists_and_only_sam3_may_have_it():
    assert Capability.EXEMPLARS not in Capability.TEXT | Capability.POINTS | Capability.BOXES
    for name, choice in CHOICES.items():
        if name not in ("sam3", "auto"):
            assert not choice.can(Capability.EXEMPLARS), name
