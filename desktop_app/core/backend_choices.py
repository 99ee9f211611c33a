"""The backends a person can choose, in one registry: settings, the Backend menu and every CLI
``--backend`` read it.

``inference.backends.registry`` maps a backend NAME to the class that runs it (the inference
layer's business); this module says what a person is offered: the title in the menu, what kind
of thing it is (a model in this process, our own server, a SageMaker endpoint), whether a device
applies, what it can answer (text, points, boxes) and what it needs (model weights, settings).
The two must agree on the names (``tests/test_backend_choices.py`` checks it). A new backend is
one :class:`BackendChoice` entry here plus one module under ``inference/backends/``.

``auto`` is not a backend but a policy (:func:`resolve_backend_name`): the first entry, in the
order below, whose weights are installed and that can answer what is asked; so a fresh install
without weights still answers points and boxes with the classic backend. Entries with
``in_auto=False`` (SAM 3: its own licence, tens of seconds per image on a CPU) are only ever
chosen by name.

Qt-free and torch-free: the weights are checked by looking at files, lazily.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum, Flag, auto
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inference.weights import WeightsStore

AUTO = "auto"


class BackendKind(str, Enum):
    """Where a backend runs."""

    LOCAL = "local"  # a model in this process (inference.backends)
    SERVER = "server"  # our own HTTP server (`langsam-studio serve`)
    SAGEMAKER = "sagemaker"  # a SageMaker endpoint


class Capability(Flag):
    """What kinds of prompt a backend answers."""

    NONE = 0
    TEXT = auto()
    POINTS = auto()
    BOXES = auto()
    EXEMPLARS = auto()  # concept example boxes (SAM 3): the exemplar tool is offered only then


GEOMETRY = Capability.POINTS | Capability.BOXES
ALL = Capability.TEXT | GEOMETRY


@dataclass(frozen=True, kw_only=True)
class BackendChoice:
    """One entry of the Backend menu / ``--backend``."""

    name: str  # the settings value and, except for ``auto``, the inference registry's name
    title: str  # as shown in the menu
    kind: BackendKind
    uses_device: bool  # the Device menu applies to it
    capabilities: Capability  # for AUTO: what the best choice can offer
    weights: tuple[str, ...] = ()  # model families it needs installed ("sam2", "gdino")
    settings: tuple[str, ...] = ()  # setting keys it needs (a server URL, an endpoint name): none yet
    summary: str = ""  # a few words for --help
    in_auto: bool = True  # ``auto`` may pick it (False: only by name, e.g. SAM 3 with its own licence)

    @property
    def automatic(self) -> bool:
        return self.name == AUTO

    def can(self, needs: Capability) -> bool:
        return needs in self.capabilities


# in order of preference: ``auto`` picks the first usable one
CHOICES: Mapping[str, BackendChoice] = {
    c.name: c
    for c in (
        BackendChoice(
            name=AUTO,
            title="Automatic (best installed)",
            kind=BackendKind.LOCAL,
            uses_device=True,
            capabilities=ALL,
            summary="the best installed one that can answer the prompt",
        ),
        BackendChoice(
            name="langsam",
            title="Lang-SAM: text + points + boxes",
            kind=BackendKind.LOCAL,
            uses_device=True,
            capabilities=ALL,
            weights=("sam2", "gdino"),
            summary="Grounding DINO + SAM 2: text, points, boxes",
        ),
        BackendChoice(
            name="sam2",
            title="SAM 2: points + boxes",
            kind=BackendKind.LOCAL,
            uses_device=True,
            capabilities=GEOMETRY,
            weights=("sam2",),
            summary="SAM 2: points, boxes",
        ),
        BackendChoice(
            name="classic",
            title="Classic (OpenCV, no weights)",
            kind=BackendKind.LOCAL,
            uses_device=False,
            capabilities=GEOMETRY,
            summary="OpenCV, no weights: points, boxes",
        ),
        # never picked by auto: the SAM License (not Apache-2.0) and ~10x Lang-SAM's CPU time per image
        BackendChoice(
            name="sam3",
            title="SAM 3: text + examples + points + boxes",
            kind=BackendKind.LOCAL,
            uses_device=True,
            capabilities=ALL | Capability.EXEMPLARS,
            weights=("sam3",),
            in_auto=False,
            summary="SAM 3 (SAM License, gated; slow on CPU): every instance of a phrase or of "
            "example boxes (--exemplar), points, boxes",
        ),
        # remote (issue 9 part 3): what they answer is what the server runs (its /info); ALL at best
        BackendChoice(
            name="server",
            title="Own server (langsam-studio serve)",
            kind=BackendKind.SERVER,
            uses_device=False,
            capabilities=ALL,
            settings=("remote/server_url", "remote/server_token"),
            summary="our own inference server at --server URL (runs what it serves)",
        ),
        BackendChoice(
            name="sagemaker",
            title="SageMaker endpoint",
            kind=BackendKind.SAGEMAKER,
            uses_device=False,
            capabilities=ALL,
            settings=("remote/endpoint_name", "remote/endpoint_region", "aws/profile"),
            summary="a deployed SageMaker endpoint --endpoint NAME (runs what it serves)",
        ),
    )
}

# the inference registry learns where the remote backend that lives in cloud/ is (never imported here)
_REMOTE_PROVIDERS: Mapping[str, str] = {"sagemaker": "cloud.endpoint.sagemaker_backend"}


def register_remote_providers() -> None:
    """Tell ``inference.backends.registry`` which module provides each remote backend outside
    ``inference/`` (the inference layer must not import ``cloud``). Idempotent; runs at import."""
    from inference.backends.registry import add_provider

    for name, module in _REMOTE_PROVIDERS.items():
        add_provider(name, module)


register_remote_providers()

# model family -> the create_backend options that name its installed copy
_WEIGHT_OPTIONS: Mapping[str, tuple[str, str]] = {
    "sam2": ("model", "checkpoint"),
    "gdino": ("gdino_model", "gdino_path"),
    "sam3": ("model", "checkpoint"),
}


def choice_names(*, kinds: Collection[BackendKind] | None = None, include_auto: bool = True) -> tuple[str, ...]:
    """Names in menu order; ``kinds`` keeps only those kinds (None: every kind)."""
    return tuple(
        c.name for c in CHOICES.values() if (include_auto or not c.automatic) and (kinds is None or c.kind in kinds)
    )


def backend_names() -> tuple[str, ...]:
    """Every real backend (what ``create_backend`` must know): all choices but ``auto``."""
    return choice_names(include_auto=False)


def local_backend_names() -> tuple[str, ...]:
    """Backends that run in this process: what ``serve`` and a deploy package can run."""
    return choice_names(kinds=(BackendKind.LOCAL,), include_auto=False)


def cli_help(names: Collection[str], *, default: str = "") -> str:
    """``--backend`` help: every name with its summary, then what the default is."""
    listed = "; ".join(f"{n} ({CHOICES[n].summary})" for n in names)
    return f"{listed}" + (f" (default: {default})" if default else "")


def is_device_choice(value: str) -> bool:
    """A device setting is one of ``inference.device.DEVICE_CHOICES`` or ``cuda:N``."""
    from inference.device import DEVICE_CHOICES

    return value in DEVICE_CHOICES or (value.startswith("cuda:") and value[5:].isdigit())


# -- the settings -> backend policy -----------------------------------------------------------
def _installed(family: str, store: WeightsStore) -> str | None:
    """The installed model of this family; an unreadable models folder counts as none installed."""
    from inference.weights import installed_model

    try:
        return installed_model(family, store=store)
    except (OSError, ValueError):
        return None


def resolve_backend_name(name: str, *, store: WeightsStore | None = None, needs: Capability = Capability.NONE) -> str:
    """``name`` itself, or for ``auto``: the first choice (in registry order) that can answer
    ``needs`` and whose weights are all installed; if none is installed, the first that can answer
    ``needs`` (so its start-up says which weights are missing)."""
    if name != AUTO:
        return name
    from inference.weights import WeightsStore

    store = store or WeightsStore()
    able = [
        c for c in CHOICES.values() if not c.automatic and c.in_auto and c.kind is BackendKind.LOCAL and c.can(needs)
    ]
    for choice in able:
        if all(_installed(family, store) is not None for family in choice.weights):
            return choice.name
    if not able:
        raise ValueError(f"no backend can answer {needs}")
    return able[0].name


@dataclass(frozen=True, kw_only=True)
class BackendRequest:
    """What to ask ``create_backend`` / the GUI worker for."""

    name: str
    options: Mapping[str, Any]  # keyword arguments for create_backend / InferenceWorker.set_backend


def remote_options(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``create_backend`` options of a remote choice from setting values by key (the schema's
    ``remote/…`` and ``aws/…`` keys; secrets included, never logged). Empty for a local choice."""

    def get(key: str) -> Any:
        value = values.get(key)
        return value if value not in (None, "") else None

    if name == "server":
        return {
            k: v
            for k, v in {"url": get("remote/server_url"), "token": get("remote/server_token")}.items()
            if v is not None
        }
    if name == "sagemaker":
        pairs = {
            "endpoint": get("remote/endpoint_name"),
            "region": get("remote/endpoint_region") or get("aws/region"),
            "profile": get("aws/profile"),
            "access_key_id": get("aws/access_key_id"),
            "secret_access_key": get("aws/secret_access_key"),
            "session_token": get("aws/session_token"),
            "endpoint_url": get("aws/endpoint_url"),
            "async_s3": get("remote/async_output_s3"),
            "async_endpoint": get("remote/async_endpoint"),
        }
        return {k: v for k, v in pairs.items() if v is not None}
    return {}


