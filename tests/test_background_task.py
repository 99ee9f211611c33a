"""The one-job-at-a-time runner of the dialogs and the deploy tracker
(:class:`desktop_app.gui.dialogs.background.BackgroundTask`)."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from desktop_app.gui.dialogs.background import BackgroundTask


def test_the_next_job_may_start_as_soon_as_the_last_one_returned(qtbot):
    """A slot of ``finished`` (the wizard's Next) may start the next step while the old thread is
    still sending its last signal: that used to be refused ("a job is already running") and the
    step silently never started."""
    task = BackgroundTask()
    release = threading.Event()
    # runs in the job's thread after its result: holds that thread alive, as a busy machine may
    task.ended.connect(lambda: release.wait(10), Qt.ConnectionType.DirectConnection)
    results: list[int] = []
    task.finished.connect(results.append)
    task.start(lambda report, cancel: 1)
    qtbot.waitUntil(lambda: results == [1], timeout=5_000)
    assert task._thread is not None and task._thread.is_alive()
    assert not task.running  # the job is over
    threading.Timer(0.2, release.set).start()
    task.start(lambda report, cancel: 2)
    qtbot.waitUntil(lambda: results == [1, 2], timeout=5_000)


def test_a_running_job_still_refuses_a_second_one(qtbot):
    task = BackgroundTask()
    go = threading.Event()
    task.start(lambda report, cancel: go.wait(10))
    try:
        assert task.running
        with pytest.raises(RuntimeError, match="already running"):
            task.start(lambda report, cancel: None)
    finally:
        go.set()
    assert task.wait(5) and not task.running
