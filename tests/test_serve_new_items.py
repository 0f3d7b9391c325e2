"""New items at serve time: items with features and no interactions, ranked with the catalog without retraining.

The case: 4 genres of 10 items; each user interacts with items of one genre only, and an item's content is
its genre (one-hot, dense). A content-KNN fitted on it scores a new item by the genre it is given, so a new
"genre 2" item belongs in the top-k of genre-2 users and at the bottom for the others. EASE cannot score it:
the service refuses it (409), ``serve --new-items`` refuses to start, ``recommend --new-items`` exits 2.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from fastapi.testclient import TestClient

from gan4rec.artifacts import atomic_write_text
from gan4rec.cli import main
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError, MissingInputError
from gan4rec.models import create
from gan4rec.models.base import Recommender
from gan4rec.serve.app import create_app
from gan4rec.serve.new_items import (
    NewItemConflictError,
    NewItemDef,
    NewItemsUnsupportedError,
    encode_new_items,
    feature_columns,
    read_new_items_file,
)

KEY = "new-items-key-0123456789"
H = {"X-API-Key": KEY}
N_GENRES, ITEMS_PER, USERS_PER = 4, 10, 6
NEW = 9999  # the id of the new item in most tests: not in the catalog (items are 100..139)
COLD = 25  # the index of the catalog item (id 125, genre 2) without interactions in the "knn-cold" model


def _case(cold: int | None = None) -> Interactions:
    """The genre case; ``cold``: an item index left without interactions (a cold catalog item)."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(N_GENRES * USERS_PER):
        g = u // USERS_PER
        for i in range(g * ITEMS_PER, (g + 1) * ITEMS_PER):
            if rng.random() < 0.6 and i != cold:
                users.append(u)
                items.append(i)
    genre = np.zeros((N_GENRES * ITEMS_PER, N_GENRES), dtype=np.float32)
    genre[np.arange(N_GENRES * ITEMS_PER), np.arange(N_GENRES * ITEMS_PER) // ITEMS_PER] = 1.0
    return Interactions.from_indices(np.array(users), np.array(items), IdMap(np.arange(N_GENRES * USERS_PER)),
                                     IdMap(np.arange(100, 100 + N_GENRES * ITEMS_PER)),
                                     item_features={"genre": genre})


def _genre_users(g: int) -> list[int]:
    return list(range(g * USERS_PER, (g + 1) * USERS_PER))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("new-items")
    data = _case()
    create("content-knn", {"k": 20, "weighting": "none"}).fit(data).save(root / "knn")
    create("ease", {"l2": 10.0}).fit(data).save(root / "ease")
    create("content-knn", {"k": 20, "weighting": "none"}).fit(_case(cold=COLD)).save(root / "knn-cold")
    keys = root / "keys.txt"
    keys.write_text(KEY + "\n")
    return {"root": root, "knn": root / "knn", "ease": root / "ease", "knn-cold": root / "knn-cold", "keys": keys,
            "model": Recommender.load(root / "knn")}


@pytest.fixture()
def knn(store: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(store["knn"], api_key=KEY)) as c:
        yield c


def _rec(client: TestClient, user: int, k: int = 10, **params: str) -> list[dict[str, Any]]:
    r = client.get("/recommend", params={"user": str(user), "k": str(k), **params}, headers=H)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _ids(items: list[dict[str, Any]]) -> list[Any]:
    return [it["item"] for it in items]


def _write_csv(path: Path, rows: list[tuple[Any, str, float]]) -> None:
    text = "item,feature,value\n" + "".join(f"{i},{f},{v}\n" for i, f, v in rows)
    atomic_write_text(path, text)


# ------------------------------------------------------------------------------------------------ POST /items
def test_posted_item_is_ranked_from_its_features(knn: TestClient, store: dict[str, Any]) -> None:
    r = knn.post("/items", json={"items": [{"id": NEW, "features": {"genre=2": 1.0}}]}, headers=H)
    assert r.status_code == 201, r.text
    assert r.json()["items"] == [NEW] and r.json()["new_items"] == 1
    model = store["model"]
    for u in _genre_users(2):
        items = _rec(knn, u)
        assert NEW in _ids(items), (u, items)
        body = next(it for it in items if it["item"] == NEW)
        assert body["new"] is True
        # the score is the model's own score of that content, calibrated as its cold items
        row = np.zeros((1, model.n_features), dtype=np.float32)
        row[0, 2] = 1.0
        expected = float(model.score_new_items(np.array([model.user_map_.get(u)]), row)[0, 0])
        assert body["score"] == pytest.approx(expected, rel=1e-6)
        assert body["score"] > 0
        # catalog items keep their scores and their order around it
        catalog = [it for it in items if "new" not in it]
        assert [it["score"] for it in catalog] == sorted((it["score"] for it in catalog), reverse=True)
    for g in (0, 1, 3):
        for u in _genre_users(g):
            items = _rec(knn, u, k=5)
            assert NEW not in _ids(items)
            all_items = _rec(knn, u, k=1000)
            new_body = next(it for it in all_items if it["item"] == NEW)
            assert new_body["score"] == 0.0  # shares no genre with the user's items


def test_exclusions_candidates_and_other_routes(knn: TestClient) -> None:
    assert knn.post("/items", json={"items": [{"id": "9999", "features": {"genre=2": 1.0}}]}, headers=H).status_code == 201
    u = _genre_users(2)[0]
    assert NEW not in _ids(_rec(knn, u, exclude=str(NEW)))
    assert _ids(_rec(knn, u, candidates=f"{NEW},100")) == [NEW, 100]
    r = knn.post("/recommend", json={"users": [u, "nobody"], "k": 40, "candidates": [NEW, 120]}, headers=H)
    model_rec, fallback = r.json()["results"]
    assert _ids(model_rec["items"]) == [NEW] or set(_ids(model_rec["items"])) == {NEW, 120}
    assert NEW in _ids(fallback["items"])  # popularity 0, but a candidate
    info = knn.get("/info", headers=H).json()
    assert info["new_items"] == 1 and info["new_items_reason"] is None
    r = knn.get("/similar", params={"item": str(NEW)}, headers=H)
    assert r.status_code == 404 and "new item" in r.json()["detail"]


def test_delete_and_conflicts(knn: TestClient) -> None:
    item = {"id": NEW, "features": {"genre=1": 2.0}}
    assert knn.post("/items", json={"items": [item]}, headers=H).status_code == 201
    again = knn.post("/items", json={"items": [item]}, headers=H)
    assert again.status_code == 409 and "already a new item" in again.json()["detail"]
    catalog = knn.post("/items", json={"items": [{"id": 100, "features": {"genre=1": 1.0}}]}, headers=H)
    assert catalog.status_code == 409 and "items[0]" in catalog.json()["detail"]
    assert "catalog" in catalog.json()["detail"]
    twice = knn.post("/items", json={"items": [{"id": 5, "features": {"genre=1": 1}}, {"id": "5", "features": {"genre=0": 1}}]},
                     headers=H)
    assert twice.status_code == 409 and "items[1]" in twice.json()["detail"]
    r = knn.delete(f"/items/{NEW}", headers=H)
    assert r.status_code == 200 and r.json()["item"] == NEW and r.json()["new_items"] == 0
    assert NEW not in _ids(_rec(knn, _genre_users(1)[0], k=1000))
    assert knn.delete(f"/items/{NEW}", headers=H).status_code == 404


@pytest.mark.parametrize(("body", "status", "phrase"), [
    ({"items": [{"id": 1, "features": {"nosuch": 1.0}}]}, 409, "items[0]: features: unknown column 'nosuch'"),
    ({"items": [{"id": 1, "features": {}}]}, 422, "items.0.features"),
    ({"items": [{"id": 1, "features": {"genre=0": True}}]}, 422, "items.0.features.genre=0"),
    ({"items": [{"id": 1, "features": {"genre=0": "1"}}]}, 422, "items.0.features.genre=0"),
    ({"items": [{"id": "x", "features": {"genre=0": 1}}]}, 409, "items[0]: id 'x' is not an integer"),
    ({"items": []}, 422, "items"),
    ({"items": [{"id": 1}]}, 422, "items.0.features"),
    ({"items": [{"id": 1, "features": {"genre=0": 1}, "extra": 2}]}, 422, "items.0.extra"),
])
def test_bad_items_get_one_line_errors(knn: TestClient, body: Any, status: int, phrase: str) -> None:
    r = knn.post("/items", json=body, headers=H)
    assert r.status_code == status, r.text
    assert phrase in r.json()["detail"] and "\n" not in r.json()["detail"]
    assert knn.get("/info", headers=H).json()["new_items"] == 0  # nothing half-added


def test_non_finite_values_are_refused(knn: TestClient) -> None:
    for token in ("NaN", "Infinity", "-Infinity"):
        r = knn.post("/items", content=f'{{"items": [{{"id": 1, "features": {{"0": {token}}}}}]}}',
                     headers={**H, "content-type": "application/json"})
        assert r.status_code == 422 and "items.0.features.0" in r.json()["detail"], r.text


def test_writes_need_a_key(store: dict[str, Any], knn: TestClient) -> None:
    item = {"items": [{"id": NEW, "features": {"genre=0": 1}}]}
    assert knn.post("/items", json=item).status_code == 401
    assert knn.delete(f"/items/{NEW}").status_code == 401
    with TestClient(create_app(store["knn"])) as open_server:  # no keys: writes are disabled
        assert open_server.post("/items", json=item).status_code == 403


def test_a_model_reload_keeps_posted_items(knn: TestClient) -> None:
    assert knn.post("/items", json={"items": [{"id": NEW, "features": {"genre=3": 1}}]}, headers=H).status_code == 201
    r = knn.post("/admin/reload", headers=H)
    assert r.status_code == 200, r.text
    assert NEW in _ids(_rec(knn, _genre_users(3)[0]))


def test_several_workers_refuse_posts(store: dict[str, Any], tmp_path: Path) -> None:
    app = create_app(store["knn"], api_key=KEY, reload_signal=tmp_path / "signal", handle_sighup=False)
    with TestClient(app) as c:
        r = c.post("/items", json={"items": [{"id": NEW, "features": {"genre=0": 1}}]}, headers=H)
        assert r.status_code == 409 and "--new-items" in r.json()["detail"]


# ------------------------------------------------------------------------------------------------ EASE refuses
def test_ease_refuses_new_items(store: dict[str, Any], tmp_path: Path) -> None:
    with TestClient(create_app(store["ease"], api_key=KEY)) as c:
        r = c.post("/items", json={"items": [{"id": NEW, "features": {"genre=0": 1.0}}]}, headers=H)
        assert r.status_code == 409 and "'ease'" in r.json()["detail"] and "\n" not in r.json()["detail"]
        assert c.get("/info", headers=H).json()["new_items_reason"].startswith("model 'ease' cannot")
        for u in range(N_GENRES * USERS_PER):
            assert NEW not in _ids(_rec(c, u, k=1000))
        assert NEW not in _ids(_rec(c, 12345, k=1000))  # the popularity fallback
    path = tmp_path / "new.csv"
    _write_csv(path, [(NEW, "genre=0", 1.0)])
    with pytest.raises(NewItemsUnsupportedError, match="'ease'"):
        create_app(store["ease"], new_items_file=path)


# ------------------------------------------------------------------------------------------------ the file
def test_new_items_file_is_reloaded_when_it_changes(store: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "new.csv"
    _write_csv(path, [(NEW, "genre=2", 1.0), (NEW + 1, "genre=0", 0.5), (NEW + 1, "genre=0", 0.5)])
    with TestClient(create_app(store["knn"], api_key=KEY, new_items_file=path)) as c:
        assert NEW in _ids(_rec(c, _genre_users(2)[0]))
        assert NEW + 1 in _ids(_rec(c, _genre_users(0)[0]))
        assert c.delete(f"/items/{NEW}", headers=H).status_code == 409  # edit the file instead
        _write_csv(path, [(NEW + 2, "genre=3", 1.0)])
        deadline = time.monotonic() + 30
        while NEW + 2 not in _ids(_rec(c, _genre_users(3)[0])) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert NEW + 2 in _ids(_rec(c, _genre_users(3)[0]))
        assert NEW not in _ids(_rec(c, _genre_users(2)[0], k=1000))
        # A bad file is refused: the items read before stay, and the error is reported.
        _write_csv(path, [(NEW + 3, "nosuch", 1.0)])
        while c.get("/readyz", headers=H).json()["new_items_error"] is None and time.monotonic() < deadline + 30:
            time.sleep(0.1)
        err = c.get("/readyz", headers=H).json()["new_items_error"]
        assert "new.csv:2" in err and "unknown column 'nosuch'" in err
        assert NEW + 2 in _ids(_rec(c, _genre_users(3)[0]))
        # A model reload re-reads the file too, and refuses the reload while the file is bad.
        assert c.post("/admin/reload", headers=H).status_code == 409
        _write_csv(path, [(NEW + 4, "genre=1", 1.0)])
        assert c.post("/admin/reload", headers=H).status_code == 200
        assert NEW + 4 in _ids(_rec(c, _genre_users(1)[0]))


def test_read_new_items_file(tmp_path: Path, store: dict[str, Any]) -> None:
    model = store["model"]
    assert feature_columns(model) == ("genre=0", "genre=1", "genre=2", "genre=3")
    good = tmp_path / "good.csv"
    good.write_text("item,feature\nn1,0\nn1,0\nn2,3\n")
    defs = read_new_items_file(good)
    assert [(d.id, dict(d.features)) for d in defs] == [("n1", {"0": 2.0}), ("n2", {"3": 1.0})]
    pl = pytest.importorskip("polars")
    pq = tmp_path / "good.parquet"
    pl.DataFrame({"item": [7, 7], "feature": ["genre=1", "genre=2"], "value": [0.5, 1.5]}).write_parquet(pq)
    items = encode_new_items(model, read_new_items_file(pq))
    assert items.item_map is not None and items.item_map.ids.tolist() == [7]
    np.testing.assert_array_equal(items.features.toarray(), [[0, 0.5, 1.5, 0]])
    cases = {
        "item,feature,value\n1,0,nan\n": "bad.csv:2: value 'nan' is not a finite number",
        "item,feature,value\n1,0,1\n,0,1\n": "bad.csv:3: the item is empty",
        "item,value\n1,1\n": "no column 'feature'",
        "item,feature,value\n": "holds no new item",
    }
    for text, phrase in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(DataError, match=None) as e:
            read_new_items_file(bad)
        assert phrase in str(e.value)
    bad = tmp_path / "bad.csv"
    bad.write_text("item,feature,value\n9999,genre=0,1\n100,genre=0,1\n")
    with pytest.raises(NewItemConflictError, match="bad.csv:3: id 100 is already an item of the model's catalog"):
        encode_new_items(model, read_new_items_file(bad))
    with pytest.raises(MissingInputError, match="no such new-items file"):
        read_new_items_file(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="x: features is empty"):
        encode_new_items(model, [NewItemDef(5, {}, "x")])


# ------------------------------------------------------------------------------------------------ the CLI
def test_cli_recommend_ranks_new_items(store: dict[str, Any], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new.csv"
    _write_csv(new, [(NEW, "genre=2", 1.0)])
    out = tmp_path / "recs.csv"
    assert main(["-q", "recommend", str(store["knn"]), "--new-items", str(new), "-k", "10", "--out", str(out)]) == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    got = {int(r["user"]) for r in rows if int(r["item"]) == NEW}
    assert set(_genre_users(2)) <= got
    assert not got & set(_genre_users(0))
    # the catalog part is what the model recommends without new items, for users that do not get NEW
    plain = tmp_path / "plain.csv"
    assert main(["-q", "recommend", str(store["knn"]), "-k", "10", "--out", str(plain)]) == 0
    with plain.open() as f:
        base = [r for r in csv.DictReader(f) if int(r["user"]) in _genre_users(0)]
    assert [r for r in rows if int(r["user"]) in _genre_users(0)] == base
    capsys.readouterr()


@pytest.mark.parametrize(("model", "file_text", "code", "phrase"), [
    ("ease", "item,feature\n9999,0\n", 2, "--new-items: model 'ease' cannot score new items"),
    ("knn", "item,feature\n9999,nosuch\n", 65, "new.csv:2: features: unknown column 'nosuch'"),
    ("knn", "item,feature\n100,0\n", 65, "new.csv:2: id 100 is already an item"),
    ("knn", None, 66, "no such new-items file"),
])
def test_cli_new_items_errors(store: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              model: str, file_text: str | None, code: int, phrase: str) -> None:
    new = tmp_path / "new.csv"
    if file_text is not None:
        new.write_text(file_text)
    out = tmp_path / "recs.csv"
    assert main(["-q", "recommend", str(store[model]), "--new-items", str(new), "--out", str(out)]) == code
    err = capsys.readouterr().err
    assert phrase in err and err.strip().count("\n") == 0, err
    assert not out.exists()


def test_cli_serve_refuses_new_items_for_ease(store: dict[str, Any], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(uvicorn, "run", never)
    new = tmp_path / "new.csv"
    _write_csv(new, [(NEW, "genre=0", 1.0)])
    assert main(["-q", "serve", str(store["ease"]), "--new-items", str(new)]) == 2
    err = capsys.readouterr().err
    assert "--new-items" in err and "'ease' cannot score new items" in err and err.strip().count("\n") == 0
    assert main(["-q", "serve", str(store["knn"]), "--new-items", str(tmp_path / "absent.csv")]) == 66


# ------------------------------------------------------------------------------------------------ /explain
def test_explain_names_the_content_features_of_new_and_cold_items(store: dict[str, Any]) -> None:
    """A cold-start model explains a posted new item and a cold catalog item (no training interaction) by
    their content features, as gan4rec.explain_cold computes them, with the score the ranking gives them."""
    from gan4rec.explain_cold import explain_cold

    model = Recommender.load(store["knn-cold"])
    assert not model.warm_[COLD]
    u_raw = _genre_users(2)[0]
    u = model.user_map_.get(u_raw)
    with TestClient(create_app(store["knn-cold"], api_key=KEY)) as c:
        assert c.post("/items", json={"items": [{"id": NEW, "features": {"genre=2": 1.0}}]}, headers=H).status_code == 201
        new = c.get("/explain", params={"user": str(u_raw), "item": str(NEW)}, headers=H)
        assert new.status_code == 200, new.text
        body = new.json()
        row = np.zeros((1, model.n_features), dtype=np.float32)
        row[0, 2] = 1.0
        e = explain_cold(model, u, features=row)
        assert body["explains"] == "content" and body["new"] is True and body["cold"] is True
        assert body["item"] == NEW and body["user"] == u_raw and body["contributions"] == []
        assert body["method"] == e.method == "exact" and body["approximate"] is False
        assert [f["feature"] for f in body["features"]] == e.features == ["genre=2"]
        assert body["features"][0]["value"] == 1.0
        assert body["features"][0]["contribution"] == pytest.approx(float(e.contributions[0]))
        assert body["score"] == pytest.approx(float(model.score_new_items(np.array([u]), row)[0, 0])) and body["score"] > 0
        assert body["total"] + body["rest"] == pytest.approx(body["score"])
        ranked = next(it for it in _rec(c, u_raw, k=1000) if it["item"] == NEW)
        assert ranked["score"] == pytest.approx(body["score"])  # the score /recommend ranks it by
        cold = c.get("/explain", params={"user": str(u_raw), "item": "125"}, headers=H).json()
        assert cold["explains"] == "content" and cold["new"] is False and cold["cold"] is True, cold
        assert [f["feature"] for f in cold["features"]] == ["genre=2"] and cold["warnings"] == []
        assert cold["score"] == pytest.approx(float(model.score(np.array([u]))[0, COLD]))
        batch = c.post("/explain", json={"user": u_raw, "items": [125, NEW, 100]}, headers=H)
        assert batch.status_code == 200, batch.text
        results = batch.json()["results"]
        assert [r["item"] for r in results] == [125, NEW, 100] and [r["new"] for r in results] == [False, True, False]
        # a warm item has no history explanation for this model: its content score, with a warning naming it
        assert results[2]["cold"] is False and results[2]["warnings"][0].startswith("item 100 is warm")
        r = c.get("/explain", params={"user": str(u_raw), "item": "5555"}, headers=H)
        assert r.status_code == 404 and "nor a new item" in r.json()["detail"]
        r = c.post("/explain", json={"history": [100], "items": [125]}, headers=H)
        assert r.status_code == 409 and "cannot score a history" in r.json()["detail"]


def test_explain_by_occlusion_for_a_nonlinear_hybrid(tmp_path: Path) -> None:
    """ease-side scores content non-linearly: occlusion, marked approximate, with the all-zero row's baseline."""
    create("ease-side", {}).fit(_case(cold=COLD)).save(tmp_path / "m")
    with TestClient(create_app(tmp_path / "m", api_key=KEY)) as c:
        assert c.post("/items", json={"items": [{"id": NEW, "features": {"genre=2": 1.0}}]}, headers=H).status_code == 201
        for item in (NEW, 125):
            body = c.get("/explain", params={"user": str(_genre_users(2)[0]), "item": str(item)}, headers=H).json()
            assert body["explains"] == "content" and body["method"] == "occlusion" and body["approximate"] is True
            assert body["baseline"] is not None and body["rest"] is None and body["cold"] is True
            assert body["features"][0]["feature"] == "genre=2" and body["score"] > body["baseline"]


def test_explain_of_other_models_is_unchanged(store: dict[str, Any]) -> None:
    """EASE (no content) explains by history items as before; an item it does not know is a 404."""
    with TestClient(create_app(store["ease"], api_key=KEY)) as c:
        body = c.get("/explain", params={"user": "0", "item": "101"}, headers=H).json()
        assert body["explains"] == "history" and body["method"] == "exact" and body["contributions"]
        assert "features" not in body
        assert c.get("/explain", params={"user": "0", "item": str(NEW)}, headers=H).status_code == 404


def test_recommend_with_a_history_is_a_409_where_the_model_cannot_fold_in(knn: TestClient) -> None:
    """A valid body the live model cannot answer is a 409 (as POST /items for EASE), declared in the schema."""
    r = knn.post("/recommend", json={"history": [100, 101], "k": 3}, headers=H)
    assert r.status_code == 409 and "cannot score a history" in r.json()["detail"]
    assert knn.get("/info", headers=H).json()["fold_in"] is False
    schema = knn.get("/openapi.json").json()
    assert "409" in schema["paths"]["/recommend"]["post"]["responses"]
    assert "409" in schema["paths"]["/explain"]["post"]["responses"]


# ------------------------------------------------------------------------------------------------ the schema
def test_openapi_says_what_new_items_are(knn: TestClient) -> None:
    schema = knn.get("/openapi.json").json()
    assert {"post", "delete"} <= set(schema["paths"]["/items"]) | set(schema["paths"]["/items/{item}"])
    scored = schema["components"]["schemas"]["ScoredItem"]["properties"]["new"]
    assert "no interactions" in scored["description"]
    assert "409" in schema["paths"]["/items"]["post"]["responses"]
    explanation = schema["components"]["schemas"]["ExplanationBody"]["properties"]
    assert {"explains", "features", "rest", "new", "cold"} <= set(explanation)
    assert "content" in explanation["explains"]["description"]
    assert "feature_names_" in schema["components"]["schemas"]["FeatureContribution"]["properties"]["feature"]["description"]


def test_schemathesis_smoke_on_a_cold_start_model(store: dict[str, Any], tmp_path: Path) -> None:
    """schemathesis' checks (5xx, schema conformance, status codes) of the new-item, recommend and explain
    operations on a model that takes new items and cannot fold in a history (``POST /recommend`` and
    ``POST /explain`` with one answer 409, a status schemathesis accepts for a valid request)."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    path = tmp_path / "new.csv"
    _write_csv(path, [(NEW, "genre=2", 1.0)])
    schema = schemathesis.openapi.from_asgi("/openapi.json",
                                            create_app(store["knn"], api_key=KEY, new_items_file=path))
    failures: list[str] = []
    cases = 0
    labels = set()
    for result in schema.get_all_operations():
        op = result.ok()
        if op.label not in ("POST /items", "DELETE /items/{item}", "GET /recommend", "POST /recommend", "GET /info",
                            "GET /explain", "POST /explain"):
            continue
        labels.add(op.label)

        @settings(max_examples=8, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(op.as_strategy())
        def check(case: Any) -> None:
            nonlocal cases
            cases += 1
            try:
                case.call_and_validate(headers=H)  # all of schemathesis' checks
            except Exception as e:  # noqa: BLE001 -- every check, server errors included
                failures.append(f"{case.operation.label}: {str(e)[:400]}")

        check()
    assert len(labels) == 7 and failures == [] and cases > 0


def test_cli_serve_passes_the_new_items_file(store: dict[str, Any], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`gan4rec serve --new-items FILE` builds the app with the file (uvicorn replaced by a test client)."""
    import uvicorn

    seen: list[Any] = []

    def serve(app: Any, **kwargs: Any) -> None:
        with TestClient(app) as c:
            seen.append(_ids(c.get("/recommend", params={"user": str(_genre_users(2)[0])}).json()["items"]))

    monkeypatch.setattr(uvicorn, "run", serve)
    new = tmp_path / "new.csv"
    _write_csv(new, [(NEW, "genre=2", 1.0)])
    assert main(["-q", "serve", str(store["knn"]), "--new-items", str(new), "--no-access-log"]) == 0
    assert len(seen) == 1 and NEW in seen[0]


def test_feature_names_name_the_columns(store: dict[str, Any]) -> None:
    """Where the model has ``feature_names_`` (one name per content column), those name the columns."""
    from gan4rec.serve.new_items import new_items_support

    model = Recommender.load(store["knn"])
    model.feature_names_ = ["drama", "comedy", "horror", "documentary"]
    items = encode_new_items(model, [NewItemDef("7", {"horror": 2.0}, "x")])
    np.testing.assert_array_equal(items.features.toarray(), [[0, 0, 2, 0]])
    with pytest.raises(DataError, match="x: features: unknown column '2'; the model's columns are 'drama'"):
        encode_new_items(model, [NewItemDef("7", {"2": 1.0}, "x")])
    model.feature_names_ = ["a", "a", "b", "c"]
    assert "cannot name its content columns" in str(new_items_support(model))