def missing_settings(name: str, values: Mapping[str, Any]) -> tuple[str, ...]:
    """The required setting keys of choice ``name`` that have no value (the URL, the endpoint)."""
    required = {"server": ("remote/server_url",), "sagemaker": ("remote/endpoint_name",)}.get(name, ())
    return tuple(key for key in required if not values.get(key))


def backend_request(
    *,
    backend: str,
    device: str,
    cache_dir: str = "",
    needs: Capability = Capability.NONE,
    remote: Mapping[str, Any] | None = None,
) -> BackendRequest:
    """The backend these settings mean, with the installed weights it needs as options.

    ``auto`` is resolved (:func:`resolve_backend_name`); for each model family the choice needs,
    the installed model's id and file are passed, so the backend never searches again. A remote
    choice gets its URL/token or endpoint/region/profile from ``remote`` (setting values by key).
    """
    from inference.weights import WeightsStore

    store = WeightsStore(cache_dir=cache_dir or None)
    name = resolve_backend_name(backend, store=store, needs=needs)
    choice = CHOICES.get(name)
    options: dict[str, Any] = {"device": device}
    if choice is not None and choice.kind is not BackendKind.LOCAL:  # issue 9 part 3: URL/token, endpoint…
        options.update(remote_options(name, remote or {}))
    for family in () if choice is None else choice.weights:
        model_id = _installed(family, store)
        if model_id is not None:
            id_key, path_key = _WEIGHT_OPTIONS[family]
            options[id_key] = model_id
            options[path_key] = str(store.local_path(model_id))
    return BackendRequest(name=name, options=options)
