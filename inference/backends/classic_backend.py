"""The "classic" backend: OpenCV GrabCut from a box and/or clicks. No weights, no torch.

How a prompt becomes masks:

* A box: pixels outside it (plus a margin) are sure background, inside probably foreground.
* Clicks without a box: each positive click grows a region of similar colour (flood fill on a
  smoothed, downscaled Lab copy) whose bounding box, widened, becomes the region of interest.
  If the result touches that region's edge the region is widened and GrabCut runs again.
* Positive clicks are sure-foreground seeds, negative clicks sure-background; a previous mask
  (``mask_input`` logits) marks probable foreground.

GrabCut runs on a downscaled crop (about :data:`WORK_PIXELS` pixels) and the mask is scaled
back, so a click on a 48-megapixel photo answers in a fraction of a second. Up to three
alternatives come back (cleaned result, with holes filled, the raw colour region), scored by
how well their colours separate from a band around them (1 = perfectly distinct).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import cv2
import numpy as np

from inference.backends.base import SegmentationBackend
from inference.backends.registry import register_backend
from inference.cancel import CancelToken, check
from inference.errors import PromptError
from inference.images import ImageSource
from inference.prompts import Box, Point, Prompt
from inference.results import BackendInfo, Candidate, Prediction, PredictionKind, float_box

WORK_PIXELS = 80_000  # GrabCut working resolution (pixels of the downscaled crop)
THUMB_SIDE = 512  # long side of the copy used to grow regions from clicks
GRABCUT_ITERATIONS = 5
FLOOD_TOLERANCES = (4, 7, 10, 14, 19, 25)
LOW_RES = 256  # SAM 2's low-resolution logits cover the whole image squashed to 256 x 256
# Cost model for :meth:`ClassicBackend.estimate_seconds` (seconds on one slow core, generous):
# full-resolution passes (downscale, masks, RLE) per pixel, and GrabCut per working pixel and iteration
SECONDS_PER_PIXEL = 3e-8
SECONDS_PER_WORK_PIXEL_ITERATION = 1e-6


def mask_to_low_res(mask: np.ndarray) -> np.ndarray:
    """(256, 256) float32 logits (+8 inside, -8 outside) in SAM 2's frame, for ``mask_input``."""
    small = cv2.resize(mask.astype(np.uint8) * 255, (LOW_RES, LOW_RES), interpolation=cv2.INTER_AREA)
    return ((small.astype(np.float32) / 127.5) - 1.0) * 8.0


