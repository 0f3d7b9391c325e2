"""Seeded, leakage-free train / validation / test splits of :class:`Interactions`.

Long because: the splitters share one set of rules (rounding, seeding, validation carving, fingerprints),
which a reader checks best side by side in one file. The cold-start split is the one part that could stand
alone (about 250 lines); it stays here until ``make_split``'s dispatch moves below both modules.

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

"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError

__all__ = [
    "SPLIT_KINDS",
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

logger = logging.getLogger(__name__)

RandomState = int | np.random.Generator | None
CarveKind = Literal["random", "leave-k-out", "temporal"]
_CARVE_KINDS = ("random", "leave-k-out", "temporal")
_BY = ("time", "random")


# ---------------------------------------------------------------------------------------------- Split
@dataclass(frozen=True, eq=False)
class Split:
    """A train / validation / test partition of one :class:`Interactions`, in one index space.

    Attributes
    ----------
    train
        What ``fit`` may see: the training part minus validation when validation is carved.
    valid
        Carved from the training part by the split's own rule; ``None`` when no validation was asked for.
    test
        The held-out evaluation part; ``None`` when ``test_frac=0``.
    spec
        JSON-ready description: ``kind``, fractions or ``k``, ``seed``, realised cutoffs, input fingerprint.
    fingerprint
        sha256 over ``spec`` and the parts' fingerprints. Computed when left empty; when given (e.g. read
        back from a results file) it must match the parts, else :class:`DataError`.

    Two splits compare equal when their fingerprints are equal.
    """

    train: Interactions
    valid: Interactions | None
    test: Interactions | None
    spec: dict[str, Any]
    fingerprint: str = ""

    def __post_init__(self) -> None:
        for name in ("valid", "test"):
            part = getattr(self, name)
            if part is not None and not self.train.same_space(part):
                raise DataError(f"split part {name!r} indexes different users or items than train")
        try:
            spec = json.loads(json.dumps(self.spec, sort_keys=True, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise DataError(f"split spec is not JSON-ready ({exc})") from None
        object.__setattr__(self, "spec", spec)
        computed = _split_fingerprint(spec, self.train, self.valid, self.test)
        if self.fingerprint and self.fingerprint != computed:
            raise DataError(
                f"split fingerprint {self.fingerprint[:12]}... does not match its parts ({computed[:12]}...)"
            )
        object.__setattr__(self, "fingerprint", computed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Split) and self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        return f"Split({self.spec.get('kind')!r}, {sizes}, fingerprint={self.fingerprint[:12]})"

    @property
    def sizes(self) -> dict[str, int | None]:
        """Number of interactions in each part (``None`` for an absent part)."""
        return {
            "train": self.train.nnz,
            "valid": None if self.valid is None else self.valid.nnz,
            "test": None if self.test is None else self.test.nnz,
        }

    def full_train(self) -> Interactions:
        """Train and validation merged back: the training data before validation was carved.

        Use it to refit on the whole training part once hyper-parameters are chosen. Ratings and
        timestamps follow their entries; a (user, item) pair present in both parts is a :class:`DataError`.
        """
        if self.valid is None:
            return self.train
        return _merge(self.train, self.valid)


def _split_fingerprint(
    spec: dict[str, Any], train: Interactions, valid: Interactions | None, test: Interactions | None
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode())
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        h.update(f"\x1e{name}:{'none' if part is None else part.fingerprint()}".encode())
    return h.hexdigest()


def _merge(a: Interactions, b: Interactions) -> Interactions:
    """Entry union of two disjoint parts of one index space (ratings / timestamps kept when both have them)."""
    def both(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y])

    return Interactions.from_indices(
        np.concatenate([a.user_index(), b.user_index()]),
        np.concatenate([a.indices, b.indices]),
        a.user_map, a.item_map,
        ratings=both(a.ratings, b.ratings),
        timestamps=both(a.timestamps, b.timestamps),
        duplicates="error",
        user_features=a.user_features, item_features=a.item_features,
        user_feature_columns=a.user_feature_columns, item_feature_columns=a.item_feature_columns,
    )


# ---------------------------------------------------------------------------------------------- checks
def _check_data(data: Any, name: str = "data") -> Interactions:
    if not isinstance(data, Interactions):
        raise DataError(f"{name} must be an Interactions, got {type(data).__name__}")
    if data.nnz == 0:
        raise DataError(f"{name} has no interactions to split")
    return data


def _check_frac(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise DataError(f"{name}={value!r} is not a number; expected a fraction in [0, 1)")
    if not 0.0 <= float(value) < 1.0:
        raise DataError(f"{name}={value!r} is out of range; expected a fraction in [0, 1)")
    return float(value)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise DataError(f"{name}={value!r} is invalid; expected an integer >= {minimum}")
    return int(value)


def _check_cutoff(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataError(f"{name}={value!r} is invalid; expected an integer timestamp or None")
    return int(value)


def _check_by(by: Any) -> str:
    if by not in _BY:
        raise DataError(f"by={by!r} is unknown; expected one of {', '.join(_BY)}")
    return str(by)


def _need_timestamps(data: Interactions, what: str) -> None:
    if data.timestamps is None:
        raise DataError(f"{what} needs timestamps, and these interactions carry none")


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral) or random_state < 0:
        raise DataError(
            f"random_state={random_state!r} is invalid; expected a non-negative int or a numpy Generator"
        )
    return np.random.default_rng(int(random_state))


def _seed(random_state: Any) -> int | None:
    """The seed as recorded in a spec: the int, or ``None`` for a Generator / fresh entropy."""
    return None if random_state is None or isinstance(random_state, np.random.Generator) else int(random_state)


# ---------------------------------------------------------------------------------------------- rules
def _share(frac: float, n: np.ndarray | int) -> np.ndarray:
    """Round-half-up ``frac * n``, capped at ``n - 1`` and floored at 0 (int64, shape of ``n``)."""
    n = np.asarray(n, dtype=np.int64)
    raw = np.floor(np.round(frac * n, 9) + 0.5).astype(np.int64)
    return np.clip(raw, 0, np.maximum(n - 1, 0))


def _tail_mask(data: Interactions, n_hold: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Mark, for every user ``u``, the last ``n_hold[u]`` entries of their row in the order ``rank``.

    ``rank`` is a permutation of ``0 .. nnz-1``: the position of each entry in a global ordering by the
    rule's key, ties already broken. Sorting by ``user * nnz + rank`` (unique int64 keys: one argsort,
    much faster than ``np.lexsort``) keeps the CSR row blocks in place, so the rank of an entry within its
    row is its sorted position minus ``indptr[user]``. No loop over users.
    """
    users = data.user_index()  # (nnz,), sorted ascending
    order = np.argsort(users * data.nnz + rank)  # (nnz,)
    within = np.arange(data.nnz, dtype=np.int64) - data.indptr[users]  # row rank of entry order[j]
    held_sorted = within >= (data.user_counts() - n_hold)[users]
    mask = np.zeros(data.nnz, dtype=bool)
    mask[order[held_sorted]] = True
    return mask


