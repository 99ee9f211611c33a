"""The window's commands as one table: name, menu text, shortcuts, group, tip.

The main window builds QActions from :data:`ACTION_SPECS`, adds them to menus and to itself (so
shortcuts work whatever has focus) and connects each by name. The shortcuts help reads the same
QActions, so it can never disagree with what the keys do.
"""

from __future__ import annotations

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
    # Help
    ActionSpec(name="shortcuts", text="&Keyboard shortcuts", group="Help", keys=("F1",)),
    ActionSpec(name="about", text="&About LangSAM Studio", group="Help"),
)

MENU_ORDER = ("File", "Edit", "Image", "Labels", "Inference", "View", "Help")


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
