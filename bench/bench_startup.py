"""App start -> window shown (goal <= 2 s), against a bare Qt window started the same way.

Each sample is a fresh interpreter, timed from process spawn to the first shown, painted window
(as a person launching ``python main.py FOLDER`` sees it), offscreen. The baseline is the least
any PySide6 app pays here: interpreter + Qt + one QWidget shown. Both run alternately, best and
median of N.

    python -m bench startup
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

GOAL_S = 2.0
SAMPLES = 5
ROOT = Path(__file__).resolve().parents[1]

APP_PROBE = r"""
import sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop_app.gui.app import create_window
window = create_window(sys.argv[1:])
window.show()
app.processEvents()
print("shown", "torch" in sys.modules, flush=True)
"""

BARE_PROBE = r"""
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication([])
window = QWidget()
window.resize(1280, 800)
window.show()
app.processEvents()
print("shown", False, flush=True)
"""


def _time_probe(code: str, args: list[str], env: dict) -> tuple[float, bool]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None  # stdout=PIPE
    try:
        for line in proc.stdout:
            if line.startswith("shown"):
                elapsed = time.perf_counter() - start
                return elapsed, line.split()[1] == "True"
        raise RuntimeError(f"the probe exited ({proc.wait()}) without showing a window")
    finally:
        proc.kill()
        proc.wait()


def run(*, out_json: str | os.PathLike[str] | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(20):
            Image.fromarray(rng.integers(0, 255, (768, 1024, 3), dtype=np.uint8)).save(folder / f"img{i:02d}.png")
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANGSAM_STUDIO_HOME=str(Path(tmp) / "home"))
        ours, bare, torch_loaded = [], [], False
        _time_probe(BARE_PROBE, [], env)  # warm the file cache for both
        for _ in range(SAMPLES):
            seconds, loaded = _time_probe(APP_PROBE, [str(folder)], env)
            ours.append(seconds)
            torch_loaded |= loaded
            bare.append(_time_probe(BARE_PROBE, [], env)[0])
    result: dict[str, Any] = {
        "suite": "startup",
        "samples": SAMPLES,
        "goal_s": GOAL_S,
        "app_best_s": round(min(ours), 3),
        "app_median_s": round(statistics.median(ours), 3),
        "bare_qt_best_s": round(min(bare), 3),
        "bare_qt_median_s": round(statistics.median(bare), 3),
        "torch_imported_at_start": torch_loaded,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    result["ratio_to_bare_qt"] = round(result["app_median_s"] / result["bare_qt_median_s"], 2)
    result["goal_met"] = result["app_median_s"] <= GOAL_S
    print(
        f"app start -> window shown: median {result['app_median_s']} s (best {result['app_best_s']} s), "
        f"goal <= {GOAL_S} s: {'met' if result['goal_met'] else 'NOT met'}"
    )
    print(
        f"bare Qt window: median {result['bare_qt_median_s']} s -> app is x{result['ratio_to_bare_qt']}; "
        f"torch imported at start: {torch_loaded}"
    )
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
