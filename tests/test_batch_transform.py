"""SageMaker Batch Transform: the per-record contract, the job flow and the import into projects.

* The record contract against the real serving code: the SageMaker handler's four functions and
  the Ray deployment answer a bare image body (``application/x-image``, no headers) with the
  prompt from ``LANGSAM_BATCH_PROMPT``, and that ``.out`` body round-trips through the importer
  into project documents (REVIEW, needs_review, provenance from prediction_policy).
* The job with moto (it implements create/describe/list_transform_jobs; jobs are Completed at
  once and write no output, so the test writes the records the handler produced).
* Failure branches with botocore's Stubber: a Failed job with its FailureReason, permission
  errors, Ctrl-C (the job is stopped and the model this run created deleted).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from botocore.stub import ANY

from fixtures_deploy import MOTO_BUCKET
from fixtures_server import encode_image, scene_image
from inference import batch_prompt as B
from inference import protocol as P
from inference import sagemaker_handler as H
from inference.prompts import Box, Point, Prompt
from inference.protocol import ProtocolError, SegmentRequest

BOX = Box(x0=40, y0=60, x1=150, y1=180)  # around the dark disc of scene_image (320x240)
NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.timezone.utc)


def box_prompt_json() -> str:
    return B.encode_batch_prompt(SegmentRequest(prompt=Prompt(box=BOX, multimask=False)))


@pytest.fixture()
def batch_env(monkeypatch):
    value = box_prompt_json()
    monkeypatch.setenv(B.BATCH_PROMPT_ENV, value)
    return value


@pytest.fixture(scope="module")
def classic_runner(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("model")
    H.write_model_dir_config(model_dir, backend="classic", device="cpu")
    return H.model_fn(str(model_dir))


def handler_record(model, body: bytes, content_type: str = "application/x-image") -> tuple[int, bytes]:
    """What the toolkit does for one Batch Transform record: no custom headers, Accept json."""

    class Ctx:
        status = 200

        def get_all_request_header(self, idx):
            return {"Content-Type": content_type, "Accept": "application/json"}

        def set_response_status(self, code=200, phrase="", idx=0):
            self.status = code

        def set_response_header(self, idx, key, value):
            pass

    ctx = Ctx()
    out, out_type = H.output_fn(H.predict_fn(H.input_fn(body, content_type, ctx), model, ctx), "application/json", ctx)
    assert out_type == "application/json"
    return ctx.status, out


def project_with_images(folder: Path, names=("a.png", "b.png")) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(scene_image(i)).save(folder / name)
    return folder


# -- the environment prompt ---------------------------------------------------------------------
def test_batch_prompt_is_the_custom_attributes_json_validated_by_the_codec():
    value = box_prompt_json()
    assert json.loads(value)["prompt"]["box"] == [40, 60, 150, 180]
    request = B.decode_batch_prompt(value)
    assert request.prompt.box == BOX and request.image is not None  # the probe body, never used
    with pytest.raises(ProtocolError, match=B.BATCH_PROMPT_ENV):
        B.decode_batch_prompt('{"prompt": {"text": 3}}')
    with pytest.raises(ProtocolError, match="10240"):
        B.decode_batch_prompt(json.dumps({"prompt": {"text": "x" * 11000}}))
    with pytest.raises(ProtocolError):
        B.decode_batch_prompt('{"options": {"encode_only": true}}')


def test_the_environment_prompt_fills_only_bare_image_requests():
    env = {B.BATCH_PROMPT_ENV: box_prompt_json()}
    added = B.with_batch_prompt({}, "application/x-image", env)
    assert added[P.CUSTOM_ATTRIBUTES_HEADER] == env[B.BATCH_PROMPT_ENV]
    own = {P.CUSTOM_ATTRIBUTES_HEADER.lower(): '{"prompt":{"points":[[1,2,1]]}}'}
    assert B.with_batch_prompt(own, "image/png", env) == own  # a request's own prompt wins
    assert B.with_batch_prompt({}, "application/json", env) == {}  # JSON requests carry their prompt
    assert B.with_batch_prompt({}, "image/png", {}) == {}  # not a transform job: nothing added
    assert B.record_status(422, env) == 200 and B.record_status(500, env) == 500 and B.record_status(422, {}) == 422


def test_a_bad_environment_prompt_stops_model_loading(tmp_path, monkeypatch):
    H.write_model_dir_config(tmp_path, backend="classic", device="cpu")
    monkeypatch.setenv(B.BATCH_PROMPT_ENV, '{"prompt": {"box": [1, 2]}}')
    with pytest.raises(ProtocolError, match="prompt.box"):
        H.model_fn(str(tmp_path))


# -- the record contract, end to end through the serving code and the importer ------------------
def test_handler_record_round_trips_into_project_documents(classic_runner, batch_env, tmp_path):
    from desktop_app.core.annotation.document import AnnotationObject, ImageStatus
    from desktop_app.core.annotation.project import ProjectFolder
    from desktop_app.core.batch_transform_import import import_records

    folder = project_with_images(tmp_path / "photos", ("a.png", "b.png", "c.png"))
    records = {}
    for name in ("a.png", "b.png"):
        status, out = handler_record(classic_runner, (folder / name).read_bytes())
        assert status == 200
        records[f"{name}"] = out
    status, refused = handler_record(classic_runner, b"not an image at all")
    assert status == 200  # a refused record must not fail the whole job
    assert P.decode_error(refused).status in (400, 415, 422)
    records["notes.txt"] = refused
    records["c.png"] = refused  # an image the model refused

    project = ProjectFolder(folder)
    existing = project.load("b.png")  # b.png already has a person's object: it must stay
    existing.add(AnnotationObject(label="kept", mask=np.ones((240, 320), bool), source="brush"))
    existing.status = ImageStatus.DONE
    project.save(existing)

    prompt = B.decode_batch_prompt(batch_env).prompt
    summary = import_records(ProjectFolder(folder), sorted(records.items()), prompt=prompt, fallback_label="disc")
    assert summary.records == 4 and summary.refused == 1 and sorted(summary.images_changed) == ["a.png", "b.png"]
    assert any("notes.txt" in p for p in summary.problems) and any("c.png" in p for p in summary.problems)

    fresh = ProjectFolder(folder)
    a = fresh.load("a.png")
    assert a.status == ImageStatus.REVIEW and len(a) == 1
    obj = a.objects[0]
    assert obj.needs_review and obj.label == "disc" and obj.source == "box"
    assert obj.prompt["backend"] == "classic" and obj.prompt["box"] == [40.0, 60.0, 150.0, 180.0]
    assert obj.mask[120, 96]  # the disc centre
    b = fresh.load("b.png")
    assert [o.label for o in b.objects] == ["kept", "disc"] and b.status == ImageStatus.REVIEW
    assert "disc" in fresh.load_labels()

    again = import_records(ProjectFolder(folder), sorted(records.items()), prompt=prompt, fallback_label="disc")
    assert again.objects_added == 0 and again.duplicates_skipped == 2 and not again.images_changed


def test_damaged_documents_are_skipped_and_left_untouched(classic_runner, batch_env, tmp_path):
    from desktop_app.core.annotation.project import ProjectFolder
    from desktop_app.core.batch_transform_import import import_records

    folder = project_with_images(tmp_path / "photos", ("a.png",))
    project = ProjectFolder(folder)
    project.meta_dir.mkdir(exist_ok=True)
    project.annotation_path("a.png").write_text("{ damaged", encoding="utf-8")
    _, out = handler_record(classic_runner, (folder / "a.png").read_bytes())
    summary = import_records(project, [("a.png", out)], prompt=B.decode_batch_prompt(batch_env).prompt)
    assert summary.objects_added == 0 and "cannot be read" in summary.problems[0]
    assert project.annotation_path("a.png").read_text(encoding="utf-8") == "{ damaged"


def test_a_record_for_another_picture_of_the_same_name_is_skipped(classic_runner, batch_env, tmp_path):
    from PIL import Image

    from desktop_app.core.annotation.project import ProjectFolder
    from desktop_app.core.batch_transform_import import import_records

    folder = project_with_images(tmp_path / "photos", ("a.png",))
    _, out = handler_record(classic_runner, (folder / "a.png").read_bytes())
    Image.fromarray(scene_image(0, height=100, width=100)).save(folder / "a.png")
    summary = import_records(ProjectFolder(folder), [("sub/a.png", out)], prompt=Prompt(box=BOX))
    assert summary.objects_added == 0 and "320x240" in summary.problems[0]


def test_ray_deployment_answers_a_record_with_the_environment_prompt(batch_env):
    from inference.ray_serve import LangSAMDeployment

    deployment = LangSAMDeployment(backend="classic", warm_up=False)
    body = encode_image(scene_image(0))
    status, out, _ = deployment.invoke(body, {"content-type": "application/x-image", "accept": "application/json"})
    assert status == 200
    answer = P.decode_response(out)
    assert answer.prediction.best.mask[120, 96]
    status, out, _ = deployment.invoke(b"GIF89a-broken", {"content-type": "application/x-image"})
    assert status == 200 and P.decode_error(out).status >= 400


# -- the job: moto --------------------------------------------------------------------------------
def _put_inputs(s3, names=("a.png", "b.png")) -> None:
    for i, name in enumerate(names):
        s3.put_object(Bucket=MOTO_BUCKET, Key=f"images/{name}", Body=encode_image(scene_image(i)))


def test_moto_job_with_an_existing_model_then_cli_import(moto_clients, classic_runner, tmp_path, monkeypatch, capsys):
    from cloud.batch_transform.job import TransformOptions, run_transform
    from cloud.deploy.flow import Reporter
    from desktop_app.cli.main import main

    sm, s3 = moto_clients.client("sagemaker"), moto_clients.client("s3")
    sm.create_model(
        ModelName="langsam-m-1234abcd",
        ExecutionRoleArn=moto_clients.settings.role_arn,
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/x:y",
            "ModelDataUrl": f"s3://{MOTO_BUCKET}/m.tar.gz",
        },
    )
    _put_inputs(s3)
    lines: list[str] = []
    seen = []
    options = TransformOptions(
        input_uri=f"s3://{MOTO_BUCKET}/images/",
        output_uri=f"s3://{MOTO_BUCKET}/out/",
        prompt_json=box_prompt_json(),
        instance_type="ml.g5.xlarge",
        instance_count=2,
        model_name="langsam-m-1234abcd",
        poll_s=0.01,
    )
    result = run_transform(
        moto_clients, options, reporter=Reporter(say=lines.append), on_progress=seen.append, sleep=lambda s: None
    )
    assert result.inputs.count == 2 and not result.model_created and seen[-1].status == "Completed"
    job = sm.describe_transform_job(TransformJobName=result.job_name)
    assert job["ModelName"] == "langsam-m-1234abcd"
    assert job["Environment"][B.BATCH_PROMPT_ENV] == box_prompt_json()
    assert job["TransformInput"]["SplitType"] == "None"
    assert job["TransformInput"]["ContentType"] == "application/x-image"
    assert job["TransformResources"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2}
    assert job["MaxPayloadInMB"] == 6 and job["BatchStrategy"] == "SingleRecord"
    manifest = json.loads(s3.get_object(Bucket=MOTO_BUCKET, Key="out/langsam-batch-transform.json")["Body"].read())
    assert manifest["job"] == result.job_name and manifest["prompt"] == box_prompt_json()

    # what SageMaker would write: the handler's answer per input object, at <out>/<key>.out
    monkeypatch.setenv(B.BATCH_PROMPT_ENV, box_prompt_json())
    for name in ("a.png", "b.png"):
        body = s3.get_object(Bucket=MOTO_BUCKET, Key=f"images/{name}")["Body"].read()
        status, out = handler_record(classic_runner, body)
        s3.put_object(Bucket=MOTO_BUCKET, Key=f"out/{name}.out", Body=out)
    monkeypatch.delenv(B.BATCH_PROMPT_ENV)
    from cloud.batch_transform.job import job_status

    _, progress = job_status(moto_clients, result.job_name)
    assert (progress.done, progress.total) == (2, 2) and "2/2 images (100%)" in progress.line()

    folder = project_with_images(tmp_path / "photos")
    url = moto_clients.settings.endpoint_url
    assert (
        main(
            [
                "batch-transform",
                "import",
                f"s3://{MOTO_BUCKET}/out/",
                "--images",
                str(folder),
                "--endpoint-url",
                url,
                "--region",
                "us-east-1",
                "--label",
                "disc",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "added 2 object(s) to 2 image(s)" in out
    from desktop_app.core.annotation.document import ImageStatus
    from desktop_app.core.annotation.project import ProjectFolder

    doc = ProjectFolder(folder).load("a.png")
    assert doc.status == ImageStatus.REVIEW and doc.objects[0].prompt["box"] == [40.0, 60.0, 150.0, 180.0]


def test_moto_job_from_a_package_creates_the_model_like_deploy_up(moto_clients, tmp_path):
    from cloud.batch_transform.job import TransformOptions, run_transform

    package = tmp_path / "pkg"
    package.mkdir()
    H.write_model_dir_config(package, backend="classic", device="cpu")
    (package / "code").mkdir()
    (package / "code" / "inference.py").write_text("from inference.sagemaker_handler import *\n")
    _put_inputs(moto_clients.client("s3"), ("a.png",))
    options = TransformOptions(
        input_uri=f"s3://{MOTO_BUCKET}/images/",
        output_uri=f"s3://{MOTO_BUCKET}/out/",
        prompt_json=box_prompt_json(),
        instance_type="ml.c5.xlarge",
        package=package,
        name="bt-test",
        poll_s=0.01,
    )
    result = run_transform(moto_clients, options, sleep=lambda s: None)
    assert result.model_created and result.model_name.startswith("bt-test-m-")
    model = moto_clients.client("sagemaker").describe_model(ModelName=result.model_name)
    env = model["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_PROGRAM"] == "inference.py" and "TS_DEFAULT_RESPONSE_TIMEOUT" in env


def test_inputs_are_checked_before_anything_is_created(moto_clients):
    from cloud.aws.errors import DeployError
    from cloud.batch_transform.job import TransformOptions, run_transform

    s3 = moto_clients.client("s3")
    base = dict(
        input_uri=f"s3://{MOTO_BUCKET}/images/",
        output_uri=f"s3://{MOTO_BUCKET}/out/",
        prompt_json=box_prompt_json(),
        instance_type="ml.g5.xlarge",
        model_name="nope",
    )
    with pytest.raises(DeployError) as info:
        run_transform(moto_clients, TransformOptions(**base))
    assert info.value.code == "transform-input" and "no objects" in str(info.value)
    s3.put_object(Bucket=MOTO_BUCKET, Key="images/huge.jpg", Body=b"\xff\xd8\xff" + b"0" * (6 * 2**20))
    with pytest.raises(DeployError, match="over 6 MiB") as info:
        run_transform(moto_clients, TransformOptions(**base))
    s3.delete_object(Bucket=MOTO_BUCKET, Key="images/huge.jpg")
    _put_inputs(s3, ("a.png",))
    with pytest.raises(DeployError) as info:
        run_transform(moto_clients, TransformOptions(**base))
    assert info.value.code == "transform-model-missing"
    assert not moto_clients.client("sagemaker").list_transform_jobs()["TransformJobSummaries"]


# -- failure branches: Stubber --------------------------------------------------------------------
class StubClients:
    """AwsClients with a stubbed SageMaker (and Logs) and moto's S3."""

    def __init__(self, moto_clients, sm, logs):
        self.settings = moto_clients.settings
        self.region = "us-east-1"
        self._clients = {"sagemaker": sm, "logs": logs, "s3": moto_clients.client("s3")}

    def client(self, service, **_):
        return self._clients[service]


