"""Save docs/screenshots/15-sam3-exemplars-RANDOM-WEIGHTS.png: SAM 3's Exemplar tool (X) in use
on the sample image: a positive example box (green) around the spoon, a counter-example
(red, dashed) on the cup's handle, the candidates that came back and the candidate list.

    .venv/bin/python scripts/screenshot_sam3.py [--out docs/screenshots]

Offscreen, with its own settings folder. The SAM 3 weights are gated, so the backend is the real
``sam3`` backend on a tiny RANDOM checkpoint (:mod:`inference.random_sam3`): the boxes, the tool,
the candidate list and the flow are real; the masks mean nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def _drag(canvas, a, b, *, shift: bool = False) -> None:
    """A real mouse drag in image pixels (Shift held: a counter-example)."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    mods = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
    start, end = canvas.to_screen(*a), canvas.to_screen(*b)
    left = Qt.MouseButton.LeftButton

    def send(kind, pos, button, buttons):
        QApplication.sendEvent(
            canvas, QMouseEvent(kind, QPointF(pos), QPointF(canvas.mapToGlobal(pos)), button, buttons, mods)
        )

    send(QMouseEvent.Type.MouseButtonPress, start, left, left)
    for i in range(1, 9):
        send(QMouseEvent.Type.MouseMove, start + (end - start) * (i / 8), Qt.MouseButton.NoButton, left)
    send(QMouseEvent.Type.MouseButtonRelease, end, left, Qt.MouseButton.NoButton)


def main(argv: list[str] | None = None) -> int:
    from screenshots import _spin, open_sample, prepare, save_and_close

    out, app = prepare(argv, __doc__)
    home = os.environ["LANGSAM_STUDIO_HOME"]
    from desktop_app.gui.canvas.tools import Tool
    from inference.backends import create_backend
    from inference.random_sam3 import write_random_sam3

    window = open_sample(app)
    checkpoint = write_random_sam3(Path(home) / "sam3-random", size="test", seed=0)
    controller, canvas = window.controller, window.canvas
    controller.worker.use_backend(create_backend("sam3", device="cpu", checkpoint=str(checkpoint)))
    assert _spin(app, 120, lambda: controller.backend_info is not None and controller.backend_info.backend == "sam3")
    window.label_editor.add("spoon")
    bar = window.prompt_bar
    bar.box_threshold.setValue(0.0)  # random weights score low: keep the best few
    bar.max_detections.setValue(3)
    bar.set_text("spoon")
    canvas.setFocus()
    canvas.set_tool(Tool.EXEMPLAR)
    _spin(app, 0.3)
    _drag(canvas, (322, 62), (426, 326))  # the spoon: "things like this"
    assert _spin(app, 60, lambda: controller.candidates is not None), "no candidates"
    _drag(canvas, (193, 228), (262, 306), shift=True)  # the cup's handle: "not like this"
    assert _spin(
        app,
        60,
        lambda: (
            controller.candidates is not None
            and controller.prompting.request_id == 0
            and len(controller.exemplars) == 2
        ),
    ), "no candidates for two exemplars"
    save_and_close(app, window, out / "15-sam3-exemplars-RANDOM-WEIGHTS.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
