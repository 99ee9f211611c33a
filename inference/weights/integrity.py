"""Cheap and thorough checks that a weights file is what it claims to be (no torch needed)."""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

CHUNK = 4 * 1024 * 1024
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


def sha256_file(path: Path, *, progress: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in chunks; ``progress(n)`` is told each chunk's size."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def safetensors_problem(path: Path) -> str | None:
    """``None`` if ``path`` has a well-formed safetensors header whose tensors fill the file.

    Format: 8-byte little-endian header length N, N bytes of JSON mapping tensor names to
    ``{"dtype", "shape", "data_offsets": [begin, end]}``, then the data. Reads only the header.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{path.name} is {size} bytes, too short to be a safetensors file"
            (n,) = struct.unpack("<Q", head)
            if n == 0 or n > MAX_SAFETENSORS_HEADER or 8 + n > size:
                return f"{path.name} has an invalid safetensors header length ({n} bytes in a {size}-byte file)"
            header = json.loads(fh.read(n).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"{path.name} has an unreadable safetensors header: {exc}"
    if not isinstance(header, dict):
        return f"{path.name} has a safetensors header that is not a JSON object"
    data_len = size - 8 - n
    end_max = 0
    tensors = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = (int(v) for v in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            return f"{path.name}: tensor '{name}' has no valid data_offsets"
        if not 0 <= begin <= end <= data_len:
            return (
                f"{path.name}: tensor '{name}' ends at byte {end} but the file holds only "
                f"{data_len} data bytes (truncated download?)"
            )
        end_max = max(end_max, end)
        tensors += 1
    if tensors == 0:
        return f"{path.name} holds no tensors"
    if end_max != data_len:
        return f"{path.name} has {data_len - end_max} unexpected bytes after the last tensor"
    return None


def torch_checkpoint_problem(path: Path) -> str | None:
    """``None`` if ``path`` looks like a ``torch.save`` (zip) checkpoint with a readable index."""
    try:
        if not zipfile.is_zipfile(path):
            return f"{path.name} is not a PyTorch checkpoint (not a zip archive: truncated or a different file)"
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        return f"{path.name} is not a readable PyTorch checkpoint: {exc}"
    if not any(name.endswith("data.pkl") for name in names):
        return f"{path.name} is a zip archive but not a PyTorch checkpoint (no data.pkl)"
    return None


def json_problem(path: Path, *, expect_model_type: str | None = None) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"{path.name} is not valid JSON: {exc}"
    if (
        expect_model_type is not None
        and isinstance(data, dict)
        and data.get("model_type") not in (None, expect_model_type)
    ):
        return f"{path.name} describes a '{data.get('model_type')}' model, not '{expect_model_type}'"
    return None
