"""``deploy package``: layout, offline requirements, dereferenced weights, verification."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from cloud.packaging.verify import verify_package
from cloud.packaging.wheels import DLC_PY312, TargetPython, _missing_requirements


def _requirement_names(text: str) -> list[str]:
    return [
        ln.split("=")[0].split(">")[0].strip().lower()
        for ln in text.splitlines()
        if ln.strip() and not ln.startswith(("#", "-"))
    ]


def test_classic_package_for_the_dlc(build_test_package, tmp_path):
    out = tmp_path / "model.tar.gz"
    result = build_test_package(output=out, backend="classic", target=DLC_PY312)
    assert result.kind == "tar.gz" and result.verification.ok, result.verification.problems
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert all(m.isfile() or m.isdir() for m in members.values())
        names = set(members)
        requirements = tar.extractfile("code/requirements.txt").read().decode()
        config = json.loads(tar.extractfile("langsam-config.json").read())
        manifest = json.loads(tar.extractfile("langsam-manifest.json").read())
    assert {"code/inference.py", "code/requirements.txt", "langsam-config.json"} <= names
    assert not any(n.startswith("weights/") for n in names)  # classic: no weights
    assert config["backend"] == "classic"
    assert "--no-index" in requirements and "--find-links ./wheels" in requirements
    reqs = _requirement_names(requirements)
    assert "langsam-studio" in reqs and not {"torch", "torchvision"} & set(reqs)
    wheels = [n for n in names if n.startswith("code/wheels/")]
    assert any("langsam_studio-" in w and w.endswith("py3-none-any.whl") for w in wheels)
    assert any("numpy-" in w and "cp312" in w for w in wheels)  # the container's Python, not ours
    assert not any(Path(w).name.startswith(("torch-", "torchvision-", "nvidia")) for w in wheels)
    assert set(manifest["files"]) == names - {"langsam-manifest.json"} - {n for n, m in members.items() if m.isdir()}
    assert "/code/wheels/langsam_studio-" in result.verification.handler_origin


def test_symlinked_weight_is_copied_as_a_file(build_test_package, tmp_path):
    import torch

    real = tmp_path / "store" / "real.pt"
    real.parent.mkdir()
    torch.save({"model": {"w": torch.arange(10)}}, real)
    link = tmp_path / "link.pt"
    link.symlink_to(real)
    result = build_test_package(
        output=tmp_path / "pkg",
        backend="sam2",
        sam2_model="sam2.1_hiera_tiny",
        sam2_checkpoint=link,
        target=TargetPython.local(),
        verify=False,
    )
    copied = result.path / "weights" / "sam2.1_hiera_tiny.pt"
    assert copied.is_file() and not copied.is_symlink()
    assert copied.read_bytes() == real.read_bytes()
    assert not any(p.is_symlink() for p in result.path.rglob("*"))
    config = json.loads((result.path / "langsam-config.json").read_text())
    assert config["checkpoint"] == "weights/sam2.1_hiera_tiny.pt" and config["model"] == "sam2.1_hiera_tiny"
    names = _requirement_names((result.path / "code" / "requirements.txt").read_text())
    assert "sam2" in names and "torch" not in names
    assert any(
        p.name.startswith("sam2-") and p.name.endswith("py3-none-any.whl")
        for p in (result.path / "code" / "wheels").iterdir()
    )


@pytest.fixture()
def broken_copy(local_classic_package, tmp_path):
    copy = tmp_path / "pkg"
    shutil.copytree(local_classic_package, copy)
    return copy


def test_verification_passes_the_fixture(local_classic_package):
    report = verify_package(local_classic_package)
    assert report.ok, report.problems
    assert report.files >= 8 and report.total_bytes > 1_000_000


def test_verification_catches_torch_in_requirements(broken_copy):
    req = broken_copy / "code" / "requirements.txt"
    req.write_text(req.read_text() + "torch==2.6.0\n")
    report = verify_package(broken_copy, import_check=False)
    assert not report.ok
    assert any("names torch" in p for p in report.problems)
    assert any("code/requirements.txt does not match its checksum" in p for p in report.problems)


def test_verification_catches_a_symlink(broken_copy):
    os.symlink(broken_copy / "langsam-config.json", broken_copy / "code" / "link.json")
    report = verify_package(broken_copy, import_check=False)
    assert any("code/link.json is a symlink" in p for p in report.problems)


def test_verification_catches_a_missing_wheel_and_import_failure(broken_copy):
    for wheel in (broken_copy / "code" / "wheels").glob("langsam_studio-*.whl"):
        wheel.unlink()
    report = verify_package(broken_copy)
    assert not report.ok
    assert any("needs langsam-studio but code/wheels/ has no wheel" in p for p in report.problems)
    assert any("does not import" in p or "not from the bundled wheel" in p for p in report.problems)


def test_verification_of_an_archive_with_a_symlink_member(local_classic_package, tmp_path):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for path in sorted(local_classic_package.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(local_classic_package).as_posix())
        info = tarfile.TarInfo("weights/model.pt")
        info.type, info.linkname = tarfile.SYMTYPE, "/home/me/model.pt"
        tar.addfile(info)
    report = verify_package(archive, import_check=False)
    assert any("weights/model.pt is a symlink" in p for p in report.problems)


def test_verification_of_a_truncated_archive(tmp_path):
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    report = verify_package(bad)
    assert not report.ok and "not a readable .tar.gz" in report.problems[0]


def test_the_project_wheel_is_built_from_the_checkout_root_and_holds_only_inference():
    import inspect

    from cloud.packaging.build import project_root
    from cloud.packaging.wheels import build_project_wheel

    root = project_root()
    assert (root / "pyproject.toml").is_file() and (root / "inference" / "__init__.py").is_file()
    assert inspect.signature(build_project_wheel).parameters["packages"].default == ("inference",)


def test_pip_resolution_failure_names_the_sdist_only_requirement():
    # the shape of pip's answer when hydra-core's antlr4 pin has no wheel for the target
    output = (
        "ERROR: Cannot install hydra-core==1.3.8 because these package versions have conflicting "
        "dependencies.\n\nThe conflict is caused by:\n    hydra-core 1.3.8 depends on "
        "antlr4-python3-runtime==4.9.*\n\nAdditionally, some packages in these conflicts have no "
        "matching distributions available for your environment:\n    antlr4-python3-runtime\n\n"
        "To fix this you could try to:\n1. loosen the range\n"
    )
    assert _missing_requirements(output) == ["antlr4-python3-runtime==4.9.*"]
    assert _missing_requirements("ERROR: No matching distribution found for iopath>=0.1.10\n") == ["iopath>=0.1.10"]


def test_refuses_torch_as_an_extra_requirement(build_test_package, tmp_path):
    from cloud.packaging.errors import PackagingError

    with pytest.raises(PackagingError, match="torch"):
        build_test_package(output=tmp_path / "p", backend="classic", extra_requirements=["torch==2.6.0"])
