"""The Ray Serve target: image stack data, config.yaml, the package, the deployment class, deploy spec."""

from __future__ import annotations

import json

import pytest
import yaml

from cloud.packaging.errors import PackagingError


def test_config_yaml_replicas_router_and_resources():
    from cloud.packaging.ray import RayServeOptions, config_yaml, container_environment

    config = yaml.safe_load(config_yaml(RayServeOptions(num_replicas=2, num_gpus=0.5)))
    app = config["applications"][0]
    assert app["import_path"] == "deployment:app" and app["route_prefix"] == "/"
    dep = app["deployments"][0]
    assert dep["name"] == "LangSAM" and dep["num_replicas"] == 2
    assert dep["ray_actor_options"]["num_gpus"] == 0.5
    assert dep["request_router_config"]["request_router_class"].endswith("consistent_hash_router.ConsistentHashRouter")
    assert container_environment()["RAY_SERVE_SESSION_ID_HEADER_KEY"] == "X-Amzn-SageMaker-Session-Id"
    auto = yaml.safe_load(config_yaml(RayServeOptions(min_replicas=1, max_replicas=4, session_affinity=False)))
    dep = auto["applications"][0]["deployments"][0]
    assert dep["autoscaling_config"]["max_replicas"] == 4 and "num_replicas" not in dep
    assert "request_router_config" not in dep
    assert "RAY_SERVE_SESSION_ID_HEADER_KEY" not in container_environment(RayServeOptions(session_affinity=False))


@pytest.mark.parametrize(
    "options", [dict(num_replicas=0), dict(min_replicas=3, max_replicas=2), dict(min_replicas=1), dict(num_gpus=1.5)]
)
def test_bad_ray_options(options):
    from cloud.packaging.ray import RayServeOptions

    with pytest.raises(PackagingError):
        RayServeOptions(**options).check()


def test_requirements_checked_against_the_image_stack():
    from cloud.packaging.ray_stack import RAY_IMAGE_STACK, check_bundled, split_requirements

    assert RAY_IMAGE_STACK.as_of == "2026-08-12" and RAY_IMAGE_STACK.python == "3.13"
    split = split_requirements(["numpy>=1.26", "pycocotools>=2.0.8", "torch>=2.5", "transformers>=5.0"])
    assert split.bundle == ("pycocotools>=2.0.8",)
    assert set(split.from_image) == {"numpy>=1.26", "torch>=2.5", "transformers>=5.0"}
    with pytest.raises(PackagingError, match="incompatible with the image's transformers"):
        split_requirements(["transformers==5.25.0"])
    with pytest.raises(PackagingError, match="torch"):
        split_requirements(["torch==2.13.0"])
    assert check_bundled(["numpy", "platformdirs"]) and not check_bundled(["platformdirs"])


def test_langsam_requirements_use_the_images_transformers():
    pytest.importorskip("sam2")
    from cloud.packaging.ray import ray_serving_requirements

    reqs = ray_serving_requirements("langsam")
    assert "transformers>=5.0" in reqs and not any(r.startswith("transformers==") for r in reqs)


def test_classic_ray_package_layout(build_test_package, package_cache_dir, tmp_path):
    from cloud.packaging.errors import PackageIndexUnreachable
    from cloud.packaging.ray import (
        build_ray_package,
        is_ray_package,
        package_environment,
        requirement_names,
        verify_ray_dir,
    )

    try:
        result = build_ray_package(
            output=tmp_path / "pkg", backend="classic", cache_dir=package_cache_dir, log=lambda _m: None
        )
    except PackageIndexUnreachable as exc:
        from fixtures_package import _skip_or_fail

        _skip_or_fail(str(exc))
    root = result.path
    assert (root / "config.yaml").is_file() and (root / "deployment.py").is_file()
    assert not (root / "code" / "inference.py").exists()
    assert "from inference.ray_serve import" in (root / "deployment.py").read_text()
    text = (root / "code" / "requirements.txt").read_text()
    names = requirement_names(text)
    assert "langsam-studio" in names and not {"numpy", "torch", "pillow", "opencv-python-headless"} & set(names)
    assert "--no-index" in text and "--find-links ./wheels" in text
    assert all("cp3" in w or "none-any" in w or "abi3" in w for w in result.wheels)
    assert verify_ray_dir(root).ok and is_ray_package(root)
    assert package_environment(root)["RAY_SERVE_SESSION_ID_HEADER_KEY"] == "X-Amzn-SageMaker-Session-Id"
    manifest = json.loads((root / "langsam-manifest.json").read_text())
    assert manifest["container"] == "ray" and manifest["image_stack"]["as_of"] == "2026-08-12"
    (root / "code" / "wheels" / "numpy-2.0.0-cp313-cp313-manylinux2014_x86_64.whl").write_bytes(b"x")
    assert not verify_ray_dir(root).ok


# -- the deployment class (no Ray needed) ------------------------------------------------------------
@pytest.fixture(scope="module")
def deployment():
    from inference.ray_serve import LangSAMDeployment

    return LangSAMDeployment(backend="classic")


def _request(**kw):
    from desktop_app.cli.deploy_package_command import default_request

    return default_request(backend="classic", **kw)


