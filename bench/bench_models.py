"""Model benchmark: our sam2/langsam backends against a Lang-SAM-equivalent reference, same run.

    python -m bench models            # or: python -m bench.bench_models

Random weights with the real architectures (SAM 2.1 hiera-tiny, Grounding DINO tiny) written by
:mod:`inference.random_weights`; timings are real, outputs meaningless. To keep the run within a
few minutes both Grounding DINO paths use shortest edge 512 / longest 853 instead of 800/1333
(set in the model folder's processor config, so both read the same setting).

Rows (best of N wall-clock seconds, ratio = ours / baseline):
  encoder        backend encode (SAM 2 image encoder)  vs  fp32 GEMM floor = encoder FLOPs / GEMM FLOP/s
  encoder (ref)  SAM2ImagePredictor.set_image          vs  the same floor
  first click    backend predict on a new image        vs  set_image + predict
  further click  backend predict on a cached image     vs  bare predictor.predict (decoder only)
  text #1        langsam predict, new image            vs  Lang-SAM path (GDINO forward + set_image_batch + decode)
  text #2        langsam predict, same image, new text vs  Lang-SAM path for that text
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

TARGETS = {"further_click": 1.15, "text_second": 0.6, "text_first": 1.0, "encoder": 1.5}
GDINO_SIZE = {"shortest_edge": 512, "longest_edge": 853}
TEXTS = ("car. person.", "dog.")
KEEP = 3  # detections per prompt (threshold chosen from the raw scores; random weights detect hundreds)


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(768, 1024, 3), dtype=np.uint8)
    img[200:500, 300:700] = (200, 40, 40)
    return img


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    seconds, _ = _best(lambda: torch.mm(a, b), repeats)
    return 2 * n**3 / seconds / 1e9


def encoder_gflop(model, image: np.ndarray) -> float:
    import torch
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    from torch.utils.flop_counter import FlopCounterMode

    x = SAM2ImagePredictor(model)._transforms(image)[None]
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.forward_image(x)
    return counter.get_total_flops() / 1e9


def _write_models(root: Path) -> tuple[Path, Path]:
    from inference.random_weights import write_random_gdino, write_random_sam2_checkpoint

    sam = write_random_sam2_checkpoint(root / "sam2.1_hiera_tiny.pt", model_id="sam2.1_hiera_tiny")
    gdino = write_random_gdino(root / "grounding-dino-tiny", size="tiny")
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = gdino / name
        if path.is_file():
            data = json.loads(path.read_text())
            target = data.get("image_processor", data)
            target["size"] = dict(GDINO_SIZE)
            path.write_text(json.dumps(data, indent=2))
    return sam, gdino


class Reference:
    """Lang-SAM v0.2.3's way: fresh set_image per image, one GDINO forward per prompt, no caches."""

    def __init__(self, sam_ckpt: Path, gdino_dir: Path) -> None:
        from sam2.sam2_image_predictor import SAM2ImagePredictor
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        from inference.sam2_model import build_sam2_model

        self.model = build_sam2_model("sam2.1_hiera_tiny", checkpoint=sam_ckpt, device="cpu",
                                      postprocessing=False)
        self.predictor = SAM2ImagePredictor(self.model)
        self.processor = AutoProcessor.from_pretrained(gdino_dir, local_files_only=True)
        self.gdino = AutoModelForZeroShotObjectDetection.from_pretrained(gdino_dir, local_files_only=True).eval()

    def raw_scores(self, image, text) -> np.ndarray:
        return np.sort(self.detect(image, text, 0.0)["scores"].numpy())[::-1]

    def detect(self, image, text, threshold):
        import torch
        from PIL import Image

        pil = Image.fromarray(image)
        inputs = self.processor(images=[pil], text=[text], padding=True, return_tensors="pt")
        with torch.no_grad():
            outputs = self.gdino(**inputs)
        return self.processor.post_process_grounded_object_detection(
            outputs, inputs.input_ids, threshold, text_threshold=0.25, target_sizes=[pil.size[::-1]])[0]

    def text(self, image, text, threshold) -> dict:
        r = self.detect(image, text, threshold)
        out = {"boxes": r["boxes"].numpy(), "scores": r["scores"].numpy(), "labels": list(r["text_labels"])}
        if len(out["scores"]):
            self.predictor.set_image_batch([image])
            masks, scores, _ = self.predictor.predict_batch(box_batch=[out["boxes"]], multimask_output=False)
            out["masks"] = masks[0].reshape(len(out["scores"]), *image.shape[:2])
            out["mask_scores"] = np.asarray(scores[0]).reshape(-1)
        return out

    def first_click(self, image, point):
        self.predictor.set_image(image)
        return self.predictor.predict(point_coords=point, point_labels=np.array([1]), multimask_output=True)

    def bare_click(self, point, logits):
        return self.predictor.predict(point_coords=point, point_labels=np.array([1]), mask_input=logits,
                                      multimask_output=True)


