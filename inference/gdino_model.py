"""Grounding DINO (transformers) from a local directory, with the image backbone cached per image.

The Swin backbone of Grounding DINO only sees the pixels, never the text, so its output for an
image can be reused by every further text prompt on that image. :class:`BackboneCache` wraps
the backbone's ``forward`` (the module tree and ``state_dict`` stay unchanged) and keys its
output by a content hash of ``pixel_values`` and ``pixel_mask``: a cache hit is therefore only
possible for exactly the same input tensors, which makes the cached forward bit-identical to an
uncached one (proved in ``tests/test_models_gdino.py``).

The 1x1/3x3 input projections of the backbone's feature maps (``input_proj_vision``) do not see
the text either: on a cache hit the backbone returns the very same tensor objects, and the
projections of those objects are remembered too (by object identity, checked against the
tensor's version counter). The content hash of ``pixel_values`` is likewise computed once per
tensor object, so a second prompt on the cached pixel inputs hashes nothing.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.errors import BackendUnavailableError, WeightsMissingError
from inference.lru import ByteBoundedLRU

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEFAULT_BACKBONE_CACHE_BYTES = 400_000_000  # ~8 images at 800x1333 with Swin-T


@dataclass(frozen=True, kw_only=True, eq=False)
class Detections:
    """Grounding DINO detections for one image, in pixels of the original image."""

    boxes: np.ndarray = field(repr=False)  # (N, 4) float32 xyxy
    scores: np.ndarray = field(repr=False)  # (N,) float32, max sigmoid over the prompt's tokens
    labels: tuple[str, ...]  # matched phrases

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def _tensor_digest(h: hashlib.blake2b, tensor: torch.Tensor) -> None:
    import torch

    t = tensor.detach().contiguous().cpu()
    h.update(repr((tuple(t.shape), str(t.dtype))).encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


class TensorMemo:
    """Values computed from one tensor object, valid while it lives and is not modified in place.

    Keyed by ``id``; a weak reference proves the object is still the same one and ``_version``
    that it was not written to since, so a reused ``id`` or an in-place edit is never a hit.
    Inference-mode tensors have no version counter: with ``identity_only=False`` they are never
    remembered; with ``identity_only=True`` (for tensors this module created and hands out
    read-only, like the cached feature maps) identity alone decides.
    """

    def __init__(self, *, identity_only: bool = False) -> None:
        self._items: dict[int, tuple[weakref.ref[torch.Tensor], int | None, Any]] = {}
        self._identity_only = identity_only

    def _version(self, tensor: torch.Tensor) -> int | None:
        return None if tensor.is_inference() else tensor._version

    def get(self, tensor: torch.Tensor) -> Any | None:
        item = self._items.get(id(tensor))
        if item is None:
            return None
        ref, version, value = item
        return value if ref() is tensor and self._version(tensor) == version else None

    def put(self, tensor: torch.Tensor, value: Any) -> None:
        if tensor.is_inference() and not self._identity_only:
            return
        self._items = {k: v for k, v in self._items.items() if v[0]() is not None}  # drop the dead
        self._items[id(tensor)] = (weakref.ref(tensor), self._version(tensor), value)

    def clear(self) -> None:
        self._items.clear()


class _ProjectionMemo:
    """Wraps one ``input_proj_vision`` level: same module tree, remembered outputs for cached inputs."""

    def __init__(self, owner: BackboneCache, module: torch.nn.Module) -> None:
        self._owner = owner
        self._module = module
        self._original_forward = module.forward
        self._memo = TensorMemo(identity_only=True)
        module.forward = self._forward

    def detach(self) -> None:
        self._module.forward = self._original_forward
        self._memo.clear()

    def _forward(self, source: torch.Tensor) -> Any:
        if not (self._owner.enabled and self._owner.is_cached_output(source)):
            return self._original_forward(source)
        out = self._memo.get(source)
        if out is None:
            out = self._original_forward(source)
            self._memo.put(source, out)
        else:
            self._owner.projection_hits += 1
        return out


class BackboneCache:
    """Memoises ``GroundingDinoConvModel.forward(pixel_values, pixel_mask)`` by input content.

    ``calls`` counts real backbone runs, ``hits`` reuses, so tests can prove the skip;
    ``projection_hits`` counts input projections reused (pass ``input_projections``).
    """

    def __init__(
        self,
        backbone: torch.nn.Module,
        *,
        max_bytes: int = DEFAULT_BACKBONE_CACHE_BYTES,
        input_projections: Sequence[torch.nn.Module] = (),
    ) -> None:
        self._backbone = backbone
        self._original_forward = backbone.forward
        self._lru: ByteBoundedLRU[tuple[list[Any], list[Any]]] = ByteBoundedLRU(max_bytes=max_bytes)
        self._digests = TensorMemo()  # pixel_values / pixel_mask object -> content digest
        self._outputs = TensorMemo(identity_only=True)  # feature maps handed out from the cache
        self.enabled = True
        self.calls = 0
        self.hits = 0
        self.projection_hits = 0
        backbone.forward = self._forward  # instance attribute: nn.Module.__call__ picks it up
        self._projections = [_ProjectionMemo(self, m) for m in input_projections]

    def detach(self) -> None:
        """Restore the backbone's and the projections' own ``forward``."""
        self._backbone.forward = self._original_forward
        for memo in self._projections:
            memo.detach()
        self.clear()

    def clear(self) -> None:
        self._lru.clear()
        self._digests.clear()
        self._outputs.clear()

    def is_cached_output(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor`` is a feature map this cache holds (so anything derived is reusable)."""
        return self._outputs.get(tensor) is not None

    def _digest(self, tensor: torch.Tensor) -> str:
        digest = self._digests.get(tensor)
        if digest is None:
            h = hashlib.blake2b(digest_size=16)
            _tensor_digest(h, tensor)
            h.update(str(tensor.device).encode())
            digest = h.hexdigest()
            self._digests.put(tensor, digest)
        return digest

    def _forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor) -> Any:
        if not self.enabled:
            self.calls += 1
            return self._original_forward(pixel_values, pixel_mask)
        key = self._digest(pixel_values) + self._digest(pixel_mask)
        cached = self._lru.get(key)
        if cached is not None:
            self.hits += 1
            features, positions = cached
        else:
            self.calls += 1
            features, positions = self._original_forward(pixel_values, pixel_mask)
            nbytes = sum(f.numel() * f.element_size() + m.numel() * m.element_size() for f, m in features)
            nbytes += sum(p.numel() * p.element_size() for p in positions)
            self._lru.put(key, (list(features), list(positions)), nbytes=nbytes)
            for feature_map, _mask in features:
                self._outputs.put(feature_map, True)
        # fresh lists: GroundingDinoModel.forward appends extra levels to the position list
        return list(features), list(positions)


