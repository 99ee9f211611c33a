"""View controls in the tool bar: mask opacity, hide all masks, outline only (the canvas's
:class:`~desktop_app.gui.canvas.scene.ViewOptions`), and for a 16-/12-bit image the contrast
window (auto = percentile stretch, or low / high raw values a person types): the window is
applied to what is shown AND what the model gets (:meth:`AnnotationController.set_window`).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QSlider, QSpinBox, QToolButton, QWidget

from desktop_app.core.contrast import U16_MAX, Window


class OpacitySlider(QWidget):
    """ "Opacity [slider] 100%": the masks' opacity, 0..100 %."""

    def __init__(self, canvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("mask_opacity")
        self.slider.setRange(0, 100)
        self.slider.setValue(round(canvas.view_options.opacity * 100))
        self.slider.setFixedWidth(110)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("Mask opacity")
        self.value = QLabel("")
        self.value.setMinimumWidth(34)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(QLabel("Opacity"))
        layout.addWidget(self.slider)
        layout.addWidget(self.value)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        self.slider.valueChanged.connect(self._changed)
        self._changed(self.slider.value())

    def _changed(self, value: int) -> None:
        self.value.setText(f"{value}%")
        self.canvas.set_view_options(replace(self.canvas.view_options, opacity=value / 100))


class ContrastControls(QWidget):
    """ "Contrast [Auto] low [..] high [..]" for a high-bit-depth image (hidden for 8-bit)."""

    window_requested = Signal(object)  # Window, or None for auto-contrast

    def __init__(self, auto_action, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.auto_button = QToolButton()
        self.auto_button.setDefaultAction(auto_action)
        self.auto_button.setText("Auto")
        self.auto_button.setObjectName("contrast_auto")
        self.low = QSpinBox()
        self.high = QSpinBox()
        for spin, name, tip in (
            (self.low, "contrast_low", "Raw value shown black"),
            (self.high, "contrast_high", "Raw value shown white"),
        ):
            spin.setObjectName(name)
            spin.setRange(0, U16_MAX)
            spin.setToolTip(tip + " (the model sees the same stretched image)")
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._typed)
        self.state = QLabel("")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(QLabel("Contrast"))
        layout.addWidget(self.auto_button)
        layout.addWidget(QLabel("low"))
        layout.addWidget(self.low)
        layout.addWidget(QLabel("high"))
        layout.addWidget(self.high)
        layout.addWidget(self.state)
        self._showing = False
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)

    def show_image(self, image) -> bool:
        """Follow the image on screen: its window; False for an 8-bit image (the caller hides
        the control: inside a tool bar that is its action's visibility)."""
        decoded = None if image is None else image.decoded
        if decoded is None or decoded.raw is None or decoded.window is None:  # 8-bit
            return False
        self._showing = True
        try:
            self.low.setValue(round(decoded.window.low))
            self.high.setValue(round(decoded.window.high))
        finally:
            self._showing = False
        self.state.setText("auto 0.5–99.5 %" if decoded.auto else "manual")
        return True

    def _typed(self, _value: int) -> None:
        if not self._showing:
            self.window_requested.emit(Window(self.low.value(), max(self.high.value(), self.low.value() + 1)))
