"""What a person asks for: points, a box, text, previous logits, and the options of one request."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from inference.errors import PromptError

COORDINATE_DECIMALS = 2  # a hundredth of a pixel: finer than any click or drag


def pixel_coordinate(value: float) -> float:
    """A prompt coordinate as a person's click or drag gives it: rounded to a hundredth of a
    pixel (a mouse position mapped through the view's zoom has 16 meaningless digits, which a
    remote click would otherwise carry: ~40 bytes per number)."""
    return round(float(value), COORDINATE_DECIMALS)


@dataclass(frozen=True, kw_only=True)
class Point:
    """A click in image pixels; ``positive=False`` marks background."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True, kw_only=True)
class Box:
    """An axis-aligned box in image pixels, ``x0 <= x1`` and ``y0 <= y1``."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def from_corners(cls, ax: float, ay: float, bx: float, by: float) -> Box:
        """A box from two opposite corners dragged in any direction."""
        return cls(x0=min(ax, bx), y0=min(ay, by), x1=max(ax, bx), y1=max(ay, by))

    def as_xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def rounded(self) -> Box:
        """Corners rounded like :func:`pixel_coordinate` (a drawn box)."""
        x0, y0, x1, y1 = (pixel_coordinate(v) for v in self.as_xyxy())
        return Box(x0=x0, y0=y0, x1=x1, y1=y1)

    def clipped(self, *, width: int, height: int) -> Box:
        return Box(
            x0=min(max(self.x0, 0.0), width),
            y0=min(max(self.y0, 0.0), height),
            x1=min(max(self.x1, 0.0), width),
            y1=min(max(self.y1, 0.0), height),
        )


@dataclass(frozen=True, kw_only=True)
class Exemplar:
    """An example box for concept prompts (SAM 3): "things like this" (``positive``) or "not
    like this" (``positive=False``). Unlike :attr:`Prompt.box`, which outlines ONE object to
    segment, exemplars ask for every instance of the concept they show."""

    box: Box
    positive: bool = True


# The defaults of a text prompt, in ONE place: the GUI prompt bar, the batch dialog, the canvas
# controller, the segment CLI and the wire protocol (an omitted option means this) all read them.
DEFAULT_BOX_THRESHOLD = 0.3  # Grounding DINO's usual detection cut-off
DEFAULT_TEXT_THRESHOLD = 0.25  # Grounding DINO's usual phrase-match cut-off
# At most this many detections per image: what the app's prompt bar has always offered. Every
# detection costs a SAM 2 decoder run and a full-resolution mask (12 MB for a 12 MP photo), so 50
# keeps a crowded image within memory while far above what a box threshold of 0.3 usually leaves.
DEFAULT_MAX_DETECTIONS = 50


@dataclass(frozen=True, kw_only=True, eq=False)
class Prompt:
    """One request. Geometry prompts (points/box) and text prompts are both expressed here.

    ``mask_input`` is the previous prediction's low-resolution logits (256x256 float32), fed
    back so that each click refines the current mask.
    """

    points: tuple[Point, ...] = ()
    box: Box | None = None
    text: str | None = None
    mask_input: np.ndarray | None = field(default=None, repr=False)
    multimask: bool = True
    box_threshold: float = DEFAULT_BOX_THRESHOLD
    text_threshold: float = DEFAULT_TEXT_THRESHOLD
    max_detections: int = DEFAULT_MAX_DETECTIONS
    nms_iou: float | None = None
    exemplars: tuple[Exemplar, ...] = ()  # concept example boxes (backends that support them: sam3)

    @property
    def is_text(self) -> bool:
        return self.text is not None

    @property
    def is_concept(self) -> bool:
        """Text and/or exemplar boxes: find every instance (not one object from clicks)."""
        return self.text is not None or bool(self.exemplars)

    @property
    def has_geometry(self) -> bool:
        return bool(self.points) or self.box is not None

    def validate(
        self, *, width: int, height: int, allow_exemplars: bool = False, mask_input_size: int | None = 256
    ) -> None:
        """Raise :class:`PromptError` naming the field if the prompt cannot be run on this image.

        Exemplars are refused unless the backend says it takes them (``allow_exemplars``);
        ``mask_input_size`` is the side of the square logits the backend takes back (``None``:
        any square size, the backend resizes).
        """
        if self.exemplars and not allow_exemplars:
            raise PromptError(
                "this backend does not take exemplar boxes; choose the 'sam3' backend for prompts by example",
                field="exemplars",
            )
        for i, ex in enumerate(self.exemplars):
            name = f"exemplars[{i}]"
            if not isinstance(ex, Exemplar) or not isinstance(ex.box, Box):
                raise PromptError(f"{name} must be an Exemplar with a Box", field=name)
            coords = ex.box.as_xyxy()
            if not all(isinstance(c, (int, float)) and math.isfinite(c) for c in coords):
                raise PromptError(f"{name}: box coordinates must be finite numbers", field=name)
            if ex.box.x1 <= ex.box.x0 or ex.box.y1 <= ex.box.y0:
                raise PromptError(f"{name}: box {coords} is empty (need x0 < x1 and y0 < y1)", field=name)
            if ex.box.x1 <= 0 or ex.box.y1 <= 0 or ex.box.x0 >= width or ex.box.y0 >= height:
                raise PromptError(f"{name}: box {coords} lies outside the {width}x{height} image", field=name)
        for name in ("box_threshold", "text_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
                raise PromptError(f"{name} must be a number between 0 and 1, got {value!r}", field=name)
        if self.nms_iou is not None and (math.isnan(self.nms_iou) or not 0.0 < self.nms_iou <= 1.0):
            raise PromptError(f"nms_iou must be in (0, 1], got {self.nms_iou!r}", field="nms_iou")
        if not isinstance(self.max_detections, int) or self.max_detections < 1:
            raise PromptError(
                f"max_detections must be a positive integer, got {self.max_detections!r}",
                field="max_detections",
            )
        if self.text is not None:
            if not normalise_text(self.text):
                raise PromptError("the text prompt is empty: type what to segment, e.g. 'car. person.'", field="text")
        elif not self.has_geometry and not self.exemplars:
            raise PromptError("the prompt has no points, box or text", field="points")
        for i, p in enumerate(self.points):
            if not (math.isfinite(p.x) and math.isfinite(p.y)) or not (0 <= p.x <= width and 0 <= p.y <= height):
                raise PromptError(
                    f"point {i} ({p.x}, {p.y}) is outside the {width}x{height} image", field=f"points[{i}]"
                )
        if self.box is not None:
            b = self.box
            coords = b.as_xyxy()
            if not all(math.isfinite(c) for c in coords):
                raise PromptError("box coordinates must be finite numbers", field="box")
            if b.x1 <= b.x0 or b.y1 <= b.y0:
                raise PromptError(f"box {coords} is empty (need x0 < x1 and y0 < y1)", field="box")
            if b.x1 <= 0 or b.y1 <= 0 or b.x0 >= width or b.y0 >= height:
                raise PromptError(f"box {coords} lies outside the {width}x{height} image", field="box")
        if (
            self.mask_input is not None
            and mask_input_size is not None
            and (tuple(self.mask_input.shape[-2:]) != (mask_input_size, mask_input_size))
        ):
            raise PromptError(
                f"mask_input must be {mask_input_size}x{mask_input_size} low-resolution logits, "
                f"got shape {self.mask_input.shape}",
                field="mask_input",
            )
        if (
            self.mask_input is not None
            and mask_input_size is None
            and (
                self.mask_input.ndim < 2
                or self.mask_input.shape[-1] != self.mask_input.shape[-2]
                or self.mask_input.shape[-1] < 4
                or self.mask_input.size != self.mask_input.shape[-1] ** 2
            )
        ):
            raise PromptError(
                f"mask_input must be square low-resolution logits, got shape {self.mask_input.shape}",
                field="mask_input",
            )


MAX_TEXT_CHARS = 1000


def normalise_text(text: str) -> str:
    """Lang-SAM's convention: lower-case, trimmed, ending with '.' ("car. person.").

    Returns '' for an empty or whitespace-only prompt.
    """
    if not isinstance(text, str):
        raise PromptError(f"the text prompt must be a string, got {type(text).__name__}", field="text")
    cleaned = " ".join(text.strip().lower().split())
    if not cleaned.strip(" ."):
        return ""
    if len(cleaned) > MAX_TEXT_CHARS:
        raise PromptError(f"the text prompt is longer than {MAX_TEXT_CHARS} characters", field="text")
    if not cleaned.endswith("."):
        cleaned += "."
    return cleaned