def run(*, out_json: str | Path | None = None, repeats: int = 3) -> dict:
    import torch

    from inference.backends import create_backend
    from inference.prompts import Point, Prompt

    results: dict[str, Any] = {"threads": torch.get_num_threads(), "gdino_size": GDINO_SIZE,
                               "notes": "random weights, real architectures; CPU; best of N"}
    rows: list[tuple[str, float, float, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        sam_ckpt, gdino_dir = _write_models(Path(tmp))
        ref = Reference(sam_ckpt, gdino_dir)
        backend = create_backend("langsam", device="cpu", model="sam2.1_hiera_tiny", checkpoint=sam_ckpt,
                                 gdino_path=gdino_dir)
        backend.ensure_loaded()
        images = [_image(i) for i in range(repeats + 1)]
        point = np.array([[500.0, 350.0]], dtype=np.float32)

        # -- encoder vs the GEMM floor ---------------------------------------------------------
        gflops = gemm_gflops()
        flop = encoder_gflop(ref.model, images[0])
        floor = flop / gflops
        t_ref_enc, _ = _best(lambda: ref.predictor.set_image(images[0]), repeats)
        t_enc = min(backend.embedding(im, backend.image_key(im)).seconds for im in images[:repeats])
        results.update(gemm_gflops=gflops, encoder_gflop=flop, encoder_floor_s=floor)
        rows += [("encoder (ours)", t_enc, floor, TARGETS["encoder"]),
                 ("encoder (upstream set_image)", t_ref_enc, floor, None)]

        # -- clicks ----------------------------------------------------------------------------
        fresh = images[repeats]
        t_ref_first, (_, _, logits) = _best(lambda: ref.first_click(fresh, point), 1)
        backend.embeddings.clear()
        t_first, _ = _best(lambda: backend.predict(fresh, Prompt(points=(Point(x=500, y=350),))), 1)
        rows.append(("first click", t_first, t_ref_first, None))
        best_logits = logits[0][None]
        t_bare, _ = _best(lambda: ref.bare_click(point, best_logits), repeats * 3)
        prompt = Prompt(points=(Point(x=500, y=350),), mask_input=best_logits[0])
        t_click, _ = _best(lambda: backend.predict(fresh, prompt), repeats * 3)
        rows.append(("further click", t_click, t_bare, TARGETS["further_click"]))

        # -- text prompts ----------------------------------------------------------------------
        thresholds = []
        for text in TEXTS:
            thresholds.append(_threshold_keeping(ref.raw_scores(fresh, text), KEEP))
        t_ref_texts = []
        ref_outputs = []
        for text, thr in zip(TEXTS, thresholds):
            t, out = _best(lambda: ref.text(fresh, text, thr), 1)
            t_ref_texts.append(t)
            ref_outputs.append(out)
        backend.embeddings.clear()
        backend.pixel_inputs.clear()
        backend.gdino.backbone_cache.clear()
        ours = []
        for text, thr in zip(TEXTS, thresholds):
            t, pred = _best(lambda: backend.predict(fresh, Prompt(text=text, box_threshold=thr)), 1)
            ours.append((t, pred))
        rows.append(("text prompt #1 (new image)", ours[0][0], t_ref_texts[0], TARGETS["text_first"]))
        rows.append(("text prompt #2 (same image)", ours[1][0], t_ref_texts[1], TARGETS["text_second"]))
        results["text_first_identical"] = _identical(ours[0][1], ref_outputs[0])
        results["text_second_identical"] = _identical(ours[1][1], ref_outputs[1])
        results["detections"] = [len(p.candidates) for _, p in ours]

    results["rows"] = [{"name": n, "ours_s": a, "baseline_s": b, "ratio": a / b, "target": t,
                        "met": None if t is None else a / b <= t} for n, a, b, t in rows]
    _print(results)
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(results, indent=2))
    return results


def _threshold_keeping(scores: np.ndarray, keep: int) -> float:
    """A box threshold between two distinct scores keeping about ``keep`` detections.

    Random weights give many tied scores (sigmoid saturates at 1.0): pick the gap nearest to
    ``keep`` (at least one detection).
    """
    s = np.sort(scores)[::-1]
    gaps = [k for k in range(1, len(s)) if s[k - 1] > s[k]]
    if not gaps:
        return float(s[0]) - 1e-6 if len(s) else 0.5
    small = [g for g in gaps if g <= keep]
    k = max(small) if small else min(gaps)
    return float((s[k - 1] + s[k]) / 2)


def _identical(pred, ref: dict) -> bool:
    """Same boxes, scores, labels and masks as the reference (order: by score, as ours sorts)."""
    order = np.argsort(-ref["scores"], kind="stable")
    if len(pred.candidates) != len(order):
        return False
    for cand, i in zip(pred.candidates, order):
        if (cand.label != ref["labels"][i] or cand.box_score != float(ref["scores"][i])
                or not np.array_equal(np.array(cand.box, np.float32), _clip(ref["boxes"][i], ref["masks"].shape))
                or not np.array_equal(cand.mask, ref["masks"][i].astype(bool))
                or cand.score != float(ref["mask_scores"][i])):
            return False
    return True


def _clip(box: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    height, width = shape[-2:]
    return np.array([min(max(box[0], 0), width), min(max(box[1], 0), height),
                     min(max(box[2], 0), width), min(max(box[3], 0), height)], np.float32)


def _print(results: dict) -> None:
    print(f"threads={results['threads']}  GEMM {results['gemm_gflops']:.1f} GFLOP/s  encoder "
          f"{results['encoder_gflop']:.1f} GFLOP -> floor {results['encoder_floor_s']:.2f} s  "
          f"GDINO size {GDINO_SIZE}")
    print(f"{'row':32} {'ours s':>9} {'base s':>9} {'ratio':>7} {'target':>7}  met")
    for r in results["rows"]:
        target = "" if r["target"] is None else f"{r['target']:.2f}"
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(f"{r['name']:32} {r['ours_s']:9.3f} {r['baseline_s']:9.3f} {r['ratio']:7.2f} {target:>7}  {met}")
    print(f"text #1 identical to reference: {results['text_first_identical']}; "
          f"text #2: {results['text_second_identical']}; detections {results['detections']}")


if __name__ == "__main__":
    run(out_json=Path(__file__).parent / "results" / "models.json")
