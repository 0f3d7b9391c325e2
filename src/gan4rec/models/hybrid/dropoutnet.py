"""DropoutNet (Volkovs, Yu, Poutanen, NeurIPS 2017): two towers fed preference and content, input dropout."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.hybrid.common import WEIGHTINGS, HybridRecommender, idf_weights, weigh_rows
from gan4rec.models.hybrid.gan_parts import BACKBONES, fit_backbone, fit_seed
from gan4rec.models.torch_base import TorchRecommender, check_float, check_int

__all__ = ["DropoutNet"]

log = logging.getLogger(__name__)


class _Towers(nn.Module):
    """User tower ``f_U(U_u)`` and item tower ``f_V([V_i, phi_i])``; the inputs are buffers (saved with it).

    ``user_pref`` ``(n_users, f)`` and ``item_pref`` ``(n_items, f)`` are the pretrained CF factors,
    ``item_content`` ``(n_items, d)`` the reduced content (``d`` may be 0).
    """

    user_pref: torch.Tensor
    item_pref: torch.Tensor
    item_content: torch.Tensor

    def __init__(self, n_users: int, n_items: int, f: int, d: int, hidden: int, out: int) -> None:
        super().__init__()
        self.register_buffer("user_pref", torch.zeros(n_users, f))
        self.register_buffer("item_pref", torch.zeros(n_items, f))
        self.register_buffer("item_content", torch.zeros(n_items, d))
        self.user = nn.Sequential(nn.Linear(f, hidden), nn.Tanh(), nn.Linear(hidden, out))
        self.item = nn.Sequential(nn.Linear(f + d, hidden), nn.Tanh(), nn.Linear(hidden, out))

    def item_vectors(self, pref: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """``(m, out)`` item embeddings from ``(m, f)`` preference (zeros = dropped/cold) and ``(m, d)`` content."""
        return self.item(torch.cat([pref, content], dim=1))

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``(b,)`` scores of pairs; ``keep`` ``(b,)`` 0/1 says whether the item's preference input is kept."""
        u = self.user(self.user_pref[users])  # (b, out)
        v = self.item_vectors(self.item_pref[items] * keep[:, None], self.item_content[items])  # (b, out)
        return (u * v).sum(dim=1)


