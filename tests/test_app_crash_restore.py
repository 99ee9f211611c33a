"""Kill the app with SIGKILL right after an edit: reopening the folder loses at most that edit.

The app runs in a subprocess and is driven by mouse and keys like a person (one edit a second);
after each edit it prints the document as it is in memory. The test kills it the moment the
last edit is reported and compares what is on disk with the last two reported states, exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from desktop_app.core.annotation.project import ProjectFolder
from inference.masks import rle_to_mask

pytestmark = [pytest.mark.gui, pytest.mark.slow]  # the app in a subprocess, one edit a second

CHILD = r"""
import json, sys, time
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from inference.masks import mask_to_rle

app = QApplication([])
from desktop_app.gui.app import create_window

window = create_window([sys.argv[1]])
window.show()

def spin(seconds, until=lambda: False):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        app.processEvents()
        time.sleep(0.01)
    return until()

assert spin(30, lambda: window.current_name == "img1.png" and window.controller.backend_info is not None)
canvas = window.canvas

def click(x, y):
    p = canvas.to_screen(x, y)
    QTest.mouseClick(
        canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(round(p.x()), round(p.y()))
    )

def accept():
    n = len(window.controller.document.objects)
    assert spin(15, lambda: window.controller.candidates is not None)
    QTest.keyClick(canvas, Qt.Key.Key_Return)
    assert spin(5, lambda: len(window.controller.document.objects) == n + 1)

def report(k):
    doc = window.controller.document
    state = {o.id: [o.label, mask_to_rle(o.mask)] for o in doc.objects}
    print(json.dumps({"edit": k, "image": doc.image_name, "objects": state}), flush=True)

edits = [
    lambda: (click(55, 55), accept()),                 # red rectangle
    lambda: QTest.keyClick(canvas, Qt.Key.Key_2),      # label it with digit 2
    lambda: (click(150, 90), accept()),                # blue disk
    lambda: QTest.keyClick(canvas, Qt.Key.Key_Delete), # delete it again
    lambda: (click(150, 90), accept()),                # and once more
]
for k, edit in enumerate(edits, start=1):
    edit()
    report(k)
    spin(1.0)  # a person's pace
spin(60)
"""


def _state(line: dict) -> dict:
    return {oid: (label, rle_to_mask(rle)) for oid, (label, rle) in line["objects"].items()}


def _same(disk: dict, state: dict) -> bool:
    return disk.keys() == state.keys() and all(
        disk[k][0] == state[k][0] and np.array_equal(disk[k][1], state[k][1]) for k in state
    )


@pytest.mark.parametrize("kill_after", [3, 5])
def test_kill_minus_nine_loses_at_most_the_last_edit(synthetic_folder, tmp_path, kill_after):
    folder = synthetic_folder.folder
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANGSAM_STUDIO_HOME=str(tmp_path / "home"))
    # a label set with "red" second, so that digit 2 means red
    from desktop_app.core.annotation.labels import LabelSet

    ProjectFolder(folder).save_labels(LabelSet(["object", "red"]))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder)],
        env=env,
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    states: list[dict] = []
    try:
        deadline = time.monotonic() + 90
        while len(states) < kill_after and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            states.append(json.loads(line))
        proc.send_signal(signal.SIGKILL)  # right after the last reported edit
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(states) == kill_after, proc.stderr.read()[-3000:]

    disk_doc = ProjectFolder(folder).load("img1.png")
    disk = {o.id: (o.label, o.mask) for o in disk_doc.objects}
    last, before = _state(states[-1]), _state(states[-2])
    assert _same(disk, last) or _same(disk, before), (
        f"on disk: {sorted(disk)}; last edit: {sorted(last)}; the one before: {sorted(before)}"
    )
    red_id = next(iter(_state(states[0])))
    assert disk[red_id][0] == "red"  # the digit-key relabel (edit 2) survived


# -- navigation and failed saves (issue 8) --------------------------------------------------------
CHILD_NAV = (
    CHILD.split("edits = [")[0]
    + r"""
import errno
import desktop_app.core.annotation.project as project_module
from desktop_app.core.annotation.atomic import SaveError

real_write = project_module.write_bytes_atomic
full = {"on": False}

def write(path, data):
    if full["on"]:
        raise SaveError(errno.ENOSPC, f"could not save '{path}': the disk is full")
    return real_write(path, data)

project_module.write_bytes_atomic = write
window.autosaver.retry_delays_ms = (200,)

def go(key, name):
    QTest.keyClick(canvas, key)
    assert spin(10, lambda: window.current_name == name and window.controller.document is not None
                and window.controller.document.image_name == name)

def full_disk_edit():
    full["on"] = True
    click(150, 90); accept()
    assert spin(5, lambda: window.file_list.model.note("img1.png") == "not saved")
    full["on"] = False  # space freed: the retry must write it
    assert spin(10, lambda: window.file_list.model.note("img1.png") == "")

edits = [
    lambda: (click(55, 55), accept()),                      # img1: red rectangle
    lambda: (go(Qt.Key.Key_D, "img2.png"), click(100, 75), accept()),  # img2: green
    lambda: (go(Qt.Key.Key_A, "img1.png"), QTest.keyClick(canvas, Qt.Key.Key_2)),  # img1: relabel red
    full_disk_edit,                                          # img1: blue disk, saved after a retry
    lambda: (go(Qt.Key.Key_D, "img2.png"), QTest.keyClick(canvas, Qt.Key.Key_Delete)),  # img2: delete green
]
for k, edit in enumerate(edits, start=1):
    edit()
    report(k)
    spin(1.0)
spin(60)
"""
)


@pytest.mark.parametrize("kill_after", [2, 4, 5])
def test_kill_minus_nine_with_navigation_and_a_full_disk(synthetic_folder, tmp_path, kill_after):
    folder = synthetic_folder.folder
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANGSAM_STUDIO_HOME=str(tmp_path / "home"))
    from desktop_app.core.annotation.labels import LabelSet

    ProjectFolder(folder).save_labels(LabelSet(["object", "red"]))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD_NAV, str(folder)],
        env=env,
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    states: list[dict] = []
    try:
        deadline = time.monotonic() + 120
        while len(states) < kill_after and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            states.append(json.loads(line))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(states) == kill_after, proc.stderr.read()[-3000:]
    # per image: what is on disk is its last reported state, or for the image of the very last
    # edit, the state before that edit
    last_by_image: dict[str, list[dict]] = {}
    for line in states:
        last_by_image.setdefault(line["image"], []).append(line)
    project = ProjectFolder(folder)
    for image, lines in last_by_image.items():
        disk = {o.id: (o.label, o.mask) for o in project.load(image).objects}
        ok = _same(disk, _state(lines[-1]))
        if not ok and image == states[-1]["image"]:
            before = _state(lines[-2]) if len(lines) > 1 else {}
            ok = _same(disk, before)
        assert ok, f"{image}: on disk {sorted(disk)}; reported {[sorted(_state(x)) for x in lines]}"
