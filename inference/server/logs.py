"""Structured logs: one JSON object per line, request ids, never a body or a secret."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "color_message",
}  # uvicorn adds an ANSI-coloured copy of msg
_SECRET_WORDS = ("authorization", "token", "secret", "password", "credential")


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "msg": ..., <extra fields>}``.

    Extra fields whose name suggests a secret are replaced by ``"***"``.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            entry[key] = "***" if any(w in key.lower() for w in _SECRET_WORDS) else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class RateLimitFilter(logging.Filter):
    """At most one warning-or-worse line per kind (logger + event + message template) every
    ``interval_s``; the next line of that kind carries ``"suppressed": N``, the count left out.

    A flood of the same error (1,000 idle sockets hitting the descriptor limit, a client sending
    garbage in a loop) becomes a few lines a minute instead of megabytes."""

    def __init__(self, interval_s: float = 10.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[tuple[str, object, str], tuple[float, int]] = {}  # kind -> (window start, suppressed)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        kind = (record.name, getattr(record, "event", None), str(record.msg)[:200])
        now = self._clock()
        with self._lock:
            start, suppressed = self._kinds.get(kind, (None, 0))
            if start is not None and now - start < self.interval_s:
                self._kinds[kind] = (start, suppressed + 1)
                return False
            if len(self._kinds) > 1000:  # many kinds: forget the old windows
                self._kinds.clear()
            self._kinds[kind] = (now, 0)
        if suppressed:
            record.suppressed = suppressed
        return True


def configure_logging(level: str = "info", *, stream: TextIO | None = None, rate_limit_s: float = 10.0) -> None:
    """Send the server's, uvicorn's and asyncio's logs to ``stream`` (stderr) as JSON lines,
    with repeated warnings and errors rate-limited (:class:`RateLimitFilter`)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RateLimitFilter(rate_limit_s))
    for name in ("langsam.server", "uvicorn", "uvicorn.error", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
