"""Upload model.tar.gz to S3: multipart, with progress, content-addressed so a re-run skips it.

boto3's transfer manager calls the progress callback from its worker threads with the number of
bytes each part just sent; :class:`Progress` sums them under a lock and hands the total to a
single sink (a tqdm bar in the CLI, a Qt signal in the app).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.deploy.spec import DEFAULT_KEY_PREFIX, model_data_key

MIB = 1024 * 1024
ProgressSink = Callable[[int, int], None]  # (bytes done, total bytes)


@dataclass(frozen=True, kw_only=True)
class UploadResult:
    bucket: str
    key: str
    size: int
    sha256: str
    uploaded: bool  # False when an identical object was already there
    seconds: float

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class Progress:
    """Thread-safe byte counter fed by the transfer manager's worker threads."""

    def __init__(self, total: int, sink: ProgressSink | None) -> None:
        self.total = total
        self.done = 0
        self.calls = 0
        self.threads: set[int] = set()
        self._sink = sink
        self._lock = threading.Lock()

    def __call__(self, bytes_amount: int) -> None:
        with self._lock:
            self.done += bytes_amount
            self.calls += 1
            self.threads.add(threading.get_ident())
            done = self.done
        if self._sink is not None:
            self._sink(done, self.total)


def file_sha256(path: Path, *, chunk: int = 8 * MIB) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def transfer_config(*, part_size: int = 64 * MIB, threshold: int = 64 * MIB, concurrency: int = 8) -> Any:
    from boto3.s3.transfer import TransferConfig

    # S3 parts are at least 5 MiB (except the last); at most 10,000 parts.
    return TransferConfig(
        multipart_threshold=max(threshold, 5 * MIB),
        multipart_chunksize=max(part_size, 5 * MIB),
        max_concurrency=concurrency,
        use_threads=True,
    )


def _existing(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except Exception as err:  # noqa: BLE001
        response = getattr(err, "response", None)
        code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
        if code in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def upload_model(
    s3: Any,
    archive: Path,
    *,
    bucket: str,
    deployment: str,
    prefix: str = DEFAULT_KEY_PREFIX,
    progress: ProgressSink | None = None,
    config: Any | None = None,
    sha256: str | None = None,
) -> UploadResult:
    """Upload ``archive`` unless the same bytes are already at its content-addressed key."""
    from cloud.aws.errors import DeployError
    from cloud.diagnosis import deploy_error

    archive = Path(archive)
    if not archive.is_file():
        raise DeployError(
            f"The model archive {archive} does not exist.",
            fix="Build it with `langsam-studio deploy package` or pass the right path.",
            code="bad-archive",
        )
    size = archive.stat().st_size
    digest = sha256 or file_sha256(archive)
    key = model_data_key(prefix=prefix, deployment=deployment, sha256=digest)
    started = time.monotonic()
    try:
        head = _existing(s3, bucket, key)
        if (
            head is not None
            and int(head.get("ContentLength", -1)) == size
            and head.get("Metadata", {}).get("sha256") == digest
        ):
            if progress is not None:
                progress(size, size)
            return UploadResult(
                bucket=bucket, key=key, size=size, sha256=digest, uploaded=False, seconds=time.monotonic() - started
            )
        counter = Progress(size, progress)
        s3.upload_file(
            str(archive),
            bucket,
            key,
            Config=config or transfer_config(),
            Callback=counter,
            ExtraArgs={"Metadata": {"sha256": digest}, "ContentType": "application/gzip"},
        )
    except DeployError:
        raise
    except Exception as err:  # noqa: BLE001
        raise deploy_error(f"Uploading the model to s3://{bucket}/{key}", err) from None
    return UploadResult(
        bucket=bucket, key=key, size=size, sha256=digest, uploaded=True, seconds=time.monotonic() - started
    )


def dir_files(root: Path) -> list[tuple[str, Path]]:
    """``(posix relative path, path)`` of every regular file under ``root``, sorted."""
    return sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())


def dir_sha256(root: Path) -> str:
    """One digest for a package directory: its relative paths and each file's content hash."""
    digest = hashlib.sha256()
    for rel, path in dir_files(root):
        digest.update(f"{rel}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def upload_model_dir(
    s3: Any,
    root: Path,
    *,
    bucket: str,
    deployment: str,
    prefix: str = DEFAULT_KEY_PREFIX,
    progress: ProgressSink | None = None,
    config: Any | None = None,
    sha256: str | None = None,
) -> UploadResult:
    """Upload an unpacked package directory as an S3 prefix (ModelDataSource, no compression:
    SageMaker copies the files instead of extracting a tarball). ``key`` ends with ``/``."""
    from cloud.diagnosis import deploy_error

    files = dir_files(Path(root))
    total = sum(p.stat().st_size for _, p in files)
    digest = sha256 or dir_sha256(Path(root))
    base = model_data_key(prefix=prefix, deployment=deployment, sha256=digest).removesuffix("model.tar.gz") + "model/"
    started = time.monotonic()
    counter = Progress(total, progress)
    uploaded = False
    try:
        marker = _existing(s3, bucket, base + ".complete")
        if marker is None:
            for rel, path in files:
                s3.upload_file(str(path), bucket, base + rel, Config=config or transfer_config(), Callback=counter)
            s3.put_object(Bucket=bucket, Key=base + ".complete", Body=digest.encode())
            uploaded = True
        elif progress is not None:
            progress(total, total)
    except Exception as err:  # noqa: BLE001
        raise deploy_error(f"Uploading the model to s3://{bucket}/{base}", err) from None
    return UploadResult(
        bucket=bucket, key=base, size=total, sha256=digest, uploaded=uploaded, seconds=time.monotonic() - started
    )


def delete_model_data(s3: Any, s3_uri: str) -> bool:
    """Delete one uploaded archive, or every object under an uploaded directory (``.../``)."""
    bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
    if key.endswith("/"):
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
            for o in page.get("Contents", [])
        ]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]})
        return bool(keys)
    if _existing(s3, bucket, key) is None:
        return False
    s3.delete_object(Bucket=bucket, Key=key)
    return True


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key
