"""Tests for gan4rec.data.io: readers, bad rows, MovieLens layouts, the train/test pair, the writer."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.io import (
    MOVIELENS_GENRES,
    BadRows,
    ReadOptions,
    infer_format,
    read_interactions,
    read_interactions_report,
    read_movielens,
    read_uir_pair,
    write_interactions,
    write_recommendations,
)
from gan4rec.errors import DataError, MissingInputError


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _entries(inter: Interactions) -> dict[tuple[object, object], float | None]:
    """{(raw user, raw item): rating} of every stored entry."""
    raw = inter.to_raw()
    ratings = raw.get("rating", [None] * inter.nnz)
    return {
        (u, i): (None if r is None else float(r))
        for u, i, r in zip(raw["user"].tolist(), raw["item"].tolist(), ratings, strict=True)
    }


# -------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".train"])
def test_round_trip_int_ids(tmp_path: Path, suffix: str) -> None:
    inter = Interactions.from_arrays(
        np.array([3, 1, 1, 2**60 + 1, -4]),
        np.array([10, 10, 20, 30, 10]),
        ratings=[4.5, 0.1, 3.0, 5.0, 1.0],
        timestamps=np.array([7, 8, 9, 2**40, -1]),
    )
    path = write_interactions(inter, tmp_path / f"out{suffix}")
    back = read_interactions(path)
    assert back.fingerprint() == inter.fingerprint()
    assert back.user_map.kind == "int" and back.user_map.ids.tolist() == [-4, 1, 3, 2**60 + 1]
    np.testing.assert_array_equal(back.ratings, inter.ratings)  # float32 values survive the text form
    np.testing.assert_array_equal(back.timestamps, inter.timestamps)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_round_trip_string_ids_with_separators_and_quotes(tmp_path: Path, suffix: str) -> None:
    inter = Interactions.from_arrays(
        ["007", "7", "a b", "x,y", "t\tz"], ["i1", "i2", "i1", 'q"r', "i2"], [1, 2, 3, 4, 5]
    )
    back = read_interactions(write_interactions(inter, tmp_path / f"out{suffix}"))
    assert back.user_map.ids.tolist() == ["007", "7", "a b", "t\tz", "x,y"]
    assert back.fingerprint() == inter.fingerprint()
    assert _entries(back) == _entries(inter)


def test_write_is_atomic_and_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "split" / "train.csv"
    write_interactions(Interactions.from_arrays([1], [2]), target)
    write_interactions(Interactions.from_arrays([1, 5], [2, 6]), target)
    assert target.read_text() == "user,item\n1,2\n5,6\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["train.csv"]  # no temp file left behind


def test_write_rejects_ids_that_uir_cannot_hold_and_unknown_suffix(tmp_path: Path) -> None:
    inter = Interactions.from_arrays(["a b"], ["c"])
    with pytest.raises(DataError, match=r"user id 'a b' cannot be written to a uir file"):
        write_interactions(inter, tmp_path / "x.train")
    with pytest.raises(DataError, match=r"suffix '\.bin'"):
        write_interactions(inter, tmp_path / "x.bin")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_recommendations_streams_batches_and_drops_padding(tmp_path: Path, suffix: str) -> None:
    users, items = IdMap(["u0", "u1", "u2"]), IdMap([100, 200, 300])
    batches = [
        (np.array([2, 0]), np.array([[1, 0], [2, -1]]), np.array([[0.9, 0.5], [0.7, -np.inf]])),
        (np.array([1]), np.array([[0, 2]]), np.array([[0.25, 0.125]])),
    ]
    path = tmp_path / f"recs{suffix}"
    assert write_recommendations(path, iter(batches), users, items) == 5
    df = pl.read_parquet(path) if suffix == ".parquet" else pl.read_csv(path)
    assert df.columns == ["user", "item", "rank", "score"]
    assert df.select("user", "item", "rank").rows() == [
        ("u2", 200, 1),
        ("u2", 100, 2),
        ("u0", 300, 1),
        ("u1", 100, 1),
        ("u1", 300, 2),
    ]
    scores = df["score"].cast(pl.Float32).to_numpy()  # csv keeps the shortest float32 text
    np.testing.assert_array_equal(scores, np.float32([0.9, 0.5, 0.7, 0.25, 0.125]))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_read_matches_from_arrays(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "r.csv", "userId,movieId,rating,timestamp\n5,50,4,100\n1,60,2.5,101\n5,60,3,99\n"
    )
    inter = read_interactions(path)
    ref = Interactions.from_arrays([5, 1, 5], [50, 60, 60], [4, 2.5, 3], np.array([100, 101, 99]))
    assert inter.fingerprint() == ref.fingerprint()
    np.testing.assert_array_equal(inter.ratings, ref.ratings)
    np.testing.assert_array_equal(inter.timestamps, ref.timestamps)


# -------------------------------------------------------------------------------- exact ids
def test_leading_zeros_keep_the_column_as_strings(tmp_path: Path) -> None:
    path = _write(tmp_path / "z.csv", "user,item\n007,1\n7,1\n0,2\n")
    inter = read_interactions(path)
    assert inter.user_map.kind == "str" and inter.user_map.ids.tolist() == ["0", "007", "7"]
    assert inter.item_map.kind == "int" and inter.item_map.ids.tolist() == [1, 2]


def test_huge_integer_ids_are_exact_and_overflow_stays_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.train", f"{2**60 + 1} {-(2**62)}\n{2**60} 9223372036854775808\n")
    inter = read_interactions(path)
    assert inter.user_map.ids.dtype == np.int64
    assert inter.user_map.ids.tolist() == [2**60, 2**60 + 1]  # 2**60+1 is not a float64
    assert inter.item_map.kind == "str"  # 2**63 does not fit int64: the column keeps its digits as text
    assert inter.item_map.ids.tolist() == [str(-(2**62)), "9223372036854775808"]


# -------------------------------------------------------------------------------- bad rows
def test_bad_rating_nan_at_line_7_of_csv(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", "user,item,rating\n1,10,4.0\n\n2,10,3.5\n2,20,5\n\n3,30,nan\n4,10,1\n")
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert str(info.value) == f"{path}:7: rating 'nan' is not a finite number"


def test_bad_row_line_in_uir_with_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "x.train", "0 0 3.0\r\n1 1 5.0\r\n\r\n2 2 4.0\r\n3  3\t1.0\r\n\r\n4 4\r\n5 5 2.0\r\n"
    )
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert str(info.value).startswith(f"{path}:7: the rating field (field 2) is missing")


def test_bad_row_line_in_quoted_csv_with_multiline_field(tmp_path: Path) -> None:
    # Line 4-5 is one record (a quoted newline), so the bad timestamp is on physical line 7.
    text = 'user,item,rating,timestamp\n"a,b",1,2,10\n\n"x\ny",1,2,11\n"c",2,3,12\n"d",2,3,1.5\n'
    path = _write(tmp_path / "q.csv", text)
    with pytest.raises(DataError, match=re.escape(f"{path}:7: timestamp '1.5' is not an integer")):
        read_interactions(path)
    inter, bad = read_interactions_report(path, on_bad_rows="skip")
    assert bad.counts == {"non-integer timestamp": 1} and bad.first_lines == {"non-integer timestamp": 7}
    assert sorted(inter.user_map.ids.tolist()) == ["a,b", "c", "x\ny"]


def test_leading_blank_lines_and_empty_first_field_keep_lines_and_fields(tmp_path: Path) -> None:
    # Leading blank lines count as lines; the quoted variant goes through the rescan of the CSV parser.
    for name, body in [("plain.csv", "1,2,3\n"), ("quoted.csv", '"1",2,3\n')]:
        path = _write(tmp_path / name, "\n\r\n  \nuser,item,rating\n" + body + "\n4,5,x\n")
        with pytest.raises(DataError, match=re.escape(f"{path}:7: rating 'x' is not a number")):
            read_interactions(path)
    headerless = _write(tmp_path / "h.csv", '\n\n"1",2,3\n\n4,5,x\n')
    with pytest.raises(DataError, match=re.escape(f"{headerless}:5: rating 'x' is not a number")):
        read_interactions(headerless, header=False)
    # An empty leading field is a field: it must not shift the others (tsv, tab-separated).
    tsv = _write(tmp_path / "t.tsv", "user\titem\trating\n1\t2\t3\n\t2\t3\n")
    with pytest.raises(DataError, match=re.escape(f"{tsv}:3: the user id is empty")):
        read_interactions(tsv)


def test_skip_mode_counts_every_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = (
        "user,item,rating,timestamp\n"  # 1
        "1,10,4,100\n"  # 2 ok
        "1,,4,100\n"  # 3 empty item id
        "2,20,abc,100\n"  # 4 non-numeric rating
        "2,30,nan,100\n"  # 5 non-finite rating
        "3,10,4\n"  # 6 missing field
        "3,20,4,1.5\n"  # 7 non-integer timestamp
        ",20,4,100\n"  # 8 empty user id
        "4,10,inf,100\n"  # 9 non-finite rating
        "4,20,5,200,9\n"  # 10 too many fields
        "5,10,1,300\n"  # 11 ok
    )
    path = _write(tmp_path / "bad.csv", text)
    inter, bad = read_interactions_report(path, on_bad_rows="skip")
    assert bad == BadRows(
        {
            "missing field": 1,
            "too many fields": 1,
            "empty user id": 1,
            "empty item id": 1,
            "non-numeric rating": 1,
            "non-finite rating": 2,
            "non-integer timestamp": 1,
        },
        {
            "missing field": 6,
            "too many fields": 10,
            "empty user id": 8,
            "empty item id": 3,
            "non-numeric rating": 4,
            "non-finite rating": 5,
            "non-integer timestamp": 7,
        },
    )
    assert bad.total == 8
    assert _entries(inter) == {(1, 10): 4.0, (5, 10): 1.0}
    np.testing.assert_array_equal(inter.timestamps, [100, 300])
    with caplog.at_level(logging.WARNING, logger="gan4rec.data.io"):
        read_interactions(path, on_bad_rows="skip")
    assert "skipped 8 bad row(s)" in caplog.text and "2 non-finite rating (first at line 5)" in caplog.text
    with pytest.raises(DataError, match=re.escape(f"{path}:3: the item id is empty")):
        read_interactions(path)


def test_empty_inputs_are_errors_naming_the_file(tmp_path: Path) -> None:
    for name, text in [("e.csv", ""), ("h.csv", "user,item\n"), ("blank.train", "\r\n  \r\n")]:
        path = _write(tmp_path / name, text)
        with pytest.raises(DataError, match=re.escape(f"{path}: no interactions")):
            read_interactions(path)
    path = _write(tmp_path / "allbad.csv", "user,item,rating\n1,2,x\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: no interactions, every data row is bad")):
        read_interactions(path, on_bad_rows="skip")


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError, match=re.escape(str(tmp_path / "nope.csv"))):
        read_interactions(tmp_path / "nope.csv")
    path = _write(tmp_path / "x.foo", "1 2\n")
    with pytest.raises(DataError, match=r"cannot infer the format of .*x\.foo.*suffix '\.foo'"):
        read_interactions(path)
    assert read_interactions(path, format="uir").nnz == 1


def test_invalid_utf8_names_the_encoding_option(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.csv", "user,item\nJos\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8 text; pass encoding="):
        read_interactions(path)
    assert read_interactions(path, encoding="latin-1").user_map.ids.tolist() == ["José"]


# -------------------------------------------------------------------------------- columns
def test_columns_by_name_position_and_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", "score,what,who\n5,10,1\n3,20,2\n")
    with pytest.raises(DataError, match="no recognisable user column"):
        read_interactions(path)
    inter = read_interactions(path, columns={"user": "who", "item": "what"})
    assert _entries(inter) == {(1, 10): 5.0, (2, 20): 3.0}  # "score" found as the rating by default
    no_rating = read_interactions(path, columns={"user": 2, "item": 1, "rating": None})
    assert no_rating.ratings is None and no_rating.nnz == 2
    headerless = _write(tmp_path / "n.csv", "10,1,7\n20,2,8\n")
    inter = read_interactions(
        headerless, header=False, columns={"user": 1, "item": 0, "rating": None, "timestamp": 2}
    )
    assert _entries(inter) == {(1, 10): None, (2, 20): None}
    np.testing.assert_array_equal(inter.timestamps, [7, 8])
    with pytest.raises(DataError, match="without a header; pass a 0-based position"):
        read_interactions(headerless, header=False, columns={"user": "who", "item": 0})
    with pytest.raises(DataError, match="unknown role 'weight'"):
        read_interactions(headerless, header=False, columns={"weight": 2})


def test_custom_separator(tmp_path: Path) -> None:
    path = _write(tmp_path / "ratings.dat", "1::10::5::100\n2::10::3::101\n")
    assert infer_format(path) == "movielens"
    inter = read_interactions(path, format="uir", sep="::")
    assert _entries(inter) == {(1, 10): 5.0, (2, 10): 3.0}


# -------------------------------------------------------------------------------- rules
def test_min_rating_duplicates_and_kcore(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "user,item,rating\n1,10,3\n1,10,5\n1,10,4\n2,20,1\n2,10,4\n")
    assert _entries(read_interactions(path)) == {(1, 10): 4.0, (2, 10): 4.0, (2, 20): 1.0}
    assert _entries(read_interactions(path, duplicates="first"))[(1, 10)] == 3.0
    assert _entries(read_interactions(path, duplicates="max"))[(1, 10)] == 5.0
    with pytest.raises(DataError, match="duplicate interaction"):
        read_interactions(path, duplicates="error")
    positive = read_interactions(path, min_rating=4)
    # The rule runs before duplicates are resolved: of (1,10) only the 5 and the 4 pass, the last (4) stays.
    assert _entries(positive) == {(1, 10): 4.0, (2, 10): 4.0}
    assert positive.item_map.ids.tolist() == [10]  # item 20 had no positive interaction
    with pytest.raises(DataError, match=r"no rating is >= min_rating=6"):
        read_interactions(path, min_rating=6)
    no_ratings = _write(tmp_path / "p.train", "1 2\n")
    with pytest.raises(DataError, match="min_rating=4 needs ratings"):
        read_interactions(no_ratings, min_rating=4)


def test_kcore_is_iterated(tmp_path: Path) -> None:
    # u3 and items 3, 4 go in round one; u4 is then left with one item and goes in round two.
    rows = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (3, 1), (4, 4), (4, 1)]
    path = _write(tmp_path / "k.train", "".join(f"{u} {i}\n" for u, i in rows))
    inter = read_interactions(path, min_user_interactions=2, min_item_interactions=2)
    assert inter.user_map.ids.tolist() == [1, 2] and inter.item_map.ids.tolist() == [1, 2]
    assert inter.nnz == 4
    with pytest.raises(DataError, match=re.escape(f"{path}: no interaction is left")):
        read_interactions(path, min_user_interactions=5)
    with pytest.raises(DataError, match="cannot be combined with user_map"):
        read_interactions(path, min_user_interactions=2, user_map=IdMap([1, 2, 3, 4]))


def test_fixed_maps_and_unknown_ids(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "user,item\n1,a\n2,b\n3,a\n")
    inter = read_interactions(path, user_map=IdMap([3, 2, 1, 9]), item_map=IdMap(["b", "a"]))
    assert inter.user_map.ids.tolist() == [3, 2, 1, 9] and inter.shape == (4, 2)
    assert _entries(inter) == {(3, "a"): None, (2, "b"): None, (1, "a"): None}
    with pytest.raises(DataError, match=re.escape(f"{path}:4: user id '3' is not in the given user map")):
        read_interactions(path, user_map=IdMap([1, 2]))
    inter, bad = read_interactions_report(
        path, user_map=IdMap([1, 2]), item_map=IdMap(["a"]), on_bad_rows="skip"
    )
    assert bad.counts == {"unknown user id": 1, "unknown item id": 1}
    assert bad.first_lines == {"unknown user id": 4, "unknown item id": 3}
    assert _entries(inter) == {(1, "a"): None}


# -------------------------------------------------------------------------------- parquet
def test_parquet_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pl.DataFrame(
        {
            "uid": [1, 2, 2],
            "iid": ["a", "b", "c"],
            "score": [1.0, None, 3.0],
            "ts": [dt.datetime(2020, 1, 1)] * 3,
        }
    ).write_parquet(path)
    with pytest.raises(
        DataError, match=re.escape(f"{path}:row 2: the rating field (column 'score') is missing")
    ):
        read_interactions(path)
    inter, bad = read_interactions_report(path, on_bad_rows="skip")
    assert bad.counts == {"missing field": 1} and bad.unit == "row"
    np.testing.assert_array_equal(inter.timestamps, [1577836800, 1577836800])
    floats = tmp_path / "f.parquet"
    pl.DataFrame({"user": [1.0], "item": [2]}).write_parquet(floats)
    with pytest.raises(DataError, match="has dtype Float64; expected integers or strings"):
        read_interactions(floats)


# -------------------------------------------------------------------------------- MovieLens
def test_movielens_100k_real(ml100k_dir: Path) -> None:
    inter = read_movielens(ml100k_dir)
    assert inter.shape == (943, 1682) and inter.nnz == 100000
    assert inter.ratings is not None and inter.timestamps is not None
    toy = inter.item_map.get(1)
    assert inter.item_features["title"][toy] == "Toy Story (1995)"
    genres = inter.item_features["genres"]
    assert genres.shape == (1682, len(MOVIELENS_GENRES)) and genres.dtype == np.uint8
    assert [MOVIELENS_GENRES[k] for k in np.flatnonzero(genres[toy])] == ["Animation", "Children", "Comedy"]
    assert genres[:, MOVIELENS_GENRES.index("IMAX")].sum() == 0
    u1 = inter.user_map.get(1)  # 1|24|M|technician|85711
    feats = inter.user_features
    assert (feats["age"][u1], feats["gender"][u1], feats["occupation"][u1], feats["zip"][u1]) == (
        24,
        "M",
        "technician",
        "85711",
    )
    # The ratings file alone, found by name, gets the same data and the side files beside it.
    assert read_interactions(ml100k_dir / "u.data").fingerprint() == inter.fingerprint()
    positive = read_movielens(ml100k_dir, min_rating=4, features=False)
    assert positive.nnz == int((inter.ratings >= 4).sum()) and not positive.item_features


def test_movielens_latest_small_real(shared_datasets: Path) -> None:
    folder = shared_datasets / "ml-latest-small"
    if not folder.exists():
        pytest.skip(f"{folder} is absent")
    inter = read_movielens(folder)
    assert inter.shape == (671, 9066) and inter.nnz == 100004
    i11 = inter.item_map.get(11)
    assert inter.item_features["title"][i11] == "American President, The (1995)"  # a quoted comma
    assert [MOVIELENS_GENRES[k] for k in np.flatnonzero(inter.item_features["genres"][i11])] == [
        "Comedy",
        "Drama",
        "Romance",
    ]
    assert not inter.user_features
    assert sorted(np.unique(inter.ratings).tolist()) == [0.5 * k for k in range(1, 11)]
    # tags.csv: a binary bag of tags per rated item, its columns the (normalised) tags.
    tags, names = inter.item_features["tags"], inter.item_feature_columns["tags"]
    assert tags.shape == (9066, len(names)) and set(tags.data.tolist()) == {1.0}
    assert names.tolist() == sorted(names.tolist()) and all(n == n.strip().lower() for n in names)
    i339 = inter.item_map.get(339)  # "15,339,sandra 'boring' bullock,1138537770"
    assert "sandra 'boring' bullock" in names[tags[i339].indices].tolist()


def _ml1m(folder: Path) -> Path:
    folder.mkdir()
    _write(
        folder / "ratings.dat",
        "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n3::30::1::978300275\n",
    )
    _write(
        folder / "movies.dat",
        "10::Toy Story (1995)::Animation|Children's|Comedy\n20::Caf\xe9 Society (1995)::Drama\n"
        "40::Unrated (2000)::Horror\n".encode("latin-1"),
    )
    _write(
        folder / "users.dat",
        "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n9::F::18::3::00000\n",
    )
    return folder


def test_movielens_1m_fixture(tmp_path: Path) -> None:
    inter = read_movielens(_ml1m(tmp_path / "ml-1m"))
    assert inter.user_map.ids.tolist() == [1, 2, 3] and inter.item_map.ids.tolist() == [10, 20, 30]
    # Item 40 has no rating (ignored); item 30 has no movies.dat row (empty title, no genre).
    assert inter.item_features["title"].tolist() == ["Toy Story (1995)", "Café Society (1995)", ""]
    expected = np.zeros((3, len(MOVIELENS_GENRES)), dtype=np.uint8)
    expected[0, [MOVIELENS_GENRES.index(g) for g in ("Animation", "Children", "Comedy")]] = 1
    expected[1, MOVIELENS_GENRES.index("Drama")] = 1
    np.testing.assert_array_equal(inter.item_features["genres"], expected)
    assert inter.user_features["gender"].tolist() == ["F", "M", "M"]
    assert inter.user_features["age"].tolist() == [1, 56, 25]
    assert inter.user_features["occupation"].tolist() == [10, 16, 15]
    assert inter.user_features["zip"].tolist() == ["48067", "70072", "55117"]
    assert _entries(inter)[(1, 20)] == 3.0
    # k-core keeps the features aligned with the surviving users and items.
    core = read_movielens(tmp_path / "ml-1m", layout="1m", min_item_interactions=2)
    assert core.item_map.ids.tolist() == [10] and core.item_features["title"].tolist() == ["Toy Story (1995)"]
    assert core.user_features["zip"].tolist() == ["48067", "70072"]


def test_movielens_latest_layout_fixture_and_layout_errors(tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest"
    folder.mkdir()
    _write(folder / "ratings.csv", "userId,movieId,rating,timestamp\n1,11,4.5,100\n2,12,3.0,101\n")
    _write(
        folder / "movies.csv",
        'movieId,title,genres\n11,"American President, The (1995)",Comedy|Drama|Romance\n'
        "12,Untitled,(no genres listed)\n13,Other,IMAX\n",
    )
    inter = read_interactions(folder)
    assert inter.item_features["title"].tolist() == ["American President, The (1995)", "Untitled"]
    assert np.flatnonzero(inter.item_features["genres"][1]).tolist() == [MOVIELENS_GENRES.index("unknown")]
    assert "tags" not in inter.item_features  # no tags.csv
    with pytest.raises(MissingInputError, match=r"ratings\.dat does not exist"):
        read_movielens(folder, layout="1m")
    with pytest.raises(DataError, match="layout='2m'"):
        read_movielens(folder, layout="2m")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingInputError, match="holds no MovieLens ratings file"):
        read_movielens(empty)


def test_movielens_tags_bag_per_item(tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest"
    folder.mkdir()
    _write(folder / "ratings.csv",
           "userId,movieId,rating,timestamp\n1,11,4.5,100\n2,12,3.0,101\n3,13,1,102\n4,11,2,103\n4,12,5,104\n")
    _write(folder / "movies.csv", "movieId,title,genres\n11,A,Drama\n12,B,Comedy\n13,C,Drama\n")
    _write(
        folder / "tags.csv",
        "userId,movieId,tag,timestamp\n1,11,Dark  Comedy,1\n2,11,dark comedy,2\n2,12,\"funny, light\",3\n"
        "1,99,unrated movie,4\n3,12, Dark comedy ,5\n3,13,,6\n",
    )
    inter = read_movielens(folder)
    names = inter.item_feature_columns["tags"].tolist()
    assert names == ["dark comedy", "funny, light"]  # 99 has no ratings; 13's empty tag is dropped
    np.testing.assert_array_equal(inter.item_features["tags"].toarray(), [[1, 0], [1, 1], [0, 0]])
    # k-core filtering keeps the rows aligned with the surviving items: 13 (one rating) goes, 11 and 12 stay.
    core = read_movielens(folder, min_item_interactions=2)
    assert core.item_map.ids.tolist() == [11, 12]
    assert core.item_features["tags"].toarray().tolist() == [[1, 0], [1, 1]]
    sub = inter.subset(inter.indices != 0)  # items stay in the map, so do their tags
    assert sub.item_features["tags"].shape == (3, 2)
    assert read_movielens(folder, features=False).item_features == {}
    _write(folder / "tags.csv", "userId,movieId,tag,timestamp\n1,11,a,1\n1,x11,b,2\n")
    with pytest.raises(DataError, match=r"tags\.csv:3: movie id 'x11' is not an integer"):
        read_movielens(folder)
    _write(folder / "tags.csv", "userId,movieId,tag,timestamp\n1,11,a,1\n7\n")
    with pytest.raises(DataError, match=r"tags\.csv:3: found .*, expected 2"):
        read_movielens(folder)


def test_movielens_side_file_errors_name_the_line(tmp_path: Path) -> None:
    folder = _ml1m(tmp_path / "ml-1m")
    _write(folder / "users.dat", "1::F::1::10::48067\n2::M::56\n")
    with pytest.raises(DataError, match=re.escape(f"{folder / 'users.dat'}:2: found 3 fields, expected 5")):
        read_movielens(folder)


# -------------------------------------------------------------------------------- train/test pairs
def test_uir_pair_shares_maps_including_test_only_ids(tmp_path: Path) -> None:
    train = _write(tmp_path / "a.train", "0 0 3.0\r\n0 1 5.0\r\n1 1 4.0\r\n")
    test = _write(tmp_path / "a.test", "1 0 2.0\r\n2 7 1.0\r\n")
    tr, te = read_uir_pair(train, test)
    assert tr.same_space(te)
    assert tr.user_map.ids.tolist() == [0, 1, 2] and tr.item_map.ids.tolist() == [0, 1, 7]
    assert (tr.nnz, te.nnz) == (3, 2)
    assert _entries(te) == {(1, 0): 2.0, (2, 7): 1.0}
    # One non-canonical id in either file turns the shared map into strings for both.
    _write(test, "1 0 2.0\r\n2 007 1.0\r\n")
    tr, te = read_uir_pair(train, test)
    assert tr.item_map.kind == "str" and tr.item_map.ids.tolist() == ["0", "007", "1"]
    assert tr.same_space(te)


def test_cfgan_pair_counts(cfgan_split: tuple[Path, Path]) -> None:
    train_path, test_path = cfgan_split
    train, test = read_uir_pair(train_path, test_path)
    assert train.shape == test.shape == (943, 1653)
    assert (train.nnz, test.nnz) == (80000, 19963)
    assert train.user_map.kind == "int" and train.user_map.ids.tolist() == list(range(943))
    assert train.same_space(test)
    assert test.item_counts().sum() == 19963 and (train.item_counts() > 0).sum() == 1653


# -------------------------------------------------------------------------------- one option list
def test_read_options_match_the_report_signature() -> None:
    """ReadOptions (read_interactions' keywords) lists exactly read_interactions_report's keywords."""
    params = inspect.signature(read_interactions_report).parameters
    keyword_only = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(ReadOptions.__annotations__) == keyword_only


def test_read_interactions_forwards_every_option(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.txt", "u1;a;5;10\nu2;b;x;11\nu1;b;1;12\nu1;b;4;13\n")
    kw: ReadOptions = {
        "format": "csv", "sep": ";", "header": False, "min_rating": 2.0, "duplicates": "first",
        "on_bad_rows": "skip", "columns": {"user": 0, "item": 1, "rating": 2, "timestamp": 3},
    }
    inter = read_interactions(path, **kw)
    report, bad = read_interactions_report(path, **kw)
    assert _entries(inter) == _entries(report) == {("u1", "a"): 5.0, ("u1", "b"): 4.0}
    assert bad.counts == {"non-numeric rating": 1}
    with pytest.raises(TypeError):
        read_interactions(path, seperator=";")  # type: ignore[call-arg]
