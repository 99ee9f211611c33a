"""Where credentials, region, role and bucket come from, and the boto3 session built from them.

Order, highest first: command-line options, real environment variables, the ``.env`` file
(given path or ``./.env``), then boto3's usual chain (profile, SSO, instance role). The ``.env``
file never overrides a variable that is set in the real environment. The old project's names are
kept: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, (``AWS_SESSION_TOKEN``),
``AWS_DEFAULT_REGION``, ``AWS_ARN_ROLE``, ``MODEL_BUCKET``.

Secrets never reach a log line: :func:`describe_credentials` masks the key id and
:func:`redact` scrubs any text that is about to be printed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SECRET_NAMES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclass(frozen=True, kw_only=True)
class AwsSettings:
    """Everything the deploy tool needs to reach AWS. Secrets are excluded from ``repr``."""

    region: str | None
    profile: str | None = None
    role_arn: str | None = None
    bucket: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None  # one URL for every service (moto server, LocalStack) or None
    service_endpoints: Mapping[str, str] = field(default_factory=dict)  # per service, e.g. a local runtime
    retry_attempts: int = (
        5  # total attempts of control-plane calls (throttling); invocations: 1 (cloud.endpoint.client)
    )
    sources: Mapping[str, str] = field(default_factory=dict)  # name -> "option" | "environment" | ".env"


def read_dotenv(path: str | os.PathLike[str] | None) -> dict[str, str]:
    """The ``.env`` file's values (``{}`` when there is none). ``path=None`` means ``./.env``."""
    from dotenv import dotenv_values

    candidate = Path(path) if path is not None else Path.cwd() / ".env"
    if not candidate.is_file():
        if path is not None:
            from cloud.aws.errors import DeployError

            raise DeployError(
                f"The .env file {candidate} does not exist.",
                fix="Give the path of an existing file with --env-file, or omit it.",
                code="no-credentials",
            )
        return {}
    return {k: v for k, v in dotenv_values(candidate).items() if v is not None}


def resolve_settings(
    *,
    env_file: str | os.PathLike[str] | None = None,
    region: str | None = None,
    profile: str | None = None,
    role_arn: str | None = None,
    bucket: str | None = None,
    endpoint_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> AwsSettings:
    """Merge options, the environment and the ``.env`` file (which never overrides the environment)."""
    env = dict(os.environ if environ is None else environ)
    dot = read_dotenv(env_file)
    sources: dict[str, str] = {}

    def pick(option: str | None, *names: str) -> str | None:
        if option:
            sources[names[0]] = "option"
            return option
        for name in names:
            if env.get(name):
                sources[names[0]] = "environment"
                return env[name]
        for name in names:
            if dot.get(name):
                sources[names[0]] = ".env"
                return dot[name]
        return None

    profile_value = pick(profile, "AWS_PROFILE")
    key_id = secret = token = None
    # Keys from .env are used only when neither the environment nor an explicit profile names
    # credentials: a profile given on purpose wins over a file lying in the current folder.
    if not (env.get("AWS_ACCESS_KEY_ID") or profile):
        if dot.get("AWS_ACCESS_KEY_ID") and dot.get("AWS_SECRET_ACCESS_KEY"):
            key_id, secret = dot["AWS_ACCESS_KEY_ID"], dot["AWS_SECRET_ACCESS_KEY"]
            token = dot.get("AWS_SESSION_TOKEN") or None
            sources["AWS_ACCESS_KEY_ID"] = ".env"
    elif env.get("AWS_ACCESS_KEY_ID") and not profile:
        sources["AWS_ACCESS_KEY_ID"] = "environment"
    return AwsSettings(
        region=pick(region, "AWS_DEFAULT_REGION", "AWS_REGION"),
        profile=profile_value,
        role_arn=pick(role_arn, "AWS_ARN_ROLE"),
        bucket=pick(bucket, "MODEL_BUCKET"),
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=token,
        endpoint_url=endpoint_url or env.get("LANGSAM_AWS_ENDPOINT_URL") or None,
        sources=sources,
    )


def make_session(settings: AwsSettings) -> Any:
    """A ``boto3.Session`` for these settings (profile or explicit keys, region)."""
    import boto3

    kwargs: dict[str, Any] = {}
    if settings.access_key_id and settings.secret_access_key:
        kwargs.update(
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            aws_session_token=settings.session_token,
        )
    elif settings.profile:
        kwargs["profile_name"] = settings.profile
    if settings.region:
        kwargs["region_name"] = settings.region
    try:
        return boto3.Session(**kwargs)
    except Exception as err:  # botocore ProfileNotFound and friends
        from cloud.aws.errors import DeployError

        raise DeployError(
            f"The AWS profile {settings.profile!r} cannot be used: {err}.",
            fix="Check ~/.aws/config or pass another --profile.",
            code="no-credentials",
        ) from None


class AwsClients:
    """Creates each boto3 client once (clients are thread-safe; sessions are not)."""

    def __init__(self, settings: AwsSettings, *, session: Any | None = None) -> None:
        self.settings = settings
        self._session = session
        self._clients: dict[tuple[str, str | None, int], Any] = {}

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = make_session(self.settings)
        return self._session

    @property
    def region(self) -> str | None:
        return self.settings.region or self.session.region_name

    def client(self, service: str, *, region: str | None = None, config: Any | None = None) -> Any:
        key = (service, region, id(config))
        if key not in self._clients:
            kwargs: dict[str, Any] = {}
            if region or self.region:
                kwargs["region_name"] = region or self.region
            url = self.settings.service_endpoints.get(service) or self.settings.endpoint_url
            if url:
                kwargs["endpoint_url"] = url
            if config is None:
                from botocore.config import Config

                config = Config(retries={"mode": "standard", "total_max_attempts": self.settings.retry_attempts})
            kwargs["config"] = config
            self._clients[key] = self.session.client(service, **kwargs)
        return self._clients[key]


def mask_key_id(key_id: str | None) -> str:
    if not key_id:
        return "-"
    return f"{key_id[:4]}…{key_id[-4:]}" if len(key_id) > 8 else "…"


def describe_credentials(settings: AwsSettings, session: Any | None = None) -> str:
    """Where the credentials come from, with the key id masked and no secret."""
    if settings.access_key_id:
        return f"access key {mask_key_id(settings.access_key_id)} from .env"
    if settings.profile:
        return f"profile {settings.profile!r}"
    if session is not None:
        creds = session.get_credentials()
        if creds is None:
            return "none found"
        return f"{getattr(creds, 'method', 'default chain')} (key {mask_key_id(creds.access_key)})"
    return "the default AWS chain"


_KEY_ID = re.compile(r"\b(AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b")


def redact(text: str, settings: AwsSettings | None = None) -> str:
    """``text`` with access key ids masked and any known secret value removed."""
    out = _KEY_ID.sub(lambda m: mask_key_id(m.group(0)), text)
    secrets = [os.environ.get(n) for n in _SECRET_NAMES]
    if settings is not None:
        secrets += [settings.secret_access_key, settings.session_token]
    for secret in secrets:
        if secret and len(secret) >= 8:
            out = out.replace(secret, "****")
    return out