def _random_rank(data: Interactions, rng: np.random.Generator) -> np.ndarray:
    # A uniform random permutation (not floats) so that the order never has ties.
    return rng.permutation(data.nnz)


def _time_rank(data: Interactions, rng: np.random.Generator) -> np.ndarray:
    """Rank of each entry by timestamp, equal timestamps in a seeded random order."""
    assert data.timestamps is not None  # checked by the callers
    shuffle = rng.permutation(data.nnz)
    # A stable sort of the shuffled timestamps keeps tied entries in their random (shuffled) order.
    by_time = shuffle[np.argsort(data.timestamps[shuffle], kind="stable")]
    rank = np.empty(data.nnz, dtype=np.int64)
    rank[by_time] = np.arange(data.nnz, dtype=np.int64)
    return rank


def _ratio_mask(data: Interactions, frac: float, rng: np.random.Generator) -> np.ndarray:
    return _tail_mask(data, _share(frac, data.user_counts()), _random_rank(data, rng))


def _leave_k_mask(data: Interactions, k: int, by: str, rng: np.random.Generator) -> np.ndarray:
    counts = data.user_counts()
    n_hold = np.where(counts > k, k, 0)
    rank = _time_rank(data, rng) if by == "time" else _random_rank(data, rng)
    return _tail_mask(data, n_hold, rank)


