"""The candidates on offer after a prediction, and accepting them as objects.

A prediction answers with ``ALTERNATIVES`` (a click's multimask guesses: pick one, Tab cycles) or
``INSTANCES`` (a text prompt's detections, each with a check box). :class:`CandidateOffer`
belongs to the :class:`~desktop_app.gui.controller.AnnotationController`: it shows the
:class:`CandidateState` on the canvas, moves the focus (Tab, the candidate list's rows), checks
and unchecks detections and turns the accepted ones into an undoable ``AddObjectsCommand``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from desktop_app.core.prediction_policy import PromptRecord, canonical_label, objects_from_candidates, text_phrases
from desktop_app.gui.canvas.image_canvas import CandidateOverlay
from desktop_app.gui.commands import AddObjectsCommand
from inference.results import Candidate, PredictionKind

if TYPE_CHECKING:
    from desktop_app.gui.controller import AnnotationController  # imports this module at run time


@dataclass(frozen=True, kw_only=True, eq=False)
class CandidateState:
    """What is on offer: ``ALTERNATIVES`` (pick one, Tab cycles) or ``INSTANCES`` (text detections)."""

    kind: PredictionKind
    candidates: tuple[Candidate, ...]
    index: int  # the focused candidate
    source: str  # points | box | text
    prompt: PromptRecord  # what asked for them (saved with each accepted object)
    unchecked: frozenset[int] = frozenset()  # detections a person dropped (Enter skips them)

    @property
    def focused(self) -> Candidate | None:
        return self.candidates[self.index] if self.candidates else None

    def label_of(self, candidate: Candidate) -> str | None:
        """The label a detection gets when accepted (the prompt's phrase it matched), for display."""
        return (
            canonical_label(candidate.label, text_phrases(self.prompt.text))
            if self.prompt.text
            else (candidate.label or None)
        )

    def checked(self, index: int) -> bool:
        return index not in self.unchecked

    def with_changes(self, **changes) -> CandidateState:
        return replace(self, **changes)


class CandidateOffer(QObject):
    """The controller's candidates: shown on the canvas, focused, checked, accepted.

    A child of the controller (a QObject: the canvas / worker signals connected to it hold no
    reference that would keep a closed window alive)."""

    def __init__(self, controller: AnnotationController) -> None:
        super().__init__(controller)
        self._c = controller
        self.state: CandidateState | None = None

    def show(self, state: CandidateState | None) -> None:
        """Offer ``state`` (``None``: nothing) and draw it; ``candidates_changed`` tells the shell."""
        c = self._c
        self.state = state
        if state is None or not state.candidates:
            self.state = None
            c.canvas.set_candidates([])
        else:
            focused = state.focused
            c.prompting.logits = None if focused is None else focused.low_res_logits
            if state.kind is PredictionKind.ALTERNATIVES:
                overlays = [CandidateOverlay(mask=focused.mask, focused=True)] if focused is not None else []
            else:
                overlays = [
                    CandidateOverlay(
                        mask=cand.mask,
                        label=state.label_of(cand),
                        focused=i == state.index,
                        dimmed=not state.checked(i),
                    )
                    for i, cand in enumerate(state.candidates)
                ]
            c.canvas.set_candidates(overlays)
        c.candidates_changed.emit(self.state)

    def next(self) -> None:
        """Tab: focus the next candidate (the next multimask guess, or the next detection)."""
        state = self.state
        if state is None or len(state.candidates) < 2:
            return
        self.show(state.with_changes(index=(state.index + 1) % len(state.candidates)))

    def focus(self, index: int) -> None:
        """Focus candidate ``index`` (the candidate list's row click; Tab steps through them)."""
        state = self.state
        if state is not None and 0 <= index < len(state.candidates) and index != state.index:
            self.show(state.with_changes(index=index))

    def set_checked(self, index: int, checked: bool) -> None:
        """Keep (checked) or drop (unchecked) detection ``index``: Enter accepts only the checked."""
        state = self.state
        if state is None or not 0 <= index < len(state.candidates) or state.checked(index) == checked:
            return
        unchecked = state.unchecked - {index} if checked else state.unchecked | {index}
        self.show(state.with_changes(unchecked=frozenset(unchecked)))

    def accept(self) -> list[str]:
        """Enter: the focused candidate (or every checked detection of a text prompt) becomes objects."""
        state = self.state
        if state is None or self._c.history is None:
            return []
        chosen = (
            [cand for i, cand in enumerate(state.candidates) if state.checked(i)]
            if state.kind is PredictionKind.INSTANCES
            else [state.focused]
        )
        ids = self._add([cand for cand in chosen if cand is not None], state)
        self._c.discard_prompt()
        return ids

    def accept_one(self) -> list[str]:
        """F: accept only the focused candidate; other detections stay on offer."""
        state = self.state
        if state is None or self._c.history is None:
            return []
        if state.kind is PredictionKind.ALTERNATIVES:
            return self.accept()
        focused = state.focused
        ids = self._add([focused] if focused is not None else [], state)
        rest = tuple(cand for i, cand in enumerate(state.candidates) if i != state.index)
        if not rest:
            self._c.discard_prompt()
        else:
            unchecked = frozenset(i - (i > state.index) for i in state.unchecked if i != state.index)
            self.show(state.with_changes(candidates=rest, index=state.index % len(rest), unchecked=unchecked))
        return ids

    def _add(self, chosen: list[Candidate], state: CandidateState) -> list[str]:
        history = self._c.history
        assert history is not None
        objects = objects_from_candidates(candidates=chosen, record=state.prompt, fallback_label=self._c.active_label)
        if objects:
            history.push(AddObjectsCommand(history, objects=objects))
        return [o.id for o in objects]
