"""Check a model package (directory or ``model.tar.gz``) before it is uploaded.

What is checked: the required files; no symlinks, hard links, devices, absolute or ``..`` paths
(they break SageMaker's extraction); ``code/requirements.txt`` installs offline and names no
package the container provides (torch ...); every requirement has a bundled wheel; the weights
named in ``langsam-config.json`` are there and not empty; every file matches the checksum
manifest; and the entry point imports in a fresh interpreter with the bundled pure-Python wheels
on the path and exposes the four handler functions.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cloud.packaging.shim import HANDLER_FUNCTIONS
from cloud.packaging.wheels import is_dlc_provided, normalize_name, wheel_name_version
from inference.weights.integrity import sha256_file

MANIFEST_NAME = "langsam-manifest.json"
CONFIG_NAME = "langsam-config.json"  # == inference.sagemaker_handler.CONFIG_NAME (kept light)
REQUIRED = ("code/inference.py", "code/requirements.txt", CONFIG_NAME, MANIFEST_NAME)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    problems: tuple[str, ...]
    files: int
    total_bytes: int
    weights_bytes: int
    handler_origin: str | None

    def summary(self) -> str:
        head = f"{self.files} files, {self.total_bytes / 1e6:.1f} MB (weights {self.weights_bytes / 1e6:.1f} MB)"
        if self.ok:
            return f"package verified: {head}; handler imports from {self.handler_origin}"
        return "package verification FAILED:\n  - " + "\n  - ".join(self.problems) + f"\n({head})"


def build_manifest(root: Path, *, meta: Mapping[str, object]) -> dict:
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel != MANIFEST_NAME:
            files[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return {"format": 1, **meta, "files": files}


def _bad_name(name: str) -> bool:
    p = PurePosixPath(name)
    return p.is_absolute() or ".." in p.parts


def _walk_dir(root: Path) -> Iterator[tuple[str, str, Path]]:
    """(relative name, kind, path) for everything under ``root``; kind: file, dir, symlink, other."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                yield rel, "symlink", path
            elif path.is_dir():
                yield rel, "dir", path
            elif path.is_file():
                yield rel, "file", path
            else:
                yield rel, "other", path


def layout_problem(path: str | os.PathLike) -> str | None:
    """A cheap first look (no checksums, no import, no decompressing the whole archive): why
    ``path`` cannot be a model package, or ``None``. For a ``.tar.gz`` only the first header is
    read; :func:`verify_package` does the thorough check."""
    root = Path(path)
    if not root.exists():
        return f"{root} does not exist"
    if root.is_dir():
        absent = [name for name in REQUIRED if not (root / name).is_file()]
        if absent:
            return (
                f"{root} is not a model package folder: it lacks {', '.join(absent)} "
                "(build one with `langsam-studio deploy package`)"
            )
        return None
    if not root.is_file():
        return f"{root} is neither a file nor a folder"
    if not root.name.endswith((".tar.gz", ".tgz")):
        return f"{root} is not a model package: expected a model.tar.gz or a package folder"
    if root.stat().st_size == 0:
        return f"{root} is empty"
    try:
        with tarfile.open(root, "r:gz") as tar:
            tar.next()  # reads the first member's header only
    except (tarfile.TarError, OSError, EOFError) as exc:
        return f"{root} is not a readable .tar.gz archive ({exc})"
    return None


def verify_package(path: str | os.PathLike, *, import_check: bool = True, python: str = sys.executable) -> VerifyReport:
    """Verify a package directory or ``.tar.gz``; never raises for a bad package."""
    root = Path(path)
    if root.is_dir():
        return _verify_dir(root, import_check=import_check, python=python)
    if root.is_file():
        return _verify_archive(root, import_check=import_check, python=python)
    return VerifyReport(
        ok=False, problems=(f"{root} does not exist",), files=0, total_bytes=0, weights_bytes=0, handler_origin=None
    )


