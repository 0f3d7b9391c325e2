"""Progress output (gan4rec._progress): long steps log start and end, quiet silences them, bars stay optional."""

from __future__ import annotations

import logging
import threading

import pytest

import gan4rec._progress as progress_mod
from gan4rec._progress import format_duration, progress, set_enabled, step

LOGGER = "gan4rec.test_progress"


def _messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= level]


def test_a_long_step_logs_its_start_and_its_end_with_the_duration(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with step("EASE Gram (9 items)", logging.getLogger(LOGGER), threshold=0) as timer:
        assert _messages(caplog) == ["EASE Gram (9 items): started"]  # before the work, not after
    lines = _messages(caplog)
    assert len(lines) == 2 and lines[1].startswith("EASE Gram (9 items): done in ")
    assert lines[1].endswith(" s") and timer.seconds >= 0


def test_a_step_announces_itself_while_it_runs_once_past_the_threshold(caplog) -> None:
    """The start line comes from a timer while the block is still busy (here: waiting for that very line)."""
    announced = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "still running" in record.getMessage():
                announced.set()

    log = logging.getLogger(LOGGER)
    watch = Watch()
    log.addHandler(watch)
    caplog.set_level(logging.INFO, logger=LOGGER)
    try:
        with step("slow", log, threshold=0.01):
            assert announced.wait(30), "the start line never came"
    finally:
        log.removeHandler(watch)
    lines = _messages(caplog)
    assert lines[0].startswith("slow: started ") and lines[0].endswith(" ago, still running")
    assert lines[1].startswith("slow: done in ")


def test_a_short_step_logs_only_a_debug_line(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with step("quick", logging.getLogger(LOGGER), threshold=3600):
        pass
    assert _messages(caplog) == []
    assert [m for m in _messages(caplog, logging.DEBUG) if m.startswith("quick: done in ")]


def test_log_end_false_leaves_the_end_to_the_caller(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with step("epoch 1/3", logging.getLogger(LOGGER), threshold=0, log_end=False):
        pass
    assert _messages(caplog, logging.DEBUG) == ["epoch 1/3: started"]


def test_a_step_that_raises_still_logs_its_end(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with pytest.raises(RuntimeError), step("failing", logging.getLogger(LOGGER), threshold=0):
        raise RuntimeError("boom")
    assert [m.split(" in ")[0] for m in _messages(caplog)] == ["failing: started", "failing: done"]


def test_quiet_level_silences_steps(caplog) -> None:
    """What the CLI's --quiet does: the gan4rec logger at WARNING."""
    caplog.set_level(logging.DEBUG)  # a handler that would see anything that got through
    root = logging.getLogger("gan4rec")
    previous = root.level
    root.setLevel(logging.WARNING)
    try:
        assert not progress_mod.enabled(logging.getLogger(LOGGER))
        with step("silent", logging.getLogger(LOGGER), threshold=0) as timer:
            pass
    finally:
        root.setLevel(previous)
    assert _messages(caplog, logging.DEBUG) == [] and timer.seconds >= 0


def test_the_switch_silences_steps_at_any_level(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    previous = set_enabled(False)
    try:
        assert not progress_mod.enabled(logging.getLogger(LOGGER))
        with step("silent", logging.getLogger(LOGGER), threshold=0):
            pass
    finally:
        set_enabled(previous)
    assert _messages(caplog, logging.DEBUG) == []
    assert progress_mod.enabled(logging.getLogger(LOGGER))


@pytest.mark.parametrize("on", [True, False])
def test_progress_passes_every_item_through(on: bool, caplog) -> None:
    """Off a terminal (pytest captures stderr) the bar is off; quiet or not, the items come through."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    previous = set_enabled(on)
    try:
        out = list(progress(iter(range(5)), desc="x", total=5, logger=logging.getLogger(LOGGER)))
    finally:
        set_enabled(previous)
    assert out == [0, 1, 2, 3, 4]


def test_format_duration() -> None:
    assert format_duration(4.25) == "4.2 s"
    assert format_duration(42.4) == "42 s"
    assert format_duration(150) == "2.5 min"
    assert format_duration(3 * 3600) == "3.0 h"
