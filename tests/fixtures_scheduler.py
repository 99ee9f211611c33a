"""A segmentation backend for scheduler and worker tests whose calls block until the test lets
them go: exact control over what runs when, without sleeping."""

from __future__ import annotations

import threading

import numpy as np

from inference.backends.base import SegmentationBackend
from inference.cancel import AnyToken, CancelReason, CancelToken, check
from inference.errors import Cancelled
from inference.images import ImageSource
from inference.prompts import Prompt
from inference.results import BackendInfo, Prediction, PredictionKind

TIMEOUT_S = 10.0


class GatedBackend(SegmentationBackend):
    """A real backend whose load/encode/predict block until the test opens their gate.

    While blocked it checks the cancel token between "layers", as the model hooks do. It records
    every call (kind, image key, source) as it starts, every cancelled call with its cause, and
    notifies ``changed`` so a test can wait for any of that.
    """

    name = "gated-test"
    needs_weights = False

    def __init__(self, label: str = "first") -> None:
        super().__init__(device="cpu")
        self.label = label
        self.gates = {kind: threading.Event() for kind in ("load", "encode", "predict")}
        for gate in self.gates.values():
            gate.set()
        self.changed = threading.Condition()
        self.calls: list[tuple[str, str]] = []  # (kind, image key) in the order they started
        self.sources: list[ImageSource | None] = []
        self.cancelled: list[tuple[str, str, CancelReason | None]] = []
        self.encoded_keys: set[str] = set()
        self.fail_next: BaseException | None = None

    def close(self, *kinds: str) -> None:
        for kind in kinds:
            self.gates[kind].clear()

    def open(self, *kinds: str) -> None:
        for kind in kinds or tuple(self.gates):
            self.gates[kind].set()

    def wait_calls(self, count: int, kind: str | None = None) -> list[tuple[str, str]]:
        """Wait until ``count`` calls (of ``kind``) have started; returns them."""

        def matching() -> list[tuple[str, str]]:
            return [c for c in self.calls if kind is None or c[0] == kind]

        with self.changed:
            assert self.changed.wait_for(lambda: len(matching()) >= count, TIMEOUT_S), self.calls
            return matching()

    def wait_cancelled(self, count: int) -> list[tuple[str, str, CancelReason | None]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.cancelled) >= count, TIMEOUT_S), self.cancelled
            return list(self.cancelled)

    def _enter(self, kind: str, key: str, cancel: CancelToken | None, source: ImageSource | None) -> None:
        with self.changed:
            self.calls.append((kind, key))
            self.sources.append(source)
            self.changed.notify_all()
        try:
            while not self.gates[kind].wait(0.002):  # a model checks its token between layers
                check(cancel)
            check(cancel)
        except Cancelled:
            cause = cancel.cause if not isinstance(cancel, AnyToken) else _first_cause(cancel)
            with self.changed:
                self.cancelled.append((kind, key, cause))
                self.changed.notify_all()
            raise

    # -- SegmentationBackend ---------------------------------------------------------------
    def load(self) -> None:
        with self.changed:
            self.calls.append(("load", ""))
            self.sources.append(None)
            self.changed.notify_all()
        self.gates["load"].wait()  # a model load cannot be interrupted

    def info(self) -> BackendInfo:
        return BackendInfo(
            backend=self.label,
            model="fake",
            device="cpu",
            device_reason="test",
            supports_text=True,
            supports_points=True,
        )

    def is_encoded(self, image_key: str) -> bool:
        return image_key in self.encoded_keys

    def encode(
        self,
        image: np.ndarray,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> str:
        key = image_key or self.image_key(image)
        self._enter("encode", key, cancel, source)
        self.encoded_keys.add(key)
        return key

    def predict(
        self,
        image: np.ndarray,
        prompt: Prompt,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> Prediction:
        key = image_key or "batch"
        self._enter("predict", key, cancel, source)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return Prediction(
            candidates=(),
            kind=PredictionKind.ALTERNATIVES,
            image_key=key,
            backend=self.label,
            model="fake",
            image_size=(int(image.shape[0]), int(image.shape[1])),
        )


def _first_cause(token: AnyToken) -> CancelReason | None:
    return next((part.cause for part in token.parts if part.cancelled), token.cause)
