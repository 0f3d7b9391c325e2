"""GAR: a generator of cold-item embeddings against a recommender (Chen et al., SIGIR 2022).

Hao Chen, Zefan Wang, Feiran Huang, Xiao Huang, Yue Xu, Yishi Lin, Peng He, Zhoujun Li. "Generative
Adversarial Framework for Cold-Start Item Recommendation". SIGIR 2022. The losses below follow the
authors' TensorFlow code (zfnWong/GAR, ``GAR/GAR.py``), which is where the exact form is stated.

Inputs (fixed during training). A pretrained factor model, the *backbone* (``bpr`` or ``ials`` from the
registry, fitted first on the same training data), gives user embeddings ``e_u`` ``(n_users, f)`` and warm
item embeddings ``e_i`` ``(n_items, f)`` (:func:`~gan4rec.models.hybrid.common.cf_factors`), rescaled so
that the warm items' embeddings have unit root mean square (the users' by the inverse, so ``e_u . e_i``
is unchanged): the L1 term below then has the same weight whatever the backbone's scale (iALS factors
are of order 0.05, where it would vanish next to the adversarial term). Each item has a content code
``x_i`` ``(n_items, k)`` (:class:`~gan4rec.models.hybrid.gan_parts.ContentCodes`).

Players::

    generator     G(x_i)       = MLP_G(x_i)                         (b, k) -> (b, f)
    recommender   R(u, i)      = MLP_U(e_u) . MLP_I(e_i)            (b, f), (b, f) -> (b,)

``MLP_U`` and ``MLP_I`` are towers with input batch norm (:class:`~gan4rec.models.hybrid.gan_parts.Tower`).
For a batch of training pairs ``(u, i)`` with one warm item ``j`` that ``u`` did not interact with, drawn
uniformly, each step updates R then G (one Adam each):

    R minimises  L_R = mean_b softplus(-(R(u, e_i) - (1 - beta) R(u, G(x_i)) - beta R(u, e_j)))
                       + reg * sum |W_R|^2 / 2
    G minimises  L_G = (1 - alpha) mean_b softplus(-(R(u, G(x_i)) - R(u, e_i)))       (adversarial)
                       + alpha mean_{b, f} |G(x_i) - e_i|                              (L1 regression)
                       + reg * sum |W_G|^2 / 2

R learns to rank the real embedding of an item its user interacted with above the generated one (and, with
weight ``beta``, above a negative item); G learns to make its embedding rank as high as the real one,
plus a plain content-to-embedding L1 regression. In R's step ``G(x_i)`` is a constant (G in eval mode);
in G's step R is fixed (eval mode: no dropout, batch norm from its running statistics) and only G's
optimiser steps. ``alpha = 1`` is the regression-only ablation (registered as ``gar-reg``): the
adversarial term is then not computed at all, so G's updates are exactly those of L1 regression onto
``e_i`` and do not depend on R.

Scores. Warm items keep their real embedding, cold items (and new items) get the generated one, and
both go through the recommender's towers::

    s(u, i) = MLP_U(e_u) . MLP_I(w_i),   w_i = e_i if i is warm else G(x_i)

so warm items are ranked by R (not by the backbone); ``score_with="backbone"`` scores
``s(u, i) = e_u . w_i`` instead (warm items as the backbone ranks them). The cold scores are then calibrated by
``cold_scale`` / ``cold_offset`` (:class:`~gan4rec.models.hybrid.common.HybridRecommender`).

Epochs and validation. An epoch visits every training pair once in random order (mini-batches of
``batch_size``; a last batch of one pair is skipped, batch norm needs two rows). The shared loop
validates every ``eval_every`` epochs on the cold validation task when ``valid`` holds interactions on
items without training interactions (as the authors' code validates), otherwise on the warm one
(:func:`~gan4rec.models.hybrid.gan_parts.loop_validation`), keeps the best epoch and stops early.

Faithfulness. As the original: Xavier-uniform weights, ``tanh`` hidden layers of 200 and 200 units with
batch norm, dropout 0.1 (G) and 0.5 (R), Adam with learning rate 1e-3 for both players, L2 1e-3 on the
weight matrices, batches of 1024, ``alpha = 0.05`` and ``beta = 0.1`` (the defaults of the final code).
Differences: content enters as a truncated SVD of its TF-IDF rows fitted on warm items (the authors use
precomputed 300-dimensional content), the backbone is ours, and negatives are exact unobserved warm items.
Without item features every item has the same content, so cold items all score alike.
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
from gan4rec.data.sampling import NegativeSampler
from gan4rec.errors import ArtifactError, DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.hybrid.common import WEIGHTINGS, HybridRecommender
from gan4rec.models.hybrid.gan_parts import (
    BACKBONES,
    ContentCodes,
    Tower,
    check_layers,
    fit_backbone,
    fit_seed,
    loop_validation,
    mask_scores,
)
from gan4rec.models.torch_base import TorchRecommender, check_float, check_int

__all__ = ["GAR", "SCORERS", "GARReg"]

log = logging.getLogger(__name__)

#: How items are scored: through the recommender's towers (the authors' final code) or by the backbone's
#: dot product with generated embeddings for cold items (their first code, ``GAR/main.py``).
SCORERS: tuple[str, ...] = ("recommender", "backbone")


class GAR(HybridRecommender, TorchRecommender):
    """GAR (Chen et al., SIGIR 2022): a content-to-embedding generator against a recommender; see the module docstring.

    Parameters
    ----------
    item_features
        Feature name(s) to read, ``None`` for all (see :mod:`gan4rec.models.hybrid.common`).
    backbone, backbone_params
        The pretrained factor model (``"bpr"`` or ``"ials"``) and its params over its defaults.
    content_dim, weighting
        Width of the content codes (truncated SVD) and the weighting of the feature columns
        (``"tfidf"`` or ``"none"``).
    alpha
        Weight of the L1 regression in G's loss, ``1 - alpha`` that of the adversarial term; ``1`` is the
        regression-only ablation.
    beta
        Weight of the negative item in R's loss (``1 - beta`` that of the generated one).
    g_hidden, d_hidden
        Hidden layer sizes of G and of each of R's towers (an int or a list). G's output is as wide as
        the backbone's factors, a tower's as its last hidden layer.
    g_dropout, d_dropout
        Dropout of the hidden layers of G and R.
    g_lr, d_lr
        Adam learning rates of G and R.
    reg
        L2 coefficient on the weight matrices of both players (``reg * sum W^2 / 2``).
    batch_size
        Training pairs per step.
    epochs, eval_every, patience
        Maximum epochs; validate every ``eval_every`` epochs; stop after ``patience`` validations without
        improvement (``None``: run all). The best validated epoch's weights are kept.
    score_with
        ``"recommender"``: ``s(u, i) = MLP_U(e_u) . MLP_I(w_i)`` (the authors' final code);
        ``"backbone"``: ``s(u, i) = e_u . w_i``, warm items keep the backbone's scores and cold items are
        scored by the backbone with their generated embedding (the authors' first code). Scoring only:
        training is the same; validation during fit scores this way too.
    cold_scale, cold_offset
        Calibration of cold-item scores (:func:`~gan4rec.models.hybrid.common.calibrate`).
    device, random_state, n_threads
        As in :class:`~gan4rec.models.baselines.bpr.BPR`; the backbone gets the same ``random_state``.
    """

    name = "gar"
    adversarial = True
    search_space: ClassVar[SearchSpace] = {
        "alpha": {"type": "float", "low": 0.01, "high": 0.9, "log": True},
        "beta": {"type": "float", "low": 0.0, "high": 0.9},
        "g_lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "d_lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "reg": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "content_dim": {"type": "categorical", "choices": [64, 128, 300]},
    }

    user_emb_: np.ndarray  # (n_users, f) backbone user factors
    item_emb_: np.ndarray  # (n_items, f) backbone item factors (rows of cold items unused)
    codes_: ContentCodes
    _item_reps: torch.Tensor | None = None  # (n_items, d) MLP_I(w_i) of the current weights, eval mode
    _valid_masked: np.ndarray | None = None  # (n_items,) items the running fit's validation never ranks

    def __init__(
        self,
        *,
        item_features: str | Sequence[str] | None = None,
        backbone: str = "bpr",
        backbone_params: dict[str, Any] | None = None,
        content_dim: int = 300,
        weighting: str = "tfidf",
        alpha: float = 0.05,
        beta: float = 0.1,
        g_hidden: int | Sequence[int] = 200,
        d_hidden: int | Sequence[int] = 200,
        g_dropout: float = 0.1,
        d_dropout: float = 0.5,
        g_lr: float = 1e-3,
        d_lr: float = 1e-3,
        reg: float = 1e-3,
        batch_size: int = 1024,
        epochs: int = 100,
        eval_every: int = 1,
        patience: int | None = 10,
        score_with: str = "recommender",
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
        self.alpha = alpha
        self.beta = beta
        self.g_hidden = g_hidden
        self.d_hidden = d_hidden
        self.g_dropout = g_dropout
        self.d_dropout = d_dropout
        self.g_lr = g_lr
        self.d_lr = d_lr
        self.reg = reg
        self.batch_size = batch_size
        self.epochs = epochs
        self.eval_every = eval_every
        self.patience = patience
        self.score_with = score_with
        self.cold_scale = cold_scale
        self.cold_offset = cold_offset
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads

    # ------------------------------------------------------------------ params
    def _check_params(self) -> None:
        if self.backbone not in BACKBONES:
            raise DataError(f"backbone={self.backbone!r}; expected one of {', '.join(BACKBONES)}")
        if self.weighting not in WEIGHTINGS:
            raise DataError(f"weighting={self.weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
        if self.score_with not in SCORERS:
            raise DataError(f"score_with={self.score_with!r}; expected one of {', '.join(SCORERS)}")
        check_int(self.content_dim, "content_dim")
        check_float(self.alpha, "alpha", high=1.0)
        check_float(self.beta, "beta", high=1.0)
        check_float(self.g_dropout, "g_dropout", high=1.0, high_open=True)
        check_float(self.d_dropout, "d_dropout", high=1.0, high_open=True)
        check_float(self.g_lr, "g_lr", low_open=True)
        check_float(self.d_lr, "d_lr", low_open=True)
        check_float(self.reg, "reg")
        check_layers(self.g_hidden, "g_hidden")
        check_layers(self.d_hidden, "d_hidden")

    # ------------------------------------------------------------------ the players
    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        f, k = self.user_emb_.shape[1], self.codes_.dim
        g_sizes = [*check_layers(self.g_hidden, "g_hidden"), f]
        d_hidden = check_layers(self.d_hidden, "d_hidden")
        d_sizes = [*d_hidden, d_hidden[-1]]  # the towers' output is as wide as their last hidden layer
        return {
            "generator": Tower(k, g_sizes, p_drop=float(self.g_dropout), bn_input=False),
            "user_tower": Tower(f, d_sizes, p_drop=float(self.d_dropout), bn_input=True),
            "item_tower": Tower(f, d_sizes, p_drop=float(self.d_dropout), bn_input=True),
        }

    def _build_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        rec = [*modules["user_tower"].parameters(), *modules["item_tower"].parameters()]
        return {"g": torch.optim.Adam(modules["generator"].parameters(), lr=float(self.g_lr)),
                "d": torch.optim.Adam(rec, lr=float(self.d_lr))}

    def _tower(self, name: str) -> Tower:
        return cast(Tower, self.modules_[name])

    def _rec(self, users: torch.Tensor, items: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """``R(u, i)`` of aligned embedding rows ``(b, f)``, ``(b, f)`` -> ``(b,)``."""
        return (self._tower("user_tower")(users, gen) * self._tower("item_tower")(items, gen)).sum(dim=1)

    def _rec_loss(self, eu: torch.Tensor, ei: torch.Tensor, ej: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """One step of R: ``L_R`` on a batch (user, positive, negative embeddings ``(b, f)``, codes ``(b, k)``)."""
        g = self._tower("generator")
        g.eval()
        with torch.no_grad():
            fake = g(xi)  # (b, f), a constant for R
        for name in ("user_tower", "item_tower"):
            self.modules_[name].train()
        b = len(eu)
        # One pass over the three item sets, as the original (batch norm sees all 3b rows).
        r = self._rec(eu.repeat(3, 1), torch.cat([ei, ej, fake]), self.torch_gen_).view(3, b)
        beta = float(self.beta)
        loss = F.softplus(-(r[0] - (1.0 - beta) * r[2] - beta * r[1])).mean()
        return loss + float(self.reg) * (self._tower("user_tower").weight_sq()
                                         + self._tower("item_tower").weight_sq())

    def _gen_loss(self, eu: torch.Tensor, ei: torch.Tensor, xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of G: ``(L_G, the L1 term)`` on a batch."""
        g = self._tower("generator")
        g.train()
        fake = g(xi, self.torch_gen_)  # (b, f)
        sim = (fake - ei).abs().mean()
        alpha = float(self.alpha)
        loss = alpha * sim + float(self.reg) * g.weight_sq()
        if alpha < 1.0:
            for name in ("user_tower", "item_tower"):
                self.modules_[name].eval()
            adv = F.softplus(-(self._rec(eu, fake, None) - self._rec(eu, ei, None))).mean()
            loss = loss + (1.0 - alpha) * adv
        return loss, sim

    # ------------------------------------------------------------------ training
    def _fit_hybrid(self, train: Interactions, valid: Interactions | None) -> None:
        self._check_common_params()
        self._check_params()
        seed = fit_seed(self.random_state)
        backbone_refit, user, item = fit_backbone(
            self.backbone, self.backbone_params, train, valid, self.warm_, random_state=seed, device=self.device)
        # Warm item embeddings to unit RMS (users by the inverse: the backbone's scores are unchanged), so
        # the L1 term weighs the same for any backbone (iALS factors are of order 0.05).
        rms = float(np.sqrt(np.mean(np.square(item[self.warm_], dtype=np.float64)))) if self.warm_.any() else 1.0
        rms = rms if rms > 0 else 1.0
        self.user_emb_, self.item_emb_ = (user * rms).astype(np.float32), (item / rms).astype(np.float32)
        self.backbone_refit_ = backbone_refit
        self.codes_ = ContentCodes.fit(self.features_, self.warm_, int(self.content_dim), self.weighting, seed)
        loop_valid, self._valid_masked = loop_validation(valid, self.warm_)
        self._item_reps = None
        try:
            TorchRecommender._fit(self, train, loop_valid)
        finally:
            self._item_reps = None  # the loop restored the best weights after the last validation
            self._valid_masked = None

    def _prepare(self, train: Interactions) -> None:
        dev = self.device_
        self._user_t = torch.as_tensor(self.user_emb_, device=dev)  # (n_users, f)
        self._item_t = torch.as_tensor(self.item_emb_, device=dev)  # (n_items, f)
        self._codes_t = torch.as_tensor(self.codes_.encode(self.features_), device=dev)  # (n_items, k)
        self._pair_users = train.user_index()  # (nnz,) int64
        self._pair_items = np.asarray(train.indices, dtype=np.int64)
        warm = np.flatnonzero(self.warm_)
        position = np.cumsum(self.warm_) - 1  # item -> its column among the warm items
        self._warm_items = warm
        self._sampler = NegativeSampler(train.indptr, position[train.indices], len(warm))

    def _release(self) -> None:
        super()._release()
        for name in ("_pair_users", "_pair_items", "_sampler"):
            self.__dict__.pop(name, None)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self._item_reps = None
        order = self.np_rng_.permutation(len(self._pair_users))
        bs = int(self.batch_size)
        opt_g, opt_d = self.optimizers_["g"], self.optimizers_["d"]
        d_sum = g_sum = sim_sum = 0.0
        steps = 0
        for start in range(0, len(order), bs):
            rows = order[start:start + bs]
            if len(rows) < 2:
                continue  # batch norm needs two rows
            users = self._pair_users[rows]
            neg = self._warm_items[self._sampler.sample(users, self.np_rng_)]
            u = torch.as_tensor(users, device=self.device_)
            i = torch.as_tensor(self._pair_items[rows], device=self.device_)
            j = torch.as_tensor(neg, device=self.device_)
            eu, ei, ej, xi = self._user_t[u], self._item_t[i], self._item_t[j], self._codes_t[i]
            opt_d.zero_grad(set_to_none=True)
            d_loss = self._rec_loss(eu, ei, ej, xi)
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            g_loss, sim = self._gen_loss(eu, ei, xi)
            g_loss.backward()
            opt_g.step()
            d_sum += float(d_loss.detach())
            g_sum += float(g_loss.detach())
            sim_sum += float(sim.detach())
            steps += 1
        n = max(steps, 1)
        return {"d_loss": d_sum / n, "g_loss": g_sum / n, "l1": sim_sum / n}

    # ------------------------------------------------------------------ scoring
    def _reps(self) -> torch.Tensor:
        """``(n_items, d)``: ``MLP_I(w_i)`` with ``w_i`` real for warm items, generated for the others."""
        if self._item_reps is None or getattr(self, "_reps_for", None) != self.score_with:
            codes = getattr(self, "_codes_t", None)
            if codes is None:
                codes = self._codes_t = torch.as_tensor(self.codes_.encode(self.features_), device=self.device_)
            items = getattr(self, "_item_t", None)
            if items is None:
                items = self._item_t = torch.as_tensor(self.item_emb_, device=self.device_)
            warm = torch.as_tensor(self.warm_, device=self.device_)
            w = torch.where(warm[:, None], items, self._tower("generator")(codes))  # (n_items, f)
            self._item_reps = self._item_side(w)
            self._reps_for = self.score_with
        return self._item_reps

    def _user_reps(self, users: torch.Tensor) -> torch.Tensor:
        u = getattr(self, "_user_t", None)
        if u is None:
            u = self._user_t = torch.as_tensor(self.user_emb_, device=self.device_)
        return u[users] if self.score_with == "backbone" else self._tower("user_tower")(u[users])  # (n, d)

    def _item_side(self, w: torch.Tensor) -> torch.Tensor:
        """Item embeddings ``(m, f)`` as scored: through ``MLP_I``, or as they are (``score_with="backbone"``)."""
        return w if self.score_with == "backbone" else self._tower("item_tower")(w)

    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        return self._user_reps(users) @ self._reps().T  # (n, n_items)

    def valid_score(self, users: np.ndarray) -> torch.Tensor:
        """Validation scores with the items outside the validated task at ``-inf``."""
        return mask_scores(TorchRecommender.valid_score(self, users), self._valid_masked)

    def _score_raw(self, users: np.ndarray) -> np.ndarray:
        return TorchRecommender._score(self, users)

    def _score_content(self, users: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
        for m in self.modules_.values():
            m.eval()
        with torch.no_grad():
            codes = torch.as_tensor(self.codes_.encode(features), device=self.device_)  # (m, k)
            reps = self._item_side(self._tower("generator")(codes))  # (m, d)
            u = self._user_reps(torch.as_tensor(users, device=self.device_))
            return (u @ reps.T).float().cpu().numpy()

    def refit_params(self) -> dict[str, Any]:
        """The best epoch, and the backbone's own best epoch, for a refit on the full training data."""
        out = TorchRecommender.refit_params(self)
        extra = getattr(self, "backbone_refit_", {})
        if extra:
            out["backbone_params"] = {**(self.backbone_params or {}), **extra}
        return out

    # ------------------------------------------------------------------ state
    def _hybrid_state(self) -> dict[str, np.ndarray]:
        # Scalars (batch norm's step counters) as 1-element arrays, the shape TorchRecommender loads back.
        torch_state = {k: np.atleast_1d(v) for k, v in TorchRecommender._state(self).items()}
        return {**torch_state, **self.codes_.state(),
                "backbone.user": self.user_emb_, "backbone.item": self.item_emb_}

    def _set_hybrid_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        arrays = dict(arrays)
        try:
            self.user_emb_ = np.asarray(arrays.pop("backbone.user"), dtype=np.float32)
            self.item_emb_ = np.asarray(arrays.pop("backbone.item"), dtype=np.float32)
        except KeyError as e:
            raise ArtifactError(f"saved {self.name} model lacks the backbone factors ({e})") from None
        f = self.user_emb_.shape[1] if self.user_emb_.ndim == 2 else -1
        if self.user_emb_.shape != (self.n_users, f) or self.item_emb_.shape != (self.n_items, f):
            raise ArtifactError(f"saved {self.name} backbone factors have shapes {self.user_emb_.shape}, "
                                f"{self.item_emb_.shape}; expected ({self.n_users}, f), ({self.n_items}, f)")
        self.codes_ = ContentCodes.from_state(arrays, self.weighting, self.n_features)
        arrays.pop("codes.idf")
        arrays.pop("codes.components")
        for name in ("_user_t", "_item_t", "_codes_t"):
            self.__dict__.pop(name, None)
        self._item_reps = None
        TorchRecommender._set_state(self, arrays, meta)


class GARReg(GAR):
    """GAR's ``alpha = 1`` ablation: the same towers, G trained by L1 regression onto the warm embeddings only.

    Registered separately (``gar-reg``) so that a comparison can run both. R still trains against the
    generated embeddings, but nothing adversarial reaches G, so it is not counted as a GAN.
    """

    name = "gar-reg"
    adversarial = False
    search_space: ClassVar[SearchSpace] = {k: v for k, v in GAR.search_space.items() if k != "alpha"}

    def __init__(
        self,
        *,
        item_features: str | Sequence[str] | None = None,
        backbone: str = "bpr",
        backbone_params: dict[str, Any] | None = None,
        content_dim: int = 300,
        weighting: str = "tfidf",
        alpha: float = 1.0,
        beta: float = 0.1,
        g_hidden: int | Sequence[int] = 200,
        d_hidden: int | Sequence[int] = 200,
        g_dropout: float = 0.1,
        d_dropout: float = 0.5,
        g_lr: float = 1e-3,
        d_lr: float = 1e-3,
        reg: float = 1e-3,
        batch_size: int = 1024,
        epochs: int = 100,
        eval_every: int = 1,
        patience: int | None = 10,
        score_with: str = "recommender",
        cold_scale: float = 1.0,
        cold_offset: float = 0.0,
        device: str | None = None,
        random_state: int | np.random.Generator | None = None,
        n_threads: int | None = 1,
    ) -> None:
        super().__init__(
            item_features=item_features, backbone=backbone, backbone_params=backbone_params,
            content_dim=content_dim, weighting=weighting, alpha=alpha, beta=beta, g_hidden=g_hidden,
            d_hidden=d_hidden, g_dropout=g_dropout, d_dropout=d_dropout, g_lr=g_lr, d_lr=d_lr, reg=reg,
            batch_size=batch_size, epochs=epochs, eval_every=eval_every, patience=patience,
            score_with=score_with, cold_scale=cold_scale, cold_offset=cold_offset, device=device, random_state=random_state,
            n_threads=n_threads,
        )
