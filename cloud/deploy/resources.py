"""Create, reuse, update, roll back and delete the SageMaker resources of one deployment.

Re-running with the same spec reuses the model and endpoint config (their names carry a hash of
their content) and leaves an endpoint already on that config alone; a changed spec creates a new
model/config and switches the endpoint with ``update_endpoint``. A :class:`Ledger` remembers what
this run created so a failure can undo exactly that, in reverse order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cloud.aws.errors import DeployError
from cloud.deploy.spec import TAG_KEY, DeploySpec, derived_name
from cloud.diagnosis import deploy_error, diagnose_exception

Say = Callable[[str], None]
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "UpdateRollbackFailed"}


def _quiet(_: str) -> None:
    pass


def is_not_found(err: BaseException) -> bool:
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return False
    error = response.get("Error", {})
    return (
        error.get("Code") in {"ValidationException", "ResourceNotFound"}
        and "could not find" in str(error.get("Message", "")).lower()
    )


def describe_or_none(call: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any] | None:
    try:
        return call(**kwargs)
    except Exception as err:  # noqa: BLE001
        if is_not_found(err):
            return None
        raise


@dataclass
class Ledger:
    """What this run created or changed, for rollback. ``("endpoint", name)`` etc."""

    created: list[tuple[str, str]] = field(default_factory=list)
    updated_from: tuple[str, str | None] | None = None  # (endpoint, previous config) when updated

    def add(self, kind: str, name: str) -> None:
        self.created.append((kind, name))


@dataclass(frozen=True, kw_only=True)
class Applied:
    model_name: str
    model_created: bool
    endpoint_config_name: str
    config_created: bool
    endpoint_name: str
    endpoint_action: str  # "created" | "updated" | "reused" | "recreated"
    previous_config: str | None = None


def _tags(spec: DeploySpec) -> list[dict[str, str]]:
    return [{"Key": TAG_KEY, "Value": spec.name}]


def ensure_model(sm: Any, spec: DeploySpec, ledger: Ledger) -> bool:
    if describe_or_none(sm.describe_model, ModelName=spec.model_name) is not None:
        return False
    try:
        sm.create_model(
            ModelName=spec.model_name,
            PrimaryContainer=spec.container(),
            ExecutionRoleArn=spec.role_arn,
            Tags=_tags(spec),
        )
    except Exception as err:  # noqa: BLE001
        raise deploy_error(f"Creating the model {spec.model_name}", err) from None
    ledger.add("model", spec.model_name)
    return True


def ensure_endpoint_config(sm: Any, spec: DeploySpec, ledger: Ledger) -> bool:
    if describe_or_none(sm.describe_endpoint_config, EndpointConfigName=spec.endpoint_config_name) is not None:
        return False
    kwargs: dict[str, Any] = {
        "EndpointConfigName": spec.endpoint_config_name,
        "ProductionVariants": [spec.production_variant()],
        "Tags": _tags(spec),
    }
    if spec.async_config() is not None:
        kwargs["AsyncInferenceConfig"] = spec.async_config()
    try:
        sm.create_endpoint_config(**kwargs)
    except Exception as err:  # noqa: BLE001
        raise deploy_error(f"Creating the endpoint config {spec.endpoint_config_name}", err) from None
    ledger.add("endpoint-config", spec.endpoint_config_name)
    return True


def wait_until_gone(
    sm: Any, endpoint_name: str, *, poll: float = 10.0, timeout: float = 1800.0, say: Say = _quiet
) -> None:
    deadline = time.monotonic() + timeout
    while describe_or_none(sm.describe_endpoint, EndpointName=endpoint_name) is not None:
        if time.monotonic() > deadline:
            raise DeployError(
                f"Endpoint {endpoint_name} is still being deleted after {timeout:.0f} s.",
                fix="Check the SageMaker console and run the command again.",
                code="endpoint-busy",
            )
        say(f"waiting for {endpoint_name} to be deleted")
        time.sleep(poll)


def ensure_endpoint(
    sm: Any, spec: DeploySpec, ledger: Ledger, *, say: Say = _quiet, poll: float = 10.0
) -> tuple[str, str | None]:
    """Create, update, reuse or recreate the endpoint. Returns ``(action, previous config)``."""
    name, config = spec.endpoint_name, spec.endpoint_config_name
    try:
        current = describe_or_none(sm.describe_endpoint, EndpointName=name)
        action, previous = "created", None
        if current is not None:
            status, on_config = current.get("EndpointStatus"), current.get("EndpointConfigName")
            if on_config == config and status != "Failed":
                return "reused", None  # InService, or still Creating/Updating towards this spec
            if status in BUSY:
                raise DeployError(
                    f"Endpoint {name} is {status} (towards config {on_config}), so it cannot be changed now.",
                    fix="Wait until `langsam-studio deploy status` shows InService or Failed, then retry.",
                    code="endpoint-busy",
                )
            if status == "Failed":
                say(
                    f"endpoint {name} is Failed ({current.get('FailureReason', 'no reason given')}); "
                    "deleting it to create it again"
                )
                sm.delete_endpoint(EndpointName=name)
                wait_until_gone(sm, name, poll=poll, say=say)
                action = "recreated"
            else:
                sm.update_endpoint(EndpointName=name, EndpointConfigName=config)
                ledger.updated_from = (name, on_config)
                return "updated", on_config
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config, Tags=_tags(spec))
        ledger.add("endpoint", name)
        return action, previous
    except DeployError:
        raise
    except Exception as err:  # noqa: BLE001
        raise deploy_error(f"Creating or updating the endpoint {name}", err) from None


def apply(sm: Any, spec: DeploySpec, ledger: Ledger, *, say: Say = _quiet, poll: float = 10.0) -> Applied:
    model_created = ensure_model(sm, spec, ledger)
    say(f"model {spec.model_name}: {'created' if model_created else 'exists, reused'}")
    config_created = ensure_endpoint_config(sm, spec, ledger)
    say(f"endpoint config {spec.endpoint_config_name}: {'created' if config_created else 'exists, reused'}")
    action, previous = ensure_endpoint(sm, spec, ledger, say=say, poll=poll)
    say(f"endpoint {spec.endpoint_name}: {action}" + (f" (was on {previous})" if previous else ""))
    return Applied(
        model_name=spec.model_name,
        model_created=model_created,
        endpoint_config_name=spec.endpoint_config_name,
        config_created=config_created,
        endpoint_name=spec.endpoint_name,
        endpoint_action=action,
        previous_config=previous,
    )


def rollback(sm: Any, ledger: Ledger, *, say: Say = _quiet) -> list[str]:
    """Undo what ``ledger`` recorded: endpoint first, then endpoint config, then model."""
    done: list[str] = []
    order = {"endpoint": 0, "endpoint-config": 1, "model": 2}
    if ledger.updated_from is not None:
        endpoint, previous = ledger.updated_from
        try:
            sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=previous)
            done.append(f"endpoint {endpoint} switched back to {previous}")
        except Exception as err:  # noqa: BLE001 - SageMaker may already have rolled back itself
            done.append(f"endpoint {endpoint} not switched back ({diagnose_exception(err).detail})")
    for kind, name in sorted(reversed(ledger.created), key=lambda item: order[item[0]]):
        call = {
            "endpoint": lambda n: sm.delete_endpoint(EndpointName=n),
            "endpoint-config": lambda n: sm.delete_endpoint_config(EndpointConfigName=n),
            "model": lambda n: sm.delete_model(ModelName=n),
        }[kind]
        try:
            call(name)
            done.append(f"deleted {kind} {name}")
        except Exception as err:  # noqa: BLE001
            if not is_not_found(err):
                done.append(f"could not delete {kind} {name}: {diagnose_exception(err).detail}")
    for line in done:
        say(f"rollback: {line}")
    ledger.created.clear()
    ledger.updated_from = None
    return done


def _stem(deployment: str) -> str:
    return derived_name(deployment, "x", None)[:-11]  # the part derived_name keeps of the deployment


def _owned(names: list[str], deployment: str, kind: str) -> list[str]:
    """Names that :func:`derived_name` made for this deployment (not a longer deployment's)."""
    pattern = re.compile(rf"^{re.escape(_stem(deployment))}-{kind}-[0-9a-f]{{8}}$")
    return [n for n in names if pattern.match(n)]


@dataclass(frozen=True, kw_only=True)
class Teardown:
    deleted: tuple[str, ...]
    model_data: tuple[str, ...]  # S3 URIs the models pointed at (deleted if asked)


def teardown(
    sm: Any,
    deployment: str,
    *,
    autoscaling: Any | None = None,
    s3: Any | None = None,
    cloudwatch: Any | None = None,
    delete_model_data: bool = False,
    say: Say = _quiet,
) -> Teardown:
    """Delete the endpoint, then every endpoint config, then every model of this deployment."""
    from cloud.deploy.upload import delete_model_data as delete_object

    deleted: list[str] = []
    data: list[str] = []
    endpoint = describe_or_none(sm.describe_endpoint, EndpointName=deployment)
    try:
        if endpoint is not None:
            if autoscaling is not None:
                remove_autoscaling(autoscaling, endpoint, cloudwatch=cloudwatch)
            sm.delete_endpoint(EndpointName=deployment)
            deleted.append(f"endpoint {deployment}")
            say(f"deleted endpoint {deployment}")
        configs = [
            c["EndpointConfigName"]
            for page in sm.get_paginator("list_endpoint_configs").paginate(NameContains=_stem(deployment))
            for c in page["EndpointConfigs"]
        ]
        for name in _owned(configs, deployment, "c"):
            sm.delete_endpoint_config(EndpointConfigName=name)
            deleted.append(f"endpoint config {name}")
            say(f"deleted endpoint config {name}")
        models = [
            m["ModelName"]
            for page in sm.get_paginator("list_models").paginate(NameContains=_stem(deployment))
            for m in page["Models"]
        ]
        for name in _owned(models, deployment, "m"):
            info = describe_or_none(sm.describe_model, ModelName=name) or {}
            container = info.get("PrimaryContainer") or {}
            url = container.get("ModelDataUrl") or (
                (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
            ).get("S3Uri")
            if url:
                data.append(url)
            sm.delete_model(ModelName=name)
            deleted.append(f"model {name}")
            say(f"deleted model {name}")
        if delete_model_data and s3 is not None:
            for url in sorted(set(data)):
                if delete_object(s3, url):
                    deleted.append(f"model data {url}")
                    say(f"deleted {url}")
    except DeployError:
        raise
    except Exception as err:  # noqa: BLE001
        raise deploy_error(f"Deleting deployment {deployment}", err) from None
    return Teardown(deleted=tuple(deleted), model_data=tuple(sorted(set(data))))


def _resource_id(endpoint_name: str, variant: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant}"


def backlog_alarm_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-has-backlog-without-capacity"


def apply_autoscaling(aas: Any, spec: DeploySpec, *, cloudwatch: Any | None = None) -> None:
    """Register the variant as a scalable target with a target-tracking policy (idempotent).

    An asynchronous endpoint allowed to scale to zero also gets a step policy fired by a
    ``HasBacklogWithoutCapacity`` alarm: target tracking alone never scales out from zero
    instances (there is no per-instance metric without an instance).
    """
    if spec.autoscaling is None:
        return
    a = spec.autoscaling
    if a.min_instances == 0 and not spec.is_async:
        raise DeployError(
            "A real-time endpoint cannot scale to zero instances.",
            fix="Use --autoscale 1:N, or deploy with --async to allow 0:N.",
            code="unknown",
        )
    resource = _resource_id(spec.endpoint_name, spec.variant_name)
    aas.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=a.min_instances,
        MaxCapacity=a.max_instances,
    )
    if spec.is_async:  # scale on the queue: allows scaling to zero
        metric: dict[str, Any] = {
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateBacklogSizePerInstance",
                "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": spec.endpoint_name}],
                "Statistic": "Average",
            }
        }
    else:
        metric = {"PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
    aas.put_scaling_policy(
        PolicyName=f"{spec.endpoint_name}-target-tracking",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": a.target_invocations_per_instance,
            **metric,
            "ScaleInCooldown": a.scale_in_cooldown,
            "ScaleOutCooldown": a.scale_out_cooldown,
        },
    )
    if a.min_instances == 0 and cloudwatch is not None:
        policy = aas.put_scaling_policy(
            PolicyName=f"{spec.endpoint_name}-scale-from-zero",
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "MetricAggregationType": "Average",
                "Cooldown": a.scale_out_cooldown,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
            },
        )
        cloudwatch.put_metric_alarm(
            AlarmName=backlog_alarm_name(spec.endpoint_name),
            Namespace="AWS/SageMaker",
            MetricName="HasBacklogWithoutCapacity",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=2,
            DatapointsToAlarm=2,
            Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="missing",
            Dimensions=[{"Name": "EndpointName", "Value": spec.endpoint_name}],
            AlarmActions=[policy["PolicyARN"]],
        )


def remove_autoscaling(aas: Any, endpoint: dict[str, Any], *, cloudwatch: Any | None = None) -> None:
    """Deregister the variants (their policies go with them) and delete the scale-from-zero alarm."""
    if cloudwatch is not None:
        name = backlog_alarm_name(endpoint["EndpointName"])
        if cloudwatch.describe_alarms(AlarmNames=[name]).get("MetricAlarms"):
            cloudwatch.delete_alarms(AlarmNames=[name])
    for variant in endpoint.get("ProductionVariants", []) or []:
        resource = _resource_id(endpoint["EndpointName"], variant["VariantName"])
        found = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
        if found.get("ScalableTargets"):
            aas.deregister_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=resource,
                ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            )
