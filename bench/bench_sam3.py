"""SAM 3 benchmark: the sam3 backend against SAM 2.1 hiera-tiny and against itself, same run.

    python -m bench sam3                   # full size (minutes, ~5 GB RAM)
    python -m bench.bench_sam3 --tiny      # the test-size model: proves the plumbing end to end
    BENCH_SAM3_TINY=1 python -m bench sam3

Random weights with the published architectures, built in memory by
:func:`inference.random_sam3.build_random_runtime` (no 3.4 GB download or file) and
:func:`inference.random_weights.write_random_sam2_checkpoint`; timings are real, outputs
meaningless. Rows (best of N wall-clock seconds; ratio = ours / baseline):

  vit vs sam2 encoder   sam3 encode (ViT + both necks)        vs sam2 encode (hiera-tiny)   (information: ~7-10x)
  text #2 vs text #1    text prompt, cached image, new phrase vs text prompt on a new image  target <= 0.15
  click vs sam2 click   sam3 click on a cached image          vs sam2 click on a cached image target <= 1.5
  bf16 vit vs fp32      sam3 encode with the ViT in bf16      vs fp32                        (+ relative drift
                                                                                            of the features)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

TARGETS = {"text_second": 0.15, "click": 1.5}


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(best wall seconds, best process CPU seconds, last output)."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return min(walls), min(cpus), out


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(768, 1024, 3), dtype=np.uint8)
    img[200:500, 300:700] = (200, 40, 40)
    return img


def _row(name: str, ours: tuple[float, float], base: tuple[float, float], target: float | None, **extra) -> dict:
    ratio = ours[0] / base[0] if base[0] > 0 else float("inf")
    cpu_ratio = ours[1] / base[1] if base[1] > 0 else float("inf")
    return {
        "name": name,
        "ours_s": ours[0],
        "baseline_s": base[0],
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "target": target,
        "met": None if target is None else ratio <= target,
        **extra,
    }


def _sam3_backend(runtime):
    from inference.backends import create_backend
    from inference.backends.sam3_backend import Sam3Backend

    backend = create_backend("sam3", device="cpu")
    assert isinstance(backend, Sam3Backend)  # the registry's "sam3"
    backend.runtime = runtime
    backend.device, backend.device_reason = runtime.device, "benchmark (random weights built in memory)"
    backend._install_cancel_hooks()
    backend._loaded = True
    return backend


def _drift(a, b) -> float:
    """Largest relative L2 difference over the FPN levels and tracker embeddings of two encodings."""
    worst = 0.0
    for x, y in zip(
        (*a.vision.fpn_hidden_states, *a.tracker_embeddings), (*b.vision.fpn_hidden_states, *b.tracker_embeddings)
    ):
        worst = max(worst, float((x.float() - y.float()).norm() / y.float().norm().clamp_min(1e-12)))
    return worst


def run(*, out_json: str | Path | None = None, tiny: bool | None = None, repeats: int | None = None) -> dict:
    import torch

    from inference.backends import create_backend
    from inference.prompts import Point, Prompt
    from inference.random_sam3 import build_random_runtime
    from inference.random_weights import write_random_sam2_checkpoint

    if tiny is None:
        tiny = os.environ.get("BENCH_SAM3_TINY", "") not in ("", "0")
    size: Literal["test", "full"] = "test" if tiny else "full"
    encode_repeats = repeats or (3 if tiny else 1)
    head_repeats = repeats or 3
    results: dict[str, Any] = {"size": size, "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "rows": []}

    with tempfile.TemporaryDirectory(prefix="bench-sam3-") as tmp:
        t0 = time.perf_counter()
        runtime = build_random_runtime(size, seed=0, tokenizer_dir=Path(tmp) / "tokenizer", vit_bf16=False)
        results["build_s"] = time.perf_counter() - t0
        results["params_m"] = round(
            (
                sum(p.numel() for p in runtime.detector.parameters())
                + sum(
                    p.numel()
                    for p in runtime.tracker.parameters()
                    if p.data_ptr() not in {q.data_ptr() for q in runtime.detector.vision_encoder.backbone.parameters()}
                )
            )
            / 1e6,
            1,
        )
        sam3 = _sam3_backend(runtime)
        sam2 = create_backend(
            "sam2",
            device="cpu",
            model="sam2.1_hiera_tiny",
            checkpoint=write_random_sam2_checkpoint(Path(tmp) / "sam2.1_hiera_tiny.pt"),
        )
        sam2.ensure_loaded()
        image = _image(0)
        counter = iter(range(10**6))

        def fresh(backend):  # an encode that cannot hit the cache
            return backend.embedding(image, f"bench-{next(counter)}")

        sam2_enc = _best(lambda: fresh(sam2), encode_repeats)
        sam3_enc = _best(lambda: fresh(sam3), encode_repeats)
        results["rows"].append(_row("vit vs sam2 encoder", sam3_enc[:2], sam2_enc[:2], None))

        # text: first prompt on a new image (ViT + text + heads) vs a new phrase on the cached image
        phrases = iter(f"red car {i}" for i in range(10**6))

        def text_first():
            sam3.embeddings.clear()
            return sam3.predict(image, Prompt(text=next(phrases)))

        def text_second():
            return sam3.predict(image, Prompt(text=next(phrases)))

        first = _best(text_first, encode_repeats)
        second = _best(text_second, head_repeats)
        results["rows"].append(
            _row("text #2 vs text #1", second[:2], first[:2], TARGETS["text_second"], timings=dict(second[2].timings))
        )

        # clicks on cached images
        key2, key3 = sam2.encode(image), sam3.encode(image)
        click = Prompt(points=(Point(x=400, y=300),))
        sam2_click = _best(lambda: sam2.predict(image, click, image_key=key2), head_repeats + 2)
        sam3_click = _best(lambda: sam3.predict(image, click, image_key=key3), head_repeats + 2)
        results["rows"].append(_row("click vs sam2 click", sam3_click[:2], sam2_click[:2], TARGETS["click"]))

        # bf16 ViT vs fp32 (same weights, converted in place and back)
        fp32_state = sam3_enc[2]
        backbone = runtime.detector.vision_encoder.backbone
        backbone.to(torch.bfloat16)
        runtime.vit_dtype = torch.bfloat16
        try:
            bf16 = _best(lambda: fresh(sam3), encode_repeats)
        finally:
            backbone.to(torch.float32)
            runtime.vit_dtype = torch.float32
        results["rows"].append(
            _row("bf16 vit vs fp32", bf16[:2], sam3_enc[:2], None, drift=_drift(bf16[2], fp32_state))
        )
        results["cache_bytes_per_image"] = int(fp32_state.nbytes)

    _print(results)
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(results, indent=2, default=str))
    return results


def _print(results: dict) -> None:
    print(
        f"SAM 3 size={results['size']} ({results['params_m']} M params, ViT shared)  threads={results['threads']} "
        f"(cpus {results['cpus']})  built in {results['build_s']:.1f} s  "
        f"cache {results['cache_bytes_per_image'] / 1e6:.1f} MB/image"
    )
    print(f"{'row':24} {'ours s':>9} {'base s':>9} {'ratio':>7} {'target':>7}  met   {'cpu ratio':>9}  extra")
    for r in results["rows"]:
        target = "" if r["target"] is None else f"{r['target']:.2f}"
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        extra = f"drift {r['drift']:.4f}" if "drift" in r else ""
        print(
            f"{r['name']:24} {r['ours_s']:9.3f} {r['baseline_s']:9.3f} {r['ratio']:7.2f} {target:>7}  {met:4}  "
            f"{r['cpu_ratio']:9.2f}  {extra}"
        )


if __name__ == "__main__":
    tiny_flag = "--tiny" in sys.argv[1:]
    name = "sam3_tiny.json" if tiny_flag else "sam3.json"
    run(out_json=Path(__file__).parent / "results" / name, tiny=tiny_flag)