def _temporal_mask(
    data: Interactions, frac: float, cutoff: int | None, frac_name: str, cutoff_name: str
) -> tuple[np.ndarray, int]:
    """Entries at or after a global timestamp cut, and the cut (given, or placed by ``frac``)."""
    _need_timestamps(data, "a temporal split")
    ts = data.timestamps
    assert ts is not None
    nnz = data.nnz
    if cutoff is None:
        n_hold = int(np.floor(np.round(frac * nnz, 9) + 0.5))
        if n_hold == 0:
            raise DataError(
                f"{frac_name}={frac} of {nnz} interactions rounds to none; raise it or give {cutoff_name}"
            )
        cut = int(np.partition(ts, nnz - n_hold)[nnz - n_hold])
    else:
        cut = cutoff
    mask = ts >= cut
    n = int(np.count_nonzero(mask))
    if n == 0:
        raise DataError(
            f"{cutoff_name}={cut} leaves no interaction at or after it (the latest timestamp is {int(ts.max())})"
        )
    if n == nnz:
        if cutoff is None:
            raise DataError(
                f"{frac_name}={frac} puts the cut at timestamp {cut}, and no interaction is earlier; "
                "the timestamps are too coarse for this temporal split"
            )
        raise DataError(
            f"{cutoff_name}={cut} leaves no interaction before it (the earliest timestamp is {int(ts.min())})"
        )
    return mask, cut


def _carve(
    train: Interactions,
    kind: str,
    *,
    frac: float,
    k: int,
    by: str,
    rng: np.random.Generator,
    cutoff: int | None = None,
    frac_name: str = "valid_frac",
    cutoff_name: str = "valid_cutoff",
) -> tuple[Interactions, Interactions, dict[str, Any]]:
    """Hold out part of ``train`` by the named rule: ``(rest, held, info)`` with realised settings."""
    info: dict[str, Any] = {}
    if kind == "random":
        held = _ratio_mask(train, frac, rng)
    elif kind == "leave-k-out":
        held = _leave_k_mask(train, k, by, rng)
    else:
        held, cut = _temporal_mask(train, frac, cutoff, frac_name, cutoff_name)
        info["cutoff"] = cut
    return train.subset(~held), train.subset(held), info


def _build(kind: str, spec: dict[str, Any], train: Interactions, valid: Interactions | None,
           test: Interactions | None) -> Split:
    split = Split(train=train, valid=valid, test=test, spec={"kind": kind, **spec})
    logger.info(
        "%s split: %d train / %s valid / %s test interactions (fingerprint %s)",
        kind, train.nnz, split.sizes["valid"], split.sizes["test"], split.fingerprint[:12],
    )
    return split


# ---------------------------------------------------------------------------------------------- splitters
def carve_validation(
    train: Interactions,
    *,
    kind: CarveKind = "random",
    valid_frac: float = 0.2,
    valid_k: int = 1,
    by: Literal["time", "random"] = "time",
    random_state: RandomState = 42,
    cutoff: int | None = None,
) -> tuple[Interactions, Interactions]:
    """Carve a validation part out of training data: ``(train_minus_valid, valid)``.

    This is the one rule every splitter (and :func:`presplit`) uses for validation::

        train                     kind="random", valid_frac=0.5      kind="leave-k-out", valid_k=1, by="time"
             i0 i1 i2 i3               i0 i1 i2 i3                        i0 i1 i2 i3      (times)
        u0 [ x  x  x  x ]         u0 [ V  T  V  T ]                  u0 [ T  T  V  T ]    i2 is u0's latest
        u1 [ x  .  x  . ]         u1 [ T  .  V  . ]                  u1 [ V  .  T  . ]    i0 is u1's latest
        u2 [ .  x  .  . ]         u2 [ .  T  .  . ]  (kept)          u2 [ .  T  .  . ]    (kept: 1 <= k)

    Parameters
    ----------
    train
        The training interactions to carve from.
    kind
        ``"random"``: per-user random holdout of ``valid_frac`` of each user's interactions (rounded half
        up, capped at ``n_u - 1``; see the module notes). ``"leave-k-out"``: each user's last ``valid_k``
        interactions (``by="time"``; ties broken by a seeded random key) or a random ``valid_k``
        (``by="random"``); users with ``<= valid_k`` interactions keep all of them. ``"temporal"``: the
        latest ``valid_frac`` of all interactions, or everything at or after ``cutoff``.
    valid_frac
        Fraction in ``[0, 1)`` for ``"random"`` and ``"temporal"``.
    valid_k
        Interactions per user for ``"leave-k-out"`` (``>= 0``).
    by
        Order for ``"leave-k-out"``: ``"time"`` (needs timestamps) or ``"random"``.
    random_state
        Seed or Generator for the random keys.
    cutoff
        For ``"temporal"``: a timestamp; when given it replaces ``valid_frac``.

    Returns
    -------
    (train_minus_valid, valid)
        Disjoint parts of ``train`` in its index space whose union is ``train``. A zero-sized request
        (``valid_frac=0`` or ``valid_k=0`` without ``cutoff``) returns ``train`` itself and an empty part.
    """
    _check_data(train, "train")
    if kind not in _CARVE_KINDS:
        raise DataError(f"kind={kind!r} is unknown; expected one of {', '.join(_CARVE_KINDS)}")
    frac = _check_frac(valid_frac, "valid_frac")
    k = _check_int(valid_k, "valid_k", 0)
    order = _check_by(by)
    cut = _check_cutoff(cutoff, "cutoff")
    if kind == "leave-k-out" and order == "time":
        _need_timestamps(train, "leave-k-out with by='time'")
    rng = _rng(random_state)
    if cut is None and ((kind == "leave-k-out" and k == 0) or (kind != "leave-k-out" and frac == 0.0)):
        return train, train.subset(np.zeros(train.nnz, dtype=bool))
    rest, valid, _ = _carve(train, kind, frac=frac, k=k, by=order, rng=rng, cutoff=cut, cutoff_name="cutoff")
    return rest, valid


