"""BPR-MF with ``optimizer="sgd"``: the hand-written step equals autograd's, it learns, it is reproducible."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models import create
from gan4rec.models.base import Recommender
from gan4rec.models.baselines.bpr import BPR, sgd_step

SGD = {"n_factors": 4, "lr": 0.05, "l2": 1e-3, "epochs": 60, "batch_size": 16, "optimizer": "sgd",
       "device": "cpu"}


def _checkerboard() -> tuple[Interactions, np.ndarray]:
    """12 users like items 0-5, 8 users items 6-11, one item of each user's block withheld (``u % 6``).

    Expected answer: a personalised model ranks the withheld item first among the user's unseen items, as
    it is the only unseen item of the user's block.
    """
    users, items, held = [], [], []
    for u in range(20):
        base = 0 if u < 12 else 6
        held.append(base + u % 6)
        for i in range(base, base + 6):
            if i != held[-1]:
                users.append(u)
                items.append(i)
    train = Interactions.from_indices(
        np.array(users), np.array(items), IdMap(np.arange(20)), IdMap(np.arange(12))
    )
    return train, np.array(held)


def test_sgd_step_equals_autograd_on_the_per_triple_objective() -> None:
    gen = torch.Generator().manual_seed(0)
    user = torch.randn(5, 3, generator=gen)
    item = torch.randn(7, 3, generator=gen)
    bias = torch.randn(7, 1, generator=gen)
    # Repeated users and items: every occurrence contributes its own gradient, read from the old weights.
    u = torch.tensor([0, 1, 1, 4, 0, 2])
    i = torch.tensor([2, 3, 3, 6, 0, 2])
    j = torch.tensor([5, 5, 1, 2, 6, 4])
    lr, l2 = 0.1, 0.03
    ref = [t.clone().requires_grad_() for t in (user, item, bias)]
    pu, qi, qj = ref[0][u], ref[1][i], ref[1][j]
    bi, bj = ref[2][i, 0], ref[2][j, 0]
    x = (pu * (qi - qj)).sum(1) + bi - bj
    objective = -F.logsigmoid(x).sum() + l2 * (
        pu.square().sum() + qi.square().sum() + qj.square().sum() + bi.square().sum() + bj.square().sum()
    )
    objective.backward()
    loss = sgd_step(user, item, bias, u, i, j, lr, l2)
    assert float(loss) == pytest.approx(float(-F.logsigmoid(x.detach()).sum()), rel=1e-6)
    for new, old in zip((user, item, bias), ref, strict=True):
        assert old.grad is not None
        torch.testing.assert_close(new, (old - lr * old.grad).detach(), rtol=1e-5, atol=1e-6)


def test_sgd_learns_the_checkerboard() -> None:
    train, held = _checkerboard()
    model = create("bpr", SGD, random_state=0).fit(train)
    items, _ = model.recommend(np.arange(train.n_users), k=1)
    np.testing.assert_array_equal(items[:, 0], held)
    losses = [row["loss"] for row in model.history_]
    assert losses[-1] < 0.5 * losses[0], "the BPR loss falls"


def test_sgd_is_reproducible_and_round_trips(tmp_path) -> None:
    train, _ = _checkerboard()
    params = {**SGD, "epochs": 5}
    a = create("bpr", params, random_state=3).fit(train)
    b = create("bpr", params, random_state=3).fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(a.score(users), b.score(users))
    a.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert isinstance(loaded, BPR) and loaded.get_params()["optimizer"] == "sgd"
    np.testing.assert_array_equal(loaded.score(users), a.score(users))


def test_sgd_refuses_distributed_and_bad_optimizer() -> None:
    train, _ = _checkerboard()
    with pytest.raises(DataError, match='optimizer="sgd" does not train distributed'):
        create("bpr", {"optimizer": "sgd"})._check_distributed(None, train)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="optimizer must be one of adam, fused_adam, sparse_adam, sgd"):
        create("bpr", {"optimizer": "rmsprop", "device": "cpu"}).fit(train)


# ------------------------------------------------------------------ backend="implicit"
IMPLICIT = {**SGD, "backend": "implicit"}


def test_implicit_backend_refuses_other_optimizers_and_unknown_backends() -> None:
    train, _ = _checkerboard()
    with pytest.raises(DataError, match='backend="implicit" runs optimizer="sgd" only'):
        create("bpr", {"backend": "implicit", "optimizer": "adam", "device": "cpu"}).fit(train)
    with pytest.raises(DataError, match="backend must be one of torch, implicit"):
        create("bpr", {**SGD, "backend": "numba"}).fit(train)


def test_implicit_backend_epoch_is_implicits_update_on_our_weights() -> None:
    """One epoch equals implicit's own iteration from [P | 1], [Q | b] with the same seed and 2 * l2."""
    pytest.importorskip("implicit")
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    from gan4rec.models.baselines.bpr import MFScorer
    from gan4rec.models.baselines.bpr_implicit import ImplicitEpochs

    train, _ = _checkerboard()
    torch.manual_seed(0)
    mf = MFScorer(train.n_users, train.n_items, 4)
    with torch.no_grad():
        mf.item_bias.weight.normal_()  # a non-zero bias, so its column is checked too
    p0, q0, b0 = (t.detach().numpy().copy() for t in (mf.user.weight, mf.item.weight, mf.item_bias.weight))
    stats = ImplicitEpochs(train, 4, lr=0.05, l2=0.01).run(mf.user, mf.item, mf.item_bias, seed=7)
    ref = BayesianPersonalizedRanking(factors=4, learning_rate=0.05, regularization=0.02, iterations=1,
                                      num_threads=1, random_state=7)
    ref.user_factors = np.hstack([p0, np.ones((len(p0), 1), np.float32)])
    ref.item_factors = np.hstack([q0, b0])
    ref.fit(train.csr().astype(np.float32), show_progress=False)
    np.testing.assert_array_equal(mf.user.weight.detach().numpy(), ref.user_factors[:, :4])
    np.testing.assert_array_equal(mf.item.weight.detach().numpy(), ref.item_factors[:, :4])
    np.testing.assert_array_equal(mf.item_bias.weight.detach().numpy(), ref.item_factors[:, 4:])
    assert not np.array_equal(mf.user.weight.detach().numpy(), p0), "the epoch changed the weights"
    assert 0.0 <= stats["skipped"] < 1.0 and 0.0 <= stats["train_auc"] <= 1.0


