"""One label-colour policy: a detected phrase keeps its colour when it joins the label set."""

from __future__ import annotations

import pytest

from desktop_app.core.annotation.labels import LabelSet
from desktop_app.core.palette import DEFAULT_PALETTE, label_color, new_label_color, palette_color


def _assigned(labels: LabelSet) -> dict[str, str]:
    return {label.name: label.color for label in labels}


@pytest.mark.parametrize("existing", [[], ["cat"], ["cat", "dog", "person"], [f"l{i}" for i in range(30)]])
@pytest.mark.parametrize("phrase", ["car", "traffic light", "Person", "a red mug"])
def test_phrase_colour_before_and_after_accepting_is_the_same(existing, phrase):
    labels = LabelSet(existing)
    before = label_color(phrase, _assigned(labels))  # what the canvas shows for the detected phrase
    labels.add(phrase)  # the user accepts it
    after = label_color(labels.names[-1], _assigned(labels))
    assert before == after == labels.get(labels.names[-1]).color


def test_colours_in_a_set_stay_distinct_and_stable():
    labels = LabelSet([f"label {i}" for i in range(len(DEFAULT_PALETTE) * 2)])
    colours = [label.color for label in labels]
    assert len(set(colours)) == len(colours)
    assert LabelSet([f"label {i}" for i in range(len(DEFAULT_PALETTE) * 2)]) == labels  # same on every run


def test_name_picks_the_slot_case_and_spacing_ignored():
    assert new_label_color("Traffic  light") == new_label_color("traffic light")
    assert new_label_color("car") in DEFAULT_PALETTE
    taken = new_label_color("car")
    assert new_label_color("car", taken=[taken]) != taken


def test_shades_after_the_base_colours():
    assert palette_color(0) == DEFAULT_PALETTE[0]
    assert palette_color(len(DEFAULT_PALETTE)) not in DEFAULT_PALETTE
    every = [palette_color(i) for i in range(len(DEFAULT_PALETTE) * 4)]
    assert new_label_color("x", taken=every) in every  # all used: shares, never fails


def test_canvas_shows_a_phrase_in_its_future_colour(qapp):
    from desktop_app.gui.canvas.image_canvas import ImageCanvas

    labels = LabelSet(["cat", "dog"])
    canvas = ImageCanvas()
    try:
        canvas.set_label_colours({label.name: label.rgb for label in labels})  # as the label editor does
        before = canvas.colour_for("car")
        labels.add("car")
        canvas.set_label_colours({label.name: label.rgb for label in labels})
        assert canvas.colour_for("car") == before == labels.get("car").rgb
        assert canvas.scene().label_colours == {label.name: label.color for label in labels}
    finally:
        canvas.deleteLater()
