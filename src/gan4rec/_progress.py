"""Progress bars for long work, shown only when stderr is a terminal."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress"]

T = TypeVar("T")


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on a TTY; a plain pass-through elsewhere (logs, CI, pipes)."""
    from tqdm.auto import tqdm

    # disable=None makes tqdm turn itself off when stderr is not a TTY.
    yield from tqdm(iterable, desc=desc, total=total, unit=unit, disable=None, leave=False)
