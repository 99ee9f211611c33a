"""The local dry run of a Ray Serve package, started the way AWS's Ray Serve SageMaker image starts it.

Marked ``dlc`` (never in parallel: it starts a Ray head node). The Python 3.13 environment with
``ray[serve]`` is created once per machine (fixture ``ray_venv``); with CI=true a missing Python
3.13 or an unreachable package index fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from desktop_app.cli.deploy_package_command import default_request
from fixtures_package import _skip_or_fail, package_test_cache

pytestmark = [pytest.mark.dlc, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_venv():
    from cloud.dry_run.ray_venv import RayEnvUnavailable, ensure_ray_venv

    try:
        return ensure_ray_venv(parent=package_test_cache() / "ray-venv", log=lambda _m: None)
    except RayEnvUnavailable as exc:
        _skip_or_fail(f"the Ray Serve environment cannot be created here: {exc}")


@pytest.fixture(scope="module")
def ray_classic_package(package_cache_dir, tmp_path_factory) -> Path:
    from cloud.packaging.errors import PackageIndexUnreachable
    from cloud.packaging.ray import RayServeOptions, build_ray_package

    out = tmp_path_factory.mktemp("raypkg") / "classic-ray"
    try:
        return build_ray_package(
            output=out,
            backend="classic",
            options=RayServeOptions(num_replicas=2),
            cache_dir=package_cache_dir,
            log=lambda _m: None,
        ).path
    except PackageIndexUnreachable as exc:
        _skip_or_fail(str(exc))


def _codes(result) -> set[str]:
    return {d.code for d in result.diagnosis}


def test_classic_package_serves_with_two_replicas_and_session_affinity(ray_classic_package, ray_venv):
    from cloud.dry_run.ray import run_ray_dry_run

    body, content_type = default_request(backend="classic")
    result = run_ray_dry_run(
        package=ray_classic_package,
        venv=ray_venv,
        request_body=body,
        content_type=content_type,
        affinity_sessions=6,
        log=lambda _m: None,
    )
    print(result.summary())
    assert result.ok, result.summary() + "\n" + "\n".join(result.log_excerpts.values())
    assert result.status_code == 200 and result.app_status == "RUNNING"
    assert 0 < result.healthz_seconds <= result.first_answer_seconds < 180
    aff = result.affinity
    assert aff["sessions"] == 6 and aff["replicas_seen"] >= 1
    # the consistent-hash router pins each session id's clicks to one replica
    assert aff["followups_on_one_replica"] == aff["sessions"], aff
    # clicks on the opening replica find the image: no re-encode there
    assert aff["re_encodes"] <= aff["clicks_after_first"] * (aff["sessions"] - aff["opened_on_same_replica"]), aff
    # the opening replica picks session ids the router maps back to itself; a stray session is
    # adopted with one re-upload on its first click: never a re-encode on the second+ clicks
    assert aff["re_encodes_later_clicks"] == 0, aff
    assert aff["opened_on_same_replica"] >= aff["sessions"] - 1 and aff["re_encodes"] <= 1, aff


def test_failing_init_is_deploy_failed_behind_a_healthy_ping(ray_classic_package, ray_venv, tmp_path):
    from cloud.dry_run.ray import run_ray_dry_run

    package = tmp_path / "pkg"
    shutil.copytree(ray_classic_package, package)
    # a sam2 config whose checkpoint is missing: __init__ raises WeightsMissingError
    (package / "langsam-config.json").write_text(
        json.dumps({"format": 1, "backend": "sam2", "checkpoint": "weights/missing.pt", "device": "cpu"})
    )
    body, content_type = default_request(backend="classic")
    result = run_ray_dry_run(
        package=package,
        venv=ray_venv,
        request_body=body,
        content_type=content_type,
        invoke_limit=45,
        wait_limit=120,
        log=lambda _m: None,
    )
    print(result.summary())
    assert not result.ok
    assert result.healthz_seconds is not None  # /ping said healthy ...
    assert result.app_status == "DEPLOY_FAILED"  # ... while the app failed to deploy
    assert "RAY_DEPLOY_FAILED_BEHIND_PING" in _codes(result), result.summary()


def test_failing_requirement_stops_the_container(ray_classic_package, ray_venv, tmp_path):
    from cloud.dry_run.ray import run_ray_dry_run

    package = tmp_path / "pkg"
    shutil.copytree(ray_classic_package, package)
    req = package / "code" / "requirements.txt"
    req.write_text(req.read_text() + "no-such-package-langsam-test==1.0\n")
    body, content_type = default_request(backend="classic")
    result = run_ray_dry_run(
        package=package, venv=ray_venv, request_body=body, content_type=content_type, log=lambda _m: None
    )
    assert not result.ok and "RAY_REQUIREMENTS_FAILED" in _codes(result), result.summary()
    assert "no-such-package-langsam-test" in result.summary()
