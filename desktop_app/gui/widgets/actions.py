"""The window's commands as one table: name, menu text, shortcuts, group, tip.

The main window builds QActions from :data:`ACTION_SPECS`, adds them to menus and to itself (so
shortcuts work whatever has focus) and connects each by name. The shortcuts help reads the same
QActions, so it can never disagree with what the keys do.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True, kw_only=True)
class ActionSpec:
    name: str
    text: str
    group: str  # menu it appears in: File, Edit, Image, Labels, Inference, View, Help
    keys: tuple[str, ...] = ()
    tip: str = ""
    checkable: bool = False
    in_menu: bool = True  # False: shortcut only (e.g. digit keys for labels)
    menu_role: str = ""  # a QAction.MenuRole name, e.g. "PreferencesRole" (macOS moves it to the app menu)


ACTION_SPECS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec(name="open_image", text="&Open image…", group="File", keys=("Ctrl+O",)),
    ActionSpec(name="open_folder", text="Open &folder…", group="File", keys=("Ctrl+U",)),
    ActionSpec(
        name="save",
        text="&Save",
        group="File",
        keys=("Ctrl+S",),
        tip="Write this image's annotations now (they are also saved after every change)",
    ),
    ActionSpec(
        name="export",
        text="&Export…",
        group="File",
        keys=("Ctrl+Shift+E",),
        tip="COCO, labelme, YOLO-seg or PNG masks, for this image or the whole folder",
    ),
    ActionSpec(
        name="import_annotations",
        text="&Import…",
        group="File",
        tip="Add COCO, labelme, YOLO-seg or PNG-mask annotations to this folder's images (merged, never replaced)",
    ),
    ActionSpec(
        name="autosave", text="Auto-save", group="File", checkable=True, tip="Save after every change (on by default)"
    ),
    ActionSpec(name="quit", text="&Quit", group="File", keys=("Ctrl+Q",)),
    # Image navigation
    ActionSpec(name="next_image", text="&Next image", group="Image", keys=("D",)),
    ActionSpec(name="prev_image", text="&Previous image", group="Image", keys=("A",)),
    ActionSpec(
        name="mark_done",
        text="Mark image &done",
        group="Image",
        keys=("Ctrl+Return",),
        tip="Set this image's state to done (or back to in progress)",
    ),
    ActionSpec(
        name="filter_review",
        text="Show only images to &review",
        group="Image",
        checkable=True,
        tip="Filter the file list to images a batch run marked for review",
    ),
    # Labels
    ActionSpec(name="add_label", text="&Add label…", group="Labels", keys=("Ctrl+L",)),
    *(
        ActionSpec(
            name=f"label_{i}",
            text=f"Use label {i}",
            group="Labels",
            keys=(str(i),),
            in_menu=False,
            tip=f"Make the label in row {i} the active one (and give it to the selected objects)",
        )
        for i in range(1, 10)
    ),
    # Edit (object list). Delete, merge, subtract, hide, accept, discard are APP-CORE's
    # controller actions; the window lists them under Edit and makes their keys window-wide.
    ActionSpec(name="relabel", text="Change &label of selection…", group="Edit", keys=("Ctrl+E",)),
    # Edit: shapes (issue 12; wired by desktop_app/gui/editing.py)
    ActionSpec(
        name="copy",
        text="&Copy objects",
        group="Edit",
        keys=("Ctrl+C",),
        tip="Copy the selected objects (paste them here or onto another image)",
    ),
    ActionSpec(
        name="paste",
        text="&Paste objects",
        group="Edit",
        keys=("Ctrl+V",),
        tip="Paste copied objects at the same pixel positions; on a smaller image they are clipped",
    ),
    ActionSpec(
        name="duplicate",
        text="&Duplicate objects",
        group="Edit",
        keys=("Ctrl+D",),
        tip="Copy the selected objects in place (the copies are selected)",
    ),
    ActionSpec(name="select_all", text="Select &all objects", group="Edit", keys=("Ctrl+A",)),
    ActionSpec(
        name="edit_vertices",
        text="Edit &vertices",
        group="Edit",
        keys=("Ctrl+J",),
        tip="Edit the selected object's outline: drag, click an edge to add, right-click to remove a "
        "vertex; Enter applies, Esc cancels (also: double-click an object with the Select tool)",
    ),
    ActionSpec(
        name="bring_to_front",
        text="Bring to &front",
        group="Edit",
        tip="Draw the selected objects on top of the others",
    ),
    ActionSpec(
        name="settings",
        text="Se&ttings…",
        group="Edit",
        keys=("Ctrl+,",),
        tip="Backend, models, remote server, AWS, OpenAI and Hugging Face settings and keys",
        menu_role="PreferencesRole",
    ),
    # Inference
    ActionSpec(
        name="focus_prompt",
        text="&Text prompt",
        group="Inference",
        keys=("Ctrl+T",),
        tip="Type what to segment; Enter runs it",
    ),
    ActionSpec(
        name="batch",
        text="&Batch over folder…",
        group="Inference",
        keys=("Ctrl+B",),
        tip="Run a text prompt over every image; results are marked for review",
    ),
    ActionSpec(
        name="models", text="&Models…", group="Inference", tip="Download models, see their state, or use local files"
    ),
    # View (the mask display; desktop_app/gui/window_extras.py connects them)
    ActionSpec(
        name="hide_masks",
        text="&Hide all masks",
        group="View",
        keys=("Ctrl+H",),
        checkable=True,
        tip="Hide every object's mask to see the image (candidates stay visible)",
    ),
    ActionSpec(
        name="outline_only",
        text="&Outline only",
        group="View",
        keys=("O",),
        checkable=True,
        tip="Draw objects as outlines without fill",
    ),
    ActionSpec(
        name="auto_contrast",
        text="&Auto contrast (16-bit)",
        group="View",
        keys=("Ctrl+Shift+A",),
        tip="Stretch a 16-/12-bit image from its 0.5 to 99.5 percentile (shown and sent to the model)",
    ),
    # Cloud (desktop_app/gui/cloud_wiring.py)
    ActionSpec(
        name="deploy_wizard",
        text="&Deploy to SageMaker…",
        group="Cloud",
        tip="Package, check, upload and deploy the inference to an Amazon SageMaker endpoint, step by step",
    ),
    ActionSpec(
        name="cloud_endpoints",
        text="&Endpoints…",
        group="Cloud",
        tip="The SageMaker endpoints this app created: status, cost so far, Delete",
    ),
    # Help
    ActionSpec(name="shortcuts", text="&Keyboard shortcuts", group="Help", keys=("F1",)),
    ActionSpec(name="about", text="&About LangSAM Studio", group="Help"),
)


def redo_keys() -> list[QKeySequence]:
    """Redo's keys: Ctrl+Shift+Z everywhere, and Ctrl+Y where that is the habit (Windows, Linux:
    Qt's QKeySequence.Redo there is Ctrl+Y, Alt+Shift+Backspace, Ctrl+Shift+Z; only the two Ctrl
    forms are bound). On macOS Qt's Ctrl is Cmd: Cmd+Shift+Z."""
    keys = ["Ctrl+Shift+Z"] + (["Ctrl+Y"] if sys.platform != "darwin" else [])
    return [QKeySequence(k) for k in keys]


