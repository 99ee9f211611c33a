"""``langsam-studio segment`` with the SAM 2 and Lang-SAM backends, found through the weights
store (per-model overrides pointing at the random-weight tiny checkpoints of fixtures_models).

Random weights make the masks meaningless; what is checked is the plumbing: the backend finds
its weights by itself, runs on every image, and the export holds what it returned.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from desktop_app.cli.main import main

# each test loads a model and encodes one image on the CPU (~5 s alone, far more on a busy machine)
pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"), pytest.mark.slow]


@pytest.fixture
def photos(tmp_path):
    from fixtures_models import make_test_image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(make_test_image(1)).save(folder / "p1.png")
    return folder


def test_sam2_backend_points_to_labelme(photos, tmp_path, capsys, tiny_sam2_checkpoint):
    from inference.weights import WeightsStore

    WeightsStore().set_override("sam2.1_hiera_tiny", tiny_sam2_checkpoint)
    out = tmp_path / "out"
    code = main(
        [
            "segment",
            str(photos),
            "--point",
            "40,30",
            "--backend",
            "sam2",
            "--model",
            "sam2.1_hiera_tiny",
            "--device",
            "cpu",
            "--format",
            "labelme",
            "--out",
            str(out),
            "--label",
            "thing",
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "segmented 1 image, found 1 object" in captured.out  # points: the best alternative
    data = json.loads((out / "p1.json").read_text())
    assert (data["imageWidth"], data["imageHeight"]) == (128, 96)
    assert data["shapes"] and {s["label"] for s in data["shapes"]} == {"thing"}


def test_langsam_backend_text_to_coco(photos, tmp_path, capsys, tiny_sam2_checkpoint, tiny_gdino_dir):
    from inference.backends.langsam_backend import DEFAULT_GDINO_MODEL
    from inference.weights import WeightsStore

    store = WeightsStore()
    store.set_override("sam2.1_hiera_tiny", tiny_sam2_checkpoint)
    store.set_override(DEFAULT_GDINO_MODEL, tiny_gdino_dir)
    out = tmp_path / "out"
    # random weights detect nothing at normal thresholds; 0 lets every query box through
    code = main(
        [
            "segment",
            str(photos),
            "--text",
            "square. thing.",
            "--model",
            "sam2.1_hiera_tiny",
            "--device",
            "cpu",
            "--box-threshold",
            "0",
            "--text-threshold",
            "0",
            "--max-detections",
            "3",
            "--format",
            "coco",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "segment (langsam)" not in captured.err  # --no-progress
    data = json.loads((out / "annotations.json").read_text())
    assert [i["file_name"] for i in data["images"]] == ["p1.png"]
    names = [c["name"] for c in data["categories"]]
    assert names[:2] == ["square", "thing"]  # the prompt's phrases, in order, are the classes
    per_image = [sum(a["image_id"] == i["id"] for a in data["annotations"]) for i in data["images"]]
    assert all(n <= 3 for n in per_image)
    for ann in data["annotations"]:
        assert ann["area"] > 0 and np.isfinite(ann["score"])
