"""Where model weights live on disk, which are installed, and per-model local overrides.

Never touches the network. The models folder is, in order of precedence: the ``cache_dir``
argument (the app's settings pass it), ``$LANGSAM_STUDIO_MODELS``, ``$LANGSAM_STUDIO_HOME/models``,
then the platform's user cache folder (``platformdirs.user_cache_dir("langsam-studio")/models``):
see :func:`inference.paths.models_dir`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from inference.errors import InferenceError, WeightsMissingError
from inference.paths import models_dir as default_models_dir  # the one models-folder policy
from inference.weights import integrity
from inference.weights.catalog import ModelSpec, get_model, is_known

ModelState = Literal["installed", "missing", "partial", "override"]

OVERRIDES_FILE = "overrides.json"
RECORDS_DIR = ".records"
DOWNLOADS_DIR = ".downloads"


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    model_id: str
    ok: bool
    state: ModelState
    path: Path | None
    checks: tuple[str, ...]  # what was checked and passed
    problems: tuple[str, ...]  # what is wrong, one sentence each

    @property
    def message(self) -> str:
        if self.path is None:
            return f"{self.model_id}: not installed"
        if self.ok:
            return f"{self.model_id}: OK ({'; '.join(self.checks)})"
        return f"{self.model_id}: FAILED: {' '.join(self.problems)}"


def _write_json_atomic(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _human(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.0f} MB" if nbytes >= 1e6 else f"{nbytes:,} bytes"


class WeightsStore:
    """The models folder plus overrides. ``overrides`` given here win over persisted ones."""

    def __init__(
        self,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_models_dir()
        self._session_overrides = {k: Path(v).expanduser() for k, v in (overrides or {}).items()}

    # -- places ----------------------------------------------------------------------------
    def target_path(self, model_id: str) -> Path:
        """Where the model lives once downloaded (and where to put it by hand)."""
        return self.cache_dir / get_model(model_id).local_name

    def partial_path(self, model_id: str) -> Path:
        """The ``.part`` file (single-file models) or staging folder (directory models)."""
        spec = get_model(model_id)
        if spec.layout == "file":
            return self.cache_dir / (spec.local_name + ".part")
        return self.cache_dir / DOWNLOADS_DIR / spec.id

    def record_path(self, model_id: str) -> Path:
        return self.cache_dir / RECORDS_DIR / f"{get_model(model_id).id}.json"

    # -- overrides -------------------------------------------------------------------------
    def _persisted_overrides(self) -> dict[str, str]:
        data = _read_json(self.cache_dir / OVERRIDES_FILE)
        return {k: v for k, v in data.items() if isinstance(v, str)}

    def override(self, model_id: str) -> Path | None:
        """The local file/folder chosen for this model, whether or not it still exists."""
        get_model(model_id)
        if model_id in self._session_overrides:
            return self._session_overrides[model_id]
        raw = self._persisted_overrides().get(model_id)
        return Path(raw) if raw else None

    def set_override(self, model_id: str, path: str | os.PathLike[str]) -> Path:
        """Use ``path`` for ``model_id`` from now on (persisted). Checks it has the right shape."""
        spec = get_model(model_id)
        resolved = Path(path).expanduser().resolve()
        problem = self._layout_problem(spec, resolved)
        if problem:
            raise InferenceError(f"cannot use {resolved} for {spec.display_name}: {problem}")
        data = self._persisted_overrides()
        data[model_id] = str(resolved)
        _write_json_atomic(self.cache_dir / OVERRIDES_FILE, data)
        self._session_overrides.pop(model_id, None)
        return resolved

    def clear_override(self, model_id: str) -> None:
        get_model(model_id)
        self._session_overrides.pop(model_id, None)
        data = self._persisted_overrides()
        if data.pop(model_id, None) is not None:
            _write_json_atomic(self.cache_dir / OVERRIDES_FILE, data)

    # -- state -----------------------------------------------------------------------------
    @staticmethod
    def _layout_problem(spec: ModelSpec, path: Path) -> str | None:
        """Why ``path`` cannot hold ``spec``'s weights, or ``None``."""
        if not path.exists():
            return f"{path} does not exist"
        if spec.layout == "file":
            if not path.is_file():
                return f"{path} is not a file"
            if path.stat().st_size == 0:
                return f"{path} is empty"
            if spec.files and spec.files[0].name.endswith(".pt"):
                # header-only (the zip index): a renamed image or a truncated download is not a checkpoint
                return integrity.torch_checkpoint_problem(path)
            return None
        if not path.is_dir():
            return f"{path} is not a folder"
        if not (path / "config.json").is_file():
            return f"{path} has no config.json"
        expected = {"gdino": "grounding-dino", "sam3": "sam3_video"}.get(spec.kind)
        problem = integrity.json_problem(path / "config.json", expect_model_type=expected)
        if problem:
            return f"{path}: {problem}"
        if spec.kind == "sam3" and not (
            (path / "tokenizer.json").is_file() or ((path / "vocab.json").is_file() and (path / "merges.txt").is_file())
        ):
            return f"{path} has no tokenizer (tokenizer.json, or vocab.json and merges.txt)"
        weights = [path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()]
        if not weights:
            return f"{path} has no model.safetensors"
        check = (
            integrity.safetensors_problem if weights[0].suffix == ".safetensors" else integrity.torch_checkpoint_problem
        )
        problem = check(weights[0])  # reads the header only
        return f"{path}: {problem}" if problem else None

    def _cache_problem(self, spec: ModelSpec) -> str | None:
        """Why the downloaded copy in the models folder is unusable, or ``None`` if it is fine."""
        target = self.cache_dir / spec.local_name
        if spec.layout == "file":
            if not target.is_file():
                return "missing"
            size = target.stat().st_size
            if spec.size_exact and size != spec.size_bytes:
                return (
                    f"{target} is {size:,} bytes but {spec.id} is {spec.size_bytes:,} bytes "
                    "(incomplete or a different file)"
                )
            return None
        if not target.is_dir():
            return "missing"
        absent = [f.name for f in spec.files if f.required and not (target / f.name).is_file()]
        if not any((target / n).is_file() for n in ("tokenizer.json", "vocab.txt")):
            absent.append("tokenizer.json or vocab.txt")
        if absent:
            return f"{target} lacks {', '.join(absent)}"
        return None

    def state(self, model_id: str) -> ModelState:
        spec = get_model(model_id)
        override = self.override(model_id)
        if override is not None and self._layout_problem(spec, override) is None:
            return "override"
        problem = self._cache_problem(spec)
        if problem is None:
            return "installed"
        if problem != "missing" or self.partial_path(model_id).exists():
            return "partial"
        return "missing"

    def local_path(self, model_id: str) -> Path | None:
        """The usable local file/folder for the model, or ``None``. Never uses the network."""
        spec = get_model(model_id)
        override = self.override(model_id)
        if override is not None and self._layout_problem(spec, override) is None:
            return override
        if self._cache_problem(spec) is None:
            return self.cache_dir / spec.local_name
        return None

    def require(self, model_id: str) -> Path:
        """The local path, or :class:`WeightsMissingError` saying how to get the weights."""
        path = self.local_path(model_id)
        if path is not None:
            return path
        raise WeightsMissingError(self.missing_message(model_id))

    def missing_message(self, model_id: str, *, tried: tuple[str, ...] = ()) -> str:
        """A complete explanation of how to get ``model_id`` onto this machine."""
        spec = get_model(model_id)
        target = self.target_path(model_id)
        parts = [f"{spec.display_name} ({spec.id}) is not installed."]
        override = self.override(model_id)
        if override is not None:
            parts.append(f"The local copy chosen for it cannot be used: {self._layout_problem(spec, override)}.")
        problem = self._cache_problem(spec)
        if problem not in (None, "missing"):
            parts.append(f"The downloaded copy is unusable: {problem}.")
        if tried:
            parts.append("Tried: " + "; ".join(tried) + ".")
        size = "" if not spec.size_bytes else f" ({'' if spec.size_exact else 'about '}{_human(spec.size_bytes)})"
        parts.append(
            f"Download it{size} with `langsam-studio models download {spec.id}` (source: {' or '.join(spec.sources)})."
        )
        if spec.layout == "file":
            parts.append(f"Without internet, copy the file {spec.local_name} by hand to {target}")
        else:
            names = ", ".join(f.name for f in spec.files if f.required)
            parts.append(
                f"Without internet, copy the files of {spec.sources[0]} ({names}, and "
                f"tokenizer.json or vocab.txt) by hand into the folder {target}"
            )
        parts[-1] += f", or use a copy you already have with `langsam-studio models path {spec.id} --set PATH`."
        return " ".join(parts)

    # -- records and verification ------------------------------------------------------------
    def write_record(self, model_id: str, *, source: str, files: Mapping[str, tuple[int, str]]) -> None:
        """Remember what was downloaded (size and sha256 per file) so :meth:`verify` can re-check."""
        _write_json_atomic(
            self.record_path(model_id),
            {
                "model": model_id,
                "source": source,
                "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "files": {name: {"size": size, "sha256": sha} for name, (size, sha) in files.items()},
            },
        )

    def read_record(self, model_id: str) -> dict[str, Any]:
        return _read_json(self.record_path(model_id))

    def verify(self, model_id: str, *, hash_files: bool = True) -> VerifyResult:
        """Check the installed copy: sizes, recorded/known sha256, file-format sanity."""
        spec = get_model(model_id)
        state = self.state(model_id)
        path = self.local_path(model_id)
        if path is None:
            problem = self._cache_problem(spec)
            found = (self.missing_message(model_id),) if problem == "missing" else (problem or "",)
            return VerifyResult(model_id=model_id, ok=False, state=state, path=None, checks=(), problems=found)
        checks: list[str] = []
        problems: list[str] = []
        recorded: Any = self.read_record(model_id).get("files", {}) if state == "installed" else {}
        members = [spec.files[0]] if spec.layout == "file" else [f for f in spec.files if (path / f.name).is_file()]
        for member in members:
            file_path = path if spec.layout == "file" else path / member.name
            size = file_path.stat().st_size
            rec: dict[str, Any] = recorded.get(member.name) if isinstance(recorded.get(member.name), dict) else {}
            expected_size = member.size_bytes if state == "installed" else None
            expected_size = rec.get("size", expected_size)
            if expected_size is not None:
                if size != expected_size:
                    problems.append(f"{member.name} is {size:,} bytes, expected {expected_size:,}.")
                else:
                    checks.append(f"{member.name} size {size:,} B")
            expected_sha = member.sha256 or rec.get("sha256")
            if hash_files and expected_sha:
                actual = integrity.sha256_file(file_path)
                if actual != expected_sha:
                    problems.append(f"{member.name} sha256 is {actual}, expected {expected_sha} (corrupt file).")
                else:
                    checks.append(f"{member.name} sha256 matches")
            problem = None
            if member.name.endswith(".safetensors"):
                problem = integrity.safetensors_problem(file_path)
                label = "safetensors header"
            elif member.name.endswith(".pt"):
                problem = integrity.torch_checkpoint_problem(file_path)
                label = "checkpoint archive"
            elif member.name.endswith(".json"):
                problem = integrity.json_problem(
                    file_path, expect_model_type="grounding-dino" if member.name == "config.json" else None
                )
                label = "JSON"
            else:
                continue
            if problem:
                problems.append(problem + ".")
            else:
                checks.append(f"{member.name} {label} ok")
        if state == "override" and not checks and not problems:
            checks.append("local file present")
        return VerifyResult(
            model_id=model_id, ok=not problems, state=state, path=path, checks=tuple(checks), problems=tuple(problems)
        )


def resolve_weights(
    model_id: str, explicit: str | os.PathLike[str] | None = None, *, store: WeightsStore | None = None
) -> Path:
    """The weights a backend loads: an explicit path (checked to exist, file or folder as the
    model's layout says), else the store's local copy of ``model_id``.

    Raises :class:`WeightsMissingError` with a message that says how to fix it.
    """
    if explicit is None:
        return Path((store or WeightsStore()).require(model_id))
    path = Path(explicit).expanduser()
    folder = get_model(model_id).layout == "directory" if is_known(model_id) else path.is_dir()
    if not (path.is_dir() if folder else path.is_file()):
        what = "folder" if folder else "file"
        raise WeightsMissingError(
            f"the {what} '{path}' given for {model_id} does not exist; check the path, or leave it empty "
            f"to use the downloaded {model_id} weights (`langsam-studio models download {model_id}`)"
        )
    return path
