"""SageMaker handler for the AWS PyTorch inference container (TorchServe + sagemaker-pytorch-inference).

The package's ``code/inference.py`` re-exports these four functions::

    from inference.sagemaker_handler import model_fn, input_fn, predict_fn, output_fn

They run the same code as the HTTP server (:class:`inference.server.runner.SegmentationRunner`
and :mod:`inference.protocol`). Each takes the toolkit's optional trailing ``context`` (the
TorchServe context): headers (custom attributes, session id) are read from it, and error
statuses are set on it so a bad request gets a 4xx JSON body, not a 500 with a traceback.
In a SageMaker Batch Transform job (a bare image body, no headers) the prompt is the job's
``LANGSAM_BATCH_PROMPT`` environment variable, checked in ``model_fn``, and a refused record is
answered 200 with its error body so one bad image does not fail the job (:mod:`inference.batch_prompt`).

``model_fn`` loads only from ``model_dir`` (never the network)::

    model_dir/
      langsam-config.json          {"format": 1, "backend": "langsam", "model": "sam2.1_hiera_small",
                                    "checkpoint": "weights/sam2.1_hiera_small.pt",
                                    "gdino_model": "grounding-dino-tiny",
                                    "gdino_path": "weights/grounding-dino-tiny", "device": "auto"}
      weights/<sam2 checkpoint>.pt
      weights/grounding-dino-*/    (a transformers save_pretrained directory)
      code/inference.py            (written by the packager)

Packagers: use :data:`CONFIG_NAME`, :data:`WEIGHTS_DIR`, :func:`model_dir_config` /
:func:`write_model_dir_config` and check a directory with :func:`resolve_model_dir`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.batch_prompt import check_batch_prompt, describe_batch_prompt, record_status, with_batch_prompt
from inference.errors import WeightsMissingError
from inference.protocol import (
    JSON_TYPE,
    NEW_SESSION_HEADER,
    SESSION_HEADER,
    ErrorInfo,
    ProtocolError,
    SegmentRequest,
    decode_request,
    encode_error,
    media_type,
)
from inference.server.errors import error_info
from inference.server.runner import RunnerLimits, RunResult, SegmentationRunner, header

if TYPE_CHECKING:  # pragma: no cover
    from inference.backends.base import SegmentationBackend

log = logging.getLogger("langsam.sagemaker")

CONFIG_NAME = "langsam-config.json"
CONFIG_FORMAT = 1
WEIGHTS_DIR = "weights"
GDINO_DIR_PREFIX = "grounding-dino-"
_SAM_BACKENDS = frozenset({"sam2", "langsam"})
_SAM3_BACKENDS = frozenset({"sam3"})  # "checkpoint" names the SAM 3 folder (weights/sam3/, Hub layout)
SAM3_DIR = "sam3"
_GDINO_BACKENDS = frozenset({"langsam"})


# ---------------------------------------------------------------------------------------------
# the model directory layout (shared with the packager)


def model_dir_config(
    *,
    backend: str,
    model: str | None = None,
    checkpoint: str | None = None,
    gdino_model: str | None = None,
    gdino_path: str | None = None,
    device: str = "auto",
    limits: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The ``langsam-config.json`` object. Paths are relative to ``model_dir`` (``weights/...``)."""
    for name, value in (("checkpoint", checkpoint), ("gdino_path", gdino_path)):
        if value is not None and (os.path.isabs(value) or ".." in Path(value).parts):
            raise ValueError(f"{name} must be a path inside the model directory, got {value!r}")
    config: dict[str, Any] = {"format": CONFIG_FORMAT, "backend": backend, "device": device}
    for key, value in (
        ("model", model),
        ("checkpoint", checkpoint),
        ("gdino_model", gdino_model),
        ("gdino_path", gdino_path),
    ):
        if value is not None:
            config[key] = value
    if limits:
        config["limits"] = dict(limits)
    return config


