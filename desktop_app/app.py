"""Start the Qt application (placeholder window until the app issue lands)."""

from __future__ import annotations

import sys
from typing import Sequence


def run_app(argv: Sequence[str]) -> int:
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    label = QLabel("LangSAM Studio")
    label.resize(480, 320)
    label.show()
    return app.exec()
