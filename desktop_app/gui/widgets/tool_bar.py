"""The tool bar: the canvas's tools as checkable buttons (the canvas's own QActions, in their
exclusive group, so the button of the active tool is down whichever way it was chosen: a click
here, its key or the Tools menu), then fit / 100 % and the view controls.

A tool that needs something of the backend (``exemplar`` needs SAM 3's exemplar prompts) is
shown only while the backend can do it; tools that do not exist on the canvas are not shown.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar, QWidget

from desktop_app.core.backend_choices import CHOICES, BackendKind, Capability

# a tool's value -> what the backend must answer for the tool to be offered
TOOL_NEEDS: dict[str, Capability] = {"exemplar": Capability.EXEMPLARS}

STYLE = """
QToolBar#toolbar_tools QToolButton { padding: 3px 8px; border: 1px solid transparent; border-radius: 4px; }
QToolBar#toolbar_tools QToolButton:hover { border-color: palette(mid); }
QToolBar#toolbar_tools QToolButton:checked { background: palette(highlight); color: palette(highlighted-text);
                                             border-color: palette(highlight); font-weight: bold; }
"""


def capabilities_of(info) -> Capability:
    """What the running backend answers: the registry's entry, else what ``BackendInfo`` says."""
    choice = CHOICES.get(getattr(info, "backend", ""))
    if choice is not None:
        if choice.kind is not BackendKind.LOCAL and getattr(info, "supports_exemplars", False):
            return choice.capabilities | Capability.EXEMPLARS  # a server / endpoint running SAM 3 says so
        return choice.capabilities
    caps = Capability.NONE
    if getattr(info, "supports_text", False):
        caps |= Capability.TEXT
    if getattr(info, "supports_points", False):
        caps |= Capability.POINTS | Capability.BOXES
    if getattr(info, "supports_exemplars", False):
        caps |= Capability.EXEMPLARS
    return caps


class CanvasToolBar(QToolBar):
    def __init__(self, canvas_actions, parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.setObjectName("toolbar_tools")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setStyleSheet(STYLE)
        # the tools in the canvas's order, select / pan last (as the hand is last in labelme/CVAT)
        tools = sorted(canvas_actions.tools.items(), key=lambda kv: kv[0].value == "select")
        self.tool_actions = dict(tools)
        for tool, action in self.tool_actions.items():
            keys = action.shortcut().toString()
            self.addAction(action)
            button = self.widgetForAction(action)
            button.setObjectName(f"tool_{tool.value}")
            button.setToolTip(f"{tool.title} ({keys})" if keys else tool.title)  # the action's own tip stays
        self.addSeparator()
        for action in (canvas_actions.fit, canvas_actions.actual_size):
            self.addAction(action)
        self.set_capabilities(Capability.NONE)

    def set_capabilities(self, capabilities: Capability) -> None:
        """Offer the tools the backend can serve (others, e.g. exemplar without SAM 3, are hidden)."""
        for tool, action in self.tool_actions.items():
            need = TOOL_NEEDS.get(tool.value)
            action.setVisible(need is None or need in capabilities)

    def active_tool_text(self) -> str:
        """The checked button's text (what a person sees pressed)."""
        for action in self.tool_actions.values():
            if action.isChecked():
                return action.text()
        return ""
