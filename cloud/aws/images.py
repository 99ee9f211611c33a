"""The AWS PyTorch inference Deep Learning Container image URI for a region.

The ECR account that hosts ``pytorch-inference`` is 763104351884 in most regions; the newer
opt-in regions, China and GovCloud use their own accounts. The map below was read from
aws/sagemaker-python-sdk ``image_uri_config/pytorch.json`` (inference, versions 2.4.0-2.6.0, which
agree) — data, not code. A region missing here has no DLC; pass a BYOC image instead.
"""

from __future__ import annotations

import re

DEFAULT_DLC_TAG = "2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"
DLC_REPOSITORY = "pytorch-inference"
DEFAULT_DLC_ACCOUNT = "763104351884"

DLC_ACCOUNT_EXCEPTIONS: dict[str, str] = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}
DLC_DEFAULT_ACCOUNT_REGIONS = frozenset(
    {
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-north-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    }
)

_ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+)(:(?P<tag>[\w.-]+)|@sha256:[0-9a-f]{64})$"
)


def dlc_account(region: str) -> str | None:
    """The ECR account of the PyTorch inference DLC in ``region``, or None if it has none."""
    if region in DLC_ACCOUNT_EXCEPTIONS:
        return DLC_ACCOUNT_EXCEPTIONS[region]
    if region in DLC_DEFAULT_ACCOUNT_REGIONS:
        return DEFAULT_DLC_ACCOUNT
    return None


def dlc_image_uri(region: str, *, tag: str = DEFAULT_DLC_TAG) -> str | None:
    """``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/pytorch-inference:<tag>``, or None."""
    account = dlc_account(region)
    if account is None:
        return None
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{DLC_REPOSITORY}:{tag}"


def image_region(image_uri: str) -> str | None:
    """The region of an ECR image URI, or None for a URI that is not ECR."""
    match = _ECR_URI.match(image_uri)
    return match.group("region") if match else None


def is_ecr_uri(image_uri: str) -> bool:
    return _ECR_URI.match(image_uri) is not None


def is_dlc(image_uri: str) -> bool:
    """True for an AWS PyTorch inference DLC (TorchServe + toolkit serving stack)."""
    match = _ECR_URI.match(image_uri)
    return (
        match is not None
        and match.group("repo") == DLC_REPOSITORY
        and (match.group("account") in set(DLC_ACCOUNT_EXCEPTIONS.values()) | {DEFAULT_DLC_ACCOUNT})
    )


# -- AWS's Ray Serve SageMaker images (the maintained serving stack; see docs/deploy.md) ------------
RAY_REPOSITORY = "ray"
RAY_SAGEMAKER_TAGS = {"gpu": "serve-ml-sagemaker-cuda", "cpu": "serve-ml-sagemaker-cpu"}
RAY_PUBLIC_REGISTRY = "public.ecr.aws/deep-learning-containers"
RAY_GPU_AMI_VERSION = "al2-ami-sagemaker-inference-gpu-3-1"  # the default host AMI's driver is too old


def ray_image_uri(region: str | None, *, gpu: bool) -> str:
    """The Ray Serve SageMaker image for ``region`` from the region's DLC registry; where the region
    has none, ECR Public (SageMaker pulls only from private ECR: copy it into your account's ECR)."""
    tag = RAY_SAGEMAKER_TAGS["gpu" if gpu else "cpu"]
    account = dlc_account(region) if region else None
    if account is None:
        return f"{RAY_PUBLIC_REGISTRY}/{RAY_REPOSITORY}:{tag}"
    domain = "amazonaws.com.cn" if str(region).startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{RAY_REPOSITORY}:{tag}"


def is_ray_image(image_uri: str) -> bool:
    """True for an AWS Ray Serve SageMaker image (private DLC registry or ECR Public)."""
    repo_tag = image_uri.rsplit("/", 1)[-1]
    return repo_tag.split(":")[0] == RAY_REPOSITORY and "serve-ml-sagemaker" in repo_tag
