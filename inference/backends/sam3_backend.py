"""SAM 3: every instance of a concept (text phrases and/or exemplar boxes), or one object from
clicks/a box, with ONE cached image embedding per image for all prompt kinds.

* Concept prompts (``Prompt.text`` — one or several phrases, "car. person." — and/or
  ``Prompt.exemplars`` — positive/negative example boxes) run SAM 3's detector once per phrase on
  the cached vision features; every detection is labelled with its phrase (``None`` for
  exemplar-only prompts). Score = sigmoid(class logit) × sigmoid(presence logit), kept when
  above ``Prompt.box_threshold``; optional mask NMS (``Prompt.nms_iou``); at most
  ``Prompt.max_detections``; masks thresholded at the backend's ``mask_threshold``.
  ``Prompt.text_threshold`` has no meaning for SAM 3 and is ignored.
* Geometry prompts (points ±, a box, previous logits in ``Prompt.mask_input``) run SAM 3's
  tracker decoder (tens of ms) and give up to three alternatives, like the ``sam2`` backend.
  The low-res logits are (288, 288) for the published model (4 × the ViT grid), not SAM 2's 256.

The image is encoded once (the ViT, tens of seconds on a CPU) into a
:class:`~inference.sam3_model.Sam3ImageState` holding the detector's FPN features and the
tracker's embedding, cached in a :class:`~inference.lru.ByteBoundedLRU` by content key
(``docs/adr/0006-model-caching.md``). ``encode()`` prefetches; a :class:`CancelToken` is checked
between steps and before every ViT layer (forward pre-hooks); a cancelled encode caches nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
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
from inference.prompts import Prompt, normalise_text
from inference.results import BackendInfo, Candidate, Prediction, PredictionKind, float_box

if TYPE_CHECKING:  # pragma: no cover
    from inference.sam3_model import Sam3ImageState, Sam3Runtime

log = logging.getLogger(__name__)

DEFAULT_SAM3_MODEL = "sam3"
DEFAULT_MASK_THRESHOLD = 0.5  # on sigmoid(mask logits), as Sam3Processor.post_process_instance_segmentation
PUBLISHED_MASK_INPUT_SIZE = 288  # facebook/sam3's low-res logits (tiny test checkpoints: smaller)
MASK_CHUNK = 8  # detections upsampled to full resolution at a time (bounds float32 scratch memory)


@dataclass(frozen=True, kw_only=True, eq=False)
class Sam3Detections:
    """Concept-prompt results as arrays, best first. Shapes hold for N = 0 too:
    masks (N, H, W) bool, scores (N,), boxes (N, 4) xyxy pixels, logits (N, h, w) float32."""

    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    labels: tuple[str | None, ...]
    logits: np.ndarray
    messages: tuple[str, ...] = ()
    before_selection: int = 0


def split_phrases(text: str | None) -> list[str]:
    """ "Car. Red person." -> ["car", "red person"] (normalised, de-duplicated, in order)."""
    if text is None:
        return []
    phrases: list[str] = []
    for part in normalise_text(text).split("."):
        phrase = part.strip(" ,;")
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    return phrases


def mask_nms(masks: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS on (N, h, w) bool masks: indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    if len(order) == 0:
        return order
    flat = masks.reshape(len(masks), -1).astype(np.float32)
    inter = flat @ flat.T
    area = flat.sum(axis=1)
    union = area[:, None] + area[None, :] - inter
    ious = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= ious[i] > iou
    return np.array(keep, dtype=np.int64)


@register_backend
class Sam3Backend(CachedEmbeddingBackend["Sam3ImageState"]):
    """Text phrases / exemplar boxes -> instances; points / box -> up to three alternatives."""

    name = "sam3"
    supports_text = True
    supports_points = True
    supports_exemplars = True

    def __init__(
        self,
        *,
        device: str = "auto",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        model: str = DEFAULT_SAM3_MODEL,
        checkpoint: str | Path | None = None,
        cpu_threads: int | None = None,
        vit_bf16: bool | None = None,
        mask_threshold: float = DEFAULT_MASK_THRESHOLD,
        **options: Any,
    ) -> None:
        super().__init__(
            device=device,
            cache_bytes=cache_bytes,
            model_id=model,
            checkpoint=checkpoint,
            cpu_threads=cpu_threads,
            **options,
        )
        self.vit_bf16 = vit_bf16  # None: bf16 on CUDA, fp32 elsewhere
        if not (isinstance(mask_threshold, (int, float)) and 0.0 <= mask_threshold <= 1.0):
            raise ValueError(f"mask_threshold must be between 0 and 1, got {mask_threshold!r}")
        self.mask_threshold = float(mask_threshold)
        self.runtime: Sam3Runtime | None = None  # once loaded

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        path = self._prepare_load()
        from inference.sam3_model import load_sam3

        self.runtime = load_sam3(path, device=self.device, vit_bf16=self.vit_bf16)
        if str(self.runtime.vit_dtype).endswith("bfloat16"):
            self.device_reason += "; ViT in bf16"
        self._install_cancel_hooks()
        self._loaded = True

    def unload(self) -> None:
        super().unload()
        self.runtime = None

    def info(self) -> BackendInfo:
        return BackendInfo(
            backend=self.name,
            model=self.model_id,
            device=self.device,
            device_reason=self.device_reason,
            supports_text=self.supports_text,
            supports_points=self.supports_points,
            supports_exemplars=self.supports_exemplars,
        )

    def mask_input_size(self) -> int | None:
        """The tracker's low-res logits side: 288 for the published model (4x its 72x72 ViT grid)."""
        if self.runtime is None:
            return PUBLISHED_MASK_INPUT_SIZE
        return int(self.runtime.mask_input_size[0])

    def _install_cancel_hooks(self) -> None:
        assert self.runtime is not None  # called by load() once the runtime is there
        self._add_cancel_hooks(self.runtime.cancel_hook_modules())

    # -- text limits -----------------------------------------------------------------------
    # text_token_limit() stays None: each phrase is encoded separately and a phrase longer than
    # SAM 3's 32 tokens is truncated with a message in Prediction.messages, not refused.
    def count_text_tokens(self, text: str) -> int | None:
        """Tokens of the longest phrase of ``text`` (with start/end tokens), once loaded."""
        if self.runtime is None:
            return None
        phrases = split_phrases(text)
        if not phrases:
            return 0
        tokenizer = self.runtime.tokenizer
        return max(len(tokenizer(p, verbose=False)["input_ids"]) for p in phrases)

    # -- embeddings ------------------------------------------------------------------------
    def embedding(self, image: np.ndarray, key: str, *, cancel: CancelToken | None = None) -> Sam3ImageState:
        """The cached :class:`~inference.sam3_model.Sam3ImageState` of ``image``, computed on a miss."""
        cached = self.embeddings.get(key)
        if cached is not None:
            return cached
        self.ensure_loaded()
        runtime = self.runtime
        assert runtime is not None  # ensure_loaded() loaded it
        check(cancel)
        from inference.device import inference_context

        self._cancel = cancel
        try:
            with inference_context(self.device, cuda_bf16=False):
                state = runtime.encode_image(image)
        finally:
            self._cancel = None
        self.encoder_runs += 1
        self.embeddings.put(key, state, nbytes=state.nbytes)
        return state

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
        prompt.validate(width=width, height=height, allow_exemplars=True, mask_input_size=None)
        key = image_key or self.image_key(image)
        check(cancel)
        if prompt.is_concept:
            if prompt.has_geometry or prompt.mask_input is not None:
                field = "points" if prompt.points else ("box" if prompt.box is not None else "mask_input")
                raise PromptError(
                    "SAM 3 either finds every instance of a concept (text and/or exemplar boxes) or segments "
                    "one object from clicks or a box, not both in one prompt; give example boxes as "
                    "exemplars",
                    field=field,
                )
            return self._predict_concept(image, prompt, key=key, cancel=cancel)
        return self._predict_geometry(image, prompt, key=key, cancel=cancel)

    def detect(
        self, image: np.ndarray, prompt: Prompt, *, image_key: str | None = None, cancel: CancelToken | None = None
    ) -> Sam3Detections:
        """A concept prompt's detections as arrays (what :meth:`predict` turns into candidates)."""
        image = as_rgb_image(image)
        prompt.validate(
            width=int(image.shape[1]), height=int(image.shape[0]), allow_exemplars=True, mask_input_size=None
        )
        if not prompt.is_concept:
            raise PromptError("detect() needs text or exemplar boxes", field="text")
        key = image_key or self.image_key(image)
        return self._detections(image, prompt, self.embedding(image, key, cancel=cancel), cancel=cancel, timings={})

    def _exemplar_inputs(
        self, prompt: Prompt, *, width: int, height: int
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Exemplar boxes clipped to the image -> normalised (cx, cy, w, h) + labels (1/0)."""
        if not prompt.exemplars:
            return None, None
        boxes, labels = [], []
        for ex in prompt.exemplars:
            b = ex.box.clipped(width=width, height=height)
            boxes.append(
                [(b.x0 + b.x1) / 2 / width, (b.y0 + b.y1) / 2 / height, (b.x1 - b.x0) / width, (b.y1 - b.y0) / height]
            )
            labels.append(1 if ex.positive else 0)
        return np.array(boxes, dtype=np.float32), np.array(labels, dtype=np.int64)

    def _detections(
        self,
        image: np.ndarray,
        prompt: Prompt,
        state: Sam3ImageState,
        *,
        cancel: CancelToken | None,
        timings: dict[str, float],
    ) -> Sam3Detections:
        import torch

        from inference.device import inference_context

        runtime = self.runtime
        assert runtime is not None  # the state comes from embedding(), which loads the model
        height, width = int(image.shape[0]), int(image.shape[1])
        phrases: list[str | None] = list(split_phrases(prompt.text)) or [None]
        boxes_in, labels_in = self._exemplar_inputs(prompt, width=width, height=height)
        messages: list[str] = []
        scores_all, boxes_all, logits_all, labels_all = [], [], [], []
        text_seconds = detect_seconds = 0.0
        with inference_context(self.device, cuda_bf16=False):
            for phrase in phrases:
                check(cancel)
                t0 = time.perf_counter()
                text = runtime.text(phrase if phrase is not None else _visual_phrase())
                t1 = time.perf_counter()
                if text.truncated and phrase is not None:  # (the visual phrase is one token)
                    shown = phrase if len(phrase) <= 40 else phrase[:37] + "..."
                    note = (
                        f"the phrase '{shown}' is longer than SAM 3's {_max_tokens()} text tokens; "
                        "only its beginning was used"
                    )
                    log.info(note)
                    messages.append(note)
                check(cancel)
                out = runtime.detect(state, text, boxes_cxcywh=boxes_in, box_labels=labels_in)
                scores = out.pred_logits[0].float().sigmoid()
                if out.presence_logits is not None:
                    scores = scores * out.presence_logits[0].float().sigmoid()
                keep = torch.nonzero(scores > prompt.box_threshold).flatten()
                scores_all.append(scores[keep].cpu().numpy())
                boxes_all.append(out.pred_boxes[0, keep].float().cpu().numpy())
                logits_all.append(out.pred_masks[0, keep].float().cpu().numpy())
                labels_all.extend([phrase] * len(keep))
                text_seconds += t1 - t0
                detect_seconds += time.perf_counter() - t1
        low_h, low_w = (int(n) for n in out.pred_masks.shape[-2:])  # (288, 288) for the published model
        scores = np.concatenate(scores_all).astype(np.float32) if scores_all else np.zeros(0, np.float32)
        boxes = np.concatenate(boxes_all).reshape(-1, 4) if boxes_all else np.zeros((0, 4), np.float32)
        logits = (
            np.concatenate(logits_all).reshape(-1, low_h, low_w)
            if logits_all
            else np.zeros((0, low_h, low_w), np.float32)
        )
        before = len(scores)
        if prompt.nms_iou is not None and before:
            probability = 1.0 / (1.0 + np.exp(-logits))
            order = mask_nms(probability > self.mask_threshold, scores, float(prompt.nms_iou))
        else:
            order = np.argsort(-scores, kind="stable")
        order = order[: prompt.max_detections]
        scores, boxes, logits = scores[order], boxes[order], logits[order].astype(np.float32, copy=False)
        labels = tuple(labels_all[i] for i in order)
        boxes = boxes * np.array([width, height, width, height], dtype=np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        t2 = time.perf_counter()
        masks = self._full_masks(
            logits, height=height, width=width, cancel=cancel, sigmoid=True, threshold=self.mask_threshold
        )
        timings.update(
            {
                "text": text_seconds,
                "detect": detect_seconds,
                "masks": time.perf_counter() - t2,
                "detections_before_selection": float(before),
            }
        )
        return Sam3Detections(
            masks=masks,
            scores=scores,
            boxes=boxes.astype(np.float32),
            labels=labels,
            logits=logits,
            messages=tuple(messages),
            before_selection=before,
        )

    def _full_masks(
        self,
        logits: np.ndarray,
        *,
        height: int,
        width: int,
        cancel: CancelToken | None,
        sigmoid: bool,
        threshold: float,
    ) -> np.ndarray:
        """(N, h, w) low-res logits -> (N, H, W) bool: bilinear upsampling, then the threshold
        (on probabilities when ``sigmoid``, as SAM 3's processor; on logits otherwise, as SAM)."""
        import torch
        import torch.nn.functional as F

        out = np.zeros((len(logits), height, width), dtype=bool)
        for start in range(0, len(logits), MASK_CHUNK):
            check(cancel)
            chunk = torch.from_numpy(np.ascontiguousarray(logits[start : start + MASK_CHUNK]))[None]
            if sigmoid:
                chunk = chunk.sigmoid()
            up = F.interpolate(chunk, size=(height, width), mode="bilinear", align_corners=False)[0]
            out[start : start + MASK_CHUNK] = (up > threshold).numpy()
        return out

    def _predict_concept(
        self, image: np.ndarray, prompt: Prompt, *, key: str, cancel: CancelToken | None
    ) -> Prediction:
        start = time.perf_counter()
        hit = self.is_encoded(key)
        state = self.embedding(image, key, cancel=cancel)
        encoded = time.perf_counter()
        timings: dict[str, float] = {}
        dets = self._detections(image, prompt, state, cancel=cancel, timings=timings)
        candidates = tuple(
            Candidate(
                mask=dets.masks[i],
                score=float(dets.scores[i]),
                box=float_box(dets.boxes[i]),
                label=dets.labels[i],
                box_score=float(dets.scores[i]),
                low_res_logits=dets.logits[i],
            )
            for i in range(len(dets.scores))
        )
        timings.update(
            {
                "encode": 0.0 if hit else encoded - start,
                "total": time.perf_counter() - start,
                "embedding_cached": float(hit),
            }
        )
        return Prediction(
            candidates=candidates,
            kind=PredictionKind.INSTANCES,
            image_key=key,
            backend=self.name,
            model=self.model_id,
            image_size=(state.height, state.width),
            timings=MappingProxyType(timings),
            messages=dets.messages,
        )

    def _predict_geometry(
        self, image: np.ndarray, prompt: Prompt, *, key: str, cancel: CancelToken | None
    ) -> Prediction:
        from inference.device import inference_context

        start = time.perf_counter()
        hit = self.is_encoded(key)
        state = self.embedding(image, key, cancel=cancel)
        encoded = time.perf_counter()
        check(cancel)
        coords, labels, box = geometry_arrays(prompt)
        mask_input = None
        if prompt.mask_input is not None:
            side = int(prompt.mask_input.shape[-1])
            mask_input = np.asarray(prompt.mask_input, dtype=np.float32).reshape(side, side)
        runtime = self.runtime
        assert runtime is not None  # embedding() loaded the model
        with inference_context(self.device, cuda_bf16=False):
            out = runtime.track(
                state, points=coords, labels=labels, box=box, mask_input=mask_input, multimask=prompt.multimask
            )
        low_res = out.pred_masks[0, 0].float().cpu().numpy()  # (K, h, w) logits
        scores = out.iou_scores[0, 0].float().cpu().numpy()
        decoded = time.perf_counter()
        masks = self._full_masks(
            low_res, height=state.height, width=state.width, cancel=cancel, sigmoid=False, threshold=0.0
        )
        return alternatives_prediction(
            prompt,
            masks=masks,
            scores=scores,
            low_res=low_res,
            key=key,
            backend=self.name,
            model=self.model_id,
            image_size=(state.height, state.width),
            hit=hit,
            start=start,
            encoded=encoded,
            decoded=decoded,
        )


def _visual_phrase() -> str:
    from inference.sam3_model import VISUAL_PHRASE

    return VISUAL_PHRASE


def _max_tokens() -> int:
    from inference.sam3_model import MAX_TEXT_TOKENS

    return MAX_TEXT_TOKENS


__all__ = ["Sam3Backend", "Sam3Detections", "split_phrases", "mask_nms"]