def _job(status: str, reason: str | None = None) -> dict:
    out = {
        "TransformJobName": "bt-20261205-120000",
        "TransformJobArn": "arn:aws:sagemaker:us-east-1:1:transform-job/x",
        "TransformJobStatus": status,
        "ModelName": "bt-m-1",
        "CreationTime": NOW,
        "TransformStartTime": NOW,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/images/"}}},
        "TransformOutput": {"S3OutputPath": "s3://b/out/"},
        "TransformResources": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
    }
    if status in {"Failed", "Stopped", "Completed"}:
        out["TransformEndTime"] = NOW + dt.timedelta(hours=1)
    if reason:
        out["FailureReason"] = reason
    return out


def _package_run(moto_clients, tmp_path, sm, logs, **changes):
    from cloud.batch_transform.job import TransformOptions, run_transform

    package = tmp_path / "pkg"
    package.mkdir()
    H.write_model_dir_config(package, backend="classic", device="cpu")
    _put_inputs(moto_clients.client("s3"), ("a.png",))
    options = TransformOptions(
        input_uri=f"s3://{MOTO_BUCKET}/images/",
        output_uri=f"s3://{MOTO_BUCKET}/out/",
        prompt_json=box_prompt_json(),
        instance_type="ml.g5.xlarge",
        package=package,
        name="bt",
        poll_s=0.01,
        **changes,
    )
    lines: list[str] = []
    from cloud.deploy.flow import Reporter

    return lines, lambda: run_transform(
        StubClients(moto_clients, sm, logs),
        options,
        reporter=Reporter(say=lines.append),
        sleep=lambda s: None,
        now=NOW.timestamp(),
    )


