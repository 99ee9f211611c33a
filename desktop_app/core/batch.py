"""The batch engine: one prompt over the images of a project folder, Qt-free.

For each image (in the order given): leave it alone if it is marked done (``skip_done``), else
read it, ask ``predict(image, prompt, cancel=token)`` (in the app, the one inference worker's
loaded backend), add the objects :func:`desktop_app.core.prediction_policy.objects_from_prediction`
makes (``needs_review``: nobody looked at them yet) to its document, set the document to REVIEW
and save it atomically at once, so cancelling or a crash keeps every image finished so far.
An image that fails is reported and skipped; cancelling raises
:class:`inference.cancel.Cancelled` between images.

The batch dialog (``desktop_app/gui/dialogs/batch_dialog.py``) is only its Qt face.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    images_done: int
    objects_added: int
    labels: tuple[str, ...]  # every label the run produced (to add to the label set)
    skipped: tuple[str, ...] = ()  # images left alone (marked done)
    problems: tuple[str, ...] = ()  # one sentence per image that failed
    changed: tuple[str, ...] = ()  # images whose annotations were written


def _no_report(done: int, total: int, text: str) -> None:
    pass


def run_batch(*, project: ProjectFolder, image_names: Sequence[str], prompt: Prompt, predict: Predict,
              skip_done: bool = True, fallback_label: str = DEFAULT_LABEL, report: Report = _no_report,
              cancel: CancelToken | None = None) -> BatchResult:
    """Run ``prompt`` over ``image_names`` of ``project`` (see the module docstring)."""
    from inference.errors import InferenceError
    from inference.images import load_image

    cancel = cancel or CancelToken()
    total = len(image_names)
    report(0, total, "starting…")
    added = 0
    labels: list[str] = []
    skipped: list[str] = []
    problems: list[str] = []
    changed: list[str] = []
    for i, name in enumerate(image_names):
        cancel.raise_if_cancelled()
        report(i, total, name)
        try:
            if skip_done and project.summary(name).status == ImageStatus.DONE:
                skipped.append(name)
                continue
            image: np.ndarray = load_image(project.image_path(name))
            doc = project.load(name, size=(image.shape[1], image.shape[0]))
            prediction = predict(image, prompt, cancel=cancel)
        except InferenceError as exc:
            if cancel.cancelled:
                raise
            problems.append(f"{name}: {exc}")
            continue
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        for obj in objects_from_prediction(prediction=prediction, prompt=prompt, fallback_label=fallback_label,
                                           needs_review=True):
            doc.add(obj)
            added += 1
            if obj.label not in labels:
                labels.append(obj.label)
        doc.status = ImageStatus.REVIEW
        project.save(doc)
        changed.append(name)
    report(total, total, "finished")
    return BatchResult(images_done=len(changed), objects_added=added, labels=tuple(labels),
                       skipped=tuple(skipped), problems=tuple(problems), changed=tuple(changed))
