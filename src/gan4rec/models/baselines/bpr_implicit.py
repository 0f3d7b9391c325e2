"""BPR-MF epochs run by the ``implicit`` library's CPU kernel: ``BPR(optimizer="sgd", backend="implicit")``.

Why it exists: :mod:`implicit`'s Cython loop does one triple at a time, touching each factor row once,
where eager torch makes about a dozen passes over each ``(batch, factors)`` block per step; on ML-100K at 64
factors our own ``"sgd"`` epoch costs about 3x implicit's (``benchmarks/peers.py``, BENCHMARKS.md). This
backend hands each epoch to implicit while gan4rec keeps everything else: the weights live in the model's
:class:`~gan4rec.models.baselines.bpr.MFScorer` (saved as safetensors like any BPR), initialised from the
model's ``random_state``; validation, early stopping and the best-epoch weights are the training loop's.

One epoch: the scorer's weights are copied into implicit's layout (``user_factors = [P | 1]``,
``item_factors = [Q | b]``: the item bias is implicit's last factor, its user side fixed at 1), implicit
runs one iteration on one thread with a seed drawn from the model's generator, and the weights are copied
back. The update is the classic one (:mod:`gan4rec.models.baselines.bpr`, ``regularization = 2 l2``), but
the sampling is implicit's, not gan4rec's:

- ``nnz`` training pairs drawn uniformly *with* replacement per epoch (not a permutation);
- the negative drawn from the item column of a random training pair, i.e. popularity-weighted, and a draw
  the user has interacted with is skipped, not redrawn (the ``skipped`` share in the history);
- triples are applied one by one (``batch_size`` does not apply).

One thread always: implicit's threads race on shared rows (Hogwild), and the same seed must give the same
weights. The kernel runs on the CPU whatever ``device`` the model lives on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.errors import MissingInputError

__all__ = ["ImplicitEpochs"]


class ImplicitEpochs:
    """implicit's BPR kernel over one training set, one epoch per :meth:`run`.

    Parameters
    ----------
    train
        The training interactions (binary).
    n_factors, lr, l2
        As in :class:`~gan4rec.models.baselines.bpr.BPR` (implicit gets ``regularization = 2 * l2``).

    Raises
    ------
    MissingInputError
        When ``implicit`` is not installed.
    """

    def __init__(self, train: Interactions, n_factors: int, lr: float, l2: float) -> None:
        try:
            from implicit.cpu.bpr import BayesianPersonalizedRanking
        except ImportError:
            raise MissingInputError(
                'bpr: backend="implicit" needs the implicit package, which is not installed; '
                "pip install 'gan4rec[peers]' (or implicit), or use backend=\"torch\""
            ) from None
        self._csr = train.csr().astype(np.float32)  # rows sorted, as implicit's negative check needs
        self._nnz = int(self._csr.nnz)
        self._model: Any = BayesianPersonalizedRanking(
            factors=int(n_factors), learning_rate=float(lr), regularization=2.0 * float(l2), iterations=1,
            num_threads=1, verify_negative_samples=True,
        )

    def run(self, user: nn.Embedding, item: nn.Embedding, bias: nn.Embedding, seed: int) -> dict[str, float]:
        """One epoch on the weights of ``user`` ``(n, f)``, ``item`` ``(m, f)`` and ``bias`` ``(m, 1)``.

        Returns the history entries ``train_auc`` (share of the applied triples already ranked right
        before their update) and ``skipped`` (share of the ``nnz`` draws skipped as liked negatives).
        """
        f = int(user.weight.shape[1])
        with torch.no_grad():
            x = np.empty((user.weight.shape[0], f + 1), dtype=np.float32)
            x[:, :f] = user.weight.detach().cpu().numpy()
            x[:, f] = 1.0
            y = np.empty((item.weight.shape[0], f + 1), dtype=np.float32)
            y[:, :f] = item.weight.detach().cpu().numpy()
            y[:, f] = bias.weight.detach().cpu().numpy()[:, 0]
            m = self._model
            m.user_factors, m.item_factors, m.random_state = x, y, int(seed)
            counts: list[tuple[int, int]] = []
            # implicit calls back after each iteration with (iteration, seconds, correct, skipped).
            m.fit(self._csr, show_progress=False, callback=lambda _it, _s, ok, skip: counts.append((ok, skip)))
            x, y = m.user_factors, m.item_factors
            user.weight.copy_(torch.from_numpy(np.ascontiguousarray(x[:, :f])))
            item.weight.copy_(torch.from_numpy(np.ascontiguousarray(y[:, :f])))
            bias.weight.copy_(torch.from_numpy(np.ascontiguousarray(y[:, f:])))
            m.user_factors = m.item_factors = None
        correct, skipped = counts[-1] if counts else (0, 0)
        applied = max(self._nnz - int(skipped), 1)
        return {"train_auc": float(correct) / applied, "skipped": float(skipped) / max(self._nnz, 1)}
