"""Run the app with uvicorn on a background thread (tests, benchmarks, an in-app local server)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class BackgroundServer:
    """``with BackgroundServer(app) as srv: requests to srv.url``. Binds 127.0.0.1 on a free port
    by default (the socket is bound before the thread starts, so there is no port race)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host = host
        self.port = self._sock.getsockname()[1]
        server_config = getattr(getattr(app, "state", None), "config", None)
        options: dict[str, Any] = {}
        if server_config is not None and hasattr(server_config, "header_timeout_s"):
            from inference.server.guard import uvicorn_options

            options = uvicorn_options(server_config)  # the same connection limits as `langsam-studio serve`
        config = uvicorn.Config(
            app,
            log_level=log_level,
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=5,
            lifespan="on",
            **options,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="langsam-uvicorn", daemon=True
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the HTTP server thread stopped during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("the HTTP server did not start in time")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
