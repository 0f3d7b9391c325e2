"""Explaining a hybrid's score of a cold item by its content features (gan4rec.explain_cold), and feature names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from gan4rec.cli import main
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.explain import UnsupportedError
from gan4rec.explain_cold import METHOD_EXACT, METHOD_OCCLUSION, explain_cold
from gan4rec.models import create
from gan4rec.models.base import Recommender

GENRES = np.array(["Action", "Drama", "Comedy"])


def _catalogue() -> Interactions:
    """30 items, 3 genres by blocks of 10 (item i: genre i // 10); item 29 is cold and is Action AND Drama.

    Users 0-9 save Action items only, users 10-19 Drama only, users 20-29 Comedy only: for a user of the first
    group, the cold item's Action feature is what its history matches, never its Drama feature.
    """
    n_items = 30
    genres = np.zeros((n_items, 3), dtype=np.float32)
    genres[np.arange(n_items), np.arange(n_items) // 10] = 1.0
    genres[29] = [1.0, 1.0, 0.0]
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(30):
        block = np.arange(10) + 10 * (u // 10)
        block = block[block != 29]
        for i in rng.choice(block, 5, replace=False):
            users.append(u)
            items.append(int(i))
    return Interactions.from_arrays(
        np.array(users), np.array(items), item_map=IdMap(np.arange(n_items)),
        item_features={"genres": genres}, item_feature_columns={"genres": GENRES},
    )


@pytest.fixture(scope="module")
def data() -> Interactions:
    return _catalogue()


def test_top_feature_is_the_one_the_history_matches(data: Interactions) -> None:
    model = create("content-knn", {"k": 50}).fit(data)  # every warm item a neighbour: no ties at the k-th
    assert not model.warm_[29]
    assert model.feature_names_ == ["genres=Action", "genres=Drama", "genres=Comedy"]
    e = explain_cold(model, 0, item=29, top=5)  # user 0: Action items only
    assert e.method == METHOD_EXACT
    assert e.features[0] == "genres=Action" and e.contributions[0] > 0
    assert dict(e.pairs()).get("genres=Drama", 0.0) == pytest.approx(0.0)
    e_drama = explain_cold(model, 12, item=29)  # user 12: Drama items only
    assert e_drama.features[0] == "genres=Drama" and e_drama.contributions[0] > 0


@pytest.mark.parametrize(("name", "params"), [
    ("content-knn", {"k": 8, "cold_scale": 2.0, "cold_offset": 0.25}),
    ("ridge-map", {"l2": 0.5, "cold_scale": 0.5, "cold_offset": -0.1, "backbone_params": {"epochs": 3}}),
])
def test_exact_contributions_sum_to_the_score_minus_the_content_free_part(
    data: Interactions, name: str, params: dict
) -> None:
    model = create(name, params, random_state=0).fit(data)
    for user in (0, 11, 25):
        e = explain_cold(model, user, item=29, top=1)
        assert e.method == METHOD_EXACT and e.n_nonzero == 2 and len(e.features) == 1
        score = float(model.score(np.array([user]))[0, 29])
        assert e.score == pytest.approx(score, rel=1e-5, abs=1e-6)
        assert e.total + e.rest == pytest.approx(score, rel=1e-4, abs=1e-6), e
    # a new item with the same content row: the same explanation
    row = model.features_[29].toarray()[0]
    new = explain_cold(model, 0, features=row, top=5)
    old = explain_cold(model, 0, item=29, top=5)
    assert new.item is None and new.features == old.features
    np.testing.assert_allclose(new.contributions, old.contributions, rtol=1e-5, atol=1e-7)


def test_occlusion_for_a_nonlinear_hybrid(data: Interactions) -> None:
    model = create("ease-side", {"l2": 10.0}).fit(data)
    e = explain_cold(model, 0, item=29, top=5)
    assert e.method == METHOD_OCCLUSION and e.rest is None
    row = sp.csr_matrix(model.features_[29])
    for label, contribution in e.pairs():
        j = model.feature_names_.index(label)
        without = row.toarray()
        without[0, j] = 0.0
        expect = e.score - float(model.score_new_items(np.array([0]), without)[0, 0])
        assert contribution == pytest.approx(expect, rel=1e-5, abs=1e-6)
    zero = float(model.score_new_items(np.array([0]), np.zeros((1, 3)))[0, 0])
    assert e.baseline == pytest.approx(zero)


def test_models_without_content_say_so(data: Interactions) -> None:
    bare = Interactions(data.indptr, data.indices, data.user_map, data.item_map)
    knn = create("content-knn", {}).fit(bare)
    with pytest.raises(UnsupportedError, match="fitted without item content"):
        explain_cold(knn, 0, item=29)
    with pytest.raises(UnsupportedError, match="not a cold-start hybrid"):
        explain_cold(create("itemknn", {}).fit(data), 0, item=29)
    model = create("content-knn", {}).fit(data)
    with pytest.raises(Exception, match="exactly one of item"):
        explain_cold(model, 0)
    with pytest.raises(Exception, match="expected one row of 3 columns"):
        explain_cold(model, 0, features=np.ones(4))
    empty = explain_cold(model, 0, features=np.zeros(3))
    assert empty.n_nonzero == 0 and empty.features == [] and "no content" in empty.warnings[0]


def test_a_warm_item_is_explained_by_its_content_with_a_warning(data: Interactions) -> None:
    model = create("content-knn", {}).fit(data)
    e = explain_cold(model, 0, item=3)
    assert e.warnings and "is warm" in e.warnings[0]
    assert e.total + e.rest == pytest.approx(e.score, rel=1e-4)


def _rewrite_meta(model_dir: Path, key: str) -> None:
    folder = model_dir / (model_dir / "CURRENT").read_text().strip()
    meta = json.loads((folder / "meta.json").read_text())
    meta.pop(key)
    raw = json.dumps(meta).encode()
    (folder / "meta.json").write_bytes(raw)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    manifest["files"]["meta.json"] = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))


def test_feature_names_are_saved_and_old_artifacts_get_index_names(data: Interactions, tmp_path: Path) -> None:
    model = create("content-knn", {"item_features": "genres"}).fit(data)
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.feature_names_ == model.feature_names_  # type: ignore[attr-defined]
    _rewrite_meta(tmp_path / "m", "feature_names")
    old = Recommender.load(tmp_path / "m")
    assert old.feature_names_ == ["genres=0", "genres=1", "genres=2"]  # type: ignore[attr-defined]
    assert len(old.feature_names_) == old.features_.shape[1]  # type: ignore[attr-defined]


def test_cli_explains_a_cold_item_by_its_features(data: Interactions, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    model = create("content-knn", {"k": 50}).fit(data)
    model.save(tmp_path / "m")
    assert main(["-q", "explain", str(tmp_path / "m"), "--user", "0", "--item", "29", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["explains"] == "content" and out["cold"] and out["method"] == "exact"
    assert out["contributions"][0]["feature"] == "genres=Action"
    assert out["total"] + out["rest"] == pytest.approx(out["score"], rel=1e-4)
    assert main(["-q", "explain", str(tmp_path / "m"), "--user", "0", "--item", "29"]) == 0
    text = capsys.readouterr().out
    assert "cold item 29" in text and "genres=Action" in text
    # a warm item of content-knn has no history rule: its content score is explained, with a note
    assert main(["-q", "explain", str(tmp_path / "m"), "--user", "0", "--item", "3"]) == 0
    assert "note: item 3 is warm" in capsys.readouterr().out


def test_cli_explains_a_new_item_from_a_features_file(data: Interactions, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    model = create("content-knn", {"k": 50}).fit(data)
    model.save(tmp_path / "m")
    feats = tmp_path / "new.csv"
    feats.write_text("item,feature,value\n900,genres=Action,1\n900,genres=Drama,1\n901,genres=Comedy,1\n")
    assert main(["-q", "explain", str(tmp_path / "m"), "--user", "12", "--item", "900", "--new-item-features",
                 str(feats), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    same = explain_cold(model, 12, features=np.array([1.0, 1.0, 0.0]))
    assert out["new"] and out["item"] == "900" and out["score"] == pytest.approx(same.score)
    assert [r["feature"] for r in out["contributions"]] == same.features == ["genres=Drama", "genres=Action"]
    cases = [(["--item", "902"], 65, "no feature row for item '902'"),
             (["--item", "3"], 2, "is an item of the model"),
             (["--item", "900", "--user", "999"], 65, "unknown user")]
    for extra, code, phrase in cases:
        argv = ["-q", "explain", str(tmp_path / "m"), "--user", "12", "--new-item-features", str(feats), *extra]
        assert main(argv) == code
        assert phrase in capsys.readouterr().err
    feats.write_text("item,feature\n900,genres=Horror\n")
    assert main(["-q", "explain", str(tmp_path / "m"), "--user", "12", "--item", "900",
                 "--new-item-features", str(feats)]) == 65
    assert "feature 'genres=Horror' is not a content column of the model" in capsys.readouterr().err


def test_cli_model_without_content(data: Interactions, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = Interactions(data.indptr, data.indices, data.user_map, data.item_map)
    create("content-knn", {}).fit(bare).save(tmp_path / "bare")
    assert main(["-q", "explain", str(tmp_path / "bare"), "--user", "0", "--item", "29"]) == 65
    err = capsys.readouterr().err
    assert "fitted without item content" in err and err.strip().count("\n") == 0


def test_ml100k_cold_item_names_genres(ml100k_dir: Path) -> None:
    """Real data: MovieLens genre names reach a hybrid's explanation of a cold item."""
    from gan4rec.data.io import read_movielens
    from gan4rec.data.split import make_split

    data = read_movielens(ml100k_dir)
    assert "Action" in data.item_feature_columns["genres"].tolist()
    split = make_split(data, "cold-items", random_state=0)
    model = create("content-knn", {"item_features": "genres"}).fit(split.train)
    item = int(np.flatnonzero(~model.warm_ & (np.diff(model.features_.indptr) > 0))[0])
    e = explain_cold(model, 0, item=item, top=3)
    assert all(f.startswith("genres=") for f in e.features)
    assert e.total + e.rest == pytest.approx(e.score, rel=1e-4, abs=1e-6)
