"""A local stand-in for the Ray Serve SageMaker image's adapter on port 8080, and a boto3 caller.

The image's adapter forwards ``POST /invocations`` to the Ray Serve app's ``/`` with
``Content-Type``, ``Accept`` and every ``X-Amzn-SageMaker-*`` header, returns the app's
``X-Amzn-SageMaker-*`` response headers, answers 504 after ``RAYSERVE_BACKEND_TIMEOUT`` (300 s)
and 503 when Ray cannot be reached; ``GET /ping`` is 200 iff Ray's ``/-/healthz`` is. This one
does the same with the standard library, and also serves ``/endpoints/{name}/invocations`` so
the real boto3 ``sagemaker-runtime`` client can talk to it directly.
"""

from __future__ import annotations

import http.client
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_INVOKE_PATH = re.compile(r"^/(invocations|endpoints/[^/]+/invocations)/?$")
_FORWARDED = ("content-type", "accept")


class SageMakerAdapter:
    def __init__(self, *, backend_url: str, port: int, backend_timeout: float = 300.0) -> None:
        self.backend_url = backend_url.rstrip("/")
        self.backend_timeout = backend_timeout
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") == "/ping":
                    self._send(200 if adapter.ping() == 200 else 503, b"")
                else:
                    self._send(404, b'{"message": "not found"}', {"Content-Type": "application/json"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if not _INVOKE_PATH.match(self.path.split("?")[0]):
                    self._send(404, b'{"message": "not found"}', {"Content-Type": "application/json"})
                    return
                fwd = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in _FORWARDED or k.lower().startswith("x-amzn-sagemaker-")
                }
                status, data, headers = adapter.forward(body, fwd)
                self._send(status, data, headers)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="sm-adapter")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def ping(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.backend_url}/-/healthz", timeout=2) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return 0

    def forward(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, dict[str, str]]:
        host_port = self.backend_url.split("://", 1)[1]
        conn = http.client.HTTPConnection(host_port, timeout=self.backend_timeout)
        try:
            conn.request("POST", "/", body=body, headers=dict(headers))
            resp = conn.getresponse()
            data = resp.read()
            out = {
                k: v
                for k, v in resp.getheaders()
                if k.lower() == "content-type" or k.lower().startswith("x-amzn-sagemaker-")
            }
            return resp.status, data, out
        except TimeoutError:
            return 504, b'{"message": "the model did not answer within RAYSERVE_BACKEND_TIMEOUT"}', {}
        except OSError as exc:
            return 503, f'{{"message": "Ray Serve cannot be reached: {exc}"}}'.encode(), {}
        finally:
            conn.close()


def boto3_invoke(
    url: str,
    *,
    body: bytes,
    content_type: str,
    accept: str = "application/json",
    session_id: str | None = None,
    custom_attributes: str | None = None,
    read_timeout: float = 60.0,
) -> tuple[int, bytes, dict[str, str]]:
    """``invoke_endpoint`` through the real boto3 client at ``url`` (dummy credentials, no retries).

    Returns (status, body, {"CustomAttributes", "NewSessionId", ...}); status 0 on a read timeout.
    """
    from botocore.exceptions import ClientError, ReadTimeoutError

    from cloud.dry_run.dlc import local_runtime_client

    client = local_runtime_client(url, read_timeout=read_timeout)
    kwargs = {}
    if session_id:
        kwargs["SessionId"] = session_id
    if custom_attributes:
        kwargs["CustomAttributes"] = custom_attributes
    try:
        resp = client.invoke_endpoint(
            EndpointName="local-ray-dry-run", Body=body, ContentType=content_type, Accept=accept, **kwargs
        )
        data = resp["Body"].read()
        meta = {k: resp[k] for k in ("CustomAttributes", "NewSessionId", "ContentType") if k in resp}
        return resp["ResponseMetadata"]["HTTPStatusCode"], data, meta
    except ClientError as exc:
        meta = exc.response.get("ResponseMetadata", {})
        attrs = (meta.get("HTTPHeaders") or {}).get("x-amzn-sagemaker-custom-attributes")
        return (
            meta.get("HTTPStatusCode", 0),
            exc.response.get("Error", {}).get("Message", str(exc)).encode(),
            {"CustomAttributes": attrs} if attrs else {},
        )
    except ReadTimeoutError:
        return 0, b"", {}
