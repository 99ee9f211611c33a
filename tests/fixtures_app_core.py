"""Fixtures for the app-core tests: a synthetic scene with known objects, a canvas + controller
driven by real mouse/key events."""

from __future__ import annotations

import numpy as np
import pytest

SCENE_H, SCENE_W = 240, 320


def scene_objects() -> dict[str, np.ndarray]:
    """The known objects of :func:`scene_image` as full-resolution masks."""
    yy, xx = np.mgrid[0:SCENE_H, 0:SCENE_W]
    return {
        "disk": (xx - 80) ** 2 + (yy - 80) ** 2 <= 40**2,
        "rect": (xx >= 170) & (xx < 290) & (yy >= 40) & (yy < 110),
        "bar": (xx >= 60) & (xx < 260) & (yy >= 160) & (yy < 205),
    }


def scene_image(seed: int = 0) -> np.ndarray:
    """A textured grey background with a red disk, a blue rectangle and a green bar."""
    rng = np.random.default_rng(seed)
    image = (rng.normal(110, 12, size=(SCENE_H, SCENE_W, 1)).clip(0, 255) * np.ones(3)).astype(np.uint8)
    colours = {"disk": (210, 40, 40), "rect": (40, 70, 210), "bar": (40, 190, 60)}
    for name, mask in scene_objects().items():
        noise = rng.normal(0, 6, size=(int(mask.sum()), 3))
        image[mask] = (np.array(colours[name]) + noise).clip(0, 255).astype(np.uint8)
    return image


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


@pytest.fixture
def scene_path(tmp_path):
    from PIL import Image

    path = tmp_path / "scene.png"
    Image.fromarray(scene_image()).save(path)
    return str(path)


@pytest.fixture
def core_app(qtbot):
    """(canvas, controller) in a shown 640x480 canvas, torn down with the worker threads."""
    from desktop_app.gui.canvas import ImageCanvas
    from desktop_app.gui.controller import AnnotationController

    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(640, 480)
    canvas.show()
    qtbot.waitExposed(canvas)
    controller = AnnotationController(canvas=canvas)
    yield canvas, controller
    controller.shutdown()


def open_image(qtbot, controller, path: str, document=None):
    with qtbot.waitSignal(controller.document_loaded, timeout=30_000):
        controller.load_image(path, document)
    controller.canvas.setFocus()
    return controller.document


def screen_point(canvas, x: float, y: float):
    """The canvas widget position of image pixel (x, y)."""
    from PySide6.QtCore import QPoint

    p = canvas.to_screen(x + 0.5, y + 0.5)
    return QPoint(round(p.x()), round(p.y()))


def drag(qtbot, widget, start, end, *, button=None, steps: int = 8, modifier=None):
    """Press at ``start``, move in ``steps``, release at ``end`` with real mouse events."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    button = button or Qt.MouseButton.LeftButton
    mods = modifier or Qt.KeyboardModifier.NoModifier

    def send(kind, pos, buttons):
        ev = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons, mods)
        QApplication.sendEvent(widget, ev)

    send(QMouseEvent.Type.MouseButtonPress, start, button)
    for i in range(1, steps + 1):
        pos = QPoint(start.x() + (end.x() - start.x()) * i // steps, start.y() + (end.y() - start.y()) * i // steps)
        ev = QMouseEvent(
            QMouseEvent.Type.MouseMove,
            QPointF(pos),
            QPointF(widget.mapToGlobal(pos)),
            Qt.MouseButton.NoButton,
            button,
            mods,
        )
        QApplication.sendEvent(widget, ev)
    send(QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)
