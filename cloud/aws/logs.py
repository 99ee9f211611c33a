"""Tail an endpoint's CloudWatch log group while it starts, and fetch the lines after a failure.

Group ``/aws/sagemaker/Endpoints/<name>``, streams ``<Variant>/<instance id>``. A missing group
is normal for the first minutes of a deploy ("no log group yet"); AccessDenied means the caller
lacks ``logs:FilterLogEvents`` — both are states, not errors, so waiting goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any


class TailState(str, Enum):
    OK = "ok"
    NO_GROUP = "no-group"
    DENIED = "denied"
    ERROR = "error"


STATE_TEXT = {
    TailState.NO_GROUP: "no log group yet (the instance has not started logging)",
    TailState.DENIED: "cannot read the logs: the caller lacks logs:FilterLogEvents",
}


@dataclass(frozen=True, kw_only=True)
class LogLine:
    timestamp_ms: int
    stream: str
    message: str


@dataclass(frozen=True, kw_only=True)
class TailBatch:
    lines: tuple[LogLine, ...]
    state: TailState
    note: str = ""  # plain words for a non-OK state


def log_group(endpoint_name: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def _code(err: BaseException) -> str:
    response = getattr(err, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class LogTail:
    """Returns only new lines on each :meth:`poll` (deduplicated by event id)."""

    def __init__(
        self,
        logs_client: Any,
        endpoint_name: str,
        *,
        since_ms: int | None = None,
        stream_prefix: str | None = None,
        max_pages: int = 10,
    ) -> None:
        self._logs = logs_client
        self.group = log_group(endpoint_name)
        self._start = since_ms if since_ms is not None else int(time.time() * 1000) - 60_000
        self._prefix = stream_prefix
        self._seen: set[str] = set()
        self._max_pages = max_pages

    def poll(self) -> TailBatch:
        kwargs: dict[str, Any] = {"logGroupName": self.group, "startTime": self._start}
        if self._prefix:
            kwargs["logStreamNamePrefix"] = self._prefix
        lines: list[LogLine] = []
        try:
            for _ in range(self._max_pages):
                page = self._logs.filter_log_events(**kwargs)
                for event in page.get("events", []):
                    event_id = (
                        event.get("eventId")
                        or f"{event.get('logStreamName')}:{event.get('timestamp')}:{event.get('message')}"
                    )
                    if event_id in self._seen:
                        continue
                    self._seen.add(event_id)
                    lines.append(
                        LogLine(
                            timestamp_ms=int(event.get("timestamp", 0)),
                            stream=str(event.get("logStreamName", "")),
                            message=str(event.get("message", "")).rstrip("\n"),
                        )
                    )
                token = page.get("nextToken")
                if not token:
                    break
                kwargs["nextToken"] = token
        except Exception as err:  # noqa: BLE001 - every state is reported in words
            code = _code(err)
            if code == "ResourceNotFoundException":
                return TailBatch(lines=(), state=TailState.NO_GROUP, note=STATE_TEXT[TailState.NO_GROUP])
            if code in {"AccessDeniedException", "AccessDenied"}:
                return TailBatch(lines=(), state=TailState.DENIED, note=STATE_TEXT[TailState.DENIED])
            return TailBatch(lines=tuple(lines), state=TailState.ERROR, note=f"reading logs failed: {err}")
        lines.sort(key=lambda line: line.timestamp_ms)
        if lines:
            # Later polls start a little before the newest line: CloudWatch may deliver late.
            self._start = max(self._start, lines[-1].timestamp_ms - 5_000)
        return TailBatch(lines=tuple(lines), state=TailState.OK)


def recent_lines(logs_client: Any, endpoint_name: str, *, minutes: float = 30, limit: int = 200) -> TailBatch:
    """The last ``limit`` lines of the past ``minutes`` (for ``deploy logs`` and after a failure)."""
    tail = LogTail(logs_client, endpoint_name, since_ms=int((time.time() - minutes * 60) * 1000), max_pages=50)
    batch = tail.poll()
    return TailBatch(lines=batch.lines[-limit:], state=batch.state, note=batch.note)


def stream_from_arn(log_stream_arn: str | None) -> tuple[str, str] | None:
    """``(group, stream)`` from a ModelError's LogStreamArn, or None."""
    if not log_stream_arn or ":log-group:" not in log_stream_arn:
        return None
    rest = log_stream_arn.split(":log-group:", 1)[1]
    group, _, stream = rest.partition(":log-stream:")
    return group, stream