def _model_created(stub):
    stub.add_client_error("describe_model", "ValidationException", "Could not find model 'x'.", 400)
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/bt-m-1"})


def test_a_failed_job_is_explained_and_the_model_this_run_created_is_deleted(moto_clients, tmp_path):
    from cloud.aws.errors import DeployError
    from test_deploy_preflight import stubbed

    sm, stub = stubbed("sagemaker")
    logs, log_stub = stubbed("logs")
    _model_created(stub)
    stub.add_response(
        "create_transform_job",
        {"TransformJobArn": "arn:x"},
        {
            "TransformJobName": "bt-20261205-120000",
            "ModelName": ANY,
            "MaxConcurrentTransforms": 1,
            "MaxPayloadInMB": 6,
            "BatchStrategy": "SingleRecord",
            "ModelClientConfig": ANY,
            "Environment": ANY,
            "TransformInput": ANY,
            "TransformOutput": ANY,
            "TransformResources": ANY,
            "Tags": ANY,
        },
    )
    stub.add_response("describe_transform_job", _job("InProgress"))
    log_stub.add_response("filter_log_events", {"events": []})
    reason = "ClientError: See job logs for more information"
    stub.add_response("describe_transform_job", _job("Failed", reason))
    log_stub.add_response(
        "filter_log_events",
        {
            "events": [
                {
                    "logStreamName": "bt/i-1",
                    "timestamp": 1,
                    "message": "ModuleNotFoundError: No module named 'sam2'",
                    "eventId": "1",
                }
            ]
        },
    )
    stub.add_response("describe_transform_job", _job("Failed", reason))  # stop_job looks once more
    stub.add_response("delete_model", {}, {"ModelName": ANY})
    lines, go = _package_run(moto_clients, tmp_path, sm, logs)
    with pytest.raises(DeployError) as info:
        go()
    assert info.value.code == "module-not-found"  # the log line explains "See job logs"
    assert "transform job bt-20261205-120000 failed" in str(info.value).lower()
    assert any("clean-up: deleted model" in line for line in lines)
    stub.assert_no_pending_responses()


