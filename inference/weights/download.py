"""Fetching weights: resumable, verified, atomically placed, cancellable.

Sources are tried in catalog order: the Hugging Face Hub (metadata and auth headers from
``huggingface_hub``; the bytes are fetched with HTTP ``Range`` into a ``.part`` file so an
interrupted download resumes, even in a later run), then the official direct URLs. A file
is moved into place with ``os.replace`` only once its size and hash are right. Any failure
ends in :class:`WeightsMissingError` whose message names the model, every source tried and
why it failed, and the exact place to put the file by hand.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from inference.cancel import CancelToken
from inference.errors import Cancelled, InferenceError, WeightsMissingError
from inference.weights import integrity
from inference.weights.catalog import ModelSpec, RemoteFile, get_model
from inference.weights.store import WeightsStore

if TYPE_CHECKING:
    from filelock import FileLock


class _Digest(Protocol):
    """What the download needs of a hashlib object."""

    def update(self, data: bytes, /) -> None: ...


ProgressCallback = Callable[[int, int], None]  # (done_bytes, total_bytes); total is 0 when unknown

CHUNK = 1024 * 1024
RETRIES = 2  # extra attempts per source after a dropped connection, each resuming the .part
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


class _SourceFailed(Exception):
    """One source could not deliver; the message is a short reason for the final report.
    ``status`` is the HTTP status when the source answered with one (401/403: no access)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WeightsAccessError(WeightsMissingError):
    """A gated model (SAM 3) that the Hub refuses (401/403): one sentence saying what to do."""


def _access_refused(spec: ModelSpec, exc: _SourceFailed) -> WeightsAccessError | None:
    """The one-sentence error for a 401/403 from the Hub on a gated model, else ``None``."""
    if exc.status not in (401, 403) or not spec.gated:
        return None
    link = spec.licence_url or f"https://huggingface.co/{spec.hub_repo}"
    return WeightsAccessError(
        f"The Hugging Face Hub refused {spec.display_name} (HTTP {exc.status}): accept the {spec.licence} at "
        f"{link} with your Hugging Face account, then give a token with read access (Settings > Hugging Face, "
        "or HF_TOKEN) and run the download again."
    )


class _Corrupt(_SourceFailed):
    """The bytes arrived but are wrong (size or hash): the partial file was deleted."""


@dataclass(frozen=True, kw_only=True)
class _Remote:
    url: str
    label: str  # what the person sees in "Tried: ..."
    size: int | None
    etag: str | None  # sha256 (LFS) or git-blob sha1 (small files) as published by the Hub
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # Authorization: never in a repr