def test_deployment_warms_up_and_answers(deployment):
    assert deployment.warm_up_seconds is not None
    body, ct = _request()
    status, data, headers = deployment.invoke(body, {"Content-Type": ct, "X-Amzn-SageMaker-Inference-Id": "r1"})
    assert status == 200 and b'"image_id"' in data
    assert "replica=" in headers["X-Amzn-SageMaker-Custom-Attributes"]


def test_deployment_errors_are_json(deployment):
    status, data, headers = deployment.invoke(b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and json.loads(data)["error"]["status"] == 400
    body, ct = _request()
    status, data, _ = deployment.invoke(body, {"Content-Type": ct, "Accept": "image/png"})
    assert status == 406


def test_deployment_sessions(deployment):
    from inference.protocol import SegmentRequest, decode_request, encode_request

    body, ct = _request()
    status, _data, headers = deployment.invoke(body, {"Content-Type": ct, "X-Amzn-SageMaker-Session-Id": "NEW_SESSION"})
    session = headers["X-Amzn-SageMaker-New-Session-Id"].split(";")[0]
    follow, ct2, _ = encode_request(SegmentRequest(prompt=decode_request(body, content_type=ct).prompt))
    status, _data, headers = deployment.invoke(follow, {"Content-Type": ct2, "X-Amzn-SageMaker-Session-Id": session})
    assert status == 200 and "image-cache=hit" in headers["X-Amzn-SageMaker-Custom-Attributes"]


# -- deploy: image, AMI, environment ------------------------------------------------------------------
def test_ray_image_uri_per_region():
    from cloud.aws.images import is_ray_image, ray_image_uri

    assert (
        ray_image_uri("us-east-1", gpu=True)
        == "763104351884.dkr.ecr.us-east-1.amazonaws.com/ray:serve-ml-sagemaker-cuda"
    )
    assert ray_image_uri("af-south-1", gpu=False).startswith("626614931356.dkr.ecr.af-south-1")
    assert (
        ray_image_uri("xx-nowhere-1", gpu=False) == "public.ecr.aws/deep-learning-containers/ray:serve-ml-sagemaker-cpu"
    )
    assert is_ray_image(ray_image_uri("eu-west-1", gpu=True)) and not is_ray_image("x/pytorch-inference:2.6")


def _spec(**kw):
    from cloud.deploy.spec import DeploySpec
    from cloud.timeouts import size_timeouts

    base = dict(
        name="ep",
        image_uri="763104351884.dkr.ecr.us-east-1.amazonaws.com/ray:serve-ml-sagemaker-cuda",
        role_arn="arn:aws:iam::123456789012:role/r",
        model_data_url="s3://b/k/model.tar.gz",
        region="us-east-1",
        timeouts=size_timeouts(load_seconds=None, archive_bytes=1000),
    )
    base.update(kw)
    return DeploySpec(**base)


def test_ray_spec_sets_the_ami_and_the_package_environment():
    import boto3
    from botocore.stub import Stubber

    spec = _spec(
        container_kind="ray",
        inference_ami_version="al2-ami-sagemaker-inference-gpu-3-1",
        extra_environment={"RAY_SERVE_SESSION_ID_HEADER_KEY": "X-Amzn-SageMaker-Session-Id"},
    )
    env = spec.environment()
    assert "SAGEMAKER_PROGRAM" not in env and env["RAY_SERVE_SESSION_ID_HEADER_KEY"]
    variant = spec.production_variant()
    assert variant["InferenceAmiVersion"] == "al2-ami-sagemaker-inference-gpu-3-1"
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:  # botocore validates the request against the service model
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"},
            {"EndpointConfigName": spec.endpoint_config_name, "ProductionVariants": [variant]},
        )
        client.create_endpoint_config(EndpointConfigName=spec.endpoint_config_name, ProductionVariants=[variant])
    assert "InferenceAmiVersion" not in _spec().production_variant()


def test_deploy_up_detects_a_ray_package(tmp_path):
    from cloud.deploy.flow import UpOptions, container_kind, ray_options

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "config.yaml").write_text("applications: []\n")
    (pkg / "deployment.py").write_text("")
    (pkg / "langsam-manifest.json").write_text(json.dumps({"environment": {"RAY_SERVE_SESSION_ID_HEADER_KEY": "X"}}))
    options = UpOptions(archive=pkg, instance_type="ml.g5.xlarge", extra_environment={"A": "1"})
    assert container_kind(options) == "ray"
    assert container_kind(UpOptions(archive=tmp_path)) == "dlc"

    class Clients:
        region = "eu-west-1"

    ray = ray_options(Clients(), options)
    assert ray.image_uri.endswith("/ray:serve-ml-sagemaker-cuda") and "eu-west-1" in ray.image_uri
    assert dict(ray.extra_environment) == {"RAY_SERVE_SESSION_ID_HEADER_KEY": "X", "A": "1"}
    cpu = ray_options(Clients(), UpOptions(archive=pkg, instance_type="ml.c5.xlarge"))
    assert cpu.image_uri.endswith("serve-ml-sagemaker-cpu")
