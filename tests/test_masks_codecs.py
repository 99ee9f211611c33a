"""inference.masks: RLE, polygons with holes (pixel-corner convention), boxes."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from inference.masks import (
    flat_to_ring,
    join_rings,
    mask_bbox,
    mask_to_polygons,
    mask_to_rle,
    polygons_to_mask,
    ring_area,
    ring_to_flat,
    rle_area,
    rle_bbox,
    rle_to_mask,
    xyxy_to_xywh,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


# -- RLE --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (64, 48)])
def test_rle_round_trip_random(shape):
    rng = np.random.default_rng(sum(shape))
    mask = rng.random(shape) < 0.4
    rle = mask_to_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == list(shape)
    assert np.array_equal(rle_to_mask(rle), mask)
    assert rle_area(rle) == mask.sum()


def test_rle_empty_and_full_masks():
    empty = np.zeros((10, 20), bool)
    assert not rle_to_mask(mask_to_rle(empty)).any()
    assert rle_area(mask_to_rle(empty)) == 0 and rle_bbox(mask_to_rle(empty)) is None
    full = np.ones((10, 20), bool)
    assert rle_to_mask(mask_to_rle(full)).all()
    assert rle_bbox(mask_to_rle(full)) == (0, 0, 20, 10)


def test_rle_accepts_non_contiguous_and_integer_masks():
    base = np.random.default_rng(3).random((40, 60)) < 0.5
    view = base[::2, 1::3]  # strided, neither C nor F contiguous
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    assert np.array_equal(rle_to_mask(mask_to_rle(view)), view)
    transposed = base.T
    assert np.array_equal(rle_to_mask(mask_to_rle(transposed)), transposed)
    as_int = base.astype(np.uint8) * 255
    assert np.array_equal(rle_to_mask(mask_to_rle(as_int)), base)


def test_rle_uncompressed_counts_and_bytes():
    mask = np.zeros((4, 3), bool)
    mask[1:3, 1] = True  # column-major runs: 5 off, 2 on, 5 off
    assert np.array_equal(rle_to_mask({"size": [4, 3], "counts": [5, 2, 5]}), mask)
    encoded = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert np.array_equal(rle_to_mask(encoded), mask)


@pytest.mark.parametrize(
    "bad",
    [
        {"size": [4, 4]},
        {"size": [4], "counts": "0"},
        {"size": [4, 4], "counts": [3, 3]},
        {"size": [50, 50], "counts": "0"},
        {"size": [2, 2], "counts": "0T^2"},
        {"size": [2, 2], "counts": "\u00e9"},
        {"size": [2, 2], "counts": 5},
    ],
)
def test_rle_rejects_malformed_input_with_a_message(bad):
    with pytest.raises(ValueError, match="RLE"):
        rle_to_mask(bad)


def test_rle_bbox_matches_mask_bbox():
    mask = np.zeros((30, 40), bool)
    mask[5:9, 12:31] = True
    assert rle_bbox(mask_to_rle(mask)) == mask_bbox(mask) == (12, 5, 31, 9)
    assert xyxy_to_xywh((12, 5, 31, 9)) == [12.0, 5.0, 19.0, 4.0]


# -- boxes ------------------------------------------------------------------------------------
def test_bbox_single_pixel_and_border():
    mask = np.zeros((5, 6), bool)
    assert mask_bbox(mask) is None
    mask[0, 5] = True
    assert mask_bbox(mask) == (5, 0, 6, 1)
    mask[4, 0] = True
    assert mask_bbox(mask) == (0, 0, 6, 5)


# -- polygons ---------------------------------------------------------------------------------
def test_rectangle_is_four_corner_vertices_and_exact():
    mask = np.zeros((20, 30), bool)
    mask[3:11, 5:25] = True
    polys = mask_to_polygons(mask)
    assert len(polys) == 1
    outer, holes = polys[0]
    assert holes == []
    assert sorted(map(tuple, outer.tolist())) == sorted([(5, 3), (25, 3), (25, 11), (5, 11)])
    assert ring_area(outer) == mask.sum()
    assert np.array_equal(polygons_to_mask(polys, height=20, width=30), mask)


def test_pycocotools_agrees_with_the_corner_convention():
    mask = np.zeros((20, 30), bool)
    mask[3:11, 5:25] = True
    ((outer, _),) = mask_to_polygons(mask)
    rle = coco_mask.frPyObjects([ring_to_flat(outer)], 20, 30)
    assert np.array_equal(coco_mask.decode(coco_mask.merge(rle)).astype(bool), mask)


def test_single_pixel_and_full_image_masks():
    mask = np.zeros((4, 4), bool)
    mask[2, 1] = True
    ((outer, holes),) = mask_to_polygons(mask)
    assert len(outer) == 4 and ring_area(outer) == 1 and holes == []
    assert np.array_equal(polygons_to_mask(mask_to_polygons(mask), height=4, width=4), mask)
    full = np.ones((7, 9), bool)  # touches every border
    ((outer, _),) = mask_to_polygons(full)
    assert outer.min() == 0 and outer[:, 0].max() == 9 and outer[:, 1].max() == 7
    assert polygons_to_mask(mask_to_polygons(full), height=7, width=9).all()


def test_empty_mask_has_no_polygons():
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []
    assert not polygons_to_mask([], height=5, width=5).any()


def test_ring_with_a_hole_and_an_island_inside_it():
    mask = np.zeros((40, 40), bool)
    mask[2:38, 2:38] = True
    mask[10:30, 10:30] = False  # hole
    mask[15:25, 15:25] = True  # island in the hole
    polys = mask_to_polygons(mask)
    assert len(polys) == 2
    with_hole = [p for p in polys if p[1]]
    assert len(with_hole) == 1 and len(with_hole[0][1]) == 1
    assert np.array_equal(polygons_to_mask(polys, height=40, width=40), mask)


def test_diagonal_pixels_and_touching_border_round_trip():
    mask = np.eye(6, dtype=bool)  # pixels touching only at corners: one 8-connected piece
    polys = mask_to_polygons(mask)
    assert len(polys) == 1
    assert np.array_equal(polygons_to_mask(polys, height=6, width=6), mask)
    border = np.zeros((10, 10), bool)
    border[0, :] = border[:, 0] = border[9, :] = border[:, 9] = True
    polys = mask_to_polygons(border)
    assert len(polys) == 1 and len(polys[0][1]) == 1
    assert np.array_equal(polygons_to_mask(polys, height=10, width=10), border)


def test_random_masks_round_trip_exactly_with_axis_aligned_edges():
    rng = np.random.default_rng(7)
    for _ in range(300):
        h, w = rng.integers(1, 18, size=2)
        mask = rng.random((h, w)) < rng.random()
        polys = mask_to_polygons(mask)
        for outer, holes in polys:
            for ring in [outer, *holes]:
                steps = np.diff(np.vstack([ring, ring[:1]]), axis=0)
                assert np.all((steps[:, 0] == 0) | (steps[:, 1] == 0))  # pixel edges only
        assert np.array_equal(polygons_to_mask(polys, height=h, width=w), mask)


def test_non_contiguous_mask_polygons():
    base = _disc(80, 80, 40, 40, 30)
    view = base[::2, ::2]
    assert np.array_equal(polygons_to_mask(mask_to_polygons(view), height=40, width=40), view)


def test_simplified_disc_keeps_high_iou_with_few_vertices():
    mask = _disc(200, 220, 110, 100, 70)
    exact = mask_to_polygons(mask)
    simple = mask_to_polygons(mask, epsilon=1.0)
    assert len(simple[0][0]) < len(exact[0][0]) / 3
    assert _iou(polygons_to_mask(simple, height=200, width=220), mask) > 0.98


def test_min_area_drops_specks():
    mask = np.zeros((30, 30), bool)
    mask[5:20, 5:20] = True
    mask[25, 25] = True
    assert len(mask_to_polygons(mask)) == 2
    assert len(mask_to_polygons(mask, min_area=4)) == 1


def test_polygons_to_mask_accepts_plain_rings_and_clips_outside_image():
    ring = np.array([[-5, -5], [5, -5], [5, 5], [-5, 5]], float)
    mask = polygons_to_mask([ring], height=10, width=10)
    assert mask.sum() == 25 and mask[:5, :5].all()
    assert not polygons_to_mask([np.array([[0, 0], [3, 3]], float)], height=5, width=5).any()
    far = np.array([[50, 50], [60, 50], [60, 60]], float)
    assert not polygons_to_mask([far], height=10, width=10).any()


def test_join_rings_encodes_pieces_and_holes_in_one_ring():
    rng = np.random.default_rng(11)
    for _ in range(150):
        h, w = rng.integers(2, 20, size=2)
        mask = rng.random((h, w)) < rng.random()
        ring = join_rings(mask_to_polygons(mask))
        if ring is None:
            assert not mask.any()
            continue
        assert np.array_equal(polygons_to_mask([ring], height=h, width=w), mask)
        decoded = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([ring_to_flat(ring)], h, w)))
        assert np.array_equal(decoded.astype(bool), mask)  # pycocotools reads it the same way


def test_flat_ring_conversion():
    ring = flat_to_ring([0, 0, 2.5, 0, 2.5, 1])
    assert ring.shape == (3, 2)
    assert ring_to_flat(ring) == [0.0, 0.0, 2.5, 0.0, 2.5, 1.0]
    with pytest.raises(ValueError):
        flat_to_ring([0, 0, 1])
    with pytest.raises(ValueError):
        flat_to_ring([0, 0, float("nan"), 1])


def test_speckled_mask_with_thousands_of_holes_round_trips():
    noise = np.random.default_rng(5).random((200, 200)) < 0.5  # ~10k rings
    polys = mask_to_polygons(noise)
    assert sum(len(holes) for _, holes in polys) > 500
    assert np.array_equal(polygons_to_mask(polys, height=200, width=200), noise)


def test_float_polygon_uses_pixel_centres():
    tri = np.array([[0, 0], [8, 0], [0, 8]], float)
    mask = polygons_to_mask([tri], height=10, width=10)
    assert mask[0].sum() == 7 and mask[6].sum() == 1 and mask[7].sum() == 0  # centres on x+y=8 are out
    decoded = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([ring_to_flat(tri)], 10, 10)))
    assert np.array_equal(mask, decoded.astype(bool))
