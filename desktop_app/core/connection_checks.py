"""The settings dialog's "Test" buttons as plain functions: each returns :class:`CheckResult` rows
(check, ok, sentence) and never raises for a wrong setting or a network problem; a sentence that
reports a problem says the fix. No secret value appears in a sentence
(:func:`desktop_app.core.secrets.redact`). Qt-free: the dialog runs them in a background thread.

``values`` is a mapping of setting key -> value (secrets included) as in force — see
:func:`desktop_app.core.secrets.settings_in_force` — or as typed in the dialog.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from desktop_app.core.secrets import redact
from desktop_app.core.settings_schema import SECRET_KEYS, aws_service_endpoints

if TYPE_CHECKING:
    from cloud.aws.env import AwsSettings

DEFAULT_TIMEOUT_S = 6.0


class CheckResult(NamedTuple):
    check: str  # short name: "identity", "ping", "token", "models", …
    ok: bool
    sentence: str  # what was found; for a problem, what to do


def _clean(text: str, *secrets: Any) -> str:
    return redact(text, extra=[s for s in secrets if isinstance(s, str)])


def _secrets(values: Mapping[str, Any]) -> list[Any]:
    return [values.get(key) for key in SECRET_KEYS]


def _guard(name: str, fn: Callable[[], list[Any]], *secrets: Any) -> list[CheckResult]:
    """Run a check; an unexpected exception becomes one secret-free row, never a traceback."""
    try:
        return [CheckResult(r[0], bool(r[1]), _clean(r[2], *secrets)) for r in fn()]
    except Exception as exc:
        return [
            CheckResult(name, False, _clean(f"The check failed unexpectedly ({type(exc).__name__}: {exc}).", *secrets))
        ]


# -- AWS --------------------------------------------------------------------------------------
def aws_settings(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AwsSettings:
    """The :class:`cloud.aws.env.AwsSettings` these values mean (keys win over a profile)."""
    from cloud.aws.env import AwsSettings

    def text(key: str) -> str | None:
        value = values.get(key)
        return str(value) if value else None

    key_id, secret = text("aws/access_key_id"), text("aws/secret_access_key")
    keys = bool(key_id and secret)
    return AwsSettings(
        region=text("aws/region"),
        profile=None if keys else text("aws/profile"),
        role_arn=text("aws/role_arn"),
        bucket=text("aws/model_bucket"),
        access_key_id=key_id if keys else None,
        secret_access_key=secret if keys else None,
        session_token=text("aws/session_token") if keys else None,
        endpoint_url=text("aws/endpoint_url"),
        service_endpoints=aws_service_endpoints(environ),
        retry_attempts=1,
    )


def check_aws(
    values: Mapping[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S, environ: Mapping[str, str] | None = None
) -> list[CheckResult]:
    """STS identity, region, execution role (trusts SageMaker?) and model bucket."""
    from cloud.aws.check import check_aws as run

    settings = aws_settings(values, environ)
    return _guard("aws", lambda: run(settings, timeout_s=timeout_s), *_secrets(values))


def check_endpoint(
    values: Mapping[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S, environ: Mapping[str, str] | None = None
) -> list[CheckResult]:
    """Does the SageMaker endpoint exist and is it in service? (No smoke invocation yet.)"""
    from cloud.aws.check import check_endpoint as run

    settings = aws_settings(values, environ)
    name = str(values.get("remote/endpoint_name") or "")
    region = str(values.get("remote/endpoint_region") or "") or None
    return _guard("endpoint", lambda: run(settings, name, region=region, timeout_s=timeout_s), *_secrets(values))


# -- our own server ---------------------------------------------------------------------------
def _get_json(url: str, *, token: str | None, timeout_s: float) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (http(s) only)
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    try:
        data = json.loads(body.decode("utf-8")) if body else {}
    except ValueError:
        data = {}
    return status, data if isinstance(data, dict) else {}


def _unreachable(url: str, exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    return (
        f"Nothing answers at {url} ({reason}). Fix: start the server there (langsam-studio serve), "
        "check the host and port, or a firewall between you."
    )


def check_server(
    values: Mapping[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S, environ: Mapping[str, str] | None = None
) -> list[CheckResult]:
    """GET /ping (is it up, which backend) and GET /info with the token (is it accepted)."""
    url = str(values.get("remote/server_url") or "").rstrip("/")
    token = str(values.get("remote/server_token") or "") or None

    def run() -> list[CheckResult]:
        if not url:
            return [
                CheckResult(
                    "ping",
                    False,
                    "No server URL is set. Fix: enter one in Settings → Remote, e.g. http://gpu-box:8080.",
                )
            ]
        rows: list[CheckResult] = []
        try:
            status, body = _get_json(f"{url}/ping", token=None, timeout_s=timeout_s)
        except (OSError, ValueError) as exc:
            return [CheckResult("ping", False, _unreachable(url, exc))]
        if status == 200:
            rows.append(
                CheckResult(
                    "ping",
                    True,
                    f"The server at {url} is ready: backend {body.get('backend')}, "
                    f"model {body.get('model')}, device {body.get('device')} "
                    f"(protocol {body.get('protocol')}).",
                )
            )
        elif status == 503:
            reason = body.get("reason") or body.get("status") or "not ready"
            rows.append(
                CheckResult(
                    "ping",
                    False,
                    f"The server at {url} answers but is not ready: {reason}. "
                    "Fix: wait for the model to load, or read the server's log.",
                )
            )
        else:
            rows.append(
                CheckResult(
                    "ping",
                    False,
                    f"{url}/ping answered HTTP {status}: this does not look like a "
                    "LangSAM Studio server. Fix: check the URL and port.",
                )
            )
            return rows
        try:
            status, body = _get_json(f"{url}/info", token=token, timeout_s=timeout_s)
        except (OSError, ValueError) as exc:
            return [*rows, CheckResult("token", False, _unreachable(url, exc))]
        if status == 200:
            text = "The server accepts the token." if token else "The server needs no token."
            rows.append(CheckResult("token", True, text))
        elif status == 401:
            rows.append(
                CheckResult(
                    "token",
                    False,
                    "The server rejected the token. Fix: enter the server's token "
                    "(its --token or LANGSAM_SERVER_TOKEN) in Settings → Remote."
                    if token
                    else "The server needs a token. Fix: enter the server's token in Settings → Remote.",
                )
            )
        else:
            rows.append(CheckResult("token", False, f"{url}/info answered HTTP {status}."))
        return rows

    return _guard("server", run, token)


# -- OpenAI -----------------------------------------------------------------------------------
def check_openai(
    values: Mapping[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S, environ: Mapping[str, str] | None = None
) -> list[CheckResult]:
    """List the models with the key (and base URL, for an OpenAI-compatible server)."""
    key = str(values.get("openai/api_key") or "") or None
    base = str(values.get("openai/base_url") or "") or None
    model = str(values.get("openai/model") or "")

    def run() -> list[CheckResult]:
        import openai

        if not key and not base:
            return [
                CheckResult(
                    "openai",
                    False,
                    "No OpenAI API key is set. Fix: enter it in Settings → OpenAI (or set OPENAI_API_KEY).",
                )
            ]
        where = base or "OpenAI"
        client = openai.OpenAI(api_key=key or "not-needed", base_url=base, timeout=timeout_s, max_retries=0)
        try:
            ids = [m.id for m in client.models.list()]
        except openai.AuthenticationError:
            return [
                CheckResult(
                    "openai", False, f"{where} rejected the API key. Fix: paste a valid key in Settings → OpenAI."
                )
            ]
        except openai.PermissionDeniedError:
            return [
                CheckResult(
                    "openai",
                    False,
                    f"{where} denies this key the model list. Fix: check the key's project and permissions.",
                )
            ]
        except openai.NotFoundError:
            return [
                CheckResult(
                    "openai",
                    False,
                    f"{where} has no model list at {base or 'the default URL'}/models. "
                    "Fix: the base URL usually ends in /v1.",
                )
            ]
        except openai.APIConnectionError as exc:  # includes timeouts
            return [
                CheckResult(
                    "openai",
                    False,
                    f"{where} cannot be reached ({type(exc).__name__}). Fix: check the network, proxy and base URL.",
                )
            ]
        except openai.APIStatusError as exc:
            return [
                CheckResult(
                    "openai",
                    False,
                    f"{where} answered HTTP {exc.status_code}. Fix: try again later or check the base URL.",
                )
            ]
        rows = [CheckResult("openai", True, f"{where} accepts the key ({len(ids)} models available).")]
        if model:
            if model in ids:
                rows.append(CheckResult("model", True, f"The model {model} is available."))
            else:
                rows.append(
                    CheckResult(
                        "model",
                        False,
                        f"The model {model} is not in the list. Fix: choose one of "
                        f"{', '.join(sorted(ids)[:8]) or 'the listed models'}.",
                    )
                )
        return rows

    return _guard("openai", run, key)


# -- Hugging Face -----------------------------------------------------------------------------
def check_huggingface(
    values: Mapping[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S, environ: Mapping[str, str] | None = None
) -> list[CheckResult]:
    """Who the token belongs to (huggingface_hub.whoami)."""
    token = str(values.get("huggingface/token") or "") or None

    def run() -> list[CheckResult]:
        if not token:
            return [
                CheckResult(
                    "huggingface",
                    True,
                    "No Hugging Face token is set: public models download without one; gated models need it.",
                )
            ]
        import huggingface_hub
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return [
                CheckResult(
                    "huggingface",
                    False,
                    "Hugging Face is in offline mode (HF_HUB_OFFLINE is set), so "
                    "the token cannot be checked. Fix: unset HF_HUB_OFFLINE.",
                )
            ]
        try:
            me = huggingface_hub.whoami(token=token)
        except Exception as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status == 401:
                return [
                    CheckResult(
                        "huggingface",
                        False,
                        "Hugging Face rejected the token. Fix: create a token at "
                        "https://huggingface.co/settings/tokens and paste it.",
                    )
                ]
            return [
                CheckResult(
                    "huggingface",
                    False,
                    f"Hugging Face cannot be reached ({type(exc).__name__}). Fix: check the network and proxy.",
                )
            ]
        return [CheckResult("huggingface", True, f"The token belongs to {me.get('name', '?')}.")]

    return _guard("huggingface", run, token)


# every check is called as check(values, environ=...); only the AWS ones use the environment
CHECKS: Mapping[str, Callable[..., list[CheckResult]]] = {
    "AWS": check_aws,
    "Remote server": check_server,
    "Remote endpoint": check_endpoint,
    "OpenAI": check_openai,
    "Hugging Face": check_huggingface,
}
