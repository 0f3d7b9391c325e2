"""Mult-VAE^PR: variational autoencoder with a multinomial likelihood (Liang et al., WWW 2018).

A user's history ``x`` (a 0/1 row over the items) is L2-normalised, dropped out, and encoded by
``n_items -> hidden -> 2 * latent`` (tanh between layers) into a Gaussian ``q(z | x) = N(mu, diag(sigma^2))``;
the decoder ``latent -> hidden -> n_items`` maps a sample ``z`` to logits ``f(z)``. The loss per user is

    -sum_i x_i log softmax(f(z))_i + beta * KL(q(z | x) || N(0, I))

with ``beta = min(anneal_cap, step / total_anneal_steps)`` growing by one step per mini-batch (KL
annealing; the "PR" of the name: partial regularisation). At scoring time ``z = mu`` and no dropout, so
the scores of a user are a deterministic function of their history: :meth:`MultVAE.score_history` folds in
users who were not in the training data.

The original weights are Xavier-initialised and the biases drawn from N(0, 0.001^2); the dropout mask and
the reparameterisation noise come from the model's own torch generator.

Distributed (see :mod:`gan4rec.train.distributed`): each rank takes its shard of the epoch's shared
permutation of the users and draws its own dropout masks and noise; ``batch_size`` is per rank, and the
KL annealing counts steps, which all ranks take together.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.torch_base import DeviceCSR, TorchRecommender, check_float, check_int
from gan4rec.train.distributed import shard
from gan4rec.train.seeding import dropout

__all__ = ["MultVAE"]


class _VAE(nn.Module):
    """Encoder ``n_items -> hidden -> 2 * latent`` and decoder ``latent -> hidden -> n_items``."""

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.latent = latent
        self.enc1 = nn.Linear(n_items, hidden)
        self.enc2 = nn.Linear(hidden, 2 * latent)
        self.dec1 = nn.Linear(latent, hidden)
        self.dec2 = nn.Linear(hidden, n_items)
        for layer in (self.enc1, self.enc2, self.dec1, self.dec2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=0.001)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each ``(b, latent)``, of already normalised (and dropped-out) input."""
        h = self.enc2(torch.tanh(self.enc1(x)))  # (b, 2 * latent)
        return h[:, : self.latent], h[:, self.latent :]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits ``(b, n_items)``."""
        return self.dec2(torch.tanh(self.dec1(z)))

    def train_terms(
        self, h: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mu, logvar, logits)`` of a training step: encode ``h``, sample ``z`` with noise ``eps``, decode.

        One method, so that a step is one call through DDP.
        """
        mu, logvar = self.encode(h)  # (b, latent) each
        z = mu + eps * torch.exp(0.5 * logvar)
        return mu, logvar, self.decode(z)


