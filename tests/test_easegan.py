"""EASEGAN: both players get gradients, the ablation switches work, determinism, accuracy over TopPop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_cfgan import _data, _weights

from gan4rec.data.interactions import Interactions
from gan4rec.data.split import make_split
from gan4rec.data.synthetic import make_synthetic
from gan4rec.errors import DataError
from gan4rec.evaluation.evaluator import evaluate
from gan4rec.models import MODELS, create
from gan4rec.models.baselines.ease import EASE
from gan4rec.models.gan.easegan import EASEGAN

TINY = {"hidden": 16, "noise_dim": 4, "d_hidden": 8, "lr": 1e-2, "d_lr": 1e-2, "batch_size": 16,
        "l2": 50.0, "device": "cpu"}


def _ready(params: dict[str, Any], train: Interactions) -> EASEGAN:
    """A model set up exactly as fit sets it up, before its first epoch."""
    model = EASEGAN(**{**TINY, **params, "random_state": 0})
    model.user_map_, model.item_map_, model.seen_ = train.user_map, train.item_map, train
    model._setup_fit(train)
    return model


def test_registry_marks_it_adversarial() -> None:
    assert MODELS["easegan"] is EASEGAN and EASEGAN.adversarial


def test_the_linear_path_is_closed_form_ease_and_training_starts_from_its_ranking() -> None:
    train, _ = _data()
    model = _ready({}, train)
    ease = EASE(l2=TINY["l2"]).fit(train)
    gen = model.modules_["generator"]
    np.testing.assert_array_equal(gen.ease.numpy(), ease.weights_)
    users = np.arange(train.n_users)
    with torch.no_grad():
        start = model._score_tensor(torch.from_numpy(users)).numpy()
    # The residual output starts at zero: the generator's scores are s * EASE's scores.
    scale = float(gen.scale.detach())
    np.testing.assert_allclose(start, scale * ease.score(users), rtol=1e-5, atol=1e-5)


def test_both_players_get_gradients_and_the_adversarial_term_reaches_g() -> None:
    train, _ = _data()
    model = _ready({}, train)
    gen, disc = model.modules_["generator"], model.modules_["discriminator"]
    with torch.no_grad():  # the residual's output starts at zero, which would block the gradient below it
        gen.out.weight.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(0))
    c, t = model._split_rows(model._rows.dense(torch.arange(16)))
    logits = gen(c, model._noise(len(c))).masked_fill(c > 0, -1e9)
    fake, real = model._fake_sets(logits), model._real_sets(t)
    d_loss = F.softplus(-disc(c, real)).mean() + F.softplus(disc(c, fake.detach())).mean()
    d_loss.backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in disc.parameters())
    assert all(p.grad is None for p in gen.parameters()), "D's loss does not reach G (fake is detached)"
    disc.zero_grad()
    # The adversarial term alone gives G a gradient through D (the output layer and the noise included).
    F.softplus(-disc(c, fake)).mean().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_a_few_epochs_move_both_players_and_record_the_losses() -> None:
    train, valid = _data()
    model = EASEGAN(**TINY, epochs=2, eval_every=1, patience=None, random_state=0).fit(train, valid)
    init = _weights(_ready({}, train))
    after = _weights(model)
    moved = [k for k in init if not torch.equal(init[k], after[k])]
    assert set(moved) == set(init) - {"generator/ease"}, "every trainable tensor moved, B did not"
    row = model.history_[-1]
    for key in ("rec", "d_loss", "g_adv", "valid_NDCG@20"):
        assert np.isfinite(row[key]) and row[key] > 0, key


@pytest.mark.parametrize(
    ("params", "frozen"),
    [
        ({"adv_weight": 0.0}, "discriminator/"),  # no adversarial loss: D is never trained
        ({"noise_dim": 0}, None),
        ({"cond_dropout": 0.0}, None),
    ],
)
def test_ablation_switches(params: dict[str, Any], frozen: str | None) -> None:
    train, _ = _data()
    model = EASEGAN(**{**TINY, **params}, epochs=2, random_state=0).fit(train)
    init, after = _weights(_ready(params, train)), _weights(model)
    if frozen:
        assert all(torch.equal(init[k], after[k]) for k in init if k.startswith(frozen))
        assert model.history_[-1]["d_loss"] == 0.0 and model.history_[-1]["g_adv"] == 0.0
    if params.get("noise_dim") == 0:
        assert model.modules_["generator"].noise is None
    assert any(not torch.equal(init[k], after[k]) for k in init if k.startswith("generator/"))


def test_without_condition_dropout_the_target_is_the_whole_profile() -> None:
    train, _ = _data()
    model = _ready({"cond_dropout": 0.0}, train)
    x = model._rows.dense(torch.arange(8))
    c, t = model._split_rows(x)
    assert torch.equal(c, x) and torch.equal(t, x)
    model = _ready({"cond_dropout": 0.5}, train)
    c, t = model._split_rows(x)
    assert torch.equal(c + t, x[t.sum(1) > 0]) and float((c * t).sum()) == 0.0


def test_same_seed_is_bit_identical_and_another_seed_is_not() -> None:
    train, _ = _data()
    a = EASEGAN(**TINY, epochs=3, random_state=5).fit(train)
    b = EASEGAN(**TINY, epochs=3, random_state=5).fit(train)
    c = EASEGAN(**TINY, epochs=3, random_state=6).fit(train)
    users = np.arange(train.n_users)
    assert all(torch.equal(v, _weights(b)[k]) for k, v in _weights(a).items())
    np.testing.assert_array_equal(a.score(users), b.score(users))
    assert not np.array_equal(a.score(users), c.score(users))


@pytest.mark.parametrize(
    ("params", "match"),
    [({"cond_dropout": 1.0}, "cond_dropout"), ({"tau": 0.0}, "tau"), ({"noise_dim": -1}, "noise_dim"),
     ({"l2": 0.0}, "l2")],
)
def test_bad_params_raise_one_line_data_errors(params: dict[str, Any], match: str) -> None:
    train, _ = _data()
    with pytest.raises(DataError, match=match) as info:
        EASEGAN(**{**TINY, "epochs": 1, **params}).fit(train)
    assert "\n" not in str(info.value)


def test_easegan_beats_toppop_on_synthetic_data() -> None:
    data = make_synthetic(300, 200, 9000, n_factors=6, mainstream_share=0.0, random_state=0)
    split = make_split(data, "random", test_frac=0.2, valid_frac=0.0, random_state=0)
    assert split.test is not None

    def ndcg(model: Any) -> float:
        return evaluate(model.score, split.train, split.test, ks=(10,)).metrics["NDCG@10"]

    toppop = ndcg(create("toppop").fit(split.train))
    params = {"hidden": 32, "d_hidden": 16, "lr": 1e-3, "l2": 100.0, "epochs": 5, "device": "cpu"}
    model = ndcg(create("easegan", params, random_state=0).fit(split.train))
    assert model > toppop + 0.1, (model, toppop)