class DropoutNet(HybridRecommender, TorchRecommender):
    """DropoutNet: the standard neural cold-start reference (Volkovs et al., NeurIPS 2017).

    A collaborative model (the backbone, BPR or iALS) is fitted first: user and item factors ``U``, ``V``.
    Two towers then learn to reproduce its scores,

        f_U(U_u) . f_V([V_i, phi_i])  ~  U_u . V_i,

    on each training pair and one random item per pair, by mean squared error, where ``phi_i`` is the item
    content reduced to ``content_dim`` columns (TF-IDF rows, unit length, then a seeded truncated SVD; used
    as is when narrower). With probability ``dropout`` an item's preference input ``V_i`` is set to zero,
    which is how a cold item looks, so the item tower learns to score from content alone. At scoring,
    warm items get ``[V_i, phi_i]`` and cold items ``[0, phi_i]``. The paper's user-side content and
    user dropout are left out (this is item cold start); its transform of inputs and 800-wide layers become
    one hidden tanh layer of ``hidden`` units.

    Without item features the item tower sees preference only and cold items all look alike.

    Parameters
    ----------
    item_features
        Feature name(s) to read, ``None`` for all (see :mod:`gan4rec.models.hybrid.common`).
    backbone, backbone_params
        The pretrained CF model (``"bpr"`` or ``"ials"``) and its params over its defaults; it validates on
        the warm part of the validation data, as GAR's (:func:`~gan4rec.models.hybrid.gan_parts.fit_backbone`).
    content_dim
        Columns of the reduced content.
    weighting
        ``"tfidf"`` or ``"none"`` column weighting of the content before the reduction.
    hidden, out
        Width of each tower's hidden layer and of the embeddings.
    dropout
        Probability of dropping an item's preference input in training (the paper: 0.5).
    lr, weight_decay
        Adam's learning rate and weight decay.
    epochs, batch_size
        Maximum epochs and pairs per step (each with a random item, so ``2 * batch_size`` rows).
    eval_every, patience
        Validate every ``eval_every`` epochs; stop after ``patience`` validations without improvement.
    cold_scale, cold_offset
        Calibration of cold-item scores (:func:`~gan4rec.models.hybrid.common.calibrate`).
    device, random_state, n_threads
        As in :class:`~gan4rec.models.baselines.bpr.BPR`.
    """

    name = "dropoutnet"
    search_space: ClassVar[SearchSpace] = {
        "dropout": {"type": "float", "low": 0.1, "high": 0.9},
        "hidden": {"type": "categorical", "choices": [128, 256, 512]},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "weight_decay": {"type": "float", "low": 1e-8, "high": 1e-3, "log": True},
    }

    projection_: np.ndarray  # (n_features, d) content reduction (identity-like when not reduced)
    idf_: np.ndarray  # (n_features,)

    def __init__(
        self,
        *,
        item_features: str | Sequence[str] | None = None,
        backbone: str = "bpr",
        backbone_params: dict[str, Any] | None = None,
        content_dim: int = 300,
        weighting: str = "tfidf",
        hidden: int = 256,
        out: int = 128,
        dropout: float = 0.5,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 30,
        batch_size: int = 1024,
        eval_every: int = 5,
        patience: int | None = 2,
        cold_scale: float = 1.0,
        cold_offset: float = 0.0,
        device: str | None = None,
        random_state: int | np.random.Generator | None = None,
        n_threads: int | None = 1,
    ) -> None:
        self.item_features = item_features
        self.backbone = backbone
        self.backbone_params = backbone_params
        self.content_dim = content_dim
        self.weighting = weighting
        self.hidden = hidden
        self.out = out
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.eval_every = eval_every
        self.patience = patience
        self.cold_scale = cold_scale
        self.cold_offset = cold_offset
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self) -> None:
        if self.backbone not in BACKBONES:
            raise DataError(f"backbone={self.backbone!r}; expected one of {', '.join(BACKBONES)}")
        if self.weighting not in WEIGHTINGS:
            raise DataError(f"weighting={self.weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
        check_int(self.content_dim, "content_dim")
        check_int(self.hidden, "hidden")
        check_int(self.out, "out")
        check_float(self.dropout, "dropout", high=1.0, high_open=True)
        check_float(self.weight_decay, "weight_decay")

    # ------------------------------------------------------------------ fit
    def _fit_hybrid(self, train: Interactions, valid: Interactions | None) -> None:
        self._check_common_params()  # all params before the (slow) backbone fit
        self._check_params()
        # One int seed for the backbone and the SVD: the int itself, or a draw from a Generator (so a
        # Generator seeded alike gives the same fit); None stays None (fresh entropy).
        self._int_seed = None if self.random_state is None else fit_seed(self.random_state)
        # Validated on the warm part of valid, as GAR's: the same backbone fit (memo key) for both.
        _, user, item = fit_backbone(self.backbone, self.backbone_params, train, valid, self.warm_,
                                     random_state=self._seed(), device=self.device)
        self._pref = (user, item)
        self.idf_ = idf_weights(self.features_, self.weighting)
        self.projection_ = self._reduction()
        self._content = self._reduce(self.features_)  # (n_items, d)
        self._dims = (self._pref[0].shape[1], self._content.shape[1])
        TorchRecommender._fit(self, train, valid)

    def _seed(self) -> int | None:
        return self._int_seed

    def _reduction(self) -> np.ndarray:
        """``(n_features, d)``: a seeded truncated SVD of the weighted content, or the identity when narrow."""
        n = self.n_features
        if n <= int(self.content_dim):
            return np.eye(n, dtype=np.float32)
        from sklearn.decomposition import TruncatedSVD

        content = weigh_rows(self.features_, self.idf_, self.weighting)
        svd = TruncatedSVD(n_components=int(self.content_dim), random_state=self._seed() or 0).fit(content)
        return np.ascontiguousarray(svd.components_.T, dtype=np.float32)

    def _reduce(self, features: sp.csr_matrix) -> np.ndarray:
        """``(m, d)`` reduced content of content rows."""
        if self.n_features == 0:
            return np.zeros((features.shape[0], 0), dtype=np.float32)
        return np.asarray(weigh_rows(features, self.idf_, self.weighting) @ self.projection_, dtype=np.float32)

    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        f, d = self._dims
        return {"net": _Towers(n_users, n_items, f, d, int(self.hidden), int(self.out))}

    def _prepare(self, train: Interactions) -> None:
        net: _Towers = self.modules_["net"]  # type: ignore[assignment]
        dev = self.device_
        net.user_pref.copy_(torch.from_numpy(self._pref[0]))
        net.item_pref.copy_(torch.from_numpy(self._pref[1]))
        net.item_content.copy_(torch.from_numpy(self._content))
        self._pairs_u = torch.as_tensor(train.user_index(), device=dev)  # (nnz,) int64
        self._pairs_i = torch.as_tensor(np.asarray(train.indices, dtype=np.int64), device=dev)
        self._warm_items = torch.as_tensor(np.flatnonzero(self.warm_), device=dev)

    def _release(self) -> None:
        super()._release()
        for attr in ("_pairs_u", "_pairs_i", "_warm_items", "_pref", "_content"):
            self.__dict__.pop(attr, None)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        net: _Towers = self.modules_["net"]  # type: ignore[assignment]
        opt = self.optimizers_["adam"]
        dev, gen = self.device_, self.torch_gen_
        order = torch.from_numpy(self.np_rng_.permutation(len(self._pairs_u))).to(dev)
        total, n = torch.zeros((), device=dev, dtype=torch.float64), 0
        bs = int(self.batch_size)
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            users = self._pairs_u[idx].repeat(2)  # (2b,): each pair and the same user with a random item
            rand = self._warm_items[torch.randint(len(self._warm_items), (len(idx),), generator=gen, device=dev)]
            items = torch.cat([self._pairs_i[idx], rand])  # (2b,)
            keep = (torch.rand(len(items), generator=gen, device=dev) >= float(self.dropout)).float()  # (2b,)
            with torch.no_grad():
                target = (net.user_pref[users] * net.item_pref[items]).sum(dim=1)  # the CF scores
            loss = (self._call("net", "pair_scores", users, items, keep) - target).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach().double() * len(items)
            n += len(items)
        return {"loss": float(total / max(n, 1))}

    # ------------------------------------------------------------------ score
    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        net: _Towers = self.modules_["net"]  # type: ignore[assignment]
        warm = torch.as_tensor(self.warm_, device=users.device).float()[:, None]  # (n_items, 1)
        v = net.item_vectors(net.item_pref * warm, net.item_content)  # (n_items, out)
        return net.user(net.user_pref[users]) @ v.T  # (n, n_items)

    def _score_raw(self, users: np.ndarray) -> np.ndarray:
        return TorchRecommender._score(self, users)

    def _score_content(self, users: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
        net: _Towers = self.modules_["net"]  # type: ignore[assignment]
        net.eval()
        content = torch.from_numpy(self._reduce(features)).to(self.device_)  # (m, d)
        with torch.no_grad():
            pref = torch.zeros((features.shape[0], net.item_pref.shape[1]), device=self.device_)
            v = net.item_vectors(pref, content)  # (m, out)
            u = net.user(net.user_pref[torch.as_tensor(users, device=self.device_)])  # (n, out)
            return (u @ v.T).float().cpu().numpy()

    # ------------------------------------------------------------------ state
    def _hybrid_state(self) -> dict[str, np.ndarray]:
        return {**TorchRecommender._state(self), "projection": self.projection_, "idf": self.idf_}

    def _set_hybrid_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        proj = self._expect_shape(arrays, "projection", (self.n_features, int(arrays["projection"].shape[1])))
        self.projection_ = np.asarray(proj, dtype=np.float32)
        self.idf_ = np.asarray(self._expect_shape(arrays, "idf", (self.n_features,)), dtype=np.float32)
        f = int(self._expect_shape(arrays, "net/user_pref", (self.n_users, int(arrays["net/user_pref"].shape[1])))
                .shape[1])
        self._dims = (f, int(self.projection_.shape[1]))
        TorchRecommender._set_state(self, {k: v for k, v in arrays.items() if k not in ("projection", "idf")},
                                    meta)
