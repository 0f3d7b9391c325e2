"""Where training runs: the device a ``device=`` argument names, and torch's CPU thread count.

The lowest module of :mod:`gan4rec.train`: both the training loop (:mod:`gan4rec.train.loop`) and the rank
helpers (:mod:`gan4rec.train.distributed`) use it, and it imports neither.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from gan4rec.errors import DataError

__all__ = ["resolve_device", "torch_threads"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; a bad or unavailable device is a :class:`DataError`."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DataError(
            f"device={device!r} is not a torch device; expected 'cpu', 'cuda', 'cuda:N' or None"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device={device!r} but CUDA is not available here; pass 'cpu' or None")
    return dev


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous value (``None``: as is)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise DataError(f"n_threads={n!r}; expected a positive int or None (leave torch's setting)")
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(previous)
