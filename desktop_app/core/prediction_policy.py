"""The one rule that turns a prediction into annotation objects.

The canvas (a person accepts candidates), the batch over a folder and ``langsam-studio segment``
all call :func:`objects_from_prediction` (or, for candidates a person picked,
:func:`objects_from_candidates`), so one prompt on one image saves the same objects wherever it
ran; only ``needs_review`` differs (True when nobody looked at the result).

The rule, and why:

- Which candidates: every detection of a text prompt (``INSTANCES``); the best-scoring guess of a
  point/box prompt (``ALTERNATIVES``; on the canvas, the one the person focused). Empty masks are
  dropped: an object without pixels exports as nothing.
- Score: the detection confidence (``box_score``) when there is one, else the mask's predicted
  quality (``score``). For text prompts the detection confidence is what the thresholds, the cap
  and the ordering use and what a COCO ``score`` means (how sure the model is the object is
  there); SAM's IoU estimate only says how clean the mask is. Both are kept in the provenance.
- Label: the phrase Grounding DINO matched; else, for a one-phrase text prompt, that phrase;
  else the caller's label (the active label on the canvas, ``--label`` in the CLI). The batch
  used to fall back to the whole prompt ("cup. spoon") and the CLI to "object", both wrong for
  a multi-phrase prompt.
- Source: what kind of prompt made it (``text``, ``exemplar``, ``box`` or ``points``), not where it ran.
- Provenance (``AnnotationObject.prompt``): one :class:`PromptRecord`, built from the
  :class:`~inference.prompts.Prompt` actually sent and the Prediction's backend and model,
  plus the candidate's own detection box and scores (:meth:`PromptRecord.for_candidate`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from desktop_app.core.annotation.document import AnnotationObject
from inference.prompts import Prompt, normalise_text
from inference.results import Candidate, Prediction, PredictionKind

DEFAULT_LABEL = "object"


def text_phrases(text: str | None) -> list[str]:
    """The phrases of a text prompt, in order, once each: "Car. red person." -> ["car", "red person"]."""
    if not text:
        return []
    phrases: list[str] = []
    for part in normalise_text(text).split("."):
        phrase = " ".join(part.strip(" ,;:").split())
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    return phrases


_SPECIAL_TOKENS = re.compile(r"\[(?:sep|cls|pad|unk|mask)\]|</?s>|<pad>|<unk>", re.IGNORECASE)


def clean_phrase(raw: str | None) -> str:
    """A decoded phrase without tokenizer artefacts: special tokens ("[SEP]"), word-piece joins
    ("cu ##p" -> "cup"), punctuation at the ends ("car." -> "car"), case and extra spaces."""
    if not raw:
        return ""
    text = _SPECIAL_TOKENS.sub(" ", str(raw)).replace(" ##", "").replace("##", "")
    text = re.sub(r"\s*\.\s*", " . ", text.lower())  # dots separate phrases
    parts = [" ".join(p.strip(" ,;:").split()) for p in text.split(" . ")]
    parts = [p.strip(" .,;:") for p in parts]
    return " . ".join(p for p in parts if p)


def canonical_label(raw: str | None, phrases: Sequence[str]) -> str | None:
    """THE label of a detection: the prompt phrase a decoded (raw) phrase stands for.

    Grounding DINO decodes the tokens above ``text_threshold``, which may be a phrase with a
    tokenizer artefact ("car [SEP]"), a trailing dot, part of a phrase ("red" of "red car") or
    several phrases run together ("cup spoon"). The label is always one of ``phrases`` (the
    prompt's): the exact one; else the one sharing the most words with it (ties: the one that
    comes first in the decoded text). ``None`` when no phrase matches at all (the caller falls
    back). Without prompt phrases the cleaned phrase itself. Never a raw decoded string.
    """
    cleaned = clean_phrase(raw)
    if not phrases:
        return cleaned.replace(" . ", " ") or None
    if not cleaned:
        return None
    if cleaned in phrases:
        return cleaned
    words = cleaned.replace(" . ", " ").split()
    best: tuple[int, int, str] | None = None
    for phrase in phrases:
        phrase_words = phrase.split()
        shared = sum(1 for w in phrase_words if w in words)
        if not shared:
            continue
        first = min(words.index(w) for w in phrase_words if w in words)
        rank = (-shared, first, phrase)
        if best is None or rank[:2] < best[:2]:
            best = rank
    return None if best is None else best[2]


@dataclass(frozen=True, kw_only=True)
class PromptRecord:
    """What made an object, saved as its ``prompt`` (see :meth:`for_candidate` for the keys)."""

    backend: str
    model: str
    text: str | None = None  # normalised ("car. person.")
    points: tuple[tuple[float, float, int], ...] = ()  # x, y, 1 positive / 0 negative
    box: tuple[float, float, float, float] | None = None  # the prompt box, xyxy pixels
    box_threshold: float | None = None  # text prompts only
    text_threshold: float | None = None
    max_detections: int | None = None
    exemplars: tuple[tuple[float, float, float, float, int], ...] = ()  # SAM 3 example boxes: xyxy, 1 / 0

    @classmethod
    def of(cls, *, prompt: Prompt, prediction: Prediction) -> PromptRecord:
        text = normalise_text(prompt.text) if prompt.text is not None else None
        concept = text is not None or bool(prompt.exemplars)  # thresholds apply to text and exemplars
        b = prompt.box
        return cls(
            backend=prediction.backend,
            model=prediction.model,
            text=text,
            points=tuple((float(p.x), float(p.y), int(p.positive)) for p in prompt.points),
            box=None if b is None else (float(b.x0), float(b.y0), float(b.x1), float(b.y1)),
            box_threshold=float(prompt.box_threshold) if concept else None,
            text_threshold=float(prompt.text_threshold) if text is not None else None,
            max_detections=int(prompt.max_detections) if concept else None,
            exemplars=tuple(
                (float(e.box.x0), float(e.box.y0), float(e.box.x1), float(e.box.y1), int(e.positive))
                for e in prompt.exemplars
            ),
        )

    @property
    def source(self) -> str:
        """``text``, ``exemplar`` (example boxes alone), ``box`` or ``points``: what kind of prompt it was."""
        if self.text is not None:
            return "text"
        if self.exemplars:
            return "exemplar"
        return "box" if self.box is not None else "points"

    def for_candidate(self, candidate: Candidate) -> dict[str, Any]:
        """The JSON-able record saved with an object made from ``candidate``.

        Keys: ``backend``, ``model``; those of the prompt (``text``, ``points``, ``box``, and for
        text ``box_threshold``, ``text_threshold``, ``max_detections``); ``mask_score`` (SAM's
        quality estimate); for a detection ``detection_box`` and ``detection_score``.
        """
        record: dict[str, Any] = {"backend": self.backend, "model": self.model}
        if self.text is not None:
            record["text"] = self.text
            record.update(
                box_threshold=self.box_threshold, text_threshold=self.text_threshold, max_detections=self.max_detections
            )
        if self.points:
            record["points"] = [list(p) for p in self.points]
        if self.box is not None:
            record["box"] = list(self.box)
        if self.exemplars:
            record["exemplars"] = [list(e) for e in self.exemplars]
            if self.text is None:
                record.update(box_threshold=self.box_threshold, max_detections=self.max_detections)
        record["mask_score"] = float(candidate.score)
        if candidate.box_score is not None:
            record["detection_box"] = [float(v) for v in candidate.box]
            record["detection_score"] = float(candidate.box_score)
        return record


def object_score(candidate: Candidate) -> float:
    """The detection confidence when there is one, else the mask's quality estimate."""
    return float(candidate.box_score if candidate.box_score is not None else candidate.score)


