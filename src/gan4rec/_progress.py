"""Progress of long work: start and end lines for long steps, tqdm bars on a terminal.

Two tools, one rule for when they speak:

- :func:`step` wraps one long call (EASE's Gram matrix, an evaluation, an epoch). A step that runs past
  :data:`LONG_STEP_SECONDS` logs ``"<name>: started ..."`` at INFO while it runs (from a timer thread, so
  the line appears during a silent minute of LAPACK) and ``"<name>: done in 61.2 s"`` when it ends.
  A shorter step logs one DEBUG line at its end, so quick fits and tests stay quiet.
- :func:`progress` wraps a loop of known length in a tqdm bar when stderr is a terminal; elsewhere (logs,
  CI, pipes) it is a plain pass-through, and the steps' lines are the record.

Both speak only while the caller's logger is enabled for INFO and :func:`set_enabled` has not turned them
off. The CLI's ``--quiet`` sets the ``gan4rec`` logger to WARNING, which silences both; a library user sees
bars and step lines after ``logging.basicConfig(level=logging.INFO)`` (or any INFO handler on ``gan4rec``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["LONG_STEP_SECONDS", "StepTimer", "enabled", "format_duration", "progress", "set_enabled", "step"]

T = TypeVar("T")

#: A step that runs longer than this many seconds logs its start and its end at INFO.
LONG_STEP_SECONDS = 5.0

_ENABLED = True
_ROOT = "gan4rec"


def set_enabled(on: bool) -> bool:
    """Turn step lines and progress bars on or off for the whole process; returns the previous setting."""
    global _ENABLED
    previous, _ENABLED = _ENABLED, bool(on)
    return previous


def enabled(logger: logging.Logger | None = None) -> bool:
    """Whether progress output is on: :func:`set_enabled` allows it and ``logger`` is enabled for INFO."""
    return _ENABLED and (logger or logging.getLogger(_ROOT)).isEnabledFor(logging.INFO)


def format_duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``: a duration for a log line."""
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def progress(
    iterable: Iterable[T],
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    logger: logging.Logger | None = None,
) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on a TTY; a plain pass-through elsewhere or when quiet.

    ``logger`` (default: the ``gan4rec`` logger) decides quietness, see :func:`enabled`.
    """
    if not enabled(logger):
        yield from iterable
        return
    from tqdm.auto import tqdm

    # disable=None makes tqdm turn itself off when stderr is not a TTY.
    yield from tqdm(iterable, desc=desc, total=total, unit=unit, disable=None, leave=False)


@dataclass
class StepTimer:
    """What :func:`step` yields: ``seconds`` holds the step's wall time once the block has ended."""

    seconds: float = 0.0


@contextlib.contextmanager
def step(
    name: str,
    logger: logging.Logger,
    *,
    threshold: float | None = None,
    log_end: bool = True,
) -> Iterator[StepTimer]:
    """Log the start and end of a block (with its duration) at INFO when it runs past ``threshold`` seconds.

    Parameters
    ----------
    name
        What the step does, e.g. ``"EASE Gram (9000 items)"``; it starts each line.
    logger
        The caller's module logger; nothing is logged unless it is enabled for INFO (see :func:`enabled`).
    threshold
        Seconds (default :data:`LONG_STEP_SECONDS`). At ``0`` the start line is logged at once; otherwise
        a timer logs it once the step has run that long, so a short step logs no start line.
    log_end
        ``False`` when the caller logs its own end line (the training loop's epoch line, say).

    Yields
    ------
    StepTimer
        Its ``seconds`` is set when the block ends (also when it raises).
    """
    limit = LONG_STEP_SECONDS if threshold is None else float(threshold)
    timer = StepTimer()
    if not enabled(logger):
        t0 = time.perf_counter()
        try:
            yield timer
        finally:
            timer.seconds = time.perf_counter() - t0
        return
    lock = threading.Lock()
    phase = ["running"]  # -> "announced" once the start line went out, "ended" when the block ends

    def log_start(late: bool) -> None:
        with lock:
            if phase[0] != "running":  # the block already ended
                return
            phase[0] = "announced"
            if late:
                logger.info("%s: started %s ago, still running", name, format_duration(limit))
            else:
                logger.info("%s: started", name)

    t0 = time.perf_counter()
    alarm = None
    if limit <= 0:
        log_start(late=False)
    else:
        alarm = threading.Timer(limit, log_start, kwargs={"late": True})
        alarm.daemon = True
        alarm.start()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - t0
        if alarm is not None:
            alarm.cancel()
        with lock:
            long = phase[0] == "announced" or timer.seconds > limit
            phase[0] = "ended"
        if log_end:
            level = logging.INFO if long else logging.DEBUG
            logger.log(level, "%s: done in %s", name, format_duration(timer.seconds))
