"""Random-weight checkpoints in the official formats, for tests and benchmarks (no model hub here).

* :func:`write_random_sam2_checkpoint` — ``{"model": state_dict}`` of a real SAM 2.1
  architecture, loadable by ``build_sam2`` / :func:`inference.sam2_model.build_sam2_model`.
* :func:`write_random_gdino` — a Grounding DINO directory (model, config, BERT-style tokenizer,
  processor) written with ``save_pretrained`` so ``from_pretrained(..., local_files_only=True)``
  loads it offline. ``size="tiny"`` is the real grounding-dino-tiny architecture
  (``GroundingDinoConfig()`` defaults); ``size="test"`` is a much smaller model for fast tests.

The outputs of random weights are meaningless, only their shapes and timings are real.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transformers import GroundingDinoConfig

# Grounding DINO hard-codes these BERT token ids ([CLS], [SEP], ".", "?").
SPECIAL_TOKEN_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}

_WORDS = (
    "a an the of and with on in person people man woman child dog cat car truck bus bicycle bike "
    "motorcycle tree house building road sky cloud grass water boat bird horse cow sheep chair table "
    "window door wheel food fruit apple banana orange kiwi plate cup bottle phone laptop bag shoe "
    "shirt hat face hand head leg arm red green blue black white yellow small large left right"
).split()


def bert_test_vocab() -> list[str]:
    """A WordPiece vocabulary (1,200+ tokens) with the special ids Grounding DINO relies on.

    Single characters and ``##``-pieces for every letter and digit guarantee that any lower-case
    English text tokenizes without [UNK]; a few whole words keep common prompts short.
    """
    vocab: list[str | None] = [None] * 1030
    for token, index in SPECIAL_TOKEN_IDS.items():
        vocab[index] = token
    pieces = [c for c in string.punctuation if c not in ".?"]
    pieces += list(string.digits) + list(string.ascii_lowercase)
    pieces += [f"##{c}" for c in string.ascii_lowercase + string.digits]
    free = [i for i in range(104, 1030) if vocab[i] is None]
    for index, token in zip(free, pieces):
        vocab[index] = token
    unused = 0
    for i, entry in enumerate(vocab):
        if entry is None:
            vocab[i] = f"[unused{unused}]"
            unused += 1
    out = [t for t in vocab if t is not None]
    out += [w for w in _WORDS if w not in set(out)]
    return out


def write_random_sam2_checkpoint(
    path: str | os.PathLike[str], *, model_id: str = "sam2.1_hiera_tiny", seed: int = 0
) -> Path:
    """Save ``{"model": state_dict}`` of SAM 2.1 ``model_id`` with random weights to ``path``."""
    import torch

    from inference.sam2_model import instantiate_sam2

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = instantiate_sam2(model_id, postprocessing=False)
    torch.save({"model": model.state_dict()}, target)
    return target


def _gdino_config(size: str, vocab_size: int) -> GroundingDinoConfig:
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    if size == "tiny":
        config = GroundingDinoConfig()  # the grounding-dino-tiny architecture (Swin-T + BERT-base)
        assert isinstance(config.text_config, BertConfig)  # the default text config is a BertConfig
        config.text_config.vocab_size = max(config.text_config.vocab_size, vocab_size)
        return config
    if size != "test":
        raise ValueError(f"size must be 'test' or 'tiny', got {size!r}")
    # out_indices is a runtime property of the backbone mixin that transformers' typed __init__ omits
    backbone = SwinConfig(
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=7,
        out_indices=[2, 3, 4],  # type: ignore[call-arg]
    )
    text = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        num_queries=200,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
    )


def spread_logit_scale(size: Literal["test", "tiny"]) -> float:
    """A ``logit_scale`` giving O(1) detection logits: ``1/sqrt(d_model)``."""
    return float(1.0 / (256 if size == "tiny" else 32) ** 0.5)  # int ** float is typed Any


def write_random_gdino(
    directory: str | os.PathLike[str],
    *,
    size: Literal["test", "tiny"] = "test",
    seed: int = 0,
    logit_scale: float = 1.0,
) -> Path:
    """Write a random Grounding DINO (model + processor + tokenizer) into ``directory``.

    ``"test"`` also shrinks the processor's resize (shortest edge 256) so tests run in
    milliseconds; ``"tiny"`` keeps the real 800/1333 preprocessing.

    ``logit_scale`` multiplies the decoder's output LayerNorm (weight and bias). The detection
    logits are dot products of that LayerNorm's output with the text features, so they scale by
    the same factor: with random weights and ``d_model=256`` they are O(16) and the sigmoid
    scores tie at 1.0 for dozens of queries; ``logit_scale=1/16`` makes them O(1), so scores
    are distinct and a threshold keeps a realistic handful of boxes (see :func:`spread_logit_scale`).
    """
    import torch

    # BertTokenizerFast: a runtime alias in transformers 5 (the fast tokenizer in 4.x) that its typed namespace omits
    from transformers import (  # type: ignore[attr-defined]
        BertTokenizerFast,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    vocab = bert_test_vocab()
    vocab_path = target / "vocab.txt"
    vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(vocab_path))
    for token, index in SPECIAL_TOKEN_IDS.items():
        got = tokenizer.convert_tokens_to_ids(token)
        if got != index:
            raise RuntimeError(f"test tokenizer maps {token!r} to {got}, Grounding DINO needs {index}")
    if size == "test":
        image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 256, "longest_edge": 400})
    else:
        image_processor = GroundingDinoImageProcessor()
    # GroundingDinoProcessor.__init__ has no annotations in transformers' own types
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)  # type: ignore[no-untyped-call]

    config = _gdino_config(size, len(vocab))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(config).eval()  # type: ignore[no-untyped-call]  # untyped in transformers
    if logit_scale != 1.0:
        norm = model.model.decoder.layer_norm
        with torch.no_grad():
            norm.weight.mul_(float(logit_scale))
            norm.bias.mul_(float(logit_scale))
    model.save_pretrained(target)
    processor.save_pretrained(target)
    image_processor.save_pretrained(target)  # preprocessor_config.json, as in the Hub repositories
    return target
