"""The HTTP service: endpoints, cold start, limits, keys, metrics, reload, signals, schemathesis, web page.

Most tests run the app in process with ``fastapi.testclient.TestClient``. Signals, chunked uploads, the
reloads under load and the web page in headless Chromium run against a real ``gan4rec serve`` process on
127.0.0.1 (a free port), with bounded request counts and durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from fastapi.testclient import TestClient

from gan4rec.atomic import atomic_write_text
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError
from gan4rec.explain import explain, history_matrix
from gan4rec.models import create
from gan4rec.models.base import Recommender
from gan4rec.serve.app import create_app
from gan4rec.serve.security import read_api_keys
from gan4rec.serve.service import Batcher, top_k
from gan4rec.serve.state import read_item_titles

KEY = "test-key-0123456789abcdef"
H = {"X-API-Key": KEY}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_SERVERS: dict[int, subprocess.Popen] = {}  # port -> the live_server process


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def data() -> Interactions:
    return make_synthetic(120, 50, 1800, n_factors=4, random_state=0)


def _titles_file(folder: Path, item_map: IdMap) -> Path:
    path = folder / "items.csv"
    rows = "".join(f'{i},"Film {i}, part {i % 3}"\n' for i in item_map.ids.tolist())
    path.write_text("item,title\n" + rows + "999999,Not in the model\n")
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, data: Interactions) -> dict[str, Any]:
    """Saved artifacts of a few models, their titles file and an API-key file."""
    root = tmp_path_factory.mktemp("serve")
    out: dict[str, Any] = {"root": root}
    specs = {
        "ease": {"l2": 10.0},
        "bpr": {"n_factors": 8, "epochs": 2, "patience": None, "device": "cpu"},
        "multvae": {"hidden": 16, "latent": 4, "epochs": 3, "total_anneal_steps": 5, "patience": None,
                    "device": "cpu"},
        "toppop": {},
        "cfgan": {"mode": "user", "g_hidden": 16, "d_hidden": 8, "epochs": 2, "patience": None,
                  "device": "cpu"},
    }
    for name, params in specs.items():
        model = create(name, params, random_state=0).fit(data)
        model.save(root / name)
        out[name] = Recommender.load(root / name)
    create("cfgan", {**specs["cfgan"], "mode": "item"}, random_state=0).fit(data).save(root / "cfgan-item")
    out["titles"] = _titles_file(root, data.item_map)
    out["keys"] = root / "keys.txt"
    out["keys"].write_text(f"# API keys\n{KEY}\n\nsecond-key-abcdefghijklmnop\n")
    # A user id with no training interaction: known to the maps, unknown to the model's scores.
    users = np.repeat(np.arange(5), 3)
    items = np.tile(np.arange(3), 5)
    sparse = Interactions.from_indices(users, items, IdMap(np.arange(6)), IdMap(np.arange(4)))
    create("ease", {"l2": 1.0}).fit(sparse).save(root / "sparse")
    return out


@pytest.fixture(scope="module")
def client(store: dict[str, Any]) -> Iterator[TestClient]:
    app = create_app(store["root"] / "ease", items_file=store["titles"])
    with TestClient(app) as c:
        yield c


def _user_raw(model: Recommender, idx: int) -> int:
    return int(model.user_map_.ids[idx])


def _item_raw(model: Recommender, idx: Any) -> list[int]:
    return model.item_map_.to_raw(np.asarray(idx)).tolist()


# ------------------------------------------------------------------------------------------------ recommend
def test_get_recommend_matches_the_model(client: TestClient, store: dict[str, Any]) -> None:
    model = store["ease"]
    for u in (0, 17, 63):
        for exclude_seen in (True, False):
            r = client.get("/recommend", params={"user": str(_user_raw(model, u)), "k": 7,
                                                 "exclude_seen": str(exclude_seen).lower()})
            assert r.status_code == 200, r.text
            body = r.json()
            items, scores = model.recommend([u], 7, exclude_seen=exclude_seen)
            assert body["user"] == _user_raw(model, u)  # the model's int id, though sent as a string
            assert [it["item"] for it in body["items"]] == _item_raw(model, items[0])
            assert [it["score"] for it in body["items"]] == pytest.approx(scores[0].tolist(), rel=1e-6)
            assert body["strategy"] == "model" and body["warnings"] == []
            first = body["items"][0]["item"]
            assert body["items"][0]["title"] == f"Film {first}, part {first % 3}"
            assert body["model_version"].startswith("v")


def test_exclude_and_candidates(client: TestClient, store: dict[str, Any]) -> None:
    model = store["ease"]
    user = _user_raw(model, 5)
    full = [it["item"] for it in client.get("/recommend", params={"user": user, "k": 10}).json()["items"]]
    exclude = f"{full[0]},{full[1]},,nope"
    r = client.get("/recommend", params={"user": user, "k": 10, "exclude": exclude}).json()
    got = [it["item"] for it in r["items"]]
    assert got[:8] == full[2:] and full[0] not in got and full[1] not in got
    assert r["warnings"] == ['ignored 1 unknown item id(s) in exclude: "nope"']
    cands = [full[4], full[2], 424242]
    r = client.get("/recommend", params={"user": user, "k": 10,
                                         "candidates": ",".join(map(str, cands))}).json()
    assert [it["item"] for it in r["items"]] == [full[2], full[4]]  # only eligible items, in model order
    assert "candidates" in r["warnings"][0]


def test_unknown_user_gets_the_popularity_fallback(client: TestClient, store: dict[str, Any]) -> None:
    model = store["ease"]
    counts = model.seen_.item_counts()
    expected = np.lexsort((np.arange(len(counts)), -counts))[:5]  # most popular, ties: lower index
    body = client.get("/recommend", params={"user": "no-such-user", "k": 5}).json()
    assert body["strategy"] == "popularity_fallback" and body["user"] == "no-such-user"
    assert [it["item"] for it in body["items"]] == _item_raw(model, expected)
    assert [it["score"] for it in body["items"]] == counts[expected].astype(float).tolist()
    assert "unknown to the model" in body["warnings"][0]


def test_strict_users_answer_404(store: dict[str, Any]) -> None:
    with TestClient(create_app(store["root"] / "ease", strict_users=True)) as c:
        r = c.get("/recommend", params={"user": "123456"})
        assert r.status_code == 404 and "--strict-users" in r.json()["detail"]
        r = c.post("/recommend", json={"users": [1, 123456]})
        assert r.status_code == 404 and "123456" in r.json()["detail"]
        assert c.get("/recommend", params={"user": "1"}).status_code == 200


def test_known_user_without_interactions_falls_back(store: dict[str, Any]) -> None:
    with TestClient(create_app(store["root"] / "sparse")) as c:
        body = c.get("/recommend", params={"user": "5", "k": 2}).json()
        assert body["strategy"] == "popularity_fallback" and body["user"] == 5
        assert "no training interactions" in body["warnings"][0]
        assert [it["item"] for it in body["items"]] == [0, 1]  # 5 users each, then the lower index


def test_post_batch_keeps_the_order_of_users(client: TestClient, store: dict[str, Any]) -> None:
    model = store["ease"]
    users = [_user_raw(model, 9), "nobody", str(_user_raw(model, 2))]
    r = client.post("/recommend", json={"users": users, "k": 3})
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["user"] for x in res] == [users[0], "nobody", _user_raw(model, 2)]
    assert [x["strategy"] for x in res] == ["model", "popularity_fallback", "model"]
    assert [it["item"] for it in res[2]["items"]] == _item_raw(model, model.recommend([2], 3)[0][0])


def test_post_history_folds_in_a_new_user(client: TestClient, store: dict[str, Any]) -> None:
    model = store["ease"]
    hist_idx = np.array([3, 8, 21])
    scores = model.score_history(history_matrix([hist_idx], model.n_items))[0]
    scores[hist_idx] = -np.inf
    expected = np.lexsort((np.arange(len(scores)), -scores))[:5]
    body = {"history": _item_raw(model, hist_idx) + ["zzz", 777777], "k": 5}
    res = client.post("/recommend", json=body).json()["results"][0]
    assert res["user"] is None and res["strategy"] == "model"
    assert [it["item"] for it in res["items"]] == _item_raw(model, expected)
    assert res["warnings"] == ['ignored 2 unknown item id(s) in history: "zzz", 777777']
    res = client.post("/recommend", json={"history": ["zzz"], "k": 3}).json()["results"][0]
    assert res["strategy"] == "popularity_fallback" and "no item known" in res["warnings"][0]
    res = client.post("/recommend", json={"history": _item_raw(model, hist_idx), "exclude_seen": False,
                                          "k": 1000}).json()["results"][0]
    assert len(res["items"]) == model.n_items  # k larger than the catalog: every item once


def test_history_is_unsupported_for_mf_models(store: dict[str, Any]) -> None:
    with TestClient(create_app(store["root"] / "bpr")) as c:
        r = c.post("/recommend", json={"history": [1, 2]})
        assert r.status_code == 409  # a valid request the live model cannot answer (as POST /items)
        assert r.json()["detail"].startswith("unsupported for this model: model 'bpr' cannot score a history")
        assert c.get("/recommend", params={"user": "1"}).json()["strategy"] == "model"
        assert c.get("/info").json()["fold_in"] is False


@pytest.mark.parametrize("method, url, body, fragment", [
    ("GET", "/recommend?user=1&k=0", None, "k: expected an integer in 1..1000"),
    ("GET", "/recommend?user=1&k=1001", None, "k: expected an integer in 1..1000"),
    ("GET", "/recommend?user=1&k=ten", None, "k: expected an integer"),
    ("GET", "/recommend?k=3", None, "user: field required"),
    ("GET", "/recommend?user=1&exclude_seen=maybe", None, "exclude_seen: expected true or false"),
    ("GET", "/recommend?user=" + "x" * 257, None, "user: expected 1..256 characters"),
    ("POST", "/recommend", {"users": [1], "k": 1001}, "k: Input should be less than or equal to 1000"),
    ("POST", "/recommend", {"history": list(range(10_001))}, "history: List should have at most 10000 items"),
    ("POST", "/recommend", {"users": [1.5]}, "users.0: expected an integer or a string id"),
    ("POST", "/recommend", {"users": [True]}, "users.0: expected an integer or a string id"),
    ("POST", "/recommend", {"users": [""]}, "users.0: expected an integer or a string id"),
    ("POST", "/recommend", {"users": [1], "history": [2]}, "give exactly one of 'users' or 'history'"),
    ("POST", "/recommend", {}, "give exactly one of 'users' or 'history'"),
    ("POST", "/recommend", {"users": [1], "path": "/etc/passwd"}, "path: Extra inputs are not permitted"),
    ("POST", "/recommend", {"users": list(range(257))}, "users: List should have at most 256 items"),
    ("GET", "/explain?user=1&item=1&top=0", None, "top: Input should be greater than or equal to 1"),
    ("POST", "/explain", {"user": 1, "items": []}, "items: List should have at least 1 item"),
    ("GET", "/similar?item=1&k=5000", None, "k: Input should be less than or equal to 1000"),
])
def test_bad_input_gets_422_with_a_message(client: TestClient, method: str, url: str, body: Any,
                                           fragment: str) -> None:
    r = client.request(method, url, json=body)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]


def test_invalid_json_is_422(client: TestClient) -> None:
    r = client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "invalid JSON" in r.json()["detail"]


def test_float_ids_with_a_zero_fraction_are_exact_integers(client: TestClient, store: dict[str, Any]) -> None:
    user = _user_raw(store["ease"], 4)
    a = client.post("/recommend", json={"users": [float(user)]}).json()["results"][0]
    b = client.post("/recommend", json={"users": [user]}).json()["results"][0]
    assert a == b and a["user"] == user


# ------------------------------------------------------------------------------------------------ limits
def test_body_over_the_limit_is_413_with_content_length(store: dict[str, Any]) -> None:
    with TestClient(create_app(store["root"] / "ease", max_body_bytes=4096)) as c:
        r = c.post("/recommend", content=b'{"history": [' + b"1," * 3000 + b"1]}",
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and "4096 bytes" in r.json()["detail"]
        assert c.post("/recommend", json={"history": [1, 2]}).status_code == 200


def test_chunked_body_over_the_limit_is_413(store: dict[str, Any]) -> None:
    def body() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
        yield b'{"history": ['
        for _ in range(1000):
            yield b"1," * 500
        yield b"1]}"

    with TestClient(create_app(store["root"] / "ease", max_body_bytes=4096)) as c:
        r = c.post("/recommend", content=body(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert "4096 bytes" in r.json()["detail"]


def test_api_keys(store: dict[str, Any]) -> None:
    assert read_api_keys(store["keys"]) == (KEY, "second-key-abcdefghijklmnop")
    with TestClient(create_app(store["root"] / "ease", api_key_file=store["keys"])) as c:
        for path in ("/recommend?user=1", "/explain?user=1&item=1", "/similar?item=1", "/info", "/metrics",
                     "/history?user=1", "/items?q=1"):
            assert c.get(path).status_code == 401, path
            assert c.get(path, headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 401
            assert c.get(path, headers=H).status_code == 200, path
        second = {"X-API-Key": "second-key-abcdefghijklmnop"}
        assert c.get("/recommend?user=1", headers=second).status_code == 200
        assert c.post("/recommend", json={"users": [1]}).status_code == 401
        for path in ("/healthz", "/readyz", "/", "/openapi.json"):
            assert c.get(path).status_code == 200, path
        assert c.post("/admin/reload").status_code == 401
        assert c.post("/admin/reload", headers=H).status_code == 200
    with TestClient(create_app(store["root"] / "ease")) as c:
        r = c.post("/admin/reload")
        assert r.status_code == 403 and "--api-key-file" in r.json()["detail"]


def test_key_file_errors(tmp_path: Path) -> None:
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(DataError, match=r"short:1: API key is 3 characters long"):
        read_api_keys(tmp_path / "short")
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(DataError, match="holds no API key"):
        read_api_keys(tmp_path / "empty")


def test_non_finite_scores_never_reach_a_response(store: dict[str, Any]) -> None:
    app = create_app(store["root"] / "ease")
    model = app.state.slot.current.model
    real = model.score

    def broken(users: Any) -> np.ndarray:
        s = real(users)
        s[:, :3] = [np.nan, np.inf, -np.inf]  # three items break; item 0..2 would otherwise rank
        s[:, 3] = 1e9
        return s

    model.score = broken
    with TestClient(app) as c:
        for r in (c.get("/recommend", params={"user": "1", "k": 50, "exclude_seen": "false"}),
                  c.post("/recommend", json={"users": [1], "k": 50, "exclude_seen": False})):
            assert r.status_code == 200
            text = r.text
            assert "NaN" not in text and "Infinity" not in text
            body = r.json()
            body = body["results"][0] if "results" in body else body
            items = [it["item"] for it in body["items"]]
            assert items[0] == _item_raw(model, [3])[0]
            assert not set(_item_raw(model, [0, 1, 2])) & set(items)
            assert body["warnings"] == ["3 item(s) with a non-finite score were left out"]
        assert "gan4rec_nonfinite_scores_total 6.0" in c.get("/metrics").text


# ------------------------------------------------------------------------------------------------ explain
def test_get_explain_is_the_library_explanation(client: TestClient, store: dict[str, Any]) -> None:
    model = store["ease"]
    item = int(model.recommend([4], 1)[0][0, 0])
    params = {"user": _user_raw(model, 4), "item": _item_raw(model, [item])[0], "top": 4}
    r = client.get("/explain", params=params)
    assert r.status_code == 200
    body = r.json()
    e = explain(model, item, user=4, top=4)
    assert body["method"] == "exact" and body["approximate"] is False
    assert [c["item"] for c in body["contributions"]] == _item_raw(model, e.items)
    assert [c["weight"] for c in body["contributions"]] == pytest.approx(e.weights.tolist())
    assert body["total"] == pytest.approx(body["score"], rel=1e-4)
    assert body["contributions"][0]["title"].startswith("Film ")
    assert client.get("/explain", params={"user": "nobody", "item": 1}).status_code == 404
    assert client.get("/explain", params={"user": 1, "item": "nothing"}).status_code == 404


def test_post_explain_for_a_history(client: TestClient, store: dict[str, Any]) -> None:
    model = store["ease"]
    hist = _item_raw(model, [1, 2, 3])
    body = {"history": [*hist, "??"], "items": _item_raw(model, [10, 11]), "top": 2}
    r = client.post("/explain", json=body)
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["item"] for x in res] == _item_raw(model, [10, 11]) and res[0]["user"] is None
    e = explain(model, 10, history=[1, 2, 3], top=2)
    assert [c["weight"] for c in res[0]["contributions"]] == pytest.approx(e.weights.tolist())
    assert "history" in res[0]["warnings"][0]


def test_explain_methods_per_model(store: dict[str, Any]) -> None:
    with TestClient(create_app(store["root"] / "multvae")) as c:
        body = c.get("/explain", params={"user": 3, "item": 7}).json()
        assert body["method"] == "integrated_gradients" and body["baseline"] is not None
    with TestClient(create_app(store["root"] / "bpr")) as c:
        body = c.get("/explain", params={"user": 3, "item": 7}).json()
        assert body["method"] == "embedding_similarity (approximate)" and body["approximate"] is True
        r = c.post("/explain", json={"history": [1, 2], "items": [7]})
        assert r.status_code == 409 and "unsupported for this model" in r.json()["detail"]
    with TestClient(create_app(store["root"] / "cfgan")) as c:  # user-based: folds in, gradients
        assert c.get("/explain", params={"user": 3, "item": 7}).json()["method"] == "integrated_gradients"
        res = c.post("/recommend", json={"history": [1, 2, 3], "k": 4}).json()["results"][0]
        assert res["strategy"] == "model" and len(res["items"]) == 4
    with TestClient(create_app(store["root"] / "cfgan-item")) as c:
        assert "item-based CFGAN" in c.post("/recommend", json={"history": [1]}).json()["detail"]
        assert c.get("/explain", params={"user": 3, "item": 7}).status_code == 400
        assert c.get("/recommend", params={"user": 3}).json()["strategy"] == "model"
    with TestClient(create_app(store["root"] / "toppop")) as c:
        r = c.get("/explain", params={"user": 3, "item": 7})
        assert r.status_code == 400 and "cannot explain toppop" in r.json()["detail"]
        assert c.get("/info").json()["explain_method"] is None


def test_similar_history_and_item_search(client: TestClient, store: dict[str, Any]) -> None:
    model = store["ease"]
    body = client.get("/similar", params={"item": _item_raw(model, [6])[0], "k": 4}).json()
    assert body["method"] == "fold_in" and len(body["items"]) == 4
    row = np.asarray(model.weights_, dtype=np.float64)[6].copy()
    row[6] = -np.inf
    assert [it["item"] for it in body["items"]] == _item_raw(model, np.argsort(-row, kind="stable")[:4])
    assert client.get("/similar", params={"item": "unknown"}).status_code == 404
    hist = client.get("/history", params={"user": _user_raw(model, 2), "limit": 3}).json()
    assert hist["total"] == len(model.seen_.row(2))
    assert [it["item"] for it in hist["items"]] == _item_raw(model, model.seen_.row(2)[:3])
    found = client.get("/items", params={"q": "PART 2", "limit": 100}).json()["items"]
    assert found and all(it["title"].endswith("part 2") for it in found)
    popularity = model.seen_.item_counts()
    idx = model.item_map_.lookup(np.array([it["item"] for it in found]))
    assert np.all(np.diff(popularity[idx]) <= 0)  # most popular first
    assert client.get("/items", params={"q": "7"}).json()["items"][0]["item"] == 7  # exact id first


def test_read_item_titles_formats(tmp_path: Path) -> None:
    imap = IdMap(np.array([1, 2, 10]))
    u_item = "1|Toy Story (1995)|01-Jan-1995||http://x|0|1\n2|Caf\xe9 (1994)|x\n"
    (tmp_path / "u.item").write_bytes(u_item.encode("latin-1"))
    assert read_item_titles(tmp_path / "u.item", imap).tolist() == ["Toy Story (1995)", "Café (1994)", None]
    (tmp_path / "movies.dat").write_text("10::Heat (1995)::Action\n2::Two::Drama\n")
    assert read_item_titles(tmp_path / "movies.dat", imap).tolist() == [None, "Two", "Heat (1995)"]
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n1,"American President, The (1995)",Comedy\n')
    assert read_item_titles(tmp_path / "movies.csv", imap)[0] == "American President, The (1995)"
    (tmp_path / "bad.csv").write_text("a,b\n1,x\n")
    with pytest.raises(DataError, match="bad.csv:1: header"):
        read_item_titles(tmp_path / "bad.csv", imap)
    (tmp_path / "other.csv").write_text("item,title\n77,x\n")
    with pytest.raises(DataError, match="none of its 1 rows"):
        read_item_titles(tmp_path / "other.csv", imap)


# ------------------------------------------------------------------------------------------------ service
def test_health_readiness_and_info(client: TestClient, store: dict[str, Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"] == "ease"
    assert (ready["n_users"], ready["n_items"]) == (120, 50)
    info = client.get("/info").json()
    assert info["fold_in"] is True and info["explain_method"] == "exact" and info["titles"] is True
    assert info["auth"] is False and len(info["example_users"]) == 20


def test_metrics_count_requests_by_route(store: dict[str, Any]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with TestClient(create_app(store["root"] / "ease")) as c:
        for _ in range(3):
            c.get("/recommend", params={"user": "1"})
        c.get("/recommend", params={"user": "1", "k": "0"})
        c.get("/no/such/path")
        c.post("/recommend", json={"users": [1, "new"]})
        text = c.get("/metrics").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    req = "gan4rec_http_requests_total"
    assert samples[(req, (("method", "GET"), ("route", "/recommend"), ("status", "200")))] == 3
    assert samples[(req, (("method", "GET"), ("route", "/recommend"), ("status", "422")))] == 1
    assert samples[(req, (("method", "GET"), ("route", "other"), ("status", "404")))] == 1
    assert samples[("gan4rec_http_request_duration_seconds_count",
                    (("method", "GET"), ("route", "/recommend")))] == 4
    assert samples[("gan4rec_recommendations_total", (("strategy", "model"),))] == 4
    assert samples[("gan4rec_recommendations_total", (("strategy", "popularity_fallback"),))] == 1


def test_admin_reload_swaps_and_refuses_corrupt_artifacts(store: dict[str, Any], data: Interactions,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "m"
    create("ease", {"l2": 10.0}).fit(data).save(path)
    with TestClient(create_app(path, api_key=KEY)) as c:
        v0 = c.get("/readyz", headers=H).json()["model_version"]
        live0 = c.app.state.slot.current
        create("ease", {"l2": 1000.0}).fit(data).save(path)
        r = c.post("/admin/reload", headers=H)
        assert r.status_code == 200
        v1 = r.json()["model_version"]
        assert r.json()["previous_version"] == v0 and v1 != v0
        # The snapshot a request in flight holds is untouched: still the old model, still usable.
        assert live0.version == v0 and live0.model.l2 == 10.0
        assert c.app.state.slot.current.model.l2 == 1000.0
        _corrupt(path, "flip")
        r = c.post("/admin/reload", headers=H)
        assert r.status_code == 409 and f"still serving version {v1}" in r.json()["detail"]
        ready = c.get("/readyz", headers=H).json()
        assert ready["model_version"] == v1 and ready["refused_reloads"] == 1 and ready["reloads"] == 1
        assert "sha256" in ready["last_reload_error"]
        assert c.get("/recommend", params={"user": "1"}, headers=H).json()["model_version"] == v1
        text = c.get("/metrics", headers=H).text
        assert 'gan4rec_model_reloads_total{outcome="refused"} 1.0' in text
        assert 'gan4rec_model_reloads_total{outcome="ok"} 1.0' in text
        assert f'gan4rec_model_info{{model="ease",version="{v1}"}} 1.0' in text and v0 not in text


def test_a_corrupt_artifact_fails_at_start(store: dict[str, Any], data: Interactions, tmp_path: Path) -> None:
    from gan4rec.errors import ArtifactError

    create("ease", {"l2": 10.0}).fit(data).save(tmp_path / "m")
    _corrupt(tmp_path / "m", "nan")
    with pytest.raises(ArtifactError, match="non-finite"):
        create_app(tmp_path / "m")


def test_top_k_follows_the_library_ranking_rule() -> None:
    import torch

    from gan4rec.evaluation.evaluator import topk

    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        row = rng.integers(0, 4, size=n).astype(np.float32)  # many ties
        row[rng.random(n) < 0.2] = -np.inf
        k = int(rng.integers(1, n + 3))
        ours = top_k(row, k)
        _, idx = topk(torch.from_numpy(row.copy()), min(k, n))
        # The library pads masked (-inf) places with -1; the server drops them: compare the real items.
        assert ours[row[ours] > -np.inf].tolist() == [i for i in idx.numpy().tolist() if i >= 0]
        assert len(ours) == min(k, n)


def test_micro_batcher_scores_concurrent_requests_together() -> None:
    calls = []

    class _Model:
        def score(self, users: np.ndarray) -> np.ndarray:
            calls.append(users.tolist())
            return np.asarray(users, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)

    class _Live:
        model = _Model()

    async def run() -> list[np.ndarray]:
        b = Batcher()
        live = _Live()
        return await asyncio.gather(*(b.score(live, u) for u in (4, 1, 7)))

    out = asyncio.run(run())
    assert calls == [[4, 1, 7]]
    assert [o.tolist() for o in out] == [[4.0] * 3, [1.0] * 3, [7.0] * 3]

    async def burst() -> list[np.ndarray]:
        b = Batcher()
        b.max_batch = 2
        live = _Live()
        return await asyncio.gather(*(b.score(live, u) for u in range(5)))

    calls.clear()
    out = asyncio.run(burst())
    assert calls == [[0, 1], [2, 3], [4]]  # chunks of max_batch, every request answered
    assert [int(o[0]) for o in out] == [0, 1, 2, 3, 4]


def test_openapi_takes_no_paths_or_urls(client: TestClient) -> None:
    """No endpoint can be told to load anything: no parameter or body field names a file, path or URL."""
    spec = client.get("/openapi.json").json()
    names = set()
    for ops in spec["paths"].values():
        for op in ops.values():
            names |= {p["name"] for p in op.get("parameters", [])}
    for schema in spec["components"]["schemas"].values():
        names |= set(schema.get("properties", {}))
    assert not {n for n in names if any(w in n.lower() for w in ("path", "url", "file", "dir", "uri"))}


def test_web_page_is_self_contained(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<script>" in r.text and "/recommend" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN: the page works offline
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_web_page_hides_empty_tags_and_names_untitled_items_once(client: TestClient) -> None:
    """Before the first query the strategy tag and warning lines are empty, and empty ones take no room;
    every item list (history, recommendations, search results) names an item through one helper that
    shows an untitled item's id once ("item 42", not "item 42 #42")."""
    page = client.get("/").text
    assert '<span class="method" id="strategy"></span>' in page
    assert ".method:empty, .warnings:empty { display: none; }" in page
    assert page.count('"#" + ') == 1, "the id tag is written in one place only (itemName)"
    assert "entry.title ? [name, " in page and page.count("...itemName(it)") == 3


