"""What SageMaker endpoints THIS app created: a small JSON file in the config folder. Qt-free.

``cloud.deploy.resources.Ledger`` is the per-run record used for rollback (in memory); this is
the app's memory across runs, for the "Cloud endpoints" window and the exit prompt: the endpoint
name, region, instance type and count, when it was created, the container target and backend,
and the last status seen. ``list_deployments`` (AWS tags) finds endpoints made by any copy of
the tool; this file holds only the ones this app made, so the app never offers to delete
someone else's endpoint.

The file is written atomically; a damaged file reads as empty (it is a convenience, not truth:
the endpoints window asks AWS for the live status).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from desktop_app.core.annotation.atomic import write_text_atomic

FILE_NAME = "cloud-endpoints.json"
LIVE = {"InService", "Creating", "Updating", "SystemUpdating", "RollingBack"}


@dataclass(frozen=True, kw_only=True)
class EndpointRecord:
    name: str
    region: str
    instance_type: str
    instance_count: int = 1
    created_at: float = 0.0  # time.time() when this app created it
    target: str = ""  # "ray", "dlc", "byoc"
    backend: str = ""  # "classic", "sam2", "langsam"
    status: str = "Creating"  # the last status seen
    checked_at: float = 0.0

    def hours(self, now: float | None = None) -> float:
        return max(0.0, ((now or time.time()) - self.created_at) / 3600.0) if self.created_at else 0.0

    @property
    def live(self) -> bool:
        return self.status in LIVE


def default_path() -> Path:
    from inference.paths import config_dir

    return config_dir() / FILE_NAME


class EndpointLedger:
    """Load/record/update/forget :class:`EndpointRecord` entries (keyed by region + name)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------------
    def records(self) -> list[EndpointRecord]:
        with self._lock:
            return list(self._read().values())

    def get(self, name: str, region: str) -> EndpointRecord | None:
        with self._lock:
            return self._read().get(_key(name, region))

    def live(self) -> list[EndpointRecord]:
        """Records whose last seen status bills (InService, Creating, Updating…)."""
        return [r for r in self.records() if r.live]

    # -- writing ------------------------------------------------------------------------------
    def record(self, record: EndpointRecord) -> None:
        with self._lock:
            data = self._read()
            old = data.get(_key(record.name, record.region))
            if old is not None and old.created_at and not record.created_at:
                record = replace(record, created_at=old.created_at)
            data[_key(record.name, record.region)] = record
            self._write(data)

    def update(self, name: str, region: str, **changes: Any) -> EndpointRecord | None:
        with self._lock:
            data = self._read()
            old = data.get(_key(name, region))
            if old is None:
                return None
            new = replace(old, **changes)
            data[_key(name, region)] = new
            self._write(data)
            return new

    def forget(self, name: str, region: str) -> None:
        with self._lock:
            data = self._read()
            if data.pop(_key(name, region), None) is not None:
                self._write(data)

    # -- file ---------------------------------------------------------------------------------
    def _read(self) -> dict[str, EndpointRecord]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        out: dict[str, EndpointRecord] = {}
        fields = set(EndpointRecord.__dataclass_fields__)
        for item in raw.get("endpoints", []) if isinstance(raw, dict) else []:
            if not isinstance(item, dict) or not item.get("name"):
                continue
            try:
                rec = EndpointRecord(**{k: v for k, v in item.items() if k in fields})
            except TypeError:
                continue
            out[_key(rec.name, rec.region)] = rec
        return out

    def _write(self, data: dict[str, EndpointRecord]) -> None:
        payload = {"version": 1, "endpoints": [asdict(r) for r in data.values()]}
        write_text_atomic(self.path, json.dumps(payload, indent=1))


def _key(name: str, region: str) -> str:
    return f"{region}/{name}"


__all__ = ["EndpointLedger", "EndpointRecord", "default_path"]
