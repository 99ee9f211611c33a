"""The deploy flow against moto's server (S3 multipart, SageMaker control plane, Logs, autoscaling).

Inference never goes through moto: the smoke request reaches the real inference server (classic
backend) through the real boto3 sagemaker-runtime client.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import pytest

from fixtures_deploy import MOTO_BUCKET
from fixtures_server import classic_factory, run_server

MOTO_GPU = "ml.g4dn.xlarge"  # moto rejects ml.g5.*; g5 handling is tested with the Stubber


@pytest.fixture(scope="module")
def runtime_server():
    with run_server(backend_factory=classic_factory) as handle:
        assert handle.worker.state.value == "ready", handle.worker.reason
        yield handle


def _archive(tmp_path, size: int = 1024, seed: int = 0):
    path = tmp_path / f"model-{seed}.tar.gz"
    path.write_bytes(os.urandom(size) if seed < 0 else bytes([seed % 256]) * size)
    return path


def _clients_with_runtime(moto_clients, url):
    from cloud.aws.env import AwsClients

    settings = dataclasses.replace(moto_clients.settings, service_endpoints={"sagemaker-runtime": url})
    return AwsClients(settings)


def test_multipart_upload_reports_progress_from_worker_threads_and_is_content_addressed(moto_clients, tmp_path):
    from cloud.deploy.upload import MIB, file_sha256, transfer_config, upload_model

    path = tmp_path / "model.tar.gz"
    path.write_bytes(os.urandom(11 * MIB))
    seen: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def sink(done, total):
        with lock:
            seen.append((done, total, threading.get_ident()))

    s3 = moto_clients.client("s3")
    config = transfer_config(part_size=5 * MIB, threshold=5 * MIB, concurrency=3)
    result = upload_model(s3, path, bucket=MOTO_BUCKET, deployment="demo", progress=sink, config=config)
    assert result.uploaded and result.size == 11 * MIB
    assert result.key.startswith("langsam-studio/demo/") and result.key.endswith("/model.tar.gz")
    assert seen[-1][0] == 11 * MIB and all(total == 11 * MIB for _, total, _ in seen)
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert any(tid != threading.get_ident() for _, _, tid in seen)  # the transfer manager's threads
    head = s3.head_object(Bucket=MOTO_BUCKET, Key=result.key)
    assert head["ContentLength"] == 11 * MIB and head["Metadata"]["sha256"] == file_sha256(path)
    assert "-" in head["ETag"]  # a multipart ETag: "<md5>-<parts>"

    again = upload_model(s3, path, bucket=MOTO_BUCKET, deployment="demo", config=config)
    assert not again.uploaded and again.key == result.key


def test_deploy_up_creates_everything_answers_reuses_and_tears_down(moto_clients, runtime_server, tmp_path):
    from cloud.deploy.flow import Reporter, UpOptions, deploy_down, deploy_up, endpoint_status, list_deployments

    clients = _clients_with_runtime(moto_clients, runtime_server.url)
    lines: list[str] = []
    options = UpOptions(
        name="langsam-e2e",
        archive=_archive(tmp_path),
        instance_type=MOTO_GPU,
        load_seconds=100,
        verify_package=False,
        poll_s=0.05,
    )
    result = deploy_up(clients, options, reporter=Reporter(say=lines.append))
    assert result.applied.endpoint_action == "created" and result.upload.uploaded
    assert result.smoke is not None and result.smoke.latency_s > 0 and "backend classic" in result.smoke.answer
    sm = clients.client("sagemaker")
    model = sm.describe_model(ModelName=result.spec.model_name)
    env = model["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_PROGRAM"] == "inference.py"
    assert int(env["TS_DEFAULT_STARTUP_TIMEOUT"]) > 100 and int(env["SAGEMAKER_TS_RESPONSE_TIMEOUT"]) > 100
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" not in env
    assert model["PrimaryContainer"]["Image"].startswith(
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:"
    )
    config = sm.describe_endpoint_config(EndpointConfigName=result.spec.endpoint_config_name)
    variant = config["ProductionVariants"][0]
    assert variant["InstanceType"] == MOTO_GPU
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] >= 600
    assert any("billing" in line or "bills" in line for line in lines)

    again = deploy_up(clients, options, reporter=Reporter())
    assert again.applied.endpoint_action == "reused"
    assert not again.applied.model_created and not again.applied.config_created and not again.upload.uploaded

    assert [s.name for s in list_deployments(sm)] == ["langsam-e2e"]
    assert endpoint_status(sm, "langsam-e2e").status == "InService"
    down = deploy_down(clients, "langsam-e2e", delete_model_data=True)
    assert down.deleted[0] == "endpoint langsam-e2e"
    assert [d.split()[0] for d in down.deleted] == ["endpoint", "endpoint", "model", "model"]
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert clients.client("s3").list_objects_v2(Bucket=MOTO_BUCKET).get("KeyCount", 0) == 0
    assert endpoint_status(sm, "langsam-e2e") is None


@pytest.mark.parametrize("keep", [False, True])
def test_a_failed_smoke_test_rolls_back_what_this_run_created(moto_clients, tmp_path, keep):
    from cloud.aws.errors import DeployError
    from cloud.deploy.flow import UpOptions, deploy_up
    from inference.server.config import ServerConfig

    token_config = ServerConfig(token="x" * 32)  # the runtime answers 403: not retryable
    with run_server(backend_factory=classic_factory, config=token_config) as server:
        clients = _clients_with_runtime(moto_clients, server.url)
        options = UpOptions(
            name="langsam-rollback",
            archive=_archive(tmp_path, seed=3),
            instance_type=MOTO_GPU,
            verify_package=False,
            poll_s=0.05,
            keep_on_failure=keep,
        )
        with pytest.raises(DeployError) as info:
            deploy_up(clients, options)
    assert info.value.code == "access-denied"
    sm = clients.client("sagemaker")
    counts = (
        len(sm.list_endpoints()["Endpoints"]),
        len(sm.list_endpoint_configs()["EndpointConfigs"]),
        len(sm.list_models()["Models"]),
    )
    assert counts == ((1, 1, 1) if keep else (0, 0, 0))


def test_preflight_failures_create_nothing(moto_clients, tmp_path):
    from cloud.aws.env import AwsClients
    from cloud.aws.errors import DeployError
    from cloud.deploy.flow import Reporter, UpOptions, deploy_up

    bad = dataclasses.replace(moto_clients.settings, bucket="no-such-bucket-here")
    checks = []
    with pytest.raises(DeployError) as info:
        deploy_up(
            AwsClients(bad),
            UpOptions(name="x1", archive=_archive(tmp_path), instance_type=MOTO_GPU),
            reporter=Reporter(check=checks.append),
        )
    assert "nothing was created" in str(info.value)
    failed = {c.name: c.code for c in checks if c.level.value == "fail"}
    assert failed == {"package": "bad-archive", "bucket": "bucket-missing"}  # random bytes are no package
    assert moto_clients.client("sagemaker").list_models()["Models"] == []
    assert moto_clients.client("s3").list_objects_v2(Bucket=MOTO_BUCKET).get("KeyCount", 0) == 0


def test_a_package_directory_is_uploaded_as_an_s3_prefix(moto_clients, tmp_path):
    from cloud.deploy.flow import UpOptions, deploy_down, deploy_up

    root = tmp_path / "pkg"
    (root / "code").mkdir(parents=True)
    (root / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    (root / "weights.bin").write_bytes(b"w" * 4096)
    options = UpOptions(
        name="langsam-dir", archive=root, instance_type=MOTO_GPU, verify_package=False, smoke=False, poll_s=0.05
    )
    result = deploy_up(moto_clients, options)
    assert result.upload.uploaded and result.upload.key.endswith("/model/")
    container = result.spec.container()
    assert container["ModelDataSource"]["S3DataSource"] == {
        "S3Uri": f"s3://{MOTO_BUCKET}/{result.upload.key}",
        "S3DataType": "S3Prefix",
        "CompressionType": "None",
    }
    s3 = moto_clients.client("s3")
    keys = sorted(o["Key"].rsplit("/model/", 1)[1] for o in s3.list_objects_v2(Bucket=MOTO_BUCKET)["Contents"])
    assert keys == [".complete", "code/inference.py", "weights.bin"]
    assert not deploy_up(moto_clients, options).upload.uploaded  # same content: skipped
    deploy_down(moto_clients, "langsam-dir", delete_model_data=True)
    assert s3.list_objects_v2(Bucket=MOTO_BUCKET).get("KeyCount", 0) == 0


def test_async_deploy_with_autoscaling_registers_and_teardown_deregisters(moto_clients, tmp_path):
    from cloud.deploy.flow import UpOptions, deploy_down, deploy_up
    from cloud.deploy.spec import Autoscaling

    options = UpOptions(
        name="langsam-async",
        archive=_archive(tmp_path, seed=5),
        instance_type=MOTO_GPU,
        verify_package=False,
        use_async=True,
        autoscaling=Autoscaling(min_instances=0, max_instances=2),
        smoke=False,
        poll_s=0.05,
    )
    result = deploy_up(moto_clients, options)
    sm = moto_clients.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=result.spec.endpoint_config_name)
    assert (
        config["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"]
        == f"s3://{MOTO_BUCKET}/langsam-studio/langsam-async/async/output"
    )
    aas = moto_clients.client("application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        ("endpoint/langsam-async/variant/AllTraffic", 0, 2)
    ]
    policies = {
        p["PolicyType"]: p for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    }
    assert (
        policies["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"][
            "MetricName"
        ]
        == "ApproximateBacklogSizePerInstance"
    )
    cloudwatch = moto_clients.client("cloudwatch")
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    assert [(a["MetricName"], a["AlarmActions"]) for a in alarms] == [
        ("HasBacklogWithoutCapacity", [policies["StepScaling"]["PolicyARN"]])
    ]  # scales out from zero
    deploy_down(moto_clients, "langsam-async")
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []


def test_log_tail_reads_new_lines_once_and_reports_a_missing_group(moto_clients):
    from cloud.aws.logs import LogTail, TailState, log_group, recent_lines

    logs = moto_clients.client("logs")
    tail = LogTail(logs, "ep-logs")
    first = tail.poll()
    assert first.state is TailState.NO_GROUP and "no log group yet" in first.note
    logs.create_log_group(logGroupName=log_group("ep-logs"))
    logs.create_log_stream(logGroupName=log_group("ep-logs"), logStreamName="AllTraffic/i-0abc")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=log_group("ep-logs"),
        logStreamName="AllTraffic/i-0abc",
        logEvents=[
            {"timestamp": now, "message": "Loading model"},
            {"timestamp": now + 1, "message": "ModuleNotFoundError: No module named 'sam2'"},
        ],
    )
    batch = tail.poll()
    assert batch.state is TailState.OK and [line.message for line in batch.lines] == [
        "Loading model",
        "ModuleNotFoundError: No module named 'sam2'",
    ]
    assert batch.lines[0].stream == "AllTraffic/i-0abc"
    assert tail.poll().lines == ()  # nothing new
    assert len(recent_lines(logs, "ep-logs").lines) == 2


def test_cli_status_logs_and_down_against_moto(moto_clients, moto_url, capsys, tmp_path):
    from cloud.deploy.flow import UpOptions, deploy_up
    from desktop_app.cli.main import main

    deploy_up(
        moto_clients,
        UpOptions(
            name="langsam-cli",
            archive=_archive(tmp_path, seed=7),
            instance_type=MOTO_GPU,
            verify_package=False,
            smoke=False,
            poll_s=0.05,
        ),
    )
    common = ["--endpoint-url", moto_url, "--region", "us-east-1"]
    assert main(["deploy", "status", *common]) == 0
    out = capsys.readouterr().out
    assert "langsam-cli: InService, 1 x ml.g4dn.xlarge" in out and "bills" in out
    assert main(["deploy", "logs", "langsam-cli", *common]) == 0
    assert "no log group yet" in capsys.readouterr().out
    assert main(["deploy", "down", "langsam-cli", *common]) == 0
    out = capsys.readouterr().out
    assert "deleted endpoint langsam-cli" in out and "kept the model data" in out
    assert main(["deploy", "status", "langsam-cli", *common]) == 1


def test_an_archive_already_in_s3_is_used_as_is(moto_clients):
    from cloud.aws.errors import DeployError
    from cloud.deploy.flow import UpOptions, deploy_up

    s3 = moto_clients.client("s3")
    s3.put_object(Bucket=MOTO_BUCKET, Key="manual/model.tar.gz", Body=b"archive")
    url = f"s3://{MOTO_BUCKET}/manual/model.tar.gz"
    result = deploy_up(
        moto_clients, UpOptions(name="langsam-s3", model_data_url=url, instance_type=MOTO_GPU, smoke=False, poll_s=0.05)
    )
    assert result.upload is None
    model = moto_clients.client("sagemaker").describe_model(ModelName=result.spec.model_name)
    assert model["PrimaryContainer"]["ModelDataUrl"] == url
    with pytest.raises(DeployError, match="not an S3 URI"):
        deploy_up(moto_clients, UpOptions(name="langsam-s3", model_data_url="model.tar.gz", smoke=False))


def test_real_time_endpoints_cannot_scale_to_zero(moto_clients, tmp_path):
    from cloud.aws.errors import DeployError
    from cloud.deploy.flow import UpOptions, deploy_up
    from cloud.deploy.spec import Autoscaling

    with pytest.raises(DeployError, match="cannot scale to zero"):
        deploy_up(
            moto_clients,
            UpOptions(
                name="rt",
                archive=_archive(tmp_path),
                instance_type=MOTO_GPU,
                autoscaling=Autoscaling(min_instances=0, max_instances=1),
            ),
        )
    assert moto_clients.client("s3").list_objects_v2(Bucket=MOTO_BUCKET).get("KeyCount", 0) == 0
