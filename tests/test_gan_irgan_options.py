"""IRGAN's options change what they say: reward, baseline, optimiser and the MLP scorer, each checked against
a hand-computed value or a behaviour the default does not have (not only finite losses)."""

from __future__ import annotations

import math

import pytest
import torch
from test_irgan import FAST, _started, _totals, _weights

from gan4rec.data.split import Split
from gan4rec.models.gan.irgan import IRGAN, MLPScorer


@pytest.fixture(scope="module")
def split() -> Split:
    from test_irgan import _data

    return _data()


def _constant_d(model: IRGAN, logit: float) -> None:
    """Make D score every pair ``logit``: zero embeddings, every item bias ``logit``."""
    disc = model.modules_["discriminator"]
    with torch.no_grad():
        for p in disc.parameters():
            p.zero_()
        disc.item_bias.weight.fill_(logit)  # type: ignore[union-attr]


def _g_moved(before: dict[str, torch.Tensor], model: IRGAN) -> float:
    after = _weights(model)
    return max(float((after[k] - v).abs().max()) for k, v in before.items() if k.startswith("generator/"))


@pytest.mark.parametrize("reward", ["sigmoid", "log"])
def test_the_reward_option_is_the_reward_g_receives(split: Split, reward: str) -> None:
    model = _started(split.train, reward=reward, g_l2=0.0)
    _constant_d(model, 0.7)
    tot = _totals()
    model._g_epoch(tot)
    got = float(tot.reward) / float(tot.g_samples)
    s = 1.0 / (1.0 + math.exp(-0.7))
    expected = 2.0 * (s - 0.5) if reward == "sigmoid" else math.log(s)  # 0.336 vs -0.403
    assert got == pytest.approx(expected, rel=1e-5)


def test_the_baselines_by_hand() -> None:
    reward = torch.tensor([[1.0, 3.0, 5.0], [2.0, 4.0, 0.0]])
    keep = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    counts = torch.tensor([3, 2])
    model = IRGAN(baseline="none")
    assert model._baseline(reward, keep, counts) == 0.0
    model = IRGAN(baseline="ema", baseline_momentum=0.9)
    model._ema = None
    assert model._baseline(reward, keep, counts) == pytest.approx(3.0)  # the first batch: its own mean
    assert model._ema == pytest.approx(3.0)
    later = reward + 10.0  # batch mean 13
    assert model._baseline(later, keep, counts) == pytest.approx(3.0)  # earlier batches only
    assert model._ema == pytest.approx(0.9 * 3.0 + 0.1 * 13.0)
    model = IRGAN(baseline="mean")
    base = model._baseline(reward, keep, counts)
    assert isinstance(base, torch.Tensor)
    torch.testing.assert_close(base[0], torch.tensor([4.0, 3.0, 2.0]))  # the user's other samples
    torch.testing.assert_close(base[1, :2], torch.tensor([4.0, 2.0]))


@pytest.mark.parametrize(("baseline", "moves"), [("none", True), ("mean", False), ("ema", False)])
def test_a_constant_reward_moves_g_only_without_a_baseline(split: Split, baseline: str, moves: bool) -> None:
    """Every item earns the same reward: a baseline cancels it (no signal, G stays), while baseline="none"
    (the original code) pushes up the log-probability of whatever was sampled, so G moves. Plain SGD: Adam
    would blow the rounding residue of a cancelled reward (about 1e-8) up to a full step."""
    model = _started(split.train, baseline=baseline, g_l2=0.0, g_optimizer="sgd", g_lr=0.1)
    _constant_d(model, 1.5)
    before = _weights(model)
    model._g_epoch(_totals())
    moved = _g_moved(before, model)
    assert (moved > 1e-4) if moves else (moved < 1e-6), moved


@pytest.mark.parametrize("player", ["g", "d"])
def test_the_sgd_option_builds_sgd_and_steps_by_lr_times_the_gradient(split: Split, player: str) -> None:
    model = _started(split.train, **{f"{player}_optimizer": "sgd", f"{player}_lr": 0.05})
    name = "generator" if player == "g" else "discriminator"
    opt = model.optimizers_[name]
    assert type(opt) is torch.optim.SGD and opt.param_groups[0]["lr"] == 0.05
    assert type(model.optimizers_["discriminator" if player == "g" else "generator"]) is torch.optim.Adam
    # One SGD step is p - lr * grad: record the gradients of the player's first step.
    grads: dict[int, torch.Tensor] = {}
    params = list(model.modules_[name].parameters())
    before = [p.detach().clone() for p in params]
    original = opt.step

    def first_step(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not grads:
            for i, p in enumerate(params):
                grads[i] = torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
            out = original(*args, **kwargs)
            for i, p in enumerate(params):
                torch.testing.assert_close(p.detach(), before[i] - 0.05 * grads[i])
            return out
        return original(*args, **kwargs)

    opt.step = first_step  # type: ignore[method-assign]
    if player == "g":
        model._g_epoch(_totals())
    else:
        model._d_epoch(model._sample_for_d(_totals()), _totals())
    assert grads and any(float(g.abs().sum()) > 0 for g in grads.values())


def test_the_mlp_scorer_is_used_by_both_players_and_scores_by_its_formula(split: Split) -> None:
    model = IRGAN(**{**FAST, "scorer": "mlp", "mlp_hidden": 8, "epochs": 1}).fit(split.train)
    gen, disc = model.modules_["generator"], model.modules_["discriminator"]
    assert isinstance(gen, MLPScorer) and isinstance(disc, MLPScorer)
    users, items = torch.tensor([0, 3, 7]), torch.tensor([5, 1, 9])
    with torch.no_grad():
        pu, qi = gen.user(users), gen.item(items)  # (3, f)
        hidden = torch.relu(pu @ gen.user_proj.weight.T + gen.user_proj.bias + qi @ gen.item_proj.weight.T)
        by_hand = (pu * qi) @ gen.gmf + hidden @ gen.out.weight[0] + gen.item_bias.weight[items, 0]
        torch.testing.assert_close(gen.pair_scores(users, items), by_hand)
        torch.testing.assert_close(gen.scores(users)[torch.arange(3), items], by_hand)
    # The scorer's own weights are trained (h starts at ones), and the scores are G's.
    assert not torch.equal(gen.gmf.detach(), torch.ones_like(gen.gmf))
    scores = model.score([0, 3, 7])
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(scores), gen.scores(users))
    mf = IRGAN(**{**FAST, "epochs": 1}).fit(split.train)
    assert not torch.allclose(torch.from_numpy(mf.score([0, 3, 7])), torch.from_numpy(scores))
