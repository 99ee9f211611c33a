"""Drive the real app offscreen and save screenshots of its main states into docs/screenshots/.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Runs with its own settings folder (a temp dir), so a person's settings are never touched. The
first start opens the bundled sample photo. Text-prompt candidates use the installed Lang-SAM
weights if there are any; otherwise tiny RANDOM weights are generated, and the screenshot's name
and caption say so (the boxes and masks are then meaningless, but the state is the real one).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _spin(app, seconds: float, until=lambda: False) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        if until():
            return True
        time.sleep(0.01)
    app.processEvents()
    return until()


def _click(canvas, x: float, y: float) -> None:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    p = canvas.to_screen(x, y)
    QTest.mouseClick(
        canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(round(p.x()), round(p.y()))
    )


def prepare(argv: list[str] | None, doc: str):
    """The start of a one-picture script: ``--out`` (default docs/screenshots) made, Qt offscreen,
    a settings folder of its own; the output folder and the QApplication."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    out = Path(parser.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["LANGSAM_STUDIO_HOME"] = tempfile.mkdtemp(prefix="langsam-screenshots-")
    from PySide6.QtWidgets import QApplication

    return out, QApplication([sys.argv[0]])


def open_sample(app, *, backend: str = "classic", values: dict[str, str] | None = None):
    """The main window (1280x800) showing the bundled sample, with ``backend`` and the settings
    ``values`` (by key, e.g. ``remote/server_url``) chosen first."""
    from desktop_app.gui.app import create_window
    from desktop_app.gui.settings import AppSettings

    settings = AppSettings()
    settings.backend = backend
    for key, value in (values or {}).items():
        settings.set_value(key, value)
    window = create_window([])
    window.resize(1280, 800)
    window.show()
    assert _spin(app, 30, lambda: window.current_name == "coffee.jpg"), "the sample did not open"
    return window


def save_and_close(app, window, path: Path) -> None:
    """The end of a one-picture script: no mouse cursor drawn, the window saved (256 colours), closed."""
    window.canvas._cursor = None
    _spin(app, 0.5)
    window.grab().save(str(path))
    _shrink(path)
    print(f"saved {path}")
    window.close()
    _spin(app, 0.2)