def test_implicit_backend_starts_from_the_seeds_weights_and_copies_them_back() -> None:
    """A step far below float32 resolution: both backends end where the seed's initialisation started."""
    pytest.importorskip("implicit")
    train, _ = _checkerboard()
    tiny = {"lr": 1e-30, "l2": 0.0, "epochs": 2, "patience": None}
    a = create("bpr", {**IMPLICIT, **tiny}, random_state=1).fit(train)
    b = create("bpr", {**SGD, **tiny}, random_state=1).fit(train)
    for name in ("user", "item", "item_bias"):
        # atol: the biases start at 0 and move by ~1e-30 (below it every weight is bit-equal).
        torch.testing.assert_close(getattr(a.modules_["mf"], name).weight, getattr(b.modules_["mf"], name).weight,
                                   rtol=0, atol=1e-20)


def test_implicit_backend_learns_is_reproducible_and_round_trips(tmp_path) -> None:
    pytest.importorskip("implicit")
    train, held = _checkerboard()
    params = {**IMPLICIT, "epochs": 150, "patience": None}
    a = create("bpr", params, random_state=3).fit(train)
    b = create("bpr", params, random_state=3).fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(a.score(users), b.score(users))
    items, _ = a.recommend(users, k=1)
    assert (items[:, 0] == held).mean() >= 0.9, "the withheld item of the user's block comes first"
    c = create("bpr", params, random_state=4).fit(train)
    assert not np.array_equal(a.score(users), c.score(users)), "the seed reaches implicit's sampling"
    a.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert isinstance(loaded, BPR) and loaded.get_params()["backend"] == "implicit"
    np.testing.assert_array_equal(loaded.score(users), a.score(users))


def test_adam_epoch_means_match_step_by_step_accumulation() -> None:
    from gan4rec.models.baselines.bpr import _epoch_means

    gen = torch.Generator().manual_seed(0)
    steps = [torch.rand((), generator=gen) for _ in range(14)]  # 7 steps of (loss, reg)
    n, bs = 6 * 256 + 77, 256
    loss_sum = torch.zeros((), dtype=torch.float64)
    reg_sum = torch.zeros((), dtype=torch.float64)
    for k in range(7):
        size = bs if k < 6 else 77
        loss_sum += steps[2 * k] * size
        reg_sum += steps[2 * k + 1] * size
    got = _epoch_means(steps, n, bs, torch.device("cpu"))
    assert got == {"loss": float(loss_sum) / n, "reg": float(reg_sum) / n}


def test_fused_adam_is_adam_up_to_rounding_and_reproducible() -> None:
    train, held = _checkerboard()
    params = {**SGD, "lr": 0.05, "epochs": 40, "patience": None}
    a = create("bpr", {**params, "optimizer": "fused_adam"}, random_state=2).fit(train)
    b = create("bpr", {**params, "optimizer": "fused_adam"}, random_state=2).fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(a.score(users), b.score(users))
    items, _ = a.recommend(users, k=1)
    np.testing.assert_array_equal(items[:, 0], held)
    one = {**params, "epochs": 1}
    fused = create("bpr", {**one, "optimizer": "fused_adam"}, random_state=2).fit(train)
    plain = create("bpr", {**one, "optimizer": "adam"}, random_state=2).fit(train)
    np.testing.assert_allclose(fused.score(users), plain.score(users), rtol=0, atol=1e-5)


def test_implicit_backend_without_implicit_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from gan4rec.errors import MissingInputError

    monkeypatch.setitem(sys.modules, "implicit.cpu.bpr", None)  # the import fails as if it were absent
    train, _ = _checkerboard()
    with pytest.raises(MissingInputError, match=r'backend="implicit" needs the implicit package.*pip install'):
        create("bpr", {**IMPLICIT, "epochs": 1}).fit(train)
