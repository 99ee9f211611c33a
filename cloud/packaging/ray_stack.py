"""What AWS's Ray Serve SageMaker images already contain (data, with its date), and the check of a
package's bundled requirements against it.

Source: aws/deep-learning-containers ``docs/ray`` release notes, Ray Serve DLC v1.0 (2026-04-23)
to v1.4 (2026-08-12), images ``ray:serve-ml-sagemaker-cuda`` / ``ray:serve-ml-sagemaker-cpu``.
Versions the notes give as a range keep the range; packages listed without a version are
``None`` (present; any lower bound we need is assumed to hold and is not re-installed).

The rule for ``code/requirements.txt``: never name a package the image provides (it would
replace the image's build at every start, or fail offline), unless our requirement is
incompatible with the image's version — then packaging fails and says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cloud.packaging.errors import PackagingError
from cloud.packaging.wheels import TargetPython, normalize_name


@dataclass(frozen=True)
class ImageStack:
    name: str
    as_of: str  # the release-notes date this data was read from
    python: str
    # distribution name -> version specifier the image satisfies ("" or None: present, version unpublished)
    provides: Mapping[str, str | None] = field(default_factory=dict)

    def provided(self, name: str) -> bool:
        n = normalize_name(name)
        return n in self.provides or n.startswith(("nvidia-", "cuda-"))

    def version_spec(self, name: str) -> str | None:
        return self.provides.get(normalize_name(name))


RAY_IMAGE_STACK = ImageStack(
    name="AWS Ray Serve DLC (ray:serve-ml-sagemaker-cuda / -cpu), v1.0-v1.4",
    as_of="2026-08-12",
    python="3.13",
    provides=MappingProxyType(
        {
            "ray": ">=2.55,<2.58",
            "torch": "==2.10.*",
            "torchvision": None,
            "torchaudio": None,
            "triton": None,
            "pytorch-triton": None,
            "transformers": "==5.8.*",
            "tokenizers": None,
            "safetensors": None,
            "huggingface-hub": None,
            "numpy": None,
            "pillow": None,
            "opencv-python": None,
            "opencv-python-headless": None,
            "fastapi": None,
            "starlette": None,
            "uvicorn": None,
            "httpx": None,
            "pydantic": None,
            "boto3": None,
            "botocore": None,
            "pyyaml": None,
            "jinja2": None,
            "setuptools": None,
            "pip": None,
        }
    ),
)

# The images run CPython 3.13 on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels and older.
RAY_PY313 = TargetPython(
    python_version="3.13",
    platforms=("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    label=f"Ray Serve SageMaker image (CPython 3.13, manylinux x86_64; stack as of {RAY_IMAGE_STACK.as_of})",
)

# Ray's Serve versions whose experimental consistent-hash router we rely on for session affinity.
CONSISTENT_HASH_ROUTER = "ray.serve.experimental.consistent_hash_router.ConsistentHashRouter"


def _name_and_spec(requirement: str) -> tuple[str, str]:
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    return normalize_name(req.name), str(req.specifier)


def _compatible(our_spec: str, image_spec: str | None) -> bool | None:
    """Whether the image's version satisfies our specifier (None: the image's version is unknown)."""
    if not our_spec or image_spec is None:
        return None if image_spec is None else True
    from packaging.specifiers import SpecifierSet

    ours = SpecifierSet(our_spec)
    # a representative version of the image: the lowest release its specifier names
    m = re.search(r"(\d+(?:\.\d+)*)", image_spec)
    if not m:
        return None
    probe = m.group(1)
    return ours.contains(probe, prereleases=True)


@dataclass(frozen=True)
class StackSplit:
    bundle: tuple[str, ...]  # requirements to bundle as wheels (the image lacks them)
    from_image: tuple[str, ...]  # requirements the image satisfies (not bundled, not named)
    notes: tuple[str, ...]


def split_requirements(requirements: Iterable[str], stack: ImageStack = RAY_IMAGE_STACK) -> StackSplit:
    """Split our serving requirements into what to bundle and what the image already provides.

    Raises :class:`PackagingError` for a requirement the image provides in an incompatible version
    (installing ours would replace the image's build, and offline it could not even install).
    """
    bundle, from_image, notes = [], [], []
    for requirement in requirements:
        name, spec = _name_and_spec(requirement)
        if not stack.provided(name):
            bundle.append(requirement)
            continue
        image_spec = stack.version_spec(name)
        ok = _compatible(spec, image_spec)
        if ok is False:
            raise PackagingError(
                f"{requirement} is incompatible with the image's {name}{image_spec} ({stack.name}, as of "
                f"{stack.as_of}); the package must use the image's {name}, not replace it. Relax the requirement."
            )
        from_image.append(requirement)
        if ok is None and spec:
            notes.append(f"{requirement}: the image provides {name} (version not published); assumed compatible")
    return StackSplit(bundle=tuple(bundle), from_image=tuple(from_image), notes=tuple(notes))


def check_bundled(names: Iterable[str], stack: ImageStack = RAY_IMAGE_STACK) -> list[str]:
    """Problems with bundled wheel/requirement names: each one the image provides is one."""
    return [
        f"{n} is bundled, but the image provides it ({stack.name}, as of {stack.as_of}): installing it would "
        "replace the image's build at every start"
        for n in names
        if stack.provided(n)
    ]
