"""The batch engine: one prompt over the images of a project folder, Qt-free.

For each image (in the order given): leave it alone if it is marked done (``skip_done``), else
read it, ask ``predict(image, prompt, cancel=token)`` (in the app, the one inference worker's
loaded backend), add the objects :func:`desktop_app.core.prediction_policy.objects_from_prediction`
makes (``needs_review``: nobody looked at them yet) to its document, set the document to REVIEW
and save it atomically at once, so cancelling or a crash keeps every image finished so far.
An image that fails is reported and skipped; cancelling raises
:class:`inference.cancel.Cancelled` between images.

Running beside a person who keeps editing (the app runs it in the background), the batch never
overwrites their work. ``guard`` (a :class:`BatchGuard`) names the images it must leave alone
(the image on screen, documents with changes not on disk); it is asked before an image is read
and again, under ``guard.lock``, right before its file is written — the editor takes the same
lock when it opens an image, so an image is either written before the editor reads it or never.
Use a ``project`` of its own (not the editor's instance): its :meth:`ProjectFolder.save` then
refuses (:class:`DocumentChangedOnDisk`) a file anyone saved after the batch read it, and that
image is left alone too. ``on_image(outcome)`` hears about each image as it is settled.

The GUI faces are ``desktop_app/gui/dialogs/batch_dialog.py`` (the settings) and
``desktop_app/gui/batch_runner.py`` (the background run).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from desktop_app.core.annotation.document import ImageStatus
from desktop_app.core.prediction_policy import DEFAULT_LABEL, objects_from_prediction
from inference.cancel import CancelToken

if TYPE_CHECKING:
    import numpy as np

    from desktop_app.core.annotation.project import ProjectFolder
    from inference.prompts import Prompt
    from inference.results import Prediction

Predict = Callable[..., "Prediction"]  # predict(image: np.ndarray, prompt: Prompt, *, cancel=CancelToken)
Report = Callable[[int, int, str], None]  # report(done, total, what is happening)


class Outcome(enum.Enum):
    """How one image of a batch was settled."""

    WRITTEN = "written"  # its document now holds the results, status REVIEW
    SKIPPED_DONE = "skipped"  # marked done: left alone (``skip_done``)
    LEFT_ALONE = "left alone"  # the person is editing it, or it changed meanwhile: not touched
    FAILED = "failed"  # could not be read or predicted


@dataclass(frozen=True, kw_only=True)
class ImageOutcome:
    name: str
    outcome: Outcome
    objects_added: int = 0
    object_count: int = 0  # objects in its document after the batch (WRITTEN)
    labels: tuple[str, ...] = ()
    text: str = ""  # why (LEFT_ALONE, FAILED)


@dataclass(kw_only=True)
class BatchGuard:
    """Which images the batch must not touch now. ``busy(name)`` gives the reason (a phrase,
    e.g. "open in the editor") or ``None``; it is called from the batch's thread, and right
    before a write with ``lock`` held."""

    busy: Callable[[str], str | None] = lambda name: None
    lock: threading.RLock = field(default_factory=threading.RLock)


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    images_done: int
    objects_added: int
    labels: tuple[str, ...]  # every label the run produced (to add to the label set)
    skipped: tuple[str, ...] = ()  # images left alone (marked done)
    problems: tuple[str, ...] = ()  # one sentence per image that failed
    changed: tuple[str, ...] = ()  # images whose annotations were written
    left_alone: tuple[str, ...] = ()  # "name: why" for images the person was editing (not touched)


def _no_report(done: int, total: int, text: str) -> None:
    pass


def _no_outcome(outcome: ImageOutcome) -> None:
    pass


def run_batch(
    *,
    project: ProjectFolder,
    image_names: Sequence[str],
    prompt: Prompt,
    predict: Predict,
    skip_done: bool = True,
    fallback_label: str = DEFAULT_LABEL,
    report: Report = _no_report,
    cancel: CancelToken | None = None,
    guard: BatchGuard | None = None,
    on_image: Callable[[ImageOutcome], None] = _no_outcome,
) -> BatchResult:
    """Run ``prompt`` over ``image_names`` of ``project`` (see the module docstring)."""
    cancel = cancel or CancelToken()
    guard = guard or BatchGuard()
    total = len(image_names)
    report(0, total, "starting…")
    outcomes: list[ImageOutcome] = []
    for i, name in enumerate(image_names):
        cancel.raise_if_cancelled()
        report(i, total, name)
        outcome = _one_image(
            project=project,
            name=name,
            prompt=prompt,
            predict=predict,
            skip_done=skip_done,
            fallback_label=fallback_label,
            cancel=cancel,
            guard=guard,
        )
        outcomes.append(outcome)
        on_image(outcome)
    report(total, total, "finished")
    return summarise(outcomes)


def summarise(outcomes: Sequence[ImageOutcome]) -> BatchResult:
    """The :class:`BatchResult` of these outcomes (also of a cancelled run's finished part)."""
    labels: list[str] = []
    for o in outcomes:
        labels += [label for label in o.labels if label not in labels]

    def names(kind: Outcome) -> tuple[str, ...]:
        return tuple(o.name for o in outcomes if o.outcome is kind)

    return BatchResult(
        images_done=len(names(Outcome.WRITTEN)),
        objects_added=sum(o.objects_added for o in outcomes),
        labels=tuple(labels),
        skipped=names(Outcome.SKIPPED_DONE),
        problems=tuple(f"{o.name}: {o.text}" for o in outcomes if o.outcome is Outcome.FAILED),
        changed=names(Outcome.WRITTEN),
        left_alone=tuple(f"{o.name}: {o.text}" for o in outcomes if o.outcome is Outcome.LEFT_ALONE),
    )


def _one_image(
    *,
    project: ProjectFolder,
    name: str,
    prompt: Prompt,
    predict: Predict,
    skip_done: bool,
    fallback_label: str,
    cancel: CancelToken,
    guard: BatchGuard,
) -> ImageOutcome:
    from desktop_app.core.annotation.storage import DocumentChangedOnDisk
    from inference.errors import InferenceError
    from inference.images import load_image

    def left_alone(why: str) -> ImageOutcome:
        return ImageOutcome(name=name, outcome=Outcome.LEFT_ALONE, text=why)

    try:
        if skip_done and project.summary(name).status == ImageStatus.DONE:
            return ImageOutcome(name=name, outcome=Outcome.SKIPPED_DONE)
        busy = guard.busy(name)
        if busy:
            return left_alone(busy)
        image: np.ndarray = load_image(project.image_path(name))
        doc = project.load(name, size=(image.shape[1], image.shape[0]))
        prediction = predict(image, prompt, cancel=cancel)
    except InferenceError as exc:
        if cancel.cancelled:
            raise
        return ImageOutcome(name=name, outcome=Outcome.FAILED, text=str(exc))
    except (OSError, ValueError) as exc:
        return ImageOutcome(name=name, outcome=Outcome.FAILED, text=str(exc))
    cancel.raise_if_cancelled()  # cancelled while predicting: this image stays as it was
    labels: list[str] = []
    added = 0
    for obj in objects_from_prediction(
        prediction=prediction, prompt=prompt, fallback_label=fallback_label, needs_review=True
    ):
        doc.add(obj)
        added += 1
        if obj.label not in labels:
            labels.append(obj.label)
    doc.status = ImageStatus.REVIEW
    with guard.lock:
        busy = guard.busy(name)  # opened in the editor while the model ran
        if busy:
            return left_alone(busy)
        try:
            project.save(doc)
        except DocumentChangedOnDisk:
            return left_alone("saved by someone else while the batch ran")
        except (OSError, ValueError) as exc:  # SaveError is an OSError
            return ImageOutcome(name=name, outcome=Outcome.FAILED, text=str(exc))
    return ImageOutcome(
        name=name, outcome=Outcome.WRITTEN, objects_added=added, object_count=len(doc.objects), labels=tuple(labels)
    )
