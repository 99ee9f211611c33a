"""Invoke a deployed endpoint: real-time, or asynchronous through S3 when the payload is too big.

Retries. The runtime client uses ``retries={"mode": "standard", "total_max_attempts": 1}`` — one
attempt, no retry. Beware: in a botocore ``Config`` the key ``max_attempts`` counts *retries*
(``max_attempts=1`` becomes ``total_max_attempts=2``, measured here: the slow server saw two
POSTs), so ``total_max_attempts`` is the key that means what it says. botocore
would otherwise retry a read timeout or a 5xx (legacy mode: up to 5 attempts), and an
invocation is not idempotent in cost — a timed-out request is still running on the GPU, so a
silent retry doubles the work and turns one slow answer into minutes of apparent hang. The
only retries here are for throttling (``ThrottlingException``/``ModelNotReadyException``: the
service refused the call before running it), explicit, bounded and visible.

Timeouts. The read timeout sits above the model's worst case (default 75 s: above SageMaker's
own 60 s real-time limit, so the service's explanatory error arrives instead of a bare socket
timeout).

Payload guard. A request over 6 MiB (or a server answer "ResponseTooLarge") goes through
``InvokeEndpointAsync`` with S3 input/output when the endpoint (or a companion async endpoint)
accepts it; otherwise the client says so instead of sending a body the service would refuse.

The request/response codec is :mod:`inference.protocol`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cloud.aws.errors import EndpointInvocationError, EndpointPayloadTooLargeError
from cloud.diagnosis import diagnose_exception, match_text, mode

REALTIME_LIMIT_BYTES = 6 * 1024 * 1024
ASYNC_LIMIT_BYTES = 1024 * 1024 * 1024
DEFAULT_READ_TIMEOUT = 75.0
THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "ModelNotReadyException"}
_TOO_LARGE_CODES = {"ResponseTooLarge", "PayloadTooLarge"}


def runtime_config(*, read_timeout: float = DEFAULT_READ_TIMEOUT, connect_timeout: float = 10.0) -> Any:
    """botocore Config for sagemaker-runtime: long read timeout, no automatic retries (see module doc)."""
    from botocore.config import Config

    return Config(
        read_timeout=read_timeout,
        connect_timeout=connect_timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
        tcp_keepalive=True,
    )


@dataclass(frozen=True, kw_only=True)
class InvokeResult:
    body: bytes
    content_type: str
    latency_s: float
    mode: str  # "realtime" | "async"
    endpoint: str
    output_location: str | None = None
    throttled_retries: int = 0
    new_session_id: str | None = None


def _error_fields(err: BaseException) -> tuple[str, str, dict[str, Any]]:
    response = getattr(err, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    return str(error.get("Code", "")), str(error.get("Message", "")), response if isinstance(response, dict) else {}


class EndpointClient:
    """One deployed endpoint (and optionally a companion asynchronous endpoint for big payloads).

    ``runtime`` and ``s3`` are boto3 clients; build them with :func:`from_settings` or pass your own
    (the runtime client must carry :func:`runtime_config`).
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        runtime: Any,
        s3: Any | None = None,
        sagemaker: Any | None = None,
        async_endpoint_name: str | None = None,
        async_s3_prefix: str | None = None,
        endpoint_is_async: bool | None = None,
        async_timeout_s: float = 900.0,
        poll_interval_s: float = 2.0,
        throttle_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint_name = endpoint_name
        self._runtime = runtime
        self._s3 = s3
        self._sagemaker = sagemaker
        self.async_endpoint_name = async_endpoint_name
        self.async_s3_prefix = async_s3_prefix.rstrip("/") if async_s3_prefix else None
        self._endpoint_is_async = endpoint_is_async
        self.async_timeout_s = async_timeout_s
        self.poll_interval_s = poll_interval_s
        self.throttle_retries = throttle_retries
        self._sleep = sleep

    # -- what the endpoint accepts ----------------------------------------------------------

    @property
    def endpoint_is_async(self) -> bool:
        """True when the endpoint itself was deployed with AsyncInferenceConfig (asked once)."""
        if self._endpoint_is_async is None:
            self._endpoint_is_async = False
            if self._sagemaker is not None:
                try:
                    ep = self._sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
                    cfg = self._sagemaker.describe_endpoint_config(EndpointConfigName=ep["EndpointConfigName"])
                    self._endpoint_is_async = bool(cfg.get("AsyncInferenceConfig"))
                except Exception:  # noqa: BLE001 - without describe rights, assume real-time
                    self._endpoint_is_async = False
        return self._endpoint_is_async

    def _async_target(self) -> str | None:
        if self.endpoint_is_async:
            return self.endpoint_name
        return self.async_endpoint_name

    # -- invocation -------------------------------------------------------------------------

    def invoke(
        self,
        body: bytes,
        *,
        content_type: str,
        accept: str = "application/json",
        custom_attributes: str | None = None,
        session_id: str | None = None,
    ) -> InvokeResult:
        """Send one request; large payloads and async endpoints go through S3 automatically."""
        if self.endpoint_is_async:
            return self.invoke_async(
                body, content_type=content_type, accept=accept, custom_attributes=custom_attributes
            )
        if len(body) > REALTIME_LIMIT_BYTES:
            return self._too_large(
                body,
                content_type=content_type,
                accept=accept,
                custom_attributes=custom_attributes,
                what=f"the request is {len(body) / 2**20:.1f} MiB",
            )
        try:
            return self._invoke_realtime(
                body,
                content_type=content_type,
                accept=accept,
                custom_attributes=custom_attributes,
                session_id=session_id,
            )
        except EndpointInvocationError as err:
            if err.code == "payload-too-large" and not isinstance(err, EndpointPayloadTooLargeError):
                return self._too_large(
                    body,
                    content_type=content_type,
                    accept=accept,
                    custom_attributes=custom_attributes,
                    what=err.detail or err.message,
                )
            raise

    def _too_large(
        self, body: bytes, *, content_type: str, accept: str, custom_attributes: str | None, what: str
    ) -> InvokeResult:
        target = self._async_target()
        if target is None or self._s3 is None or self.async_s3_prefix is None:
            m = mode("payload-too-large")
            raise EndpointPayloadTooLargeError(
                f"{m.message} Here: {what.rstrip('.')}.", fix=m.fix, code=m.code, detail=what
            )
        return self.invoke_async(
            body, content_type=content_type, accept=accept, custom_attributes=custom_attributes, endpoint_name=target
        )

    def _throttled_call(self, call: Callable[..., Any], **kwargs: Any) -> tuple[Any, int]:
        for attempt in range(self.throttle_retries + 1):
            try:
                return call(**kwargs), attempt
            except Exception as err:  # noqa: BLE001
                code, _, _ = _error_fields(err)
                if code in THROTTLE_CODES and attempt < self.throttle_retries:
                    self._sleep(min(0.5 * 2**attempt, 8.0))  # refused before running: safe to resend
                    continue
                raise self._explain(err) from None
        raise AssertionError("unreachable")

    def _invoke_realtime(
        self, body: bytes, *, content_type: str, accept: str, custom_attributes: str | None, session_id: str | None
    ) -> InvokeResult:
        kwargs: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "Body": body,
            "ContentType": content_type,
            "Accept": accept,
        }
        if custom_attributes:
            kwargs["CustomAttributes"] = custom_attributes
        if session_id:
            kwargs["SessionId"] = session_id
        started = time.perf_counter()
        response, retries = self._throttled_call(self._runtime.invoke_endpoint, **kwargs)
        data = response["Body"].read()
        return InvokeResult(
            body=data,
            content_type=response.get("ContentType", ""),
            mode="realtime",
            latency_s=time.perf_counter() - started,
            endpoint=self.endpoint_name,
            throttled_retries=retries,
            new_session_id=response.get("NewSessionId"),
        )

    def invoke_async(
        self,
        body: bytes,
        *,
        content_type: str,
        accept: str = "application/json",
        custom_attributes: str | None = None,
        endpoint_name: str | None = None,
    ) -> InvokeResult:
        """Upload the body to S3, ``InvokeEndpointAsync``, and poll the output (or failure) location."""
        if self._s3 is None or self.async_s3_prefix is None:
            raise EndpointInvocationError(
                "Asynchronous inference needs an S3 location for the request.",
                fix="Pass --async-s3 s3://BUCKET/PREFIX (or set MODEL_BUCKET).",
                code="payload-too-large",
            )
        if len(body) > ASYNC_LIMIT_BYTES:
            m = mode("payload-too-large")
            raise EndpointPayloadTooLargeError(
                f"The request is {len(body) / 2**30:.2f} GB; asynchronous inference takes at most 1 GB.",
                fix="Send a smaller image.",
                code=m.code,
            )
        from cloud.deploy.upload import parse_s3_uri

        target = endpoint_name or self.endpoint_name
        bucket, prefix = parse_s3_uri(self.async_s3_prefix + "/")
        key = f"{prefix.rstrip('/')}/input/{uuid.uuid4().hex}".lstrip("/")
        started = time.perf_counter()
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except Exception as err:  # noqa: BLE001
            raise self._explain(err, action=f"Uploading the request to s3://{bucket}/{key}") from None
        kwargs: dict[str, Any] = {
            "EndpointName": target,
            "InputLocation": f"s3://{bucket}/{key}",
            "ContentType": content_type,
            "Accept": accept,
            "InvocationTimeoutSeconds": int(min(max(self.async_timeout_s, 1), 3600)),
        }
        if custom_attributes:
            kwargs["CustomAttributes"] = custom_attributes
        try:
            response, retries = self._throttled_call(self._runtime.invoke_endpoint_async, **kwargs)
            output, failure = response.get("OutputLocation"), response.get("FailureLocation")
            data, ctype = self._poll(output, failure)
        finally:
            try:
                self._s3.delete_object(Bucket=bucket, Key=key)
            except Exception:  # noqa: BLE001 - a leftover input object is harmless
                pass
        return InvokeResult(
            body=data,
            content_type=ctype,
            latency_s=time.perf_counter() - started,
            mode="async",
            endpoint=target,
            output_location=output,
            throttled_retries=retries,
        )

    def _poll(self, output: str | None, failure: str | None) -> tuple[bytes, str]:
        from cloud.deploy.upload import parse_s3_uri

        if not output:
            raise EndpointInvocationError(
                "The asynchronous invocation returned no output location.",
                fix="Check the endpoint's AsyncInferenceConfig.",
                code="model-error",
            )
        s3 = self._s3
        assert s3 is not None  # invoke_async checked it before calling us
        deadline = time.monotonic() + self.async_timeout_s
        while True:
            for location, failed in ((output, False), (failure, True)):
                if not location:
                    continue
                bucket, key = parse_s3_uri(location)
                try:
                    obj = s3.get_object(Bucket=bucket, Key=key)
                except Exception as err:  # noqa: BLE001
                    code, _, _ = _error_fields(err)
                    if code in {"NoSuchKey", "404", "NotFound"}:
                        continue
                    raise self._explain(err, action=f"Reading {location}") from None
                data = obj["Body"].read()
                if failed:
                    text = data.decode("utf-8", "replace")
                    raise self._model_error(
                        original_status=None,
                        original_message=text,
                        log_stream=None,
                        message=f"the asynchronous request failed ({location})",
                    )
                return data, obj.get("ContentType", "")
            if time.monotonic() > deadline:
                m = mode("invocation-timeout")
                raise EndpointInvocationError(
                    f"No asynchronous result at {output} after {self.async_timeout_s:.0f} s.", fix=m.fix, code=m.code
                )
            self._sleep(self.poll_interval_s)

    # -- errors -----------------------------------------------------------------------------

    def _model_error(
        self, *, original_status: int | None, original_message: str, log_stream: str | None, message: str
    ) -> EndpointInvocationError:
        from inference.protocol import decode_error

        inner = decode_error(original_message) if original_message else None
        readable = inner.message if inner is not None and inner.code != "Unknown" else original_message
        found = match_text(f"{message} {original_message}")
        if inner is not None and inner.code in _TOO_LARGE_CODES:
            found = mode("payload-too-large")
        if inner is not None and inner.code == "RequestTimeout":
            found = mode("invocation-timeout")
        m = (
            found
            if found is not None
            and found.code in {"payload-too-large", "invocation-timeout", "worker-timeout", "module-not-found"}
            else mode("model-error")
        )
        readable = readable.strip().rstrip(".")
        status = f" (status {original_status})" if original_status else ""
        where = f" The container's log: {log_stream}." if log_stream and log_stream != "local" else ""
        if m.code == "model-error" and original_status is not None and 400 <= original_status < 500:
            return EndpointInvocationError(  # the model refused this request: nothing to fix on AWS
                f"The model rejected the request{status}: {readable}.",
                code=m.code,
                detail=readable,
                fix="Change the request as the message says (it was not retried).",
                original_status=original_status,
                original_message=original_message,
                log_stream_arn=log_stream,
            )
        context = f" ({message})" if original_status is None and message else ""
        return EndpointInvocationError(
            f"{m.message}{context} The model said{status}: {readable}.{where}",
            fix=m.fix,
            code=m.code,
            detail=readable,
            original_status=original_status,
            original_message=original_message,
            log_stream_arn=log_stream,
        )

    def _explain(self, err: BaseException, *, action: str = "") -> EndpointInvocationError:
        code, message, response = _error_fields(err)
        if code == "ModelError":
            status = response.get("OriginalStatusCode")
            return self._model_error(
                original_status=int(status) if status is not None else None,
                original_message=str(response.get("OriginalMessage") or ""),
                log_stream=response.get("LogStreamArn"),
                message=message,
            )
        d = diagnose_exception(err)
        if d.code == "client-read-timeout":
            timeout = getattr(getattr(self._runtime, "meta", None), "config", None)
            seconds = getattr(timeout, "read_timeout", None)
            detail = f"no answer within {seconds:g} s" if seconds else d.detail
            return EndpointInvocationError(f"{d.message} ({detail})", fix=d.fix, code=d.code, detail=d.detail)
        prefix = f"{action} failed: " if action else ""
        return EndpointInvocationError(
            f"{prefix}{d.message}", fix=d.fix, code=d.code, detail=d.detail, original_message=message or None
        )

    # -- the protocol -------------------------------------------------------------------------

    def segment(self, request: Any, *, raw: bool = False) -> Any:
        """Send an :class:`inference.protocol.SegmentRequest`, return a ``SegmentResponse``."""
        from inference.protocol import CUSTOM_ATTRIBUTES_HEADER, SESSION_HEADER, decode_response, encode_request

        body, content_type, headers = encode_request(request, raw=raw, max_bytes=ASYNC_LIMIT_BYTES)
        result = self.invoke(
            body,
            content_type=content_type,
            custom_attributes=headers.get(CUSTOM_ATTRIBUTES_HEADER),
            session_id=headers.get(SESSION_HEADER),
        )
        return decode_response(result.body)


