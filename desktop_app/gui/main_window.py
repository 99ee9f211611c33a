"""The main window: assembles the canvas + controller (APP-CORE), the panels in
``desktop_app/widgets`` and the dialogs in ``desktop_app/dialogs``; owns the open project folder,
its label set and auto-saving. It holds no model code and no drawing code. Opening folders and
images is in ``gui/navigation.py`` (``window.navigation``), the dialog openers in
``gui/window_dialogs.py`` (``window.dialogs``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow, QVBoxLayout, QWidget

from desktop_app.core.annotation.document import ImageDocument, ImageStatus
from desktop_app.core.backend_choices import CHOICES, backend_request
from desktop_app.gui.autosave import Autosaver
from desktop_app.gui.canvas.image_canvas import ImageCanvas
from desktop_app.gui.controller import AnnotationController
from desktop_app.gui.editing import install_editing
from desktop_app.gui.navigation import ImageNavigation
from desktop_app.gui.saving import SaveGuard
from desktop_app.gui.settings import AppSettings
from desktop_app.gui.widgets.actions import MENU_ORDER, build_actions, redo_keys
from desktop_app.gui.widgets.backend_menu import BackendMenu
from desktop_app.gui.widgets.file_list import FileEntry, FileListWidget
from desktop_app.gui.widgets.label_editor import LabelEditor
from desktop_app.gui.widgets.label_list import LabelListWidget
from desktop_app.gui.widgets.notifications import NotificationBar
from desktop_app.gui.widgets.object_list import ObjectListWidget
from desktop_app.gui.widgets.prompt_bar import PromptBar
from desktop_app.gui.widgets.status_panel import StatusPanel
from desktop_app.gui.window_dialogs import WindowDialogs

if TYPE_CHECKING:
    from desktop_app.core.annotation.project import ProjectFolder

WINDOW_SCOPE_CANVAS_KEYS = True  # see docs/adr/0007-app-shell.md: tool/edit keys work from any panel


class MainWindow(QMainWindow):
    def __init__(self, *, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("LangSAM Studio")
        self.settings = settings or AppSettings()
        self.project: ProjectFolder | None = None
        self.current_name: str | None = None
        self._loading_name: str | None = None
        self._dialogs: dict[str, QWidget] = {}

        self.canvas = ImageCanvas()
        self.controller = AnnotationController(canvas=self.canvas, parent=self)
        self.controller.worker.prefetch_count = self.settings.prefetch_count
        from desktop_app.core.image_cache import effective_max_pixels

        self.controller.cache.max_pixels = effective_max_pixels(self.settings.max_image_pixels)
        self.autosaver = Autosaver(
            delay_ms=self.settings.autosave_delay_ms, enabled=self.settings.autosave, parent=self
        )
        self.file_list = FileListWidget()
        self.label_list = LabelListWidget()
        self.object_list = ObjectListWidget()
        self.prompt_bar = PromptBar()
        self.status_panel = StatusPanel()
        self.setStatusBar(self.status_panel)
        self.notification_bar = NotificationBar(self.status_panel.center)
        self.label_editor = LabelEditor(
            view=self.label_list, controller=self.controller, show_error=self.show_error, parent=self
        )

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.prompt_bar)
        layout.addWidget(self.notification_bar)
        layout.addWidget(self.canvas, 1)
        self.setCentralWidget(central)
        self._dock("Images", self.file_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Labels", self.label_list, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Objects", self.object_list, Qt.DockWidgetArea.RightDockWidgetArea)

        self.dialogs = WindowDialogs(self)  # Models…, Settings…, Export…, Import…, shortcuts, About
        self.actions_by_name = build_actions(self, self._handlers())
        self.actions_by_name["autosave"].setChecked(self.settings.autosave)
        self.backend_menu = BackendMenu(backend=self.settings.backend, device=self.settings.device, parent=self)
        self._build_menus()
        self.navigation = ImageNavigation(self)  # which image is on screen (core/navigation.py)
        self.save_guard = SaveGuard(self)  # failed saves: marks, retries, conflicts, closing
        from desktop_app.gui.batch_runner import BatchRunner

        self.batch_runner = BatchRunner(self)  # batch over the folder in the background
        self._wire()
        self.editing = install_editing(self)  # issue 12: shapes, clipboard, context menus, drops, recent
        from desktop_app.gui.window_extras import install_view_state

        self.view_state = install_view_state(self)  # issue 12: tool bar, status widgets, candidate list
        from desktop_app.gui.sam3_wiring import install_sam3

        install_sam3(self)  # issue 11: the exemplar tool (SAM 3 only), a prediction's notes
        self.resize(1280, 820)
        if self.settings.window_geometry is not None:
            self.restoreGeometry(self.settings.window_geometry)
        if self.settings.window_state is not None:
            self.restoreState(self.settings.window_state)
        self.label_editor.refresh()
        self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)

    # -- assembly --------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _handlers(self) -> dict:
        d = self.dialogs
        h = {
            "open_image": lambda: self.navigation.ask_open_image(),
            "open_folder": lambda: self.navigation.ask_open_folder(),
            "save": self.save_now,
            "export": d.show_export,
            "autosave": self._set_autosave,
            "quit": self.close,
            "import_annotations": d.show_import,
            "next_image": lambda: self.step_image(1),
            "prev_image": lambda: self.step_image(-1),
            "mark_done": self.toggle_done,
            "filter_review": self._filter_review,
            "add_label": self.label_list.ask_add,
            "relabel": lambda: self.label_editor.ask_relabel(self),
            "focus_prompt": self.prompt_bar.focus,
            "batch": lambda: self.batch_runner.show_dialog(),  # the run is in the background (gui/batch_runner.py)
            "models": d.show_models,
            "shortcuts": d.show_shortcuts,
            "about": d.about,
            "settings": d.show_settings,
        }
        h.update({f"label_{i}": (lambda i=i: self.label_editor.use_number(i)) for i in range(1, 10)})
        from desktop_app.gui.cloud_wiring import cloud_handlers  # Cloud menu: deploy wizard, endpoints

        h.update(cloud_handlers(self))
        return h

    def _core_actions(self) -> list[tuple[str, QAction]]:
        """APP-CORE's actions with the group they are listed under."""
        c, k = self.controller.actions, self.canvas.actions
        out = [
            ("Edit", a)
            for a in (
                c.accept,
                c.accept_one,
                c.next_candidate,
                c.discard,
                c.delete,
                c.merge,
                c.subtract,
                c.toggle_hidden,
            )
        ]
        out += [("Tools", a) for a in k.tools.values()] + [("Tools", k.brush_bigger), ("Tools", k.brush_smaller)]
        out += [("View", a) for a in (k.zoom_in, k.zoom_out, k.fit, k.actual_size)]
        return out

    def _build_menus(self) -> None:
        group = self.controller.histories.undo_group
        undo, redo = group.createUndoAction(self, "&Undo"), group.createRedoAction(self, "&Redo")
        undo.setShortcut("Ctrl+Z")
        redo.setShortcuts(redo_keys())  # Ctrl+Shift+Z, and Ctrl+Y on Windows / Linux
        for action, text in ((undo, "Undo"), (redo, "Redo")):
            action.setProperty("group", "Edit")
            action.setProperty("help_text", text)
            self.addAction(action)
        self.actions_by_name["undo"], self.actions_by_name["redo"] = undo, redo
        keep_local = {self.controller.actions.accept, self.controller.actions.next_candidate}
        core = self._core_actions()
        for group_name, action in core:
            action.setProperty("group", group_name)
            if WINDOW_SCOPE_CANVAS_KEYS and action not in keep_local:
                action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        menus = {name: self.menuBar().addMenu(f"&{name}") for name in MENU_ORDER[:5]}
        menus["Tools"] = self.menuBar().addMenu("&Tools")
        menus["View"] = self.menuBar().addMenu("&View")
        menus["Cloud"] = self.menuBar().addMenu("&Cloud")
        menus["Help"] = self.menuBar().addMenu("&Help")
        menus["Edit"].addActions([undo, redo])
        menus["Edit"].addSeparator()
        for group_name, action in core:
            menus[group_name].addAction(action)
        for name, action in self.actions_by_name.items():
            group_name = action.property("group")
            if action.property("in_menu") is not False and group_name in menus and name not in ("undo", "redo"):
                menus[group_name].addAction(action)
            if name in ("save", "autosave", "mark_done"):
                menus[group_name].addSeparator()
        menus["Inference"].addSeparator()
        menus["Inference"].addMenu(self.backend_menu)

    def _wire(self) -> None:
        c = self.controller
        c.document_loaded.connect(self._on_document_loaded)
        c.document_changed.connect(self._on_document_changed)
        c.selection_changed.connect(self._on_selection_changed)
        c.status.connect(lambda text: self.status_panel.message(text))
        c.error.connect(self.show_error)
        c.backend_changed.connect(self._on_backend_changed)
        c.worker.prediction_ready.connect(
            lambda _rid, prediction: self.status_panel.note_remote_call(
                round_trip_ms=prediction.timings.get("roundtrip_ms")
            )
        )
        c.worker.failed.connect(lambda _rid, message: self.status_panel.note_remote_call(error=message))
        c.worker.backend_failed.connect(self._on_backend_failed)
        c.busy_changed.connect(
            lambda busy: self.status_panel.set_work(
                "working…" if busy else "", done=0 if busy else None, total=0 if busy else None
            )
        )
        self.file_list.image_activated.connect(self.open_image)
        self.label_editor.labels_changed.connect(self._refresh_objects)
        self.object_list.selection_changed.connect(c.select)
        self.object_list.visibility_changed_for.connect(
            lambda doc, oid, visible: c.set_hidden([oid], not visible, document=doc)
        )

        # the object list's buttons act on the ids they were pressed for: select those, then act
        def delete_objects(ids: list[str]) -> None:
            c.select(ids)
            c.delete_selected()

        def relabel_objects(ids: list[str]) -> None:
            c.select(ids)
            self.label_editor.ask_relabel(self)

        def merge_objects(ids: list[str]) -> None:
            c.select(ids)
            c.merge_selected()

        def subtract_objects(ids: list[str]) -> None:
            c.select(ids)
            c.subtract_selected()

        self.object_list.delete_requested.connect(delete_objects)
        self.object_list.relabel_requested.connect(relabel_objects)
        self.object_list.merge_requested.connect(merge_objects)
        self.object_list.subtract_requested.connect(subtract_objects)
        self.prompt_bar.run_requested.connect(self.run_text)
        # the prompt assistant: the project's labels are offered to the model; the image only when opted in
        self.prompt_bar.assistant.configure(
            labels=lambda: list(self.label_editor.labels.names),
            image=lambda: (
                str(self.project.image_path(self.current_name))
                if self.project is not None and self.current_name
                else None
            ),
            settings=self.settings.values,
            secret_store=_app_secret_store,
        )
        c.actions.discard.triggered.connect(lambda: self.prompt_bar.assistant.cancel())  # Esc anywhere
        self.backend_menu.choice_changed.connect(self.choose_backend)

    # -- inference -------------------------------------------------------------------------
    def start_inference(self) -> None:
        """Ask the worker for the configured backend (loaded in its thread, never here)."""
        request = backend_request(
            backend=self.settings.backend, device=self.settings.device, cache_dir=self.settings.cache_dir
        )
        name = self._requested_backend = request.name
        self.status_panel.set_backend(backend=name, model="loading…", device=self.settings.device, device_reason="")
        # never refuse a prompt while loading: the worker keeps it and runs it once the model is ready
        self.prompt_bar.set_text_supported(True)
        self.controller.set_backend(name, options_from=self._remote_options_reader(name), **request.options)

    def _remote_options_reader(self, name: str) -> Callable[[], dict] | None:
        """For a remote choice, what reads its URL/token or endpoint/region/credentials (issue 9
        part 3) — called in the worker thread: the OS keyring may block (a locked keychain asks to
        be unlocked), and the window must not."""
        choice = CHOICES.get(name)
        if choice is None or choice.kind.value == "local":
            return None
        stored = self.settings.values()  # read here: the settings object belongs to this thread

        def read() -> dict:
            from desktop_app.core.backend_choices import remote_options
            from desktop_app.core.remote_settings import remote_values

            return remote_options(name, remote_values(stored, secrets=_app_secret_store()))

        return read

    def _on_backend_failed(self, message: str) -> None:
        """A model backend could not start (missing or broken weights, no GPU): say why and fall
        back to the classic backend, so points, boxes and the manual tools keep working."""
        failed = getattr(self, "_requested_backend", "")
        self._last_backend_failure = message
        self.show_error(f"{message} — using the classic backend meanwhile (Inference → Models…)")
        if failed != "classic":
            self._requested_backend = "classic"
            self.controller.set_backend("classic", device="cpu")

    def choose_backend(self, backend: str, device: str) -> None:
        self.settings.backend, self.settings.device = backend, device
        self.start_inference()

    def _on_backend_changed(self, info) -> None:
        self.status_panel.set_backend(
            backend=info.backend,
            model=info.model,
            device=info.device,
            device_reason=info.device_reason,
            where=info.where,
        )
        self.prompt_bar.set_text_supported(
            info.supports_text,
            reason="Text prompts need the Lang-SAM models: Inference → Models… "
            "(points, boxes and manual tools work now)",
        )

    def run_text(self, text: str, box_threshold: float, text_threshold: float, max_detections: int) -> None:
        """The prompt bar's request (it always sends all four values, defaults from inference.prompts)."""
        self.controller.run_text(
            text, box_threshold=box_threshold, text_threshold=text_threshold, max_detections=max_detections
        )
        self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)  # Enter now accepts the detections

    # -- folders and images ----------------------------------------------------------------
    def open_image(self, name: str, *, force: bool = False) -> None:
        """Show ``name`` (see gui/navigation.py: a failed image is shown as failed, never skipped)."""
        self.navigation.open(name, force=force)

    def _on_document_loaded(self, path: str, document: ImageDocument) -> None:
        self._loading_name = None
        name = Path(path).name
        self.current_name = name
        self.autosaver.set_document(self.project, document)
        self.settings.last_image = name
        self.save_guard.update_title()
        self.label_editor.ensure(document.labels())
        self._refresh_objects()
        names = self.file_list.visible_names() or (self.project.images() if self.project else [])
        if name in names and self.project is not None:
            i = names.index(name)
            self.controller.prefetch([str(self.project.image_path(n)) for n in names[i + 1 : i + 4]])

    def step_image(self, delta: int) -> None:
        self.navigation.step(delta)

    # -- saving ----------------------------------------------------------------------------
    def _on_document_changed(self, document: ImageDocument) -> None:
        if document.status == ImageStatus.NEW:
            document.status = ImageStatus.IN_PROGRESS
        self.label_editor.ensure(document.labels())
        self.autosaver.changed()
        self._refresh_objects()
        self._update_entry(document)

    def _update_entry(self, document: ImageDocument) -> None:
        self.file_list.update_entry(
            FileEntry(name=document.image_name, status=document.status, object_count=len(document.objects))
        )

    def save_now(self) -> None:
        if self.controller.document is not None:
            self.autosaver.changed()
        self.flush_saves()

    def flush_saves(self) -> bool:
        """Write what is unsaved now and wait; True if in time. Failed writes stay in memory
        (the autosaver retries them; the file list and title say "not saved")."""
        ok = self.autosaver.flush()
        if not ok:
            self.show_error(
                "saving takes unusually long; the disk may be slow or full",
                hint="Your changes are kept in memory; wait for 'saved' before closing.",
            )
        return ok

    def emergency_save(self) -> tuple[bool, list[str]]:
        """After an unexpected error: write what can be written. (all saved?, names not saved)"""
        ok = self.autosaver.flush(timeout=10.0)
        unsaved = [e.name for e in self.autosaver.unsaved()]
        return ok and not unsaved, unsaved

    def _set_autosave(self, on: bool) -> None:
        self.settings.autosave = on
        self.autosaver.enabled = on

    def toggle_done(self) -> None:
        doc = self.controller.document
        if doc is None:
            return
        doc.status = ImageStatus.IN_PROGRESS if doc.status == ImageStatus.DONE else ImageStatus.DONE
        if doc.status == ImageStatus.DONE:
            for obj in [o for o in doc.objects if o.needs_review]:
                doc.replace(obj.with_changes(needs_review=False))
        self.autosaver.changed()
        self._update_entry(doc)
        self._refresh_objects()
        self.status_panel.message(f"{doc.image_name}: {doc.status.value.replace('_', ' ')}")

    def _filter_review(self, on: bool) -> None:
        self.file_list.set_status_filter(ImageStatus.REVIEW if on else None)

    # -- objects ---------------------------------------------------------------------------
    def _refresh_objects(self) -> None:
        doc = self.controller.document
        self.object_list.set_objects(
            doc.objects if doc is not None else [],
            colours=self.label_editor.colours(),
            selected=self.controller.selected_ids,
            owner=doc,
        )

    def _on_selection_changed(self, ids: list) -> None:
        if self.object_list.selected_ids() != list(ids):
            self.object_list.set_selection(ids)

    # -- errors and actions ----------------------------------------------------------------
    def show_error(self, message: str, *, hint: str = "", actions=(), key: str | None = None) -> None:
        self.status_panel.show_error(message, hint=hint, actions=actions, key=key)

    def all_actions(self) -> list[QAction]:
        """Every action with a shortcut in the window (menus, canvas, controller)."""
        return [*self.actions_by_name.values(), *(a for _, a in self._core_actions())]

    # -- closing ---------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if not self.batch_runner.confirm_close():  # a running batch: cancel it and close / keep running
            event.ignore()
            return
        if not self.save_guard.confirm_close():  # unsaved work: Save again / Discard / Cancel
            event.ignore()
            return
        from desktop_app.gui.cloud_wiring import confirm_close as cloud_confirm_close

        if not cloud_confirm_close(self):  # a running deployment / endpoints still billing
            event.ignore()
            return
        self.settings.window_geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.autosaver.close()
        self.controller.shutdown()
        self.batch_runner.shutdown()  # after the worker stopped: a waiting batch call is released
        for dialog in self._dialogs.values():
            task = getattr(dialog, "task", None)
            if task is not None:
                task.cancel("the app is closing")
                task.wait(5)
        super().closeEvent(event)


def _app_secret_store() -> Any:
    """The process-wide secret store (session-only secrets are shared with the settings dialog)."""
    from desktop_app.core.secrets import default_store

    return default_store()
