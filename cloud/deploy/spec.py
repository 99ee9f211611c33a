"""What one deployment is: its spec, the resource names derived from it, and its environment.

Its timeouts are a :class:`cloud.timeouts.Timeouts`, sized by :func:`cloud.timeouts.size_timeouts`.

Names carry a content hash of what they describe, so a re-run with the same spec finds the same
model and endpoint config (and reuses them), while a changed spec gets new names (and the
endpoint is updated to the new config). The endpoint itself keeps the deployment's name, so
clients never need a new address.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cloud.timeouts import Timeouts

NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
NAME_MAX = 63
ENV_VALUE_MAX_BYTES = 1024
DEFAULT_INSTANCE_TYPE = "ml.g5.xlarge"
DEFAULT_VARIANT = "AllTraffic"
DEFAULT_KEY_PREFIX = "langsam-studio"
TAG_KEY = "langsam-studio:deployment"


def endpoint_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid SageMaker resource name, or None when it is."""
    if not name:
        return "the name is empty"
    if len(name) > NAME_MAX:
        return f"the name has {len(name)} characters; the limit is {NAME_MAX}"
    if not NAME_RE.match(name):
        return "the name may contain only letters, digits and hyphens, and must start and end with a letter or digit"
    return None


def _digest(payload: object, length: int = 8) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def derived_name(deployment: str, kind: str, payload: object) -> str:
    """``<deployment>-<kind>-<hash>``, cut to 63 characters and still a valid name."""
    suffix = f"-{kind}-{_digest(payload)}"
    stem = deployment[: NAME_MAX - len(suffix)].rstrip("-")
    return stem + suffix


@dataclass(frozen=True, kw_only=True)
class Autoscaling:
    """Target tracking on the variant (application-autoscaling)."""

    min_instances: int = 1
    max_instances: int = 2
    target_invocations_per_instance: float = 30.0  # per minute; async: backlog per instance
    scale_in_cooldown: int = 600
    scale_out_cooldown: int = 120


@dataclass(frozen=True, kw_only=True)
class DeploySpec:
    """Everything that defines a deployment. ``model_data_url`` is the uploaded archive's S3 URI."""

    name: str
    image_uri: str
    role_arn: str
    model_data_url: str
    timeouts: Timeouts
    region: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    variant_name: str = DEFAULT_VARIANT
    extra_environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    async_output_s3: str | None = None  # s3://bucket/prefix for asynchronous inference results
    async_max_concurrent: int = 1
    autoscaling: Autoscaling | None = None
    serverless: bool = False  # never deployable for this model; kept so preflight can explain why
    container_kind: str = "dlc"  # "ray" (Ray Serve image), "dlc" (PyTorch 2.6 DLC) or "byoc"
    inference_ami_version: str | None = None  # ProductionVariant InferenceAmiVersion (Ray on GPU)

    @property
    def is_async(self) -> bool:
        return self.async_output_s3 is not None

    @property
    def endpoint_name(self) -> str:
        return self.name

    def environment(self) -> dict[str, str]:
        if self.container_kind == "ray":  # no TorchServe/toolkit settings: the package's env comes in extra_environment
            return {"SAGEMAKER_REGION": self.region, **self.extra_environment}
        env = {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": self.region,
            **self.timeouts.environment(),
        }
        env.update(self.extra_environment)
        return env

    @property
    def model_name(self) -> str:
        return derived_name(
            self.name,
            "m",
            {
                "image": self.image_uri,
                "data": self.model_data_url,
                "env": self.environment(),
                "role": self.role_arn,
            },
        )

    def container(self) -> dict[str, object]:
        """An ``s3://.../`` prefix is an unpacked package (ModelDataSource, uncompressed)."""
        if self.model_data_url.endswith("/"):
            return {
                "Image": self.image_uri,
                "Environment": self.environment(),
                "ModelDataSource": {
                    "S3DataSource": {"S3Uri": self.model_data_url, "S3DataType": "S3Prefix", "CompressionType": "None"}
                },
            }
        return {"Image": self.image_uri, "ModelDataUrl": self.model_data_url, "Environment": self.environment()}

    def production_variant(self) -> dict[str, object]:
        variant: dict[str, object] = {
            "VariantName": self.variant_name,
            "ModelName": self.model_name,
            "InstanceType": self.instance_type,
            "InitialInstanceCount": self.instance_count,
            "ModelDataDownloadTimeoutInSeconds": self.timeouts.download,
            "ContainerStartupHealthCheckTimeoutInSeconds": self.timeouts.health_check,
        }
        if self.inference_ami_version:
            variant["InferenceAmiVersion"] = self.inference_ami_version
        return variant

    def async_config(self) -> dict[str, object] | None:
        if self.async_output_s3 is None:  # not is_async
            return None
        output = self.async_output_s3.rstrip("/")
        return {
            "OutputConfig": {"S3OutputPath": f"{output}/output", "S3FailurePath": f"{output}/failure"},
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": self.async_max_concurrent},
        }

    @property
    def endpoint_config_name(self) -> str:
        return derived_name(self.name, "c", {"variant": self.production_variant(), "async": self.async_config()})


def environment_problems(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(failure code, explanation)`` for each environment entry SageMaker would reject or ignore."""
    problems: list[tuple[str, str]] = []
    for key, value in env.items():
        size = len(str(value).encode("utf-8"))
        if size > ENV_VALUE_MAX_BYTES:
            problems.append(("env-too-large", f"{key} is {size} bytes (limit {ENV_VALUE_MAX_BYTES})"))
    if "SAGEMAKER_MODEL_SERVER_TIMEOUT" in env:
        problems.append(("timeout-env-ignored", "SAGEMAKER_MODEL_SERVER_TIMEOUT is set"))
    return problems


def model_data_key(*, prefix: str, deployment: str, sha256: str) -> str:
    """Content-addressed key: the same archive is uploaded once and reused by later runs."""
    return f"{prefix.strip('/')}/{deployment}/{sha256[:16]}/model.tar.gz"


def is_gpu_instance(instance_type: str) -> bool:
    family = instance_type.removeprefix("ml.").split(".")[0]
    return bool(re.match(r"^(g\d|p\d)", family))  # NVIDIA GPUs; inf/trn are Neuron, not CUDA
