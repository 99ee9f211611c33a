"""The ``sagemaker`` backend: prompts answered by a deployed SageMaker endpoint (boto3).

``create_backend("sagemaker", endpoint="langsam-endpoint", region="eu-west-1", profile=None)``
once the app or the CLI has declared the provider (the inference layer never imports ``cloud``)::

    from inference.backends.registry import add_provider
    add_provider("sagemaker", "cloud.endpoint.sagemaker_backend")

Everything but the transport is :class:`inference.backends.remote.RemoteBackend` (original
bytes once as an ``encode_only`` request, then image ids; silent re-send on ``ImageNotCached``;
logits for refinement). The transport is :class:`cloud.endpoint.client.EndpointClient`
(``invoke_endpoint``, no automatic retries, explained errors), run on a helper thread so a
superseded call is abandoned at once: botocore's connection pool hands the next call another
connection, so it is not serialized behind the abandoned one. Credentials come from the options
(settings) or the AWS chain. An image whose file is over the 6 MiB real-time limit goes through
the endpoint's asynchronous companion when one is configured (``async_endpoint`` + ``async_s3``,
sent whole with every prompt, slower), else it is re-encoded to fit, and the status says so.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from cloud.aws.errors import EndpointInvocationError
from cloud.endpoint.client import ASYNC_LIMIT_BYTES, REALTIME_LIMIT_BYTES, EndpointClient, runtime_config
from inference.backends.registry import register_backend
from inference.backends.remote import Exchange, RemoteBackend, RemoteError, RemoteUnavailableError
from inference.cancel import CancelToken, check
from inference.errors import BackendUnavailableError, Cancelled, InferenceError
from inference.images import ImageSource
from inference.prompts import Prompt
from inference.protocol import (
    CUSTOM_ATTRIBUTES_HEADER,
    SESSION_HEADER,
    SegmentRequest,
    decode_error,
    decode_response,
    encode_request,
)
from inference.results import Prediction

POLL_S = 0.01
TEXT_BACKENDS = frozenset({"langsam", "sam3"})  # what a served backend name answers text with


@register_backend
class SageMakerBackend(RemoteBackend):
    """A SageMaker endpoint. Options: ``endpoint`` (required), ``region``, ``profile``,
    ``access_key_id``/``secret_access_key``/``session_token``, ``endpoint_url`` (a local stand-in:
    our server's ``/endpoints/{name}/invocations`` path), ``async_endpoint``, ``async_s3``,
    ``timeout_s``; or a ready ``client`` (:class:`EndpointClient`)."""

    name = "sagemaker"
    raw_header = CUSTOM_ATTRIBUTES_HEADER
    max_upload_bytes = REALTIME_LIMIT_BYTES
    # one session per image: SageMaker's stateful sessions (and Ray Serve's consistent-hash router
    # inside the container) send its clicks to the instance / replica holding the embedding
    uses_sessions = True

    def __init__(
        self,
        *,
        endpoint: str = "",
        region: str | None = None,
        profile: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        endpoint_url: str | None = None,
        async_endpoint: str | None = None,
        async_s3: str | None = None,
        client: EndpointClient | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not endpoint and client is None:
            raise BackendUnavailableError(
                "the 'sagemaker' backend needs an endpoint name: set it in Settings → Remote (or --endpoint NAME)"
            )
        self.endpoint = endpoint or (client.endpoint_name if client is not None else "")
        self.region = region
        self._client = client
        self._aws = {
            "region": region or None,
            "profile": profile or None,
            "access_key_id": access_key_id or None,
            "secret_access_key": secret_access_key or None,
            "session_token": session_token or None,
            "endpoint_url": endpoint_url or None,
            "async_endpoint": async_endpoint or None,
            "async_s3": async_s3 or None,
        }
        self._async_keys: dict[str, bytes] = {}  # image key -> original bytes sent asynchronously

    @property
    def where(self) -> str:
        region = self.region or (self._client_region() or "")
        return f"endpoint {self.endpoint}" + (f" ({region})" if region else "")

    def _client_region(self) -> str | None:
        runtime = getattr(self._client, "_runtime", None)
        return getattr(getattr(runtime, "meta", None), "region_name", None)

    # -- the boto3 client ----------------------------------------------------------------------
    @property
    def client(self) -> EndpointClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> EndpointClient:
        from cloud.aws.env import AwsClients, resolve_settings

        a = self._aws
        settings = resolve_settings(region=a["region"], profile=a["profile"])
        if a["access_key_id"] and a["secret_access_key"]:
            settings = dataclasses.replace(
                settings,
                access_key_id=a["access_key_id"],
                secret_access_key=a["secret_access_key"],
                session_token=a["session_token"],
                profile=None,
            )
        if a["endpoint_url"]:
            settings = dataclasses.replace(settings, service_endpoints={"sagemaker-runtime": a["endpoint_url"]})
        try:
            clients = AwsClients(settings)
            runtime = clients.client("sagemaker-runtime", config=runtime_config(read_timeout=self.timeout_s))
            s3 = clients.client("s3") if a["async_s3"] else None
        except InferenceError:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore NoRegionError, ProfileNotFound, DeployError…
            raise BackendUnavailableError(f"the SageMaker endpoint {self.endpoint} cannot be used: {exc}") from None
        return EndpointClient(
            self.endpoint,
            runtime=runtime,
            s3=s3,
            async_endpoint_name=a["async_endpoint"],
            async_s3_prefix=a["async_s3"],
            endpoint_is_async=False,
        )

    @property
    def has_async(self) -> bool:
        return bool(self._aws["async_endpoint"] and self._aws["async_s3"])

    # -- RemoteBackend -----------------------------------------------------------------------------
    def _fetch_info(self) -> dict[str, Any]:
        """A tiny encode-only request: proves credentials and reachability, names the model."""
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(buf, format="PNG")
        probe = np.zeros((8, 8, 3), dtype=np.uint8)
        try:
            self.client  # noqa: B018 - build it (errors in words)
            self._upload(probe, "probe", ImageSource(data=buf.getvalue()), None)
        except RemoteError as exc:
            raise BackendUnavailableError(str(exc)) from None
        finally:
            self._ids.pop("probe", None)
            self._sessions.pop("probe", None)
        backend = self.uploaded_by[0] if self.uploaded_by else "unknown"
        info: dict[str, Any] = {
            "backend": backend,
            "model": self.uploaded_by[1] if self.uploaded_by else "?",
            "device": "instance",
            "supports_text": backend in TEXT_BACKENDS,  # what an endpoint from before capabilities serves
            "supports_points": True,
        }
        # an endpoint has no /info: the encode-only answer says what it takes (exemplars, the logits
        # side, features such as keep_logits); older endpoints do not, and are found out by trying
        info.update(self.uploaded_capabilities or {})
        return info

    def _exchange(
        self, body: bytes, *, content_type: str, headers: Mapping[str, str], cancel: CancelToken | None, timeout: float
    ) -> Exchange:
        client = self.client
        started = time.perf_counter()
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["result"] = client.invoke(
                    body,
                    content_type=content_type,
                    custom_attributes=headers.get(CUSTOM_ATTRIBUTES_HEADER),
                    session_id=headers.get(SESSION_HEADER),
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="langsam-sagemaker-call", daemon=True).start()
        deadline = time.monotonic() + timeout + 10.0  # the client's own read timeout comes first
        while not done.wait(POLL_S if cancel is not None else 1.0):
            if cancel is not None and cancel.cancelled:
                raise Cancelled(cancel.reason or "cancelled")  # abandoned: it ends on its own
            if time.monotonic() > deadline:
                raise RemoteUnavailableError(f"the {self.where} did not answer within {timeout:g} s")
        error = box.get("error")
        if error is not None:
            raise self._remote_error(error) from None
        result = box["result"]
        sent = len(body) + len(headers.get(CUSTOM_ATTRIBUTES_HEADER) or "") + len(headers.get(SESSION_HEADER) or "")
        answer_headers = {"NewSessionId": result.new_session_id} if getattr(result, "new_session_id", None) else {}
        return Exchange(
            body=result.body, headers=answer_headers, bytes_sent=sent, seconds=time.perf_counter() - started
        )

    def _remote_error(self, error: BaseException) -> RemoteError:
        if isinstance(error, EndpointInvocationError):
            info = decode_error(error.original_message) if error.original_message else None
            if info is not None and info.code != "Unknown":
                if info.status == 0 and error.original_status:
                    info = dataclasses.replace(info, status=int(error.original_status))
                return RemoteError(f"the {self.where} answered {info.status}: {info.message}", info=info)
            if error.code in (
                "no-credentials",
                "access-denied",
                "endpoint-not-found",
                "client-read-timeout",
                "connection-error",
            ):
                return RemoteUnavailableError(f"the {self.where} cannot be used: {error}")
            return RemoteError(f"the {self.where} failed: {error}")
        if isinstance(error, InferenceError):
            return RemoteError(str(error))
        return RemoteUnavailableError(f"the {self.where} cannot be reached: {type(error).__name__}: {error}")

    # -- images over the real-time limit -------------------------------------------------------
    def encode(
        self,
        image: np.ndarray,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> str:
        key = image_key or self.image_key(image)
        original = self._oversize_original(source)
        if original is not None:
            self._async_keys[key] = original  # nothing to prefetch: each prompt goes asynchronously
            return key
        return super().encode(image, image_key=key, cancel=cancel, source=source)

    def is_encoded(self, image_key: str) -> bool:
        return image_key in self._async_keys or super().is_encoded(image_key)

    def predict(
        self,
        image: np.ndarray,
        prompt: Prompt,
        *,
        image_key: str | None = None,
        cancel: CancelToken | None = None,
        source: ImageSource | None = None,
    ) -> Prediction:
        key = image_key or self.image_key(image)
        original = self._async_keys.get(key)
        if original is None and not super().is_encoded(key):  # uploaded already: no need to re-read the file
            original = self._oversize_original(source)
        if original is None:
            return super().predict(image, prompt, image_key=key, cancel=cancel, source=source)
        height, width = image.shape[:2]
        prompt.validate(width=width, height=height)
        check(cancel)
        want_logits = self.return_logits if self.return_logits is not None else not prompt.is_text
        request = SegmentRequest(prompt=prompt, image=original, return_logits=want_logits)
        body, content_type, headers = encode_request(
            request, raw=prompt.mask_input is None, max_bytes=ASYNC_LIMIT_BYTES
        )
        self.notice = (
            f"the image file is {len(original) / 2**20:.1f} MiB, over the 6 MiB real-time limit: "
            f"sent to the asynchronous endpoint {self._aws['async_endpoint']} with every prompt"
        )
        answer = self._call(body, content_type=content_type, headers=headers, cancel=cancel)
        prediction = decode_response(answer.body).prediction
        timings = dict(prediction.timings, roundtrip_ms=answer.seconds * 1000.0)
        return dataclasses.replace(prediction, image_key=key, timings=MappingProxyType(timings))

    def _oversize_original(self, source: ImageSource | None) -> bytes | None:
        if source is None or not self.has_async:
            return None
        try:
            data = source.read_bytes()
        except InferenceError:
            return None
        return data if len(data) > self.max_upload_bytes else None