# ---------------------------------------------------------------------------------------------- schemathesis
def _schemathesis_run(app: Any, max_examples: int, headers: dict[str, str] | None = None) -> tuple[list[str], int]:
    """Every operation of the schema, every schemathesis check on each generated case: (failures, cases)."""
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    cases = [0]
    for result in schema.get_all_operations():
        _check_operation(result.ok(), max_examples, failures, cases, H if headers is None else headers)
    return failures, cases[0]


def _check_operation(op: Any, max_examples: int, failures: list[str], cases: list[int],
                     headers: dict[str, str]) -> None:
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(op.as_strategy())
    def check(case: Any) -> None:
        cases[0] += 1
        try:
            case.call_and_validate(headers=headers)  # all of schemathesis' checks (its default)
        except Exception as e:  # noqa: BLE001 -- every check of schemathesis, server errors included
            failures.append(f"{op.label}: {str(e)[:400]}")

    check()


def test_schemathesis_smoke(store: dict[str, Any]) -> None:
    """All of schemathesis' checks (5xx, schema conformance, status codes) on a few examples per endpoint."""
    app = create_app(store["root"] / "ease", api_key=KEY, items_file=store["titles"])
    failures, cases = _schemathesis_run(app, 4)
    assert failures == [] and cases > 0


@pytest.mark.slow
@pytest.mark.parametrize("keys", [True, False], ids=["with-keys", "without-keys"])
def test_schemathesis_full(store: dict[str, Any], keys: bool, capsys: pytest.CaptureFixture[str]) -> None:
    """100 examples per operation, every check, with API keys (sent) and without any (the schema then
    declares none); the case count is printed for BENCHMARKS.md."""
    app = create_app(store["root"] / "ease", api_key=KEY if keys else None, items_file=store["titles"])
    failures, cases = _schemathesis_run(app, 100, H if keys else {})
    with capsys.disabled():
        print(f"\nschemathesis {'with' if keys else 'without'} keys: {cases} cases, {len(failures)} failures")
    assert failures == []


