"""What a backend returns: frozen dataclasses, full-resolution boolean masks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

import numpy as np


class PredictionKind(str, Enum):
    """How the candidates of one prediction relate to each other."""

    ALTERNATIVES = "alternatives"  # several guesses for ONE object (SAM multimask): pick one
    INSTANCES = "instances"  # separate objects (text detections): keep each


def float_box(values: Iterable[Any]) -> tuple[float, float, float, float]:
    """The four xyxy values of a box (numbers, NumPy scalars, a row of an (N, 4) array) as floats."""
    x0, y0, x1, y1 = (float(v) for v in values)
    return (x0, y0, x1, y1)


@dataclass(frozen=True, kw_only=True, eq=False)
class Candidate:
    """One mask. ``mask`` is (H, W) bool at the image's full resolution."""

    mask: np.ndarray = field(repr=False)
    score: float  # the mask's predicted quality (SAM's IoU estimate); 1.0 when unknown
    box: tuple[float, float, float, float]  # xyxy pixels: the prompt box, detection box or mask bbox
    label: str | None = None  # the matched phrase for text prompts
    box_score: float | None = None  # detection confidence for text prompts
    low_res_logits: np.ndarray | None = field(default=None, repr=False)  # (256, 256) float32


@dataclass(frozen=True, kw_only=True, eq=False)
class Prediction:
    candidates: tuple[Candidate, ...]
    kind: PredictionKind
    image_key: str
    backend: str
    model: str
    image_size: tuple[int, int]  # (height, width)
    timings: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    messages: tuple[str, ...] = ()  # notes for a person, e.g. "the text was cut to 32 tokens"

    @property
    def best(self) -> Candidate | None:
        """Highest-scoring candidate, or ``None`` when nothing was found."""
        if not self.candidates:
            return None
        return max(self.candidates, key=lambda c: c.score)


@dataclass(frozen=True, kw_only=True)
class BackendInfo:
    """What the status bar and the server report about a running backend."""

    backend: str
    model: str
    device: str
    device_reason: str  # e.g. "CUDA not available: torch was built without CUDA"
    supports_text: bool
    supports_points: bool
    supports_exemplars: bool = False  # takes Prompt.exemplars (SAM 3)
    where: str = ""  # a remote backend's place ("server http://gpu:8765"); '' when it runs here
