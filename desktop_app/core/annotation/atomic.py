"""Atomic file writes: a temp file in the same folder, fsync, then ``os.replace``.

A crash or a full disk leaves either the old file or the new one, never half of each; a failed
write removes its temp file and raises :class:`SaveError` with a message for a person.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


class SaveError(OSError):
    """A file could not be written; ``str(err)`` says which and why. The old file is intact."""


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.EDQUOT:
        return "the disk quota is exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "the disk is read-only"
    return exc.strerror or str(exc)


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Create or replace ``path`` with what ``write(file)`` writes, atomically."""
    target = Path(path)
    tmp_name: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            try:  # keep the permissions the user gave the old file
                os.chmod(tmp_name, target.stat().st_mode & 0o7777)
            except OSError:
                pass
        else:
            os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, target)
        tmp_name = None
        _fsync_dir(target.parent)
    except OSError as exc:
        raise SaveError(
            exc.errno, f"could not save '{target}': {_reason(exc)}; the previous version of the file is unchanged"
        ) from exc
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    return target


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    def write(f: BinaryIO) -> None:
        f.write(data)

    return write_atomic(path, write)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; done once, at import, before threads start
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); not possible on Windows, where it is skipped."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- stale temp files ------------------------------------------------------------------------
# ``tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp")`` above: a dot, the target's name, a dot,
# 8 characters of ``tempfile``'s alphabet, ".tmp". A kill -9 between mkstemp and os.replace
# leaves one behind.
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
STALE_TEMP_AGE = 15 * 60.0  # seconds; a writer in progress touches its file far more often


def clean_stale_temp_files(
    folder: str | os.PathLike[str], *, older_than: float = STALE_TEMP_AGE, target_suffix: str = ""
) -> list[Path]:
    """Remove temp files :func:`write_atomic` left in ``folder`` (not sub-folders) when a process
    was killed mid-write. Conservative: only names of our own pattern whose target name ends with
    ``target_suffix``, only regular files (not links), only when not modified for
    ``older_than`` seconds (a running writer's file is fresh). Never raises; returns what was
    removed."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not match["target"].endswith(target_suffix):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < older_than:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


fsync_dir = _fsync_dir  # public: also used after moving a file aside
