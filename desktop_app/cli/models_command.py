"""``langsam-studio models``: list, download, verify and locate model weights.

Exit codes: 0 success, 1 a download/verification failed, 2 usage (unknown model id, bad option).
"""

from __future__ import annotations

import argparse
import sys

HELP = "list, download, verify and locate model weights (SAM 2.1, Grounding DINO, SAM 3)"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        metavar="FOLDER",
        help="models folder to use (default: $LANGSAM_STUDIO_MODELS or the user cache folder)",
    )
    sub = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    sub.add_parser("list", help="show every known model, its size, licence and whether it is installed")
    dl = sub.add_parser("download", help="download models (resumes interrupted downloads)")
    dl.add_argument("ids", nargs="+", metavar="ID", help="model id(s), see `langsam-studio models list`")
    dl.add_argument("--force", action="store_true", help="download again even if installed")
    dl.add_argument("--no-hub", action="store_true", help="skip the Hugging Face Hub, use the direct URLs")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    dl.add_argument(
        "--accept-licence",
        "--accept-license",
        action="store_true",
        dest="accept_licence",
        help="accept the licence of a model that is not open source (SAM 3: the SAM License) "
        "without being asked; needed when nobody can answer the question (scripts, CI)",
    )
    ver = sub.add_parser("verify", help="check installed models (size, sha256, file format)")
    ver.add_argument("ids", nargs="*", metavar="ID", help="model id(s); default: every installed model")
    ver.add_argument("--fast", action="store_true", help="skip sha256 (size and format checks only)")
    path = sub.add_parser("path", help="print where a model lives (or the models folder), or set a local copy")
    path.add_argument("id", nargs="?", metavar="ID")
    group = path.add_mutually_exclusive_group()
    group.add_argument(
        "--set",
        metavar="PATH",
        dest="set_path",
        help="use this local file (SAM 2) or folder (Grounding DINO, SAM 3) for ID",
    )
    group.add_argument("--clear", action="store_true", help="forget the local copy chosen for ID")


def _store(args: argparse.Namespace):
    from inference.weights import WeightsStore

    return WeightsStore(cache_dir=args.dir) if args.dir else WeightsStore()


def _folder_problem(store) -> str | None:
    """Why the models folder cannot be used (a file sits at its path), or ``None``."""
    folder = store.cache_dir
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                return (
                    f"the models folder {folder} cannot be used: {parent} is a file, not a folder "
                    "(choose another with --dir or $LANGSAM_STUDIO_MODELS)"
                )
            return None
    return None


def _unknown(ids: list[str]) -> list[str]:
    from inference.weights import is_known, model_ids

    bad = [i for i in ids if not is_known(i)]
    if bad:
        print(f"error: unknown model {', '.join(bad)}; known models: {', '.join(model_ids())}", file=sys.stderr)
    return bad


def _size(spec) -> str:
    return f"{'~' if not spec.size_exact else ''}{spec.size_bytes / 1e6:,.0f} MB"


