"""Lang-SAM: text -> Grounding DINO boxes -> SAM 2 masks; geometry prompts go to its SAM 2.

Per image it keeps the SAM 2 embedding (see :mod:`inference.backends.sam2_backend`) and the
Grounding DINO pixel inputs; Grounding DINO's Swin backbone output is cached by
:class:`inference.gdino_model.BackboneCache`, so a second text prompt on the same image skips
both image encoders. SAM 2 is built the Lang-SAM way (no ``build_sam2`` post-processing).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.backends.base import DEFAULT_CACHE_BYTES
from inference.backends.common import as_rgb_image
from inference.backends.registry import register_backend
from inference.backends.sam2_backend import DEFAULT_SAM2_MODEL, ImageEmbedding, Sam2Backend
from inference.cancel import CancelToken, check
from inference.errors import BackendUnavailableError
from inference.gdino_model import Detections, GroundingDino
from inference.images import ImageSource
from inference.lru import ByteBoundedLRU
from inference.prompts import Prompt, normalise_text
from inference.results import BackendInfo, Candidate, Prediction, PredictionKind, float_box

if TYPE_CHECKING:  # pragma: no cover
    import torch

GDINO_MODELS = ("grounding-dino-tiny", "grounding-dino-base")
DEFAULT_GDINO_MODEL = "grounding-dino-tiny"
# Boxes decoded per SAM call. Lang-SAM decodes all boxes of an image in one call; up to this many
# we do the same, so masks and scores are bit-identical to Lang-SAM (batch size changes the
# reduction order of the decoder's matrix products, so chunking would not be). More boxes are
# decoded in chunks of this size to bound memory (SAM repeats the image features per box, some
# tens of MB each at the peak): those agree with one call within float rounding only.
SAM_BOX_BATCH = 32
PIXEL_CACHE_BYTES = 200_000_000
# Grounding DINO modules (transformers) before which a cancelled request stops
GDINO_CANCEL_POINTS = frozenset({"SwinLayer", "BertLayer", "GroundingDinoEncoderLayer", "GroundingDinoDecoderLayer"})


def select_indices(
    dets: Detections,
    *,
    width: int,
    height: int,
    clip: bool = True,
    nms_iou: float | None = None,
    max_detections: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Which detections to keep, best first, and all boxes clipped to the image (if ``clip``).

    Boxes that become empty when clipped are dropped; optional NMS on the clipped boxes; at
    most ``max_detections``. Returns (indices into ``dets``, (N, 4) float32 boxes).
    """
    boxes, scores = dets.boxes.astype(np.float32, copy=True).reshape(-1, 4), dets.scores
    keep = np.arange(len(scores))
    if clip and len(scores):
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        keep = np.flatnonzero((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
    if nms_iou is not None and len(keep):
        import torch
        from torchvision.ops import nms

        order = nms(
            torch.from_numpy(boxes[keep]), torch.from_numpy(np.ascontiguousarray(scores[keep])), float(nms_iou)
        ).numpy()
    else:
        order = np.argsort(-scores[keep], kind="stable")
    if max_detections is not None:
        order = order[:max_detections]
    return keep[order], boxes


def select_detections(
    dets: Detections,
    *,
    width: int,
    height: int,
    clip: bool = True,
    nms_iou: float | None = None,
    max_detections: int | None = None,
) -> Detections:
    """Clip boxes to the image, drop boxes that become empty, optional NMS, keep the best N.

    The result is ordered by decreasing score.
    """
    index, boxes = select_indices(
        dets, width=width, height=height, clip=clip, nms_iou=nms_iou, max_detections=max_detections
    )
    return Detections(
        boxes=boxes[index].reshape(-1, 4),
        scores=dets.scores[index].reshape(-1),
        labels=tuple(dets.labels[i] for i in index),
    )


@register_backend
class LangSamBackend(Sam2Backend):
    """Text prompts ("car. person.") -> one mask per detection; points/boxes as ``sam2``."""

    name = "langsam"
    supports_text = True
    postprocessing = False  # exactly Lang-SAM's SAM 2 (hydra compose + instantiate, no overrides)

    def __init__(
        self,
        *,
        device: str = "auto",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        model: str = DEFAULT_SAM2_MODEL,
        checkpoint: str | Path | None = None,
        cpu_threads: int | None = None,
        gdino_model: str = DEFAULT_GDINO_MODEL,
        gdino_path: str | Path | None = None,
        gdino_processor_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            device=device,
            cache_bytes=cache_bytes,
            model=model,
            checkpoint=checkpoint,
            cpu_threads=cpu_threads,
            **options,
        )
        if gdino_model not in GDINO_MODELS:
            raise BackendUnavailableError(
                f"unknown Grounding DINO model '{gdino_model}': choose one of {', '.join(GDINO_MODELS)}"
            )
        self.gdino_model_id = gdino_model
        self.gdino_path = gdino_path
        self.gdino_processor_path = gdino_processor_path
        self.gdino: GroundingDino | None = None
        self.pixel_inputs: ByteBoundedLRU[dict[str, torch.Tensor]] = ByteBoundedLRU(max_bytes=PIXEL_CACHE_BYTES)

    def load(self) -> None:
        from inference.weights.store import resolve_weights

        folder = resolve_weights(self.gdino_model_id, self.gdino_path)
        super().load()
        self.gdino = GroundingDino(directory=folder, processor_directory=self.gdino_processor_path, device=self.device)
        self._install_gdino_cancel_hooks()

    def _install_gdino_cancel_hooks(self) -> None:
        """Check the cancel token before each backbone, text, encoder and decoder layer, so a
        superseded text prompt (or closing the app) stops a forward of several seconds promptly."""
        assert self.gdino is not None  # called by load() once Grounding DINO is there
        self._add_cancel_hooks(m for m in self.gdino.model.modules() if type(m).__name__ in GDINO_CANCEL_POINTS)

    def unload(self) -> None:
        self.gdino = None
        self.pixel_inputs.clear()
        super().unload()

    def info(self) -> BackendInfo:
        base = super().info()
        return type(base)(
            backend=base.backend,
            model=f"{self.gdino_model_id} + {self.model_id}",
            device=base.device,
            device_reason=base.device_reason,
            supports_text=True,
            supports_points=True,
        )

    # -- text ------------------------------------------------------------------------------
    def text_token_limit(self) -> int | None:
        return self.gdino.max_text_len if self.gdino is not None else None

    def count_text_tokens(self, text: str) -> int | None:
        return self.gdino.count_tokens(text) if self.gdino is not None else None

    def detect(
        self,
        images: list[np.ndarray],
        texts: list[str],
        *,
        keys: list[str] | None = None,
        box_threshold: float = 0.3,
        text_threshold: float = 0.25,
        cancel: CancelToken | None = None,
    ) -> list[Detections]:
        """Raw Grounding DINO detections (Lang-SAM semantics: no clipping, NMS or cap).

        Several images go through one batched forward (as Lang-SAM does); a single image reuses
        its cached pixel inputs. ``texts`` are used as given (normalise them first).
        """
        self.ensure_loaded()
        gdino = self.gdino
        assert gdino is not None  # ensure_loaded() loaded it
        from inference.device import inference_context

        pixel_inputs = None
        if len(images) == 1:
            key = keys[0] if keys else self.image_key(images[0])
            pixel_inputs = self.pixel_inputs.get(key)
            if pixel_inputs is None:
                pixel_inputs = gdino.preprocess_images(images)
                nbytes = sum(t.numel() * t.element_size() for t in pixel_inputs.values())
                self.pixel_inputs.put(key, pixel_inputs, nbytes=nbytes)
        self._cancel = cancel
        try:
            with inference_context(self.device):
                return gdino.detect(
                    images, texts, box_threshold=box_threshold, text_threshold=text_threshold, pixel_inputs=pixel_inputs
                )
        finally:
            self._cancel = None

    def masks_for_boxes(
        self, entry: ImageEmbedding, boxes: np.ndarray, *, cancel: CancelToken | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One SAM 2 mask per box (``multimask_output=False``): (N,H,W) bool, (N,), (N,256,256)."""
        n = int(boxes.shape[0])
        if n == 0:
            return (
                np.zeros((0, entry.height, entry.width), bool),
                np.zeros((0,), np.float32),
                np.zeros((0, 256, 256), np.float32),
            )
        masks, scores, logits = [], [], []
        for start in range(0, n, SAM_BOX_BATCH):
            check(cancel)
            chunk = boxes[start : start + SAM_BOX_BATCH]
            m, s, lg = self.decode(entry, box=chunk, multimask=False)
            # one box: (1,H,W), (1,), (1,256,256); several: (B,1,H,W), (B,1), (B,1,256,256)
            masks.append(m.reshape(len(chunk), entry.height, entry.width).astype(bool))
            scores.append(s.reshape(len(chunk)))
            logits.append(lg.reshape(len(chunk), 256, 256))
        return np.concatenate(masks), np.concatenate(scores), np.concatenate(logits)

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
        key = image_key or self.image_key(image)
        check(cancel)
        if not prompt.is_text:
            return self._predict_geometry(image, prompt, key=key, cancel=cancel)
        start = time.perf_counter()
        assert prompt.text is not None  # prompt.is_text
        text = normalise_text(prompt.text)
        self.check_text_tokens(text)  # Grounding DINO reads 256 tokens: a longer prompt is a 400, not a crash
        raw = self.detect(
            [image],
            [text],
            keys=[key],
            box_threshold=prompt.box_threshold,
            text_threshold=prompt.text_threshold,
            cancel=cancel,
        )[0]
        detected = time.perf_counter()
        check(cancel)
        index, clipped = select_indices(
            raw, width=width, height=height, clip=True, nms_iou=prompt.nms_iou, max_detections=prompt.max_detections
        )
        hit = self.is_encoded(key)
        encode_seconds = 0.0
        candidates: list[Candidate] = []
        if len(index):
            entry = self.embedding(image, key, cancel=cancel)
            encode_seconds = 0.0 if hit else entry.seconds
            # SAM gets the boxes as detected (Lang-SAM does not clip them); the answer shows them clipped
            masks, scores, logits = self.masks_for_boxes(entry, raw.boxes[index].reshape(-1, 4), cancel=cancel)
            for i, j in enumerate(index):
                candidates.append(
                    Candidate(
                        mask=masks[i].astype(bool, copy=False),
                        score=float(scores[i]),
                        box=float_box(clipped[j]),
                        label=raw.labels[j],
                        box_score=float(raw.scores[j]),
                        low_res_logits=logits[i],
                    )
                )
        timings = {
            "detect": detected - start,
            "encode": encode_seconds,
            "total": time.perf_counter() - start,
            "embedding_cached": float(hit),
            "detections_before_selection": float(len(raw)),
        }
        return Prediction(
            candidates=tuple(candidates),
            kind=PredictionKind.INSTANCES,
            image_key=key,
            backend=self.name,
            model=f"{self.gdino_model_id} + {self.model_id}",
            image_size=(height, width),
            timings=MappingProxyType(timings),
        )