def from_settings(
    settings: Any,
    endpoint_name: str,
    *,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    async_endpoint_name: str | None = None,
    async_s3_prefix: str | None = None,
    endpoint_is_async: bool | None = None,
    clients: Any | None = None,
) -> EndpointClient:
    """A client built from :class:`cloud.aws.env.AwsSettings` (the CLI's and the app's entry point).

    ``endpoint_is_async=None`` asks SageMaker once (DescribeEndpoint/DescribeEndpointConfig)."""
    from cloud.aws.env import AwsClients

    clients = clients or AwsClients(settings)
    prefix = async_s3_prefix or (
        f"s3://{settings.bucket}/langsam-studio/async/{endpoint_name}" if settings.bucket else None
    )
    return EndpointClient(
        endpoint_name,
        runtime=clients.client("sagemaker-runtime", config=runtime_config(read_timeout=read_timeout)),
        s3=clients.client("s3"),
        sagemaker=clients.client("sagemaker"),
        async_endpoint_name=async_endpoint_name,
        async_s3_prefix=prefix,
        endpoint_is_async=endpoint_is_async,
    )


def smoke_request_body() -> tuple[bytes, str]:
    """A tiny real request (64x64 PNG, a box prompt) that any backend answers quickly."""
    import io

    import numpy as np
    from PIL import Image

    from inference.prompts import Box, Prompt
    from inference.protocol import SegmentRequest, encode_request

    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[16:48, 16:48] = (220, 40, 40)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    request = SegmentRequest(
        prompt=Prompt(box=Box(x0=12, y0=12, x1=52, y1=52), multimask=False), image=buffer.getvalue()
    )
    body, content_type, _ = encode_request(request)
    return body, content_type


def describe_answer(result: InvokeResult) -> str:
    """One line about a successful answer (for the CLI)."""
    try:
        obj = json.loads(result.body)
        objects = len(obj.get("objects", [])) if isinstance(obj, Mapping) else "?"
        extra = f", {objects} object(s), backend {obj.get('backend')}, model {obj.get('model')}"
    except (ValueError, AttributeError):
        extra = ""
    return f"{len(result.body)} bytes in {result.latency_s * 1000:.0f} ms ({result.mode}{extra})"
