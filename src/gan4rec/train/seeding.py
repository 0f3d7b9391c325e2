"""Seeding without global state: one ``random_state`` becomes explicit numpy and torch generators.

Every random draw in a model comes from a generator derived from its ``random_state``:

- :func:`make_rngs` turns ``random_state`` into a :class:`numpy.random.Generator` (sampling, shuffling)
  and a ``torch.Generator`` on the model's device (noise and dropout masks drawn on the device), the
  second seeded from the first, so one integer pins both.
- :func:`seeded_init` builds modules under :func:`torch.random.fork_rng`. ``nn.Linear``, ``nn.Embedding``
  and friends initialise from torch's *global* generator, which neither the caller nor other models should
  see consumed or reseeded: inside the block the global CPU generator is seeded from ``random_state`` and
  it is put back afterwards. Build modules on the CPU inside the block, then move them to the device, so
  the initial weights do not depend on the device.
- :func:`dropout` draws its mask from an explicit generator (``torch.nn.functional.dropout`` takes none).
- :func:`get_rng_state` / :func:`set_rng_state` capture generator states for resumable checkpoints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from gan4rec.errors import DataError

__all__ = [
    "RandomState",
    "derive_seed",
    "dropout",
    "get_rng_state",
    "make_rngs",
    "seeded_init",
    "set_rng_state",
    "to_numpy_rng",
    "torch_generator",
]

RandomState = int | np.random.Generator | None

_SEED_HIGH = 2**63 - 1  # torch seeds are 64-bit; stay in the signed range that every backend accepts


def to_numpy_rng(random_state: RandomState) -> np.random.Generator:
    """``np.random.default_rng(random_state)``, refusing values that would not be reproducible.

    An int or ``None`` gives a new generator; a :class:`numpy.random.Generator` is used as is (its state is
    shared with the caller, as everywhere in numpy).
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise DataError(
            f"random_state={random_state!r}; expected a non-negative int, a numpy Generator or None"
        )
    return np.random.default_rng(int(random_state))


def derive_seed(rng: np.random.Generator) -> int:
    """A 63-bit seed drawn from ``rng`` (advances ``rng`` by one draw)."""
    return int(rng.integers(0, _SEED_HIGH, dtype=np.int64))


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed))
    return gen


def make_rngs(
    random_state: RandomState, device: str | torch.device = "cpu"
) -> tuple[np.random.Generator, torch.Generator, int]:
    """The numpy generator, the torch generator and the module-initialisation seed of a model.

    Draw order is fixed (initialisation seed first, then the torch generator's seed), so one integer
    ``random_state`` pins all three.

    Returns
    -------
    np_rng
        For host-side sampling (negatives, shuffles).
    torch_gen
        On ``device``, for noise and dropout masks drawn there.
    init_seed
        For :func:`seeded_init`.
    """
    np_rng = to_numpy_rng(random_state)
    init_seed = derive_seed(np_rng)
    torch_gen = torch_generator(derive_seed(np_rng), device)
    return np_rng, torch_gen, init_seed


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Run the block with torch's global CPU generator seeded with ``seed``, restored afterwards.

    Only the CPU generator is forked (build modules on the CPU inside the block), which also keeps CUDA
    from being initialised here.

    Examples
    --------
    >>> with seeded_init(0):
    ...     layer = torch.nn.Linear(3, 2)
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def dropout(x: torch.Tensor, p: float, generator: torch.Generator, *, training: bool = True) -> torch.Tensor:
    """Inverted dropout whose mask comes from ``generator`` (on ``x``'s device).

    Entries are zeroed with probability ``p`` and the survivors scaled by ``1 / (1 - p)``; the identity
    when not ``training`` or ``p == 0``.
    """
    if not training or p <= 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    keep = torch.empty(x.shape, dtype=x.dtype, device=x.device).bernoulli_(1.0 - p, generator=generator)
    return x * keep / (1.0 - p)


def get_rng_state(rng: np.random.Generator | torch.Generator) -> np.ndarray | dict[str, Any]:
    """The state of a generator: a uint8 array for torch, the JSON-ready ``bit_generator.state`` for numpy."""
    if isinstance(rng, torch.Generator):
        return rng.get_state().numpy().copy()
    if isinstance(rng, np.random.Generator):
        return _jsonable(rng.bit_generator.state)
    raise TypeError(f"expected a numpy or torch generator, got {type(rng).__name__}")


def set_rng_state(rng: np.random.Generator | torch.Generator, state: np.ndarray | dict[str, Any]) -> None:
    """Restore a state captured by :func:`get_rng_state` (in place)."""
    if isinstance(rng, torch.Generator):
        rng.set_state(torch.from_numpy(np.ascontiguousarray(state, dtype=np.uint8)))
    elif isinstance(rng, np.random.Generator):
        if not isinstance(state, dict) or state.get("bit_generator") != type(rng.bit_generator).__name__:
            got = state.get("bit_generator") if isinstance(state, dict) else type(state).__name__
            raise DataError(
                f"numpy generator state is for {got!r}, expected {type(rng.bit_generator).__name__!r}"
            )
        rng.bit_generator.state = state
    else:
        raise TypeError(f"expected a numpy or torch generator, got {type(rng).__name__}")


def _jsonable(value: Any) -> Any:
    """Plain Python containers and scalars (numpy scalars and arrays unwrapped) for JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