def write_model_dir_config(model_dir: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``model_dir/langsam-config.json`` (keyword arguments of :func:`model_dir_config`)."""
    path = Path(model_dir) / CONFIG_NAME
    path.write_text(json.dumps(model_dir_config(**kwargs), indent=2) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True, kw_only=True)
class ModelDirSpec:
    """What ``model_fn`` will load: a backend name and its options with absolute paths."""

    backend: str
    options: Mapping[str, Any] = field(default_factory=dict)
    limits: RunnerLimits = field(default_factory=RunnerLimits)


def resolve_model_dir(model_dir: str | os.PathLike[str], *, device: str | None = None) -> ModelDirSpec:
    """Read and check ``model_dir``; raises :class:`WeightsMissingError` naming what is missing."""
    root = Path(model_dir)
    if root.name == "code" and not (root / CONFIG_NAME).exists() and (root.parent / CONFIG_NAME).exists():
        root = root.parent  # TorchServe hands over .../code when the model dir holds only code/
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        raise WeightsMissingError(
            f"{config_path} is missing: the model package must contain {CONFIG_NAME} naming the backend and "
            f"its weights under {WEIGHTS_DIR}/ (found: {_listing(root)})"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsMissingError(f"{config_path} cannot be read as JSON: {exc}") from None
    if (
        not isinstance(config, dict)
        or config.get("format") != CONFIG_FORMAT
        or not isinstance(config.get("backend"), str)
    ):
        raise WeightsMissingError(f"{config_path} is not a format-{CONFIG_FORMAT} LangSAM config with a 'backend'")
    backend = config["backend"]
    options: dict[str, Any] = {"device": device or os.environ.get("LANGSAM_DEVICE") or config.get("device", "auto")}
    weights = root / WEIGHTS_DIR
    if backend in _SAM_BACKENDS:
        if config.get("model"):
            options["model"] = config["model"]
        options["checkpoint"] = str(_checkpoint(root, weights, config))
    if backend in _SAM3_BACKENDS:
        if config.get("model"):
            options["model"] = config["model"]
        options["checkpoint"] = str(_sam3_dir(root, weights, config))
    if backend in _GDINO_BACKENDS:
        if config.get("gdino_model"):
            options["gdino_model"] = config["gdino_model"]
        options["gdino_path"] = str(_gdino_dir(root, weights, config))
    limits = RunnerLimits(
        **{k: int(v) for k, v in (config.get("limits") or {}).items() if k in RunnerLimits.__dataclass_fields__}
    )
    return ModelDirSpec(backend=backend, options=options, limits=limits)


def _checkpoint(root: Path, weights: Path, config: Mapping[str, Any]) -> Path:
    if config.get("checkpoint"):
        path: Path = root / config["checkpoint"]
        if not path.is_file():
            raise WeightsMissingError(
                f"the SAM 2 checkpoint {path} named in {CONFIG_NAME} is missing "
                f"(found in {weights}: {_listing(weights)})"
            )
        return path
    candidates = sorted(weights.glob("*.pt")) if weights.is_dir() else []
    if config.get("model") and (weights / f"{config['model']}.pt").is_file():
        return weights / f"{config['model']}.pt"
    if len(candidates) != 1:
        raise WeightsMissingError(
            f"expected exactly one SAM 2 checkpoint (*.pt) in {weights}, found {len(candidates)} "
            f'({_listing(weights)}); name it in {CONFIG_NAME} as "checkpoint"'
        )
    return candidates[0]


def _sam3_dir(root: Path, weights: Path, config: Mapping[str, Any]) -> Path:
    path: Path = root / (config.get("checkpoint") or f"{WEIGHTS_DIR}/{SAM3_DIR}")
    if not (path / "config.json").is_file():
        raise WeightsMissingError(
            f"the SAM 3 folder {path} (config.json, model.safetensors, tokenizer files) named in {CONFIG_NAME} is "
            f"missing or incomplete (found in {weights}: {_listing(weights)})"
        )
    return path


def _gdino_dir(root: Path, weights: Path, config: Mapping[str, Any]) -> Path:
    if config.get("gdino_path"):
        path: Path = root / config["gdino_path"]
        if not path.is_dir():
            raise WeightsMissingError(
                f"the Grounding DINO directory {path} named in {CONFIG_NAME} is missing "
                f"(found in {weights}: {_listing(weights)})"
            )
        return path
    candidates = sorted(p for p in weights.glob(f"{GDINO_DIR_PREFIX}*") if p.is_dir()) if weights.is_dir() else []
    if len(candidates) != 1:
        raise WeightsMissingError(
            f"expected exactly one {GDINO_DIR_PREFIX}*/ directory in {weights}, found {len(candidates)} "
            f'({_listing(weights)}); name it in {CONFIG_NAME} as "gdino_path"'
        )
    return candidates[0]


def _listing(path: Path) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    except OSError:
        return "nothing: the directory does not exist"
    return ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") if names else "nothing"


def create_backend_from_model_dir(
    model_dir: str | os.PathLike[str], *, device: str | None = None
) -> tuple[SegmentationBackend, RunnerLimits]:
    """The (not yet loaded) backend a model directory describes, plus the runner limits."""
    from inference.backends.registry import create_backend

    spec = resolve_model_dir(model_dir, device=device)
    return create_backend(spec.backend, **spec.options), spec.limits


# ---------------------------------------------------------------------------------------------
# the four handler functions


@dataclass(frozen=True, kw_only=True, eq=False)
class _Failed:
    """An error carried from input_fn/predict_fn to output_fn, which answers it as JSON."""

    info: ErrorInfo


@dataclass(frozen=True, kw_only=True, eq=False)
class _Decoded:
    request: SegmentRequest
    headers: Mapping[str, str]
    request_id: str


def model_fn(model_dir: str, context: Any = None) -> SegmentationRunner:
    """Load the backend described by ``model_dir/langsam-config.json``; local files only."""
    batch = check_batch_prompt()  # a Batch Transform job's prompt (LANGSAM_BATCH_PROMPT): refuse a bad one now
    backend, limits = create_backend_from_model_dir(model_dir)
    backend.ensure_loaded()
    runner = SegmentationRunner(backend, limits=limits)
    info = runner.info()
    # print, not logging: TorchServe copies a worker's stderr into model_log.log / CloudWatch
    print(
        f"LangSAM model loaded from {model_dir}: backend={info.backend} model={info.model} "
        f"device={info.device} ({info.device_reason})",
        file=sys.stderr,
        flush=True,
    )
    if batch is not None:
        print(describe_batch_prompt(batch), file=sys.stderr, flush=True)
    return runner


def input_fn(input_data: bytes | str, content_type: str, context: Any = None) -> _Decoded | _Failed:
    """Decode the request (JSON or raw image + custom attributes) into a protocol request."""
    # Batch Transform sends bare image bodies: the job's prompt comes from LANGSAM_BATCH_PROMPT
    headers = with_batch_prompt(_request_headers(context), content_type)
    request_id = header(headers, "X-Amzn-SageMaker-Inference-Id") or uuid.uuid4().hex
    try:
        request = decode_request(
            input_data if input_data is not None else b"", content_type=content_type, headers=headers
        )
    except Exception as exc:  # noqa: BLE001 - answered as a JSON error by output_fn
        return _Failed(info=error_info(exc, request_id=request_id))
    return _Decoded(request=request, headers=headers, request_id=request_id)


def predict_fn(data: _Decoded | _Failed, model: SegmentationRunner, context: Any = None) -> RunResult | _Failed:
    if isinstance(data, _Failed):
        return data
    try:
        return model.run(data.request, headers=data.headers, request_id=data.request_id)
    except Exception as exc:  # noqa: BLE001
        info = error_info(exc, request_id=data.request_id)
        if info.status >= 500:
            log.exception("request %s failed", data.request_id)
        return _Failed(info=info)


def output_fn(prediction: RunResult | _Failed, accept: str | None, context: Any = None) -> tuple[bytes, str]:
    """``(body, content_type)``; on error the status is set on the TorchServe context."""
    if not isinstance(prediction, _Failed) and media_type(accept) not in ("", JSON_TYPE, "*/*", "application/*"):
        prediction = _Failed(
            info=error_info(
                ProtocolError(
                    f"this model answers application/json, not {accept!r}",
                    field="Accept",
                    status=406,
                    code="NotAcceptable",
                )
            )
        )
    if isinstance(prediction, _Failed):
        info = prediction.info
        if context is not None:
            # in a transform job a refused record is a 200 with this error body (inference.batch_prompt)
            context.set_response_status(code=record_status(info.status), phrase=info.code)
        return encode_error(
            status=info.status, code=info.code, message=info.message, field=info.field, request_id=info.request_id
        ), JSON_TYPE
    if context is not None:
        for key, value in prediction.headers.items():
            context.set_response_header(0, key, value)
        if NEW_SESSION_HEADER in prediction.headers:  # the container-side name of the new session
            context.set_response_header(0, SESSION_HEADER, prediction.headers[NEW_SESSION_HEADER])
    return prediction.body, JSON_TYPE


def handler_status(prediction: RunResult | _Failed) -> int:
    """The HTTP status output_fn gives ``prediction`` (for callers without a TorchServe context)."""
    return record_status(prediction.info.status) if isinstance(prediction, _Failed) else 200


def _request_headers(context: Any) -> dict[str, str]:
    if context is None:
        return {}
    try:
        headers = context.get_all_request_header(0)
    except Exception:  # noqa: BLE001 - an older context or no request: no headers
        return {}
    out: dict[str, str] = {}
    for key, value in (headers or {}).items():
        k = key.decode() if isinstance(key, bytes) else str(key)
        out[k] = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
    return out