def random_holdout(
    data: Interactions,
    *,
    test_frac: float = 0.2,
    valid_frac: float = 0.2,
    random_state: RandomState = 42,
) -> Split:
    """Per-user random holdout by ratio.

    ::

        data                           test_frac=0.25, valid_frac=0.3
             i0 i1 i2 i3 i4 i5              i0 i1 i2 i3 i4 i5
        u0 [ x  x  .  x  x  . ]        u0 [ T  V  .  E  T  . ]   round(0.25*4)=1 E, round(0.3*3)=1 V
        u1 [ x  x  x  x  x  x ]        u1 [ E  T  V  T  T  E ]   round(0.25*6)=2 E, round(0.3*4)=1 V
        u2 [ .  .  x  .  .  . ]        u2 [ .  .  T  .  .  . ]   one interaction: stays in train

    For each user with ``n_u`` interactions, ``floor(test_frac * n_u + 0.5)`` of them (round half up, at
    most ``n_u - 1``) drawn uniformly at random go to test, so a user with one interaction keeps it in
    train and every user keeps at least one training interaction. Validation is the same rule with
    ``valid_frac`` applied to each user's remaining training interactions.

    Parameters
    ----------
    data
        The interactions to split.
    test_frac, valid_frac
        Fractions in ``[0, 1)``; ``0`` leaves that part out (``None``).
    random_state
        Seed or Generator. The test part depends only on the data and the seed, not on ``valid_frac``.

    Returns
    -------
    Split
        ``spec`` holds ``kind="random"``, ``test_frac``, ``valid_frac``, ``seed``, ``rounding`` and the
        input fingerprint ``data``.
    """
    _check_data(data)
    test_frac = _check_frac(test_frac, "test_frac")
    valid_frac = _check_frac(valid_frac, "valid_frac")
    rng = _rng(random_state)
    train, test = data, None
    if test_frac > 0:
        held = _ratio_mask(data, test_frac, rng)
        train, test = data.subset(~held), data.subset(held)
    valid = None
    if valid_frac > 0:
        train, valid, _ = _carve(train, "random", frac=valid_frac, k=0, by="random", rng=rng)
    spec = {
        "test_frac": test_frac, "valid_frac": valid_frac, "seed": _seed(random_state),
        "rounding": "half-up, capped at n_u - 1", "data": data.fingerprint(),
    }
    return _build("random", spec, train, valid, test)


