"""Bad arguments, files and weights on the command line (deploy, models): one ``error: ...`` line on
stderr, the documented exit code (1 failed, 2 bad arguments), checked before slow work, no traceback.

AWS points at an unreachable endpoint (127.0.0.1:9): a check that wrongly reached AWS would print
an AWS message instead of the local one asserted here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.cli.main import main
from fixtures_weights import make_gdino_files, make_torch_like_checkpoint, write_file

ROOT = Path(__file__).resolve().parents[1]
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIADUMMYDUMMYDUMMY",
    "AWS_SECRET_ACCESS_KEY": "dummy-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_ARN_ROLE": "arn:aws:iam::123456789012:role/dummy",
    "MODEL_BUCKET": "dummy-bucket",
}
LONG_TEXT = "car " * 1250  # 5,000 characters


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch, tmp_path):
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./.env of the checkout


@pytest.fixture
def files(tmp_path):
    from PIL import Image

    d = tmp_path / "in"
    d.mkdir()
    Image.new("RGB", (64, 48), (9, 9, 9)).save(d / "ok.png")
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("not an image")
    (d / "garbage.pt").write_text("not a checkpoint")
    (d / "folder").mkdir()
    write_file(d / "gd_garbage" / "config.json", b"garbage")
    (d / "gd_noconf").mkdir()
    gd_bert = d / "gd_bert"
    for name, data in make_gdino_files().items():
        write_file(gd_bert / name, data)
    (gd_bert / "config.json").write_text('{"model_type": "bert"}')
    return d


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


def _assert_one_line(err: str, *needles: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "AWS" not in lines[0], err  # the local message, never an AWS diagnosis
    for needle in needles:
        assert needle in lines[0], (needle, err)


# -- deploy invoke ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["--image-file", "{d}/ok.png", "--point", "1"], 2, "--point '1' is not x,y"),
        (["--image-file", "{d}/ok.png", "--point", "a,b"], 2, "--point 'a,b'"),
        (["--image-file", "{d}/ok.png", "--point", "1,2,5"], 2, "third value"),
        (["--image-file", "{d}/ok.png", "--box", "1,2"], 2, "--box '1,2' is not x0,y0,x1,y1"),
        (["--image-file", "{d}/ok.png", "--box", "1,1,1,9"], 2, "has no area"),
        (["--image-file", "{d}/ok.png", "--point", "1000,1000"], 2, "outside the 64x48 image"),
        (["--image-file", "{d}/nope.png", "--text", "car"], 1, "does not exist"),
        (["--image-file", "{d}/folder", "--text", "car"], 1, "is a folder"),
        (["--image-file", "{d}/empty.png", "--text", "car"], 1, "empty (0 bytes)"),
        (["--image-file", "{d}/text.png", "--text", "car"], 1, "cannot be read as an image"),
        (["--image-file", "{d}/ok.png"], 2, "say what to segment"),
        (["--text", "car"], 2, "need --image-file"),
        (["--point", "1,2"], 2, "need --image-file"),
        (["--image-file", "{d}/ok.png", "--text", "   "], 2, "--text is empty"),
        (["--image-file", "{d}/ok.png", "--text", LONG_TEXT], 2, "at most 1,000"),
        (["--image-file", "{d}/ok.png", "--text", LONG_TEXT, "--raw"], 2, "at most 1,000"),
        (["--image-file", "{d}/ok.png", "--text", "car", "--output", "{d}/no/such/answer.json"], 1, "does not exist"),
        (["--image-file", "{d}/ok.png", "--text", "car", "--output", "{d}/folder"], 1, "is a folder"),
        (["--image-file", "{d}/ok.png", "--text", "car", "--read-timeout", "0"], 2, "--read-timeout"),
        (["--image-file", "{d}/ok.png", "--text", "car", "--async-s3", "bucket"], 2, "s3://"),
        (["--env-file", "{d}/ok.png"], 1, "not a text .env file"),
        (["--env-file", "{d}/folder"], 1, "is a folder"),
    ],
)
def test_invoke_local_mistakes_are_not_aws_errors(capsys, files, args, code, needle):
    argv = ["deploy", "invoke", "ep"] + [a.replace("{d}", str(files)) for a in args]
    got, err = _run(capsys, argv)
    assert got == code, err
    _assert_one_line(err, needle)


def test_invoke_reaches_aws_only_when_the_arguments_are_right(capsys, files):
    """The control: good arguments do reach (the unreachable) AWS, so the checks above are local."""
    got, err = _run(capsys, ["deploy", "invoke", "ep", "--image-file", str(files / "ok.png"), "--text", "car"])
    assert got == 1 and "127.0.0.1:9" in err and "Traceback" not in err


# -- deploy up / logs / status ------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["up", "--archive", "{d}/nope.tar.gz"], 1, "does not exist"),
        (["up", "--env", "NOEQUALS"], 2, "KEY=VALUE"),
        (["up", "--autoscale", "3:1"], 2, "MIN:MAX"),
        (["up", "--instance-count", "0"], 2, "--instance-count"),
        (["up", "--model-data", "bucket/key"], 2, "s3://"),
        (["up", "--load-seconds", "{d}/folder"], 1, "--load-seconds"),
        (["logs", "--minutes", "-5"], 2, "--minutes"),
        (["logs", "--lines", "0"], 2, "--lines"),
    ],
)
def test_other_aws_commands_check_locally_first(capsys, files, args, code, needle):
    got, err = _run(capsys, ["deploy"] + [a.replace("{d}", str(files)) for a in args])
    assert got == code, err
    _assert_one_line(err, needle)


# -- deploy package / test-local ----------------------------------------------------------------
def _no_slow_work(monkeypatch):
    """Fail loudly if a check came too late: packaging or the serving environment started."""
    import cloud.dry_run.venv as venv
    import cloud.packaging.build as build

    def boom(*_a, **_k):
        raise AssertionError("slow work started before the arguments were checked")

    monkeypatch.setattr(build, "collect_wheels", boom)
    monkeypatch.setattr(build, "build_package", boom)
    monkeypatch.setattr(venv, "ensure_dlc_venv", boom)


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["-o", "{d}/no/such/folder/model.tar.gz", "--backend", "classic"], 1, "does not exist"),
        (["-o", "{d}/ok.png/model.tar.gz", "--backend", "classic"], 1, "is a file, not a folder"),
        (["-o", "{d}/ok.png", "--backend", "classic"], 1, "already exists"),
        (
            ["-o", "{d}/m.tar.gz", "--backend", "sam2", "--sam2-checkpoint", "{d}/garbage.pt"],
            1,
            "not a PyTorch checkpoint",
        ),
        (["-o", "{d}/m.tar.gz", "--backend", "sam2", "--sam2-checkpoint", "{d}/nope.pt"], 1, "does not exist"),
        (["-o", "{d}/m.tar.gz", "--backend", "sam2", "--sam2-checkpoint", "{d}/folder"], 1, "is not a file"),
        (["-o", "{d}/m.tar.gz", "--backend", "sam2", "--sam2-checkpoint", "{d}/empty.png"], 1, "is empty"),
        (
            ["-o", "{d}/m.tar.gz", "--sam2-checkpoint", "{d}/ckpt.pt", "--gdino-dir", "{d}/garbage.pt"],
            1,
            "is not a folder",
        ),
        (
            ["-o", "{d}/m.tar.gz", "--sam2-checkpoint", "{d}/ckpt.pt", "--gdino-dir", "{d}/gd_noconf"],
            1,
            "has no config.json",
        ),
        (
            ["-o", "{d}/m.tar.gz", "--sam2-checkpoint", "{d}/ckpt.pt", "--gdino-dir", "{d}/gd_garbage"],
            1,
            "config.json is not valid JSON",
        ),
        (
            ["-o", "{d}/m.tar.gz", "--sam2-checkpoint", "{d}/ckpt.pt", "--gdino-dir", "{d}/gd_bert"],
            1,
            "not 'grounding-dino'",
        ),
        (["-o", "{d}/m.tar.gz", "--sam2-model", "sam9"], 2, "not a known model"),
    ],
)
def test_package_checks_output_and_weights_before_packaging(capsys, monkeypatch, files, args, code, needle):
    _no_slow_work(monkeypatch)
    (files / "ckpt.pt").write_bytes(make_torch_like_checkpoint(1000))
    got, err = _run(capsys, ["deploy", "package"] + [a.replace("{d}", str(files)) for a in args])
    assert got == code, err
    _assert_one_line(err, needle)
    assert not (files / "no").exists()  # the missing folder is not created


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["{d}/nope.tar.gz"], 1, "does not exist"),
        (["{d}/folder"], 1, "lacks code/inference.py"),
        (["{d}/ok.png"], 1, "expected a model.tar.gz"),
        (["{d}/fake.tar.gz"], 1, "not a readable .tar.gz"),
        (["{d}/empty.tar.gz"], 1, "is empty"),
        (["--backend", "classic", "--text", LONG_TEXT], 2, "at most 1,000"),
        (["--backend", "classic", "--image", "{d}/text.png"], 1, "cannot be read as an image"),
        (["--backend", "classic", "--image", "{d}/nope.png"], 1, "does not exist"),
        (["--backend", "sam2", "--sam2-checkpoint", "{d}/garbage.pt"], 1, "not a PyTorch checkpoint"),
        (["--backend", "classic", "--env", "NOEQUALS"], 2, "NAME=VALUE"),
        (["--backend", "classic", "--health-check-timeout", "0"], 2, "--health-check-timeout"),
    ],
)
def test_test_local_checks_the_package_before_building_its_environment(capsys, monkeypatch, files, args, code, needle):
    _no_slow_work(monkeypatch)
    (files / "fake.tar.gz").write_text("not gzip")
    (files / "empty.tar.gz").write_bytes(b"")
    got, err = _run(capsys, ["deploy", "test-local"] + [a.replace("{d}", str(files)) for a in args])
    assert got == code, err
    _assert_one_line(err, needle)


def test_layout_problem_accepts_a_package_folder_and_archive(tmp_path):
    import tarfile

    from cloud.packaging.verify import REQUIRED, layout_problem

    for name in REQUIRED:
        write_file(tmp_path / "pkg" / name, b"x")
    assert layout_problem(tmp_path / "pkg") is None
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "pkg", arcname=".")
    assert layout_problem(tmp_path / "model.tar.gz") is None


# -- models -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model, path, needle",
    [
        ("sam2.1_hiera_tiny", "{d}/garbage.pt", "not a PyTorch checkpoint"),
        ("sam2.1_hiera_tiny", "{d}/ok.png", "not a PyTorch checkpoint"),
        ("sam2.1_hiera_tiny", "{d}/empty.png", "is empty"),
        ("sam2.1_hiera_tiny", "{d}/folder", "is not a file"),
        ("grounding-dino-tiny", "{d}/garbage.pt", "is not a folder"),
        ("grounding-dino-tiny", "{d}/gd_noconf", "has no config.json"),
        ("grounding-dino-tiny", "{d}/gd_garbage", "not valid JSON"),
        ("grounding-dino-tiny", "{d}/gd_bert", "not 'grounding-dino'"),
    ],
)
def test_models_path_set_refuses_a_file_that_is_not_the_model(capsys, files, _isolated_home, model, path, needle):
    from inference.weights import WeightsStore

    got, err = _run(capsys, ["models", "path", model, "--set", path.replace("{d}", str(files))])
    assert got == 1, err
    _assert_one_line(err, needle)
    assert WeightsStore().override(model) is None  # nothing registered


def test_models_dir_that_is_a_file(capsys, files):
    for action in (
        ["list"],
        ["verify"],
        ["download", "--quiet", "sam2.1_hiera_tiny"],
        ["path", "sam2.1_hiera_tiny", "--set", str(files / "ok.png")],
    ):
        got, err = _run(capsys, ["models", "--dir", str(files / "ok.png" / "sub"), *action])
        assert got == 1, (action, err)
        _assert_one_line(err, "is a file, not a folder")


# -- real processes: stderr as a person sees it -------------------------------------------------
@pytest.mark.parametrize(
    "argv, code, needle",
    [
        (["deploy", "invoke", "--image-file", "{d}/nope.png", "--text", "car"], 1, "does not exist"),
        (["deploy", "invoke", "--image-file", "{d}/ok.png", "--box", "1,2"], 2, "--box"),
        (["deploy", "package", "-o", "{d}/no/such/model.tar.gz", "--backend", "classic"], 1, "does not exist"),
        (["models", "path", "sam2.1_hiera_tiny", "--set", "{d}/garbage.pt"], 1, "not a PyTorch checkpoint"),
    ],
)
def test_subprocess_stderr_is_one_line(files, tmp_path, argv, code, needle):
    env = {**os.environ, **AWS_ENV, "LANGSAM_STUDIO_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "desktop_app.cli", *[a.replace("{d}", str(files)) for a in argv]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == code, proc.stderr
    _assert_one_line(proc.stderr, needle)
