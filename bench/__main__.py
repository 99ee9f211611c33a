"""Run the benchmarks and write JSON results to bench/results/.

    python -m bench            # all of them
    python -m bench models     # one or several by name

Each benchmark module exposes ``run(*, out_json=None) -> dict``, prints its own table with
ratios against a baseline measured in the same run, and writes its JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

SUITES = {
    "models": "bench.bench_models",
    "app": "bench.bench_app",
    "server": "bench.bench_server",
    "startup": "bench.bench_startup",
    "remote": "bench.bench_remote",
    "sam3": "bench.bench_sam3",
    "polygons": "bench.bench_polygons",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "suites", nargs="*", metavar="SUITE", help=f"which benchmarks ({', '.join(SUITES)}); default all"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    names = args.suites or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    failed = []
    for name in names:
        print(f"\n=== bench {name} ===", flush=True)
        module = importlib.import_module(SUITES[name])
        try:
            summary[name] = module.run(out_json=args.out / f"{name}.json")
        except Exception as exc:  # report and go on with the other suites
            print(f"bench {name} failed: {exc!r}", file=sys.stderr)
            failed.append(name)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nresults in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