# ------------------------------------------------------------------------------------------------ real server
def _corrupt(path: Path, how: str) -> None:
    """Make the artifact's current version unloadable, in one of several ways."""
    version = path / (path / "CURRENT").read_text().strip()
    if how == "flip":  # a byte of the weights changes: the checksum no longer matches
        blob = bytearray((version / "tensors.safetensors").read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        (version / "tensors.safetensors").write_bytes(bytes(blob))
    elif how == "truncate":  # a half-written metadata file
        meta = (version / "meta.json").read_bytes()
        (version / "meta.json").write_bytes(meta[: len(meta) // 2])
    elif how == "nan":  # consistent checksums, non-finite weights
        model = Recommender.load(path)
        model.weights_[0, 1] = np.nan
        model.save(path)
    elif how == "missing":  # CURRENT names a folder that does not exist
        atomic_write_text(path / "CURRENT", "v-does-not-exist")
    else:
        raise ValueError(how)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
          timeout: float = 10.0) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        hdrs = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode()
    finally:
        conn.close()


@contextlib.contextmanager
def _server(model_dir: Path, *args: str, startup_s: float = 90.0) -> Iterator[tuple[int, subprocess.Popen]]:
    """A ``gan4rec serve`` process on 127.0.0.1 and a free port; SIGTERM (then SIGKILL) on exit."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryFile() as log:
        cmd = [sys.executable, "-m", "gan4rec", "serve", str(model_dir), "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--graceful-timeout", "10", *args]
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        try:
            deadline = time.monotonic() + startup_s
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"server exited with {proc.returncode}: {log.read().decode()[-2000:]}")
                with contextlib.suppress(OSError):
                    if _call(port, "GET", "/readyz", timeout=2)[0] == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail("server not ready in time")
                time.sleep(0.1)
            yield port, proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def live_server(store: dict[str, Any], data: Interactions,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """One real server for the tests below; its artifact folder is theirs to replace."""
    path = tmp_path_factory.mktemp("live") / "m"
    create("ease", {"l2": 10.0}).fit(data).save(path)
    with _server(path, "--api-key-file", str(store["keys"]), "--items-file", str(store["titles"]),
                 "--max-body-bytes", "65536") as (port, proc):
        _SERVERS[port] = proc
        yield port, path


def test_real_server_413_for_chunked_and_declared_bodies(live_server: tuple[int, Path]) -> None:
    port, _ = live_server
    # Declared too large: refused before a single body byte is sent.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /recommend HTTP/1.1\r\nHost: t\r\nX-API-Key: " + KEY.encode()
                  + b"\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")
    # Chunked, no length: answered 413 once the limit is crossed, long before the body ends.
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /recommend HTTP/1.1\r\nHost: t\r\nX-API-Key: " + KEY.encode()
                  + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"1," * 4096
        answer = b""
        s.settimeout(0.05)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 50_000_000 and not answer:
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
                with contextlib.suppress(TimeoutError, socket.timeout):
                    answer = s.recv(4096)
        s.settimeout(10)
        while b"\r\n\r\n" not in answer:
            more = s.recv(4096)
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert sent < 2_000_000  # the server stopped reading near the 64 KiB limit
    assert _call(port, "GET", "/healthz")[0] == 200


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_web_page_in_headless_chromium(live_server: tuple[int, Path], tmp_path: Path) -> None:
    port, _ = live_server

    def dom(url: str) -> str:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}", "--window-size=1280,2000",
               "--virtual-time-budget=15000", "--dump-dom", url]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=90).stdout

    _, ready = _call(port, "GET", "/info", headers=H)
    user = ready["example_users"][0]
    # The key travels in the fragment, which the browser never sends to the server.
    page = dom(f"http://127.0.0.1:{port}/?user={user}&k=5#key={KEY}")
    assert 'data-state="done"' in page, page[-3000:]
    assert page.count('class="rec"') == 5
    assert page.count('<div class="why">because of: ') == 5 and page.count('class="contrib"') >= 5
    assert "Film " in page  # titles from the items file
    assert "exact" in page
    page = dom(f"http://127.0.0.1:{port}/?history=1,2,3&k=4#key={KEY}")
    assert 'data-state="done"' in page and page.count('class="rec"') == 4
    assert page.count('class="chip"') == 3


def test_real_server_sighup_reload_and_corrupt_refused(live_server: tuple[int, Path],
                                                        data: Interactions) -> None:
    port, path = live_server
    proc_pid = _SERVERS[port].pid
    v0 = _call(port, "GET", "/readyz", headers=H)[1]["model_version"]
    create("ease", {"l2": 500.0}).fit(data).save(path)
    v1 = (path / "CURRENT").read_text().strip()
    os.kill(proc_pid, signal.SIGHUP)
    assert _wait_for(lambda: _call(port, "GET", "/readyz", headers=H)[1]["model_version"] == v1), "reload did not happen"
    assert v1 != v0
    _corrupt(path, "truncate")
    os.kill(proc_pid, signal.SIGHUP)
    assert _wait_for(lambda: _call(port, "GET", "/readyz", headers=H)[1]["refused_reloads"] >= 1)
    ready = _call(port, "GET", "/readyz", headers=H)[1]
    assert ready["model_version"] == v1 and ready["status"] == "ready"
    status, body = _call(port, "GET", "/recommend?user=1", headers=H)
    assert status == 200 and body["model_version"] == v1


def _wait_for(cond: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, KeyError):
            if cond():
                return True
        time.sleep(0.05)
    return False


def test_twenty_reloads_under_load(live_server: tuple[int, Path], data: Interactions) -> None:
    """Acceptance: 20 reloads alternating valid and corrupt artifacts while 4 clients keep asking.

    0 failed requests, and every answer comes from a valid model: the versions seen are only those of
    valid saves, and after each corrupt one the live version is still the last valid one.
    """
    port, path = live_server
    models = [create("ease", {"l2": l2}).fit(data) for l2 in (10.0, 300.0)]
    valid = {_call(port, "GET", "/readyz", headers=H)[1]["model_version"]}
    stop = threading.Event()
    statuses: list[int] = []
    errors: list[str] = []
    versions: set[str] = set()
    lock = threading.Lock()
    users = data.user_map.ids.tolist()

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            user = users[int(rng.integers(len(users)))]
            try:
                conn.request("GET", f"/recommend?user={user}&k=10", headers=H)
                resp = conn.getresponse()
                body = json.loads(resp.read())
                with lock:
                    statuses.append(resp.status)
                    versions.add(body.get("model_version", "?"))
            except Exception as e:  # noqa: BLE001 -- any failure counts
                with lock:
                    errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        corruptions = ["flip", "truncate", "nan", "missing"]
        live = next(iter(valid))
        for n in range(20):
            if n % 2 == 0:
                models[(n // 2) % 2].save(path)
                expected = (path / "CURRENT").read_text().strip()
                status, body = _call(port, "POST", "/admin/reload", headers=H)
                assert status == 200, body
                assert body["model_version"] == expected
                valid.add(expected)
                live = expected
            else:
                models[0].save(path)  # a new version on disk, then broken before any reload sees it
                _corrupt(path, corruptions[(n // 2) % len(corruptions)])
                status, body = _call(port, "POST", "/admin/reload", headers=H)
                assert status == 409, body
            assert _call(port, "GET", "/readyz", headers=H)[1]["model_version"] == live
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    assert len(statuses) > 100 and set(statuses) == {200}
    assert versions <= valid, versions - valid
    ready = _call(port, "GET", "/readyz", headers=H)[1]
    assert ready["refused_reloads"] >= 10


def test_sigterm_drains_requests_in_flight(live_server: tuple[int, Path]) -> None:
    """Last test of the live server: SIGTERM lets a request in flight finish, then the process exits."""
    port, _ = live_server
    proc = _SERVERS[port]
    body = json.dumps({"users": [1, 2], "k": 3}).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(b"POST /recommend HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nX-API-Key: "
              + KEY.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
    time.sleep(0.3)  # the request is in flight: headers in, body half sent
    proc.send_signal(signal.SIGTERM)
    # The server stops accepting new connections while it drains.
    assert _wait_for(lambda: _refused(port), timeout=10)
    assert proc.poll() is None
    s.sendall(body[10:])
    answer = b""
    while True:
        part = s.recv(65536)
        if not part:
            break
        answer += part
    s.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert [r["user"] for r in json.loads(payload)["results"]] == [1, 2]
    # uvicorn re-raises SIGTERM once drained, so supervisors see the usual "terminated" status.
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.slow
def test_several_workers_share_metrics_and_reload(store: dict[str, Any], data: Interactions,
                                                  tmp_path: Path) -> None:
    """``--workers 2``: /metrics adds up both workers; an HTTP reload replaces every worker."""
    path = tmp_path / "m"
    create("ease", {"l2": 10.0}).fit(data).save(path)
    with _server(path, "--workers", "2", "--api-key-file", str(store["keys"]), startup_s=120) as (port, _):
        for _ in range(30):
            assert _call(port, "GET", "/healthz")[0] == 200

        def samples(name: str) -> list[Any]:
            from prometheus_client.parser import text_string_to_metric_families

            text = _call(port, "GET", "/metrics", headers=H)[1]
            return [s for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == name]

        def healthz_count() -> float:
            return sum(s.value for s in samples("gan4rec_http_requests_total")
                       if s.labels["route"] == "/healthz")

        # Counted once the answer is sent, so the last one may land a moment after the client has it.
        assert _wait_for(lambda: healthz_count() == 30, timeout=10), healthz_count()

        def serving() -> dict[str, str]:
            """pid -> version of every live worker, from /metrics (any worker answers for all)."""
            live = [s for s in samples("gan4rec_model_info") if s.value == 1]
            return {s.labels["pid"]: s.labels["version"] for s in live}

        v0 = (path / "CURRENT").read_text().strip()
        assert _wait_for(lambda: len(serving()) == 2, timeout=30)
        assert set(serving().values()) == {v0}
        create("ease", {"l2": 500.0}).fit(data).save(path)
        new = (path / "CURRENT").read_text().strip()
        status, body = _call(port, "POST", "/admin/reload", headers=H)
        assert status == 200 and body["workers"] == "all"
        assert _wait_for(lambda: set(serving().values()) == {new} and len(serving()) == 2, timeout=20)
        _corrupt(path, "flip")
        status, body = _call(port, "POST", "/admin/reload", headers=H)
        assert status == 409
        time.sleep(1.5)  # longer than the workers' polling interval: nobody follows a refused reload
        assert set(serving().values()) == {new} and len(serving()) == 2


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_serve_fails_fast_on_bad_input(store: dict[str, Any], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from gan4rec.cli import main

    assert main(["serve", str(tmp_path / "absent")]) == 66
    assert "no such model artifact" in capsys.readouterr().err
    (tmp_path / "short").write_text("abc\n")
    assert main(["serve", str(store["root"] / "ease"), "--api-key-file", str(tmp_path / "short")]) == 65
    assert "API key is 3 characters long" in capsys.readouterr().err
    assert main(["serve", str(store["root"] / "ease"), "--workers", "0"]) == 2
    assert main(["serve", str(store["root"] / "ease"), "--items-file", str(tmp_path / "none.csv")]) == 66
