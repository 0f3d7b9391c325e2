"""The shared hybrid pieces: content, calibration, new items; and content-knn on a synthetic cold-start case.

The synthetic case (``cold_case``): 3 taste groups of 20 users; 60 items, 20 per group, each item's
content is its group's word (counted 9 times) plus one noise word. A user interacts with most items of their
group. Expected answer: a content model ranks a cold item of a user's group above cold items of other
groups, so its cold-task NDCG is far above chance; a pure CF model cannot (cold items tie).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.data.split import ColdSplit, cold_items
from gan4rec.errors import DataError
from gan4rec.evaluation.cold import evaluate_cold
from gan4rec.models import MODELS, create
from gan4rec.models.base import Recommender
from gan4rec.models.hybrid.common import apply_cold, calibrate, item_content

N_GROUPS, USERS_PER, ITEMS_PER, NOISE = 3, 20, 20, 12


def make_cold_case(seed: int = 0) -> Interactions:
    """Interactions with item features where content determines each item's users (see module docstring)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = N_GROUPS * USERS_PER, N_GROUPS * ITEMS_PER
    users, items = [], []
    for u in range(n_users):
        g = u // USERS_PER
        for i in range(g * ITEMS_PER, (g + 1) * ITEMS_PER):
            if rng.random() < 0.7:
                users.append(u)
                items.append(i)
    group = np.arange(n_items) // ITEMS_PER
    words = np.zeros((n_items, N_GROUPS + NOISE), dtype=np.float32)
    words[np.arange(n_items), group] = 9.0
    noise = rng.integers(0, NOISE, size=(n_items, 1)) + N_GROUPS
    words[np.arange(n_items)[:, None], noise] = 1.0
    return Interactions.from_indices(
        np.array(users), np.array(items), IdMap(np.arange(n_users)), IdMap(np.arange(n_items)),
        item_features={"words": sp.csr_matrix(words)},
    )


@pytest.fixture(scope="module")
def cold_split() -> ColdSplit:
    return cold_items(make_cold_case(), cold_frac=0.3, random_state=1)


def test_item_content_none_and_missing(cold_split) -> None:
    f = item_content(cold_split.train, None)
    assert f.shape == (60, N_GROUPS + NOISE) and f.dtype == np.float32
    bare = Interactions.from_indices(np.array([0, 1]), np.array([0, 1]), IdMap(np.arange(2)), IdMap(np.arange(3)))
    assert item_content(bare, None).shape == (3, 0)
    with pytest.raises(DataError, match="unknown"):
        item_content(cold_split.train, "genres")


def test_apply_cold_only_touches_cold_columns() -> None:
    s = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = apply_cold(s.copy(), np.array([True, False, True]), 2.0, 1.0)
    np.testing.assert_array_equal(out, [[0, 3, 2], [3, 9, 5]])


def test_registry_flags() -> None:
    assert MODELS["content-knn"].cold_start and not MODELS["content-knn"].adversarial
    assert not MODELS["ials"].cold_start and not MODELS["bpr"].cold_start


def test_content_knn_ranks_cold_items_by_content(cold_split) -> None:
    model = create("content-knn", {"k": 20}).fit(cold_split.train)
    res = evaluate_cold(model.score, cold_split, part="test")
    assert res["cold"].metrics["NDCG@20"] > 0.8
    pop = create("toppop").fit(cold_split.train)
    assert evaluate_cold(pop.score, cold_split, part="test")["cold"].metrics["NDCG@20"] < 0.7


def test_calibration_moves_cold_scores_and_round_trips(cold_split, tmp_path) -> None:
    model = create("content-knn", {"k": 20}).fit(cold_split.train)
    before = model.score(np.arange(5))
    info = calibrate(model, cold_split)
    assert info["value"] >= info["uncalibrated"]
    assert (model.cold_scale, model.cold_offset) == (info["cold_scale"], info["cold_offset"])
    model.cold_scale, model.cold_offset = 2.0, 0.5
    after = model.score(np.arange(5))
    cold = cold_split.cold_mask()
    np.testing.assert_allclose(after[:, cold], 2.0 * before[:, cold] + 0.5, rtol=1e-6)
    np.testing.assert_array_equal(after[:, ~cold], before[:, ~cold])
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(np.arange(60)), model.score(np.arange(60)))
    assert loaded.get_params() == model.get_params()


def test_score_new_items_matches_cold_items(cold_split) -> None:
    """A cold item of the map and the same content given as a new item score the same."""
    model = create("content-knn", {"k": 20, "cold_scale": 3.0, "cold_offset": 1.0}).fit(cold_split.train)
    cold = np.flatnonzero(cold_split.cold_mask())
    users = np.arange(60)
    new = model.score_new_items(users, model.features_[cold])
    np.testing.assert_allclose(new, model.score(users)[:, cold], rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="features have shape"):
        model.score_new_items(users, np.ones((2, 3)))


def test_item_content_skips_text_features() -> None:
    inter = Interactions.from_indices(
        np.array([0, 1]), np.array([0, 1]), IdMap(np.arange(2)), IdMap(np.arange(3)),
        item_features={"title": np.array(["a", "b", "c"]), "genres": np.eye(3, dtype=np.uint8)},
    )
    assert item_content(inter, None).shape == (3, 3)
    with pytest.raises(DataError, match="not numeric"):
        item_content(inter, "title")


def test_skipped_text_features_are_said_once_per_process(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Every fit reads the content (many per compare): the note on left-out text features is INFO once."""
    import logging

    from gan4rec.models.hybrid import common

    monkeypatch.setattr(common, "_SKIPPED_SAID", set())
    inter = Interactions.from_indices(
        np.array([0, 1]), np.array([0, 1]), IdMap(np.arange(2)), IdMap(np.arange(3)),
        item_features={"title": np.array(["a", "b", "c"]), "genres": np.eye(3, dtype=np.uint8)},
    )
    with caplog.at_level(logging.DEBUG, logger=common.__name__):
        for _ in range(3):
            item_content(inter, None)
    said = [r for r in caplog.records if "not numeric; left out" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO, logging.DEBUG, logging.DEBUG]
    assert "item features title are not numeric" in said[0].getMessage()


def test_calibrate_refuses_a_cf_model(cold_split) -> None:
    model = create("toppop").fit(cold_split.train)
    with pytest.raises(DataError, match="cold-start hybrid"):
        calibrate(model, cold_split)  # type: ignore[arg-type]


def test_calibration_grid_starts_with_identity(cold_split) -> None:
    model = create("content-knn", {"k": 20}).fit(cold_split.train)
    info = calibrate(model, cold_split)
    assert info["grid"][0][:2] == [1.0, 0.0] and info["uncalibrated"] == info["grid"][0][2]
    assert len(info["grid"]) > 5