def test_failure_reason_alone_gives_a_diagnosis_sentence():
    from cloud.batch_transform.job import failure_error

    err = failure_error(
        _job("Failed", "ClientError: See job logs for more information"), done=3, total=10, output_uri="s3://b/out/"
    )
    assert err.code == "transform-failed" and "3 of 10 records" in str(err) and "batch-transform import" in str(err)
    err = failure_error(_job("Failed", 'ClientError: No S3 objects found under S3 URL "s3://b/images/"'))
    assert err.code == "transform-input"


def test_permission_denied_on_create_is_explained_and_rolled_back(moto_clients, tmp_path):
    from cloud.aws.errors import DeployError
    from test_deploy_preflight import stubbed

    sm, stub = stubbed("sagemaker")
    logs, _ = stubbed("logs")
    _model_created(stub)
    stub.add_client_error(
        "create_transform_job",
        "AccessDeniedException",
        "User: arn:aws:iam::1:user/u is not authorized to perform: sagemaker:CreateTransformJob",
        400,
    )
    stub.add_response("delete_model", {}, {"ModelName": ANY})
    lines, go = _package_run(moto_clients, tmp_path, sm, logs)
    with pytest.raises(DeployError) as info:
        go()
    assert info.value.code == "access-denied" and "CreateTransformJob" in str(info.value)
    assert not any("stopped transform job" in line for line in lines)
    stub.assert_no_pending_responses()


