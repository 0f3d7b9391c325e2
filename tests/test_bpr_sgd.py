"""BPR-MF with ``optimizer="sgd"``: the hand-written step equals autograd's, it learns, it is reproducible."""

from __future__ import annotations

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
    with pytest.raises(DataError, match="optimizer must be one of adam, sparse_adam, sgd"):
        create("bpr", {"optimizer": "rmsprop", "device": "cpu"}).fit(train)
