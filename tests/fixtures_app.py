"""App-shell test helpers: a folder of synthetic images with known objects, a main window with
isolated settings, and mouse/keyboard helpers that act in image coordinates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

IMAGE_W, IMAGE_H = 200, 150

__all__ = ["synthetic_folder", "make_window"]  # the fixtures; tests import helpers by name


@dataclass(frozen=True)
class SyntheticFolder:
    folder: Path
    names: tuple[str, ...]
    truth: dict  # image name -> {object name: bool mask}


def _disk(cx: int, cy: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:IMAGE_H, :IMAGE_W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((IMAGE_H, IMAGE_W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def make_synthetic_folder(folder: Path) -> SyntheticFolder:
    """Three PNGs: flat coloured shapes on a lightly textured grey background."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    specs = {
        "img1.png": {"red": (_rect(20, 30, 90, 80), (220, 30, 30)), "blue": (_disk(150, 90, 25), (30, 40, 220))},
        "img2.png": {"green": (_rect(60, 40, 140, 110), (30, 200, 40))},
        "img10.png": {"yellow": (_disk(100, 75, 30), (230, 220, 20))},
    }
    truth = {}
    for i, (name, objects) in enumerate(specs.items()):
        rng = np.random.default_rng(i)
        image = (150 + rng.integers(-6, 7, size=(IMAGE_H, IMAGE_W, 1))).repeat(3, axis=2).astype(np.uint8)
        for mask, colour in objects.values():
            image[mask] = colour
        Image.fromarray(image).save(folder / name)
        truth[name] = {k: m for k, (m, _) in objects.items()}
    return SyntheticFolder(folder=folder, names=("img1.png", "img2.png", "img10.png"), truth=truth)


@pytest.fixture
def synthetic_folder(tmp_path) -> SyntheticFolder:
    return make_synthetic_folder(tmp_path / "photos")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


# -- driving the window ----------------------------------------------------------------------
def screen_point(canvas, x: float, y: float):
    from PySide6.QtCore import QPoint

    p = canvas.to_screen(x, y)
    return QPoint(round(p.x()), round(p.y()))


def click_image(qtbot, canvas, x: float, y: float, *, right: bool = False) -> None:
    from PySide6.QtCore import Qt

    button = Qt.MouseButton.RightButton if right else Qt.MouseButton.LeftButton
    qtbot.mouseClick(canvas, button, pos=screen_point(canvas, x, y))


def drag_image(qtbot, canvas, a: tuple[float, float], b: tuple[float, float], *, steps: int = 6) -> None:
    from PySide6.QtCore import Qt

    start, end = screen_point(canvas, *a), screen_point(canvas, *b)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    for i in range(1, steps + 1):
        t = i / steps
        from PySide6.QtCore import QPoint

        qtbot.mouseMove(
            canvas, QPoint(round(start.x() + (end.x() - start.x()) * t), round(start.y() + (end.y() - start.y()) * t))
        )
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=end)


def key(qtbot, widget, text: str) -> None:
    """Press a key sequence like 'D', '2', 'Return', 'Ctrl+Z' on ``widget``."""
    from PySide6.QtGui import QKeySequence

    combo = QKeySequence(text)[0]
    qtbot.keyClick(widget, combo.key(), combo.keyboardModifiers())


def wait_image(qtbot, window, name: str, timeout: int = 10_000) -> None:
    qtbot.waitUntil(
        lambda: (
            window.current_name == name
            and window.controller.document is not None
            and window.controller.document.image_name == name
        ),
        timeout=timeout,
    )


def wait_backend(qtbot, window, name: str, timeout: int = 60_000) -> None:
    qtbot.waitUntil(
        lambda: window.controller.backend_info is not None and window.controller.backend_info.backend == name,
        timeout=timeout,
    )


@pytest.fixture
def make_window(qtbot):
    """``make_window(argv=())`` builds the app's window like ``run_app`` does (isolated settings),
    shows it and closes it at the end of the test."""
    windows = []

    def make(argv=()):
        from desktop_app.gui.app import create_window

        window = create_window(list(argv))
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.isVisible():
            window.close()
        else:  # closed by the test, or never shown: its worker thread must still stop
            window.controller.shutdown()
