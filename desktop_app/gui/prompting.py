"""The prompt being built on the image on screen, and its request to the inference worker.

:class:`PromptBuilder` belongs to the :class:`~desktop_app.gui.controller.AnnotationController`.
It keeps the current prompt (points, box, text, SAM 3 exemplar boxes, the previous low-resolution
logits so each click refines the mask), turns it into an :class:`inference.prompts.Prompt`, posts
it to the worker on every change (the latest request wins) and hands the answer to the
controller's :class:`~desktop_app.gui.candidates.CandidateOffer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject

from desktop_app.core.prediction_policy import PromptRecord
from desktop_app.gui.candidates import CandidateState
from desktop_app.gui.worker import ImageRef
from inference.prompts import (
    DEFAULT_BOX_THRESHOLD,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_TEXT_THRESHOLD,
    Box,
    Exemplar,
    Point,
    Prompt,
    normalise_text,
    pixel_coordinate,
)
from inference.results import Prediction, PredictionKind

if TYPE_CHECKING:
    from desktop_app.gui.controller import AnnotationController  # imports this module at run time


class PromptBuilder(QObject):
    """Points / box / text / exemplars → :class:`Prompt` → the worker; its answer → candidates.

    A child of the controller (a QObject: the canvas / worker signals connected to it hold no
    reference that would keep a closed window alive)."""

    def __init__(self, controller: AnnotationController) -> None:
        super().__init__(controller)
        self._c = controller
        self._points: list[Point] = []
        self._box: Box | None = None
        self._text: str | None = None
        self.logits: np.ndarray | None = None  # the focused candidate's (the next click refines it)
        self._exemplars: list[Exemplar] = []  # SAM 3 example boxes: kept until accept / Esc
        self._sent: Prompt | None = None  # the prompt of the pending request
        self.request_id = 0  # the pending request (0: none)

    @property
    def points(self) -> list[Point]:
        return list(self._points)

    @property
    def exemplars(self) -> list[Exemplar]:
        """The example boxes of the current prompt (SAM 3)."""
        return list(self._exemplars)

    # -- building ------------------------------------------------------------------------------
    def add_point(self, x: float, y: float, positive: bool = True) -> None:
        """Add a click to the current prompt and predict (refining the current mask)."""
        if self._c.image is None:
            return
        if self._text is not None:
            self.reset()
        self._points.append(Point(x=pixel_coordinate(x), y=pixel_coordinate(y), positive=bool(positive)))
        self._predict()

    def set_box(self, box: Box) -> None:
        """Start a box prompt (points added afterwards refine it)."""
        if self._c.image is None:
            return
        self.reset()
        self._box = box.rounded()
        self._predict()

    def run_text(
        self,
        text: str,
        *,
        box_threshold: float = DEFAULT_BOX_THRESHOLD,
        text_threshold: float = DEFAULT_TEXT_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
    ) -> None:
        """Run a text prompt ("car. person.") on the image: detections become candidates."""
        if self._c.image is None:
            self._c.error.emit("open an image first")
            return
        if not normalise_text(text):
            self._c.error.emit("the text prompt is empty: type what to segment, e.g. 'car. person.'")
            return
        exemplars = self._exemplars if self.takes_exemplars() else []  # SAM 3: text + the example boxes
        self.reset()
        self._text, self._exemplars = text, list(exemplars)
        prompt = Prompt(
            text=text,
            box_threshold=box_threshold,
            text_threshold=text_threshold,
            max_detections=max_detections,
            exemplars=tuple(exemplars),
        )
        self._send(prompt)

    def add_exemplar(self, box: Box, positive: bool = True) -> None:
        """The exemplar tool (SAM 3): add an example box ("things like this", or with ``positive``
        False "not like this") and re-run the concept prompt with every exemplar so far plus the
        prompt bar's text, if any (the controller's ``concept_options``). The exemplars stay until
        the candidates are accepted or discarded; the latest request wins."""
        c = self._c
        if c.image is None:
            return
        if not self.takes_exemplars():
            c.error.emit("exemplars need the SAM 3 backend: Inference → Backend → SAM 3")
            return
        options = dict(c.concept_options() if c.concept_options is not None else {})
        text = options.pop("text", None) or None
        if text is not None and not normalise_text(text):
            text = None
        exemplars = [] if (self._points or self._box is not None) else list(self._exemplars)
        exemplars.append(Exemplar(box=box.rounded(), positive=bool(positive)))
        self.reset()
        self._text, self._exemplars = text, exemplars
        self._send(
            Prompt(
                text=text,
                exemplars=tuple(exemplars),
                multimask=False,
                **{k: v for k, v in options.items() if k in ("box_threshold", "text_threshold", "max_detections")},
            )
        )

    def takes_exemplars(self) -> bool:
        info = self._c.backend_info
        return info is not None and bool(getattr(info, "supports_exemplars", False))

    def reset(self) -> None:
        """Forget the prompt (the canvas keeps showing it; :meth:`discard` clears that too)."""
        self._points, self._box, self._text, self.logits = [], None, None, None
        self._exemplars = []
        self._sent, self.request_id = None, 0

    def discard(self) -> None:
        """Drop the points, box, text and exemplars (a running prediction is ignored)."""
        if self.request_id:
            self._c.worker.cancel(self.request_id)
        self.reset()
        self._c.canvas.set_prompt()
        self._c.canvas.exemplar_tool.set_exemplars(())

    # -- the request and its answer ------------------------------------------------------------
    def _predict(self) -> None:
        multimask = len(self._points) == 1 and self._box is None
        prompt = Prompt(
            points=tuple(self._points),
            box=self._box,
            mask_input=None if multimask else self.logits,
            multimask=multimask,
        )
        self._send(prompt)

    def _send(self, prompt: Prompt) -> None:
        c = self._c
        image = c.image
        assert image is not None
        c.canvas.set_prompt(points=self._points, box=self._box)
        c.canvas.exemplar_tool.set_exemplars(self._exemplars)
        self._sent = prompt
        self.request_id = c.worker.predict(
            image=ImageRef(path=image.path, array=image.array, key=image.key), prompt=prompt
        )

    def on_prediction(self, request_id: int, prediction: Prediction) -> None:
        c = self._c
        if request_id != self.request_id or c.image is None or prediction.image_key != c.image.key:
            return  # stale: a newer prompt or another image
        self.request_id = 0
        if prediction.messages:
            c.prediction_messages.emit(tuple(prediction.messages))
        cands = tuple(prediction.candidates)
        if prediction.kind is PredictionKind.ALTERNATIVES:
            cands = tuple(sorted(cands, key=lambda cand: -cand.score))
        if not cands or self._sent is None:
            c.offer.show(None)
            c.status.emit("nothing found" if self._text or self._exemplars else "no mask for this prompt")
            return
        record = PromptRecord.of(prompt=self._sent, prediction=prediction)
        c.offer.show(
            CandidateState(kind=prediction.kind, candidates=cands, index=0, source=record.source, prompt=record)
        )
        if prediction.kind is PredictionKind.INSTANCES:
            c.status.emit(
                f"{len(cands)} detection{'s' if len(cands) != 1 else ''}: Enter accepts the checked "
                "ones, F the highlighted one, Tab moves"
            )

    def on_failed(self, request_id: int, message: str) -> None:
        if request_id == self.request_id:
            self.request_id = 0
            self._c.error.emit(message)