def _check_directory(directory: Path, *, what: str) -> None:
    if not directory.is_dir():
        raise WeightsMissingError(
            f"the Grounding DINO {what} folder '{directory}' does not exist; download the model with "
            "'langsam-studio models download grounding-dino-tiny' or point to a folder saved with "
            "save_pretrained (config.json, model.safetensors, tokenizer and processor files)"
        )
    if what == "model" and not (directory / "config.json").is_file():
        raise WeightsMissingError(f"'{directory}' has no config.json: it is not a Grounding DINO model folder")


class GroundingDino:
    """``GroundingDinoForObjectDetection`` + ``AutoProcessor`` loaded from local folders only."""

    def __init__(
        self,
        *,
        directory: str | os.PathLike[str],
        processor_directory: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        cache_backbone: bool = True,
        backbone_cache_bytes: int = DEFAULT_BACKBONE_CACHE_BYTES,
    ) -> None:
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        model_dir = Path(directory)
        proc_dir = Path(processor_directory) if processor_directory is not None else model_dir
        _check_directory(model_dir, what="model")
        _check_directory(proc_dir, what="processor")
        try:
            # transformers 5 ships py.typed, but AutoProcessor.from_pretrained has no annotations
            self.processor = AutoProcessor.from_pretrained(proc_dir, local_files_only=True)  # type: ignore[no-untyped-call]
            self.model = GroundingDinoForObjectDetection.from_pretrained(model_dir, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise BackendUnavailableError(f"the Grounding DINO files in '{model_dir}' cannot be loaded: {exc}") from exc
        # transformers types .to() through a decorator that drops the bound self (sees `device` as self)
        self.model.to(device).eval()  # type: ignore[arg-type]
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.device = device
        self.directory = model_dir
        self.backbone_cache = (
            BackboneCache(
                self.model.model.backbone,
                max_bytes=backbone_cache_bytes,
                input_projections=self.model.model.input_proj_vision,
            )
            if cache_backbone
            else None
        )

    # -- the steps of one detection ---------------------------------------------------------
    def preprocess_images(self, images: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Resize + normalise (the processor's image half): ``pixel_values`` and ``pixel_mask``."""
        feats = self.processor.image_processor(images=list(images), return_tensors="pt")
        return {k: v.to(self.device) for k, v in feats.items()}

    @property
    def max_text_len(self) -> int:
        """The most text tokens the model reads (``config.max_text_len``: 256 for both sizes)."""
        return int(getattr(self.model.config, "max_text_len", 256) or 256)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` becomes for the model, special tokens included (as :meth:`tokenize`)."""
        return len(self.processor.tokenizer(text)["input_ids"])

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize prompts the way Lang-SAM does (``padding=True``)."""
        enc = self.processor(text=list(texts), padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def forward(self, pixel_inputs: dict[str, torch.Tensor], text_inputs: dict[str, torch.Tensor]) -> Any:
        import torch

        with torch.inference_mode():
            return self.model(**pixel_inputs, **text_inputs)

    def postprocess(
        self,
        outputs: Any,
        input_ids: torch.Tensor,
        *,
        box_threshold: float,
        text_threshold: float,
        target_sizes: Sequence[tuple[int, int]],
    ) -> list[Detections]:
        """transformers 5.x post-processing; ``target_sizes`` are (height, width) per image."""
        results = self.processor.post_process_grounded_object_detection(
            outputs,
            input_ids,
            box_threshold,
            text_threshold=text_threshold,
            target_sizes=[tuple(int(v) for v in s) for s in target_sizes],
        )
        out = []
        for r in results:
            boxes = r["boxes"].detach().float().cpu().numpy().astype(np.float32, copy=False).reshape(-1, 4)
            scores = r["scores"].detach().float().cpu().numpy().astype(np.float32, copy=False).reshape(-1)
            labels = r["text_labels"]
            labels = [labels] if isinstance(labels, str) else list(labels)
            # transformers 5.x decodes an empty batch to [''] when nothing passes the threshold
            out.append(Detections(boxes=boxes, scores=scores, labels=tuple(labels[: len(scores)])))
        return out

    def detect(
        self,
        images: Sequence[Any],
        texts: Sequence[str],
        *,
        box_threshold: float = 0.3,
        text_threshold: float = 0.25,
        pixel_inputs: dict[str, torch.Tensor] | None = None,
    ) -> list[Detections]:
        """Detect ``texts[i]`` in ``images[i]`` (PIL images or HxWx3 uint8 arrays), one forward.

        ``pixel_inputs`` may carry the output of :meth:`preprocess_images` for these images
        (reused across prompts); texts must already end with '.'.
        """
        if len(images) != len(texts):
            raise ValueError(f"got {len(images)} images but {len(texts)} text prompts")
        if pixel_inputs is None:
            pixel_inputs = self.preprocess_images(images)
        text_inputs = self.tokenize(texts)
        outputs = self.forward(pixel_inputs, text_inputs)
        sizes = [_image_hw(im) for im in images]
        return self.postprocess(
            outputs,
            text_inputs["input_ids"],
            box_threshold=box_threshold,
            text_threshold=text_threshold,
            target_sizes=sizes,
        )


def _image_hw(image: Any) -> tuple[int, int]:
    if isinstance(image, np.ndarray):
        return int(image.shape[0]), int(image.shape[1])
    width, height = image.size  # PIL
    return int(height), int(width)
