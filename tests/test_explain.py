"""Explanations: exact contributions, integrated gradients, embedding similarity, unsupported models, CLI.

Exact contributions are checked against the models' weight matrices entry by entry and against their
scores (the contributions of the whole history add up to the score); integrated gradients against a
linear function, where they must equal the exact contributions, and against their completeness property
on Mult-VAE; the fidelity benchmark's function on synthetic data, and on ML-100K where it is present.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import gan4rec.explain as ex
from gan4rec.cli import main
from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError
from gan4rec.explain import (
    METHOD_EMBEDDING,
    METHOD_EXACT,
    METHOD_INTEGRATED_GRADIENTS,
    UnsupportedError,
    explain,
    explain_items,
    explanation_method,
    fold_in_scores,
    fold_in_support,
    history_matrix,
    similar_items,
)
from gan4rec.models import create
from gan4rec.models.base import Recommender

ROOT = Path(__file__).resolve().parents[1]

TINY: dict[str, dict[str, Any]] = {
    "ease": {"l2": 10.0},
    "itemknn": {"topk": 20},
    "slim": {"alpha": 1e-2, "l1_ratio": 0.1},
    "rp3beta": {"topk": 20},
    "puresvd": {"n_factors": 6},
    "multvae": {"hidden": 32, "latent": 8, "epochs": 15, "total_anneal_steps": 10, "patience": None,
                "device": "cpu"},
    "bpr": {"n_factors": 8, "epochs": 3, "patience": None, "device": "cpu"},
    "ials": {"n_factors": 8, "iterations": 2, "patience": None, "device": "cpu"},
    "toppop": {},
    "userknn": {"topk": 20},
}


@pytest.fixture(scope="module")
def data() -> Interactions:
    return make_synthetic(150, 60, 2400, n_factors=4, random_state=0)


@pytest.fixture(scope="module")
def models(data: Interactions) -> dict[str, Recommender]:
    return {name: create(name, params, random_state=0).fit(data) for name, params in TINY.items()}


def _w_column(model: Recommender, item: int) -> np.ndarray:
    """Column ``item`` of the ``(n_items, n_items)`` matrix ``W`` with which the model scores ``x @ W``."""
    if model.name == "puresvd":
        v = np.asarray(model.item_factors_, dtype=np.float64)
        return v @ v[item]
    w = model.weights_
    col = w[:, [item]].toarray().ravel() if sp.issparse(w) else np.asarray(w)[:, item]
    return col.astype(np.float64)


# ------------------------------------------------------------------------------------------------ exact
@pytest.mark.parametrize("name", ["ease", "itemknn", "slim", "rp3beta", "puresvd"])
def test_exact_contributions_are_weight_entries_and_sum_to_the_score(models: dict, name: str) -> None:
    model = models[name]
    user = 7
    item = int(model.recommend([user], 1)[0][0, 0])
    e = explain(model, item, user=user, top=1000)
    hist = model.seen_.row(user)
    col = _w_column(model, item)
    assert e.method == METHOD_EXACT and not e.approximate and e.baseline is None
    assert e.history_size == len(hist)
    # Every history item with a non-zero weight is listed, with weight W[j, item], largest first.
    expected = {int(j): col[j] for j in hist if col[j] != 0.0}
    assert expected, "the test needs a recommended item that some history item votes for"
    assert {int(i): w for i, w in e.pairs()} == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert np.all(np.diff(e.weights) <= 0)
    score = float(model.score([user])[0, item])
    assert e.score == pytest.approx(score, rel=1e-5)
    assert e.total == pytest.approx(score, rel=1e-4, abs=1e-6)


def test_ease_hand_example() -> None:
    """EASE on a 4 x 3 matrix with l2 = 1: B = I - P diag(1/diag P), P = (X^T X + I)^-1, by hand."""
    x = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1], [1, 0, 0]], dtype=np.float64)
    users, items = np.nonzero(x)
    inter = Interactions.from_indices(users, items, IdMap(np.arange(4)), IdMap(np.arange(3)))
    model = create("ease", {"l2": 1.0}).fit(inter)
    p = np.linalg.inv(x.T @ x + np.eye(3))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    # User 3 has item 0 only: the score of item 2 is B[0, 2], all of it from item 0.
    e = explain(model, 2, user=3)
    assert e.pairs() == [(0, pytest.approx(b[0, 2], rel=1e-5))]
    # User 0 has items 0 and 1: contributions B[0, 2] and B[1, 2], larger first.
    e = explain(model, 2, user=0)
    expected = sorted([(0, b[0, 2]), (1, b[1, 2])], key=lambda t: -t[1])
    assert [i for i, _ in e.pairs()] == [i for i, _ in expected]
    assert [w for _, w in e.pairs()] == pytest.approx([w for _, w in expected], rel=1e-5)


def test_ties_rank_the_lower_index_first() -> None:
    assert ex._order(np.array([0.5, 0.7, 0.5, -1.0])).tolist() == [1, 0, 2, 3]


def test_history_explanation_equals_user_explanation(models: dict) -> None:
    model = models["ease"]
    hist = model.seen_.row(3)
    by_user = explain(model, 10, user=3, top=5)
    by_history = explain(model, 10, history=hist[::-1].tolist() + [int(hist[0])], top=5)  # order, duplicates
    # Compare the pairs explicitly: the same items in the same order, weights equal to float tolerance.
    assert [i for i, _ in by_history.pairs()] == [i for i, _ in by_user.pairs()]
    assert [w for _, w in by_history.pairs()] == pytest.approx([w for _, w in by_user.pairs()])
    assert by_history.score == pytest.approx(by_user.score, rel=1e-5)


def test_explain_items_batches_like_single_calls(models: dict) -> None:
    model = models["rp3beta"]
    batch = explain_items(model, [4, 9, 31], user=12, top=3)
    singles = [explain(model, i, user=12, top=3) for i in (4, 9, 31)]
    assert [b.pairs() for b in batch] == [s.pairs() for s in singles]
    assert [b.item for b in batch] == [4, 9, 31]


# ------------------------------------------------------------------------------------------------ gradient
class _Linear(Recommender):
    """``x @ W`` written as a torch function, to check integrated gradients against exact answers."""

    name = "test_linear_gradient"

    def __init__(self, *, random_state: int | None = None) -> None:
        self.random_state = random_state

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        rng = np.random.default_rng(1)
        self.w_ = rng.normal(size=(train.n_items, train.n_items)).astype(np.float32)  # (n_items, n_items)

    def score_history(self, history: Any) -> np.ndarray:
        return np.asarray(sp.csr_matrix(history) @ self.w_, dtype=np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.score_history(self.seen_.csr()[users])


def test_integrated_gradients_of_a_linear_function_are_the_exact_contributions(data: Interactions,
                                                                              monkeypatch: pytest.MonkeyPatch
                                                                              ) -> None:
    import torch

    model = _Linear().fit(data)
    w = torch.from_numpy(model.w_)
    rule = ex._Gradient(lambda mm: (lambda x: x, lambda x: x @ w))
    monkeypatch.setitem(ex._RULES, _Linear.name, lambda m: rule)
    assert explanation_method(model) == METHOD_INTEGRATED_GRADIENTS
    e = explain(model, 5, user=2, top=1000, steps=4)
    hist = model.seen_.row(2)
    assert dict(e.pairs()) == pytest.approx({int(j): float(model.w_[j, 5]) for j in hist}, rel=1e-4, abs=1e-5)
    assert e.baseline == pytest.approx(0.0, abs=1e-6)
    assert e.total == pytest.approx(e.score, rel=1e-4)


def test_integrated_gradients_on_multvae_are_complete(models: dict) -> None:
    """Completeness: the weights of the whole history add up to score - baseline (midpoint rule)."""
    model = models["multvae"]
    items = model.recommend([5], 3)[0][0]
    for e in explain_items(model, items, user=5, top=1000, steps=64):
        assert e.method == METHOD_INTEGRATED_GRADIENTS and not e.approximate
        assert e.history_size == len(model.seen_.row(5)) == len(e.items)
        assert e.score == pytest.approx(float(model.score([5])[0, e.item]), rel=1e-4, abs=1e-5)
        assert e.total == pytest.approx(e.score - e.baseline, rel=0.02, abs=1e-3)


def test_gradient_explanations_do_not_touch_parameter_gradients(models: dict) -> None:
    model = models["multvae"]
    for p in model.modules_["vae"].parameters():
        p.grad = None
    explain(model, 3, user=1)
    assert all(p.grad is None for p in model.modules_["vae"].parameters())


# ------------------------------------------------------------------------------------------------ embedding
@pytest.mark.parametrize("name", ["bpr", "ials"])
def test_mf_explanations_are_embedding_cosines_labelled_approximate(models: dict, name: str) -> None:
    model = models[name]
    emb = ex._rule(model).embedding(model)  # (n_items, f)
    e = explain(model, 11, user=4, top=1000)
    assert e.method == METHOD_EMBEDDING and e.approximate and e.total is None
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    expected = {int(j): float(unit[j] @ unit[11]) for j in model.seen_.row(4)}
    assert dict(e.pairs()) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert e.score == pytest.approx(float(model.score([4])[0, 11]), rel=1e-5)


# ------------------------------------------------------------------------------------------------ GANs
@pytest.fixture(scope="module")
def gans(data: Interactions) -> dict[str, Recommender]:
    small = {"g_hidden": [16, 8], "d_hidden": 8, "epochs": 3, "patience": None, "device": "cpu"}
    return {
        "cfgan-user": create("cfgan", {**small, "mode": "user"}, random_state=0).fit(data),
        "cfgan-noise": create("cfgan", {**small, "mode": "user", "noise_dim": 3, "noise": "uniform",
                                        "g_activation": "tanh"}, random_state=0).fit(data),
        "cfgan-item": create("cfgan", {**small, "mode": "item"}, random_state=0).fit(data),
        "irgan": create("irgan", {"n_factors": 8, "epochs": 1, "pretrain_epochs": 1, "patience": None,
                                  "device": "cpu"}, random_state=0).fit(data),
    }


@pytest.mark.parametrize("key", ["cfgan-user", "cfgan-noise"])
def test_user_based_cfgan_folds_in_and_is_explained_by_integrated_gradients(gans: dict, key: str) -> None:
    model = gans[key]
    users = np.arange(6)
    # The autograd restatement of the generator is the model's own scoring, on training rows.
    folded = fold_in_scores(model, model.seen_.csr()[users])
    assert folded == pytest.approx(model.score(users), rel=1e-5, abs=1e-6)
    assert fold_in_support(model) is None and explanation_method(model) == METHOD_INTEGRATED_GRADIENTS
    e = explain(model, 9, user=4, top=1000, steps=64)
    assert e.history_size == len(model.seen_.row(4)) == len(e.items)
    assert e.total == pytest.approx(e.score - e.baseline, rel=0.02, abs=1e-3)
    by_history = explain(model, 9, history=model.seen_.row(4), top=3, steps=64)
    assert by_history.items.tolist() == e.items[:3].tolist()
    assert by_history.weights == pytest.approx(e.weights[:3], rel=1e-5)


def test_item_based_cfgan_is_unsupported(gans: dict) -> None:
    model = gans["cfgan-item"]
    assert fold_in_support(model).startswith("item-based CFGAN")
    with pytest.raises(UnsupportedError, match="item-based CFGAN"):
        explain(model, 1, user=0)
    with pytest.raises(UnsupportedError, match="item-based CFGAN"):
        fold_in_scores(model, history_matrix([np.array([1])], model.n_items))


def test_irgan_explanations_are_embedding_similarities(gans: dict) -> None:
    model = gans["irgan"]
    e = explain(model, 11, user=4, top=1000)
    assert e.method == METHOD_EMBEDDING and e.approximate
    emb = model.modules_[model.recommend_with].item.weight.detach().numpy().astype(np.float64)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    assert dict(e.pairs()) == pytest.approx({int(j): float(unit[j] @ unit[11]) for j in model.seen_.row(4)},
                                            rel=1e-5, abs=1e-6)
    assert "irgan" in fold_in_support(model)


# ------------------------------------------------------------------------------------------------ support
def test_methods_and_fold_in_support_per_model(models: dict) -> None:
    methods = {name: explanation_method(m) for name, m in models.items()}
    assert methods == {
        "ease": METHOD_EXACT, "itemknn": METHOD_EXACT, "slim": METHOD_EXACT, "rp3beta": METHOD_EXACT,
        "puresvd": METHOD_EXACT, "multvae": METHOD_INTEGRATED_GRADIENTS, "bpr": METHOD_EMBEDDING,
        "ials": METHOD_EMBEDDING, "toppop": None, "userknn": None,
    }
    folds = {name for name, m in models.items() if fold_in_support(m) is None}
    assert folds == {"ease", "itemknn", "slim", "rp3beta", "puresvd", "multvae"}
    assert "one vector per training user" in fold_in_support(models["bpr"])


@pytest.mark.parametrize("name", ["toppop", "userknn"])
def test_unsupported_models_say_why(models: dict, name: str) -> None:
    with pytest.raises(UnsupportedError, match=f"cannot explain {name}"):
        explain(models[name], 1, user=0)


def test_mf_cannot_explain_an_unseen_history(models: dict) -> None:
    with pytest.raises(UnsupportedError, match="bpr"):
        explain(models["bpr"], 1, history=[2, 3])


@pytest.mark.parametrize("kwargs, match", [
    ({"user": 0, "history": [1]}, "exactly one of user"),
    ({}, "exactly one of user"),
    ({"user": 10_000}, "user index 10000 is out of range"),
    ({"user": 0, "top": 0}, "top must be a positive integer"),
    ({"user": 0, "steps": 0}, "steps must be an integer"),
    ({"history": [1.5]}, "history must hold item indices"),
    ({"history": [99]}, "outside 0..59"),
])
def test_bad_arguments_raise_data_errors(models: dict, kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        explain(models["ease"], 1, **kwargs)


def test_bad_item_raises(models: dict) -> None:
    with pytest.raises(DataError, match="item index 60 is out of range"):
        explain(models["ease"], 60, user=0)
    with pytest.raises(DataError, match="item must be an integer index"):
        explain(models["ease"], True, user=0)


def test_history_matrix_deduplicates_and_checks_range() -> None:
    m = history_matrix([np.array([2, 2, 0]), np.array([], dtype=np.int64)], 4)
    assert m.toarray().tolist() == [[1, 0, 1, 0], [0, 0, 0, 0]]
    with pytest.raises(DataError, match="outside 0..3"):
        history_matrix([np.array([4])], 4)


# ------------------------------------------------------------------------------------------------ similar
def test_similar_items_per_method(models: dict) -> None:
    ease = models["ease"]
    items, scores, method = similar_items(ease, 5, 4)
    row = np.asarray(ease.weights_, dtype=np.float64)[5].copy()  # x = e_5 scores W[5, :]
    row[5] = -np.inf
    assert method == "fold_in" and 5 not in items.tolist()
    assert items.tolist() == np.argsort(-row, kind="stable")[:4].tolist()
    assert scores == pytest.approx(row[items], rel=1e-5)
    assert similar_items(models["bpr"], 5, 3)[2] == "embedding_cosine"
    # Co-occurrence cosine by hand for TopPop: |U_i & U_j| / sqrt(|U_i| |U_j|).
    x = models["toppop"].seen_.csr().toarray()
    co = x.T @ x[:, 5]
    cos = co / np.sqrt(x.sum(0) * x[:, 5].sum())
    cos[5] = -np.inf
    items, scores, method = similar_items(models["toppop"], 5, 3)
    assert method == "cooccurrence_cosine"
    assert scores == pytest.approx(np.sort(cos)[::-1][:3], rel=1e-6)


# ------------------------------------------------------------------------------------------------ fidelity
def _fidelity_module() -> Any:
    path = ROOT / "benchmarks" / "explain_fidelity.py"
    spec = importlib.util.spec_from_file_location("explain_fidelity", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("explain_fidelity", module)
    spec.loader.exec_module(module)
    return module


def test_fidelity_on_synthetic_data(models: dict) -> None:
    """Removing the top-3 attributed items lowers the score more than removing 3 random ones."""
    fid = _fidelity_module()
    for name in ("ease", "multvae"):
        r = fid.fidelity(models[name], pairs=40, seed=0, random_draws=3)
        assert r["pairs"] == 40
        assert r["fraction_vs_one_random"] >= 0.8, (name, r)
        assert r["mean_drop_top3"] > r["mean_drop_random3"]


def test_fidelity_ease_on_ml100k(cfgan_split: tuple[Path, Path]) -> None:
    """Acceptance on ML-100K for EASE (l2 = 500): >= 80% of sampled pairs (measured: 100% of 300)."""
    from gan4rec.data.io import read_uir_pair

    fid = _fidelity_module()
    train, _ = read_uir_pair(*cfgan_split, format="uir")
    model = create("ease", {"l2": 500.0}).fit(train)
    r = fid.fidelity(model, pairs=100, seed=0, random_draws=1)
    assert r["fraction_vs_one_random"] >= 0.8


@pytest.mark.slow
def test_fidelity_multvae_on_ml100k(cfgan_split: tuple[Path, Path]) -> None:
    """Acceptance on ML-100K for Mult-VAE (integrated gradients); measured 99.7% of 300 pairs."""
    from gan4rec.data.io import read_uir_pair

    fid = _fidelity_module()
    train, _ = read_uir_pair(*cfgan_split, format="uir")
    model = create("multvae", fid.PARAMS["multvae"], random_state=0).fit(train)
    r = fid.fidelity(model, pairs=100, seed=0, random_draws=1)
    assert r["fraction_vs_one_random"] >= 0.8


@pytest.mark.slow
def test_fidelity_user_based_cfgan_on_ml100k(cfgan_split: tuple[Path, Path]) -> None:
    """Acceptance on ML-100K for user-based CFGAN; measured 100% of 300 pairs after 40 iterations."""
    from gan4rec.data.io import read_uir_pair

    fid = _fidelity_module()
    train, _ = read_uir_pair(*cfgan_split, format="uir")
    model = create("cfgan", {**fid.PARAMS["cfgan"], "epochs": 10}, random_state=0).fit(train)
    r = fid.fidelity(model, pairs=100, seed=0, random_draws=1)
    assert r["method"] == "integrated_gradients"
    assert r["fraction_vs_one_random"] >= 0.8


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_explain_text_and_json(models: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = models["ease"]
    model.save(tmp_path / "m")
    titles = tmp_path / "items.csv"
    titles.write_text("item,title\n" + "".join(f"{i},Film {i}\n" for i in model.item_map_.ids.tolist()))
    user_raw = int(model.user_map_.ids[3])
    item_idx = int(model.recommend([3], 1)[0][0, 0])
    item_raw = int(model.item_map_.ids[item_idx])
    code = main(["explain", str(tmp_path / "m"), "--user", str(user_raw), "--item", str(item_raw),
                 "--top", "3", "--json", "--items-file", str(titles)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    expected = explain(model, item_idx, user=3, top=3)
    assert out["method"] == "exact" and out["user"] == user_raw and out["item"] == item_raw
    assert out["title"] == f"Film {item_raw}"
    assert [c["item"] for c in out["contributions"]] == model.item_map_.to_raw(expected.items).tolist()
    assert [c["weight"] for c in out["contributions"]] == pytest.approx(expected.weights.tolist())
    assert out["contributions"][0]["title"] == f"Film {out['contributions'][0]['item']}"
    code = main(["explain", str(tmp_path / "m"), "--user", str(user_raw), "--item", str(item_raw)])
    text = capsys.readouterr().out
    assert code == 0 and "method: exact" in text and "sum of all history weights" in text


def test_cli_explain_errors(models: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models["ease"].save(tmp_path / "e")
    models["toppop"].save(tmp_path / "t")
    assert main(["explain", str(tmp_path / "e"), "--user", "99999", "--item", "1"]) == 65
    assert "--user '99999': unknown user" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "e"), "--user", "1", "--item", "1_0"]) == 65
    assert main(["explain", str(tmp_path / "t"), "--user", "1", "--item", "1"]) == 65
    assert "cannot explain toppop" in capsys.readouterr().err
