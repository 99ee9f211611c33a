"""Polygon simplification of the exporters: vertices per object and IoU against the mask.

For each shape, the exact pixel-edge polygons (``inference.masks.mask_to_polygons``, what COCO
polygons / YOLO-seg wrote before) against the Douglas-Peucker simplified ones at the default
tolerance (``DEFAULT_POLYGON_TOLERANCE`` pixels, ``mask_to_simple_polygons``) and at a few others:
vertices (outer rings and holes), the reduction ratio, the IoU of the rasterised simplified
polygons with the mask, and the baseline of plain Douglas-Peucker on the staircase corners.
Goal at the default tolerance: IoU >= 0.98 and >= 10x fewer vertices on smooth shapes.

    python -m bench polygons
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inference.masks import (
    DEFAULT_POLYGON_TOLERANCE,
    mask_to_polygons,
    mask_to_simple_polygons,
    polygons_to_mask,
    ring_area,
)

GOAL_IOU = 0.98
GOAL_RATIO = 10.0
OTHER_TOLERANCES = (0.5, 2.0)


def _disk(size: int, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    return (xx + 0.5 - c) ** 2 + (yy + 0.5 - c) ** 2 <= r * r


def shapes() -> dict[str, np.ndarray]:
    """The benchmark's masks (also used by tests/test_export_options.py)."""
    rect = np.zeros((300, 400), bool)
    rect[40:260, 30:370] = True
    ring = _disk(300, 120) & ~_disk(300, 60)
    yy, xx = np.mgrid[:400, :400]
    angle = np.arctan2(yy - 200, xx - 200)
    radius = 120 + 30 * np.sin(3 * angle) + 15 * np.cos(7 * angle + 1)
    blob = np.hypot(xx - 200, yy - 200) <= radius
    line = np.zeros((300, 300), bool)
    for t in np.linspace(0, 1, 2000):  # a 3-pixel wide diagonal stroke
        x, y = int(20 + 250 * t), int(30 + 230 * t)
        line[y - 1 : y + 2, x - 1 : x + 2] = True
    return {
        "disk r=20": _disk(60, 20),
        "disk r=100": _disk(240, 100),
        "disk r=400": _disk(840, 400),
        "rectangle": rect,
        "ring with hole": ring,
        "irregular blob": blob,
        "thin line": line,
    }


def vertices(polygons) -> int:
    return sum(len(outer) + sum(len(h) for h in holes) for outer, holes in polygons)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _plain_dp(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """approxPolyDP straight on the staircase corners (the baseline)."""
    approx = cv2.approxPolyDP(ring.reshape(-1, 1, 2).astype(np.float32), tolerance, True).reshape(-1, 2)
    return ring if len(approx) < 3 or ring_area(approx) <= 0 else approx.astype(np.float64)


def measure(mask: np.ndarray, tolerance: float, *, plain: bool = False) -> dict[str, Any]:
    h, w = mask.shape
    exact = mask_to_polygons(mask)
    start = time.perf_counter()
    if plain:
        simple = [(_plain_dp(o, tolerance), [_plain_dp(x, tolerance) for x in hs]) for o, hs in exact]
    else:
        simple = mask_to_simple_polygons(mask, tolerance=tolerance)
    seconds = time.perf_counter() - start
    before, after = vertices(exact), vertices(simple)
    return {
        "vertices_before": before,
        "vertices_after": after,
        "ratio": round(before / max(after, 1), 1),
        "iou": round(iou(polygons_to_mask(simple, height=h, width=w), mask), 4),
        "holes": sum(len(holes) for _, holes in simple),
        "holes_before": sum(len(holes) for _, holes in exact),
        "ms": round(seconds * 1000, 2),
    }


def run(*, out_json: str | os.PathLike[str] | None = None) -> dict:
    rows: dict[str, Any] = {}
    print(
        f"default tolerance {DEFAULT_POLYGON_TOLERANCE} px; goal IoU >= {GOAL_IOU}, >= {GOAL_RATIO:g}x fewer vertices"
    )
    header = f"{'shape':<16}{'before':>8}{'after':>8}{'ratio':>8}{'IoU':>8}{'holes':>7}"
    header += "".join(f"{f'after@{t:g}':>10}{f'IoU@{t:g}':>9}" for t in OTHER_TOLERANCES)
    header += f"{'plainDP':>9}{'IoU':>8}{'ms':>7}"
    print(header)
    for name, mask in shapes().items():
        row = measure(mask, DEFAULT_POLYGON_TOLERANCE)
        row["other"] = {str(t): measure(mask, t) for t in OTHER_TOLERANCES}
        row["plain_dp"] = measure(mask, DEFAULT_POLYGON_TOLERANCE, plain=True)
        rows[name] = row
        line = (
            f"{name:<16}{row['vertices_before']:>8}{row['vertices_after']:>8}{row['ratio']:>7}x"
            f"{row['iou']:>8.4f}{row['holes']:>4}/{row['holes_before']:<2}"
        )
        line += "".join(f"{o['vertices_after']:>10}{o['iou']:>9.4f}" for o in row["other"].values())
        line += f"{row['plain_dp']['vertices_after']:>9}{row['plain_dp']['iou']:>8.4f}{row['ms']:>7.1f}"
        print(line)
    result = {"suite": "polygons", "tolerance": DEFAULT_POLYGON_TOLERANCE, "shapes": rows}
    if out_json is not None:
        Path(out_json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    run()
