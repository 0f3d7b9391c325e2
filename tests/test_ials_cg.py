"""iALS's conjugate-gradient solver: the batched sparse product and convergence to the exact solves."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.models.baselines.ials import IALS, _system_product


def _data(n_users: int = 30, n_items: int = 20, per_user: int = 5, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.integers(0, n_items, len(users))
    return Interactions.from_indices(users, items, IdMap(np.arange(n_users)), IdMap(np.arange(n_items)))


def test_sparse_correction_equals_the_dense_per_user_formula() -> None:
    data = _data()
    model = IALS(n_factors=4, solver="cg", device="cpu", random_state=0)
    model._setup_fit(data)
    side = model._users_side
    gen = torch.Generator().manual_seed(1)
    p = torch.randn(data.n_users, 4, generator=gen, dtype=torch.float32)
    y = torch.randn(data.n_items, 4, generator=gen, dtype=torch.float32)
    alpha, reg = 2.5, 0.7
    gram = y.T @ y + reg * torch.eye(4)
    got = _system_product(side.pattern, p, y, gram, alpha).double().numpy()
    r = data.csr().toarray().astype(np.float64)  # (n_users, n_items) 0/1
    y64 = y.double().numpy()
    for u in range(data.n_users):
        a = y64.T @ ((1.0 + alpha * r[u])[:, None] * y64) + reg * np.eye(4)  # Y^T C_u Y + reg I
        np.testing.assert_allclose(got[u], a @ p[u].double().numpy(), rtol=1e-4, atol=1e-4)


def test_cg_converges_to_the_cholesky_solution_as_steps_grow() -> None:
    data = _data()
    f = 6
    errors = []
    for steps in (1, 2, 4, 8, 3 * f):
        model = IALS(n_factors=f, reg=1.0, alpha=4.0, solver="cg", cg_steps=steps, device="cpu", random_state=0)
        model._setup_fit(data)
        fac = model.modules_["factors"]
        with torch.no_grad():
            # Unit-scale item factors: a harder system than the 0.01-scale start, so CG needs its steps.
            fac.item.copy_(torch.randn(fac.item.shape, generator=torch.Generator().manual_seed(5)))
            cg = model._solve(model._users_side, fac.user, fac.item)
            model.solver = "cholesky"
            exact = model._solve(model._users_side, fac.user, fac.item)
        errors.append(float((cg - exact).norm() / exact.norm()))
    # Each step brings CG closer, until float32 rounding (about 1e-6 here) is all that is left.
    assert all(b < a or b < 1e-5 for a, b in itertools.pairwise(errors)), errors
    assert errors[0] > 1e-2 and errors[-1] < 1e-5, errors


def test_cg_fit_matches_the_exact_fit_with_enough_steps() -> None:
    data = _data(seed=2)
    params = {"n_factors": 5, "reg": 1.0, "alpha": 3.0, "iterations": 4, "device": "cpu", "random_state": 0}
    exact = IALS(**params).fit(data)
    cg = IALS(**params, solver="cg", cg_steps=20).fit(data)
    users = np.arange(data.n_users)
    np.testing.assert_allclose(cg.score(users), exact.score(users), rtol=1e-3, atol=1e-3)
    assert cg.history_[-1]["loss"] == pytest.approx(exact.history_[-1]["loss"], rel=1e-4)