def _verify_dir(root: Path, *, import_check: bool, python: str) -> VerifyReport:
    problems: list[str] = []
    sizes: dict[str, int] = {}
    hashes: dict[str, str] = {}
    for rel, kind, p in _walk_dir(root):
        if kind == "symlink":
            problems.append(f"{rel} is a symlink (SageMaker cannot extract it): copy the file instead")
        elif kind == "other":
            problems.append(f"{rel} is not a regular file")
        elif kind == "file":
            sizes[rel] = p.stat().st_size
            if rel != MANIFEST_NAME:
                hashes[rel] = sha256_file(p)
    texts = {name: (root / name).read_text(encoding="utf-8") for name in REQUIRED if name in sizes}
    origin = None
    problems += _check_contents(sizes, hashes, texts)
    if import_check and "code/inference.py" in sizes:
        origin, problem = _import_check(root / "code", python=python)
        problems += [problem] if problem else []
    return _report(problems, sizes, origin)


def _verify_archive(archive: Path, *, import_check: bool, python: str) -> VerifyReport:
    problems: list[str] = []
    sizes: dict[str, int] = {}
    hashes: dict[str, str] = {}
    texts: dict[str, str] = {}
    origin = None
    try:
        with tarfile.open(archive, "r:*") as tar, tempfile.TemporaryDirectory(prefix="langsam-verify-") as tmp:
            for member in tar:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if _bad_name(name):
                    problems.append(f"{member.name}: absolute or '..' path in the archive")
                    continue
                if member.issym() or member.islnk():
                    problems.append(
                        f"{name} is a {'symlink' if member.issym() else 'hard link'} "
                        "(SageMaker cannot extract it): add the file itself"
                    )
                    continue
                if member.isdir():
                    continue
                if not member.isfile():
                    problems.append(f"{name} is not a regular file")
                    continue
                sizes[name] = member.size
                fh = tar.extractfile(member)
                assert fh is not None  # None only for members that are not regular files, skipped above
                h = hashlib.sha256()
                keep = name.startswith("code/") and import_check
                text: list[bytes] | None = [] if name in REQUIRED else None  # kept from this one pass
                with contextlib.ExitStack() as stack:
                    out = (
                        stack.enter_context(open(Path(tmp, name), "wb"))
                        if keep and _mkparent(Path(tmp, name))
                        else None
                    )
                    for chunk in iter(functools.partial(fh.read, _CHUNK), b""):
                        h.update(chunk)
                        if out:
                            out.write(chunk)
                        if text is not None:
                            text.append(chunk)
                if text is not None:
                    texts[name] = b"".join(text).decode("utf-8")
                if name != MANIFEST_NAME:
                    hashes[name] = h.hexdigest()
            problems += _check_contents(sizes, hashes, texts)
            if import_check and "code/inference.py" in sizes:
                origin, problem = _import_check(Path(tmp, "code"), python=python)
                problems += [problem] if problem else []
    except (tarfile.TarError, OSError, EOFError) as exc:
        problems.append(f"{archive} is not a readable .tar.gz: {exc}")
    return _report(problems, sizes, origin)


