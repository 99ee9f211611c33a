"""LangSAM Studio's inference layer: models, prompts, mask codecs, server. No Qt, no AWS.

``from inference import LangSAM`` is a drop-in replacement for ``lang_sam.LangSAM``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LangSAM"]


def __getattr__(name: str) -> Any:
    # Lazy so that importing the package (GUI start-up, classic backend) does not import torch.
    if name == "LangSAM":
        from inference.langsam_compat import LangSAM

        return LangSAM
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