def low_res_to_mask(logits: np.ndarray, *, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`mask_to_low_res`: (H, W) bool where the logits are positive."""
    grid = np.asarray(logits, dtype=np.float32).reshape(logits.shape[-2:])
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR) > 0


@dataclass(frozen=True)
class _Roi:
    """Integer crop ``[x0, x1) x [y0, y1)`` of the full image and its scale to working pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float

    @property
    def size(self) -> tuple[int, int]:  # working (width, height)
        return (max(1, round((self.x1 - self.x0) * self.scale)), max(1, round((self.y1 - self.y0) * self.scale)))

    def to_work(self, x: float, y: float) -> tuple[int, int]:
        w, h = self.size
        return (
            min(w - 1, max(0, int((x - self.x0) * self.scale))),
            min(h - 1, max(0, int((y - self.y0) * self.scale))),
        )


def _roi_around(x0: float, y0: float, x1: float, y1: float, *, margin: float, width: int, height: int) -> _Roi:
    mx = max(margin * (x1 - x0), 0.02 * width, 4.0)
    my = max(margin * (y1 - y0), 0.02 * height, 4.0)
    rx0, ry0 = max(0, math.floor(x0 - mx)), max(0, math.floor(y0 - my))
    rx1, ry1 = min(width, math.ceil(x1 + mx)), min(height, math.ceil(y1 + my))
    area = max(1, (rx1 - rx0) * (ry1 - ry0))
    return _Roi(rx0, ry0, rx1, ry1, min(1.0, math.sqrt(WORK_PIXELS / area)))


def _downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (w, h); very large reductions first take every k-th pixel (fast), then
    average the rest (INTER_AREA), so a 48-megapixel photo shrinks in milliseconds."""
    h, w = image.shape[:2]
    k = min(w // size[0], h // size[1]) // 2
    if k >= 2:
        image = image[::k, ::k]
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)


def _smoothed_lab(rgb: np.ndarray) -> np.ndarray:
    blurred = cv2.medianBlur(rgb, 5)
    return cv2.cvtColor(cv2.GaussianBlur(blurred, (5, 5), 0), cv2.COLOR_RGB2LAB)


def _grow_regions(
    image: np.ndarray, positives: list[Point], negatives: list[Point], cancel: CancelToken | None
) -> tuple[float, float, float, float, np.ndarray, float]:
    """Colour regions around the positive clicks on a thumbnail.

    Returns the union's bounding box in full-image pixels, the region mask on the thumbnail
    and the thumbnail's scale.
    """
    h, w = image.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(h, w))
    thumb = image if scale == 1.0 else _downscale(image, (max(1, round(w * scale)), max(1, round(h * scale))))
    lab = _smoothed_lab(np.ascontiguousarray(thumb))
    th, tw = lab.shape[:2]
    union = np.zeros((th, tw), dtype=bool)
    neg = [(min(tw - 1, int(p.x * scale)), min(th - 1, int(p.y * scale))) for p in negatives]
    for p in positives:
        check(cancel)
        seed = (min(tw - 1, int(p.x * scale)), min(th - 1, int(p.y * scale)))
        # compare with the typical colour around the click, not one possibly noisy pixel
        x, y = seed
        window = lab[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4].reshape(-1, 3)
        seeded = lab.copy()
        seeded[y, x] = np.median(window, axis=0).astype(np.uint8)
        best = None
        on_border = False
        for tol in FLOOD_TOLERANCES:
            fill = np.zeros((th + 2, tw + 2), dtype=np.uint8)
            flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
            cv2.floodFill(seeded, fill, seed, (0, 0, 0), (tol,) * 3, (tol,) * 3, flags)
            region = fill[1:-1, 1:-1].astype(bool)
            touches = bool(region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any())
            leaked = (
                region.sum() > 0.25 * th * tw
                or any(region[ny, nx] for nx, ny in neg)
                or (touches and not on_border and best is not None)
            )
            if leaked and best is not None:
                break
            best, on_border = region, touches
            if leaked:
                break
        union |= best if best is not None else False
    ys, xs = np.nonzero(union)
    if xs.size == 0:
        xs, ys = np.array([int(p.x * scale) for p in positives]), np.array([int(p.y * scale) for p in positives])
    box = (xs.min() / scale, ys.min() / scale, (xs.max() + 1) / scale, (ys.max() + 1) / scale)
    return (*box, union, scale)


def _disk(mask: np.ndarray, xy: tuple[int, int], radius: int, value: int) -> None:
    cv2.circle(mask, xy, radius, int(value), thickness=-1)


def _clean(mask: np.ndarray, seeds: list[tuple[int, int]]) -> np.ndarray:
    """Drop specks and keep the parts the prompt points at (components under positive clicks,
    or for a box the large components)."""
    m: np.ndarray = mask.astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    m = cv2.morphologyEx(cv2.morphologyEx(m, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if count <= 1:
        return m.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = {i + 1 for i, a in enumerate(areas) if a >= 0.2 * areas.max()}
    if seeds:
        picked = {int(labels[y, x]) for x, y in seeds if labels[y, x] > 0}
        keep = picked or keep
    out = np.isin(labels, list(keep))
    holes = ~out
    hcount, hlabels, hstats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=4)
    small = [i for i in range(1, hcount) if hstats[i, cv2.CC_STAT_AREA] < 0.002 * out.sum()]
    if small:
        out |= np.isin(hlabels, small)
    return out


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(m)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)
    return filled.astype(bool)


def _separation(lab: np.ndarray, mask: np.ndarray) -> float:
    """1 - Bhattacharyya overlap of colour histograms inside the mask and in a band around it."""
    m = mask.astype(np.uint8)
    if m.sum() < 4:
        return 0.0
    band_width = max(3, int(0.08 * math.sqrt(m.sum())))
    dilated: np.ndarray = cv2.dilate(m, np.ones((2 * band_width + 1,) * 2, np.uint8))
    band = dilated & (1 - m)
    if band.sum() < 4:
        return 0.5  # the mask fills the crop: nothing to compare with
    bins, ranges = [12, 12, 12], [0, 256, 0, 256, 0, 256]
    inside = cv2.calcHist([lab], [0, 1, 2], m, bins, ranges)
    around = cv2.calcHist([lab], [0, 1, 2], band, bins, ranges)
    cv2.normalize(inside, inside, 1, 0, cv2.NORM_L1)
    cv2.normalize(around, around, 1, 0, cv2.NORM_L1)
    return float(np.clip(cv2.compareHist(inside, around, cv2.HISTCMP_BHATTACHARYYA), 0.0, 1.0))


@register_backend
class ClassicBackend(SegmentationBackend):
    """GrabCut segmentation; useful on a fresh install before any weights are downloaded."""

    name = "classic"
    supports_text = False
    supports_points = True
    needs_weights = False

    def load(self) -> None:
        self._loaded = True  # OpenCV is imported with the module; nothing to load

    def info(self) -> BackendInfo:
        return BackendInfo(
            backend=self.name,
            model=f"OpenCV {cv2.__version__} GrabCut",
            device="cpu",
            device_reason="the classic backend runs on the CPU with OpenCV (no GPU, no weights)",
            supports_text=False,
            supports_points=True,
        )

    def estimate_seconds(self, height: int, width: int, prompt: Prompt) -> float | None:
        """Pixels x iterations: full-resolution passes over the image plus GrabCut's iterations on
        the working crop (up to three attempts when the region grows from clicks)."""
        pixels = height * width
        work = min(pixels, WORK_PIXELS)
        attempts = 1 if prompt.box is not None else 3
        candidates = 3 if prompt.multimask else 1
        return (
            0.02
            + pixels * SECONDS_PER_PIXEL * (1 + candidates)
            + work * GRABCUT_ITERATIONS * attempts * SECONDS_PER_WORK_PIXEL_ITERATION
        )

    def predict(
        self,
        image: np.ndarray,
        prompt: Prompt,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> Prediction:
        started = time.perf_counter()
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise PromptError(
                f"the image must be an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}", field="image"
            )
        h, w = image.shape[:2]
        if prompt.is_text:
            raise PromptError(
                "the classic backend cannot find objects from text: click on the object or "
                "drag a box, or download the Lang-SAM models (`langsam-studio models download "
                "sam2.1_hiera_small grounding-dino-base`)",
                field="text",
            )
        prompt.validate(width=w, height=h)
        positives = [p for p in prompt.points if p.positive]
        negatives = [p for p in prompt.points if not p.positive]
        if prompt.box is None and not positives:
            raise PromptError(
                "negative clicks only say what to leave out: add a positive click or a box", field="points"
            )
        check(cancel)
        prior = None
        if prompt.mask_input is not None:
            prior = low_res_to_mask(prompt.mask_input, height=h, width=w)
            if not prior.any():
                prior = None
        region, thumb_scale = None, 1.0
        bounds: Sequence[float]  # x0, y0, x1, y1
        if prompt.box is not None:
            b = prompt.box.clipped(width=w, height=h)
            bounds, margin = (b.x0, b.y0, b.x1, b.y1), 0.15
        else:
            *bounds, region, thumb_scale = _grow_regions(image, positives, negatives, cancel)
            if prior is not None:
                ys, xs = np.nonzero(prior)
                bounds = (
                    min(bounds[0], xs.min()),
                    min(bounds[1], ys.min()),
                    max(bounds[2], xs.max() + 1),
                    max(bounds[3], ys.max() + 1),
                )
            margin = 0.5
        timings = {"prepare": time.perf_counter() - started}
        for _attempt in range(3):
            roi = _roi_around(*bounds, margin=margin, width=w, height=h)
            masks, lab = self._grabcut(image, roi, prompt.box, positives, negatives, prior, region, thumb_scale, cancel)
            if prompt.box is not None or not self._touches_open_edge(masks[0], roi, w, h):
                break
            ys, xs = np.nonzero(masks[0])  # the object continues past the region: widen and redo
            bounds = (
                roi.x0 + xs.min() / roi.scale,
                roi.y0 + ys.min() / roi.scale,
                roi.x0 + (xs.max() + 1) / roi.scale,
                roi.y0 + (ys.max() + 1) / roi.scale,
            )
            margin = 0.6
        timings["grabcut"] = time.perf_counter() - started - timings["prepare"]
        candidates = self._candidates(masks, lab, roi, prompt, w, h, cancel)
        timings["total"] = time.perf_counter() - started
        return Prediction(
            candidates=tuple(candidates),
            kind=PredictionKind.ALTERNATIVES,
            image_key=image_key or self.image_key(image),
            backend=self.name,
            model="grabcut",
            image_size=(h, w),
            timings=MappingProxyType(timings),
        )

    # -- steps ---------------------------------------------------------------------------------
    @staticmethod
    def _touches_open_edge(mask: np.ndarray, roi: _Roi, width: int, height: int) -> bool:
        """Whether the mask reaches a crop edge that is not the image's edge."""
        if not mask.any():
            return False
        return bool(
            (mask[:, 0].any() and roi.x0 > 0)
            or (mask[:, -1].any() and roi.x1 < width)
            or (mask[0].any() and roi.y0 > 0)
            or (mask[-1].any() and roi.y1 < height)
        )

    def _grabcut(
        self,
        image: np.ndarray,
        roi: _Roi,
        box: Box | None,
        positives: list[Point],
        negatives: list[Point],
        prior: np.ndarray | None,
        region: np.ndarray | None,
        thumb_scale: float,
        cancel: CancelToken | None,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        crop = image[roi.y0 : roi.y1, roi.x0 : roi.x1]
        size = roi.size
        small = np.ascontiguousarray(crop) if roi.scale == 1.0 else _downscale(crop, size)
        sw, sh = size
        labels = np.full((sh, sw), cv2.GC_PR_BGD, dtype=np.uint8)
        if box is not None:
            labels[:] = cv2.GC_BGD
            bx0, by0 = roi.to_work(box.x0, box.y0)
            bx1, by1 = roi.to_work(box.x1, box.y1)
            labels[by0 : by1 + 1, bx0 : bx1 + 1] = cv2.GC_PR_FGD
        if region is not None:  # the colour region grown from the clicks, brought to this crop
            full_to_thumb = region.astype(np.uint8)
            tx0, ty0 = int(roi.x0 * thumb_scale), int(roi.y0 * thumb_scale)
            tx1, ty1 = max(tx0 + 1, math.ceil(roi.x1 * thumb_scale)), max(ty0 + 1, math.ceil(roi.y1 * thumb_scale))
            part = cv2.resize(full_to_thumb[ty0:ty1, tx0:tx1], size, interpolation=cv2.INTER_NEAREST)
            labels[part > 0] = cv2.GC_PR_FGD
        if prior is not None:
            prior_small = cv2.resize(
                prior[roi.y0 : roi.y1, roi.x0 : roi.x1].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
            )
            labels[(prior_small > 0) & (labels != cv2.GC_BGD)] = cv2.GC_PR_FGD
        radius = max(2, round(0.01 * max(sw, sh)))
        for p in negatives:
            _disk(labels, roi.to_work(p.x, p.y), radius, cv2.GC_BGD)
        seeds = [roi.to_work(p.x, p.y) for p in positives]
        for xy in seeds:
            _disk(labels, xy, radius, cv2.GC_FGD)
        if not np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            labels[[0, -1], :] = cv2.GC_PR_BGD  # a box over the whole image: let the frame be background
            labels[:, [0, -1]] = cv2.GC_PR_BGD
        if not np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
            raise PromptError(
                "the prompt covers too few pixels to segment at this image size",
                field="box" if box is not None else "points",
            )
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        check(cancel)
        # (the ignores: cv2's stubs want a rect, which OpenCV takes as None when the mask initialises)
        cv2.grabCut(small, labels, None, bgd, fgd, 1, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
        for _ in range(GRABCUT_ITERATIONS - 1):
            check(cancel)
            cv2.grabCut(small, labels, None, bgd, fgd, 1, cv2.GC_EVAL)  # type: ignore[call-overload]
        check(cancel)
        raw = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
        cleaned = _clean(raw, seeds)
        masks = [cleaned, _fill_holes(cleaned)]
        if region is not None:
            tx0, ty0 = int(roi.x0 * thumb_scale), int(roi.y0 * thumb_scale)
            tx1, ty1 = max(tx0 + 1, math.ceil(roi.x1 * thumb_scale)), max(ty0 + 1, math.ceil(roi.y1 * thumb_scale))
            masks.append(
                cv2.resize(region[ty0:ty1, tx0:tx1].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            )
        else:
            masks.append(raw)
        return masks, _smoothed_lab(small)

    def _candidates(
        self,
        masks: list[np.ndarray],
        lab: np.ndarray,
        roi: _Roi,
        prompt: Prompt,
        width: int,
        height: int,
        cancel: CancelToken | None,
    ) -> list[Candidate]:
        kept: list[tuple[np.ndarray, float]] = []
        for m in masks:
            if not m.any() or any(_iou(m, other) > 0.97 for other, _ in kept):
                continue
            kept.append((m, _separation(lab, m)))
        if not prompt.multimask:
            kept = kept[:1]
        out: list[Candidate] = []
        cw, ch = roi.x1 - roi.x0, roi.y1 - roi.y0
        for m, score in kept:
            check(cancel)
            full = np.zeros((height, width), dtype=bool)
            if roi.scale == 1.0:
                full[roi.y0 : roi.y1, roi.x0 : roi.x1] = m
            else:
                up = cv2.resize(m.astype(np.uint8) * 255, (cw, ch), interpolation=cv2.INTER_LINEAR)
                full[roi.y0 : roi.y1, roi.x0 : roi.x1] = up > 127
            ys, xs = np.nonzero(m)
            box = (
                roi.x0 + xs.min() / roi.scale,
                roi.y0 + ys.min() / roi.scale,
                roi.x0 + (xs.max() + 1) / roi.scale,
                roi.y0 + (ys.max() + 1) / roi.scale,
            )
            out.append(
                Candidate(
                    mask=full,
                    score=score,
                    box=float_box(box),
                    low_res_logits=_low_res_from_roi(m, roi, width=width, height=height),
                )
            )
        return out


def _low_res_from_roi(mask: np.ndarray, roi: _Roi, *, width: int, height: int) -> np.ndarray:
    """:func:`mask_to_low_res` of the full mask, computed from the small crop mask alone."""
    sx, sy = LOW_RES / width, LOW_RES / height
    x0, y0 = round(roi.x0 * sx), round(roi.y0 * sy)
    x1, y1 = max(x0 + 1, round(roi.x1 * sx)), max(y0 + 1, round(roi.y1 * sy))
    grid = np.zeros((LOW_RES, LOW_RES), dtype=np.float32)
    grid[y0:y1, x0:x1] = cv2.resize(mask.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return (grid * 2.0 - 1.0) * 8.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
