"""Model weights: the catalog of known models, the local store, and downloads.

``WeightsStore().require("sam2.1_hiera_small")`` gives the checkpoint's path or a
:class:`~inference.errors.WeightsMissingError` that tells a person how to get it;
``download(model_id, store=..., progress=..., cancel=...)`` fetches it.
"""

from __future__ import annotations

from typing import cast

from inference.paths import models_dir as default_models_dir
from inference.weights.catalog import (
    DEFAULT_GDINO,
    DEFAULT_SAM2,
    MODELS,
    ModelKind,
    ModelSpec,
    RemoteFile,
    UnknownModelError,
    get_model,
    is_known,
    model_ids,
    register_model,
    unregister_model,
)
from inference.weights.download import download, hub_offline
from inference.weights.store import ModelState, VerifyResult, WeightsStore

__all__ = [
    "DEFAULT_GDINO",
    "DEFAULT_SAM2",
    "MODELS",
    "ModelSpec",
    "ModelState",
    "RemoteFile",
    "UnknownModelError",
    "VerifyResult",
    "WeightsStore",
    "default_backend_name",
    "default_models_dir",
    "download",
    "get_model",
    "hub_offline",
    "installed_model",
    "is_known",
    "model_ids",
    "register_model",
    "unregister_model",
]


def installed_model(kind: str, *, store: WeightsStore | None = None, preferred: str | None = None) -> str | None:
    """The id of a usable model of ``kind`` ("sam2" or "gdino"): ``preferred`` (or the default)
    if it is installed, else any installed one (smallest first), else ``None``."""
    store = store or WeightsStore()
    default = DEFAULT_SAM2 if kind == "sam2" else DEFAULT_GDINO
    # callers pass the family as a plain str; model_ids() just compares it, so another string matches no model
    candidates = [preferred or default] + sorted(
        model_ids(cast(ModelKind, kind)), key=lambda i: get_model(i).size_bytes
    )
    for model_id in candidates:
        if is_known(model_id) and get_model(model_id).kind == kind and store.local_path(model_id) is not None:
            return model_id
    return None


def default_backend_name(store: WeightsStore | None = None) -> str:
    """ "langsam" when SAM 2 and Grounding DINO weights are installed, "sam2" with SAM 2 only,
    else "classic" (OpenCV, no weights), so that a fresh install is useful at once."""
    store = store or WeightsStore()
    has_sam2 = installed_model("sam2", store=store) is not None
    if has_sam2 and installed_model("gdino", store=store) is not None:
        return "langsam"
    return "sam2" if has_sam2 else "classic"
