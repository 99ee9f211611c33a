"""Random-weight SAM 3 checkpoints in the Hugging Face Hub's ``facebook/sam3`` layout (offline).

The Hub folder holds a ``sam3_video`` ``config.json`` (a detector config + a tracker config), one
``model.safetensors`` with the keys ``detector_model.*``, ``tracker_model.*`` and
``tracker_neck.*``, CLIP BPE tokenizer files and the processor configs. :func:`write_random_sam3`
writes exactly that, so :mod:`inference.sam3_model` loads it through the same code as the real
checkpoint. The state dict is written with ``safetensors`` directly: ``save_pretrained`` of
transformers 5.24/5.25 doubles the ``tracker_model.`` prefix.

* ``size="test"`` — ~0.6 M parameters (ViT hidden 32 × 2 layers, image 224, CLIP text hidden 32,
  1 DETR encoder / 2 decoder layers, 20 queries): for unit tests, builds in well under a second.
* ``size="full"`` — the published architecture (860 M parameters, 3.4 GB fp32): benchmarks only.
  :func:`build_random_sam3` builds it in memory without writing 3.4 GB.

Outputs of random weights are meaningless; only shapes and timings are real.
"""

from __future__ import annotations

import json
import os
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from inference.sam3_model import Sam3Runtime

Size = Literal["test", "full"]

# CLIP's special tokens; the text config's bos/eos/pad ids must match the tokenizer's.
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_WORDS = (
    "a an the of and with on in person people man woman child dog cat car truck bus bicycle "
    "tree house road sky grass water boat bird horse chair table window door wheel cup bottle "
    "phone bag shoe shirt hat face hand red green blue black white yellow small large visual"
).split()


