"""Tests of gan4rec.data.split: determinism, no leakage, per-user rules, temporal cuts, errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.split import (
    SPLIT_KINDS,
    Split,
    carve_validation,
    leave_k_out,
    make_split,
    presplit,
    random_holdout,
    temporal,
)
from gan4rec.errors import DataError


# ---------------------------------------------------------------------------------------------- helpers
def _random_data(seed: int = 0, n_users: int = 300, n_items: int = 400, mean: float = 12.0) -> Interactions:
    """A sparse dataset with a long-tailed user activity, ratings and (tie-prone) timestamps."""
    rng = np.random.default_rng(seed)
    counts = np.minimum(rng.geometric(1.0 / mean, size=n_users), n_items)
    counts[:5] = [1, 1, 2, 3, 4]  # tiny users on purpose
    users = np.repeat(np.arange(n_users), counts)
    items = np.concatenate([rng.choice(n_items, size=c, replace=False) for c in counts])
    ratings = rng.integers(1, 6, size=len(users))
    timestamps = rng.integers(0, 5000, size=len(users))  # collisions happen: ties are exercised
    return Interactions.from_indices(
        users, items, IdMap(np.arange(n_users) * 10), IdMap(np.arange(n_items) + 1000),
        ratings=ratings, timestamps=timestamps,
    )


def _tiny(rows: dict[int, dict[int, int]], n_users: int, n_items: int, timestamps: bool = True) -> Interactions:
    """Hand-built data: ``rows[u][i] = timestamp``; the rating of (u, i) is ``u + i / 10``."""
    u = [uu for uu, r in rows.items() for _ in r]
    i = [ii for r in rows.values() for ii in r]
    t = [tt for r in rows.values() for tt in r.values()]
    return Interactions.from_indices(
        np.array(u), np.array(i), IdMap(np.arange(n_users)), IdMap(np.arange(n_items)),
        ratings=np.array(u) + np.array(i) / 10, timestamps=np.array(t) if timestamps else None,
    )


def _entries(x: Interactions | None) -> set[tuple[int, int]]:
    if x is None:
        return set()
    return set(zip(x.user_index().tolist(), x.indices.tolist(), strict=True))


def _cells(x: Interactions) -> dict[tuple[int, int], tuple[float, int]]:
    """(user, item) -> (rating, timestamp): checks that per-entry values follow their entries."""
    assert x.ratings is not None and x.timestamps is not None
    keys = zip(x.user_index().tolist(), x.indices.tolist(), strict=True)
    return dict(zip(keys, zip(x.ratings.tolist(), x.timestamps.tolist(), strict=True), strict=True))


def _counts(x: Interactions | None, n_users: int) -> np.ndarray:
    return np.zeros(n_users, dtype=np.int64) if x is None else x.user_counts()


def _half_up(frac: float, n: int) -> int:
    """Reference rounding, written independently: round half up, at most n - 1."""
    from decimal import ROUND_HALF_UP, Decimal

    return min(int((Decimal(str(frac)) * n).quantize(Decimal(1), rounding=ROUND_HALF_UP)), max(n - 1, 0))


DATA = _random_data()

SPLITTERS = {
    "random": lambda d, s: random_holdout(d, test_frac=0.2, valid_frac=0.25, random_state=s),
    "loo-time": lambda d, s: leave_k_out(d, k=2, valid_k=1, by="time", random_state=s),
    "loo-random": lambda d, s: leave_k_out(d, k=1, valid_k=2, by="random", random_state=s),
    "temporal": lambda d, s: temporal(d, test_frac=0.2, valid_frac=0.2),
}


# ---------------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", ["random", "loo-time", "loo-random"])
def test_same_seed_same_split_and_different_seed_different_split(name: str) -> None:
    a, b, c = SPLITTERS[name](DATA, 7), SPLITTERS[name](DATA, 7), SPLITTERS[name](DATA, 8)
    assert a.fingerprint == b.fingerprint and a == b
    for part in ("train", "valid", "test"):
        pa, pb = getattr(a, part), getattr(b, part)
        assert np.array_equal(pa.indptr, pb.indptr) and np.array_equal(pa.indices, pb.indices)
        assert np.array_equal(pa.ratings, pb.ratings) and np.array_equal(pa.timestamps, pb.timestamps)
    assert c.fingerprint != a.fingerprint  # the seed is part of the spec
    assert c.test is not None and a.test is not None
    if name == "loo-time":
        # The seed only breaks timestamp ties, and this data has none at the users' cut points.
        assert c.test.fingerprint() == a.test.fingerprint()
    else:
        assert c.test.fingerprint() != a.test.fingerprint()


def test_generator_seed_gives_the_same_parts_as_the_int_seed() -> None:
    by_int = random_holdout(DATA, random_state=3)
    by_gen = random_holdout(DATA, random_state=np.random.default_rng(3))
    assert by_int.spec["seed"] == 3 and by_gen.spec["seed"] is None
    for part in ("train", "valid", "test"):
        assert getattr(by_int, part).fingerprint() == getattr(by_gen, part).fingerprint()


def test_fingerprint_covers_spec_and_is_checked_when_given() -> None:
    s = random_holdout(DATA, random_state=1)
    again = Split(s.train, s.valid, s.test, s.spec, fingerprint=s.fingerprint)
    assert again == s and hash(again) == hash(s)
    assert Split(s.train, s.valid, s.test, {**s.spec, "note": "x"}).fingerprint != s.fingerprint
    with pytest.raises(DataError, match="does not match its parts"):
        Split(s.train, s.test, s.valid, s.spec, fingerprint=s.fingerprint)
    with pytest.raises(DataError, match="not JSON-ready"):
        Split(s.train, s.valid, s.test, {"kind": "random", "bad": object()})


# ---------------------------------------------------------------------------------------------- leakage
@pytest.mark.parametrize("name", list(SPLITTERS))
def test_parts_are_disjoint_cover_the_input_and_keep_values(name: str) -> None:
    s = SPLITTERS[name](DATA, 5)
    tr, va, te = _entries(s.train), _entries(s.valid), _entries(s.test)
    assert va and te
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert tr | va | te == _entries(DATA)
    assert len(tr) + len(va) + len(te) == DATA.nnz
    whole = _cells(DATA)
    for part in (s.train, s.valid, s.test):
        assert part is not None
        assert part.user_map is DATA.user_map and part.item_map is DATA.item_map
        assert all(whole[k] == v for k, v in _cells(part).items())


@pytest.mark.parametrize("name", list(SPLITTERS))
def test_full_train_is_the_training_data_before_validation(name: str) -> None:
    s = SPLITTERS[name](DATA, 11)
    full = s.full_train()
    assert full.user_map is DATA.user_map
    assert _entries(full) == _entries(DATA) - _entries(s.test)
    # Same CSR layout and values as the test-free remainder of the input, entry for entry.
    held = _entries(s.test)
    rest = DATA.subset(np.array([k not in held for k in zip(
        DATA.user_index().tolist(), DATA.indices.tolist(), strict=True)]))
    assert full.fingerprint() == rest.fingerprint()
    assert np.array_equal(full.ratings, rest.ratings) and np.array_equal(full.timestamps, rest.timestamps)


def test_test_part_does_not_depend_on_validation_and_full_train_equals_the_no_valid_train() -> None:
    with_valid = random_holdout(DATA, valid_frac=0.3, random_state=9)
    without = random_holdout(DATA, valid_frac=0.0, random_state=9)
    assert without.valid is None and without.full_train() is without.train
    assert with_valid.test is not None and without.test is not None
    assert with_valid.test.fingerprint() == without.test.fingerprint()
    full = with_valid.full_train()
    assert full.fingerprint() == without.train.fingerprint()
    assert np.array_equal(full.ratings, without.train.ratings)
    assert np.array_equal(full.timestamps, without.train.timestamps)


# ---------------------------------------------------------------------------------------------- random holdout
def test_random_holdout_per_user_counts_follow_the_rounding_rule() -> None:
    s = random_holdout(DATA, test_frac=0.2, valid_frac=0.25, random_state=0)
    n = DATA.user_counts()
    te, va, tr = _counts(s.test, DATA.n_users), _counts(s.valid, DATA.n_users), s.train.user_counts()
    expected_te = np.array([_half_up(0.2, c) for c in n.tolist()])
    expected_va = np.array([_half_up(0.25, c - t) for c, t in zip(n.tolist(), expected_te.tolist(), strict=True)])
    assert np.array_equal(te, expected_te)
    assert np.array_equal(va, expected_va)
    assert np.array_equal(tr, n - expected_te - expected_va)
    assert (tr >= 1).all()  # every user keeps training history
    # Hand-checked rows: 1 -> 0, 2 -> 0 (0.4), 3 -> 1 (0.6), 4 -> 1 (0.8); validation on the rest.
    assert te[:5].tolist() == [0, 0, 0, 1, 1]
    assert va[:5].tolist() == [0, 0, 1, 1, 1]  # rests 1, 1, 2 (0.5 -> 1), 2, 3 (0.75 -> 1)
    assert 0.18 < te.sum() / DATA.nnz < 0.22


def test_half_way_shares_round_up_and_never_take_the_last_interaction() -> None:
    d = _tiny({0: {0: 1, 1: 2}, 1: {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}, 2: {3: 1}}, 3, 5)
    s = random_holdout(d, test_frac=0.5, valid_frac=0.0, random_state=0)
    assert s.test is not None
    assert s.test.user_counts().tolist() == [1, 3, 0]  # 0.5*2 = 1; 0.5*5 = 2.5 -> 3; single kept
    s = random_holdout(d, test_frac=0.3, valid_frac=0.0, random_state=0)
    assert s.test is not None and s.test.user_counts().tolist() == [1, 2, 0]  # 0.6 -> 1; 1.5 -> 2
    s = random_holdout(d, test_frac=0.9, valid_frac=0.0, random_state=0)
    assert s.test is not None and s.train.user_counts().tolist() == [1, 1, 1]  # capped at n - 1


def test_random_holdout_is_uniform_within_a_user() -> None:
    d = _tiny({0: {i: 0 for i in range(4)}}, 1, 4)
    picks = Counter()
    for seed in range(400):
        s = random_holdout(d, test_frac=0.25, valid_frac=0.0, random_state=seed)
        assert s.test is not None
        picks[int(s.test.indices[0])] += 1
    assert set(picks) == {0, 1, 2, 3} and min(picks.values()) > 70


# ---------------------------------------------------------------------------------------------- leave-k-out
HAND = {
    0: {0: 1, 1: 5, 2: 3, 3: 9},
    1: {0: 2, 2: 7, 3: 4},
    2: {1: 4},
    3: {0: 6, 1: 8, 2: 8, 3: 2},  # two interactions share the latest time
}


def test_leave_one_out_by_time_hand_checked() -> None:
    d = _tiny(HAND, 4, 4)
    s = leave_k_out(d, k=1, valid_k=1, by="time", random_state=0)
    te, va = _entries(s.test), _entries(s.valid)
    assert {(0, 3), (1, 2)} <= te and (2, 1) not in te  # latest of u0 (t=9), u1 (t=7); u2 has 1 <= k
    assert {(0, 1), (1, 3)} <= va  # latest of what is left: u0 t=5, u1 t=4
    assert _entries(s.train) >= {(0, 0), (0, 2), (1, 0), (2, 1)}
    # u3: the tie at t=8 is broken by the seeded key; the other t=8 entry is then the latest left.
    tied = {(3, 1), (3, 2)}
    assert len(te & tied) == 1 and len(va & tied) == 1 and {(3, 0), (3, 3)} <= _entries(s.train)


def test_leave_k_out_ties_are_seeded_and_both_outcomes_occur() -> None:
    d = _tiny(HAND, 4, 4)
    chosen = [int(leave_k_out(d, k=1, valid_k=0, random_state=seed).test.row(3)[0]) for seed in range(40)]
    assert set(chosen) == {1, 2}
    again = [int(leave_k_out(d, k=1, valid_k=0, random_state=seed).test.row(3)[0]) for seed in range(40)]
    assert again == chosen


def test_leave_two_out_and_tiny_users() -> None:
    d = _tiny(HAND, 4, 4)
    s = leave_k_out(d, k=2, valid_k=1, by="time", random_state=0)
    assert _entries(s.test) == {(0, 3), (0, 1), (1, 2), (1, 3), (3, 1), (3, 2)}
    # Left: u0 {t=1, t=3} -> valid t=3; u1 a single entry (1 <= valid_k) and u2 (1 <= k) stay in train.
    assert _entries(s.valid) == {(0, 2), (3, 0)}
    assert _entries(s.train) == {(0, 0), (1, 0), (2, 1), (3, 3)}
    s = leave_k_out(d, k=4, valid_k=1, random_state=0)  # nobody has more than 4
    assert s.test is not None and s.test.nnz == 0 and s.train.nnz + s.valid.nnz == d.nnz


def test_leave_k_out_random_counts_and_valid_k_zero() -> None:
    s = leave_k_out(DATA, k=2, valid_k=0, by="random", random_state=4)
    n = DATA.user_counts()
    assert s.valid is None and s.spec["ties"] is None
    assert np.array_equal(_counts(s.test, DATA.n_users), np.where(n > 2, 2, 0))


def test_leave_k_out_by_time_takes_each_users_latest() -> None:
    s = leave_k_out(DATA, k=2, valid_k=1, by="time", random_state=2)
    assert s.test is not None and s.valid is not None
    users = DATA.user_index()
    latest_train = np.full(DATA.n_users, -1)
    np.maximum.at(latest_train, s.train.user_index(), s.train.timestamps)
    earliest_test = np.full(DATA.n_users, 10**9)
    np.minimum.at(earliest_test, s.test.user_index(), s.test.timestamps)
    np.minimum.at(earliest_test, s.valid.user_index(), s.valid.timestamps)
    has_test = np.bincount(users, minlength=DATA.n_users) > 2
    assert (latest_train[has_test] <= earliest_test[has_test]).all()


# ---------------------------------------------------------------------------------------------- temporal
def test_temporal_hand_checked_and_cut_recorded() -> None:
    d = _tiny({0: {0: 1, 1: 5, 2: 3, 3: 9}, 1: {0: 2, 2: 7}, 2: {1: 6, 3: 8}}, 3, 4)
    s = temporal(d, test_frac=0.375, valid_frac=0.4)
    assert _entries(s.test) == {(0, 3), (1, 2), (2, 3)}
    assert _entries(s.valid) == {(0, 1), (2, 1)}
    assert _entries(s.train) == {(0, 0), (0, 2), (1, 0)}
    assert s.spec["cutoff"] == 7 and s.spec["valid_cutoff"] == 5 and "seed" not in s.spec


def test_temporal_cutoff_is_respected_and_ties_go_to_test() -> None:
    s = temporal(DATA, cutoff=4000, valid_cutoff=3500)
    assert s.test is not None and s.valid is not None
    assert s.test.timestamps.min() >= 4000 and s.valid.timestamps.min() >= 3500
    assert s.valid.timestamps.max() < 4000 and s.train.timestamps.max() < 3500
    assert s.spec["test_frac"] is None and s.spec["cutoff"] == 4000
    # Fraction-placed cut: nothing in train is at or after it, even with ties at the boundary.
    d = _tiny({0: {0: 1, 1: 2, 2: 3}, 1: {0: 3, 1: 3}}, 2, 3)
    s = temporal(d, test_frac=0.2, valid_frac=0.0)  # 1 of 5 -> the cut lands on t=3, shared by three
    assert s.valid is None and s.spec["cutoff"] == 3 and s.test.nnz == 3 and s.train.nnz == 2
    big = temporal(DATA, test_frac=0.2, valid_frac=0.25)
    assert big.train.timestamps.max() < big.valid.timestamps.min() <= big.valid.timestamps.max()
    assert big.valid.timestamps.max() < big.test.timestamps.min()
    assert 0.2 <= big.test.nnz / DATA.nnz < 0.21


def test_temporal_without_test() -> None:
    s = temporal(DATA, test_frac=0.0, valid_frac=0.1)
    assert s.test is None and s.valid is not None and s.spec["cutoff"] is None


# ---------------------------------------------------------------------------------------------- carving
def test_carve_validation_kinds() -> None:
    d = _tiny(HAND, 4, 4)
    rest, valid = carve_validation(d, kind="leave-k-out", valid_k=1, by="time", random_state=0)
    assert {(0, 3), (1, 2)} <= _entries(valid) and valid.nnz == 3
    assert _entries(rest) | _entries(valid) == _entries(d)
    rest, valid = carve_validation(d, kind="temporal", cutoff=8)
    assert _entries(valid) == {(0, 3), (3, 1), (3, 2)} and rest.nnz == d.nnz - 3
    rest, valid = carve_validation(DATA, kind="random", valid_frac=0.2, random_state=1)
    expected = np.array([_half_up(0.2, c) for c in DATA.user_counts().tolist()])
    assert np.array_equal(valid.user_counts(), expected)
    rest, valid = carve_validation(DATA, valid_frac=0.0)
    assert rest is DATA and valid.nnz == 0 and valid.user_map is DATA.user_map


# ---------------------------------------------------------------------------------------------- presplit
def _read_cfgan(train_path, test_path) -> tuple[Interactions, Interactions]:
    tr = np.loadtxt(train_path)  # (n, 3): user item rating, 0-based ids
    te = np.loadtxt(test_path)
    users, _ = IdMap.encode(np.concatenate([tr[:, 0], te[:, 0]]).astype(np.int64))
    items, _ = IdMap.encode(np.concatenate([tr[:, 1], te[:, 1]]).astype(np.int64))

    def build(a: np.ndarray) -> Interactions:
        return Interactions.from_arrays(
            a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], user_map=users, item_map=items,
        )

    return build(tr), build(te)


def test_presplit_on_the_cfgan_files(cfgan_split) -> None:
    train, test = _read_cfgan(*cfgan_split)
    assert (train.nnz, test.nnz, train.n_users) == (80000, 19963, 943)
    s = presplit(train, test)
    assert s.test is test and s.spec["seed"] == 42 and s.spec["train_test_overlap"] == 0
    expected = np.array([_half_up(0.2, c) for c in train.user_counts().tolist()])
    assert np.array_equal(s.valid.user_counts(), expected)
    assert 0.19 < s.valid.nnz / train.nnz < 0.21
    full = s.full_train()
    assert full.fingerprint() == train.fingerprint() and np.array_equal(full.ratings, train.ratings)
    assert presplit(train, test).fingerprint == s.fingerprint
    assert presplit(train, test, random_state=43).fingerprint != s.fingerprint
    replica = presplit(train, test, valid_frac=0)
    assert replica.valid is None and replica.train is train and replica.full_train() is train


def test_presplit_checks_maps_and_overlap() -> None:
    d = _tiny(HAND, 4, 4)
    test = d.subset(np.isin(np.arange(d.nnz), [0, 4]))
    train = d.subset(~np.isin(np.arange(d.nnz), [0, 4]))
    s = presplit(train, test, valid_frac=0.0)
    assert s.train is train and s.spec["kind"] == "presplit"
    other = _tiny(HAND, 4, 5)
    with pytest.raises(DataError, match="id maps differ"):
        presplit(train, other)
    with pytest.raises(DataError, match=r"2 \(user, item\) pairs are in both train and test"):
        presplit(d, test)
    s = presplit(d, test, allow_overlap=True)
    assert s.spec["train_test_overlap"] == 2


# ---------------------------------------------------------------------------------------------- dispatcher
def test_make_split_dispatches() -> None:
    assert SPLIT_KINDS == ("random", "leave-k-out", "temporal", "cold-items")
    assert make_split(DATA, "random", test_frac=0.1, random_state=3) == random_holdout(
        DATA, test_frac=0.1, random_state=3
    )
    assert make_split(DATA, "Leave_K_Out", k=2) == leave_k_out(DATA, k=2)
    assert make_split(DATA, "temporal", cutoff=4000).spec["cutoff"] == 4000
    with pytest.raises(DataError, match="split kind 'bogus' is unknown; expected one of random, leave-k-out"):
        make_split(DATA, "bogus")
    with pytest.raises(DataError, match="takes no argument 'k'"):
        make_split(DATA, "random", k=1)


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: random_holdout(DATA, test_frac=1.0), r"test_frac=1\.0 is out of range; expected a fraction in \[0, 1\)"),
        (lambda: random_holdout(DATA, valid_frac=-0.1), r"valid_frac=-0\.1 is out of range"),
        (lambda: random_holdout(DATA, test_frac=float("nan")), r"test_frac=nan is not a number"),
        (lambda: random_holdout(DATA, test_frac=True), r"test_frac=True is not a number"),
        (lambda: random_holdout(DATA, random_state=-1), r"random_state=-1 is invalid"),
        (lambda: random_holdout(DATA, random_state=1.5), r"random_state=1\.5 is invalid"),
        (lambda: random_holdout([1, 2]), r"data must be an Interactions, got list"),
        (lambda: random_holdout(DATA.subset(np.zeros(DATA.nnz, bool))), r"data has no interactions to split"),
        (lambda: leave_k_out(DATA, k=0), r"k=0 is invalid; expected an integer >= 1"),
        (lambda: leave_k_out(DATA, valid_k=-1), r"valid_k=-1 is invalid; expected an integer >= 0"),
        (lambda: leave_k_out(DATA, k=1.0), r"k=1\.0 is invalid"),
        (lambda: leave_k_out(DATA, by="rating"), r"by='rating' is unknown; expected one of time, random"),
        (
            lambda: leave_k_out(_tiny(HAND, 4, 4, timestamps=False)),
            r"leave-k-out with by='time' needs timestamps, and these interactions carry none",
        ),
        (lambda: temporal(_tiny(HAND, 4, 4, timestamps=False)), r"a temporal split needs timestamps"),
        (lambda: temporal(DATA, cutoff=10**6), r"cutoff=1000000 leaves no interaction at or after it"),
        (lambda: temporal(DATA, cutoff=-5), r"cutoff=-5 leaves no interaction before it"),
        (lambda: temporal(DATA, cutoff="2020"), r"cutoff='2020' is invalid; expected an integer timestamp"),
        (lambda: temporal(DATA, cutoff=4000, valid_cutoff=4000), r"valid_cutoff=4000 is not earlier than"),
        (lambda: temporal(_tiny(HAND, 4, 4), test_frac=0.04), r"test_frac=0\.04 of 12 interactions rounds to none"),
        (
            lambda: temporal(_tiny({0: {0: 3, 1: 3}}, 1, 2), test_frac=0.5),
            r"test_frac=0\.5 puts the cut at timestamp 3, and no interaction is earlier",
        ),
        (lambda: carve_validation(DATA, kind="loo"), r"kind='loo' is unknown; expected one of random"),
    ],
)
def test_bad_arguments_raise_one_sentence_data_errors(call, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and text.count(". ") == 0
