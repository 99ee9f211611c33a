"""Save docs/screenshots/19-remote-server.png: the main window annotating through our own server
(Inference -> Backend -> Own server): a click and a refinement click on the sample image; the
status bar says where inference runs and the last round trip.

    .venv/bin/python scripts/screenshot_remote.py [--out docs/screenshots]

Offscreen, with its own settings folder. The server is ``langsam-studio serve --backend classic``
in a subprocess on a free loopback port (the weight-free backend: the flow and the wire are real).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def _serve() -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "serve", "--backend", "classic", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def _click(canvas, x: float, y: float, *, right: bool = False) -> None:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    p = canvas.to_screen(x, y)
    button = Qt.MouseButton.RightButton if right else Qt.MouseButton.LeftButton
    QTest.mouseClick(canvas, button, Qt.KeyboardModifier.NoModifier, QPoint(round(p.x()), round(p.y())))


def main(argv: list[str] | None = None) -> int:
    from screenshots import _spin, open_sample, prepare, save_and_close

    out, app = prepare(argv, __doc__)
    proc, url = _serve()
    try:
        window = open_sample(app, backend="server", values={"remote/server_url": url})
        controller, canvas = window.controller, window.canvas
        assert _spin(app, 60, lambda: controller.backend_info is not None and url in controller.backend_info.device), (
            "the server backend did not start"
        )
        canvas.setFocus()
        _click(canvas, 215, 100)  # the white wall of the cup
        if not _spin(app, 30, lambda: controller.candidates is not None):
            raise SystemExit(f"no answer: {window.status_panel.error_text()} / {window.status_panel.message_text()}")
        first = controller.candidates
        _click(canvas, 300, 60, right=True)  # not the rim: a refinement by reference
        assert _spin(app, 30, lambda: controller.candidates is not None and controller.candidates is not first)
        save_and_close(app, window, out / "19-remote-server.png")
    finally:
        proc.terminate()
        proc.wait(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