def object_label(candidate: Candidate, *, text: str | None, fallback: str) -> str:
    """The prompt phrase the detection matched (:func:`canonical_label`); else the one phrase of a
    one-phrase text prompt; else ``fallback``."""
    phrases = text_phrases(text)
    label = canonical_label(candidate.label, phrases)
    if label:
        return label
    if len(phrases) == 1:
        return phrases[0]
    return fallback.strip() or DEFAULT_LABEL


def chosen_candidates(prediction: Prediction) -> list[Candidate]:
    """Every detection of a text prompt; the best guess of a point/box prompt."""
    if prediction.kind is PredictionKind.INSTANCES:
        return list(prediction.candidates)
    best = prediction.best
    return [] if best is None else [best]


def objects_from_candidates(
    *,
    candidates: Iterable[Candidate],
    record: PromptRecord,
    fallback_label: str = DEFAULT_LABEL,
    needs_review: bool = False,
) -> list[AnnotationObject]:
    """Objects for these candidates (empty masks dropped), by the rule in the module docstring."""
    return [
        AnnotationObject(
            label=object_label(c, text=record.text, fallback=fallback_label),
            mask=c.mask,
            score=object_score(c),
            source=record.source,
            prompt=record.for_candidate(c),
            needs_review=needs_review,
        )
        for c in candidates
        if c.mask.any()
    ]


def objects_from_prediction(
    *,
    prediction: Prediction,
    prompt: Prompt,
    fallback_label: str = DEFAULT_LABEL,
    needs_review: bool = False,
    candidates: Sequence[Candidate] | None = None,
) -> list[AnnotationObject]:
    """The objects ``prediction`` (the answer to ``prompt``) gives: :func:`chosen_candidates`,
    or ``candidates`` when a person picked some."""
    return objects_from_candidates(
        candidates=chosen_candidates(prediction) if candidates is None else candidates,
        record=PromptRecord.of(prompt=prompt, prediction=prediction),
        fallback_label=fallback_label,
        needs_review=needs_review,
    )
