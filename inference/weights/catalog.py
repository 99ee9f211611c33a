"""The models LangSAM Studio knows how to fetch: ids, sizes, licences and where they come from.

Pure data, no I/O. A SAM 2.1 checkpoint is one ``.pt`` file; a Grounding DINO model is a
directory in the Hugging Face layout (``config.json``, ``model.safetensors``, tokenizer and
preprocessor files) that ``transformers``' ``from_pretrained`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from inference.errors import InferenceError

ModelKind = Literal["sam2", "gdino", "sam3"]

SAM2_URL_BASE = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"


@dataclass(frozen=True, kw_only=True)
class RemoteFile:
    """One file of a model: its name in the local layout and, when known, its exact size/hash."""

    name: str
    size_bytes: int | None = None
    sha256: str | None = None
    required: bool = True


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A model the app can download. ``layout`` says whether it is one file or a directory."""

    id: str
    display_name: str
    kind: ModelKind
    layout: Literal["file", "directory"]
    size_bytes: int  # exact for single files; the approximate total of a directory
    size_exact: bool
    licence: str
    hub_repo: str  # Hugging Face repo id
    files: tuple[RemoteFile, ...]  # for "file": exactly one; for "directory": its members
    urls: tuple[str, ...] = ()  # direct-download fallbacks (single-file models only)
    params: str = ""
    description: str = ""
    licence_url: str = ""  # where to read the licence (shown before a download)
    gated: bool = False  # the Hub asks to accept the licence first, then a token (HF_TOKEN)

    @property
    def local_name(self) -> str:
        """The file or directory name inside the models folder."""
        return self.files[0].name if self.layout == "file" else self.id

    @property
    def sources(self) -> tuple[str, ...]:
        """Human-readable places the model comes from, in the order they are tried."""
        hub = f"https://huggingface.co/{self.hub_repo}"
        return (hub, *self.urls)


def _sam2(size: str, hub_size: str, nbytes: int, params: str, speed: str) -> ModelSpec:
    filename = f"sam2.1_hiera_{size}.pt"
    return ModelSpec(
        id=f"sam2.1_hiera_{size}",
        display_name=f"SAM 2.1 Hiera {size.replace('_', '-').title()}",
        kind="sam2",
        layout="file",
        size_bytes=nbytes,
        size_exact=True,
        licence="Apache-2.0",
        hub_repo=f"facebook/sam2.1-hiera-{hub_size}",
        files=(RemoteFile(name=filename, size_bytes=nbytes),),
        urls=(SAM2_URL_BASE + filename,),
        params=params,
        description=f"Segment Anything 2.1 ({params} parameters; {speed}). Masks from points and boxes.",
    )


# Grounding DINO directory members, as published in the IDEA-Research repos on the Hub.
_GDINO_FILES = (
    ("config.json", True),
    ("model.safetensors", True),
    ("preprocessor_config.json", True),
    ("tokenizer_config.json", True),
    ("tokenizer.json", False),
    ("vocab.txt", False),
    ("special_tokens_map.json", False),
)


def _gdino(size: str, approx_bytes: int, params: str, description: str) -> ModelSpec:
    return ModelSpec(
        id=f"grounding-dino-{size}",
        display_name=f"Grounding DINO {size.title()}",
        kind="gdino",
        layout="directory",
        size_bytes=approx_bytes,
        size_exact=False,
        licence="Apache-2.0",
        hub_repo=f"IDEA-Research/grounding-dino-{size}",
        files=tuple(RemoteFile(name=name, required=required) for name, required in _GDINO_FILES),
        params=params,
        description=description,
    )


# facebook/sam3 on the Hub (gated): a sam3_video folder; sam3.pt (the official package's format,
# other keys, 3.4 GB) is not fetched.
_SAM3_FILES = (
    ("config.json", True),
    ("model.safetensors", True),
    ("processor_config.json", False),
    ("preprocessor_config.json", False),
    ("tokenizer_config.json", True),
    ("tokenizer.json", False),
    ("vocab.json", False),
    ("merges.txt", False),
    ("special_tokens_map.json", False),
)

SAM3_SPEC = ModelSpec(
    id="sam3",
    display_name="SAM 3",
    kind="sam3",
    layout="directory",
    size_bytes=3_450_000_000,
    size_exact=False,
    licence="SAM License",
    licence_url="https://huggingface.co/facebook/sam3",
    gated=True,
    hub_repo="facebook/sam3",
    files=tuple(RemoteFile(name=name, required=required) for name, required in _SAM3_FILES),
    params="860 M",
    description=(
        "Segment Anything 3 (860 M parameters): every instance of a short phrase or of example "
        "boxes, and SAM-style clicks and boxes. Gated: accept the SAM License on the Hub and set "
        "HF_TOKEN. Slow on a CPU (tens of seconds per image)."
    ),
)

MODELS: tuple[ModelSpec, ...] = (
    _sam2("tiny", "tiny", 156_008_466, "38.9 M", "fastest"),
    _sam2("small", "small", 184_416_285, "46 M", "Lang-SAM's default"),
    _sam2("base_plus", "base-plus", 323_606_802, "80.8 M", "more accurate, slower"),
    _sam2("large", "large", 898_083_611, "224.4 M", "most accurate, slowest"),
    _gdino(
        "tiny",
        689_000_000,
        "172 M",
        "Grounding DINO with a Swin-T backbone: finds objects from text (48.4 COCO zero-shot AP).",
    ),
    _gdino(
        "base",
        936_000_000,
        "",
        "Grounding DINO with a Swin-B backbone: Lang-SAM's text detector, more accurate, slower.",
    ),
    SAM3_SPEC,
)

_BY_ID = {m.id: m for m in MODELS}

DEFAULT_SAM2 = "sam2.1_hiera_small"
DEFAULT_GDINO = "grounding-dino-base"


def model_ids(kind: ModelKind | None = None) -> list[str]:
    return [m.id for m in _BY_ID.values() if kind is None or m.kind == kind]


class UnknownModelError(InferenceError, ValueError):
    """A model id that is not in the catalog."""


def get_model(model_id: str) -> ModelSpec:
    """The spec for ``model_id``; raises :class:`UnknownModelError` listing the known ids."""
    try:
        return _BY_ID[model_id]
    except KeyError:
        raise UnknownModelError(f"unknown model '{model_id}': known models are {', '.join(_BY_ID)}") from None


def is_known(model_id: str) -> bool:
    return model_id in _BY_ID


def register_model(spec: ModelSpec) -> None:
    """Add a model to the catalog at run time (a private mirror, a fine-tuned checkpoint)."""
    if spec.layout == "file" and len(spec.files) != 1:
        raise ValueError("a single-file model has exactly one file")
    _BY_ID[spec.id] = spec


def unregister_model(model_id: str) -> None:
    """Remove a model added with :func:`register_model` (built-in models stay)."""
    if model_id in _BY_ID and all(m.id != model_id for m in MODELS):
        del _BY_ID[model_id]
