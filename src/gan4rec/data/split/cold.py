"""The item cold-start split: :func:`cold_items` and the :class:`ColdSplit` it returns.

It splits ITEMS first (cold-validation and cold-test items have no training interaction), then the warm
items' interactions; the rules are in :func:`cold_items`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from gan4rec.data.interactions import Interactions
from gan4rec.data.split.common import (
    RandomState,
    Split,
    check_data,
    check_frac,
    merge_parts,
    spec_seed,
    to_rng,
)
from gan4rec.errors import DataError

__all__ = ["ColdSplit", "cold_items"]

logger = logging.getLogger(__name__)


def _item_digest(cold_valid: np.ndarray, cold_test: np.ndarray) -> str:
    h = hashlib.sha256()
    for arr in (cold_valid, cold_test):
        h.update(b"\x1e" + np.ascontiguousarray(arr, dtype="<i8").tobytes())
    return h.hexdigest()


def _items_array(value: Any, n_items: int, name: str) -> np.ndarray:
    arr = np.unique(np.asarray(value, dtype=np.int64).reshape(-1))
    if len(arr) and (arr[0] < 0 or arr[-1] >= n_items):
        raise DataError(f"{name} holds an item index outside 0..{n_items - 1}")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False, repr=False)
class ColdSplit(Split):
    """A :class:`Split` whose held-out parts also cover items that have NO training interaction.

    ``valid`` is warm validation plus every interaction on a cold-validation item; ``test`` is warm test
    plus every interaction on a cold-test item; ``train`` holds no interaction on a cold item but the same
    item map, so the cold items' features are in ``train.item_features``. The parts by task are the
    properties :attr:`warm_valid`, :attr:`cold_valid`, :attr:`warm_test`, :attr:`cold_test`.

    Attributes
    ----------
    cold_valid_items, cold_test_items
        Sorted item indices (read-only int64), disjoint. Their sha256 is ``spec["items"]``, so they are
        part of the fingerprint; a mismatch is a :class:`DataError`.
    """

    cold_valid_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cold_test_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = self.train.n_items
        cv = _items_array(self.cold_valid_items, n, "cold_valid_items")
        ct = _items_array(self.cold_test_items, n, "cold_test_items")
        if np.intersect1d(cv, ct).size:
            raise DataError("cold_valid_items and cold_test_items overlap; expected disjoint item sets")
        object.__setattr__(self, "cold_valid_items", cv)
        object.__setattr__(self, "cold_test_items", ct)
        if self.spec.get("items") != _item_digest(cv, ct):
            raise DataError("the cold item sets do not match spec['items'] (the split was altered)")
        for name, part, which in (("train", self.train, "all"), ("valid", self.valid, "test"),
                                  ("test", self.test, "valid")):
            if part is not None and part.nnz and self.cold_mask(which)[part.indices].any():  # type: ignore[arg-type]
                kind = "cold" if which == "all" else f"cold-{which}"
                raise DataError(f"{name} holds an interaction on a {kind} item; expected none")
        super().__post_init__()

    @classmethod
    def build(
        cls,
        train: Interactions,
        valid: Interactions | None,
        test: Interactions | None,
        *,
        cold_valid_items: Any,
        cold_test_items: Any,
        spec: dict[str, Any] | None = None,
    ) -> ColdSplit:
        """A ColdSplit from given parts, e.g. a published cold-start split read from files.

        ``cold_valid_items`` / ``cold_test_items`` are item indices of ``train.item_map``; ``spec`` (JSON-ready)
        describes where the parts come from, and gets ``kind="cold-items"`` and the ``items`` digest.
        """
        n = train.n_items
        cv = _items_array(cold_valid_items, n, "cold_valid_items")
        ct = _items_array(cold_test_items, n, "cold_test_items")
        full = {"kind": "cold-items", **(spec or {}), "items": _item_digest(cv, ct)}
        return cls(train=train, valid=valid, test=test, spec=full, cold_valid_items=cv, cold_test_items=ct)

    def cold_mask(self, which: Literal["all", "valid", "test"] = "all") -> np.ndarray:
        """``(n_items,)`` bool: the cold items (``"all"``), or only the cold-validation or cold-test ones."""
        mask = np.zeros(self.train.n_items, dtype=bool)
        if which in ("all", "valid"):
            mask[self.cold_valid_items] = True
        if which in ("all", "test"):
            mask[self.cold_test_items] = True
        return mask

    @property
    def warm_items(self) -> np.ndarray:
        """Sorted indices of the warm items (every item that is not cold)."""
        return np.flatnonzero(~self.cold_mask()).astype(np.int64)

    def _part(self, part: Interactions | None, which: Literal["all", "valid", "test"], cold: bool) -> Interactions:
        if part is None:
            return self.train.subset(np.zeros(self.train.nnz, dtype=bool))
        on_cold = self.cold_mask(which)[part.indices]
        return part.subset(on_cold if cold else ~self.cold_mask()[part.indices])

    @cached_property
    def warm_valid(self) -> Interactions:
        """Validation interactions on warm items (possibly empty)."""
        return self._part(self.valid, "all", cold=False)

    @cached_property
    def cold_valid(self) -> Interactions:
        """Every interaction on a cold-validation item."""
        return self._part(self.valid, "valid", cold=True)

    @cached_property
    def warm_test(self) -> Interactions:
        """Test interactions on warm items (possibly empty)."""
        return self._part(self.test, "all", cold=False)

    @cached_property
    def cold_test(self) -> Interactions:
        """Every interaction on a cold-test item."""
        return self._part(self.test, "test", cold=True)

    def full_train(self) -> Interactions:
        """Train plus WARM validation: refitting never makes a cold-validation item warm."""
        warm_valid = self.warm_valid
        return self.train if warm_valid.nnz == 0 else merge_parts(self.train, warm_valid)

    def item_sets(self) -> dict[str, list[Any]]:
        """The cold item sets as raw item ids, JSON-ready (to save beside the parts)."""
        m = self.train.item_map
        return {
            "cold_valid_items": m.to_raw(self.cold_valid_items).tolist(),
            "cold_test_items": m.to_raw(self.cold_test_items).tolist(),
        }


def cold_items(
    data: Interactions,
    *,
    cold_frac: float = 0.2,
    cold_valid_frac: float = 0.5,
    test_frac: float = 0.1,
    valid_frac: float = 0.1,
    random_state: RandomState = 42,
) -> ColdSplit:
    """Item cold-start split (the protocol of GAR, Chen et al. SIGIR 2022, and ALDI, Huang et al. SIGIR 2023).

    ::

        data                                 items: i0-i3 warm, i4 cold-valid, i5 cold-test
             i0 i1 i2 i3 i4 i5                    i0 i1 i2 i3 i4 i5
        u0 [ x  x  x  x  x  . ]              u0 [ T  E  T  V  V  . ]   warm records: random 80/10/10
        u1 [ x  x  .  x  .  x ]              u1 [ T  T  .  T  .  E ]
        u2 [ .  x  x  x  x  x ]              u2 [ .  T  T  E  V  E ]   all of i4 -> V, all of i5 -> E

    1. The ITEMS of the map are shuffled; ``floor(cold_frac * n_items + 0.5)`` of them (at least 1, at most
       ``n_items - 1``) are cold, the rest warm. ``floor(cold_valid_frac * n_cold + 0.5)`` of the cold
       items are cold-validation items, the others cold-test items. Items without interactions take
       part in the draw like any other.
    2. The WARM items' interactions are shuffled globally (not per user, as GAR does):
       ``floor(test_frac * n_warm + 0.5)`` go to warm test, the next ``floor(valid_frac * n_warm + 0.5)``
       to warm validation, the rest to train. Here both fractions are shares of ALL warm interactions
       (GAR's 80/10/10 is the default), unlike the other splitters, whose validation share is of what is
       left after the test holdout.
    3. ``train`` = warm train; ``valid`` = warm valid + every interaction on a cold-validation item;
       ``test`` = warm test + every interaction on a cold-test item. A user may have test items but no
       training interaction (all their items cold, or their warm records all drawn out): such users are
       evaluated too, through their scores (content models can still rank for them).

    Nothing of a cold item is in ``train`` except its features: the item map is the full one, so
    ``train.item_features`` has every item's row (:func:`gan4rec.data.features.feature_matrix`).
    Evaluate with :func:`gan4rec.evaluation.cold.evaluate_cold` (warm, cold and overall tasks).

    Parameters
    ----------
    data
        The interactions with their item features.
    cold_frac
        Share of the items that are cold, in ``(0, 1)``.
    cold_valid_frac
        Share of the cold items used for validation, in ``[0, 1)``; the rest are test items.
    test_frac, valid_frac
        Shares of the warm interactions for warm test and warm validation, ``test_frac + valid_frac < 1``.
    random_state
        Seed or Generator: one generator draws the item permutation, then the warm-record permutation.

    Returns
    -------
    ColdSplit
        ``spec`` holds ``kind="cold-items"``, the fractions, ``seed``, the counts of warm / cold-valid /
        cold-test items, ``items`` (sha256 of the cold item sets) and ``data``, the input's fingerprint
        WITH its features (a content model's input is part of the split's identity).
    """
    check_data(data)
    cold_frac = check_frac(cold_frac, "cold_frac")
    cold_valid_frac = check_frac(cold_valid_frac, "cold_valid_frac")
    test_frac = check_frac(test_frac, "test_frac")
    valid_frac = check_frac(valid_frac, "valid_frac")
    if cold_frac == 0:
        raise DataError("cold_frac=0 makes no cold item; expected a fraction in (0, 1)")
    if test_frac + valid_frac >= 1:
        raise DataError(f"test_frac + valid_frac = {test_frac + valid_frac}; expected less than 1 (train is the rest)")
    if data.n_items < 2:
        raise DataError(f"a cold-start split needs at least 2 items, got {data.n_items}")
    rng = to_rng(random_state)
    n_items = data.n_items
    perm = rng.permutation(n_items)
    n_cold = int(np.clip(np.floor(np.round(cold_frac * n_items, 9) + 0.5), 1, n_items - 1))
    n_cold_valid = int(np.floor(np.round(cold_valid_frac * n_cold, 9) + 0.5))
    cold_valid = np.sort(perm[:n_cold_valid]).astype(np.int64)
    cold_test = np.sort(perm[n_cold_valid:n_cold]).astype(np.int64)

    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[perm[:n_cold]] = True
    warm_idx = np.flatnonzero(~is_cold[data.indices])  # (n_warm,) entry positions
    shuffled = warm_idx[rng.permutation(len(warm_idx))]
    n_test = int(np.floor(np.round(test_frac * len(warm_idx), 9) + 0.5))
    n_valid = int(np.floor(np.round(valid_frac * len(warm_idx), 9) + 0.5))
    to_test = np.zeros(data.nnz, dtype=bool)
    to_test[shuffled[:n_test]] = True
    to_test |= np.isin(data.indices, cold_test)
    to_valid = np.zeros(data.nnz, dtype=bool)
    to_valid[shuffled[n_test : n_test + n_valid]] = True
    to_valid |= np.isin(data.indices, cold_valid)
    train = data.subset(~(to_test | to_valid))
    valid = data.subset(to_valid) if valid_frac > 0 or n_cold_valid > 0 else None
    test = data.subset(to_test)
    spec = {
        "kind": "cold-items", "cold_frac": cold_frac, "cold_valid_frac": cold_valid_frac,
        "test_frac": test_frac, "valid_frac": valid_frac, "warm_records": "global random, shares of all warm",
        "seed": spec_seed(random_state), "rounding": "half-up", "n_warm_items": n_items - n_cold,
        "n_cold_valid_items": len(cold_valid), "n_cold_test_items": len(cold_test),
        "items": _item_digest(cold_valid, cold_test), "data": data.fingerprint(features=True),
    }
    split = ColdSplit(
        train=train, valid=valid, test=test, spec=spec, cold_valid_items=cold_valid, cold_test_items=cold_test
    )
    logger.info(
        "cold-items split: %d warm / %d cold-valid / %d cold-test items; %d train / %s valid / %d test "
        "interactions (fingerprint %s)", n_items - n_cold, len(cold_valid), len(cold_test), train.nnz,
        split.sizes["valid"], test.nnz, split.fingerprint[:12],
    )
    return split