class MultVAE(TorchRecommender):
    """Mult-VAE^PR (Liang et al. 2018): a variational autoencoder over user histories, multinomial likelihood.

    Parameters
    ----------
    hidden, latent
        Widths of the hidden layer and of the latent code (the paper: 600 and 200).
    dropout
        Dropout rate on the normalised input (the paper: 0.5).
    anneal_cap
        Final KL weight ``beta`` (the paper: 0.2).
    total_anneal_steps
        Mini-batch steps over which ``beta`` grows linearly from 0 to 1 (capped at ``anneal_cap``); ``0``
        uses ``anneal_cap`` from the first step. The paper's 200000 suits ML-20M; on small data (few steps
        per epoch) use a few thousand.
    lr
        Adam learning rate.
    weight_decay
        Adam weight decay (L2 on all weights; the paper uses 0).
    epochs, batch_size
        Maximum epochs and users per step.
    eval_every, patience
        Validate every ``eval_every`` epochs; stop after ``patience`` validations without improvement.
    device, random_state, n_threads
        As in :class:`~gan4rec.models.baselines.bpr.BPR`.
    """

    name = "multvae"
    supports_distributed = True
    search_space: ClassVar[SearchSpace] = {
        "hidden": {"type": "categorical", "choices": [200, 600, 1000]},
        "latent": {"type": "categorical", "choices": [50, 100, 200]},
        "dropout": {"type": "float", "low": 0.0, "high": 0.8},
        "anneal_cap": {"type": "float", "low": 0.0, "high": 1.0},
        "total_anneal_steps": {"type": "int", "low": 500, "high": 200_000, "log": True},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "weight_decay": {"type": "float", "low": 1e-8, "high": 1e-2, "log": True},
    }

    def __init__(
        self,
        *,
        hidden: int = 600,
        latent: int = 200,
        dropout: float = 0.5,
        anneal_cap: float = 0.2,
        total_anneal_steps: int = 200_000,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 200,
        batch_size: int = 500,
        eval_every: int = 1,
        patience: int | None = 20,
        device: str | None = None,
        random_state: int | np.random.Generator | None = None,
        n_threads: int | None = 1,
    ) -> None:
        self.hidden = hidden
        self.latent = latent
        self.dropout = dropout
        self.anneal_cap = anneal_cap
        self.total_anneal_steps = total_anneal_steps
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.eval_every = eval_every
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self) -> None:
        check_int(self.hidden, "hidden")
        check_int(self.latent, "latent")
        check_float(self.dropout, "dropout", high=1.0, high_open=True)
        check_float(self.anneal_cap, "anneal_cap")
        check_int(self.total_anneal_steps, "total_anneal_steps", low=0)
        check_float(self.weight_decay, "weight_decay")

    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        return {"vae": _VAE(n_items, int(self.hidden), int(self.latent))}

    def _prepare(self, train: Interactions) -> None:
        self._rows = DeviceCSR.from_interactions(train, self.device_)
        self._train_users = np.flatnonzero(train.user_counts() > 0).astype(np.int64)  # users with a history
        self._update_count = 0

    def _release(self) -> None:
        super()._release()
        for attr in ("_rows", "_train_users"):
            self.__dict__.pop(attr, None)

    def _extra_state(self) -> dict[str, Any]:
        return {"update_count": self._update_count}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._update_count = int(state.get("update_count", 0))

    def _beta(self) -> float:
        if self.total_anneal_steps == 0:
            return float(self.anneal_cap)
        return min(float(self.anneal_cap), self._update_count / float(self.total_anneal_steps))

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        opt = self.optimizers_["adam"]
        dev = self.device_
        latent = int(self.latent)
        users = torch.from_numpy(shard(self.np_rng_.permutation(self._train_users))).to(dev)
        sums = torch.zeros(2, device=dev, dtype=torch.float64)  # neg. log-likelihood, KL
        bs = int(self.batch_size)
        beta = self._beta()
        for start in range(0, len(users), bs):
            batch = users[start : start + bs]
            x = self._rows.dense(batch)  # (b, n_items)
            h = dropout(F.normalize(x, dim=1), float(self.dropout), self.rank_torch_gen_)
            # Drawn before the encoder runs (which draws nothing), so the stream is as when drawn after.
            eps = torch.randn((len(batch), latent), generator=self.rank_torch_gen_, device=dev, dtype=h.dtype)
            mu, logvar, logits = self._call("vae", "train_terms", h, eps)  # (b, latent) x 2, (b, n_items)
            nll = -(F.log_softmax(logits, dim=1) * x).sum(dim=1).mean()
            kl = 0.5 * (torch.exp(logvar) + mu.square() - 1.0 - logvar).sum(dim=1).mean()
            beta = self._beta()
            loss = nll + beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self._update_count += 1
            sums += torch.stack([nll.detach(), kl.detach()]).double() * len(batch)
        nll_mean, kl_mean = (sums / max(len(users), 1)).tolist()
        return {"nll": nll_mean, "kl": kl_mean, "beta": beta}

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        vae: _VAE = self.modules_["vae"]  # type: ignore[assignment]
        mu, _ = vae.encode(F.normalize(x, dim=1))
        return vae.decode(mu)

    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        return self._logits(self._seen_dense(users))

    def score_history(self, history: Any) -> np.ndarray:
        """Scores ``(n, n_items)`` float32 for users given by their histories (fold-in, no refit).

        Parameters
        ----------
        history
            ``(n, n_items)`` scipy sparse matrix, numpy array or torch tensor; nonzero entries are the
            items each user interacted with (values are binarised). Rows may belong to unseen users.
        """
        self._check_fitted()
        if sp.issparse(history):
            csr = sp.csr_matrix(history)
            shape = csr.shape
        else:
            arr = history.detach().cpu().numpy() if isinstance(history, torch.Tensor) else np.asarray(history)
            if arr.ndim != 2:
                raise DataError(f"history must be 2-D (n_users, n_items), got shape {arr.shape}")
            csr = sp.csr_matrix(arr)
            shape = arr.shape
        if shape[1] != self.n_items:
            raise DataError(f"history has {shape[1]} columns, expected one per item ({self.n_items})")
        csr.eliminate_zeros()
        csr.sort_indices()
        rows = DeviceCSR(csr.indptr, csr.indices, self.n_items, self.device_)
        vae = self.modules_["vae"]
        vae.eval()
        out = np.empty((shape[0], self.n_items), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, shape[0], self.score_batch_size):
                idx = torch.arange(start, min(start + self.score_batch_size, shape[0]), device=self.device_)
                out[start : start + len(idx)] = self._logits(rows.dense(idx)).float().cpu().numpy()
        return out