def leave_k_out(
    data: Interactions,
    *,
    k: int = 1,
    valid_k: int = 1,
    by: Literal["time", "random"] = "time",
    random_state: RandomState = 42,
) -> Split:
    """Per-user leave-k-out: each user's last ``k`` interactions (by time) or a random ``k`` go to test.

    ::

        data (timestamps)              k=1, valid_k=1, by="time"
             i0 i1 i2 i3                    i0 i1 i2 i3
        u0 [ 1  5  3  9 ]              u0 [ T  V  T  E ]   latest (9) -> E, then latest left (5) -> V
        u1 [ 2  .  7  4 ]              u1 [ T  .  E  V ]
        u2 [ .  4  .  . ]              u2 [ .  T  .  . ]   1 <= k interactions: all stay in train

    Users with ``n_u <= k`` interactions keep all of them in train (so a test user always has training
    history). With ``by="time"`` equal timestamps are ordered by a seeded random key, so which of several
    simultaneous interactions is "latest" is random but reproducible. Validation is the same rule with
    ``valid_k`` on the training part (users with ``<= valid_k`` remaining interactions keep them).

    Parameters
    ----------
    data
        The interactions to split; ``by="time"`` needs timestamps.
    k
        Test interactions per user, ``>= 1``.
    valid_k
        Validation interactions per user, ``>= 0`` (``0``: no validation).
    by
        ``"time"`` or ``"random"``.
    random_state
        Seed or Generator (tie-breaking for ``"time"``, the draw for ``"random"``).
    """
    _check_data(data)
    k = _check_int(k, "k", 1)
    valid_k = _check_int(valid_k, "valid_k", 0)
    order = _check_by(by)
    if order == "time":
        _need_timestamps(data, "leave-k-out with by='time'")
    rng = _rng(random_state)
    held = _leave_k_mask(data, k, order, rng)
    train, test = data.subset(~held), data.subset(held)
    valid = None
    if valid_k > 0:
        train, valid, _ = _carve(train, "leave-k-out", frac=0.0, k=valid_k, by=order, rng=rng)
    spec = {
        "k": k, "valid_k": valid_k, "by": order, "seed": _seed(random_state),
        "ties": "seeded random key" if order == "time" else None, "data": data.fingerprint(),
    }
    return _build("leave-k-out", spec, train, valid, test)


def temporal(
    data: Interactions,
    *,
    test_frac: float = 0.2,
    valid_frac: float = 0.2,
    cutoff: int | None = None,
    valid_cutoff: int | None = None,
) -> Split:
    """Global temporal cut: everything at or after one timestamp is test; the rest, train.

    ::

        data (timestamps)              test_frac=0.375 -> cut at t=7; valid_frac=0.4 -> cut at t=5
             i0 i1 i2 i3                    i0 i1 i2 i3
        u0 [ 1  5  3  9 ]              u0 [ T  V  T  E ]
        u1 [ 2  .  7  . ]              u1 [ T  .  E  . ]
        u2 [ .  6  .  8 ]              u2 [ .  V  .  E ]

    The cut is ``cutoff`` when given; otherwise it is the timestamp of the ``m``-th latest interaction,
    ``m = floor(test_frac * nnz + 0.5)``. Every interaction at or after the cut goes to test, so ties at
    the cut all land in test and the realised test share can exceed ``test_frac`` (a time cut never splits
    an instant). The realised cuts are recorded in ``spec``. Validation is the same rule on the training
    part (``valid_frac`` of it, or everything at or after ``valid_cutoff``). Test and validation can hold
    users or items that train lacks (cold start); evaluation decides what to do with them.

    Parameters
    ----------
    data
        Interactions with timestamps.
    test_frac, valid_frac
        Fractions in ``[0, 1)``; ``0`` (with no cutoff) leaves that part out.
    cutoff, valid_cutoff
        Timestamps replacing ``test_frac`` / ``valid_frac``; ``valid_cutoff`` must be earlier than the
        test cut. A cut that leaves either side empty is a :class:`DataError`.
    """
    _check_data(data)
    test_frac = _check_frac(test_frac, "test_frac")
    valid_frac = _check_frac(valid_frac, "valid_frac")
    cutoff = _check_cutoff(cutoff, "cutoff")
    valid_cutoff = _check_cutoff(valid_cutoff, "valid_cutoff")
    _need_timestamps(data, "a temporal split")
    train, test, test_cut = data, None, None
    if cutoff is not None or test_frac > 0:
        held, test_cut = _temporal_mask(data, test_frac, cutoff, "test_frac", "cutoff")
        train, test = data.subset(~held), data.subset(held)
    if valid_cutoff is not None and test_cut is not None and valid_cutoff >= test_cut:
        raise DataError(f"valid_cutoff={valid_cutoff} is not earlier than the test cut {test_cut}")
    valid, valid_cut = None, None
    if valid_cutoff is not None or valid_frac > 0:
        held, valid_cut = _temporal_mask(train, valid_frac, valid_cutoff, "valid_frac", "valid_cutoff")
        train, valid = train.subset(~held), train.subset(held)
    spec = {
        "test_frac": None if cutoff is not None else test_frac,
        "valid_frac": None if valid_cutoff is not None else valid_frac,
        "cutoff": test_cut, "valid_cutoff": valid_cut, "data": data.fingerprint(),
    }
    return _build("temporal", spec, train, valid, test)


