"""BPR-MF: matrix factorisation trained with Bayesian personalised ranking (Rendle et al., UAI 2009).

Score ``x_ui = p_u . q_i + b_i``. Each epoch visits every training pair ``(u, i)`` once in random order,
pairs it with one item ``j`` drawn uniformly from the items ``u`` has not interacted with, and minimises
with Adam, per mini-batch,

    mean(-log sigmoid(x_ui - x_uj)) + l2 * (|p_u|^2 + |q_i|^2 + |q_j|^2 + b_i^2 + b_j^2) summed / batch

i.e. L2 on the embeddings the batch touches (Rendle's per-sample regulariser), not weight decay on whole
tables, so rarely sampled rows are not shrunk on every step.

Large catalogues: dense Adam updates every row of both embedding tables on every step, which is what makes
an epoch on ML-20M-sized data take hours (about 39M parameters x 62K steps at ``batch_size=256``).
``optimizer="sparse_adam"`` makes the embeddings' gradients sparse and steps them with
:class:`torch.optim.SparseAdam` ("lazy" Adam: only the rows a batch touches have their moments updated),
so a step costs O(batch x factors). It is a different optimiser, so results differ from dense Adam's; the
tuned ML-100K config uses dense Adam.

``optimizer="sgd"`` is the classic update of the BPR paper (and of the ``implicit`` library): plain SGD on
the same per-triple objective, gradients written out by hand (no autograd, no optimiser state)::

    z = sigmoid(-(x_ui - x_uj))
    p_u += lr (z (q_i - q_j) - 2 l2 p_u)
    q_i += lr (z p_u - 2 l2 q_i)          b_i += lr (z - 2 l2 b_i)
    q_j += lr (-z p_u - 2 l2 q_j)         b_j += lr (-z - 2 l2 b_j)

``lr`` is per triple: ``batch_size`` triples are computed from the same weights and their updates summed
(``index_add_``), so a batch costs a few tensor operations however large it is. Each epoch draws its
negatives in one vectorised call, in the users' sorted order (cache-friendly), and then shuffles them
with the pairs. The hand-written step is checked against autograd in the tests. On CUDA ``index_add_``
accumulates with atomics, so ``"sgd"`` runs there are not bit-identical from run to run.

``backend="implicit"`` (with ``optimizer="sgd"`` only) hands each epoch to the ``implicit`` library's
Cython kernel, about 3x faster per epoch on the CPU than the torch step (whose dozen passes over each
``(batch, f)`` block are memory-bound: folding the bias into the factors and merging the item gathers and
scatters measured no faster); the same update, but implicit's sampling (negatives popularity-weighted,
liked ones skipped) and one triple at a time. See :mod:`gan4rec.models.baselines.bpr_implicit`; weights,
saving, validation and early stopping stay gan4rec's, and the choice is in the saved params.

The dense Adam step runs as :class:`torch.optim.Adam` with ``foreach=True`` (one call per operation for
all three tables instead of one per table: bit-identical results, about 7% less CPU time per epoch at
ML-100K with the tuned config, median of 3 alternated pairs), and the epoch keeps no per-step bookkeeping
(the step losses are summed once per epoch, in the same order). Dense Adam still updates both whole tables
every step, so an epoch costs about ``steps x table size``: large batches, ``"sparse_adam"``, or
``optimizer="fused_adam"`` (the same dense Adam as one fused kernel per table, ``fused=True``: about 1.5x
faster per epoch on the CPU, but its rounding differs, so it is a separate choice and ``"adam"`` keeps the
tuned configs' and IRGAN's pre-training's bits).

Distributed (see :mod:`gan4rec.train.distributed`): each rank takes its shard of the epoch's shared
permutation of the pairs and draws its own negatives; ``batch_size`` is per rank.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.data.sampling import NegativeSampler
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.baselines.bpr_implicit import ImplicitEpochs
from gan4rec.models.torch_base import TorchRecommender, check_float, check_int
from gan4rec.train import distributed
from gan4rec.train.distributed import shard

__all__ = ["BPR", "MFScorer", "sgd_step"]

OPTIMIZERS = ("adam", "fused_adam", "sparse_adam", "sgd")
BACKENDS = ("torch", "implicit")


class MFScorer(nn.Module):
    """User and item embeddings plus an item bias: ``x_ui = p_u . q_i + b_i``.

    Also the default scorer of both IRGAN players, which is why it is public. A scorer trained by
    :class:`BPR` provides :meth:`scores` (full catalogue) and :meth:`bpr_terms` (one triple batch).
    """

    init_std: ClassVar[float] = 0.1

    def __init__(self, n_users: int, n_items: int, n_factors: int, *, sparse: bool = False) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, n_factors, sparse=sparse)
        self.item = nn.Embedding(n_items, n_factors, sparse=sparse)
        self.item_bias = nn.Embedding(n_items, 1, sparse=sparse)
        nn.init.normal_(self.user.weight, std=self.init_std)
        nn.init.normal_(self.item.weight, std=self.init_std)
        nn.init.zeros_(self.item_bias.weight)

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        """``(n, n_items)`` scores of every item."""
        # view, not .T: the bias gradient then keeps the parameter's layout, as DDP's buckets expect.
        return self.user(users) @ self.item.weight.T + self.item_bias.weight.view(1, -1)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of aligned ``(user, item)`` pairs, any common shape."""
        return (self.user(users) * self.item(items)).sum(dim=-1) + self.item_bias(items).squeeze(-1)

    def sq_norms(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Summed squared norms of the embedding rows and biases that the pairs touch (per-sample L2)."""
        return (
            self.user(users).square().sum()
            + self.item(items).square().sum()
            + self.item_bias(items).square().sum()
        )

    def bpr_terms(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x_ui - x_uj`` ``(b,)`` and the summed squared norms of every row the triples touch."""
        pu, qi, qj = self.user(users), self.item(pos), self.item(neg)  # (b, f) each
        bi, bj = self.item_bias(pos).squeeze(1), self.item_bias(neg).squeeze(1)  # (b,)
        diff = (pu * (qi - qj)).sum(dim=1) + bi - bj  # (b,)
        sq = pu.square().sum() + qi.square().sum() + qj.square().sum() + bi.square().sum() + bj.square().sum()
        return diff, sq


class BPR(TorchRecommender):
    """BPR-MF (Rendle et al. 2009): matrix factorisation with a pairwise ranking loss and sampled negatives.

    Parameters
    ----------
    n_factors
        Embedding size.
    lr
        Learning rate: Adam's, or with ``optimizer="sgd"`` the per-triple SGD step.
    l2
        L2 weight on the embeddings and biases of each batch (see the module docstring).
    epochs
        Maximum number of epochs (one pass over the training pairs each).
    batch_size
        Training triples per step.
    optimizer
        ``"adam"`` (dense Adam over the whole tables, the default), ``"fused_adam"`` (the same as one
        fused kernel per table: faster, rounding differs), ``"sparse_adam"`` (sparse embedding gradients
        and :class:`torch.optim.SparseAdam`, for large catalogues) or ``"sgd"`` (the paper's per-triple
        SGD with hand-written gradients, the fastest on the CPU); see the module docstring.
    backend
        Who runs ``optimizer="sgd"``: ``"torch"`` (gan4rec's batched step, the default) or ``"implicit"``
        (the ``implicit`` library's one-thread CPU kernel, its sampling; needs ``pip install implicit``).
    eval_every, patience
        Validate every ``eval_every`` epochs; stop after ``patience`` validations without improvement
        (``None``: run all epochs). The best validated epoch's weights are kept.
    device
        ``"cpu"``, ``"cuda"``... ; ``None`` means CUDA when available.
    random_state
        Seed (int) or ``np.random.Generator``; the same seed gives bit-identical weights on the CPU.
    n_threads
        Torch threads while training on the CPU (``None``: leave torch's setting).
    """

    name = "bpr"
    supports_distributed = True
    search_space: ClassVar[SearchSpace] = {
        "n_factors": {"type": "int", "low": 16, "high": 256, "log": True},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "l2": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
        "batch_size": {"type": "categorical", "choices": [256, 1024, 4096]},
    }

    def __init__(
        self,
        *,
        n_factors: int = 64,
        lr: float = 1e-3,
        l2: float = 1e-2,
        epochs: int = 100,
        batch_size: int = 1024,
        optimizer: str = "adam",
        backend: str = "torch",
        eval_every: int = 5,
        patience: int | None = 5,
        device: str | None = None,
        random_state: int | np.random.Generator | None = None,
        n_threads: int | None = 1,
    ) -> None:
        self.n_factors = n_factors
        self.lr = lr
        self.l2 = l2
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.backend = backend
        self.eval_every = eval_every
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self) -> None:
        check_int(self.n_factors, "n_factors")
        check_float(self.l2, "l2")
        if self.optimizer not in OPTIMIZERS:
            raise DataError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.backend not in BACKENDS:
            raise DataError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "implicit" and self.optimizer != "sgd":
            raise DataError(f'backend="implicit" runs optimizer="sgd" only, got optimizer={self.optimizer!r}')

    def _check_distributed(self, ctx: distributed.DistContext, train: Interactions) -> None:
        if self.optimizer == "sparse_adam":
            raise DataError('bpr: optimizer="sparse_adam" does not train distributed (DDP all-reduces dense '
                            'gradients); use optimizer="adam" with --distributed')
        if self.optimizer == "sgd":
            raise DataError('bpr: optimizer="sgd" does not train distributed (its gradients bypass DDP); '
                            'use optimizer="adam" with --distributed')
        super()._check_distributed(ctx, train)

    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        sparse = self.optimizer == "sparse_adam"
        return {"mf": MFScorer(n_users, n_items, int(self.n_factors), sparse=sparse)}

    def _build_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        if self.optimizer == "sgd":
            return {}  # hand-written updates, no optimiser state
        if self.optimizer in ("adam", "fused_adam"):
            # foreach: one call per operation over all tables, bit-identical to the per-table loop; fused:
            # one kernel per table, rounding differs.
            fused = self.optimizer == "fused_adam"
            trainable = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
            if not trainable:
                return {}
            return {"adam": torch.optim.Adam(trainable, lr=float(self.lr), foreach=not fused, fused=fused)}
        params = [p for m in modules.values() for p in m.parameters()]
        return {"adam": torch.optim.SparseAdam(params, lr=float(self.lr))}

    def _prepare(self, train: Interactions) -> None:
        if self.backend == "implicit":
            self._implicit = ImplicitEpochs(train, int(self.n_factors), float(self.lr), float(self.l2))
            return
        self._sampler = NegativeSampler.from_interactions(train)
        self._pair_users = train.user_index()  # (nnz,)
        self._pair_items = np.asarray(train.indices, dtype=np.int64)  # (nnz,)

    def _release(self) -> None:
        super()._release()
        for attr in ("_sampler", "_pair_users", "_pair_items", "_implicit"):
            self.__dict__.pop(attr, None)

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        if self.backend == "implicit":
            return self._implicit_epoch()
        if self.optimizer == "sgd":
            return self._sgd_epoch()
        opt = self.optimizers_["adam"]
        dev = self.device_
        order = shard(self.np_rng_.permutation(len(self._pair_users)))  # (nnz,) or this rank's share
        users_np = self._pair_users[order]
        neg_np = self._sampler.sample(users_np, self.rank_np_rng_)  # (nnz,)
        users = torch.from_numpy(users_np).to(dev)
        pos = torch.from_numpy(self._pair_items[order]).to(dev)
        neg = torch.from_numpy(neg_np).to(dev)
        l2 = float(self.l2)
        bs = int(self.batch_size)
        losses: list[torch.Tensor] = []  # per step: the batch mean loss, then its L2 term
        for start in range(0, len(users), bs):
            u, i, j = users[start : start + bs], pos[start : start + bs], neg[start : start + bs]
            diff, sq = self._call("mf", "bpr_terms", u, i, j)  # (b,), scalar
            loss = -F.logsigmoid(diff).mean()
            reg = l2 * sq / len(u)
            opt.zero_grad(set_to_none=True)
            (loss + reg).backward()
            opt.step()
            losses += (loss, reg)
        return _epoch_means(losses, len(users), bs, dev)

    def _implicit_epoch(self) -> dict[str, Any]:
        """One epoch of ``backend="implicit"`` (:mod:`gan4rec.models.baselines.bpr_implicit`)."""
        mf = self.modules_["mf"]
        if not isinstance(mf, MFScorer):
            raise DataError(f'backend="implicit" trains an MFScorer, not a {type(mf).__name__}')
        seed = int(self.np_rng_.integers(0, 2**31))
        return self._implicit.run(mf.user, mf.item, mf.item_bias, seed)

    def _sgd_epoch(self) -> dict[str, Any]:
        """One epoch of ``optimizer="sgd"`` (module docstring)."""
        mf = self.modules_["mf"]
        if not isinstance(mf, MFScorer):
            raise DataError(f'optimizer="sgd" trains an MFScorer, not a {type(mf).__name__}')
        dev = self.device_
        order = self.np_rng_.permutation(len(self._pair_users))  # (nnz,)
        # Drawn for the pairs in CSR order (sorted users: the sampler's lookups stay in cache), then shuffled.
        neg_np = self._sampler.sample(self._pair_users, self.np_rng_)[order]
        users = torch.from_numpy(self._pair_users[order]).to(dev)
        pos = torch.from_numpy(self._pair_items[order]).to(dev)
        neg = torch.from_numpy(neg_np).to(dev)
        weights = (mf.user.weight, mf.item.weight, mf.item_bias.weight)  # (n, f), (m, f), (m, 1)
        loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
        bs = int(self.batch_size)
        with torch.no_grad():
            for start in range(0, len(users), bs):
                stop = start + bs
                loss_sum += sgd_step(
                    *weights, users[start:stop], pos[start:stop], neg[start:stop], float(self.lr), float(self.l2)
                )
        return {"loss": float(loss_sum) / max(len(users), 1)}

    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        return self.modules_["mf"].scores(users)  # type: ignore[operator]


