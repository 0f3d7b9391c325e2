"""Content-CFGAN: item-based CFGAN whose condition carries the item's content, so it can generate new items.

CFGAN (Chae et al., CIKM 2018; :mod:`gan4rec.models.gan.cfgan`) in item mode generates each item's user
vector (which users interacted with it) conditioned on that item's own training vector, which a cold item
does not have. Here the condition also holds the item's content code, as LARA (Sun et al., WSDM 2020,
"LARA: Attribute-to-feature Adversarial Learning for New-item Recommendation") conditions its generator on
item attributes; the adversarial game and the ZR/PM schemes are CFGAN's.

Notation: rows are items, columns users. ``x_i`` ``(k,)`` is item ``i``'s content code
(:class:`~gan4rec.models.hybrid.gan_parts.ContentCodes`), ``e_i`` ``(n_users,)`` its 0/1 training
vector. In training each row's vector in the condition is dropped whole with probability
``cond_dropout`` (``m_i ~ Bernoulli(1 - cond_dropout)``, as DropoutNet drops preference inputs), so G
also learns to generate from content alone, which is all a cold item has (its ``e_i`` is all zeros)::

    G(x_i, m_i e_i) = W2 sigmoid(W1 [x_i, m_i e_i] + b1) + b2        (b, k + n_users) -> (b, n_users)
    D(x_i, v)       = w2 . sigmoid(V1 [x_i, v] + c1) + c2            (b, k + n_users) -> (b,)

With ``N^PM_i`` and ``N^ZR_i`` two independent uniform subsets of ``floor(ratio * n_unobserved)`` of the
row's unobserved users, drawn afresh for every mini-batch, ``k_i = e_i + 1[N^PM_i]`` and
``g_i = G(x_i, m_i e_i)``, per mini-batch (CFGAN's losses, D's condition being the content):

    D minimises  mean_i softplus(-D(x_i, e_i)) + mean_i softplus(D(x_i, g_i * k_i)) + d_l2 |theta_D|^2 / 2
    G minimises  mean_i softplus(-D(x_i, g_i * k_i))                                    (non-saturating)
                 + alpha mean_i sum_{j in N^ZR_i} g_ij^2                                  (ZR)
                 + g_l2 |theta_G|^2 / 2

``scheme`` is CFGAN's: ``"zr"`` (the default: ZR only, ``k_i = e_i``), ``"zp"`` (both), ``"pm"`` or
``"none"``. The L2 terms are Adam's coupled ``weight_decay``, as in :class:`~gan4rec.models.gan.cfgan.CFGAN`.

Epoch: ``d_steps`` passes of D over the warm items in random order, then ``g_steps`` passes of G. Only
warm items are rows (a cold item has no real vector to compare with). Scores: ``s(u, i) = G(x_i, e_i)_u``
for every item (cold items: ``e_i = 0``, content only), computed as the cached hidden layer of all items
times the output weights of the users asked for. Validation as in GAR
(:func:`~gan4rec.models.hybrid.gan_parts.loop_validation`: the cold task when there is one).

This is plain autograd (CFGAN's hand-written gradients are private speed machinery) with three exact
shortcuts: the first layers take a 0/1 condition by its ones (``W [x, e] = W_x x + W_e e``, ``W_e e`` a
gather-sum of ``W_e``'s columns), PM/ZR draw by selection rather than a sort
(:func:`~gan4rec.data.sampling.sample_unobserved_dense_select`, the same masks), and G's step computes
no gradient of D's weights; Adam is torch's fused one (the same update, rounded differently). A step
still costs ``O(batch x n_users x hidden)`` for the dense generated vectors. User features in the
condition are not supported. Without item features the codes are constant and cold items all score
alike.

Status (``benchmarks/content_cfgan_speed.py``, cold splits seed 0, 1 torch thread, 2 cores shared with
other jobs; VALIDATION numbers only): with the old default ``scheme="zp"``, cold / warm validation
NDCG@20 on CiteULike-t stay at chance (0.0026 / 0.0003 after 10 epochs; GAR 0.16 / 0.05 in
``benchmarks/results/issue18-preregistration.md``). The evidence points at PM on sparse data: a real
user vector has about 4 ones among 7,947 users, a generated one is nonzero on the 70% of the rest that PM
keeps, so D can tell them apart by density (its loss 0.07 in epoch 1) and G's way out is to output about
0 everywhere: after
10 epochs on ml-latest-small G's outputs at its own training positives average 0.046 against 0.015
elsewhere (0.171 against 0.037 with ZR only) and hardly depend on ``e``. With ``scheme="zr"`` (the
default since) D compares values at the positives only, ZR pulls the rest towards 0, and 10 epochs give
cold / warm validation NDCG@20 of 0.20 / 0.05 on CiteULike-t, 0.17 / 0.17 on ML-100K (``zp``: 0.11 /
0.01) and 0.09 / 0.11 on ml-latest-small (``zp``: 0.03 / 0.03). An epoch on CiteULike-t takes 12-15 s
(``zp``: 18 s; 55 s before the shortcuts above, measured the same day; 300-370 s under heavier load);
8 epochs fit in about 130 s, of which about 20 s are the content SVD, peak RSS 1.2 GB.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.data.sampling import sample_unobserved_dense_select
from gan4rec.errors import ArtifactError, DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.gan.cfgan import SCHEMES
from gan4rec.models.hybrid.common import WEIGHTINGS, HybridRecommender
from gan4rec.models.hybrid.gan_parts import ContentCodes, fit_seed, loop_validation, mask_scores
from gan4rec.models.torch_base import DeviceCSR, TorchRecommender, check_float, check_int

__all__ = ["ContentCFGAN"]

log = logging.getLogger(__name__)

_Ones = tuple[torch.Tensor, torch.Tensor]  # (row position, column) of each 1 of a 0/1 batch


class _Net(nn.Module):
    """``[x, v] -> sigmoid(hidden) -> out``: CFGAN's one-hidden-layer MLP, Glorot weights, U(-0.01, 0.01) biases.

    ``hidden_layer_sparse`` is the same first layer for a 0/1 ``v`` given by its ones: ``W [x, v] =
    W_x x + W_v v``, and ``W_v v`` sums the columns of ``W_v`` at ``v``'s ones (``O(nnz x hidden)`` instead
    of ``O(b x n_users x hidden)``).
    """

    def __init__(self, n_in: int, hidden: int, n_out: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_in, hidden)
        self.out = nn.Linear(hidden, n_out)
        for lin in (self.hidden, self.out):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.uniform_(lin.bias, -0.01, 0.01)

    def hidden_layer(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.hidden(torch.cat([x, v], dim=1)))  # (b, hidden)

    def hidden_layer_sparse(self, x: torch.Tensor, pos: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """``hidden_layer(x, v)`` for the 0/1 ``v`` (``(b, n_in - k)``) with ones at ``(pos, cols)``."""
        k = x.shape[1]
        w = self.hidden.weight  # (hidden, k + n_users)
        pre = F.linear(x, w[:, :k], self.hidden.bias)  # (b, hidden)
        pre = pre.index_add(0, pos, w.index_select(1, cols + k).T)  # + W_v v
        return torch.sigmoid(pre)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden_layer(x, v))


class ContentCFGAN(HybridRecommender, TorchRecommender):
    """Item-based CFGAN conditioned on item content (LARA-style), generating new items' user vectors.

    See the module docstring for the model and losses.

    Parameters
    ----------
    item_features
        Feature name(s) to read, ``None`` for all (see :mod:`gan4rec.models.hybrid.common`).
    content_dim, weighting
        Width of the content codes (truncated SVD of the weighted features) and the column weighting.
    scheme, zr_ratio, pm_ratio, alpha
        CFGAN's sampling scheme, its ZR / PM fractions of each row's unobserved users, the ZR weight.
    cond_dropout
        Probability that a row's training vector is dropped from G's condition in training.
    g_hidden, d_hidden
        Hidden widths of G and D.
    g_lr, d_lr, g_l2, d_l2
        Adam learning rates and L2 coefficients (``coef * sum(p^2) / 2``) of G and D.
    g_batch_size, d_batch_size, g_steps, d_steps
        Rows per mini-batch and passes over the warm items per epoch, for G and D.
    epochs, eval_every, patience
        As in :class:`~gan4rec.models.gan.cfgan.CFGAN`.
    cold_scale, cold_offset
        Calibration of cold-item scores (:func:`~gan4rec.models.hybrid.common.calibrate`).
    device, random_state, n_threads
        As in :class:`~gan4rec.models.baselines.bpr.BPR`.
    """

    name = "content-cfgan"
    adversarial = True
    search_space: ClassVar[SearchSpace] = {
        "scheme": {"type": "categorical", "choices": ["zr", "zp"]},
        "zr_ratio": {"type": "float", "low": 0.05, "high": 0.95},
        "pm_ratio": {"type": "float", "low": 0.05, "high": 0.95},
        "alpha": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        "cond_dropout": {"type": "float", "low": 0.0, "high": 0.9},
        "g_hidden": {"type": "int", "low": 50, "high": 400, "log": True},
        "d_hidden": {"type": "int", "low": 25, "high": 250, "log": True},
        "g_lr": {"type": "float", "low": 5e-5, "high": 5e-3, "log": True},
        "d_lr": {"type": "float", "low": 5e-5, "high": 5e-3, "log": True},
    }

    codes_: ContentCodes
    _hidden_cache: torch.Tensor | None = None  # (n_items, g_hidden) G's hidden layer of every item, eval
    _valid_masked: np.ndarray | None = None  # (n_items,) items the running fit's validation never ranks
    _columns: DeviceCSR | None = None  # item x user training matrix on the device

    def __init__(
        self,
        *,
        item_features: str | Sequence[str] | None = None,
        content_dim: int = 300,
        weighting: str = "tfidf",
        scheme: str = "zr",
        zr_ratio: float = 0.7,
        pm_ratio: float = 0.7,
        alpha: float = 0.03,
        cond_dropout: float = 0.5,
        g_hidden: int = 200,
        d_hidden: int = 125,
        g_lr: float = 1e-3,
        d_lr: float = 1e-3,
        g_l2: float = 1e-3,
        d_l2: float = 0.0,
        g_batch_size: int = 64,
        d_batch_size: int = 64,
        g_steps: int = 1,
        d_steps: int = 1,
        epochs: int = 100,
        eval_every: int = 2,
        patience: int | None = 5,
        cold_scale: float = 1.0,
        cold_offset: float = 0.0,
        device: str | None = None,
        random_state: int | np.random.Generator | None = None,
        n_threads: int | None = 1,
    ) -> None:
        self.item_features = item_features
        self.content_dim = content_dim
        self.weighting = weighting
        self.scheme = scheme
        self.zr_ratio = zr_ratio
        self.pm_ratio = pm_ratio
        self.alpha = alpha
        self.cond_dropout = cond_dropout
        self.g_hidden = g_hidden
        self.d_hidden = d_hidden
        self.g_lr = g_lr
        self.d_lr = d_lr
        self.g_l2 = g_l2
        self.d_l2 = d_l2
        self.g_batch_size = g_batch_size
        self.d_batch_size = d_batch_size
        self.g_steps = g_steps
        self.d_steps = d_steps
        self.epochs = epochs
        self.eval_every = eval_every
        self.patience = patience
        self.cold_scale = cold_scale
        self.cold_offset = cold_offset
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self) -> None:
        if self.scheme not in SCHEMES:
            raise DataError(f"scheme={self.scheme!r}; expected one of {', '.join(SCHEMES)}")
        if self.weighting not in WEIGHTINGS:
            raise DataError(f"weighting={self.weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
        check_int(self.content_dim, "content_dim")
        check_float(self.zr_ratio, "zr_ratio", high=1.0)
        check_float(self.pm_ratio, "pm_ratio", high=1.0)
        check_float(self.alpha, "alpha")
        check_float(self.cond_dropout, "cond_dropout", high=1.0)
        check_int(self.g_hidden, "g_hidden")
        check_int(self.d_hidden, "d_hidden")
        check_float(self.g_lr, "g_lr", low_open=True)
        check_float(self.d_lr, "d_lr", low_open=True)
        check_float(self.g_l2, "g_l2")
        check_float(self.d_l2, "d_l2")
        check_int(self.g_batch_size, "g_batch_size")
        check_int(self.d_batch_size, "d_batch_size")
        check_int(self.g_steps, "g_steps", low=0)
        check_int(self.d_steps, "d_steps", low=0)
        if self.g_steps + self.d_steps == 0:
            raise DataError("g_steps=0 and d_steps=0; expected at least one pass per epoch")

    # ------------------------------------------------------------------ the players
    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        n_in = self.codes_.dim + n_users
        return {"generator": _Net(n_in, int(self.g_hidden), n_users),
                "discriminator": _Net(n_in, int(self.d_hidden), 1)}

    def _build_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        # Fused Adam: the same update, about 7x faster on CPU for G's (n_users x hidden) layers (its rounding
        # differs from the per-tensor loop's in the last bits).
        fused = True if self.device_.type in ("cpu", "cuda") else None
        return {
            "g": torch.optim.Adam(modules["generator"].parameters(), lr=float(self.g_lr),
                                  weight_decay=float(self.g_l2), fused=fused),
            "d": torch.optim.Adam(modules["discriminator"].parameters(), lr=float(self.d_lr),
                                  weight_decay=float(self.d_l2), fused=fused),
        }

    def _net(self, name: str) -> _Net:
        return cast(_Net, self.modules_[name])

    def _batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, _Ones, torch.Tensor, torch.Tensor]:
        """``(x (b, k), e's ones, k = e + PM (b, n_users), ZR mask (b, n_users))`` of item rows."""
        x = self._codes_t[rows]
        columns = self._item_rows()
        pos, cols, _ = columns.cells(rows)
        e = torch.zeros((len(rows), columns.n_cols), dtype=torch.float32, device=self.device_)
        e[pos, cols] = 1.0  # (b, n_users)
        pm = sample_unobserved_dense_select(e, float(self.pm_ratio), self.torch_gen_) \
            if self.scheme in ("zp", "pm") else torch.zeros_like(e, dtype=torch.bool)
        zr = sample_unobserved_dense_select(e, float(self.zr_ratio), self.torch_gen_) \
            if self.scheme in ("zp", "zr") else torch.zeros_like(e, dtype=torch.bool)
        return x, (pos, cols), e + pm.float(), zr

    def _generate(self, x: torch.Tensor, e: _Ones) -> torch.Tensor:
        """``g = G(x, m * e)`` with each row's vector dropped with probability ``cond_dropout``."""
        p = float(self.cond_dropout)
        keep = torch.empty((len(x), 1), device=x.device).bernoulli_(1.0 - p, generator=self.torch_gen_)
        pos, cols = e
        kept = keep[pos, 0] > 0  # the ones of m * e
        gen = self._net("generator")
        return gen.out(gen.hidden_layer_sparse(x, pos[kept], cols[kept]))

    def _d_step(self, rows: torch.Tensor) -> float:
        x, e, k, _ = self._batch(rows)
        with torch.no_grad():
            fake = self._generate(x, e) * k  # (b, n_users), a constant for D
        d = self._net("discriminator")
        loss = F.softplus(-d.out(d.hidden_layer_sparse(x, *e))).mean() + F.softplus(d(x, fake)).mean()
        opt = self.optimizers_["d"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _g_step(self, rows: torch.Tensor) -> float:
        x, e, k, zr = self._batch(rows)
        g = self._generate(x, e)  # (b, n_users)
        d = self._net("discriminator")
        d.requires_grad_(False)  # G's step needs D's input gradient only, not D's weight gradients
        try:
            loss = F.softplus(-d(x, g * k)).mean()
            if self.scheme in ("zp", "zr"):
                loss = loss + float(self.alpha) * (g.square() * zr).sum(dim=1).mean()
            opt = self.optimizers_["g"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            d.requires_grad_(True)
        opt.step()
        return float(loss.detach())

    # ------------------------------------------------------------------ training
    def _fit_hybrid(self, train: Interactions, valid: Interactions | None) -> None:
        self._check_common_params()
        self._check_params()
        seed = fit_seed(self.random_state)
        self.codes_ = ContentCodes.fit(self.features_, self.warm_, int(self.content_dim), self.weighting, seed)
        loop_valid, self._valid_masked = loop_validation(valid, self.warm_)
        self._hidden_cache = None
        try:
            TorchRecommender._fit(self, train, loop_valid)
        finally:
            self._hidden_cache = None  # the loop restored the best weights after the last validation
            self._valid_masked = None

    def _prepare(self, train: Interactions) -> None:
        self._bind(train)
        self._warm_rows = np.flatnonzero(self.warm_)

    def _bind(self, seen: Interactions) -> DeviceCSR:
        """Device copies of the codes and of the item x user training matrix (returned)."""
        cols = sp.csr_matrix(seen.csr().T)  # (n_items, n_users)
        self._columns = DeviceCSR(cols.indptr, cols.indices, seen.n_users, self.device_)
        self._codes_t = torch.as_tensor(self.codes_.encode(self.features_), device=self.device_)
        return self._columns

    def _item_rows(self) -> DeviceCSR:
        return self._columns if self._columns is not None else self._bind(self.seen_)

    def _passes(self, steps: int, batch_size: int, step: Any) -> list[float]:
        losses = []
        for _ in range(int(steps)):
            order = self._warm_rows[self.np_rng_.permutation(len(self._warm_rows))]
            for start in range(0, len(order), batch_size):
                rows = torch.as_tensor(order[start:start + batch_size], device=self.device_)
                losses.append(step(rows))
        return losses

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self._hidden_cache = None
        for m in self.modules_.values():
            m.train()
        d = self._passes(self.d_steps, int(self.d_batch_size), self._d_step)
        g = self._passes(self.g_steps, int(self.g_batch_size), self._g_step)
        return {"d_loss": float(np.mean(d)) if d else 0.0, "g_loss": float(np.mean(g)) if g else 0.0}

    # ------------------------------------------------------------------ scoring
    def _hidden_all(self) -> torch.Tensor:
        """``(n_items, g_hidden)``: G's hidden layer of every item, conditioned on its full training vector."""
        if self._hidden_cache is None:
            columns = self._item_rows()
            gen = self._net("generator")
            parts = []
            for start in range(0, self.n_items, 2048):
                rows = torch.arange(start, min(start + 2048, self.n_items), device=self.device_)
                pos, cols, _ = columns.cells(rows)
                parts.append(gen.hidden_layer_sparse(self._codes_t[rows], pos, cols))
            self._hidden_cache = torch.cat(parts)
        return self._hidden_cache

    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        out = self._net("generator").out
        return out.weight[users] @ self._hidden_all().T + out.bias[users][:, None]  # (n, n_items)

    def valid_score(self, users: np.ndarray) -> torch.Tensor:
        """Validation scores with the items outside the validated task at ``-inf``."""
        return mask_scores(TorchRecommender.valid_score(self, users), self._valid_masked)

    def _score_raw(self, users: np.ndarray) -> np.ndarray:
        return TorchRecommender._score(self, users)

    def _score_content(self, users: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
        gen = self._net("generator").eval()
        with torch.no_grad():
            x = torch.as_tensor(self.codes_.encode(features), device=self.device_)  # (m, k)
            none = torch.zeros(0, dtype=torch.int64, device=self.device_)
            h = gen.hidden_layer_sparse(x, none, none)  # (m, hidden), e = 0
            u = torch.as_tensor(users, device=self.device_)
            return (gen.out.weight[u] @ h.T + gen.out.bias[u][:, None]).float().cpu().numpy()

    # ------------------------------------------------------------------ state
    def _hybrid_state(self) -> dict[str, np.ndarray]:
        torch_state = {k: np.atleast_1d(v) for k, v in TorchRecommender._state(self).items()}
        return {**torch_state, **self.codes_.state()}

    def _set_hybrid_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        arrays = dict(arrays)
        self.codes_ = ContentCodes.from_state(arrays, self.weighting, self.n_features)
        for key in ("codes.idf", "codes.components"):
            if arrays.pop(key, None) is None:
                raise ArtifactError(f"saved {self.name} model lacks {key!r}")
        self._columns = None
        self._hidden_cache = None
        TorchRecommender._set_state(self, arrays, meta)