def presplit(
    train: Interactions,
    test: Interactions,
    *,
    valid_frac: float = 0.2,
    random_state: RandomState = 42,
    allow_overlap: bool = False,
) -> Split:
    """Wrap a split given as files (e.g. a paper's train/test) and carve validation from its train.

    ::

        train               test                 Split(valid_frac=0.5)
             i0 i1 i2 i3         i0 i1 i2 i3          i0 i1 i2 i3
        u0 [ x  x  .  . ]   u0 [ .  .  x  . ]    u0 [ V  T  E  . ]
        u1 [ .  x  x  x ]   u1 [ x  .  .  . ]    u1 [ E  V  T  V ]   round(0.5*3)=2 V

    Validation is a per-user random holdout of ``valid_frac`` of each user's training interactions (the
    rule of :func:`random_holdout`: half-up rounding, capped at ``n_u - 1``). ``valid_frac=0`` gives
    ``valid=None``, for a replica that fits on the whole given train. ``test`` is kept as given.

    Parameters
    ----------
    train, test
        The given parts; they must share id maps (:meth:`Interactions.same_space`).
    valid_frac
        Fraction in ``[0, 1)`` of each user's training interactions for validation.
    random_state
        Seed or Generator for the validation draw.
    allow_overlap
        A (user, item) pair in both files is leakage and a :class:`DataError` unless this is true; the
        count is then recorded in ``spec["train_test_overlap"]``.
    """
    _check_data(train, "train")
    _check_data(test, "test")
    if not train.same_space(test):
        raise DataError(
            "train and test index different users or items (their id maps differ); "
            "read test with train's user_map and item_map"
        )
    valid_frac = _check_frac(valid_frac, "valid_frac")
    rng = _rng(random_state)
    n_items = max(train.n_items, 1)
    train_keys = train.user_index() * n_items + train.indices  # (nnz_train,), sorted: CSR order
    test_keys = test.user_index() * n_items + test.indices  # (nnz_test,)
    pos = np.minimum(np.searchsorted(train_keys, test_keys), train.nnz - 1)
    shared = train_keys[pos] == test_keys
    n_shared = int(np.count_nonzero(shared))
    if n_shared and not allow_overlap:
        j = int(np.flatnonzero(shared)[0])
        u, i = test_keys[j] // n_items, test_keys[j] % n_items
        raise DataError(
            f"{n_shared} (user, item) pairs are in both train and test, e.g. (user "
            f"{train.user_map.ids[u]!r}, item {train.item_map.ids[i]!r}); pass allow_overlap=True to accept"
        )
    if n_shared:
        logger.warning("%d (user, item) pairs are in both train and test", n_shared)
    fit_train, valid = train, None
    if valid_frac > 0:
        fit_train, valid, _ = _carve(train, "random", frac=valid_frac, k=0, by="random", rng=rng)
    spec = {
        "valid_frac": valid_frac, "seed": _seed(random_state), "rounding": "half-up, capped at n_u - 1",
        "train": train.fingerprint(), "test": test.fingerprint(), "train_test_overlap": n_shared,
    }
    return _build("presplit", spec, fit_train, valid, test)


# ---------------------------------------------------------------------------------------------- cold start
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
        return self.train if warm_valid.nnz == 0 else _merge(self.train, warm_valid)

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
    _check_data(data)
    cold_frac = _check_frac(cold_frac, "cold_frac")
    cold_valid_frac = _check_frac(cold_valid_frac, "cold_valid_frac")
    test_frac = _check_frac(test_frac, "test_frac")
    valid_frac = _check_frac(valid_frac, "valid_frac")
    if cold_frac == 0:
        raise DataError("cold_frac=0 makes no cold item; expected a fraction in (0, 1)")
    if test_frac + valid_frac >= 1:
        raise DataError(f"test_frac + valid_frac = {test_frac + valid_frac}; expected less than 1 (train is the rest)")
    if data.n_items < 2:
        raise DataError(f"a cold-start split needs at least 2 items, got {data.n_items}")
    rng = _rng(random_state)
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
        "seed": _seed(random_state), "rounding": "half-up", "n_warm_items": n_items - n_cold,
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
