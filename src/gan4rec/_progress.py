"""Progress bars for long work, shown only on a terminal and not under ``gan4rec --quiet``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress"]

T = TypeVar("T")


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on a TTY; a plain pass-through elsewhere (logs, CI, pipes)."""
    from tqdm.auto import tqdm

    # disable=None makes tqdm turn itself off when stderr is not a TTY; `gan4rec --quiet` (the gan4rec
    # logger's own level set above INFO) turns it off everywhere.
    quiet = logging.getLogger("gan4rec").level > logging.INFO
    yield from tqdm(iterable, desc=desc, total=total, unit=unit, disable=True if quiet else None, leave=False)
