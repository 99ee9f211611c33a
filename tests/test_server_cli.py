"""``langsam-studio serve`` as a process: starts, answers, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from fixtures_server import encode_image, free_port, post_request, scene_image, serve_command
from inference import protocol as P
from inference.prompts import Point, Prompt

ROOT = Path(__file__).resolve().parents[1]


def test_serve_command_runs_the_classic_backend_and_stops_on_sigterm(tmp_path):
    port = free_port()
    cmd = serve_command(port, "--queue-size", "2")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                status = httpx.get(f"{url}/ping", timeout=2).status_code
            except httpx.TransportError:
                time.sleep(0.1)
        assert status == 200
        with httpx.Client(base_url=url, timeout=30) as c:
            r = post_request(
                c, P.SegmentRequest(prompt=Prompt(points=(Point(x=96, y=120),)), image=encode_image(scene_image(41)))
            )
            assert r.status_code == 200 and P.decode_response(r.content).prediction.best.mask[120, 96]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    err = proc.stderr.read().decode()
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert code in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    lines = [line for line in err.splitlines() if line.startswith("{")]
    assert any('"event": "request"' in line and '"status": 200' in line for line in lines), err
