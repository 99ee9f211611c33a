"""What the local SAM backends (``sam2``, ``langsam``, ``sam3``) share.

* :class:`CachedEmbeddingBackend`: one image embedding per image in a
  :class:`~inference.lru.ByteBoundedLRU` keyed by content, the encoder's cancel hooks, and the
  load steps before the model (weights first, then the device and CPU threads).
* Geometry prompts (points ±, a box) as the arrays the decoders take, and their multimask
  outputs as a ranked :class:`~inference.results.Prediction` of alternatives.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from inference.backends.base import DEFAULT_CACHE_BYTES, SegmentationBackend
from inference.cancel import CancelToken, check
from inference.errors import ImageLoadError
from inference.images import ImageSource
from inference.lru import ByteBoundedLRU
from inference.prompts import Prompt
from inference.results import Candidate, Prediction, PredictionKind, float_box

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.hooks import RemovableHandle

E = TypeVar("E")


def as_rgb_image(image: Any) -> np.ndarray:
    """An (H, W, 3) uint8 array, converting other array layouts; clear error otherwise."""
    if not isinstance(image, np.ndarray):
        raise ImageLoadError(f"expected the image as a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image
    from inference.images import load_image

    return load_image(image)


class CachedEmbeddingBackend(SegmentationBackend, Generic[E]):
    """A local backend that encodes each image once and caches the result (``E``) by content key.

    Subclasses implement :meth:`embedding` (cached lookup, encoding on a miss) and install their
    encoder's cancel hooks with :meth:`_add_cancel_hooks`."""

    def __init__(
        self,
        *,
        device: str = "auto",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        model_id: str,
        checkpoint: str | Path | None = None,
        cpu_threads: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(device=device, cache_bytes=cache_bytes, **options)
        self.model_id = model_id
        self.checkpoint = checkpoint
        self.cpu_threads = cpu_threads
        self.device = "cpu"
        self.device_reason = "not loaded yet"
        self.embeddings: ByteBoundedLRU[E] = ByteBoundedLRU(max_bytes=cache_bytes)
        self.encoder_runs = 0  # how many times the image encoder really ran (tests, benchmarks)
        self._cancel: CancelToken | None = None  # read by the encoder's forward pre-hooks
        self._hooks: list[RemovableHandle] = []

    # -- lifecycle -------------------------------------------------------------------------
    def _prepare_load(self) -> Path:
        """The weights (before torch: missing weights say so at once), then the device and CPU threads."""
        from inference.weights.store import resolve_weights

        path = resolve_weights(self.model_id, self.checkpoint)
        from inference.device import configure_cpu_threads, resolve_device

        choice = resolve_device(self.device_preference)
        self.device, self.device_reason = choice.device, choice.reason
        configure_cpu_threads(self.cpu_threads)
        return path

    def _add_cancel_hooks(self, modules: Iterable[Any]) -> None:
        """A forward pre-hook on each module that raises Cancelled once the running call's token is set."""

        def hook(_module: Any, _inputs: Any) -> None:
            check(self._cancel)

        for module in modules:
            self._hooks.append(module.register_forward_pre_hook(hook))

    def unload(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        self.embeddings.clear()
        super().unload()

    # -- embeddings ------------------------------------------------------------------------
    def is_encoded(self, image_key: str) -> bool:
        return image_key in self.embeddings

    def encode(
        self,
        image: np.ndarray,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> str:
        image = as_rgb_image(image)
        key = image_key or self.image_key(image)
        self.embedding(image, key, cancel=cancel)
        return key

    @abc.abstractmethod
    def embedding(self, image: np.ndarray, key: str, *, cancel: CancelToken | None = None) -> E:
        """The cached embedding of ``image`` (content key ``key``), computing it on a miss."""


def geometry_arrays(prompt: Prompt) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """A geometry prompt as the decoders take it: point coords (N, 2) float32, labels (N,) int32
    (1 positive, 0 negative) and the box (4,) float32 xyxy; ``None`` for what the prompt lacks."""
    coords = labels = None
    if prompt.points:
        coords = np.array([[p.x, p.y] for p in prompt.points], dtype=np.float32)
        labels = np.array([1 if p.positive else 0 for p in prompt.points], dtype=np.int32)
    box = np.array(prompt.box.as_xyxy(), dtype=np.float32) if prompt.box is not None else None
    return coords, labels, box


def candidate_box(mask: np.ndarray, prompt: Prompt) -> tuple[float, float, float, float]:
    """The prompt's box if any, else the mask's bounding box, else the points' bounding box."""
    if prompt.box is not None:
        return float_box(prompt.box.as_xyxy())
    from inference.masks import mask_bbox

    bbox = mask_bbox(mask)
    if bbox is not None:
        return float_box(bbox)
    xs = [p.x for p in prompt.points]
    ys = [p.y for p in prompt.points]
    return (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))


def alternatives_prediction(
    prompt: Prompt,
    *,
    masks: np.ndarray,
    scores: np.ndarray,
    low_res: np.ndarray,
    key: str,
    backend: str,
    model: str,
    image_size: tuple[int, int],
    hit: bool,
    start: float,
    encoded: float,
    decoded: float,
) -> Prediction:
    """A multimask decoder's outputs (masks (K, H, W), scores (K,), low-res logits (K, h, w)) as
    alternatives, best score first, with the encode/decode timings (perf_counter marks)."""
    candidates = []
    for i in np.argsort(-scores, kind="stable"):
        mask = masks[i].astype(bool, copy=False)
        candidates.append(
            Candidate(
                mask=mask,
                score=float(scores[i]),
                box=candidate_box(mask, prompt),
                low_res_logits=low_res[i].astype(np.float32, copy=False),
            )
        )
    timings = {
        "encode": 0.0 if hit else encoded - start,
        "decode": decoded - encoded,
        "total": time.perf_counter() - start,
        "embedding_cached": float(hit),
    }
    return Prediction(
        candidates=tuple(candidates),
        kind=PredictionKind.ALTERNATIVES,
        image_key=key,
        backend=backend,
        model=model,
        image_size=image_size,
        timings=MappingProxyType(timings),
    )
