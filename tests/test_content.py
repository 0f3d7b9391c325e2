"""Side information: sparse features on Interactions, feature_matrix / propagate, and the content readers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from gan4rec.data.datasets import load_dataset
from gan4rec.data.features import feature_matrix, propagate
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.io import (
    read_citeulike,
    read_count_lists,
    read_feature_table,
    read_features,
    read_relations,
    read_text_table,
    tfidf,
    write_features,
)
from gan4rec.data.split import cold_items, leave_k_out, random_holdout
from gan4rec.errors import DataError, MissingInputError


def _inter(**features: object) -> Interactions:
    """4 users x 5 items (ids 10..50), every user with 3 items."""
    users = np.repeat(np.arange(4), 3)
    items = np.array([10, 20, 30, 20, 30, 40, 30, 40, 50, 10, 40, 50])
    return Interactions.from_arrays(users, items, item_features=features)  # type: ignore[arg-type]


def _words() -> sp.csr_matrix:
    return sp.csr_matrix(np.array([[1, 0, 2], [0, 0, 0], [0, 3, 0], [1, 1, 0], [0, 0, 5]], dtype=np.float32))


def _links() -> sp.csr_matrix:
    return sp.csr_matrix(np.array(
        [[0, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 1, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]], dtype=np.float32
    ))


# ---------------------------------------------------------------------------------------------- Interactions
def test_sparse_features_are_read_only_csr_aligned_with_the_map() -> None:
    coo = _words().tocoo()
    inter = _inter(words=coo, genre=np.array([0, 1, 1, 0, 2]))
    w = inter.item_features["words"]
    assert isinstance(w, sp.csr_matrix) and w.has_canonical_format
    np.testing.assert_array_equal(w.toarray(), _words().toarray())
    for arr in (w.data, w.indices, w.indptr, inter.item_features["genre"]):
        assert not arr.flags.writeable
    with pytest.raises(ValueError):
        w.data[0] = 7
    coo.data[0] = 99  # the caller's matrix is copied, not shared
    assert w[0, 0] == 1
    # Our frozen matrix is shared, not copied, by every derived part (cheap for large content).
    assert inter.subset(np.ones(inter.nnz, dtype=bool)).item_features["words"] is w
    with pytest.raises(DataError, match="item feature 'bad' has 3 rows, expected 5"):
        _inter(bad=sp.csr_matrix((3, 2)))


def test_features_survive_subset_filter_and_splits() -> None:
    inter = _inter(words=_words(), cites=_links())
    sub = inter.subset(inter.indices != 0)
    assert (sub.item_features["words"] != inter.item_features["words"]).nnz == 0
    # filter drops item 10 (index 0, one interaction left after the mask): rows AND link columns go.
    core = sub.filter(min_item_interactions=2)
    assert core.item_map.ids.tolist() == [20, 30, 40, 50]
    np.testing.assert_array_equal(core.item_features["words"].toarray(), _words().toarray()[1:])
    np.testing.assert_array_equal(core.item_features["cites"].toarray(), _links().toarray()[1:, 1:])
    for split in (random_holdout(inter, random_state=1), leave_k_out(inter, by="random", random_state=1)):
        for part in (split.train, split.valid, split.test, split.full_train()):
            assert part is not None and (part.item_features["words"] != _words()).nnz == 0


def test_fingerprints_leave_features_out_unless_asked() -> None:
    plain = _inter()
    with_words = _inter(words=_words())
    other_words = _inter(words=_words() * 2)
    assert plain.fingerprint() == with_words.fingerprint() == other_words.fingerprint()
    assert with_words.fingerprint(features=True) != other_words.fingerprint(features=True)
    assert with_words.feature_fingerprint() == _inter(words=_words().tocoo()).feature_fingerprint()
    # Same features dense or sparse are different inputs (a model may treat them differently).
    assert with_words.feature_fingerprint() != _inter(words=_words().toarray()).feature_fingerprint()
    titles = _inter(title=np.array(["a", "b", "c", "d", "e"], dtype=object))
    assert titles.feature_fingerprint() == _inter(title=np.array(list("abcde"), dtype=object)).feature_fingerprint()


# ---------------------------------------------------------------------------------------------- features
def test_feature_matrix_stacks_named_features() -> None:
    inter = _inter(words=_words(), genre=np.array([1, 0, 0, 2, 0]), flags=np.eye(5, 2))
    X = feature_matrix(inter, "item", ["words", "genre"])
    assert X.shape == (5, 4) and X.dtype == np.float32
    np.testing.assert_array_equal(X.toarray()[:, 3], [1, 0, 0, 2, 0])
    X.data[:] = 0  # a new matrix: the stored feature is untouched
    assert inter.item_features["words"].sum() == 13
    all_ = feature_matrix(inter)  # sorted names: flags, genre, words
    assert all_.shape == (5, 2 + 1 + 3)
    unit = feature_matrix(inter, names="words", l2_normalize=True)
    norms = np.sqrt(unit.multiply(unit).sum(axis=1)).A1
    np.testing.assert_allclose(norms, [1, 0, 1, 1, 1], rtol=1e-6)  # the zero row stays zero
    with pytest.raises(DataError, match="item feature 'nope' is unknown; the item features are: flags"):
        feature_matrix(inter, "item", ["nope"])
    with pytest.raises(DataError, match="no user features"):
        feature_matrix(inter, "user")
    with pytest.raises(DataError, match="side='items'"):
        feature_matrix(inter, "items")
    with pytest.raises(DataError, match="not numeric"):
        feature_matrix(_inter(title=np.array(list("abcde"))), "item")


def test_propagate_adds_the_mean_of_linked_content() -> None:
    X = sp.csr_matrix(np.array([[1, 0], [0, 2], [4, 0], [0, 0]], dtype=np.float32))
    # Item 0 links to 1 and 2 (and to itself, ignored); item 1 to 0; 2 and 3 to nothing.
    A = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    out = propagate(X, A, weight=0.5).toarray()
    np.testing.assert_allclose(out, [[1 + 0.5 * 2, 0.5 * 1], [0.5, 2], [4, 0], [0, 0]])
    np.testing.assert_array_equal(propagate(X, A * 3, weight=0.0).toarray(), X.toarray())
    with pytest.raises(DataError, match="links have shape"):
        propagate(X, sp.csr_matrix((3, 3)))
    with pytest.raises(DataError, match="weight=-1"):
        propagate(X, A, weight=-1)


# ---------------------------------------------------------------------------------------------- readers
def test_feature_table_csv_and_parquet(tmp_path: Path) -> None:
    m = IdMap(np.array([10, 20, 30]))
    f = tmp_path / "tags.csv"
    f.write_text("item,feature,value\n10,a,1\n10,b,2\n30,a,1\n10,a,0.5\n")
    t = read_feature_table(f, m)
    assert t.names.tolist() == ["a", "b"] and t.n_dropped == 0
    np.testing.assert_array_equal(t.matrix.toarray(), [[1.5, 2], [0, 0], [1, 0]])  # repeats are summed
    pq = tmp_path / "tags.parquet"
    pl.DataFrame({"item": [30, 20], "tag": ["x", "y"]}).write_parquet(pq)
    t2 = read_feature_table(pq, m, feature_column="tag", value_column=None)
    np.testing.assert_array_equal(t2.matrix.toarray(), [[0, 0], [0, 1], [1, 0]])
    no_value = tmp_path / "flags.tsv"
    no_value.write_text("item\tfeature\n20\tz\n")
    assert read_feature_table(no_value, m).matrix.toarray().tolist() == [[0], [1], [0]]


def test_feature_table_errors_name_file_and_line(tmp_path: Path) -> None:
    m = IdMap(np.array([10, 20, 30]))
    f = tmp_path / "f.csv"
    f.write_text("item,feature,value\n10,a,1\n\n99,b,1\n")
    with pytest.raises(DataError, match=r"f\.csv:4: unknown item id '99' \(not in the map\)"):
        read_feature_table(f, m)
    t = read_feature_table(f, m, on_unknown="drop")
    assert t.n_dropped == 1 and t.matrix.shape == (3, 1)
    f.write_text("item,feature,value\n10,a,x\n")
    with pytest.raises(DataError, match=r"f\.csv:2: value 'x' is not a finite number"):
        read_feature_table(f, m)
    f.write_text("item,feature,value\n10,,1\n")
    with pytest.raises(DataError, match=r"f\.csv:2: the feature is empty"):
        read_feature_table(f, m)
    f.write_text("item,tag\n10,a\n")
    with pytest.raises(DataError, match=r"f\.csv: no column 'feature' \(columns: item, tag\)"):
        read_feature_table(f, m)
    pq = tmp_path / "f.parquet"
    pl.DataFrame({"item": [10, 77], "feature": ["a", "b"]}).write_parquet(pq)
    with pytest.raises(DataError, match=r"f\.parquet:row 2: unknown item id '77'"):
        read_feature_table(pq, m)
    with pytest.raises(MissingInputError):
        read_feature_table(tmp_path / "absent.csv", m)


def test_text_table_tfidf(tmp_path: Path) -> None:
    m = IdMap(np.array(["a", "b", "c"], dtype=object))
    f = tmp_path / "text.csv"
    f.write_text('item,text\na,"deep learning, for text"\nc,graph learning\n')
    t = read_text_table(f, m)
    assert t.names.tolist() == ["deep", "for", "graph", "learning", "text"]
    assert t.matrix.shape == (3, 5) and t.matrix[1].nnz == 0  # b has no text: zeros
    np.testing.assert_allclose(np.sqrt(t.matrix.multiply(t.matrix).sum(axis=1)).A1, [1, 0, 1], rtol=1e-6)
    assert len(read_text_table(f, m, max_features=2).names) == 2
    assert read_text_table(f, m, min_df=2).names.tolist() == ["learning"]
    f.write_text("item,text\na,words\nb,\n")
    with pytest.raises(DataError, match=r"text\.csv:3: the text is empty"):
        read_text_table(f, m)
    f.write_text("item,text\na,one\na,two\n")
    with pytest.raises(DataError, match=r"text\.csv:3: item 'a' has a second text"):
        read_text_table(f, m)
    with pytest.raises(DataError, match="no term left"):
        tfidf(["", " "])
    with pytest.raises(DataError, match="min_df=0"):
        tfidf(["a b"], min_df=0)
    with pytest.raises(DataError, match="max_features=0"):
        tfidf(["a b"], max_features=0)
    assert tfidf(["aa bb", "aa cc"], min_df=0.6)[1].tolist() == ["aa"]


def test_relations(tmp_path: Path) -> None:
    m = IdMap(np.array([1, 2, 3]))
    f = tmp_path / "kg.csv"
    f.write_text("head,relation,tail\n1,cites,2\n1,cites,2\n3,cites,1\n2,sequel,3\n")
    rel = read_relations(f, m)
    assert list(rel) == ["cites", "sequel"]
    np.testing.assert_array_equal(rel["cites"].toarray(), [[0, 1, 0], [0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(rel["sequel"].toarray(), [[0, 0, 0], [0, 0, 1], [0, 0, 0]])
    f.write_text("head,relation,tail\n1,cites,2\n1,cites,9\n")
    with pytest.raises(DataError, match=r"kg\.csv:3: unknown tail id '9'"):
        read_relations(f, m)
    assert read_relations(f, m, on_unknown="drop")["cites"].nnz == 1


def test_count_lists_and_their_errors(tmp_path: Path) -> None:
    f = tmp_path / "users.dat"
    f.write_text("2 0 3\n0\n1 1\n")
    m = read_count_lists(f, n_cols=4)
    np.testing.assert_array_equal(m.toarray(), [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]])
    w = tmp_path / "mult.dat"
    w.write_text("2 0:3 2:1\n1 1:2\n")
    np.testing.assert_array_equal(read_count_lists(w, pairs=True).toarray(), [[3, 0, 1], [0, 2, 0]])
    w.write_text("2 0:1.5\t2:1\r\n1 1:2\n")  # non-integer values and tabs: the line-by-line parser
    np.testing.assert_array_equal(read_count_lists(w, pairs=True).toarray(), [[1.5, 0, 1], [0, 2, 0]])
    cases = {
        "2 0 3\n2 1\n": r"users\.dat:2: the count says 2 entries, the line has 1",
        "1 0\n\n": r"users\.dat:2: the line is empty",
        "x 0\n": r"users\.dat:1: the count 'x' is not an integer",
        "1 7\n": r"users\.dat:1: index 7 is out of range; expected < 4",
        "2 0 a\n": r"users\.dat:1: an entry is not an integer index",
        "1 -1\n": r"users\.dat:1: index -1 is negative",
    }
    for text, message in cases.items():
        f.write_text(text)
        with pytest.raises(DataError, match=message):
            read_count_lists(f, n_cols=4)
    w.write_text("1 0:1\n1 3\n")
    with pytest.raises(DataError, match=r"mult\.dat:2: entry '3' is not 'index:count'"):
        read_count_lists(w, pairs=True)
    with pytest.raises(DataError, match=r"mult\.dat: 2 lines, expected 3"):
        read_count_lists(w, pairs=True, n_rows=3)


def _citeulike_folder(root: Path) -> Path:
    root.mkdir(exist_ok=True)
    (root / "users.dat").write_text("2 0 2\n1 1\n")
    (root / "mult.dat").write_text("2 0:1 1:2\n1 2:3\n0\n")
    (root / "vocabulary.dat").write_text("alpha\nbeta\ngamma\ndelta\n")
    (root / "tag-item.dat").write_text("2 0 1\n1 2\n")
    (root / "citations.dat").write_text("1 1\n1 0\n0\n")
    return root


def test_read_citeulike_layout(tmp_path: Path) -> None:
    inter = read_citeulike(_citeulike_folder(tmp_path))
    assert inter.shape == (2, 3) and inter.nnz == 3 and inter.ratings is None
    feats = inter.item_features
    assert feats["text"].shape == (3, 4) and feats["text"][0, 1] == 2  # vocabulary.dat sets the width
    np.testing.assert_array_equal(feats["tags"].toarray(), [[1, 0], [1, 0], [0, 1]])  # item x tag
    np.testing.assert_array_equal(feats["cites"].toarray(), [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    tf = read_citeulike(tmp_path, text="tfidf").item_features["text"]
    np.testing.assert_allclose(np.sqrt(tf.multiply(tf).sum(axis=1)).A1, [1, 1, 0], rtol=1e-6)
    (tmp_path / "users.dat").write_text("2 0 0\n")
    with pytest.raises(DataError, match=r"users\.dat:1: an article is listed twice"):
        read_citeulike(tmp_path)
    (tmp_path / "users.dat").write_text("1 5\n")
    with pytest.raises(DataError, match=r"users\.dat:1: index 5 is out of range; expected < 3"):
        read_citeulike(tmp_path)


def test_citeulike_registry_needs_a_local_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN4REC_DATA", str(tmp_path))
    with pytest.raises(MissingInputError, match=r"set GAN4REC_DATA to a folder holding citeulike-t/"):
        load_dataset("citeulike-t")
    folder = _citeulike_folder(tmp_path / "citeulike-t")
    with pytest.raises(DataError, match=r"users\.dat has sha256 .* expected 02d5d429"):
        load_dataset("citeulike-t")
    assert folder.is_dir()


# ---------------------------------------------------------------------------------------------- save / load
def test_features_save_and_load_without_pickle(tmp_path: Path) -> None:
    inter = _inter(words=_words(), cites=_links(), genre=np.arange(5), title=np.array(list("abcde"), dtype=object))
    path = write_features(tmp_path / "item_features.npz", inter.item_features, inter.item_map)
    with np.load(path, allow_pickle=False) as z:  # readable without pickle
        assert "manifest" in z.files
    back = read_features(path, inter.item_map)
    assert set(back) == {"words", "cites", "genre", "title"}
    again = _inter(**back)
    assert again.feature_fingerprint() != "" and (again.item_features["words"] != _words()).nnz == 0
    assert again.item_features["title"].tolist() == list("abcde")
    # Another map: rows (and link columns) follow it; a missing id is an error.
    sub = IdMap(np.array([50, 20]))
    part = read_features(path, sub)
    np.testing.assert_array_equal(part["words"].toarray(), _words().toarray()[[4, 1]])
    np.testing.assert_array_equal(part["cites"].toarray(), _links().toarray()[[4, 1]][:, [4, 1]])
    with pytest.raises(DataError, match="id 60 of the map has no row"):
        read_features(path, IdMap(np.array([10, 60])))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"bad\.npz: not a features file"):
        read_features(bad, inter.item_map)
    with pytest.raises(DataError, match="holds Python objects"):
        write_features(tmp_path / "x.npz", {"o": np.array([1, "a"], dtype=object)}, IdMap(np.array([1, 2])))


def test_cold_split_parts_round_trip_their_features(tmp_path: Path) -> None:
    inter = _inter(words=_words())
    split = cold_items(inter, cold_frac=0.4, random_state=0)
    write_features(tmp_path / "f.npz", split.train.item_features, split.train.item_map)
    back = read_features(tmp_path / "f.npz", split.train.item_map)
    assert (back["words"] != split.train.item_features["words"]).nnz == 0


# ---------------------------------------------------------------------------------------------- real data
def test_citeulike_t_real(shared_datasets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = shared_datasets / "citeulike-t"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    for name, digest in (("users.dat", "02d5d429"), ("mult.dat", "5ed81e6f")):
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest().startswith(digest)
    monkeypatch.setenv("GAN4REC_DATA", str(shared_datasets))
    data = load_dataset("citeulike-t")
    assert data.shape == (7947, 25975) and data.nnz == 134860 and data.ratings is None
    assert data.item_features["text"].shape == (25975, 20000)
    assert data.item_features["tags"].shape == (25975, 52946)
    assert data.item_features["cites"].shape == (25975, 25975)
    split = cold_items(data, random_state=0)
    assert len(split.cold_valid_items) + len(split.cold_test_items) == 5195  # 20 % of 25,975
    assert not split.cold_mask()[split.train.indices].any()


def test_add_items_keeps_old_indices_and_appends_feature_rows() -> None:
    inter = _inter(words=_words(), cites=_links(), genre=np.arange(5))
    new_words = sp.csr_matrix(np.array([[0, 4, 0]], dtype=np.float32))
    new_links = sp.csr_matrix(([1.0], ([0], [2])), shape=(1, 6))  # item 60 links to item 30
    grown = inter.add_items([60], {"words": new_words, "cites": new_links, "genre": [7]})
    assert grown.item_map.ids.tolist() == [10, 20, 30, 40, 50, 60] and grown.nnz == inter.nnz
    np.testing.assert_array_equal(grown.indices, inter.indices)  # every old index keeps its meaning
    np.testing.assert_array_equal(grown.item_features["words"].toarray()[5], [0, 4, 0])
    cites = grown.item_features["cites"].toarray()
    assert cites.shape == (6, 6) and cites[5, 2] == 1 and not cites[:5, 5].any()
    assert grown.item_features["genre"].tolist() == [0, 1, 2, 3, 4, 7]
    with pytest.raises(DataError, match="ids must be unique"):
        inter.add_items([10], {"words": new_words, "cites": new_links, "genre": [7]})
    with pytest.raises(DataError, match="the new item ids are str ids; the item map holds int ids"):
        inter.add_items(["x"], {"words": new_words, "cites": new_links, "genre": [7]})
    with pytest.raises(DataError, match="item feature 'genre' has no rows for the new items"):
        inter.add_items([60], {"words": new_words, "cites": new_links})
    with pytest.raises(DataError, match=r"item feature 'words' for the new items has shape \(1, 2\), expected \(1, 3\)"):
        inter.add_items([60], {"words": np.ones((1, 2)), "cites": new_links, "genre": [7]})