def test_ctrl_c_stops_the_job_and_deletes_the_model(moto_clients, tmp_path):
    from test_deploy_preflight import stubbed

    sm, stub = stubbed("sagemaker")
    logs, log_stub = stubbed("logs")
    _model_created(stub)
    stub.add_response("create_transform_job", {"TransformJobArn": "arn:x"})
    stub.add_response("describe_transform_job", _job("InProgress"))
    log_stub.add_response("filter_log_events", {"events": []})
    stub.add_response("describe_transform_job", _job("InProgress"))
    stub.add_response("stop_transform_job", {}, {"TransformJobName": "bt-20261205-120000"})
    stub.add_response("delete_model", {}, {"ModelName": ANY})
    from cloud.batch_transform.job import TransformOptions, run_transform

    lines, _ = _package_run(moto_clients, tmp_path, sm, logs)

    def interrupt(_):
        raise KeyboardInterrupt

    package = tmp_path / "pkg"
    options = TransformOptions(
        input_uri=f"s3://{MOTO_BUCKET}/images/",
        output_uri=f"s3://{MOTO_BUCKET}/out/",
        prompt_json=box_prompt_json(),
        instance_type="ml.g5.xlarge",
        package=package,
        name="bt",
        poll_s=0.01,
    )
    from cloud.deploy.flow import Reporter

    with pytest.raises(KeyboardInterrupt):
        run_transform(
            StubClients(moto_clients, sm, logs),
            options,
            reporter=Reporter(say=lines.append),
            sleep=interrupt,
            now=NOW.timestamp(),
        )
    assert any("stopped transform job bt-20261205-120000" in line for line in lines)
    assert any("clean-up: deleted model" in line for line in lines)
    stub.assert_no_pending_responses()


