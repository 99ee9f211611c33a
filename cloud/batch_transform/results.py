"""What a Batch Transform run leaves in S3, and how to read it back.

Under the output prefix (``--out``):

* ``<relative input key>.out`` — one per input object, written by SageMaker: the container's
  answer to that object, i.e. the protocol's JSON response (:func:`inference.protocol.decode_response`)
  or, for a record the model refused, the protocol's error body (:func:`inference.protocol.encode_error`).
  ``s3://b/images/a/x.jpg`` with input prefix ``s3://b/images/`` gives ``s3://b/out/a/x.jpg.out``.
* ``langsam-batch-transform.json`` — written by this tool before the job starts
  (:data:`MANIFEST_NAME`): the job name, the input prefix, the model and the prompt
  (``LANGSAM_BATCH_PROMPT``), so ``batch-transform import`` needs only the output prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cloud.aws.errors import DeployError

MANIFEST_NAME = "langsam-batch-transform.json"
MANIFEST_FORMAT = 1
RECORD_SUFFIX = ".out"


def split_s3_prefix(uri: str, *, option: str = "the S3 prefix") -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix/``; the prefix ends in ``/`` (or is empty)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise DeployError(
            f"{option} {uri!r} is not an s3://bucket/prefix/ URL.",
            fix="Write it as s3://BUCKET/folder/.",
            code="transform-input",
        )
    bucket, _, prefix = uri[5:].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # s3://b/images would also match s3://b/images2/...
    return bucket, prefix


@dataclass(frozen=True, kw_only=True)
class S3Object:
    key: str
    size: int


def list_objects(s3: Any, bucket: str, prefix: str) -> Iterator[S3Object]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []) or []:
            yield S3Object(key=item["Key"], size=int(item.get("Size", 0)))


def count_records(s3: Any, output_uri: str) -> int:
    """How many ``.out`` records are under the output prefix (SageMaker's progress, as files)."""
    bucket, prefix = split_s3_prefix(output_uri, option="--out")
    return sum(1 for o in list_objects(s3, bucket, prefix) if o.key.endswith(RECORD_SUFFIX))


def write_manifest(s3: Any, output_uri: str, manifest: dict[str, Any]) -> str:
    bucket, prefix = split_s3_prefix(output_uri, option="--out")
    key = prefix + MANIFEST_NAME
    body = json.dumps({"format": MANIFEST_FORMAT, **manifest}, indent=2, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return f"s3://{bucket}/{key}"


def read_manifest(s3: Any, output_uri: str) -> dict[str, Any] | None:
    """The run's manifest, or None when there is none (results of another tool)."""
    bucket, prefix = split_s3_prefix(output_uri, option="the results prefix")
    try:
        body = s3.get_object(Bucket=bucket, Key=prefix + MANIFEST_NAME)["Body"].read()
    except Exception as err:  # noqa: BLE001
        code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise
    try:
        manifest = json.loads(body)
    except ValueError:
        raise DeployError(
            f"s3://{bucket}/{prefix}{MANIFEST_NAME} is not JSON.",
            fix="Pass the prompt with --text/--point/--box instead.",
            code="transform-input",
        ) from None
    return manifest if isinstance(manifest, dict) else None


def iter_records(s3: Any, output_uri: str) -> Iterator[tuple[str, bytes]]:
    """``(relative input key, body)`` of every ``.out`` record, read one at a time."""
    bucket, prefix = split_s3_prefix(output_uri, option="the results prefix")
    for obj in list_objects(s3, bucket, prefix):
        if not obj.key.endswith(RECORD_SUFFIX):
            continue
        body = s3.get_object(Bucket=bucket, Key=obj.key)["Body"].read()
        yield obj.key[len(prefix) : -len(RECORD_SUFFIX)], body


__all__ = [
    "MANIFEST_NAME",
    "RECORD_SUFFIX",
    "S3Object",
    "count_records",
    "iter_records",
    "list_objects",
    "read_manifest",
    "split_s3_prefix",
    "write_manifest",
]