def _list(args: argparse.Namespace) -> int:
    from inference.weights import default_backend_name, get_model, model_ids

    store = _store(args)
    print(f"models folder: {store.cache_dir}")
    rows = [("ID", "KIND", "SIZE", "LICENCE", "STATE", "PATH")]
    for model_id in model_ids():
        spec = get_model(model_id)
        state = store.state(model_id)
        where = store.local_path(model_id) or (store.target_path(model_id) if state == "partial" else "")
        rows.append((spec.id, spec.kind, _size(spec), spec.licence, state, str(where)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    print(f"default backend with these models: {default_backend_name(store)}")
    return EXIT_OK


def _hub_token() -> str | None:
    """The Hugging Face token: the settings' secret store (keyring, file or session; HF_TOKEN and
    HUGGING_FACE_HUB_TOKEN first), else HF_TOKEN itself. Never printed."""
    import os

    from desktop_app.core import secrets
    from inference.errors import StudioError

    try:
        secret = secrets.default_store().get("huggingface/token")
    except (StudioError, OSError):  # an unusable keyring: the environment still counts
        secret = None
    return secret.value if secret is not None else (os.environ.get("HF_TOKEN") or None)


def _licence_accepted(spec, args: argparse.Namespace) -> bool | None:
    """Show a non-open licence (name and link) and ask, BEFORE anything is downloaded.

    True: accepted (asked, or --accept-licence); False: declined; None: nobody can be asked and
    --accept-licence was not given. Open-source models (Apache-2.0) are not asked about."""
    if not (spec.gated or spec.licence_url):
        return True
    link = spec.licence_url or f"https://huggingface.co/{spec.hub_repo}"
    print(f"{spec.id}: {spec.display_name} is under the {spec.licence} (not an open-source licence): {link}")
    if spec.gated:
        print(
            f"{spec.id}: the Hugging Face Hub also asks you to accept it there with your account, and "
            "then needs a token (Settings > Hugging Face, or HF_TOKEN)"
        )
    if args.accept_licence:
        print(f"{spec.id}: licence accepted with --accept-licence")
        return True
    if not (sys.stdin is not None and sys.stdin.isatty()):
        return None
    try:
        answer = input(f"Do you accept the {spec.licence} for {spec.id}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from inference.errors import Cancelled, InferenceError
    from inference.weights import get_model
    from inference.weights.download import WeightsAccessError

    if _unknown(args.ids):
        return EXIT_USAGE
    store = _store(args)
    failed = 0
    wanted = []
    for model_id in dict.fromkeys(args.ids):  # every licence question first: nothing is downloaded before
        spec = get_model(model_id)
        if not args.force and store.state(model_id) in ("installed", "override"):
            print(f"{model_id}: already installed at {store.local_path(model_id)}")
            continue
        accepted = _licence_accepted(spec, args)
        if accepted is None:
            print(
                f"error: {model_id} needs its licence accepted ({spec.licence}: "
                f"{spec.licence_url or spec.hub_repo}); nobody can be asked here, so pass --accept-licence. "
                "Nothing was downloaded.",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if not accepted:
            print(f"{model_id}: licence not accepted; not downloaded", file=sys.stderr)
            failed += 1
            continue
        wanted.append(spec)
    token = _hub_token() if any(spec.gated for spec in wanted) else None
    from inference import weights as weights_module  # looked up at call time (tests point it at a fake Hub)

    for spec in wanted:
        model_id = spec.id
        bar = (
            None
            if args.quiet
            else tqdm(
                desc=model_id,
                unit="B",
                unit_scale=True,
                unit_divisor=1000,
                total=spec.size_bytes if spec.size_exact else None,
                leave=True,
            )
        )

        def progress(done: int, total: int | None, bar=bar) -> None:
            if bar is None:
                return
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        error: InferenceError | None = None
        try:
            path = weights_module.download(
                model_id,
                store=store,
                progress=progress,
                force=args.force,
                use_hub=not args.no_hub,
                token=token if spec.gated else None,
            )
        except InferenceError as exc:  # Cancelled and WeightsMissingError included
            error = exc
        finally:
            if bar is not None:
                bar.close()
        if isinstance(error, WeightsAccessError):  # 401/403 on a gated model: one sentence
            print(f"{model_id}: {error}", file=sys.stderr)
            failed += 1
            continue
        if error is not None:
            verb = "stopped" if isinstance(error, Cancelled) else "download failed"
            print(f"{model_id}: {verb}. {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{model_id}: installed at {path}")
    return EXIT_FAILED if failed else EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from inference.weights import model_ids

    store = _store(args)
    if args.ids:
        if _unknown(args.ids):
            return EXIT_USAGE
        ids = list(dict.fromkeys(args.ids))
    else:
        ids = [i for i in model_ids() if store.local_path(i) is not None]
        if not ids:
            print(f"no models installed in {store.cache_dir}; download one with `langsam-studio models download ID`")
            return EXIT_OK
    failed = 0
    for model_id in ids:
        result = store.verify(model_id, hash_files=not args.fast)
        if result.ok:
            print(f"{result.message} [{result.path}]")
        else:
            failed += 1
            print(result.message, file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _path(args: argparse.Namespace) -> int:
    from inference.errors import InferenceError

    store = _store(args)
    if args.id is None:
        if args.set_path or args.clear:
            print("error: --set and --clear need a model ID", file=sys.stderr)
            return EXIT_USAGE
        print(store.cache_dir)
        return EXIT_OK
    if _unknown([args.id]):
        return EXIT_USAGE
    if args.set_path:
        try:
            chosen = store.set_override(args.id, args.set_path)
        except InferenceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        print(f"{args.id}: using {chosen}")
        return EXIT_OK
    if args.clear:
        store.clear_override(args.id)
        print(f"{args.id}: local copy forgotten; using {store.target_path(args.id)}")
        return EXIT_OK
    path = store.local_path(args.id)
    if path is None:
        print(store.target_path(args.id))
        print(f"{args.id} is not installed yet ({store.state(args.id)}): that is where it goes", file=sys.stderr)
        return EXIT_FAILED
    print(path)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    actions = {"list": _list, "download": _download, "verify": _verify, "path": _path}
    problem = _folder_problem(_store(args))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return actions[args.models_action](args)
    except OSError as exc:  # the models folder or overrides.json cannot be written (disk full, read-only)
        print(f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return EXIT_FAILED
