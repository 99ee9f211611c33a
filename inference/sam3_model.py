"""SAM 3 (transformers' ``Sam3Model`` + ``Sam3TrackerModel``) with ONE shared ViT, loaded offline.

The Hub checkpoint (``facebook/sam3``, a ``sam3_video`` folder) holds a detector (ViT + FPN neck,
CLIP text encoder, DETR, mask head) and a tracker (SAM-style prompt encoder and mask decoder with
its own FPN neck, ``tracker_neck.*``). Both use the same ViT weights, so after loading the
tracker's ViT is replaced by the detector's (446 M parameters not held twice) and an image is
encoded once:

    pixels --ViT (the one expensive step)--> hidden (1, 1024, 72, 72)
        --detector neck-->  FPN levels + position encodings   (text / exemplar prompts)
        --tracker neck, conv_s0/conv_s1, +no_memory-->  3 levels  (clicks / boxes)

which equals ``Sam3Model.get_vision_features`` and ``Sam3TrackerModel.get_image_embeddings``
(tested), for one ViT pass instead of two. :class:`Sam3Runtime` does that and the per-prompt
heads; caching per image is the backend's job (:mod:`inference.backends.sam3_backend`).

Loading is strict: ``local_files_only=True`` and ``output_loading_info=True``; any missing key is
a :class:`~inference.errors.BackendUnavailableError` naming the keys, never random weights.
The ViT may run in bf16 (default on CUDA, opt-in on the CPU: 2-3× faster with ~1.5 % drift on
AVX512-BF16 CPUs); the heads always run in fp32 (bf16 heads are slower on CPUs).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.errors import BackendUnavailableError, WeightsMissingError
from inference.lru import ByteBoundedLRU

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

MAX_TEXT_TOKENS = 32  # SAM 3's CLIP text encoder has 32 positions
VISUAL_PHRASE = "visual"  # what the processor sends as text when only exemplar boxes are given
TEXT_CACHE_ITEMS = 64


@dataclass(frozen=True, kw_only=True, eq=False)
class Sam3ImageState:
    """Everything prompts need from one image: the detector's FPN features and the tracker's
    3-level embedding, both computed from the same ViT pass."""

    vision: Any  # Sam3VisionEncoderOutput: fpn_hidden_states + fpn_position_encoding (detector)
    tracker_embeddings: tuple[Any, ...]  # ((1,C/8,4g,4g), (1,C/4,2g,2g), (1,C,g,g)) for the tracker's mask decoder
    height: int
    width: int
    nbytes: int  # per-image bytes (position encodings are shared by all images and not counted)
    seconds: float  # how long encoding took


@dataclass(frozen=True, kw_only=True, eq=False)
class TextState:
    """A tokenized phrase and its (cached) text-encoder output."""

    phrase: str
    features: Any  # get_text_features output (pooler_output = projected per-token features)
    attention_mask: Any
    truncated: bool


@dataclass(kw_only=True)
class Sam3Runtime:
    """The loaded detector + tracker sharing one ViT, their tokenizer, and the preprocessing."""

    detector: Any
    tracker: Any
    tokenizer: Any
    path: Path
    device: str
    vit_dtype: Any  # torch.float32 or torch.bfloat16
    image_size: int
    text_cache: ByteBoundedLRU[TextState] = field(default_factory=lambda: ByteBoundedLRU(max_items=TEXT_CACHE_ITEMS))
    vit_runs: int = 0
    text_runs: int = 0

    # -- preprocessing ---------------------------------------------------------------------
    def pixel_values(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, S, S) float32, as ``Sam3ImageProcessor`` makes it: resized
        WITHOUT keeping the aspect ratio (torchvision's antialiased bilinear on uint8), x/255,
        mean = std = 0.5."""
        import torch
        from torchvision.transforms.v2 import functional as TF

        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = TF.resize(
                x, [self.image_size, self.image_size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True
            )
        x = x.to(self.device)[None].float()
        return (x / 255.0 - 0.5) / 0.5

    # -- image ------------------------------------------------------------------------------
    def encode_image(self, image: np.ndarray) -> Sam3ImageState:
        """One ViT pass, then both necks (must run inside :func:`inference.device.inference_context`)."""
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        start = time.perf_counter()
        pixels = self.pixel_values(image)
        vision_encoder = self.detector.vision_encoder
        patch = vision_encoder.config.backbone_config.patch_size
        hidden = vision_encoder.backbone(pixels.to(self.vit_dtype)).last_hidden_state.float()
        self.vit_runs += 1
        batch, grid_h, grid_w = hidden.shape[0], pixels.shape[-2] // patch, pixels.shape[-1] // patch
        spatial = hidden.view(batch, grid_h, grid_w, -1).permute(0, 3, 1, 2)
        fpn, positions = vision_encoder.neck(spatial)
        vision = Sam3VisionEncoderOutput(last_hidden_state=None, fpn_hidden_states=fpn, fpn_position_encoding=positions)
        tracker_embeddings = self.tracker_embeddings(spatial)
        tensors = [*fpn, *tracker_embeddings]
        nbytes = sum(t.numel() * t.element_size() for t in tensors)
        return Sam3ImageState(
            vision=vision,
            tracker_embeddings=tracker_embeddings,
            height=int(image.shape[0]),
            width=int(image.shape[1]),
            nbytes=nbytes,
            seconds=time.perf_counter() - start,
        )

    def tracker_embeddings(self, spatial: torch.Tensor) -> tuple[Any, ...]:
        """The tracker's neck on the ViT output -> what ``get_image_embeddings`` returns.

        Only the first three FPN levels are used by the tracker, so the 0.5× level is not built.
        """
        tracker = self.tracker
        levels = [layer(spatial) for layer in tracker.vision_encoder.neck.fpn_layers[:3]]
        decoder = tracker.mask_decoder
        levels[0] = decoder.conv_s0(levels[0])
        levels[1] = decoder.conv_s1(levels[1])
        levels[2] = levels[2] + tracker.no_memory_embedding.view(1, -1, 1, 1)
        return tuple(levels)

    # -- text -------------------------------------------------------------------------------
    def text(self, phrase: str) -> TextState:
        """Tokenize (truncating to 32 tokens) and encode ``phrase``; cached by phrase."""
        cached = self.text_cache.get(phrase)
        if cached is not None:
            return cached
        full = self.tokenizer(phrase, verbose=False)["input_ids"]
        truncated = len(full) > MAX_TEXT_TOKENS
        tokens = self.tokenizer(
            [phrase], padding="max_length", max_length=MAX_TEXT_TOKENS, truncation=True, return_tensors="pt"
        )
        input_ids = tokens["input_ids"].to(self.device)
        attention_mask = tokens["attention_mask"].to(self.device)
        features = self.detector.get_text_features(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        self.text_runs += 1
        state = TextState(phrase=phrase, features=features, attention_mask=attention_mask, truncated=truncated)
        self.text_cache.put(phrase, state)
        return state

    # -- heads ------------------------------------------------------------------------------
    def detect(
        self,
        state: Sam3ImageState,
        text: TextState,
        *,
        boxes_cxcywh: np.ndarray | None = None,
        box_labels: np.ndarray | None = None,
    ) -> Any:
        """The detector on cached vision features: ``Sam3ImageSegmentationOutput`` (200 queries)."""
        import torch

        kwargs: dict[str, Any] = {}
        if boxes_cxcywh is not None and len(boxes_cxcywh):
            kwargs["input_boxes"] = torch.as_tensor(boxes_cxcywh, dtype=torch.float32, device=self.device)[None]
            kwargs["input_boxes_labels"] = torch.as_tensor(box_labels, dtype=torch.long, device=self.device)[None]
        return self.detector(
            vision_embeds=state.vision, text_embeds=text.features, attention_mask=text.attention_mask, **kwargs
        )

    def track(
        self,
        state: Sam3ImageState,
        *,
        points: np.ndarray | None,
        labels: np.ndarray | None,
        box: np.ndarray | None,
        mask_input: np.ndarray | None,
        multimask: bool,
    ) -> Any:
        """The tracker's prompt encoder + mask decoder on the cached embedding.

        ``points``/``box`` are in original-image pixels; they are scaled to the model's square input
        in x and y separately, as the image is. ``mask_input`` are previous low-res logits (any
        square size; resized to the decoder's by the model).
        """
        import torch

        sx, sy = self.image_size / state.width, self.image_size / state.height
        kwargs: dict[str, Any] = {}
        if points is not None and len(points):
            scaled = np.asarray(points, dtype=np.float32) * np.array([sx, sy], dtype=np.float32)
            kwargs["input_points"] = torch.as_tensor(scaled, device=self.device)[None, None]
            kwargs["input_labels"] = torch.as_tensor(np.asarray(labels), dtype=torch.int32, device=self.device)[
                None, None
            ]
        if box is not None:
            scaled = np.asarray(box, dtype=np.float32) * np.array([sx, sy, sx, sy], dtype=np.float32)
            kwargs["input_boxes"] = torch.as_tensor(scaled, device=self.device)[None, None]
        if mask_input is not None:
            kwargs["input_masks"] = torch.as_tensor(
                np.asarray(mask_input, dtype=np.float32), device=self.device
            ).reshape(1, 1, *np.asarray(mask_input).shape[-2:])
        return self.tracker(image_embeddings=list(state.tracker_embeddings), multimask_output=multimask, **kwargs)

    @property
    def mask_input_size(self) -> tuple[int, int]:
        return tuple(self.tracker.prompt_encoder.mask_input_size)

    def cancel_hook_modules(self) -> list[Any]:
        """Modules to put a cancel check in front of: each ViT layer and both necks."""
        backbone = self.detector.vision_encoder.backbone
        return [*backbone.layers, self.detector.vision_encoder.neck, self.tracker.vision_encoder.neck]


def _check_loading(info: dict[str, Any], *, what: str, path: Path) -> None:
    missing = sorted(info.get("missing_keys") or ())
    mismatched = sorted(str(k) for k in (info.get("mismatched_keys") or ()))
    if missing or mismatched:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        problem = f"lacks {len(missing)} weight(s) ({shown})" if missing else ""
        if mismatched:
            problem += (
                "; " if problem else ""
            ) + f"has {len(mismatched)} weight(s) of the wrong shape ({', '.join(mismatched[:4])})"
        raise BackendUnavailableError(
            f"the SAM 3 checkpoint in '{path}' {problem} for the {what}: it is incomplete or not a "
            "facebook/sam3 checkpoint; download it again with 'langsam-studio models download sam3'"
        )


def check_sam3_folder(path: str | os.PathLike[str]) -> Path:
    """The folder, or :class:`WeightsMissingError` / :class:`BackendUnavailableError` saying what is wrong."""
    folder = Path(path)
    if not folder.is_dir():
        raise WeightsMissingError(
            f"the SAM 3 checkpoint folder '{folder}' was not found; download it with "
            "'langsam-studio models download sam3' (gated: accept the licence on "
            "https://huggingface.co/facebook/sam3 and set HF_TOKEN) or point to a local copy with "
            "'langsam-studio models path sam3 --set DIR'"
        )
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise WeightsMissingError(f"the SAM 3 checkpoint folder '{folder}' has no {name}")
    try:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise BackendUnavailableError(f"'{folder / 'config.json'}' is not a readable config: {exc}") from exc
    if model_type not in ("sam3_video", "sam3"):
        raise BackendUnavailableError(
            f"'{folder}' holds a '{model_type}' model, not SAM 3 (expected model_type 'sam3_video')"
        )
    if model_type == "sam3":
        raise BackendUnavailableError(
            f"'{folder}' holds only the SAM 3 detector (model_type 'sam3'); the sam3 backend needs the "
            "full facebook/sam3 folder (model_type 'sam3_video') with the tracker for clicks and boxes"
        )
    return folder


def load_sam3(path: str | os.PathLike[str], *, device: str = "cpu", vit_bf16: bool | None = None) -> Sam3Runtime:
    """Load detector + tracker from a local ``facebook/sam3``-layout folder, sharing the ViT.

    ``vit_bf16=None`` means bf16 on CUDA, fp32 elsewhere. ``device`` must already be resolved.
    """
    folder = check_sam3_folder(path)
    from safetensors import SafetensorError
    from transformers import CLIPTokenizer, Sam3Model, Sam3TrackerModel
    from transformers.utils import logging as hf_logging

    # transformers types from_pretrained as returning the model alone; with output_loading_info=True
    # it returns (model, loading info)
    detector: Any
    tracker: Any
    info: dict[str, Any]
    try:
        detector, info = Sam3Model.from_pretrained(  # type: ignore[misc]
            folder, local_files_only=True, output_loading_info=True
        )
        _check_loading(info, what="detector", path=folder)
        verbosity = hf_logging.get_verbosity()
        # "sam3_video -> sam3_tracker" is expected for this layout (the ignore: untyped in transformers)
        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        try:
            tracker, info = Sam3TrackerModel.from_pretrained(  # type: ignore[misc]  # (model, info), as above
                folder, local_files_only=True, output_loading_info=True
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        _check_loading(info, what="tracker", path=folder)
        tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, SafetensorError) as exc:  # unreadable weights, bad config, no tokenizer
        raise BackendUnavailableError(f"cannot load SAM 3 from '{folder}': {type(exc).__name__}: {exc}") from exc

    return make_runtime(detector, tracker, tokenizer, path=folder, device=device, vit_bf16=vit_bf16)


def make_runtime(
    detector: Any, tracker: Any, tokenizer: Any, *, path: Path, device: str = "cpu", vit_bf16: bool | None = None
) -> Sam3Runtime:
    """Tie the tracker's ViT to the detector's, move to ``device``, set the ViT dtype, freeze."""
    import torch

    # one ViT: the tracker uses the detector's (the checkpoint stores it once, under detector_model.*)
    tracker.vision_encoder.backbone = detector.vision_encoder.backbone
    if vit_bf16 is None:
        vit_bf16 = device.startswith("cuda")
    vit_dtype = torch.bfloat16 if vit_bf16 else torch.float32
    detector.to(device).eval()
    tracker.to(device).eval()
    detector.vision_encoder.backbone.to(vit_dtype)
    for module in (detector, tracker):
        for p in module.parameters():
            p.requires_grad_(False)
    image_size = int(detector.config.vision_config.backbone_config.image_size)
    tokenizer.model_max_length = MAX_TEXT_TOKENS
    return Sam3Runtime(
        detector=detector,
        tracker=tracker,
        tokenizer=tokenizer,
        path=Path(path),
        device=device,
        vit_dtype=vit_dtype,
        image_size=image_size,
    )