def _mkparent(path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    return True


def _report(problems: list[str], sizes: Mapping[str, int], origin: str | None) -> VerifyReport:
    weights = sum(s for n, s in sizes.items() if n.startswith("weights/"))
    return VerifyReport(
        ok=not problems,
        problems=tuple(problems),
        files=len(sizes),
        total_bytes=sum(sizes.values()),
        weights_bytes=weights,
        handler_origin=origin,
    )


def _check_contents(sizes: Mapping[str, int], hashes: Mapping[str, str], texts: Mapping[str, str]) -> list[str]:
    problems = [f"{name} is missing" for name in REQUIRED if name not in sizes]
    if "code/requirements.txt" in texts:
        problems += _check_requirements(texts["code/requirements.txt"], sizes)
    if CONFIG_NAME in texts:
        problems += _check_config(texts[CONFIG_NAME], sizes)
    if MANIFEST_NAME in texts:
        problems += _check_manifest(texts[MANIFEST_NAME], sizes, hashes)
    return problems


def _check_requirements(text: str, sizes: Mapping[str, int]) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    problems = []
    options, names = set(), []
    for raw in text.splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.add(" ".join(line.split()))
            continue
        try:
            names.append(normalize_name(Requirement(line).name))
        except InvalidRequirement:
            problems.append(f"code/requirements.txt: cannot parse {line!r}")
    if "--no-index" not in options or "--find-links ./wheels" not in options:
        problems.append("code/requirements.txt must install offline: it needs '--no-index' and '--find-links ./wheels'")
    for name in names:
        if is_dlc_provided(name):
            problems.append(
                f"code/requirements.txt names {name}, which the container provides: "
                "installing it would replace the container's build at every start"
            )
    wheels = {wheel_name_version(Path(n))[0]: n for n in sizes if n.startswith("code/wheels/") and n.endswith(".whl")}
    for name in names:
        if name not in wheels:
            problems.append(f"code/requirements.txt needs {name} but code/wheels/ has no wheel of it")
    for name, file in wheels.items():
        if is_dlc_provided(name):
            problems.append(f"{file} would replace the container's {name}")
        if sizes[file] == 0:
            problems.append(f"{file} is empty")
    return problems


def _check_config(text: str, sizes: Mapping[str, int]) -> list[str]:
    try:
        config = json.loads(text)
    except ValueError as exc:
        return [f"{CONFIG_NAME} is not JSON: {exc}"]
    problems = []
    backend = config.get("backend") if isinstance(config, dict) else None
    if backend not in ("classic", "sam2", "langsam", "sam3"):
        return [f"{CONFIG_NAME} names no known backend (got {backend!r})"]
    if backend in ("sam2", "langsam"):
        ckpt = config.get("checkpoint")
        if not ckpt or sizes.get(ckpt, 0) == 0:
            problems.append(f"the SAM 2 checkpoint {ckpt!r} named in {CONFIG_NAME} is missing or empty")
    if backend == "sam3":
        folder = (config.get("checkpoint") or "weights/sam3").rstrip("/")
        if f"{folder}/config.json" not in sizes:
            problems.append(f"the SAM 3 folder {folder!r} named in {CONFIG_NAME} is missing or has no config.json")
        elif not sizes.get(f"{folder}/model.safetensors"):
            problems.append(f"the SAM 3 folder {folder!r} has no model.safetensors")
    if backend == "langsam":
        gdino = config.get("gdino_path") or ""
        inside = [n for n in sizes if n.startswith(gdino.rstrip("/") + "/")]
        if not gdino or f"{gdino.rstrip('/')}/config.json" not in sizes:
            problems.append(
                f"the Grounding DINO directory {gdino!r} named in {CONFIG_NAME} is missing or has no config.json"
            )
        elif not any(sizes[n] > 0 and n.endswith((".safetensors", ".bin")) for n in inside):
            problems.append(f"the Grounding DINO directory {gdino!r} has no weights file")
    return problems


def _check_manifest(text: str, sizes: Mapping[str, int], hashes: Mapping[str, str]) -> list[str]:
    try:
        listed = json.loads(text)["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{MANIFEST_NAME} is unreadable: {exc}"]
    problems = []
    for name, entry in listed.items():
        if name not in sizes:
            problems.append(f"{name} is listed in the manifest but missing")
        elif sizes[name] != entry.get("size") or hashes.get(name) != entry.get("sha256"):
            problems.append(f"{name} does not match its checksum in the manifest (changed or truncated)")
    for name in sizes:
        if name != MANIFEST_NAME and name not in listed:
            problems.append(f"{name} is not in the manifest")
    return problems


_IMPORT_SCRIPT = f"""
import importlib, json, sys
code_dir, wheels = sys.argv[1], sys.argv[2:]
sys.path[:0] = [code_dir, *wheels]
module = importlib.import_module("inference")
handler = sys.modules.get("inference.sagemaker_handler")
print(json.dumps({{"missing": [n for n in {HANDLER_FUNCTIONS!r} if not callable(getattr(module, n, None))],
                  "handler": getattr(handler, "__file__", None)}}))
"""


def _import_check(code_dir: Path, *, python: str) -> tuple[str | None, str | None]:
    """Import the entry point as the toolkit does; returns (handler file, problem)."""
    wheels = sorted(str(p) for p in (code_dir / "wheels").glob("*-none-any.whl"))
    with tempfile.TemporaryDirectory(prefix="langsam-import-") as cwd:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc = subprocess.run(
            [python, "-I", "-B", "-c", _IMPORT_SCRIPT, str(code_dir), *wheels],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=300,
        )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return None, f"code/inference.py does not import: {last}"
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, f"the import check printed no result: {proc.stdout[-300:]}"
    if result["missing"]:
        return result["handler"], f"code/inference.py lacks {', '.join(result['missing'])}"
    handler = result["handler"] or ""
    if str(code_dir / "wheels") not in handler:
        return handler, (
            f"the handler imported from {handler}, not from the bundled wheel: the package does not carry its own code"
        )
    return handler, None