def test_progress_counts_cost_from_the_price_table():
    from cloud.batch_transform.job import progress_of

    job = _job("Completed")
    p = progress_of(job, done=5, total=10, instance_type="ml.g5.xlarge", instance_count=2)
    assert p.elapsed_s == 3600 and p.cost_usd == pytest.approx(2 * 1.408)
    assert "5/10 images (50%)" in p.line() and "$2.82" in p.line()
    unknown = progress_of(job, done=0, total=0, instance_type="ml.zz.huge", instance_count=1)
    assert unknown.cost_usd is None and "cost" not in unknown.line()


# -- CLI: local checks before any AWS call ---------------------------------------------------------
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["s3://b/images/", "--out", "s3://b/images/out/", "--text", "car", "--model", "m"], "inside the input"),
        (["s3://b/images/", "--out", "s3://b/out/", "--model", "m"], "say what to segment"),
        (["s3://b/images/", "--out", "s3://b/out/", "--text", "car"], "--model NAME"),
        (["images/", "--out", "s3://b/out/", "--text", "car", "--model", "m"], "is not an s3://"),
        (["s3://b/images/", "--text", "car", "--model", "m"], "--out s3://bucket/out/ is needed"),
        (["s3://b/images/", "--out", "s3://b/out/", "--box", "1,2,3", "--model", "m"], "--box"),
        (["s3://b/images/", "--out", "s3://b/out/", "--point", "5,5,0", "--model", "m"], "only negative points"),
        (
            ["s3://b/images/", "--out", "s3://b/out/", "--text", "car", "--model", "m", "--instances", "0"],
            "--instances",
        ),
        (["s3://b/images/", "--out", "s3://b/out/", "--text", "car", "--model", "m", "--retries", "7"], "--retries"),
        (["import", "s3://b/out/"], "--images FOLDER is needed"),
        (["status"], "batch-transform status JOB_NAME"),
    ],
)
def test_cli_refuses_bad_arguments_locally(argv, needle, capsys, monkeypatch):
    from desktop_app.cli.main import main

    monkeypatch.setenv("LANGSAM_AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # any AWS call would fail loudly
    assert main(["batch-transform", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0]


def test_cli_refuses_a_missing_package_and_import_folder(tmp_path, capsys):
    from desktop_app.cli.main import main

    base = ["batch-transform", "s3://b/images/", "--out", "s3://b/out/", "--text", "car"]
    assert main([*base, "--package", str(tmp_path / "nope.tar.gz")]) == 1
    assert main([*base, "--model", "m", "--import", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "is not a folder" in err


def test_point_prompt_encodes_for_the_environment():
    value = B.encode_batch_prompt(SegmentRequest(prompt=Prompt(points=(Point(x=3, y=4),), multimask=False)))
    assert B.decode_batch_prompt(value).prompt.points == (Point(x=3.0, y=4.0, positive=True),)


def test_cli_runs_the_job_shows_progress_and_cost_and_imports(
    moto_clients, classic_runner, tmp_path, monkeypatch, capsys
):
    from desktop_app.cli.main import main

    s3 = moto_clients.client("s3")
    moto_clients.client("sagemaker").create_model(
        ModelName="existing",
        ExecutionRoleArn=moto_clients.settings.role_arn,
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/x:y",
            "ModelDataUrl": f"s3://{MOTO_BUCKET}/m.tar.gz",
        },
    )
    _put_inputs(s3, ("a.png",))
    monkeypatch.setenv(B.BATCH_PROMPT_ENV, box_prompt_json())
    _, out = handler_record(classic_runner, encode_image(scene_image(0)))
    monkeypatch.delenv(B.BATCH_PROMPT_ENV)
    s3.put_object(Bucket=MOTO_BUCKET, Key="out/a.png.out", Body=out)  # moto's job writes nothing itself
    folder = project_with_images(tmp_path / "photos", ("a.png",))
    code = main(
        [
            "batch-transform",
            f"s3://{MOTO_BUCKET}/images/",
            "--box",
            "40,60,150,180",
            "--out",
            f"s3://{MOTO_BUCKET}/out/",
            "--instances",
            "3",
            "--instance-type",
            "ml.g5.xlarge",
            "--model",
            "existing",
            "--import",
            str(folder),
            "--endpoint-url",
            moto_clients.settings.endpoint_url,
            "--region",
            "us-east-1",
            "--poll",
            "0.01",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "3 × ml.g5.xlarge at about $1.41/h each" in printed.out
    assert "Completed, 1/1 images (100%)" in printed.out and "added 1 object(s) to 1 image(s)" in printed.out
    from desktop_app.core.annotation.project import ProjectFolder

    assert ProjectFolder(folder).load("a.png").objects[0].needs_review
