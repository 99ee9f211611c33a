"""Every setting of the app as one typed row: the dialog, ``AppSettings`` and the remote backends
read it (labelme's idea: the schema generates the dialog).

A :class:`Setting` says where a value lives (``key``: the settings INI key, or the secret store's
key for ``Kind.SECRET``), how it is shown (``group``, ``label``, ``help``), what it may be
(``kind``, ``choices``, ``minimum``/``maximum``) and which environment variables override it
(``env``: the first one set wins; the value is used but never stored). :meth:`Setting.validate`
returns a sentence for the person, or ``None`` when the value is fine.

Secrets (``Kind.SECRET``) never go to the INI file: they live in
:class:`desktop_app.core.secrets.SecretStore`.

Qt-free: the values come in as plain Python objects (or strings read from an INI or ``.env``).
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from desktop_app.core.backend_choices import AUTO, CHOICES, choice_names, is_device_choice
from inference.device import DEVICE_CHOICES
from inference.images import DEFAULT_MAX_PIXELS

GROUPS: tuple[str, ...] = ("General", "Models", "Remote", "AWS", "OpenAI", "Hugging Face")


class Kind(str, Enum):
    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"
    PATH = "path"
    URL = "url"
    SECRET = "secret"


class Origin(str, Enum):
    """Where an effective value came from."""

    DEFAULT = "default"
    SETTINGS = "settings"  # the INI file
    ENVIRONMENT = "environment"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One setting. ``key`` is ``"section/name"`` (the INI key; for secrets the secret store's key)."""

    key: str
    group: str
    label: str
    kind: Kind
    default: Any = ""
    choices: tuple[str, ...] = ()  # CHOICE: the values, in order (see current_choices)
    live_choices: Callable[[], tuple[str, ...]] | None = None  # CHOICE: read the values from a registry
    choice_titles: Mapping[str, str] = field(default_factory=dict)  # CHOICE: value -> shown text
    editable: bool = False  # CHOICE: other values may be typed (device: cuda:1)
    help: str = ""
    minimum: float | None = None  # INT / FLOAT bounds, inclusive
    maximum: float | None = None
    env: tuple[str, ...] = ()  # environment variables that override it, first set wins
    placeholder: str = ""  # shown in an empty field
    pattern: str = ""  # STR: a regular expression the value must match (when not empty)
    pattern_hint: str = ""  # what the pattern means, for the validation sentence

    @property
    def secret(self) -> bool:
        return self.kind is Kind.SECRET

    def current_choices(self) -> tuple[str, ...]:
        """CHOICE values as of now (the backend row reads the live registry)."""
        return self.live_choices() if self.live_choices is not None else self.choices

    def current_titles(self) -> Mapping[str, str]:
        if self.key == "inference/backend":
            return {n: c.title for n, c in CHOICES.items()}
        return self.choice_titles

    # -- conversion --------------------------------------------------------------------------
    def parse(self, raw: Any) -> Any:
        """``raw`` (a string from an INI, ``.env`` or field, or a typed value) as this kind's type.

        Raises ``ValueError`` with a sentence when it cannot be converted."""
        if raw is None:
            return self.default
        if self.kind is Kind.BOOL:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"{self.label} must be on or off (true/false), not {raw!r}.")
        if self.kind is Kind.INT:
            if isinstance(raw, bool):
                raise ValueError(f"{self.label} must be a whole number.")
            try:
                return int(str(raw).strip().replace("_", "").replace(",", "")) if not isinstance(raw, int) else raw
            except ValueError:
                raise ValueError(f"{self.label} must be a whole number, not {raw!r}.") from None
        if self.kind is Kind.FLOAT:
            try:
                return float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{self.label} must be a number, not {raw!r}.") from None
        return str(raw).strip() if not self.secret else str(raw)

    def validate(self, value: Any) -> str | None:
        """A sentence saying what is wrong with ``value`` and what to enter, or ``None``."""
        try:
            value = self.parse(value)
        except ValueError as exc:
            return str(exc)
        if self.kind in (Kind.INT, Kind.FLOAT):
            if self.minimum is not None and value < self.minimum:
                return f"{self.label} must be at least {_number(self.minimum)}."
            if self.maximum is not None and value > self.maximum:
                return f"{self.label} must be at most {_number(self.maximum)}."
            return None
        if self.kind is Kind.CHOICE:
            if self.key == "inference/device":
                if is_device_choice(value):
                    return None
                return f"{self.label} must be one of {', '.join(self.choices)} or cuda:N (e.g. cuda:1), not {value!r}."
            choices = self.current_choices()
            if value in choices or (self.editable and value):
                return None
            return f"{self.label} must be one of {', '.join(choices)}, not {value!r}."
        if not value:
            return None  # every text kind may be left empty (= not configured / default)
        if self.kind is Kind.URL:
            return _url_problem(self.label, value, self.pattern)
        if self.kind is Kind.PATH:
            path = Path(value).expanduser()
            if path.exists() and not path.is_dir():
                return f"{self.label} must be a folder, but {value} is a file."
            return None
        if self.kind is Kind.SECRET:
            if value != value.strip() or any(c in value for c in "\r\n"):
                return f"{self.label} has spaces or line breaks around it: paste the value alone."
            return None
        if self.pattern and not re.fullmatch(self.pattern, value):
            return f"{self.label} {self.pattern_hint or 'has an unexpected form'}: {value!r}."
        return None

    def to_ini(self, value: Any) -> Any:
        """The value as QSettings stores it (never called for secrets)."""
        if self.secret:
            raise ValueError(f"{self.key} is a secret: it is never written to the settings file")
        return self.parse(value)

    # -- environment -------------------------------------------------------------------------
    def env_value(self, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
        """``(variable, value)`` of the first overriding environment variable that is set."""
        env = os.environ if environ is None else environ
        for name in self.env:
            value = env.get(name)
            if value:
                return name, value
        return None


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _url_problem(label: str, value: str, scheme_pattern: str) -> str | None:
    from urllib.parse import urlparse

    parsed = urlparse(value)
    schemes = scheme_pattern.split("|") if scheme_pattern else ["http", "https"]
    if parsed.scheme not in schemes or not parsed.netloc:
        example = f"{schemes[0]}://…"
        return f"{label} must be a {' or '.join(schemes)} URL such as {example}, not {value!r}."
    return None


# -- the rows ----------------------------------------------------------------------------------
_BACKEND_HELP = "; ".join(f"{c.name}: {c.summary}" for c in CHOICES.values())
_DEVICE_TITLES = {"auto": "Automatic (GPU if usable)", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)", "cpu": "CPU"}

SETTINGS: tuple[Setting, ...] = (
    # General
    Setting(
        key="inference/backend",
        group="General",
        label="Backend",
        kind=Kind.CHOICE,
        default=AUTO,
        choices=choice_names(),
        choice_titles={n: c.title for n, c in CHOICES.items()},
        live_choices=choice_names,
        help=f"What runs your prompts. {_BACKEND_HELP}.",
    ),
    Setting(
        key="inference/device",
        group="General",
        label="Device",
        kind=Kind.CHOICE,
        default="auto",
        choices=DEVICE_CHOICES,
        choice_titles={k: _DEVICE_TITLES.get(k, k) for k in DEVICE_CHOICES},
        editable=True,
        help="Where models run; 'auto' uses a GPU when one is usable. cuda:N picks a GPU.",
    ),
    Setting(
        key="inference/prefetch_count",
        group="General",
        label="Prefetch images",
        kind=Kind.INT,
        default=1,
        minimum=0,
        maximum=8,
        help="How many following images to encode in the background (0 = off).",
    ),
    Setting(
        key="editing/autosave",
        group="General",
        label="Auto-save",
        kind=Kind.BOOL,
        default=True,
        help="Save an image's annotations after every change.",
    ),
    Setting(
        key="editing/autosave_delay_ms",
        group="General",
        label="Auto-save delay (ms)",
        kind=Kind.INT,
        default=500,
        minimum=100,
        maximum=5000,
        help="Changes within this time are saved together (the first change is saved at once).",
    ),
    Setting(
        key="inference/max_image_pixels",
        group="General",
        label="Largest image (pixels)",
        kind=Kind.INT,
        default=DEFAULT_MAX_PIXELS,
        minimum=1_000_000,
        maximum=2_000_000_000,
        env=("LANGSAM_MAX_PIXELS",),
        help="Images with more pixels than this are refused (protects memory).",
    ),
    # Models
    Setting(
        key="inference/cache_dir",
        group="Models",
        label="Models folder",
        kind=Kind.PATH,
        default="",
        env=("LANGSAM_STUDIO_MODELS",),
        placeholder="the app's default models folder",
        help="Where model weights are downloaded and looked for. Empty: the default folder. "
        "A single model can use a file elsewhere: Inference → Models… → Use local file.",
    ),
    # Remote: our own server
    Setting(
        key="remote/server_url",
        group="Remote",
        label="Server URL",
        kind=Kind.URL,
        default="",
        placeholder="http://gpu-box:8080",
        help="A server started with 'langsam-studio serve' to run prompts on.",
    ),
    Setting(
        key="remote/server_token",
        group="Remote",
        label="Server token",
        kind=Kind.SECRET,
        env=("LANGSAM_SERVER_TOKEN",),
        help="The server's bearer token (its --token / LANGSAM_SERVER_TOKEN).",
    ),
    # Remote: a SageMaker endpoint
    Setting(
        key="remote/endpoint_name",
        group="Remote",
        label="SageMaker endpoint",
        kind=Kind.STR,
        default="",
        pattern=r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        pattern_hint="may have only letters, digits and hyphens (at most 63)",
        placeholder="langsam-endpoint",
        help="The name of an endpoint deployed with 'langsam-studio deploy'.",
    ),
    Setting(
        key="remote/endpoint_region",
        group="Remote",
        label="Endpoint region",
        kind=Kind.STR,
        default="",
        pattern=r"[a-z]{2}(-[a-z]+)+-\d",
        pattern_hint="is not an AWS region name like eu-west-1",
        placeholder="the AWS region",
        help="Where the endpoint runs; empty: the AWS region.",
    ),
    Setting(
        key="remote/async_output_s3",
        group="Remote",
        label="Async output location",
        kind=Kind.URL,
        default="",
        pattern="s3",
        placeholder="s3://bucket/prefix/",
        help="For an asynchronous endpoint: the S3 location its results are written to.",
    ),
    # AWS
    Setting(
        key="aws/profile",
        group="AWS",
        label="Profile",
        kind=Kind.STR,
        default="",
        env=("AWS_PROFILE",),
        placeholder="default chain",
        help="A profile of ~/.aws/config; or leave empty and enter access keys.",
    ),
    Setting(
        key="aws/access_key_id",
        group="AWS",
        label="Access key ID",
        kind=Kind.SECRET,
        env=("AWS_ACCESS_KEY_ID",),
        help="Only when not using a profile.",
    ),
    Setting(
        key="aws/secret_access_key",
        group="AWS",
        label="Secret access key",
        kind=Kind.SECRET,
        env=("AWS_SECRET_ACCESS_KEY",),
    ),
    Setting(
        key="aws/session_token",
        group="AWS",
        label="Session token",
        kind=Kind.SECRET,
        env=("AWS_SESSION_TOKEN",),
        help="Only for temporary credentials.",
    ),
    Setting(
        key="aws/region",
        group="AWS",
        label="Region",
        kind=Kind.STR,
        default="",
        env=("AWS_DEFAULT_REGION", "AWS_REGION"),
        pattern=r"[a-z]{2}(-[a-z]+)+-\d",
        pattern_hint="is not an AWS region name like eu-west-1",
        placeholder="eu-west-1",
    ),
    Setting(
        key="aws/role_arn",
        group="AWS",
        label="Execution role ARN",
        kind=Kind.STR,
        default="",
        env=("AWS_ARN_ROLE",),
        pattern=r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+",
        pattern_hint="must look like arn:aws:iam::123456789012:role/Name",
        help="The role SageMaker uses to run the endpoint (it must trust sagemaker.amazonaws.com).",
    ),
    Setting(
        key="aws/model_bucket",
        group="AWS",
        label="Model bucket",
        kind=Kind.STR,
        default="",
        env=("MODEL_BUCKET",),
        pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
        pattern_hint="is not a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)",
        help="Where deploy uploads model packages.",
    ),
    Setting(
        key="aws/endpoint_url",
        group="AWS",
        label="AWS endpoint URL",
        kind=Kind.URL,
        default="",
        env=("AWS_ENDPOINT_URL", "LANGSAM_AWS_ENDPOINT_URL"),
        placeholder="the real AWS",
        help="Only for a local stand-in (moto, LocalStack). Per service: AWS_ENDPOINT_URL_<SERVICE>.",
    ),
    # OpenAI
    Setting(key="openai/api_key", group="OpenAI", label="API key", kind=Kind.SECRET, env=("OPENAI_API_KEY",)),
    Setting(
        key="openai/base_url",
        group="OpenAI",
        label="Base URL",
        kind=Kind.URL,
        default="",
        env=("OPENAI_BASE_URL",),
        placeholder="https://api.openai.com/v1",
        help="For an OpenAI-compatible server (vLLM, Ollama, LM Studio); empty: OpenAI.",
    ),
    Setting(
        key="openai/model",
        group="OpenAI",
        label="Model",
        kind=Kind.STR,
        default="gpt-4o-mini",
        env=("OPENAI_MODEL",),
        help="The chat model the prompt assistant uses.",
    ),
    # Hugging Face
    Setting(
        key="huggingface/token",
        group="Hugging Face",
        label="Access token",
        kind=Kind.SECRET,
        env=("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
        help="Only for gated or private models.",
    ),
)

BY_KEY: Mapping[str, Setting] = {s.key: s for s in SETTINGS}
SECRET_KEYS: tuple[str, ...] = tuple(s.key for s in SETTINGS if s.secret)


def get_setting(key: str) -> Setting:
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown setting {key!r}") from None


def settings_in(group: str) -> tuple[Setting, ...]:
    return tuple(s for s in SETTINGS if s.group == group)


def defaults() -> dict[str, Any]:
    """Every non-secret key with its default."""
    return {s.key: s.default for s in SETTINGS if not s.secret}


def validate_all(values: Mapping[str, Any]) -> dict[str, str]:
    """``{key: sentence}`` for every value in ``values`` that is wrong (unknown keys included)."""
    problems: dict[str, str] = {}
    for key, value in values.items():
        setting = BY_KEY.get(key)
        if setting is None:
            problems[key] = f"{key} is not a setting."
            continue
        problem = setting.validate(value)
        if problem:
            problems[key] = problem
    return problems


# -- effective values ------------------------------------------------------------------------
@dataclass(frozen=True)
class Effective:
    """The value in force, where it came from, and the variable's name when from the environment."""

    key: str
    value: Any = field(repr=False)
    origin: Origin
    env_name: str | None = None


def effective(key: str, stored: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Effective:
    """The value of a non-secret ``key``: environment, then ``stored`` (a valid one), then the default.

    Secrets: ask :class:`desktop_app.core.secrets.SecretStore` instead (it applies the same rule)."""
    setting = get_setting(key)
    if setting.secret:
        raise ValueError(f"{key} is a secret: use SecretStore.get")
    from_env = setting.env_value(environ)
    if from_env is not None and setting.validate(from_env[1]) is None:
        return Effective(key, setting.parse(from_env[1]), Origin.ENVIRONMENT, from_env[0])
    if key in stored and stored[key] is not None and setting.validate(stored[key]) is None:
        return Effective(key, setting.parse(stored[key]), Origin.SETTINGS)
    return Effective(key, setting.default, Origin.DEFAULT)


def aws_service_endpoints(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``AWS_ENDPOINT_URL_<SERVICE>`` overrides as ``{service: url}`` (``sagemaker_runtime`` ->
    ``sagemaker-runtime``), the way botocore reads them."""
    env = os.environ if environ is None else environ
    prefix = "AWS_ENDPOINT_URL_"
    return {
        name[len(prefix) :].lower().replace("_", "-"): value
        for name, value in env.items()
        if name.startswith(prefix) and value
    }


def read_ini(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The schema's non-secret values found in a settings INI written by ``AppSettings``
    (QSettings' INI format), parsed by kind; invalid or missing values are left out. For code that
    runs without Qt (the CLI, a remote backend in a worker)."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return {}
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.secret:
            continue
        section, _, name = setting.key.rpartition("/")
        section = section or "General"
        if parser.has_option(section, name):
            raw = _unquote(parser.get(section, name))
            if setting.validate(raw) is None:
                out[setting.key] = setting.parse(raw)
    return out


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return raw


# -- the old project's .env --------------------------------------------------------------------
def env_name_map() -> dict[str, str]:
    """Environment/.env variable name -> setting key, for every row's ``env`` names."""
    return {name: s.key for s in SETTINGS for name in s.env}


@dataclass(frozen=True)
class DotenvImport:
    """What a ``.env`` file holds for the schema: ``values`` by setting key (secrets included —
    never print it), ``sources`` key -> the variable it came from, ``invalid`` key -> sentence,
    ``ignored``: variable names the schema does not know."""

    values: Mapping[str, Any] = field(repr=False)
    sources: Mapping[str, str]
    invalid: Mapping[str, str]
    ignored: tuple[str, ...]


def dotenv_import(path: str | os.PathLike[str]) -> DotenvImport:
    """Map the old project's ``.env`` (OPENAI_API_KEY, MODEL_BUCKET, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ARN_ROLE, …) onto setting keys."""
    from dotenv import dotenv_values

    raw = {k: v for k, v in dotenv_values(path).items() if v}
    return dotenv_import_values(raw)


def dotenv_import_values(raw: Mapping[str, str]) -> DotenvImport:
    names = env_name_map()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    invalid: dict[str, str] = {}
    ignored: list[str] = []
    for name, value in raw.items():
        key = names.get(name)
        if key is None:
            ignored.append(name)
            continue
        if key in values:  # AWS_REGION after AWS_DEFAULT_REGION: the first listed in the row wins
            order = BY_KEY[key].env
            if order.index(sources[key]) < order.index(name):
                continue
        problem = BY_KEY[key].validate(value)
        if problem:
            invalid[key] = problem
            continue
        values[key] = BY_KEY[key].parse(value)
        sources[key] = name
    return DotenvImport(values=values, sources=sources, invalid=invalid, ignored=tuple(ignored))
