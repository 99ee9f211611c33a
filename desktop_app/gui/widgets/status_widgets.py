"""Permanent status-bar widgets about the canvas: zoom %, the cursor in image pixels with the
pixel's value (RGB, or the raw 16-bit value), the brush size, and the focused candidate
("candidate 2/3 · score 0.91") while a person steps through them with Tab.

They only listen: to the canvas's signals (zoom, cursor, brush, tool) and the controller's
``candidates_changed``.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar

from desktop_app.core.prediction_policy import object_score
from desktop_app.gui.canvas.tools import Tool


def pixel_text(image, x: float, y: float) -> str:
    """The value under image pixel (x, y): "RGB 220,30,30", or "value 40123" for a raw
    high-bit-depth sample ('' outside the image)."""
    if image is None:
        return ""
    ix, iy = int(x), int(y)
    if not (0 <= ix < image.width and 0 <= iy < image.height):
        return ""
    raw = getattr(image.decoded, "raw", None)
    if raw is not None:
        value = raw[iy, ix]
        return f"value {int(value)}" if raw.ndim == 2 else "value " + ",".join(str(int(v)) for v in value)
    r, g, b = (int(v) for v in image.array[iy, ix, :3])
    return f"RGB {r},{g},{b}"


def candidate_text(state) -> str:
    """ "candidate 2/3 · score 0.91" for the focused candidate; '' when there is none."""
    if state is None or not state.candidates:
        return ""
    focused = state.focused
    text = f"candidate {state.index + 1}/{len(state.candidates)}"
    if focused is not None:
        text += f" · score {object_score(focused):.2f}"
        if not state.checked(state.index):
            text += " · unchecked"
    return text


class CanvasStatusWidgets:
    """The labels, added to ``status_bar`` as permanent widgets (right-hand side)."""

    def __init__(self, status_bar: QStatusBar, *, canvas, controller) -> None:
        self.canvas, self.controller = canvas, controller
        self.candidate = QLabel("")
        self.candidate.setObjectName("status_candidate")
        self.cursor = QLabel("")
        self.cursor.setObjectName("status_cursor")
        self.cursor.setToolTip("Cursor position in image pixels and the pixel's value")
        self.zoom = QLabel("")
        self.zoom.setObjectName("status_zoom")
        self.zoom.setToolTip("Zoom (Ctrl+wheel, Ctrl++ / Ctrl+-; Ctrl+F fits, Ctrl+0 is 100 %)")
        self.brush = QLabel("")
        self.brush.setObjectName("status_brush")
        self.brush.setToolTip("Brush / eraser diameter in image pixels ([ and ] change it)")
        widest = {
            self.candidate: "candidate 10/10 · score 0.00",
            self.cursor: "x 00000, y 00000 · RGB 255,255,255",
            self.zoom: "zoom 1000%",
            self.brush: "brush 500 px",
        }
        for label, text in widest.items():
            # a thin divider each, and room for their longest text (they never get clipped)
            label.setStyleSheet("QLabel { padding: 0 5px; border-left: 1px solid palette(mid); }")
            label.setMinimumWidth(label.fontMetrics().horizontalAdvance(text) + 12)
            status_bar.addPermanentWidget(label)
        # the backend / device texts (full text in their tool tips) give way first when space is short
        for other in (getattr(status_bar, "backend_label", None), getattr(status_bar, "device_label", None)):
            if other is not None:
                other.setMinimumWidth(80)
                other.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        canvas.zoom_changed.connect(self.show_zoom)
        canvas.cursor_moved.connect(self.show_cursor)
        canvas.brush_size_changed.connect(self.show_brush)
        canvas.tool_changed.connect(lambda _tool: self.show_brush(canvas.brush_size))
        controller.candidates_changed.connect(self.show_candidate)
        self.show_zoom(canvas.scale if canvas.image is not None else None)
        self.show_brush(canvas.brush_size)
        self.candidate.hide()

    def show_zoom(self, scale: float | None) -> None:
        self.zoom.setText("zoom –" if scale is None else f"zoom {scale * 100:.0f}%")

    def show_cursor(self, x: float, y: float) -> None:
        image = self.canvas.image
        value = pixel_text(image, x, y)
        self.cursor.setText(f"x {int(x)}, y {int(y)} · {value}" if value else "")

    def show_brush(self, size: int) -> None:
        tool = self.canvas.tool
        self.brush.setText(f"brush {size} px")
        self.brush.setEnabled(tool in (Tool.BRUSH, Tool.ERASER))

    def show_candidate(self, state) -> None:
        text = candidate_text(state)
        self.candidate.setText(text)
        self.candidate.setVisible(bool(text))