def _shrink(path: Path) -> None:
    """256-colour PNG: a third of the size for the repository, indistinguishable for UI pictures."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def _real_langsam_store():
    """The person's weights store if it holds Lang-SAM's two models, else ``None``."""
    from inference.weights import WeightsStore, installed_model

    store = WeightsStore()
    if installed_model("sam2", store=store) and installed_model("gdino", store=store):
        return store
    return None


def _random_langsam(home: Path) -> None:
    """Write tiny random-weight models and register them as local copies in ``home``'s store."""
    from inference.random_weights import write_random_gdino, write_random_sam2_checkpoint
    from inference.weights import WeightsStore

    models = home / "random-models"
    ckpt = write_random_sam2_checkpoint(models / "sam2.1_hiera_tiny.pt", model_id="sam2.1_hiera_tiny", seed=0)
    gdino = write_random_gdino(models / "grounding-dino-random", size="test", seed=0)
    store = WeightsStore()
    store.set_override("sam2.1_hiera_tiny", ckpt)
    store.set_override("grounding-dino-tiny", gdino)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--no-text", action="store_true", help="skip the text-prompt state (no model load)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    real_store = _real_langsam_store()
    home = Path(tempfile.mkdtemp(prefix="langsam-screenshots-"))
    os.environ["LANGSAM_STUDIO_HOME"] = str(home)

    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    from desktop_app.gui.app import create_window
    from desktop_app.gui.settings import AppSettings

    settings = AppSettings()
    settings.backend = "classic"
    window = create_window([])
    window.resize(1280, 800)
    window.show()
    saved: list[str] = []

    def shot(widget, name: str) -> None:
        _spin(app, 0.3)
        path = out / f"{name}.png"
        widget.grab().save(str(path))
        _shrink(path)
        saved.append(path.name)
        print(f"saved {path}")

    assert _spin(app, 30, lambda: window.current_name == "coffee.jpg" and window.controller.backend_info is not None), (
        "the sample did not open"
    )
    shot(window, "01-start-with-sample")

    # a point prompt with its candidate (classic backend: no weights needed)
    canvas = window.canvas
    canvas.setFocus()
    _click(canvas, 215, 100)  # the white wall of the cup
    _spin(app, 20, lambda: window.controller.candidates is not None)
    shot(window, "02-point-prompt-candidate")

    # objects listed with labels: a click for the cup, boxes for the saucer and the spoon
    from inference.prompts import Box

    prompts = (
        ("cup", lambda: _click(canvas, 215, 100)),
        ("saucer", lambda: window.controller.set_box(Box(x0=75, y0=62, x1=482, y1=400))),
        ("spoon", lambda: window.controller.set_box(Box(x0=318, y0=64, x1=424, y1=328))),
    )
    for label, prompt in prompts:
        window.label_editor.add(label)
        window.controller.discard_prompt()
        prompt()
        if _spin(app, 20, lambda: window.controller.candidates is not None):
            window.controller.accept()
    window.controller.select([])
    shot(window, "03-objects-listed")

    # issue 12: the tool bar (active tool pressed), and the status widgets while Tab cycles
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    window.actions_by_name["outline_only"].setChecked(True)
    canvas.set_tool(canvas.tool.__class__("point"))
    _click(canvas, 430, 260)
    if _spin(app, 20, lambda: window.controller.candidates is not None):
        window.controller.next_candidate()
    p = canvas.to_screen(300, 200)
    QTest.mouseMove(canvas, QPoint(round(p.x()), round(p.y())))
    shot(window, "10-toolbar-and-status")
    window.controller.discard_prompt()
    window.actions_by_name["outline_only"].setChecked(False)

    # text prompt candidates
    if not args.no_text:
        if real_store is not None:
            settings.cache_dir = str(real_store.cache_dir)
            name = "04-text-prompt-candidates"
        else:
            _random_langsam(home)
            name = "04-text-prompt-candidates-RANDOM-WEIGHTS"
        window.choose_backend("langsam", "auto")
        if _spin(
            app,
            600,
            lambda: window.controller.backend_info is not None and window.controller.backend_info.backend == "langsam",
        ):
            window.prompt_bar.set_text("cup. spoon.")
            if real_store is None:
                window.prompt_bar.max_detections.setValue(8)  # random weights: keep the picture readable
            window.prompt_bar.run()
            _spin(app, 600, lambda: window.controller.candidates is not None)
            if real_store is None:
                window.status_panel.show_error("RANDOM test weights (none installed): masks meaningless")
            shot(window, name)
            # issue 12: the candidate list, the last detection unchecked (drawn faint, Enter skips it)
            state = window.controller.candidates
            if state is not None and len(state.candidates) > 1:
                window.controller.set_candidate_checked(1, False)
            shot(window, "11-candidate-list")
        else:
            print("the Lang-SAM backend did not load:", window.status_panel.error_text())
        window.controller.discard_prompt()

    # vertex editing (issue 12): the cup's outline with its vertices, one corner being dragged
    doc = window.controller.document
    cup = next((o for o in doc.objects if o.label == "cup"), None) if doc is not None else None
    if cup is not None:
        window.controller.select([cup.id])
        canvas.setFocus()
        if canvas.vertex_editor.start(cup.id):
            outline = canvas.vertex_editor.outline
            ring = max(range(len(outline.rings)), key=lambda i: len(outline.rings[i]))
            x, y = outline.rings[ring][0]
            outline.move_vertex(ring, 0, x + 25, y - 20)  # as a drag leaves it
            canvas.vertex_editor._hover = (ring, 0)
            canvas.vertex_editor._edited()
            shot(window, "12-vertex-editing")
            canvas.vertex_editor.cancel()

    # dialogs
    window.show_export()
    shot(window._dialogs["export"], "05-export-dialog")
    window._dialogs["export"].close()
    window.show_models()
    shot(window._dialogs["models"], "06-models-dialog")
    window._dialogs["models"].close()
    window.show_import()
    shot(window._dialogs["import"], "16-import-dialog")
    window._dialogs["import"].close()
    window.show_batch()
    batch = window._dialogs.get("batch")
    if batch is not None:
        shot(batch, "17-batch-dialog")
        batch.close()
    window.status_panel.show_error(
        "Saving img.json failed: the disk is full.",
        hint="Free some space; the annotations stay in memory and are saved again automatically.",
    )
    history = window.status_panel.bell.show_history()
    shot(history, "18-messages")
    history.close()
    window.show_shortcuts()
    shot(window._dialogs["shortcuts"], "07-keyboard-shortcuts")
    window._dialogs["shortcuts"].close()
    window.actions_by_name["filter_review"].setChecked(False)
    window.close()
    _spin(app, 0.2)
    print(f"{len(saved)} screenshots in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