def _epoch_means(losses: list[torch.Tensor], n: int, bs: int, dev: torch.device) -> dict[str, float]:
    """``loss`` and ``reg`` means over an epoch of ``n`` triples from the steps' ``[loss, reg, loss, ...]``.

    The same float32 products and float64 running sums (in step order) as accumulating step by step.
    """
    if not losses:
        return {"loss": 0.0, "reg": 0.0}
    sizes = torch.full((len(losses) // 2,), float(bs), device=dev)
    sizes[-1] = float(n - bs * (len(sizes) - 1))
    weighted = (torch.stack(losses).detach().view(-1, 2) * sizes[:, None]).double().cumsum(0)[-1]
    return {"loss": float(weighted[0]) / n, "reg": float(weighted[1]) / n}


def sgd_step(
    user: torch.Tensor,
    item: torch.Tensor,
    bias: torch.Tensor,
    u: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    lr: float,
    l2: float,
) -> torch.Tensor:
    """One batch of BPR's SGD (module docstring), in place on ``user`` ``(n, f)``, ``item`` ``(m, f)`` and
    ``bias`` ``(m, 1)``; returns the batch's summed ``-log sigmoid(x_ui - x_uj)`` (before the update).

    All triples of the batch read the weights as they were before it and their updates are summed, as in
    Hogwild-style parallel SGD. Written for few passes over ``(b, f)`` memory: the gathered copies are
    updated in place, and ``index_select`` and ``index_add_`` without ``alpha`` are the fastest forms of
    these operations on the CPU (``t[idx]`` and ``alpha=`` measured 2-3x slower with torch 2.13).
    """
    pu = torch.index_select(user, 0, u)  # (b, f) gathered copies, so updated in place below
    qi = torch.index_select(item, 0, i)  # (b, f)
    qj = torch.index_select(item, 0, j)  # (b, f)
    bi = torch.index_select(bias, 0, i)  # (b, 1)
    bj = torch.index_select(bias, 0, j)  # (b, 1)
    diff = qi - qj  # (b, f)
    x = torch.linalg.vecdot(pu, diff) + (bi - bj)[:, 0]  # (b,) x_ui - x_uj
    lz = (lr * torch.sigmoid(-x))[:, None]  # (b, 1); sigmoid(-x) = -d(-log sigmoid(x))/dx
    decay = -2.0 * lr * l2
    user.index_add_(0, u, diff.mul_(lz).add_(pu, alpha=decay))
    item.index_add_(0, i, qi.mul_(decay).addcmul_(lz, pu))
    item.index_add_(0, j, qj.mul_(decay).addcmul_(lz, pu, value=-1.0))
    bias.index_add_(0, i, bi.mul_(decay).add_(lz))
    bias.index_add_(0, j, bj.mul_(decay).sub_(lz))
    return -torch.nn.functional.logsigmoid(x).sum(dtype=torch.float64)