def hub_offline() -> bool:
    """Whether Hugging Face offline mode is on (``HF_HUB_OFFLINE``)."""
    raw = os.environ.get("HF_HUB_OFFLINE")
    if raw is not None:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_remote(repo: str, filename: str, *, endpoint: str | None, timeout: float, token: str | None = None) -> _Remote:
    """Ask the Hub for a file's size and hash (HEAD). Raises :class:`_SourceFailed`. ``token``: a
    Hugging Face token for gated models (default: huggingface_hub's own, e.g. HF_TOKEN)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    url = hf_hub_url(repo, filename, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, timeout=timeout, endpoint=endpoint, token=token)
    except Exception as exc:  # huggingface_hub raises many transport/HTTP types; all mean "not here"
        status = getattr(getattr(exc, "response", None), "status_code", None)
        reason = f"HTTP {status}" if status else (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise _SourceFailed(f"{url}: {reason}", status=status if isinstance(status, int) else None) from None
    headers = tuple((k, v) for k, v in build_hf_headers(token=token).items() if k.lower() in ("authorization",))
    etag = (meta.etag or "").strip('"').lower() or None
    return _Remote(url=url, label=url, size=meta.size, etag=etag, headers=headers)


def _open(remote: _Remote, start: int, timeout: float) -> http.client.HTTPResponse | urllib.error.HTTPError:
    request = urllib.request.Request(
        remote.url, headers={"User-Agent": "langsam-studio", "Accept-Encoding": "identity"}
    )
    for key, value in remote.headers:
        request.add_unredirected_header(key, value)  # never forward a token to a CDN redirect
    if start > 0:
        request.add_header("Range", f"bytes={start}-")
    try:
        # urlopen is typed Any; for the http(s) URLs used here it is an HTTPResponse
        response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=timeout)
        return response
    except urllib.error.HTTPError as exc:
        if exc.code == 416:
            return exc  # the caller treats "range not satisfiable" as "start again"
        raise _SourceFailed(f"{remote.label}: HTTP {exc.code} {exc.reason}", status=exc.code) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise _SourceFailed(f"{remote.label}: {reason}") from None


def _hash_existing(path: Path, digests: Sequence[_Digest]) -> int:
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(integrity.CHUNK):
            for d in digests:
                d.update(chunk)
            size += len(chunk)
    return size


def _fetch(
    remote: _Remote,
    part: Path,
    *,
    expected_size: int | None,
    expected_sha256: str | None,
    progress: Callable[[int], None],
    cancel: CancelToken | None,
    timeout: float,
) -> tuple[int, str]:
    """Bring ``part`` to the complete file, resuming what is there. Returns (size, sha256).

    Raises :class:`_Corrupt` (wrong bytes; ``part`` deleted), :class:`_SourceFailed` (network;
    ``part`` kept for resume) or :class:`Cancelled` (``part`` kept).
    """
    size = expected_size if expected_size is not None else remote.size
    blob_header = f"blob {size}\0".encode() if size is not None else None
    for attempt in range(RETRIES + 1):
        sha256 = hashlib.sha256()
        sha1 = hashlib.sha1(blob_header) if blob_header else None
        digests = [d for d in (sha256, sha1) if d is not None]
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:
            part.unlink()
            have = 0
        if have:
            have = _hash_existing(part, digests)
        progress(have)
        try:
            if size is None or have < size:
                response = _open(remote, have, timeout)
                status = getattr(response, "status", None) or response.getcode()
                if status == 416 or (have and status == 200):
                    response.close()  # the server will not resume this: start from the beginning
                    part.unlink(missing_ok=True)
                    if status == 416:
                        continue
                    return _fetch(
                        remote,
                        part,
                        expected_size=expected_size,
                        expected_sha256=expected_sha256,
                        progress=progress,
                        cancel=cancel,
                        timeout=timeout,
                    )
                if size is None:
                    length = response.headers.get("Content-Length")
                    size = have + int(length) if length and length.isdigit() else None
                with response, open(part, "ab") as out:
                    while True:
                        if cancel is not None and cancel.cancelled:
                            raise Cancelled(cancel.reason or "cancelled")
                        chunk = response.read(CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        for d in digests:
                            d.update(chunk)
                        have += len(chunk)
                        progress(have)
        except (OSError, http.client.HTTPException) as exc:
            if attempt == RETRIES:
                raise _SourceFailed(f"{remote.label}: connection lost after {have:,} bytes ({exc})") from None
            time.sleep(0.2 * (attempt + 1))
            continue
        if size is not None and have < size:
            if attempt == RETRIES:
                raise _SourceFailed(f"{remote.label}: the transfer stopped at {have:,} of {size:,} bytes")
            continue
        break
    actual = sha256.hexdigest()
    problem = None
    if size is not None and have != size:
        problem = f"received {have:,} bytes, expected {size:,}"
    elif expected_sha256 and actual != expected_sha256:
        problem = f"sha256 {actual} does not match the published {expected_sha256}"
    elif remote.etag and _SHA256.match(remote.etag) and actual != remote.etag:
        problem = f"sha256 {actual} does not match the Hub's {remote.etag}"
    elif remote.etag and _SHA1.match(remote.etag) and sha1 is not None and sha1.hexdigest() != remote.etag:
        problem = f"git hash {sha1.hexdigest()} does not match the Hub's {remote.etag}"
    if problem:
        part.unlink(missing_ok=True)
        raise _Corrupt(f"{remote.label}: corrupt download ({problem}); the partial file was deleted")
    return have, actual


class _Progress:
    """Adds up bytes over several files and calls the user's callback."""

    def __init__(self, callback: ProgressCallback | None, total: int | None) -> None:
        self.callback, self.total, self.base = callback, int(total or 0), 0

    def file(self, done_in_file: int) -> None:
        if self.callback is not None:
            self.callback(self.base + done_in_file, self.total)


def _locked(store: WeightsStore, spec: ModelSpec) -> FileLock:
    from filelock import FileLock

    lock_dir = store.cache_dir / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_dir / f"{spec.id}.lock"), timeout=0)


def download(
    model_id: str,
    *,
    store: WeightsStore | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    hub_endpoint: str | None = None,
    urls: tuple[str, ...] | None = None,
    use_hub: bool = True,
    timeout: float = 15.0,
    force: bool = False,
    token: str | None = None,
) -> Path:
    """Download ``model_id`` into the store's models folder and return its path.

    Returns at once if it is already installed (unless ``force``). ``urls`` replaces the
    catalog's direct URLs (mirrors, tests); ``hub_endpoint`` replaces the Hub's address.
    ``token`` is a Hugging Face token (gated models such as SAM 3; default: huggingface_hub's own).
    Raises :class:`WeightsAccessError` (one sentence) when the Hub refuses a gated model (401/403),
    :class:`WeightsMissingError` when no source delivered a good copy and
    :class:`Cancelled` (keeping the partial download for the next run) when cancelled.
    """
    from filelock import Timeout

    store = store or WeightsStore()
    spec = get_model(model_id)
    if not force and store.state(model_id) == "installed":
        return store.target_path(model_id)
    store.cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _locked(store, spec):
            if spec.layout == "file":
                return _download_file(
                    spec,
                    store=store,
                    progress=progress,
                    cancel=cancel,
                    hub_endpoint=hub_endpoint,
                    urls=spec.urls if urls is None else urls,
                    use_hub=use_hub,
                    timeout=timeout,
                    token=token,
                )
            return _download_directory(
                spec,
                store=store,
                progress=progress,
                cancel=cancel,
                hub_endpoint=hub_endpoint,
                use_hub=use_hub,
                timeout=timeout,
                token=token,
            )
    except Timeout:
        raise InferenceError(
            f"{spec.display_name} ({spec.id}) is already being downloaded by another program; wait for it to finish"
        ) from None
    except Cancelled:
        raise Cancelled(
            f"the download of {spec.display_name} ({spec.id}) was cancelled; run it again to resume where it stopped"
        ) from None


