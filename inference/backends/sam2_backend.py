"""SAM 2.1 for points, boxes and mask refinement, with the image embedding cached per image.

The image encoder (seconds on a CPU) runs once per image; every further click only runs the
prompt encoder and mask decoder (tens of milliseconds) on the cached embedding. Embeddings live
in a :class:`~inference.lru.ByteBoundedLRU` keyed by the image's content hash
(:func:`inference.images.image_key`), see ``docs/adr/0006-model-caching.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.backends.base import DEFAULT_CACHE_BYTES
from inference.backends.common import (
    CachedEmbeddingBackend,
    alternatives_prediction,
    as_rgb_image,
    geometry_arrays,
)
from inference.backends.registry import register_backend
from inference.cancel import CancelToken, check
from inference.errors import PromptError
from inference.images import ImageSource
from inference.prompts import Prompt
from inference.results import BackendInfo, Prediction

if TYPE_CHECKING:  # pragma: no cover
    pass

DEFAULT_SAM2_MODEL = "sam2.1_hiera_small"


@dataclass(frozen=True, kw_only=True, eq=False)
class ImageEmbedding:
    """What SAM 2's decoder needs from one image (the output of ``SAM2ImagePredictor.set_image``)."""

    features: dict[str, Any]  # {"image_embed": (1,256,64,64), "high_res_feats": [(1,32,256,256), (1,64,128,128)]}
    height: int
    width: int
    nbytes: int
    seconds: float  # how long the encoder took


@register_backend
class Sam2Backend(CachedEmbeddingBackend[ImageEmbedding]):
    """Points (+/-), a box and previous low-res logits -> up to three alternative masks."""

    name = "sam2"
    supports_text = False
    supports_points = True
    postprocessing = True  # build_sam2's dynamic multimask fallback (interactive use)

    def __init__(
        self,
        *,
        device: str = "auto",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        model: str = DEFAULT_SAM2_MODEL,
        checkpoint: str | Path | None = None,
        cpu_threads: int | None = None,
        **options: Any,
    ) -> None:
        from inference.sam2_model import sam2_model_id

        super().__init__(
            device=device,
            cache_bytes=cache_bytes,
            model_id=sam2_model_id(model),
            checkpoint=checkpoint,
            cpu_threads=cpu_threads,
            **options,
        )
        # sam2's SAM2Base and SAM2ImagePredictor once loaded (sam2 is untyped: Any)
        self.sam_model: Any = None
        self.predictor: Any = None

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        path = self._prepare_load()
        from inference.sam2_model import apply_exact_encoder_speedups, build_sam2_model

        self.sam_model = build_sam2_model(
            self.model_id, checkpoint=path, device=self.device, postprocessing=self.postprocessing
        )
        apply_exact_encoder_speedups(self.sam_model)
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.predictor = SAM2ImagePredictor(self.sam_model)
        self._install_cancel_hooks()
        self._loaded = True

    def unload(self) -> None:
        super().unload()
        self.sam_model = None
        self.predictor = None

    def info(self) -> BackendInfo:
        return BackendInfo(
            backend=self.name,
            model=self.model_id,
            device=self.device,
            device_reason=self.device_reason,
            supports_text=self.supports_text,
            supports_points=self.supports_points,
        )

    def _install_cancel_hooks(self) -> None:
        encoder = self.sam_model.image_encoder
        self._add_cancel_hooks([*encoder.trunk.blocks, encoder.neck])

    # -- embeddings ------------------------------------------------------------------------
    def embedding(self, image: np.ndarray, key: str, *, cancel: CancelToken | None = None) -> ImageEmbedding:
        """The cached embedding of ``image`` (content key ``key``), computing it on a miss."""
        cached = self.embeddings.get(key)
        if cached is not None:
            return cached
        self.ensure_loaded()
        check(cancel)
        from inference.device import inference_context

        start = time.perf_counter()
        self._cancel = cancel
        try:
            with inference_context(self.device):
                self.predictor.set_image(image)
        finally:
            self._cancel = None
        features = self.predictor._features  # set_image's result (sam2 1.1.0 keeps it here)
        self.predictor.reset_predictor()
        self.encoder_runs += 1
        tensors = [features["image_embed"], *features["high_res_feats"]]
        nbytes = sum(t.numel() * t.element_size() for t in tensors)
        entry = ImageEmbedding(
            features=features,
            height=int(image.shape[0]),
            width=int(image.shape[1]),
            nbytes=nbytes,
            seconds=time.perf_counter() - start,
        )
        self.embeddings.put(key, entry, nbytes=nbytes)
        return entry

    def decode(
        self,
        entry: ImageEmbedding,
        *,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``SAM2ImagePredictor.predict`` on a cached embedding: (masks, iou, low_res_logits)."""
        from inference.device import inference_context

        predictor = self.predictor
        predictor._features = entry.features
        predictor._orig_hw = [(entry.height, entry.width)]
        predictor._is_image_set = True
        predictor._is_batch = False
        try:
            with inference_context(self.device):
                result: tuple[np.ndarray, np.ndarray, np.ndarray] = predictor.predict(
                    point_coords=point_coords,
                    point_labels=point_labels,
                    box=box,
                    mask_input=mask_input,
                    multimask_output=multimask,
                )
                return result
        finally:
            predictor.reset_predictor()

    # -- prompts ---------------------------------------------------------------------------
    def predict(
        self,
        image: np.ndarray,
        prompt: Prompt,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> Prediction:
        image = as_rgb_image(image)
        height, width = int(image.shape[0]), int(image.shape[1])
        prompt.validate(width=width, height=height)
        if prompt.is_text:
            raise PromptError(
                f"the '{self.name}' backend answers points and boxes, not text; "
                "choose the 'langsam' backend for text prompts",
                field="text",
            )
        check(cancel)
        return self._predict_geometry(image, prompt, key=image_key or self.image_key(image), cancel=cancel)

    def _predict_geometry(
        self, image: np.ndarray, prompt: Prompt, *, key: str, cancel: CancelToken | None
    ) -> Prediction:
        start = time.perf_counter()
        hit = self.is_encoded(key)
        entry = self.embedding(image, key, cancel=cancel)
        encoded = time.perf_counter()
        check(cancel)
        coords, labels, box = geometry_arrays(prompt)
        mask_input = None
        if prompt.mask_input is not None:
            mask_input = np.asarray(prompt.mask_input, dtype=np.float32).reshape(1, 256, 256)
        masks, scores, low_res = self.decode(
            entry, point_coords=coords, point_labels=labels, box=box, mask_input=mask_input, multimask=prompt.multimask
        )
        decoded = time.perf_counter()
        return alternatives_prediction(
            prompt,
            masks=masks,
            scores=scores,
            low_res=low_res,
            key=key,
            backend=self.name,
            model=self.model_id,
            image_size=(entry.height, entry.width),
            hit=hit,
            start=start,
            encoded=encoded,
            decoded=decoded,
        )
