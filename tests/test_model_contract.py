"""The contract every model in MODELS follows, checked on a checkerboard.

The checkerboard: 12 users of group A interact with items 0-5, 8 users of group B with items 6-11.
Each user has one item of its own block withheld (``user % 6`` within the block). Expected answer: a
personalised model ranks the withheld item first among the user's unseen items, since it is the only
unseen item of the user's block. A non-personalised model (TopPop) ranks by global popularity, where
group A's items are more popular, so only group A users get their withheld item first.
"""

from __future__ import annotations

import numpy as np
import pytest

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError, NotFittedError
from gan4rec.models import MODELS, create, describe

N_A, N_B, BLOCK = 12, 8, 6
NON_PERSONALISED = {"toppop"}
# Small, fast settings for the contract run (models with epochs get few).
FAST_PARAMS: dict[str, dict] = {
    # 11 factors nearly reproduce the 20 x 12 checkerboard, so unseen items would tie at about 0.
    "puresvd": {"n_factors": 2},
    "bpr": {"n_factors": 4, "lr": 0.05, "l2": 1e-2, "epochs": 30, "batch_size": 32, "device": "cpu"},
    "multvae": {"hidden": 32, "latent": 8, "dropout": 0.2, "lr": 1e-2, "epochs": 40, "batch_size": 20,
                "total_anneal_steps": 0, "anneal_cap": 0.1, "device": "cpu"},
    "ials": {"n_factors": 4, "reg": 5.0, "alpha": 10.0, "iterations": 5, "device": "cpu"},
    "cfgan": {"mode": "user", "scheme": "zr", "g_hidden": 16, "d_hidden": 8, "g_lr": 1e-2, "d_lr": 1e-2,
              "zr_ratio": 0.7, "alpha": 0.03, "g_l2": 1e-3, "d_l2": 0.0,
              "epochs": 30, "g_batch_size": 8, "d_batch_size": 8, "device": "cpu"},
    # G starts from the BPR settings above; two short rounds must keep the withheld item on top.
    "irgan": {"n_factors": 4, "pretrain_lr": 0.05, "pretrain_l2": 1e-2, "pretrain_epochs": 30,
              "pretrain_batch_size": 32, "epochs": 2, "d_epochs": 1, "g_epochs": 1, "d_batch_size": 64,
              "g_batch_users": 8, "device": "cpu"},
    # GAR's recommender towers re-rank the backbone's (the BPR settings above) warm items.
    "gar": {"backbone_params": {"n_factors": 4, "lr": 0.05, "l2": 1e-2, "epochs": 30, "batch_size": 32},
            "content_dim": 4, "g_hidden": 16, "d_hidden": 16, "batch_size": 32, "epochs": 30, "device": "cpu"},
    "gar-reg": {"backbone_params": {"n_factors": 4, "lr": 0.05, "l2": 1e-2, "epochs": 30, "batch_size": 32},
                "content_dim": 4, "g_hidden": 16, "d_hidden": 16, "batch_size": 32, "epochs": 30,
                "device": "cpu"},
}


def _checkerboard() -> tuple[Interactions, np.ndarray]:
    users, items, held = [], [], []
    for u in range(N_A + N_B):
        base = 0 if u < N_A else BLOCK
        h = base + u % BLOCK
        held.append(h)
        for i in range(base, base + BLOCK):
            if i != h:
                users.append(u)
                items.append(i)
    from gan4rec.data.idmap import IdMap

    train = Interactions.from_indices(np.array(users), np.array(items), IdMap(np.arange(N_A + N_B)),
                                      IdMap(np.arange(2 * BLOCK)))
    return train, np.array(held)


@pytest.fixture(scope="module")
def checkerboard() -> tuple[Interactions, np.ndarray]:
    return _checkerboard()


