"""Building SAM 2.1 models from the ``sam2`` package's hydra configs and a local checkpoint.

Offline only: the checkpoint is a local ``.pt`` file holding ``{"model": state_dict}`` (the
official format), loaded with ``torch.load(weights_only=True)`` and ``strict=True``.

Two flavours:

* ``postprocessing=True`` — like ``sam2.build_sam.build_sam2``: the mask decoder falls back to
  multimask when a single mask is unstable (better for interactive clicks);
* ``postprocessing=False`` — like Lang-SAM (hydra ``compose`` + ``instantiate`` with no
  overrides), for bit-identical Lang-SAM results.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.errors import BackendUnavailableError, WeightsMissingError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from sam2.modeling.sam2_base import SAM2Base

# catalog id -> the sam2 package's hydra config name
SAM2_CONFIGS: dict[str, str] = {
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
# short config stems accepted too ("sam2.1_hiera_t", "sam2.1_hiera_b+", ...)
_STEMS = {Path(cfg).stem: model_id for model_id, cfg in SAM2_CONFIGS.items()}

# build_sam2's default post-processing (dynamic multimask fallback when unstable)
POSTPROCESSING_OVERRIDES: tuple[str, ...] = (
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
)


def sam2_model_id(name: str) -> str:
    """Normalise a catalog id or config stem to a catalog id (``sam2.1_hiera_small``)."""
    key = name.strip()
    if key in SAM2_CONFIGS:
        return key
    stem = Path(key).stem if key.endswith(".yaml") else key
    if stem in _STEMS:
        return _STEMS[stem]
    raise BackendUnavailableError(f"unknown SAM 2 model '{name}': choose one of {', '.join(SAM2_CONFIGS)}")


def sam2_config_name(name: str) -> str:
    """The hydra config for a catalog id or config stem."""
    return SAM2_CONFIGS[sam2_model_id(name)]


def _ensure_hydra() -> None:
    """``import sam2`` initialises hydra globally; re-initialise if someone cleared it."""
    import sam2  # noqa: F401  (initialises hydra with the sam2 config module)
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        from hydra import initialize_config_module

        initialize_config_module("sam2", version_base="1.2")


def instantiate_sam2(name: str, *, postprocessing: bool = True) -> SAM2Base:
    """A SAM 2 model with freshly initialised (random) weights, on the CPU, in eval mode."""
    _ensure_hydra()
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    overrides = list(POSTPROCESSING_OVERRIDES) if postprocessing else []
    cfg = compose(config_name=sam2_config_name(name), overrides=overrides)
    OmegaConf.resolve(cfg)
    model = instantiate(cfg.model, _recursive_=True)
    return model.eval()


def load_state_dict(checkpoint: str | os.PathLike[str], *, model_id: str) -> dict[str, Any]:
    """Read ``{"model": state_dict}`` from a local file, safely (``weights_only=True``)."""
    import torch

    path = Path(checkpoint)
    if not path.is_file():
        raise WeightsMissingError(
            f"the SAM 2 checkpoint for {model_id} was not found at '{path}'; download it with "
            f"'langsam-studio models download {model_id}' or put the official {model_id}.pt file there"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, not a torch file, unsafe pickle
        raise BackendUnavailableError(
            f"'{path}' is not a readable SAM 2 checkpoint ({type(exc).__name__}: {exc}); "
            "delete it and download it again"
        ) from exc
    if not isinstance(payload, dict) or "model" not in payload:
        raise BackendUnavailableError(f"'{path}' is not a SAM 2 checkpoint: expected a dict with a 'model' entry")
    state: dict[str, Any] = payload["model"]
    return state


def expand_neck_position_encoding(model: SAM2Base) -> None:
    """Serve the image encoder neck's cached sine position encodings as views, not copies.

    sam2 1.1.0's ``PositionEmbeddingSine`` returns its cached (C, H, W) encoding with
    ``[None].repeat(B, 1, 1, 1)``: for the stride-4 level that copies 64 MB (~0.2 s on a CPU)
    per image, for an encoding the image predictor never reads. ``expand`` gives the same values
    without the copy; nothing writes to it. Uncached sizes still take the original path (which
    fills the cache). Only this model instance's neck is changed.
    """
    encoding = model.image_encoder.neck.position_encoding
    original = encoding.forward

    def forward(x: torch.Tensor) -> Any:  # the original is untyped
        key = (x.shape[-2], x.shape[-1])
        cached = encoding.cache.get(key)
        if cached is None or cached.device != x.device:
            return original(x)
        return cached[None].expand(x.shape[0], *cached.shape)

    encoding.forward = forward


def memoize_trunk_position_embedding(model: SAM2Base) -> None:
    """Compute Hiera's absolute position embedding once per input size, not once per image.

    ``Hiera._get_pos_embed`` bicubically resizes a learned parameter and adds the tiled window
    embedding on every forward (~0.1 s on a CPU at 1024 px), although it depends only on the
    weights and the patch grid size. The memo is keyed by the grid size and the two parameters'
    version counters (a weight reload recomputes it) and stores the result contiguous: the sum
    ``x + pos_embed`` is elementwise, so the memory layout does not change a single value.
    """
    trunk = model.image_encoder.trunk
    original = trunk._get_pos_embed
    memo: dict[tuple[Any, ...], Any] = {}

    def get_pos_embed(hw: tuple[int, int]) -> Any:
        key = (
            int(hw[0]),
            int(hw[1]),
            trunk.pos_embed._version,
            trunk.pos_embed_window._version,
            trunk.pos_embed.device,
            trunk.pos_embed.dtype,
        )
        value = memo.get(key)
        if value is None:
            memo.clear()
            value = memo[key] = original(hw).contiguous()
        return value

    trunk._get_pos_embed = get_pos_embed


def apply_exact_encoder_speedups(model: SAM2Base) -> None:
    """The bit-identical image-encoder speed-ups above (tests compare with upstream ``set_image``)."""
    expand_neck_position_encoding(model)
    memoize_trunk_position_embedding(model)


def build_sam2_model(
    name: str, *, checkpoint: str | os.PathLike[str], device: str = "cpu", postprocessing: bool = True
) -> SAM2Base:
    """Build SAM 2.1 ``name`` (catalog id or config stem) with weights from ``checkpoint``.

    Loading is strict: a checkpoint of another size gives :class:`BackendUnavailableError`
    naming both. ``device`` must already be resolved ("cpu", "cuda", "cuda:1", "mps").
    """
    model_id = sam2_model_id(name)
    state_dict = load_state_dict(checkpoint, model_id=model_id)
    model = instantiate_sam2(model_id, postprocessing=postprocessing)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BackendUnavailableError(
            f"the checkpoint '{checkpoint}' does not fit {model_id} (is it another model size?): {first}"
        ) from exc
    model = model.to(device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
