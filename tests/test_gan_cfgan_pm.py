"""CFGAN's partial masking (PM) on the per-epoch path: what D is shown and where G gets a gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_cfgan import TINY, _data, _training_state

from gan4rec.models.gan.cfgan import CFGAN


class _Spy(CFGAN):
    """Records the fake vectors of D's steps and the ``k`` masks of G's steps of a real epoch."""

    def _d_grads(self, batch, fake, logits):  # type: ignore[no-untyped-def]
        self.seen_fake.append((batch.rows_host.copy(), fake.clone()))
        return super()._d_grads(batch, fake, logits)

    def _g_grads(self, batch, keep, zr, z, logits, zr_sum, d_cond=None):  # type: ignore[no-untyped-def]
        self.seen_keep.append((batch.rows_host.copy(), keep.clone()))
        return super()._g_grads(batch, keep, zr, z, logits, zr_sum, d_cond)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.seen_fake: list[tuple[np.ndarray, torch.Tensor]] = []
        self.seen_keep: list[tuple[np.ndarray, torch.Tensor]] = []
        return super()._train_epoch(epoch)


@pytest.mark.parametrize("mode", ["user", "item"])
def test_the_per_epoch_path_shows_d_g_output_on_exactly_the_pm_samples(mode: str) -> None:
    """resample="epoch" (the default, the paper's): D's fake vector is ``G(c) * k`` with ``k`` the real row
    plus ``floor(pm_ratio * n_unobserved)`` unobserved entries, drawn once per epoch and shared by the
    epoch's D and G passes; with scheme="none" it is ``G(c) * e``, zero on every unobserved entry."""
    train, _ = _data()
    pm_ratio = 0.3
    for scheme in ("pm", "none"):
        model = _Spy(**{**TINY, "mode": mode, "scheme": scheme, "pm_ratio": pm_ratio, "epochs": 1,
                        "random_state": 0})
        model.fit(train)
        dense = train.csr().toarray() > 0  # (n_users, n_items)
        observed = dense.T if mode == "item" else dense  # (R, C)
        n_free = (~observed).sum(1)
        drawn = np.floor(pm_ratio * n_free + 1e-9)  # the paper's exact per-row count
        keep_of_row: dict[int, np.ndarray] = {}
        for rows, keep in model.seen_keep:
            for r, k in zip(rows, keep.numpy(), strict=True):
                assert set(np.unique(k)) <= {0.0, 1.0}
                assert (k[observed[r]] == 1).all(), "k holds every real entry"
                extra = k[~observed[r]].sum()
                assert extra == (drawn[r] if scheme == "pm" else 0), (scheme, r, extra)
                assert keep_of_row.setdefault(int(r), k).tolist() == k.tolist(), "one k per row per epoch"
        for rows, fake in model.seen_fake:
            for r, f in zip(rows, fake.numpy(), strict=True):
                shown = f != 0
                assert not (shown & ~keep_of_row[int(r)].astype(bool)).any(), "D sees G(c) * k only"
                unobserved_shown = int((shown & ~observed[r]).sum())
                # G's linear output is never exactly 0, so every PM sample reaches D.
                assert unobserved_shown == (drawn[r] if scheme == "pm" else 0), (scheme, r)
        assert model.history_[-1]["zr"] == 0.0  # neither scheme uses ZR


def test_pm_gives_g_a_gradient_on_its_samples_and_none_on_other_unobserved_entries() -> None:
    """The paper's reason for PM: without it D only ever sees G's output on the real entries, so G gets no
    signal about the unobserved ones; with it, G's output on the PM samples enters D and gets a gradient."""
    train, _ = _data()
    grads, losses = {}, {}
    for scheme in ("pm", "none"):
        model = _training_state({"mode": "user", "scheme": scheme, "pm_ratio": 0.5}, train)
        assert model._observed is not None
        model.np_rng_ = np.random.default_rng(11)
        keep_all, zr_all = model._masks(model._observed, model._observed_f)
        assert zr_all is None
        batch = model._make_pass(model._train_rows, model._indptr, model._indices, 16, grads=True).batch(0, 16)
        keep = keep_all.index_select(0, batch.rows)  # (16, C)
        logits = torch.zeros(16)
        with torch.no_grad():
            model._g_grads(batch, keep, None, None, logits, torch.zeros(()))
        grads[scheme] = model._scratch_bufs["g_grad"][:16].clone()  # d loss / d G(c), (16, C)
        losses[scheme] = torch.nn.functional.softplus(-logits).mean()
        real = model._observed_f.index_select(0, batch.rows).bool()
        pm = keep.bool() & ~real
        if scheme == "pm":
            assert pm.any() and (grads[scheme][pm] != 0).all(), "every PM sample gets a gradient"
        else:
            assert not pm.any()
        assert (grads[scheme][~keep.bool()] == 0).all(), "no gradient outside k"
    # Same weights, same rows: the two schemes show D different fake vectors, hence different G losses.
    assert float(losses["pm"]) != float(losses["none"])
