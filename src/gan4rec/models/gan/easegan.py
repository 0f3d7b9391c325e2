"""EASEGAN: a conditional GAN whose generator completes a user's profile on top of an EASE item-item path.

Why. CFGAN's generator is conditioned on the very profile it must produce, so it can learn the identity,
and its noise was dropped (Pérez Maurera et al., ECIR 2022). Steck's denoising linear autoencoders
(EDLAE/DLAE, NeurIPS 2020) avoid the identity by dropping input items and asking for them back. EASEGAN
combines the two ideas with an adversarial player:

- **Condition dropout.** Each step splits every user's training row ``x`` at random into a condition
  ``c = x * keep`` (``keep_j ~ Bernoulli(1 - cond_dropout)``) and a held-out part ``t = x - c``; the
  generator sees ``c`` and must put its mass on ``t``. The items of ``c`` are masked out of its output,
  so copying the input earns nothing. ``cond_dropout=0`` turns this off (``c = t = x``, nothing masked:
  CFGAN's identity setting), which the ablation measures.
- **Generator.** ``G(c, z) = s * (c B) + W_2 act(W_1 c / sqrt|c| + W_z z + b_1) + b_2``: ``B`` is the
  closed-form EASE^R weight matrix of the training data (zero diagonal, a fixed buffer, refitted with
  every ``fit``), ``s`` a learned temperature of that linear path, and the MLP a residual branch whose
  output layer starts at zero, so training starts from EASE's ranking. ``z ~ N(0, I)`` of width
  ``noise_dim`` (``0``: no noise) enters the residual branch; scoring uses its mean, ``z = 0``.
- **Losses.** The generator's output over the unmasked items is a softmax distribution ``p_G(. | c)``.
  Reconstruction is the multinomial log-likelihood of the held-out items (Mult-VAE's loss), averaged per
  item of ``t``. The discriminator ``D(c, y)`` judges a *set* of ``set_size`` items given the condition:
  real sets are drawn uniformly (with replacement) from ``t``, fake ones are ``set_size`` Gumbel-softmax
  draws from ``p_G`` at temperature ``tau`` (relaxed one-hots, so the gradient reaches ``G``); ``y`` is
  the mean of the set's (relaxed) one-hots. ``D`` embeds the condition and the set and scores them with
  an MLP (one logit). Per mini-batch::

      D minimises  mean softplus(-D(c, y_real)) + mean softplus(D(c, y_fake))
      G minimises  rec + adv_weight * mean softplus(-D(c, y_fake))        (non-saturating)

  The intended effect of the adversarial term is mode seeking: the likelihood alone spreads mass over
  every plausible item, while ``D`` penalises implausible items that ``G`` would sample near the top.
  ``adv_weight=0`` skips ``D`` entirely (the ablation without the adversarial loss).

Cost. ``c B`` is a gather-sum of ``B``'s rows (``embedding_bag``; conditions are sparse), so a step costs
``nnz(c) * n_items`` for the linear path plus the small MLPs; no users x items product with ``B`` is
formed densely. ``B`` is ``n_items^2`` float32 (kept in the generator's state, so saved with the model).
Memory grows with the square of the catalogue: the fit holds the generator's float32 ``B`` and, while
EASE is fitted, its float64 Gram matrix, float32 result and Gram blocks, about ``16 n_items^2`` bytes
(:meth:`EASEGAN.memory_gb`: 3.9 GiB at 15,000 items, 1.7 GiB on ml-latest-small); ``fit`` logs a
warning with the estimate before allocating when it is over :attr:`EASEGAN.warn_memory_gb`.

Every random draw (user order, keep masks, noise, set samples, Gumbel noise) comes from the fit's own
generators, so runs are bit-reproducible on the CPU.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.models.base import SearchSpace
from gan4rec.models.baselines.ease import EASE
from gan4rec.models.torch_base import DeviceCSR, TorchRecommender, check_float, check_int

__all__ = ["EASEGAN"]

log = logging.getLogger(__name__)

# Logit given to masked (condition) items: finite, so that 0 * log_softmax stays 0 instead of NaN.
_MASKED = -1e9


def _normalise(c: torch.Tensor) -> torch.Tensor:
    """Rows divided by the square root of their item count (an empty row stays zero)."""
    return c / c.sum(dim=1, keepdim=True).clamp(min=1.0).sqrt()


class _Generator(nn.Module):
    """The EASE path (a buffer) plus a residual MLP with noise; see the module docstring."""

    ease: torch.Tensor  # (n_items, n_items) buffer

    def __init__(self, n_items: int, hidden: int, noise_dim: int, linear_scale: float) -> None:
        super().__init__()
        self.register_buffer("ease", torch.zeros(n_items, n_items))  # (n_items, n_items), set in _prepare
        self.scale = nn.Parameter(torch.full((1,), float(linear_scale)))  # 1-d: artifacts keep shapes
        self.inp = nn.Linear(n_items, hidden)
        self.noise = nn.Linear(noise_dim, hidden, bias=False) if noise_dim > 0 else None
        self.out = nn.Linear(hidden, n_items)
        # The residual starts at zero: the first epoch starts from EASE's ranking.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def linear(self, c: torch.Tensor) -> torch.Tensor:
        """``c @ ease`` for a sparse 0/1 ``c`` (b, n_items), as a gather-sum of the rows of ``ease``."""
        pos, cols = torch.nonzero(c, as_tuple=True)  # row-major: bags in order
        counts = torch.bincount(pos, minlength=c.shape[0])
        offsets = torch.cumsum(counts, 0) - counts
        return F.embedding_bag(cols, self.ease, offsets, mode="sum")  # (b, n_items)

    def forward(self, c: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        h = self.inp(_normalise(c))  # (b, hidden)
        if self.noise is not None and z is not None:
            h = h + self.noise(z)
        return self.scale * self.linear(c) + self.out(torch.tanh(h))  # (b, n_items)


class _Discriminator(nn.Module):
    """``D(c, y)``: embeds the condition and the (relaxed) item set, one logit from an MLP."""

    def __init__(self, n_items: int, hidden: int) -> None:
        super().__init__()
        self.cond = nn.Linear(n_items, hidden)
        self.items = nn.Linear(n_items, hidden, bias=False)
        self.mix = nn.Linear(3 * hidden, hidden)
        self.logit = nn.Linear(hidden, 1)

    def forward(self, c: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hc = torch.tanh(self.cond(_normalise(c)))  # (b, hidden)
        hy = self.items(y)  # (b, hidden)
        h = F.leaky_relu(self.mix(torch.cat([hc, hy, hc * hy], dim=1)), 0.2)
        return self.logit(h).squeeze(1)  # (b,)


class EASEGAN(TorchRecommender):
    """EASE-initialised conditional GAN that generates the held-out part of a profile (adversarial).

    Defaults are our own tuned setting on ML-100K (``configs/easegan-ml100k.toml``: 50 TPE trials on the
    mean of 5 validation carvings; not a published setting, so :attr:`published_configs` is empty),
    rounded to three digits, with early stopping. :attr:`search_space` is narrowed to the ranges that
    hold that search's 10 best trials (all within 0.001 validation NDCG@20 of the best; the worst of the
    50 were 0.03 lower); the earlier, wider space is :attr:`search_space_wide`.

    Parameters
    ----------
    l2
        L2 regularisation of the closed-form EASE path ``B``.
    linear_scale
        Initial value of the learned temperature ``s`` of the linear path (EASE scores are small; the
        softmax needs larger logits).
    hidden
        Width of the generator's residual branch.
    noise_dim
        Width of the noise ``z`` fed to the residual branch (``0``: no noise).
    cond_dropout
        Probability that a training item moves from the condition to the held-out target (``0``: the
        condition is the whole profile and the target too, as in CFGAN).
    adv_weight
        Weight of the generator's adversarial loss (``0``: no discriminator is trained or used).
    tau
        Gumbel-softmax temperature of the fake sets.
    set_size
        Items per real / fake set shown to the discriminator.
    d_hidden
        Width of the discriminator.
    lr, d_lr
        Adam learning rates of the generator and the discriminator.
    weight_decay
        Adam weight decay of the generator's trainable weights (``B`` is fixed).
    batch_size
        Users per mini-batch.
    epochs, eval_every, patience
        Passes over the users; validation cadence and early-stopping patience (shared loop).
    device, random_state, n_threads
        As in every torch model.
    """

    name = "easegan"
    adversarial = True
    #: Estimated fit memory (GiB, :meth:`memory_gb`) above which ``fit`` logs a warning first.
    warn_memory_gb: ClassVar[float] = 1.0
    search_space: ClassVar[SearchSpace] = {
        "l2": {"type": "float", "low": 200.0, "high": 1500.0, "log": True},
        "linear_scale": {"type": "float", "low": 10.0, "high": 100.0, "log": True},
        "hidden": {"type": "int", "low": 16, "high": 128, "log": True},
        "cond_dropout": {"type": "float", "low": 0.2, "high": 0.6},
        "lr": {"type": "float", "low": 3e-5, "high": 1e-3, "log": True},
        "adv_weight": {"type": "float", "low": 0.1, "high": 3.0, "log": True},
        "tau": {"type": "float", "low": 0.5, "high": 2.0, "log": True},
        "d_lr": {"type": "float", "low": 3e-4, "high": 1e-2, "log": True},
    }
    search_space_wide: ClassVar[SearchSpace] = {
        "l2": {"type": "float", "low": 50.0, "high": 5000.0, "log": True},
        "linear_scale": {"type": "float", "low": 3.0, "high": 100.0, "log": True},
        "hidden": {"type": "int", "low": 16, "high": 256, "log": True},
        "cond_dropout": {"type": "float", "low": 0.1, "high": 0.6},
        "lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "adv_weight": {"type": "float", "low": 0.01, "high": 3.0, "log": True},
        "tau": {"type": "float", "low": 0.2, "high": 2.0, "log": True},
        "d_lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    }

    def __init__(
        self,
        *,
        l2: float = 518.0,
        linear_scale: float = 30.5,
        hidden: int = 32,
        noise_dim: int = 16,
        cond_dropout: float = 0.395,
        adv_weight: float = 1.31,
        tau: float = 1.87,
        set_size: int = 4,
        d_hidden: int = 64,
        lr: float = 2.77e-4,
        d_lr: float = 6.91e-4,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        epochs: int = 40,
        eval_every: int = 2,
        patience: int | None = 5,
        device: str | None = None,
        random_state: int | None = None,
        n_threads: int | None = 1,
    ) -> None:
        self.l2 = l2
        self.linear_scale = linear_scale
        self.hidden = hidden
        self.noise_dim = noise_dim
        self.cond_dropout = cond_dropout
        self.adv_weight = adv_weight
        self.tau = tau
        self.set_size = set_size
        self.d_hidden = d_hidden
        self.lr = lr
        self.d_lr = d_lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.eval_every = eval_every
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads

    # ------------------------------------------------------------------ memory
    @staticmethod
    def memory_gb(n_items: int) -> float:
        """Estimated peak memory of ``fit`` in GiB: the generator's float32 ``B`` plus EASE's own fit."""
        n = int(n_items)
        return 4.0 * n * n / 2**30 + EASE.memory_gb(n)

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        need = self.memory_gb(train.n_items)
        if need > self.warn_memory_gb:
            log.warning(
                "easegan: %d items need about %.1f GiB for dense item x item matrices (EASE's and the "
                "generator's); filter rare items (--min-item-interactions) to shrink the catalogue",
                train.n_items,
                need,
            )
        super()._fit(train, valid)

    # ------------------------------------------------------------------ hooks
    def _check_params(self) -> None:
        check_float(self.l2, "l2", low_open=True)
        check_float(self.linear_scale, "linear_scale")
        check_int(self.hidden, "hidden")
        check_int(self.noise_dim, "noise_dim", low=0)
        check_float(self.cond_dropout, "cond_dropout", high=1.0, high_open=True)
        check_float(self.adv_weight, "adv_weight")
        check_float(self.tau, "tau", low_open=True)
        check_int(self.set_size, "set_size")
        check_int(self.d_hidden, "d_hidden")
        check_float(self.d_lr, "d_lr", low_open=True)
        check_float(self.weight_decay, "weight_decay")

    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        return {
            "generator": _Generator(n_items, int(self.hidden), int(self.noise_dim), float(self.linear_scale)),
            "discriminator": _Discriminator(n_items, int(self.d_hidden)),
        }

    def _build_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        g = [p for p in modules["generator"].parameters() if p.requires_grad]
        d = list(modules["discriminator"].parameters())
        return {
            "generator": torch.optim.Adam(g, lr=float(self.lr), weight_decay=float(self.weight_decay)),
            "discriminator": torch.optim.Adam(d, lr=float(self.d_lr)),
        }

    def _prepare(self, train: Interactions) -> None:
        # The closed-form EASE path of this very training set (numpy/LAPACK; deterministic).
        ease = EASE(l2=float(self.l2)).fit(train).weights_
        gen: _Generator = self.modules_["generator"]  # type: ignore[assignment]
        with torch.no_grad():
            gen.ease.copy_(torch.from_numpy(ease))
        self._rows = DeviceCSR.from_interactions(train, self.device_)
        self._train_users = np.flatnonzero(train.user_counts() > 0).astype(np.int64)

    def _release(self) -> None:
        super()._release()
        for attr in ("_rows", "_train_users"):
            self.__dict__.pop(attr, None)

    # ------------------------------------------------------------------ training
    def _split_rows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition and held-out target of each row; rows left without a target are dropped."""
        q = float(self.cond_dropout)
        if q == 0.0:
            return x, x
        drop = torch.rand(x.shape, generator=self.torch_gen_, device=x.device) < q
        t = x * drop
        c = x - t
        ok = t.sum(dim=1) > 0
        return c[ok], t[ok]

    def _noise(self, n: int) -> torch.Tensor | None:
        if int(self.noise_dim) == 0:
            return None
        return torch.randn((n, int(self.noise_dim)), generator=self.torch_gen_, device=self.device_)

    def _fake_sets(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean of ``set_size`` Gumbel-softmax draws from ``softmax(logits)`` per row: (b, n_items)."""
        m = int(self.set_size)
        u = torch.rand((m, *logits.shape), generator=self.torch_gen_, device=logits.device)
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
        return F.softmax((logits.unsqueeze(0) + gumbel) / float(self.tau), dim=-1).mean(dim=0)

    def _real_sets(self, t: torch.Tensor) -> torch.Tensor:
        """Mean of ``set_size`` one-hots drawn uniformly, with replacement, from each target row."""
        idx = torch.multinomial(t, int(self.set_size), replacement=True, generator=self.torch_gen_)
        return F.one_hot(idx, t.shape[1]).to(t.dtype).mean(dim=1)  # (b, n_items)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        gen: _Generator = self.modules_["generator"]  # type: ignore[assignment]
        disc: _Discriminator = self.modules_["discriminator"]  # type: ignore[assignment]
        opt_g, opt_d = self.optimizers_["generator"], self.optimizers_["discriminator"]
        adv = float(self.adv_weight)
        masked = float(self.cond_dropout) > 0.0
        users = torch.from_numpy(self.np_rng_.permutation(self._train_users)).to(self.device_)
        sums = torch.zeros(3, dtype=torch.float64, device=self.device_)  # rec, D loss, G adversarial loss
        n_rows = 0
        bs = int(self.batch_size)
        for start in range(0, len(users), bs):
            c, t = self._split_rows(self._rows.dense(users[start : start + bs]))
            if len(c) == 0:
                continue
            logits = gen(c, self._noise(len(c)))  # (b, n_items)
            if masked:
                logits = logits.masked_fill(c > 0, _MASKED)
            rec = -(F.log_softmax(logits, dim=1) * t).sum(dim=1).div(t.sum(dim=1)).mean()
            loss = rec
            d_loss = g_adv = torch.zeros((), device=self.device_)
            if adv > 0.0:
                fake = self._fake_sets(logits)
                real = self._real_sets(t)
                d_loss = F.softplus(-disc(c, real)).mean() + F.softplus(disc(c, fake.detach())).mean()
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                g_adv = F.softplus(-disc(c, fake)).mean()
                loss = rec + adv * g_adv
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            if adv > 0.0:
                # G's step also filled D's gradients; they are cleared before D's next step.
                opt_d.zero_grad(set_to_none=True)
            sums += torch.stack([rec.detach(), d_loss.detach(), g_adv.detach()]).double() * len(c)
            n_rows += len(c)
        rec_m, d_m, g_m = (sums / max(n_rows, 1)).tolist()
        return {"rec": rec_m, "d_loss": d_m, "g_adv": g_m}

    # ------------------------------------------------------------------ scoring
    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        gen: _Generator = self.modules_["generator"]  # type: ignore[assignment]
        x = self._seen_dense(users)
        z = None if int(self.noise_dim) == 0 else torch.zeros((len(x), int(self.noise_dim)), device=x.device)
        return gen(x, z)
