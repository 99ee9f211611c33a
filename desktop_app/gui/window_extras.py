"""Seeing the state (issue 12): assembles the tool bar, the view controls, the status-bar
widgets and the candidate list into the main window and wires them, so main_window.py only
calls :func:`install_view_state`.

* tool bar: the canvas's tool QActions (exclusive, checkable) + fit / 100 % + mask opacity,
  hide all (Ctrl+H), outline only (O) + the contrast window of a 16-/12-bit image;
* status bar: candidate n/N · score, cursor x, y · pixel value, zoom %, brush size;
* a "Candidates" dock: a text prompt's detections with a check box each (Enter accepts the
  checked ones).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget

from desktop_app.gui.widgets.candidate_list import CandidateListWidget
from desktop_app.gui.widgets.status_widgets import CanvasStatusWidgets
from desktop_app.gui.widgets.tool_bar import CanvasToolBar, capabilities_of
from desktop_app.gui.widgets.view_controls import ContrastControls, OpacitySlider

if TYPE_CHECKING:
    from desktop_app.gui.main_window import MainWindow  # imports this module at run time


@dataclass
class ViewState:
    tool_bar: CanvasToolBar
    opacity: OpacitySlider
    contrast: ContrastControls
    contrast_action: QAction
    status: CanvasStatusWidgets
    candidates: CandidateListWidget
    candidate_dock: QDockWidget


def install_view_state(window: MainWindow) -> ViewState:
    canvas, controller, actions = window.canvas, window.controller, window.actions_by_name

    tool_bar = CanvasToolBar(canvas.actions, window)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tool_bar)
    tool_bar.addSeparator()
    opacity = OpacitySlider(canvas)
    tool_bar.addWidget(opacity)
    tool_bar.addAction(actions["hide_masks"])
    tool_bar.addAction(actions["outline_only"])
    tool_bar.addSeparator()
    contrast = ContrastControls(actions["auto_contrast"])
    contrast_action = tool_bar.addWidget(contrast)
    contrast_action.setVisible(False)

    def set_option(**changes) -> None:
        canvas.set_view_options(replace(canvas.view_options, **changes))

    actions["hide_masks"].toggled.connect(lambda on: set_option(show_objects=not on))
    actions["outline_only"].toggled.connect(lambda on: set_option(outline_only=on))

    def show_contrast(image=None) -> None:
        contrast_action.setVisible(contrast.show_image(controller.image))

    def set_window(win) -> None:
        if controller.set_window(win):
            show_contrast()
            controller.status.emit("contrast: auto (0.5–99.5 %)" if win is None else f"contrast: {win.describe()}")
        else:
            controller.status.emit("contrast applies to 16-bit and 12-bit images only")

    actions["auto_contrast"].triggered.connect(lambda: set_window(None))
    contrast.window_requested.connect(set_window)
    controller.document_loaded.connect(lambda *_: show_contrast())
    controller.image_changed.connect(show_contrast)

    status = CanvasStatusWidgets(window.statusBar(), canvas=canvas, controller=controller)

    candidates = CandidateListWidget(colour_for=canvas.colour_for, fallback_label=lambda: controller.active_label)
    candidates.setObjectName("candidate_list")
    dock = QDockWidget("Candidates", window)
    dock.setObjectName("dock_candidates")
    dock.setWidget(candidates)
    dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
    )
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    controller.candidates_changed.connect(candidates.set_state)
    candidates.check_changed.connect(controller.offer.set_checked)
    candidates.focus_requested.connect(controller.offer.focus)
    candidates.accept_requested.connect(controller.accept)
    candidates.discard_requested.connect(controller.discard_prompt)

    def on_backend(info) -> None:
        tool_bar.set_capabilities(capabilities_of(info))

    controller.backend_changed.connect(on_backend)
    return ViewState(
        tool_bar=tool_bar,
        opacity=opacity,
        contrast=contrast,
        contrast_action=contrast_action,
        status=status,
        candidates=candidates,
        candidate_dock=dock,
    )