def _hub_unavailable(use_hub: bool) -> str | None:
    if not use_hub:
        return "Hugging Face Hub: disabled"
    if hub_offline():
        return "Hugging Face Hub: skipped, offline mode is on (HF_HUB_OFFLINE=1)"
    return None


def _download_file(
    spec: ModelSpec,
    *,
    store: WeightsStore,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    hub_endpoint: str | None,
    urls: tuple[str, ...],
    use_hub: bool,
    timeout: float,
    token: str | None = None,
) -> Path:
    member = spec.files[0]
    part = store.partial_path(spec.id)
    tried: list[str] = []
    remotes: list[Callable[[], _Remote]] = []
    skipped = _hub_unavailable(use_hub)
    if skipped:
        tried.append(skipped)
    else:
        remotes.append(
            lambda: _hub_remote(spec.hub_repo, member.name, endpoint=hub_endpoint, timeout=timeout, token=token)
        )
    remotes += [functools.partial(_Remote, url=u, label=u, size=member.size_bytes, etag=None) for u in urls]
    for make_remote in remotes:
        try:
            remote = make_remote()
            if member.size_bytes is not None and remote.size not in (None, member.size_bytes):
                raise _SourceFailed(
                    f"{remote.label}: offers {remote.size:,} bytes but {spec.id} is "
                    f"{member.size_bytes:,} bytes (a different file)"
                )
            meter = _Progress(progress, member.size_bytes or remote.size)
            size, sha = _fetch(
                remote,
                part,
                expected_size=member.size_bytes,
                expected_sha256=member.sha256,
                progress=meter.file,
                cancel=cancel,
                timeout=timeout,
            )
        except _SourceFailed as exc:
            refused = _access_refused(spec, exc)
            if refused is not None:
                raise refused from None
            tried.append(str(exc))
            continue
        target = store.target_path(spec.id)
        os.replace(part, target)
        store.write_record(spec.id, source=remote.url, files={member.name: (size, sha)})
        return target
    raise WeightsMissingError(store.missing_message(spec.id, tried=tuple(tried)))


def _download_directory(
    spec: ModelSpec,
    *,
    store: WeightsStore,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    hub_endpoint: str | None,
    use_hub: bool,
    timeout: float,
    token: str | None = None,
) -> Path:
    skipped = _hub_unavailable(use_hub)
    if skipped:
        raise WeightsMissingError(store.missing_message(spec.id, tried=(skipped,)))
    remotes: list[tuple[RemoteFile, _Remote]] = []
    try:
        for member in spec.files:
            try:
                remotes.append(
                    (
                        member,
                        _hub_remote(spec.hub_repo, member.name, endpoint=hub_endpoint, timeout=timeout, token=token),
                    )
                )
            except _SourceFailed as exc:
                if member.required or "HTTP 404" not in str(exc):
                    raise
        if not any(m.name in ("tokenizer.json", "vocab.txt", "vocab.json") for m, _ in remotes):
            raise _SourceFailed(
                f"https://huggingface.co/{spec.hub_repo}: has no tokenizer (tokenizer.json, vocab.txt or vocab.json)"
            )
        staging = store.partial_path(spec.id)
        staging.mkdir(parents=True, exist_ok=True)
        meter = _Progress(progress, sum(r.size or 0 for _, r in remotes))
        records: dict[str, tuple[int, str]] = {}
        for member, remote in remotes:
            done, part = staging / member.name, staging / (member.name + ".part")
            if done.is_file() and remote.size == done.stat().st_size:
                os.replace(done, part)  # complete from an earlier run: re-verify it through _fetch
            records[member.name] = _fetch(
                remote,
                part,
                expected_size=member.size_bytes,
                expected_sha256=member.sha256,
                progress=meter.file,
                cancel=cancel,
                timeout=timeout,
            )
            os.replace(part, done)
            meter.base += records[member.name][0]
        problem = integrity.safetensors_problem(staging / "model.safetensors")
        if problem:
            for name in records:
                (staging / name).unlink(missing_ok=True)
            raise _Corrupt(f"https://huggingface.co/{spec.hub_repo}: {problem}")
    except _SourceFailed as exc:
        refused = _access_refused(spec, exc)
        if refused is not None:
            raise refused from None
        raise WeightsMissingError(store.missing_message(spec.id, tried=(str(exc),))) from None
    target = store.target_path(spec.id)
    if target.exists():
        old = store.cache_dir / ".downloads" / f"{spec.id}.old-{os.getpid()}"
        os.replace(target, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(staging, target)
    store.write_record(spec.id, source=f"https://huggingface.co/{spec.hub_repo}", files=records)
    return target
