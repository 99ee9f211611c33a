"""SAM 3 in the window (issue 11, app part): the exemplar tool and the notes of a prediction.

* The Exemplar tool (X) is offered only while the running backend takes example boxes
  (``Capability.EXEMPLARS``, i.e. SAM 3): the tool bar hides its button
  (:mod:`desktop_app.gui.widgets.tool_bar`), and here its action is disabled so the key does
  nothing either; a backend change away from SAM 3 while it is on falls back to the Box tool.
* An exemplar prompt also sends the prompt bar's text and thresholds (``concept_options``).
* ``Prediction.messages`` (e.g. "the phrase … is longer than SAM 3's 32 text tokens") are shown
  in the notification bar above the canvas (and kept in the bell's history).

The canvas draws and reports exemplar boxes (:mod:`desktop_app.gui.canvas.exemplar_tool`); the
controller keeps them with the prompt and re-runs it on each one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from desktop_app.core.backend_choices import Capability
from desktop_app.gui.canvas.tools import Tool
from desktop_app.gui.widgets.notifications import Level
from desktop_app.gui.widgets.tool_bar import capabilities_of

if TYPE_CHECKING:  # pragma: no cover
    from desktop_app.gui.main_window import MainWindow

EXEMPLAR_TIP = (
    "Exemplar (SAM 3): drag a box around one object and every object like it is found; "
    "Shift+drag marks a negative exemplar (not like this). Enter accepts, Esc drops the exemplars"
)
MESSAGES_KEY = "prediction:messages"  # a newer prediction's notes replace the older ones


def install_sam3(window: MainWindow) -> None:
    canvas, controller, bar = window.canvas, window.controller, window.prompt_bar
    action = canvas.actions.tools[Tool.EXEMPLAR]
    action.setToolTip(f"{EXEMPLAR_TIP} ({Tool.EXEMPLAR.shortcut})")
    action.setStatusTip(EXEMPLAR_TIP)
    tool_bar = getattr(getattr(window, "view_state", None), "tool_bar", None)
    if tool_bar is not None:
        button = tool_bar.widgetForAction(action)
        if button is not None:
            button.setToolTip(action.toolTip())

    def concept_options() -> dict[str, Any]:
        return {
            "text": bar.text() or None,
            "box_threshold": bar.box_threshold.value(),
            "text_threshold": bar.text_threshold.value(),
            "max_detections": bar.max_detections.value(),
        }

    controller.concept_options = concept_options

    def set_capabilities(capabilities: Capability) -> None:
        able = Capability.EXEMPLARS in capabilities
        action.setEnabled(able)
        if not able and canvas.tool is Tool.EXEMPLAR:
            canvas.set_tool(Tool.BOX)

    set_capabilities(Capability.NONE)  # until a backend says it takes exemplars
    controller.backend_changed.connect(lambda info: set_capabilities(capabilities_of(info)))

    center = window.status_panel.center

    def show_messages(messages: tuple[str, ...]) -> None:
        text = " · ".join(dict.fromkeys(m for m in messages if m))
        if text:
            center.notify(text, level=Level.WARNING, key=MESSAGES_KEY)

    controller.prediction_messages.connect(show_messages)

    def on_tool(tool: Tool) -> None:
        if tool is Tool.EXEMPLAR:
            controller.status.emit(
                "Exemplar: drag a box around one object (Shift+drag: not like this)"
                + (f"; with the text '{bar.text()}'" if bar.text() else "")
            )

    canvas.tool_changed.connect(on_tool)
