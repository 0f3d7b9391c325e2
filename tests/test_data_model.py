"""IdMap and Interactions: raw ids kept exactly, canonical CSR, duplicates, k-core, immutability."""

from __future__ import annotations

import numpy as np
import pytest

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError


def test_idmap_keeps_raw_ids_exactly() -> None:
    big = 2**60 + 1  # not representable in float64
    m, codes = IdMap.encode(np.array([big, 3, big], dtype=np.int64))
    assert m.ids.tolist() == [3, big] and codes.tolist() == [1, 0, 1]
    assert m.to_raw([1])[0] == big and m.get(big) == 1 and m.get(float(big)) == -1
    s, _ = IdMap.encode(["007", "7", "a"])
    assert s.ids.tolist() == ["007", "7", "a"] and s.kind == "str"
    assert s.get("007") == 0 and s.get("7") == 1


def test_idmap_lookup_json_and_errors() -> None:
    m = IdMap(np.array([30, 10, 20]))
    np.testing.assert_array_equal(m.lookup(np.array([10, 99, 30])), [1, -1, 0])
    assert m.get("20") == 2, "string forms of integer ids are accepted at the edges"
    assert IdMap.from_json(m.to_json()) == m
    with pytest.raises(DataError, match="unknown user 99"):
        m.index([10, 99], what="user")
    with pytest.raises(DataError, match="unique"):
        IdMap([1, 1])
    with pytest.raises(DataError, match="floats are never accepted"):
        IdMap(np.array([1.0, 2.0]))
    with pytest.raises(DataError, match="not a mix"):
        IdMap(np.array([1, "a"], dtype=object))


def test_interactions_canonical_csr() -> None:
    x = Interactions.from_arrays(["u2", "u1", "u2"], [5, 9, 1], [4.0, 3.0, 5.0], [30, 10, 20])
    assert x.shape == (2, 3) and x.nnz == 3
    assert x.user_map.ids.tolist() == ["u1", "u2"] and x.item_map.ids.tolist() == [1, 5, 9]
    np.testing.assert_array_equal(x.indptr, [0, 1, 3])
    np.testing.assert_array_equal(x.indices, [2, 0, 1])  # rows sorted by item index
    np.testing.assert_array_equal(x.ratings, [3.0, 5.0, 4.0])
    np.testing.assert_array_equal(x.timestamps, [10, 20, 30])
    np.testing.assert_array_equal(x.csr().toarray(), [[0, 0, 1], [1, 1, 0]])
    with pytest.raises(ValueError):
        x.indices[0] = 1  # read-only


@pytest.mark.parametrize(("policy", "rating"), [("last", 2.0), ("first", 5.0), ("max", 5.0)])
def test_duplicates_policy(policy: str, rating: float) -> None:
    x = Interactions.from_arrays([1, 1, 1], [7, 7, 8], [5.0, 2.0, 1.0], duplicates=policy)  # type: ignore[arg-type]
    assert x.nnz == 2 and x.ratings[0] == rating


def test_duplicates_error_names_the_pair() -> None:
    with pytest.raises(DataError, match="duplicate interaction \\(user 1, item 7\\)"):
        Interactions.from_arrays([1, 1], [7, 7], duplicates="error")


def test_min_rating_and_non_finite() -> None:
    x = Interactions.from_arrays([1, 1, 2], [1, 2, 1], [4, 3, 5], min_rating=4)
    assert x.nnz == 2 and x.n_users == 2
    with pytest.raises(DataError, match="not a finite number"):
        Interactions.from_arrays([1], [1], [np.nan])
    with pytest.raises(DataError, match="min_rating needs ratings"):
        Interactions.from_arrays([1], [1], min_rating=3)


def test_fixed_maps_reject_unknown_ids() -> None:
    um, im = IdMap([1, 2]), IdMap([10, 20])
    x = Interactions.from_arrays([2], [10], user_map=um, item_map=im)
    assert x.shape == (2, 2) and x.row(1).tolist() == [0] and x.row(0).tolist() == []
    with pytest.raises(DataError, match="unknown item id 30"):
        Interactions.from_arrays([2], [30], user_map=um, item_map=im)


def test_kcore_filter_reindexes_maps_and_features() -> None:
    # u1 has 3 items, u2 has 1, u3 has 2; item 'c' is only used by u2.
    x = Interactions.from_arrays(
        ["u1", "u1", "u1", "u2", "u3", "u3"], ["a", "b", "d", "c", "a", "b"],
        item_features={"genre": np.array([0, 1, 2, 3])},
    )
    y = x.filter(min_user_interactions=2, min_item_interactions=2)
    # u2 goes (1 item); then 'c' and 'd' (1 user each) go; u1 keeps a, b.
    assert y.user_map.ids.tolist() == ["u1", "u3"] and y.item_map.ids.tolist() == ["a", "b"]
    np.testing.assert_array_equal(y.item_features["genre"], [0, 1])
    assert y.nnz == 4


def test_subset_keeps_maps_and_empty_rows() -> None:
    x = Interactions.from_arrays([1, 1, 2, 3], [1, 2, 1, 2], [1, 2, 3, 4])
    y = x.subset(np.array([True, False, False, True]))
    assert y.same_space(x) and y.nnz == 2
    np.testing.assert_array_equal(y.indptr, [0, 1, 1, 2])
    np.testing.assert_array_equal(y.ratings, [1, 4])
    assert y.fingerprint() != x.fingerprint()
    assert x.subset(np.ones(4, bool)).fingerprint() == x.fingerprint()


def test_from_pandas_and_polars_agree() -> None:
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    cols = {"userId": ["a", "b", "a"], "movieId": [3, 1, 2], "rating": [4.5, 3.0, 1.0], "ts": [3, 2, 1]}
    kw = {"user": "userId", "item": "movieId", "rating": "rating", "timestamp": "ts"}
    a = Interactions.from_pandas(pd.DataFrame(cols), **kw)
    b = Interactions.from_polars(pl.DataFrame(cols), **kw)
    assert a.fingerprint() == b.fingerprint()
    np.testing.assert_array_equal(a.ratings, b.ratings)
    with pytest.raises(DataError, match="no column 'user'"):
        Interactions.from_pandas(pd.DataFrame(cols))
