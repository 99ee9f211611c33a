"""AnnotationController: ties the canvas, the inference worker and the document + undo stack.

One controller serves the image on screen. The canvas reports clicks/drags; the controller keeps
the current prompt (points, box, the previous low-resolution logits so each click refines the
mask), posts a prediction on every change (the latest wins), shows the answers as candidates and
turns accepted candidates, polygons and brush strokes into undo commands. The prompt and its
request live in :class:`~desktop_app.gui.prompting.PromptBuilder` (``controller.prompting``), the
candidates on offer in :class:`~desktop_app.gui.candidates.CandidateOffer` (``controller.offer``).
The shell (main window, panels) talks to it through the public methods and signals below and wires
``controller.actions`` and ``canvas.actions`` into its menus; ``histories.undo_group`` gives the
Undo / Redo actions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument
from desktop_app.core.image_cache import DecodedImageCache
from desktop_app.core.prediction_policy import DEFAULT_LABEL
from desktop_app.gui.candidates import CandidateOffer, CandidateState
from desktop_app.gui.canvas.image_canvas import ImageCanvas
from desktop_app.gui.canvas.loading import ImageLoader, LoadedImage
from desktop_app.gui.canvas.tools import Tool
from desktop_app.gui.commands import (
    AddObjectsCommand,
    ChangeLabelCommand,
    DocumentChange,
    DocumentHistory,
    HistoryStore,
    MergeObjectsCommand,
    RemoveObjectsCommand,
    ReplaceMaskCommand,
    SetHiddenCommand,
    SubtractObjectsCommand,
)
from desktop_app.gui.controller_actions import build_controller_actions
from desktop_app.gui.prompting import PromptBuilder
from desktop_app.gui.worker import ImageRef, InferenceWorker
from inference.masks import polygons_to_mask
from inference.prompts import (
    DEFAULT_BOX_THRESHOLD,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_TEXT_THRESHOLD,
    Exemplar,
    Point,
)
from inference.results import BackendInfo


class AnnotationController(QObject):
    document_loaded = Signal(str, object)  # path, ImageDocument: the image is on screen and editable
    load_failed = Signal(str, str, bool)  # path, message for a person, past the pixel limit
    document_changed = Signal(object)  # ImageDocument, after every do / undo / redo (auto-save on it)
    selection_changed = Signal(list)  # selected object ids
    candidates_changed = Signal(object)  # CandidateState | None
    busy_changed = Signal(bool)
    status = Signal(str)  # short messages for the status bar
    error = Signal(str)  # a message for a person (show it; never a traceback)
    backend_changed = Signal(object)  # BackendInfo
    active_label_changed = Signal(str)
    image_changed = Signal(object)  # LoadedImage: the same image re-mapped (a new contrast window)
    prediction_messages = Signal(object)  # tuple[str, ...]: a prediction's notes (e.g. a phrase cut to 32 tokens)

    def __init__(
        self,
        *,
        canvas: ImageCanvas,
        worker: InferenceWorker | None = None,
        histories: HistoryStore | None = None,
        cache: DecodedImageCache | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.cache = cache or (worker.cache if worker is not None else DecodedImageCache())
        self.worker = worker or InferenceWorker(cache=self.cache, parent=self)
        self.histories = histories or HistoryStore(parent=self)
        self.loader = ImageLoader(cache=self.cache, parent=self)
        self._image: LoadedImage | None = None
        self._path: str | None = None
        self._history: DocumentHistory | None = None
        self._pending_document: ImageDocument | Callable[[LoadedImage], ImageDocument] | None = None
        self._load_id = 0
        self._remap_id = -1  # the contrast re-map in flight (set_window)
        self._loading_path: str | None = None
        # while another image loads, the one on screen is held here and cannot be edited
        self._held: tuple[LoadedImage, str, DocumentHistory] | None = None
        self.report_load_failures_as_errors = True  # the window shows them in the canvas instead
        self._selection: list[str] = []
        self._active_label = DEFAULT_LABEL
        self._backend_info: BackendInfo | None = None
        # what an exemplar prompt also sends: {"text", "box_threshold", "text_threshold", "max_detections"}
        # (the window reads its prompt bar); None: no text, the default thresholds
        self.concept_options: Callable[[], dict[str, Any]] | None = None
        self.prompting = PromptBuilder(self)  # the prompt being built and its request
        self.offer = CandidateOffer(self)  # the prediction's candidates on offer
        self._wire()
        self.actions = build_controller_actions(self)  # controller_actions.py

    # -- wiring --------------------------------------------------------------------------------
    def _wire(self) -> None:
        c, w = self.canvas, self.worker
        p = self.prompting
        c.point_clicked.connect(p.add_point)
        c.box_drawn.connect(p.set_box)
        c.polygon_finished.connect(self._on_polygon)
        c.stroke_finished.connect(self._on_stroke)
        c.object_clicked.connect(self._on_object_clicked)
        c.exemplar_tool.drawn.connect(p.add_exemplar)
        w.prediction_ready.connect(p.on_prediction)
        w.failed.connect(p.on_failed)
        w.backend_changed.connect(self._on_backend_changed)
        w.backend_failed.connect(self.error)
        w.status.connect(self.status)
        w.busy_changed.connect(self.busy_changed)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.remapped.connect(self._on_remapped)

    # -- image and document ------------------------------------------------------------------
    def set_backend(
        self, name: str, *, options_from: Callable[[], Mapping[str, Any]] | None = None, **options: Any
    ) -> None:
        """Switch the inference backend (``backend_changed`` or ``error`` answers);
        ``options_from`` is called in the worker thread (see :meth:`InferenceWorker.set_backend`)."""
        self.discard_prompt()
        self.worker.set_backend(name, options_from=options_from, **options)

    @property
    def backend_info(self) -> BackendInfo | None:
        return self._backend_info

    def load_image(
        self, path: str, document: ImageDocument | Callable[[LoadedImage], ImageDocument] | None = None
    ) -> None:
        """Open ``path`` (decoded off the GUI thread); ``document_loaded`` fires when it shows,
        ``load_failed`` when it cannot be opened.

        ``document`` holds its existing annotations, or is a function that gives them once the
        image is decoded (called with the :class:`LoadedImage`; a ``StudioError`` or
        ``OSError`` it raises fails the load with its message); ``None`` starts an empty one.
        From now until the image shows, nothing is editable: the image still on screen is held
        (:meth:`cancel_load` gives it back). Pressing D quickly only shows the last image asked for.
        """
        self.discard_prompt()
        self.worker.cancel()
        self._hold()
        self._pending_document = document
        self._loading_path = str(path)
        self._load_id = self.loader.load(str(path))
        self.status.emit(f"opening {Path(path).name}…")

    def _hold(self) -> None:
        """Detach the image on screen from editing (it stays drawn until the next one shows)."""
        if self._image is not None and self._history is not None and self._path is not None:
            self._held = (self._image, self._path, self._history)
        self._image, self._path, self._history = None, None, None
        self._selection = []
        self.histories.undo_group.setActiveStack(None)  # type: ignore[arg-type]  # Qt takes null; stub does not

    def cancel_load(self) -> None:
        """Forget the running load; the image held on screen becomes editable again."""
        self._load_id = -1
        self._loading_path, self._pending_document = None, None
        if self._held is not None:
            self._image, self._path, self._history = self._held
            self._held = None
            self.histories.undo_group.setActiveStack(self._history.stack)
            self.status.emit(f"{Path(self._path).name}")

    def clear(self) -> None:
        """Show nothing and edit nothing (an empty folder, a failed image)."""
        self.discard_prompt()
        self._load_id = -1
        self._loading_path, self._pending_document = None, None
        self._drop_held()
        if self._history is not None:
            self._history.changed.disconnect(self._on_document_changed)
        self._image, self._path, self._history, self._selection = None, None, None, []
        self.histories.undo_group.setActiveStack(None)  # type: ignore[arg-type]  # Qt takes null; stub does not
        self.canvas.set_image(None)
        self.canvas.set_document(None)
        self.canvas.set_selection([])
        self.selection_changed.emit([])

    def _drop_held(self) -> None:
        if self._held is not None:
            try:
                self._held[2].changed.disconnect(self._on_document_changed)
            except (RuntimeError, TypeError):  # the history was dropped meanwhile (HistoryStore.forget)
                pass
            self._held = None

    def prefetch(self, paths: Sequence[str]) -> None:
        """The images likely to come next (e.g. the next ones in the file list): encoded ahead."""
        self.worker.prefetch([str(p) for p in paths])

    @property
    def document(self) -> ImageDocument | None:
        """The document on screen: also the one held (drawn, not editable) while another loads."""
        if self._history is None:
            return None if self._held is None else self._held[2].document
        return self._history.document

    @property
    def history(self) -> DocumentHistory | None:
        return self._history

    @property
    def image_path(self) -> str | None:
        return self._path

    @property
    def image(self) -> LoadedImage | None:
        return self._image

    def _on_loaded(self, request_id: int, image: LoadedImage) -> None:
        if request_id != self._load_id:
            return
        document = self._pending_document
        self._pending_document = None
        if callable(document):
            from inference.errors import StudioError

            try:
                document = document(image)
            except (StudioError, OSError, ValueError) as exc:  # the document cannot be used
                self._fail(image.path, str(exc), too_large=False)
                return
        if document is None:
            document = ImageDocument(image_name=Path(image.path).name, width=image.width, height=image.height)
        elif (document.width, document.height) != (image.width, image.height):
            self.error.emit(
                f"the annotations of {Path(image.path).name} are for a {document.width}x"
                f"{document.height} image but the image is {image.width}x{image.height}; "
                "they were not loaded"
            )
            document = ImageDocument(image_name=Path(image.path).name, width=image.width, height=image.height)
        self._drop_held()
        self.discard_prompt()  # a prompt or candidates of the image before never reach this one
        self._loading_path = None
        self._image, self._path = image, image.path
        self._history = self.histories.history_for(image.path, document)
        self._history.changed.connect(self._on_document_changed)
        self._selection = []
        self.canvas.set_image(image)
        self.canvas.set_document(document)
        self.canvas.set_selection([])
        self.worker.encode(ImageRef(path=image.path, array=image.array, key=image.key))
        self.selection_changed.emit([])
        self.document_loaded.emit(image.path, document)
        self.status.emit(f"{Path(image.path).name}: {image.width}x{image.height}")

    def _on_load_failed(self, request_id: int, message: str, too_large: bool = False) -> None:
        if request_id == self._remap_id:  # the image on screen stays as it was
            self.error.emit(f"the new contrast could not be applied: {message}")
            return
        if request_id == self._load_id:
            self._fail(self._loading_path or "", message, too_large=too_large)

    def _fail(self, path: str, message: str, *, too_large: bool) -> None:
        """The image asked for cannot be shown: nothing is on screen and nothing is editable."""
        self.clear()
        self.load_failed.emit(path, message, too_large)
        if self.report_load_failures_as_errors:
            self.error.emit(message)

    def _on_document_changed(self, change: DocumentChange) -> None:
        doc = self.document
        if doc is None:
            return
        alive = [i for i in self._selection if any(o.id == i for o in doc.objects)]
        if change.kind == "add" and not change.undo:
            alive = list(change.object_ids)
        if alive != self._selection:
            self._selection = alive
            self.canvas.set_selection(alive)
            self.selection_changed.emit(list(alive))
        self.canvas.objects_changed()
        self.document_changed.emit(doc)

    # -- labels and selection ------------------------------------------------------------------
    @property
    def active_label(self) -> str:
        return self._active_label

    def set_active_label(self, label: str) -> None:
        """The label new objects get (from points, box, polygon, brush)."""
        label = label.strip() or DEFAULT_LABEL
        if label != self._active_label:
            self._active_label = label
            self.active_label_changed.emit(label)

    @property
    def selected_ids(self) -> list[str]:
        return list(self._selection)

    def select(self, object_ids: Sequence[str]) -> None:
        """Select these objects (the object panel calls this)."""
        doc = self.document
        ids = [i for i in object_ids if doc is not None and any(o.id == i for o in doc.objects)]
        if ids != self._selection:
            self._selection = ids
            self.canvas.set_selection(ids)
            self.selection_changed.emit(list(ids))

    def _on_object_clicked(self, object_id: str | None, extend: bool) -> None:
        if object_id is None:
            self.select([] if not extend else self._selection)
        elif extend:
            ids = [i for i in self._selection if i != object_id]
            self.select(ids if object_id in self._selection else [*self._selection, object_id])
        else:
            self.select([object_id])

    # -- prompting and candidates (prompting.py, candidates.py) ------------------------------
    def run_text(
        self,
        text: str,
        *,
        box_threshold: float = DEFAULT_BOX_THRESHOLD,
        text_threshold: float = DEFAULT_TEXT_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
    ) -> None:
        """Run a text prompt ("car. person.") on the image: detections become candidates."""
        self.prompting.run_text(
            text, box_threshold=box_threshold, text_threshold=text_threshold, max_detections=max_detections
        )

    @property
    def exemplars(self) -> list[Exemplar]:
        """The example boxes of the current prompt (SAM 3)."""
        return self.prompting.exemplars

    @property
    def prompt_points(self) -> list[Point]:
        return self.prompting.points

    @property
    def candidates(self) -> CandidateState | None:
        return self.offer.state

    def accept(self) -> list[str]:
        """Enter: the focused candidate (or every detection of a text prompt) becomes objects."""
        return self.offer.accept()

    def discard_prompt(self) -> None:
        """Esc: drop the points, box, text and candidates (a running prediction is ignored)."""
        self.prompting.discard()
        self.offer.show(None)

    def _on_backend_changed(self, info: BackendInfo) -> None:
        self._backend_info = info
        if self.prompting.exemplars and not self.prompting.takes_exemplars():
            self.discard_prompt()  # example boxes mean nothing to this backend
        if self._image is not None:
            self.worker.encode(ImageRef(path=self._image.path, array=self._image.array, key=self._image.key))
        self.backend_changed.emit(info)

    # -- manual objects and edits -------------------------------------------------------------
    def _on_polygon(self, vertices: list[tuple[float, float]]) -> None:
        doc = self.document
        if doc is None or self._history is None:
            return
        mask = polygons_to_mask([np.asarray(vertices, dtype=np.float64)], height=doc.height, width=doc.width)
        if not mask.any():
            return
        obj = AnnotationObject(
            label=self._active_label,
            mask=mask,
            source="polygon",
            prompt={"polygon": [[float(x), float(y)] for x, y in vertices]},
        )
        self._history.push(AddObjectsCommand(self._history, objects=[obj]))

    def _on_stroke(self, object_id: str, mask: np.ndarray, erase: bool) -> None:
        if self._history is None:
            return
        if object_id:
            cmd = ReplaceMaskCommand(self._history, object_id=object_id, mask=mask, text="Eraser" if erase else "Brush")
            if cmd.changes_anything:
                self._history.push(cmd)
        elif mask.any():
            obj = AnnotationObject(label=self._active_label, mask=mask, source="brush")
            self._history.push(AddObjectsCommand(self._history, objects=[obj]))

    def delete_selected(self) -> None:
        if self._history is not None and self._selection:
            self._history.push(RemoveObjectsCommand(self._history, object_ids=self._selection))

    def merge_selected(self) -> None:
        """Union of the selected objects into the first selected one."""
        if self._history is None or len(self._selection) < 2:
            self.status.emit("select two or more objects to merge (Ctrl/Shift+click)")
            return
        self._history.push(MergeObjectsCommand(self._history, object_ids=self._selection))

    def subtract_selected(self) -> None:
        """The first selected object minus the others."""
        if self._history is None or len(self._selection) < 2:
            self.status.emit("select the object to cut, then the objects to subtract (Ctrl/Shift+click)")
            return
        self._history.push(SubtractObjectsCommand(self._history, object_ids=self._selection))

    def set_hidden(self, object_ids: Sequence[str], hidden: bool, *, document: ImageDocument | None = None) -> None:
        """Hide / show objects of the image on screen. ``document``: the document the request was
        made for (a deferred slot); if another one is current now, the request is dropped."""
        if self._history is None or (document is not None and document is not self._history.document):
            return
        present = {o.id for o in self._history.document.objects}
        ids = [i for i in object_ids if i in present]
        if ids:
            self._history.push(SetHiddenCommand(self._history, object_ids=ids, hidden=hidden))

    def toggle_hidden_selected(self) -> None:
        doc = self.document
        if doc is None or not self._selection:
            return
        hide = not all(doc.get(i).hidden for i in self._selection)
        self.set_hidden(self._selection, hide)

    def change_label_selected(self, label: str) -> None:
        label = label.strip()
        if self._history is not None and self._selection and label:
            self._history.push(ChangeLabelCommand(self._history, object_ids=self._selection, label=label))

    def set_tool(self, tool: Tool) -> None:
        self.canvas.set_tool(tool)

    def set_window(self, window) -> bool:
        """The contrast window (``desktop_app.core.contrast.Window``; ``None``: auto-contrast) of the
        high-bit-depth image on screen: re-maps it (in the loader's thread), then shows it (same
        view, ``image_changed``) and re-encodes it, so the model sees what is shown. False when the
        image is 8-bit (nothing to do)."""
        image = self._image
        if image is None or image.decoded.raw is None:
            return False
        self.cache.set_window(image.path, window)
        self._remap_id = self.loader.remap(image.path)  # re-mapped in the loader's thread: _on_remapped
        return True

    def _on_remapped(self, request_id: int, loaded: LoadedImage) -> None:
        """The image on screen with its new contrast window: show it (same view), re-encode it."""
        image = self._image
        if request_id != self._remap_id or image is None or loaded.path != image.path or loaded.key == image.key:
            return  # superseded, another image meanwhile, or nothing changed
        self.discard_prompt()  # masks predicted on the old pixels are not offered any more
        self._image = loaded
        self.canvas.set_image(loaded, fit=False)
        self.worker.encode(ImageRef(path=loaded.path, array=loaded.array, key=loaded.key))
        self.image_changed.emit(loaded)

    def shutdown(self) -> None:
        """Stop the worker and the loader threads (call when the window closes)."""
        self.worker.shutdown()
        self.loader.shutdown()