def clip_test_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A tiny CLIP BPE vocabulary (~250 tokens) and merges: any lower-case ASCII text encodes.

    Every printable character exists alone and as a word end (``c</w>``); a few whole words are
    reachable through merges, so common prompts stay short. Merges are tuples (tokenizers 0.23
    rejects "a b" strings here).
    """
    vocab: dict[str, int] = {BOS: 0, EOS: 1}
    chars = string.ascii_lowercase + string.digits + "".join(c for c in string.punctuation)
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        current = word[0]
        for i, c in enumerate(word[1:], start=1):
            right = c + "</w>" if i == len(word) - 1 else c
            merged = current + right
            if (current, right) not in merges:
                merges.append((current, right))
            vocab.setdefault(merged, len(vocab))
            current = merged
        if len(word) == 1:
            vocab.setdefault(word + "</w>", len(vocab))
    return vocab, merges


def _configs(size: Size, vocab_size: int) -> Any:
    from transformers import Sam3VideoConfig

    if size == "full":
        return Sam3VideoConfig()  # the published facebook/sam3 architecture
    if size != "test":
        raise ValueError(f"unknown SAM 3 test size {size!r}: use 'test' or 'full'")
    image, patch, hidden = 224, 14, 32
    grid = image // patch
    vit = dict(
        model_type="sam3_vit_model",
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=image,
        patch_size=patch,
        window_size=8,
        global_attn_indexes=[1],
        pretrain_image_size=image,
    )
    vision = dict(
        backbone_config=vit,
        fpn_hidden_size=hidden,
        backbone_feature_sizes=[[4 * grid, 4 * grid], [2 * grid, 2 * grid], [grid, grid]],
    )
    text = dict(
        model_type="clip_text_model",
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=64,
        projection_dim=hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=32,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    small = dict(hidden_size=hidden, num_attention_heads=4, intermediate_size=64)
    detector = dict(
        model_type="sam3",
        vision_config=vision,
        text_config=text,
        geometry_encoder_config=dict(num_layers=1, **small),
        detr_encoder_config=dict(num_layers=1, **small),
        detr_decoder_config=dict(num_layers=2, num_queries=20, **small),
        mask_decoder_config=dict(hidden_size=hidden, num_attention_heads=4),
    )
    tracker = dict(
        model_type="sam3_tracker_video",
        vision_config=vision,
        image_size=image,
        prompt_encoder_config=dict(hidden_size=hidden, image_size=image, patch_size=patch),
        mask_decoder_config=dict(hidden_size=hidden, mlp_dim=64, num_attention_heads=4, iou_head_hidden_dim=hidden),
        memory_attention_hidden_size=hidden,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=16,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=64,
    )
    return Sam3VideoConfig(detector_config=detector, tracker_config=tracker)


def build_random_sam3(size: Size = "test", *, seed: int = 0, vocab_size: int | None = None) -> tuple[Any, Any]:
    """``(Sam3VideoModel, config)`` with random weights, in eval mode on the CPU."""
    import torch
    from transformers import Sam3VideoModel

    if vocab_size is None:
        vocab_size = len(clip_test_vocab()[0]) if size == "test" else 49408
    config = _configs(size, vocab_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Sam3VideoModel(config).eval()  # type: ignore[no-untyped-call]  # PreTrainedModel.eval is untyped
    return model, config


def write_tokenizer_and_processor(directory: Path, *, image_size: int) -> None:
    """CLIP tokenizer files (tokenizer.json, vocab.json, merges.txt, configs) + processor configs."""
    from transformers import CLIPTokenizer, Sam3ImageProcessor, Sam3Processor

    vocab, merges = clip_test_vocab()
    # transformers hints merges as str | list[str]; tokenizers 0.23 needs the (a, b) pairs (see clip_test_vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)  # type: ignore[arg-type]
    tokenizer.model_max_length = 32
    image_processor = Sam3ImageProcessor(size={"height": image_size, "width": image_size})
    Sam3Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    image_processor.save_pretrained(directory)


def write_random_sam3(
    directory: str | os.PathLike[str], *, size: Size = "test", seed: int = 0, drop_keys: tuple[str, ...] = ()
) -> Path:
    """Write a random SAM 3 checkpoint folder in the Hub layout; returns the folder.

    ``drop_keys`` removes state-dict entries whose name starts with one of them (tests of the
    missing-keys error).
    """
    from safetensors.torch import save_file

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    model, config = build_random_sam3(size, seed=seed)
    state = {
        k: v.contiguous()
        for k, v in model.state_dict().items()
        if not any(k.startswith(prefix) for prefix in drop_keys)
    }
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(target)
    write_tokenizer_and_processor(target, image_size=int(config.detector_config.image_size))
    # the Hub's config.json says "sam3_video"; make sure nothing above overwrote it
    data = json.loads((target / "config.json").read_text(encoding="utf-8"))
    if data.get("model_type") != "sam3_video":
        raise RuntimeError(f"wrote a {data.get('model_type')!r} config instead of sam3_video")
    return target


def build_random_runtime(
    size: Size = "test",
    *,
    seed: int = 0,
    device: str = "cpu",
    vit_bf16: bool | None = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
) -> Sam3Runtime:
    """A :class:`~inference.sam3_model.Sam3Runtime` with random weights built in memory (no 3.4 GB
    file): the detector and a tracker whose ViT is tied to the detector's, as :func:`load_sam3`
    makes them. ``tokenizer_dir`` receives the small test tokenizer (a temporary folder if None)."""
    import tempfile

    import torch
    from transformers import CLIPTokenizer, Sam3Model, Sam3TrackerModel

    from inference.sam3_model import make_runtime

    vocab_size = len(clip_test_vocab()[0]) if size == "test" else 49408
    config = _configs(size, vocab_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # (the ignores: transformers' PreTrainedModel.eval is untyped)
        detector = Sam3Model(config).eval()  # type: ignore[no-untyped-call]
        # builds its own ViT: replaced (and freed) below
        tracker = Sam3TrackerModel(config).eval()  # type: ignore[no-untyped-call]
    folder = Path(tokenizer_dir) if tokenizer_dir is not None else Path(tempfile.mkdtemp(prefix="sam3-tokenizer-"))
    write_tokenizer_and_processor(folder, image_size=int(config.detector_config.image_size))
    tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    return make_runtime(detector, tracker, tokenizer, path=folder, device=device, vit_bf16=vit_bf16)
