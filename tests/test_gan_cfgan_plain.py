"""CFGAN's fast path (hand-written passes) against the plain losses of :mod:`gan4rec.models.gan.cfgan`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_cfgan import VARIANTS, _data, _training_state

from gan4rec.models.gan.cfgan import discriminator_loss, generator_loss


@pytest.fixture
def float64() -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


@pytest.mark.parametrize("params", VARIANTS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_the_hand_written_steps_are_the_gradients_of_the_plain_losses(params: dict, float64: None) -> None:
    train, _ = _data()
    model = _training_state(params, train)
    gen, dis = model.modules_["generator"], model.modules_["discriminator"]
    order = np.random.default_rng(5).permutation(model._train_rows)
    batch = model._make_pass(order, model._indptr, model._indices, 12, grads=True).batch(12, 24)
    assert model._observed is not None
    real = torch.from_numpy(model._observed[batch.rows_host].astype(np.float64))  # (12, C)
    draws = torch.Generator().manual_seed(1)
    keep = real + (torch.rand(real.shape, generator=draws) < 0.4) * (1 - real)
    zr = ((torch.rand(real.shape, generator=draws) < 0.6) * (1 - real)).double()
    z = model._noise(len(batch))
    onehot = F.one_hot(batch.rows, model._n_rows).double() if model.class_condition else None

    with torch.no_grad():
        fast_g = [g.clone() for g in model._g_grads(batch, keep, zr, z, torch.zeros(12), torch.zeros(()))]
    loss_g = generator_loss(
        gen, dis, real, keep, zr, z, onehot, alpha=float(model.alpha), g_loss=model.g_loss,
        g_activation=model.g_activation, d_activation=model.d_activation,
    )  # fmt: skip
    for fast, plain in zip(fast_g, torch.autograd.grad(loss_g, list(gen.parameters())), strict=True):
        torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-12)

    with torch.no_grad():
        fake = model._g_forward(batch, z)[-1].mul_(keep)  # (12, C) G(c) * k, the fast forward pass
        fast_d = [g.clone() for g in model._d_grads(batch, fake.clone(), torch.zeros(24))]
    loss_d = discriminator_loss(dis, real, fake, onehot, model.d_activation)
    for fast, plain in zip(fast_d, torch.autograd.grad(loss_d, list(dis.parameters())), strict=True):
        torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-12)
