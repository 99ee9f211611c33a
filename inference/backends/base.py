"""The one base class every segmentation backend implements.

A backend owns its models, keeps per-image state (embeddings) in a bounded cache keyed by image
content, and answers :class:`~inference.prompts.Prompt` s with a
:class:`~inference.results.Prediction`. Backends are not thread-safe: one thread (the GUI's
worker, a server worker) drives a backend; other threads may only set a cancel token.

``encode`` and ``predict`` take the decoded pixels and, optionally, the image's ``source`` (an
:class:`~inference.images.ImageSource`: the original file or bytes the pixels were decoded from).
Local backends ignore it; a remote backend can send the original (a few hundred KB of JPEG)
instead of re-encoding megabytes of pixels. The pixels are always authoritative.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from inference.cancel import CancelToken
from inference.images import ImageSource
from inference.images import image_key as compute_image_key
from inference.prompts import Prompt
from inference.results import BackendInfo, Prediction

DEFAULT_CACHE_BYTES = 1_500_000_000  # ~70 SAM 2 embeddings (about 21 MB each at fp32)


class SegmentationBackend(abc.ABC):
    """Base class. Subclasses set ``name`` and the ``supports_*`` flags and register themselves
    with :func:`inference.backends.registry.register_backend`."""

    name: ClassVar[str]
    supports_text: ClassVar[bool] = False
    supports_points: ClassVar[bool] = True
    supports_exemplars: ClassVar[bool] = False  # concept example boxes (Prompt.exemplars): sam3
    needs_weights: ClassVar[bool] = True

    def __init__(self, *, device: str = "auto", cache_bytes: int = DEFAULT_CACHE_BYTES, **options: Any) -> None:
        self.device_preference = device
        self.cache_bytes = cache_bytes
        self.options = options
        self._loaded = False

    # -- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def load(self) -> None:
        """Load models from local files only. Raises WeightsMissingError / BackendUnavailableError."""

    def unload(self) -> None:
        """Free models and caches."""
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    @abc.abstractmethod
    def info(self) -> BackendInfo:
        """Backend, model, device and why that device."""

    # -- work ------------------------------------------------------------------------------
    def image_key(self, image: np.ndarray) -> str:
        return compute_image_key(image)

    def encode(
        self,
        image: np.ndarray,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> str:
        """Compute and cache whatever per-image state prompts need (e.g. the SAM 2 embedding).

        Returns the image key. Cheap if already cached. The default does nothing. ``source``, when
        given, is where ``image`` was decoded from (see the module docstring); may be ignored.
        """
        return image_key or self.image_key(image)

    def is_encoded(self, image_key: str) -> bool:
        """Whether :meth:`predict` on this image would skip the encoder."""
        return False

    def mask_input_size(self) -> int | None:
        """The side of the square low-resolution logits this backend takes back as
        ``Prompt.mask_input`` (SAM 2: 256; SAM 3: 288 for the published model), ``None`` for any
        square size. Servers check a refinement click's logits against it."""
        return 256

    # -- text limits -----------------------------------------------------------------------
    def text_token_limit(self) -> int | None:
        """The most tokens a text prompt may have for the text model that will run it
        (``None``: no limit, or no text model). Known once the backend is loaded."""
        return None

    def count_text_tokens(self, text: str) -> int | None:
        """How many tokens ``text`` (as given, normalise it first) is for the text model, or
        ``None`` when the backend has no text model or cannot tell (e.g. not loaded)."""
        return None

    def check_text_tokens(self, text: str) -> None:
        """Raise :class:`~inference.errors.PromptError` (field ``text``) when ``text`` is longer
        than the text model reads, before any inference runs."""
        limit = self.text_token_limit()
        if limit is None:
            return
        count = self.count_text_tokens(text)
        if count is not None and count > limit:
            from inference.errors import PromptError

            raise PromptError(
                f"the text prompt is {count} tokens long, more than the {limit} tokens the "
                f"'{self.name}' text model reads; shorten it (fewer or shorter class names)",
                field="text",
            )

    def estimate_seconds(self, height: int, width: int, prompt: Prompt) -> float | None:
        """A rough CPU-time estimate for :meth:`predict` on an image of this size (``None``:
        unknown). Servers refuse work whose estimate exceeds their per-request budget up front."""
        return None

    @abc.abstractmethod
    def predict(
        self,
        image: np.ndarray,
        prompt: Prompt,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> Prediction:
        """Answer one prompt on an (H, W, 3) uint8 RGB image.

        Validates the prompt (PromptError), checks ``cancel`` between steps (Cancelled).
        ``source``, when given, is where ``image`` was decoded from; a backend may ignore it.
        """
