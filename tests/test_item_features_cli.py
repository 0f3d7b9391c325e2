"""Users give item features: --item-features FILE / [data] item_features, feature column names through the data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from gan4rec.cli import main
from gan4rec.data.interactions import Interactions
from gan4rec.data.io import attach_item_features, read_feature_columns, read_features, write_features
from gan4rec.data.split import make_split
from gan4rec.errors import DataError
from gan4rec.models.base import Recommender

N_USERS, N_ITEMS = 40, 30


def _interactions_csv(path: Path) -> Path:
    rng = np.random.default_rng(1)
    lines = ["user,item"]
    for u in range(N_USERS):
        lines += [f"{u},{i}" for i in rng.choice(N_ITEMS, 7, replace=False)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("itemfeat")
    genres = ["item,feature,value"] + [f"{i},g{i % 4},1" for i in range(N_ITEMS)] + [f"{i},h{i % 3},2" for i in range(N_ITEMS)]
    genres.append("999,g1,1")  # an item the data does not have: warned about and dropped
    (root / "genres.csv").write_text("\n".join(genres) + "\n")
    words = ["alpha", "beta", "gamma", "delta", "omega"]
    texts = ["item,abstract"] + [f'{i},"{words[i % 5]} {words[(i + 1) % 5]} study"' for i in range(N_ITEMS)]
    (root / "text.csv").write_text("\n".join(texts) + "\n")
    return {"root": root, "data": _interactions_csv(root / "inter.csv"), "genres": root / "genres.csv",
            "text": root / "text.csv"}


def test_train_with_a_feature_table_records_it_and_evaluate_finds_it_again(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = files["root"]
    argv = ["-q", "train", "--model", "content-knn", "--data", str(files["data"]), "--split", "cold-items",
            "--item-features", str(files["genres"]), "--save", str(root / "m"), "--json", str(root / "r.json")]
    assert main(argv) == 0, capsys.readouterr().err
    assert "dropped 1 row(s)" in capsys.readouterr().err  # the unknown item 999, warned about
    result = json.loads((root / "r.json").read_text())
    assert result["dataset"]["item_features"] == {
        "file": str(files["genres"]), "feature": "genres", "columns": 7, "rows_dropped": 1, "items_without": 0}
    model = Recommender.load(root / "m")
    assert model.feature_names_[:2] == ["genres=g0", "genres=g1"]  # type: ignore[attr-defined]
    assert len(model.feature_names_) == model.features_.shape[1] == 7  # type: ignore[attr-defined]
    # row of item 5 is what the file says for item 5 (joined by id, not by position): g1 and h2 (value 2)
    col = {n: j for j, n in enumerate(model.feature_names_)}  # type: ignore[attr-defined]
    row = model.features_[model.item_map_.index([5])[0]].toarray()[0]  # type: ignore[attr-defined]
    assert row[col["genres=g1"]] == 1 and row[col["genres=h2"]] == 2 and row.sum() == 3
    folder = root / "m" / (root / "m" / "CURRENT").read_text().strip()
    spec = json.loads((folder / "meta.json").read_text())["data_spec"]
    assert spec["item_features"] == str(files["genres"].resolve())
    # the cold-items split's fingerprint covers the features: evaluate reproduces it only with the same file
    assert main(["-q", "evaluate", str(root / "m"), "--json", str(root / "e.json")]) == 0
    assert json.loads((root / "e.json").read_text())["dataset"]["item_features"]["file"] == str(files["genres"].resolve())


def test_evaluate_names_the_missing_recorded_feature_file(files: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    feats = tmp_path / "genres.csv"
    feats.write_text(files["genres"].read_text())
    assert main(["-q", "train", "--model", "content-knn", "--data", str(files["data"]), "--item-features",
                 str(feats), "--save", str(tmp_path / "m")]) == 0
    feats.unlink()
    capsys.readouterr()
    assert main(["-q", "evaluate", str(tmp_path / "m")]) == 66
    err = capsys.readouterr().err
    assert "item features file recorded" in err and "--item-features FILE" in err


def test_text_column_becomes_tfidf_with_vocabulary_options(files: dict[str, Path], tmp_path: Path) -> None:
    assert main(["-q", "train", "--model", "ridge-map", "--params", '{"backbone_params": {"epochs": 2}}',
                 "--data", str(files["data"]), "--split", "cold-items", "--item-features", str(files["text"]),
                 "--item-features-text", "abstract", "--max-features", "3", "--save", str(tmp_path / "m")]) == 0
    model = Recommender.load(tmp_path / "m")
    names = model.feature_names_  # type: ignore[attr-defined]
    assert len(names) == 3 and all(n.startswith("abstract=") for n in names)
    assert "abstract=study" in names  # in every text: among the most frequent


def test_toml_data_keys(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'model = "content-knn"\n[data]\ndata = "{files["data"]}"\nitem_features = "{files["text"]}"\n'
                   'item_features_text = "abstract"\nmin_df = 2\nmax_features = 4\n'
                   '[protocol]\nsplit = "cold-items"\n')
    assert main(["-q", "train", "--config", str(cfg), "--save", str(tmp_path / "m")]) == 0
    model = Recommender.load(tmp_path / "m")
    assert len(model.feature_names_) == 4  # type: ignore[attr-defined]
    bad = tmp_path / "bad.toml"
    bad.write_text(f'model = "content-knn"\n[data]\ndata = "{files["data"]}"\nitem_features = "{files["text"]}"\n'
                   'item_features_text = "abstract"\nmin_df = 0\n')
    capsys.readouterr()
    assert main(["-q", "train", "--config", str(bad)]) == 65
    assert "data.min_df = 0" in capsys.readouterr().err
    bad.write_text(f'model = "content-knn"\n[data]\ndata = "{files["data"]}"\nmax_features = 4\n')
    assert main(["-q", "train", "--config", str(bad)]) == 65
    assert "data.max_features needs data.item_features" in capsys.readouterr().err


def test_bad_feature_input_leaves_nothing_behind(files: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("item,abstract\n1,some words\n2,\n")
    argv = ["-q", "train", "--model", "content-knn", "--data", str(files["data"]), "--item-features", str(empty),
            "--item-features-text", "abstract", "--save", str(tmp_path / "m"), "--json", str(tmp_path / "r.json")]
    assert main(argv) == 65
    assert "empty.csv:3: the abstract is empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv"]


def test_attach_item_features_joins_by_id(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = Interactions.from_arrays(np.array([1, 1, 2]), np.array(["a", "b", "c"]))
    table = tmp_path / "tags.parquet"
    pl.DataFrame({"item": ["c", "zz", "a", "a"], "feature": ["red", "blue", "red", "big"]}).write_parquet(table)
    with caplog.at_level(logging.WARNING):
        out, record = attach_item_features(data, table)
    assert record == {"file": str(table), "feature": "tags", "columns": 2, "rows_dropped": 1, "items_without": 1}
    assert out.item_feature_columns["tags"].tolist() == ["big", "red"]
    np.testing.assert_array_equal(out.item_features["tags"].toarray(), [[1, 1], [0, 0], [0, 1]])  # a, b, c
    assert "1 of the data's 3 items have no row" in caplog.text
    with pytest.raises(DataError, match="tags.parquet: the data already has an item feature 'tags'; rename the file"):
        attach_item_features(out, table)
    with pytest.raises(DataError, match="apply to a text column"):
        attach_item_features(data, table, max_features=3)


def test_column_names_survive_subset_filter_split_add_items_and_saving(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 20, 300), rng.integers(0, 25, 300)
    flags = (rng.random((25, 3)) < 0.5).astype(np.float32)
    names = np.array(["x", "y", "z"])
    data = Interactions.from_arrays(users, items, item_features={"flags": flags},
                                    item_feature_columns={"flags": names})
    assert data.item_feature_columns["flags"].flags.writeable is False
    split = make_split(data, "cold-items", random_state=0)
    for part in (split.train, split.test, split.full_train(), data.filter(min_item_interactions=12)):
        assert part.item_feature_columns["flags"].tolist() == ["x", "y", "z"]
    grown = data.add_items([100], {"flags": np.ones((1, 3), dtype=np.float32)})
    assert grown.item_feature_columns["flags"].tolist() == ["x", "y", "z"]
    write_features(tmp_path / "f.npz", data.item_features, data.item_map, data.item_feature_columns)
    assert read_feature_columns(tmp_path / "f.npz")["flags"].tolist() == ["x", "y", "z"]
    assert set(read_features(tmp_path / "f.npz", data.item_map)) == {"flags"}
    with pytest.raises(DataError, match="has 3 columns but 2 column names"):
        Interactions.from_arrays(users, items, item_features={"flags": flags},
                                 item_feature_columns={"flags": names[:2]})
    with pytest.raises(DataError, match="not a item feature|which is not a item feature"):
        Interactions.from_arrays(users, items, item_feature_columns={"nosuch": names})


def test_citeulike_reader_names_words_and_tags(tmp_path: Path) -> None:
    from gan4rec.data.io import read_citeulike

    (tmp_path / "users.dat").write_text("2 0 2\n1 1\n")
    (tmp_path / "mult.dat").write_text("2 0:1 1:2\n1 2:3\n0\n")
    (tmp_path / "vocabulary.dat").write_text("alpha\nbeta\ngamma\ndelta\n")
    (tmp_path / "tag-item.dat").write_text("2 0 1\n1 2\n")
    inter = read_citeulike(tmp_path)
    assert inter.item_feature_columns["text"].tolist() == ["alpha", "beta", "gamma", "delta"]
    assert "tags" not in inter.item_feature_columns  # no tags.dat: no names
    (tmp_path / "tags.dat").write_text("neural\nvision")  # no final newline, as CiteULike-t ships it
    assert read_citeulike(tmp_path).item_feature_columns["tags"].tolist() == ["neural", "vision"]
    (tmp_path / "tags.dat").write_text("neural\n")
    with pytest.raises(DataError, match=r"tags\.dat: 1 lines, expected 2 \(one name per column\)"):
        read_citeulike(tmp_path)
