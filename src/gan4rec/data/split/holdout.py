"""The interaction splitters: per-user random holdout, leave-k-out, a global temporal cut, a given
train/test pair, and the validation carving they all share.

Their common rules (rounding, ties, seeding, validation) are described in :mod:`gan4rec.data.split`.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any, Literal

import numpy as np

from gan4rec.data.interactions import Interactions
from gan4rec.data.split.common import RandomState, Split, check_data, check_frac, spec_seed, to_rng
from gan4rec.errors import DataError

__all__ = ["CarveKind", "carve_validation", "leave_k_out", "presplit", "random_holdout", "temporal"]

logger = logging.getLogger(__name__)

CarveKind = Literal["random", "leave-k-out", "temporal"]
_CARVE_KINDS = ("random", "leave-k-out", "temporal")
_BY = ("time", "random")


# ---------------------------------------------------------------------------------------------- checks
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
    check_data(train, "train")
    if kind not in _CARVE_KINDS:
        raise DataError(f"kind={kind!r} is unknown; expected one of {', '.join(_CARVE_KINDS)}")
    frac = check_frac(valid_frac, "valid_frac")
    k = _check_int(valid_k, "valid_k", 0)
    order = _check_by(by)
    cut = _check_cutoff(cutoff, "cutoff")
    if kind == "leave-k-out" and order == "time":
        _need_timestamps(train, "leave-k-out with by='time'")
    rng = to_rng(random_state)
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
    check_data(data)
    test_frac = check_frac(test_frac, "test_frac")
    valid_frac = check_frac(valid_frac, "valid_frac")
    rng = to_rng(random_state)
    train, test = data, None
    if test_frac > 0:
        held = _ratio_mask(data, test_frac, rng)
        train, test = data.subset(~held), data.subset(held)
    valid = None
    if valid_frac > 0:
        train, valid, _ = _carve(train, "random", frac=valid_frac, k=0, by="random", rng=rng)
    spec = {
        "test_frac": test_frac, "valid_frac": valid_frac, "seed": spec_seed(random_state),
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
    check_data(data)
    k = _check_int(k, "k", 1)
    valid_k = _check_int(valid_k, "valid_k", 0)
    order = _check_by(by)
    if order == "time":
        _need_timestamps(data, "leave-k-out with by='time'")
    rng = to_rng(random_state)
    held = _leave_k_mask(data, k, order, rng)
    train, test = data.subset(~held), data.subset(held)
    valid = None
    if valid_k > 0:
        train, valid, _ = _carve(train, "leave-k-out", frac=0.0, k=valid_k, by=order, rng=rng)
    spec = {
        "k": k, "valid_k": valid_k, "by": order, "seed": spec_seed(random_state),
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
    check_data(data)
    test_frac = check_frac(test_frac, "test_frac")
    valid_frac = check_frac(valid_frac, "valid_frac")
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
    check_data(train, "train")
    check_data(test, "test")
    if not train.same_space(test):
        raise DataError(
            "train and test index different users or items (their id maps differ); "
            "read test with train's user_map and item_map"
        )
    valid_frac = check_frac(valid_frac, "valid_frac")
    rng = to_rng(random_state)
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
        "valid_frac": valid_frac, "seed": spec_seed(random_state), "rounding": "half-up, capped at n_u - 1",
        "train": train.fingerprint(), "test": test.fingerprint(), "train_test_overlap": n_shared,
    }
    return _build("presplit", spec, fit_train, valid, test)
