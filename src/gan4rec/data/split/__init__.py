"""Seeded, leakage-free train / validation / test splits of :class:`Interactions`.

Every splitter returns a :class:`Split` whose parts are entry-disjoint subsets of the input, in the SAME
index space (the parts share the input's :class:`IdMap` objects), and whose union is the input. Validation
is always carved from the training part by the same rule that made the test part, so ``fit`` never sees a
validation or test entry, and model selection never sees a test entry.

Legend used in the pictures: ``x`` an interaction, ``.`` none; after the split ``T`` train (what ``fit``
sees), ``V`` validation (carved from train), ``E`` test (evaluation only)::

    before                     random_holdout(test_frac=0.25, valid_frac=0.3)
         i0 i1 i2 i3 i4 i5          i0 i1 i2 i3 i4 i5
    u0 [ x  x  .  x  x  . ]    u0 [ T  V  .  E  T  . ]   4 -> 1 test; 3 left -> 1 valid
    u1 [ .  x  x  .  x  x ]    u1 [ .  T  E  .  V  T ]
    u2 [ x  .  .  .  .  . ]    u2 [ T  .  .  .  .  . ]   a single interaction stays in train

Protocol choices, shared by all splitters:

* **Rounding.** A per-user share ``frac`` of ``n`` interactions is ``floor(frac * n + 0.5)`` (round half
  up, with ``frac * n`` first rounded to 9 decimals so that ``0.3 * 5`` counts as exactly 1.5), capped at
  ``n - 1``: a user never loses every training interaction to a holdout. Users with one interaction, and
  users whose share rounds to zero (e.g. 2 interactions at 20 %), keep everything in train.
* **Leave-k-out tiny users.** A user with ``n <= k`` interactions keeps all of them in train, so every
  test user has training history.
* **Ties.** Leave-k-out ``by="time"`` orders equal timestamps by a seeded random key (random but
  reproducible). A temporal cut never splits an instant: every interaction at or after the cut time is
  held out, so ties at the cut all go to the held-out side.
* **Validation** is the same rule applied to what is left in train after the test holdout; its fraction is
  a fraction of that remainder, not of the whole data.
* **Randomness** comes only from ``random_state`` (an int seed or a ``numpy.random.Generator``): one
  generator draws a permutation of the entries for the test rule, then another for the validation rule.
  The same seed on the same data gives bit-identical splits, and the test part does not depend on the
  validation settings.
* **Zero sizes.** ``test_frac=0`` gives ``test=None``; ``valid_frac=0`` / ``valid_k=0`` gives ``valid=None``
  (e.g. a paper replica that fits on the whole training set).

A :class:`Split` carries a JSON-ready ``spec`` and a ``fingerprint`` (sha256 over the spec and the parts'
fingerprints) that travels with results and saved models.

The cold-start split (:func:`cold_items`, a :class:`ColdSplit`) splits ITEMS first, then the warm items'
interactions; its rules are in its docstring.

Modules
-------
Everything public is re-exported here, so ``from gan4rec.data.split import random_holdout`` is the way to
use them.

* :mod:`~gan4rec.data.split.common`: :class:`Split` and the checks and seeding both families share;
* :mod:`~gan4rec.data.split.holdout`: the interaction splitters (:func:`random_holdout`, :func:`leave_k_out`,
  :func:`temporal`, :func:`presplit`) and :func:`carve_validation`, with their per-user rules;
* :mod:`~gan4rec.data.split.cold`: the item cold-start split (:func:`cold_items`, :class:`ColdSplit`);
* this package: :func:`make_split`, the one dispatch by name over both.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from gan4rec.data.interactions import Interactions
from gan4rec.data.split.cold import ColdSplit, cold_items
from gan4rec.data.split.common import RandomState, Split
from gan4rec.data.split.holdout import (
    CarveKind,
    carve_validation,
    leave_k_out,
    presplit,
    random_holdout,
    temporal,
)
from gan4rec.errors import DataError

__all__ = [
    "SPLIT_KINDS",
    "CarveKind",
    "ColdSplit",
    "RandomState",
    "Split",
    "carve_validation",
    "cold_items",
    "leave_k_out",
    "make_split",
    "presplit",
    "random_holdout",
    "temporal",
]


_SPLITTERS: dict[str, Callable[..., Split]] = {
    "random": random_holdout,
    "leave-k-out": leave_k_out,
    "temporal": temporal,
    "cold-items": cold_items,
}
SPLIT_KINDS: tuple[str, ...] = tuple(_SPLITTERS)


def make_split(data: Interactions, kind: str, **kw: Any) -> Split:
    """Split ``data`` with the splitter named ``kind`` (``"random"``, ``"leave-k-out"``, ``"temporal"``,
    ``"cold-items"``).

    ``kind`` is case-insensitive and ``_`` counts as ``-``. Keyword arguments go to the splitter
    (:func:`random_holdout`, :func:`leave_k_out`, :func:`temporal`, :func:`cold_items`); an unknown kind or
    an argument the splitter does not take is a :class:`DataError`.
    """
    name = str(kind).strip().lower().replace("_", "-")
    fn = _SPLITTERS.get(name)
    if fn is None:
        raise DataError(f"split kind {kind!r} is unknown; expected one of {', '.join(SPLIT_KINDS)}")
    accepted = [p for p in inspect.signature(fn).parameters if p != "data"]
    unknown = [key for key in kw if key not in accepted]
    if unknown:
        raise DataError(
            f"split kind {name!r} takes no argument {unknown[0]!r}; expected some of {', '.join(accepted)}"
        )
    return fn(data, **kw)