MENU_ORDER = ("File", "Edit", "Image", "Labels", "Inference", "View", "Cloud", "Help")


def build_actions(parent: QWidget, handlers: Mapping[str, Callable[..., object]]) -> dict[str, QAction]:
    """Create every action of :data:`ACTION_SPECS`, connect it to ``handlers[name]`` (if given;
    checkable actions get the checked state) and add it to ``parent`` so its shortcut is live
    wherever focus is inside the window."""
    actions: dict[str, QAction] = {}
    for spec in ACTION_SPECS:
        action = QAction(spec.text, parent)
        action.setObjectName(f"action_{spec.name}")
        action.setProperty("group", spec.group)
        action.setProperty("in_menu", spec.in_menu)
        if spec.keys:
            action.setShortcuts([QKeySequence(k) for k in spec.keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        tip = spec.tip or spec.text.replace("&", "").rstrip("…")
        if spec.keys:
            tip += f" ({', '.join(spec.keys)})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.setCheckable(spec.checkable)
        if spec.menu_role:
            action.setMenuRole(getattr(QAction.MenuRole, spec.menu_role))
        handler = handlers.get(spec.name)
        if handler is not None:
            if spec.checkable:
                action.toggled.connect(handler)
            else:
                action.triggered.connect(lambda _checked=False, h=handler: h())
        parent.addAction(action)
        actions[spec.name] = action
    return actions
