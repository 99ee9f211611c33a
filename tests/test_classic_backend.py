"""The classic (GrabCut) backend on synthetic scenes with known ground truth."""

from __future__ import annotations

import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from inference.backends import create_backend
from inference.backends.classic_backend import low_res_to_mask, mask_to_low_res
from inference.cancel import CancelToken
from inference.errors import Cancelled, PromptError
from inference.prompts import Box, Point, Prompt
from inference.results import PredictionKind

H, W = 600, 800


def _background(seed: int) -> np.ndarray:
    """Blotchy multi-coloured texture plus per-pixel noise."""
    rng = np.random.default_rng(seed)
    low = rng.integers(60, 190, (H // 40, W // 40, 3)).astype(np.uint8)
    texture = cv2.resize(low, (W, H), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return texture + rng.normal(0, 12, (H, W, 3))


def _paint(img: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    img[mask] = np.array(colour, np.float32) + rng.normal(0, 10, (int(mask.sum()), 3))


def _finish(img: np.ndarray, seed: int) -> np.ndarray:
    img = img + np.random.default_rng(seed).normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape(kind: str) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    if kind == "disc":
        cv2.circle(m, (400, 300), 120, 1, -1)
    elif kind == "rectangle":
        cv2.rectangle(m, (250, 180), (560, 420), 1, -1)
    elif kind == "ring":
        cv2.circle(m, (400, 300), 150, 1, -1)
        cv2.circle(m, (400, 300), 70, 0, -1)  # the hole shows the background
    return m.astype(bool)


COLOURS = {"disc": (220, 30, 40), "rectangle": (30, 200, 60), "ring": (30, 60, 230)}


def _scene(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    img = _background(seed)
    gt = _shape(kind)
    _paint(img, gt, COLOURS[kind], seed + 5)
    return _finish(img, seed + 1), gt


def _two_objects(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = _background(seed)
    disc = np.zeros((H, W), np.uint8)
    cv2.circle(disc, (230, 300), 100, 1, -1)
    square = np.zeros((H, W), np.uint8)
    cv2.rectangle(square, (480, 220), (660, 400), 1, -1)
    _paint(img, disc.astype(bool), (230, 200, 30), seed + 5)
    _paint(img, square.astype(bool), (150, 40, 200), seed + 6)
    return _finish(img, seed + 1), disc.astype(bool), square.astype(bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _bbox(gt: np.ndarray, pad: int = 6) -> Box:
    ys, xs = np.nonzero(gt)
    return Box(
        x0=float(xs.min() - pad), y0=float(ys.min() - pad), x1=float(xs.max() + 1 + pad), y1=float(ys.max() + 1 + pad)
    )


def _inside_point(gt: np.ndarray) -> Point:
    """A point well inside the object (maximum of the distance transform)."""
    dist = cv2.distanceTransform(gt.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Point(x=float(x), y=float(y))


@pytest.fixture(scope="module")
def backend():
    b = create_backend("classic")
    b.ensure_loaded()
    return b


@pytest.mark.parametrize("kind", ["disc", "rectangle", "ring"])
def test_box_prompt_matches_the_object(backend, kind):
    image, gt = _scene(kind)
    prediction = backend.predict(image, Prompt(box=_bbox(gt)))
    assert prediction.kind is PredictionKind.ALTERNATIVES and 1 <= len(prediction.candidates) <= 3
    first = prediction.candidates[0]
    assert first.mask.shape == (H, W) and first.mask.dtype == bool
    iou = _iou(first.mask, gt)
    assert iou >= 0.9, f"{kind}: box IoU {iou:.3f}"
    assert _iou(prediction.best.mask, gt) >= 0.9
    if kind == "ring":
        assert not first.mask[300, 400], "the ring's hole must stay empty"


@pytest.mark.parametrize("kind", ["disc", "rectangle", "ring"])
def test_point_prompt_matches_the_object(backend, kind):
    image, gt = _scene(kind)
    prediction = backend.predict(image, Prompt(points=(_inside_point(gt),)))
    iou = _iou(prediction.candidates[0].mask, gt)
    assert iou >= 0.8, f"{kind}: point IoU {iou:.3f}"
    assert _iou(prediction.best.mask, gt) >= 0.8
    assert 0.0 <= prediction.best.score <= 1.0


def test_two_objects_box_and_points_pick_one(backend):
    image, disc, square = _two_objects()
    by_box = backend.predict(image, Prompt(box=_bbox(disc))).candidates[0].mask
    assert _iou(by_box, disc) >= 0.9 and not (by_box & square).any()
    by_point = backend.predict(image, Prompt(points=(_inside_point(square),))).candidates[0].mask
    assert _iou(by_point, square) >= 0.8 and (by_point & disc).sum() < 0.01 * disc.sum()
    with_negative = (
        backend.predict(image, Prompt(points=(_inside_point(disc), Point(x=570.0, y=310.0, positive=False))))
        .candidates[0]
        .mask
    )
    assert _iou(with_negative, disc) >= 0.8 and not with_negative[310, 570]


def test_box_with_negative_point_excludes_the_other_object(backend):
    image, disc, square = _two_objects()
    box = Box(x0=110.0, y0=180.0, x1=680.0, y1=420.0)  # spans both objects
    prompt = Prompt(box=box, points=(_inside_point(disc), Point(x=570.0, y=310.0, positive=False)))
    mask = backend.predict(image, prompt).candidates[0].mask
    assert _iou(mask, disc) >= 0.8, _iou(mask, disc)


def test_previous_mask_as_prior_keeps_the_answer(backend):
    image, gt = _scene("disc", seed=11)
    first = backend.predict(image, Prompt(points=(_inside_point(gt),))).candidates[0]
    assert first.low_res_logits.shape == (256, 256) and first.low_res_logits.dtype == np.float32
    again = backend.predict(
        image, Prompt(points=(_inside_point(gt), Point(x=400.0, y=200.0)), mask_input=first.low_res_logits)
    ).candidates[0]
    assert _iou(again.mask, gt) >= 0.8


def test_low_res_round_trip():
    _, gt = _scene("rectangle")
    back = low_res_to_mask(mask_to_low_res(gt), height=H, width=W)
    assert _iou(back, gt) > 0.97


def test_single_mask_when_multimask_off(backend):
    image, gt = _scene("ring")
    prediction = backend.predict(image, Prompt(box=_bbox(gt), multimask=False))
    assert len(prediction.candidates) == 1


def test_large_image_answers_fast_at_full_resolution(backend):
    image, gt = _scene("disc", seed=21)
    big = cv2.resize(image, (8000, 6000), interpolation=cv2.INTER_LINEAR)
    big_gt = cv2.resize(gt.astype(np.uint8), (8000, 6000), interpolation=cv2.INTER_NEAREST).astype(bool)
    backend.predict(image, Prompt(points=(Point(x=400.0, y=300.0),)))  # warm OpenCV up
    for prompt in (
        Prompt(points=(Point(x=4000.0, y=3000.0),)),
        Prompt(box=Box(x0=2700.0, y0=1700.0, x1=5300.0, y1=4300.0)),
    ):
        start = time.perf_counter()
        prediction = backend.predict(big, prompt)
        elapsed = time.perf_counter() - start
        mask = prediction.candidates[0].mask
        assert mask.shape == (6000, 8000)
        assert _iou(mask, big_gt) >= 0.9
        assert elapsed < 2.5, f"{elapsed:.2f} s on a 48-megapixel image"  # ~0.8 s measured on 2 busy cores


def test_cancel_stops_between_grabcut_iterations(backend, monkeypatch):
    import inference.backends.classic_backend as module

    image, gt = _scene("disc")
    token = CancelToken()
    calls = []
    real = module.cv2.grabCut

    def grabcut_then_cancel(*args, **kwargs):
        calls.append(args[-1])
        result = real(*args, **kwargs)
        token.cancel("a newer click")
        return result

    monkeypatch.setattr(module.cv2, "grabCut", grabcut_then_cancel)
    with pytest.raises(Cancelled, match="a newer click"):
        backend.predict(image, Prompt(box=_bbox(gt)), cancel=token)
    assert len(calls) == 1
    pre_cancelled = CancelToken()
    pre_cancelled.cancel()
    with pytest.raises(Cancelled):
        backend.predict(image, Prompt(box=_bbox(gt)), cancel=pre_cancelled)


def test_bad_prompts_get_clear_errors(backend):
    image, _ = _scene("disc")
    with pytest.raises(PromptError, match="cannot find objects from text") as err:
        backend.predict(image, Prompt(text="a red disc"))
    assert err.value.field == "text"
    with pytest.raises(PromptError, match="add a positive click"):
        backend.predict(image, Prompt(points=(Point(x=10.0, y=10.0, positive=False),)))
    with pytest.raises(PromptError, match="outside"):
        backend.predict(image, Prompt(points=(Point(x=900.0, y=10.0),)))
    with pytest.raises(PromptError, match="uint8 RGB"):
        backend.predict(image[:, :, 0], Prompt(points=(Point(x=1.0, y=1.0),)))


def test_info_and_registration(backend):
    info = backend.info()
    assert info.backend == "classic" and info.device == "cpu" and not info.supports_text
    assert type(backend).needs_weights is False and type(backend).supports_text is False


def test_classic_path_never_imports_torch():
    code = (
        "import sys, numpy as np\n"
        "from inference.backends import create_backend\n"
        "from inference.prompts import Prompt, Point\n"
        "from inference.weights import default_backend_name, WeightsStore\n"
        "assert default_backend_name() == 'classic'\n"
        "b = create_backend('classic'); b.ensure_loaded()\n"
        "img = np.zeros((64, 64, 3), np.uint8); img[20:40, 20:40] = 255\n"
        "b.predict(img, Prompt(points=(Point(x=30.0, y=30.0),)))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
