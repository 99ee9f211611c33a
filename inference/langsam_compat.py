"""``from inference import LangSAM``: a drop-in replacement for ``lang_sam.LangSAM`` (v0.2.x).

Same constructor and ``predict`` contract and the same pipeline (Grounding DINO on all images
in one forward, then SAM 2.1 with the boxes, ``multimask_output=False``), with the known defects
fixed; ``docs/langsam-compat.md`` lists every difference. Weights are never fetched here: they
come from the explicit paths or from the local weights store (``langsam-studio models``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import PromptError

SAM_TYPES = ("sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large")


def _as_list(value: Any, *, kind: type | tuple[type, ...]) -> list[Any]:
    if isinstance(value, kind):
        return [value]
    return list(value)


def _to_rgb_array(image: Any) -> np.ndarray:
    """What Lang-SAM feeds SAM 2 (``np.asarray(pil_image)``), forced to 3-channel RGB."""
    from PIL import Image

    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.array(image, dtype=np.uint8)  # writable: torch.from_numpy warns on read-only arrays
    from inference.backends.common import as_rgb_image

    return as_rgb_image(np.asarray(image))


def _lang_sam_text(text: Any, index: int) -> str:
    """Lang-SAM appends '.' when missing; an empty prompt is a clear error, not an IndexError."""
    if not isinstance(text, str):
        raise PromptError(f"texts_prompt[{index}] must be a string, got {type(text).__name__}", field="text")
    cleaned = text.strip()
    if not cleaned.strip("."):
        raise PromptError(f"texts_prompt[{index}] is empty: say what to segment, e.g. 'car. person.'", field="text")
    return cleaned if cleaned.endswith(".") else cleaned + "."


class LangSAM:
    """Text-prompted segmentation with Grounding DINO + SAM 2.1, Lang-SAM's API.

    ``sam_ckpt_path``: a SAM 2.1 ``.pt``; ``gdino_model_ckpt_path`` / ``gdino_processor_ckpt_path``:
    folders saved with ``save_pretrained`` (the processor defaults to the model folder). Missing
    paths are taken from the local weights store; nothing is downloaded here.
    ``gdino_model`` picks the store's Grounding DINO (Lang-SAM uses the base model).
    """

    def __init__(
        self,
        sam_type: str = "sam2.1_hiera_small",
        sam_ckpt_path: str | None = None,
        gdino_model_ckpt_path: str | None = None,
        gdino_processor_ckpt_path: str | None = None,
        device: Any = "auto",
        *,
        gdino_model: str = "grounding-dino-base",
        cpu_threads: int | None = None,
    ) -> None:
        from inference.backends.langsam_backend import LangSamBackend
        from inference.weights.store import resolve_weights

        if sam_type not in SAM_TYPES:
            raise ValueError(f"unknown sam_type '{sam_type}': choose one of {', '.join(SAM_TYPES)}")
        self.sam_type = sam_type
        model_dir = resolve_weights(gdino_model, gdino_model_ckpt_path)
        processor_dir = Path(gdino_processor_ckpt_path) if gdino_processor_ckpt_path else model_dir
        self.backend = LangSamBackend(
            device=str(device),
            model=sam_type,
            checkpoint=sam_ckpt_path,
            gdino_model=gdino_model,
            gdino_path=model_dir,
            gdino_processor_path=processor_dir,
            cpu_threads=cpu_threads,
        )
        self.backend.ensure_loaded()
        self.device = self.backend.device

    def predict(
        self,
        images_pil: Sequence[Any] | Any,
        texts_prompt: Sequence[str] | str,
        box_threshold: float = 0.3,
        text_threshold: float = 0.25,
    ) -> list[dict[str, Any]]:
        """One dict per image: ``boxes`` (N,4) float32 xyxy, ``scores`` (N,), ``labels`` and
        ``text_labels`` (N phrases), ``masks`` (N,H,W) float32 0/1, ``mask_scores`` (N,).

        ``texts_prompt[i]`` goes with ``images_pil[i]``; a single image or a bare string is
        accepted, and one text is used for every image.
        """
        from PIL import Image

        images = _as_list(images_pil, kind=(Image.Image, np.ndarray))
        texts = _as_list(texts_prompt, kind=str)
        if not images:
            raise PromptError("images_pil is empty: give at least one image", field="images")
        if len(texts) == 1 and len(images) > 1:
            texts = texts * len(images)
        if len(texts) != len(images):
            raise PromptError(
                f"got {len(images)} images but {len(texts)} text prompts: give one text per "
                "image (or one text for all)",
                field="text",
            )
        for name, value in (("box_threshold", box_threshold), ("text_threshold", text_threshold)):
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise PromptError(f"{name} must be a number between 0 and 1, got {value!r}", field=name)
        texts = [_lang_sam_text(t, i) for i, t in enumerate(texts)]
        arrays = [_to_rgb_array(im) for im in images]
        backend = self.backend
        keys = [backend.image_key(a) for a in arrays]
        detections = backend.detect(
            arrays, texts, keys=keys, box_threshold=float(box_threshold), text_threshold=float(text_threshold)
        )
        results = []
        for array, key, dets in zip(arrays, keys, detections):
            height, width = array.shape[:2]
            if len(dets):
                entry = backend.embedding(array, key)
                masks, mask_scores, _ = backend.masks_for_boxes(entry, dets.boxes)
            else:
                masks = np.zeros((0, height, width), bool)
                mask_scores = np.zeros((0,), np.float32)
            labels = list(dets.labels)
            results.append(
                {
                    "scores": dets.scores.astype(np.float32).reshape(-1),
                    "boxes": dets.boxes.astype(np.float32).reshape(-1, 4),
                    "text_labels": labels,
                    "labels": list(labels),
                    "masks": masks.astype(np.float32),
                    "mask_scores": np.asarray(mask_scores, dtype=np.float32).reshape(-1),
                }
            )
        return results
