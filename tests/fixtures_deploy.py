"""Deploy/client fixtures: one moto server per session (S3, SageMaker control plane, Logs, IAM, STS).

``moto_clients`` resets moto's state and returns :class:`cloud.aws.env.AwsClients` pointed at it,
with a bucket and a SageMaker execution role already created. Moto is never used for inference.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

MOTO_REGION = "us-east-1"
MOTO_BUCKET = "langsam-models"
MOTO_ROLE_NAME = "LangSamSageMakerRole"
TRUST_SAGEMAKER = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture(scope="session")
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def moto_clients(moto_url, monkeypatch):
    from cloud.aws.env import AwsClients, AwsSettings

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).read()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", MOTO_REGION)
    setup = AwsClients(AwsSettings(region=MOTO_REGION, endpoint_url=moto_url, retry_attempts=1))
    setup.client("s3").create_bucket(Bucket=MOTO_BUCKET)
    role = setup.client("iam").create_role(
        RoleName=MOTO_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST_SAGEMAKER)
    )["Role"]
    settings = AwsSettings(
        region=MOTO_REGION,
        role_arn=role["Arn"],
        bucket=MOTO_BUCKET,
        endpoint_url=moto_url,
        access_key_id="testing",
        secret_access_key="testing",
        retry_attempts=1,
    )
    return AwsClients(settings)