def _model(name: str):
    return create(name, FAST_PARAMS.get(name), random_state=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_withheld_item_ranks_first(name: str, checkerboard) -> None:
    train, held = checkerboard
    model = _model(name).fit(train)
    items, scores = model.recommend(np.arange(train.n_users), k=3)
    assert items.shape == (train.n_users, 3) and scores.shape == (train.n_users, 3)
    check = np.arange(N_A) if name in NON_PERSONALISED else np.arange(train.n_users)
    np.testing.assert_array_equal(items[check, 0], held[check])
    assert np.all(np.diff(scores, axis=1) <= 0), "lists are sorted best first"


@pytest.mark.parametrize("name", list(MODELS))
def test_seen_items_excluded_and_filters(name: str, checkerboard) -> None:
    train, held = checkerboard
    model = _model(name).fit(train)
    users = np.arange(train.n_users)
    items, _ = model.recommend(users, k=2 * BLOCK)
    for u in users:
        recs = items[u][items[u] >= 0]
        assert not set(recs) & set(train.row(u).tolist())
        assert len(recs) == 2 * BLOCK - len(train.row(u)), "all unseen items are listed, then padding"
        assert (items[u][len(recs):] == -1).all()
    with_seen, _ = model.recommend(users, k=2 * BLOCK, exclude_seen=False)
    assert sorted(with_seen[0]) == list(range(2 * BLOCK))
    only, _ = model.recommend(users, k=3, candidates=[1, 7])
    assert set(only[:, :2].ravel()) <= {1, 7, -1}
    dropped, _ = model.recommend(users, k=3, exclude=held)
    assert not np.isin(dropped, held).any()


@pytest.mark.parametrize("name", list(MODELS))
def test_save_load_gives_identical_scores(name: str, checkerboard, tmp_path) -> None:
    from gan4rec.models.base import Recommender

    train, _ = checkerboard
    model = _model(name).fit(train)
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    np.testing.assert_array_equal(loaded.recommend(users, 5)[0], model.recommend(users, 5)[0])


@pytest.mark.parametrize("name", list(MODELS))
def test_unfitted_and_bad_input(name: str, checkerboard) -> None:
    train, _ = checkerboard
    model = _model(name)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.score([0])
    with pytest.raises(NotFittedError):
        model.recommend([0], 3)
    with pytest.raises(DataError, match="train must be an Interactions"):
        model.fit(np.ones((3, 3)))  # type: ignore[arg-type]
    model.fit(train)
    with pytest.raises(DataError, match="out of range"):
        model.score([train.n_users])
    with pytest.raises(DataError, match="k must be a positive integer"):
        model.recommend([0], 0)
    with pytest.raises(DataError, match="candidates"):
        model.recommend([0], 3, candidates=[99])


@pytest.mark.parametrize("name", list(MODELS))
def test_params_round_trip(name: str) -> None:
    model = _model(name)
    params = model.get_params()
    clone = type(model)(**params)
    assert clone.get_params() == params
    assert set(describe(name)[name]["defaults"]) == set(params)
    with pytest.raises(DataError, match="has no parameter"):
        create(name, {"no_such_param": 1})


# ------------------------------------------------------------------------------------------ determinism, refit
# Models whose fit draws from random_state; another seed gives other scores. PureSVD's draw is ARPACK's start
# vector, so its scores differ only at machine precision. The others ignore the seed.
STOCHASTIC = {"slim", "puresvd", "bpr", "multvae", "ials", "cfgan", "irgan", "easegan", "ridge-map", "dropoutnet", "gar",
              "gar-reg", "content-cfgan"}
_FITTED: dict[str, object] = {}


def _fitted(name: str, train: Interactions):
    """The model fitted with seed 0 on the checkerboard, fitted once per test session."""
    if name not in _FITTED:
        _FITTED[name] = _model(name).fit(train)
    return _FITTED[name]


def _held_out(train: Interactions, held: np.ndarray) -> Interactions:
    """The withheld item of each user, as Interactions sharing train's maps (the validation part)."""
    return Interactions.from_indices(np.arange(train.n_users), held, train.user_map, train.item_map)


def test_stochastic_declaration_names_models() -> None:
    assert STOCHASTIC <= set(MODELS)


@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_same_scores(name: str, checkerboard) -> None:
    train, _ = checkerboard
    users = np.arange(train.n_users)
    first = _fitted(name, train).score(users)
    np.testing.assert_array_equal(_model(name).fit(train).score(users), first)
    other = create(name, FAST_PARAMS.get(name), random_state=1).fit(train).score(users)
    if name in STOCHASTIC:
        assert not np.array_equal(other, first), f"{name} is declared stochastic but ignores its seed"
    else:
        np.testing.assert_array_equal(other, first)


@pytest.mark.parametrize("name", list(MODELS))
def test_refit_params_fit_a_fresh_model(name: str, checkerboard) -> None:
    train, held = checkerboard
    valid = _held_out(train, held)
    model = _model(name).fit(train, valid)
    pinned = model.refit_params()
    assert isinstance(pinned, dict) and set(pinned) <= set(model.get_params())
    fresh = create(name, {**FAST_PARAMS.get(name, {}), **pinned}, random_state=0).fit(train)
    assert all(fresh.get_params()[k] == v for k, v in pinned.items())
    scores = fresh.score(np.arange(train.n_users))
    assert scores.shape == (train.n_users, train.n_items) and np.isfinite(scores).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_save_before_fit_and_load_into_the_wrong_class(name: str, checkerboard, tmp_path) -> None:
    from gan4rec.errors import ArtifactError

    train, _ = checkerboard
    with pytest.raises(NotFittedError, match="not fitted"):
        _model(name).save(tmp_path / "unfitted")
    assert not (tmp_path / "unfitted").exists()
    model = _fitted(name, train)
    model.save(tmp_path / "m")
    assert type(type(model).load(tmp_path / "m")) is type(model)
    names = list(MODELS)
    other = MODELS[names[(names.index(name) + 1) % len(names)]]
    with pytest.raises(ArtifactError, match=f"holds a '{name}' model, not '{other.name}'"):
        other.load(tmp_path / "m")


@pytest.mark.parametrize("name", list(MODELS))
def test_recommend_excludes_interactions(name: str, checkerboard) -> None:
    train, held = checkerboard
    model = _fitted(name, train)
    users = np.arange(train.n_users)
    items, _ = model.recommend(users, k=3, exclude=_held_out(train, held))
    assert not (items == held[:, None]).any(), "each user's excluded item is gone"
    assert (items >= 0).all(), "the other unseen items fill the list"
    other, _ = _checkerboard()
    from gan4rec.data.idmap import IdMap

    foreign = Interactions.from_indices(np.array([0]), np.array([0]), IdMap(np.arange(1, 21)), other.item_map)
    with pytest.raises(DataError, match="exclude does not share"):
        model.recommend(users, k=3, exclude=foreign)
