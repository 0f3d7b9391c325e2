"""IRGAN for item recommendation (Wang et al., SIGIR 2017): a minimax game with a policy-gradient generator.

Two players score ``(user, item)`` pairs (:class:`~gan4rec.models.baselines.bpr.MFScorer` with an item bias
by default, or :class:`MLPScorer`) and play

    min_G max_D  E_{i ~ p_data(.|u)} [log D(u, i)] + E_{j ~ p_G(.|u)} [log(1 - D(u, j))]

- **G** is a softmax over the catalogue per user, ``p_G(j | u) = softmax_j(g(u, j) / g_tau)`` (restricted
  to the user's unobserved training items with ``exclude_seen=True``). Its samples are discrete, so G
  learns by REINFORCE: per user, ``-mean_k (r_k - b_k) w_k log p_G(j_k | u)`` over ``g_samples * |pos(u)|``
  sampled items ``j_k``, each user weighing the same (the original made one update per user).
- **Reward** ``r = 2 (sigmoid(d(u, j)) - 0.5)`` (``reward="sigmoid"``, the original code) or
  ``r = log sigmoid(d(u, j)) = log D(u, j)`` (``reward="log"``, the non-saturating GAN objective).
- **Baseline** ``b_k``: ``"mean"`` (default) is the mean reward of the user's *other* samples in the batch
  (leave-one-out, so the gradient stays unbiased); ``"ema"`` an exponential moving average of the batch
  mean reward (momentum ``baseline_momentum``); ``"none"`` is the original code.
- **Importance sampling** (``importance_sampling = lam > 0``, the original code's undocumented trick with
  ``lam = 0.2``): G's items are drawn from ``q = (1 - lam) p_G + lam * uniform(pos(u))`` and weighted by
  ``w = p_G / q``, which steers exploration towards the user's positives. ``lam = 0`` samples ``p_G``
  itself (``w = 1``).
- **D** is trained with sigmoid cross-entropy on every observed pair (label 1) against one item per
  observed pair drawn from ``softmax(g(u, .) / tau)`` (label 0; the original ``tau = 0.2``), redrawn
  every ``d_resample_every`` D-epochs, plus ``d_l2`` times the squared norms of the rows each batch touches.

**One epoch of the shared loop is one round**: ``d_epochs`` D-epochs (each one pass over the
``2 * nnz`` labelled pairs, negatives drawn anew at D-epochs 0, ``d_resample_every``, ... of the round)
then ``g_epochs`` G-epochs (each one pass over the users with a training item). The original code played
15 rounds of 100 D-epochs and 50 G-epochs, one SGD step per user or per 16 pairs; here steps are batched
and the defaults (10 rounds of 2 + 2 epochs, Adam) are sized for a CPU budget.
Validation, early stopping, the restore of the best round, checkpoints and resume are the shared
:func:`~gan4rec.train.loop.fit_loop`'s: model choice never looks at test data (the original code picked
its best round by test precision).

**Pre-training.** G starts from BPR-MF (:class:`~gan4rec.models.baselines.bpr.BPR`'s own training, run
inside :meth:`IRGAN.fit` on the same training data at the start of the first round, early-stopped on the
validation data when given, at most ``pretrain_epochs`` epochs; ``pretrain_epochs=0`` starts from random
weights) or from ``warm_start``, a saved ``bpr`` model fitted on exactly this training data. With an int
``random_state`` the pre-training is exactly the ``bpr`` model of that seed and settings, so IRGAN and
BPR-MF compare seed by seed (paired). With ``pretrain_d=True`` D starts as a copy of the pre-trained G.
``epochs=0`` returns the pre-trained start itself (no adversarial round), to measure what the adversarial
phase adds. The kept model always comes from a round >= 1: the loop validates rounds, never the start,
whose validation metric is recorded in the first history row (``start_valid_<metric>``) for comparison.
:meth:`IRGAN.refit_params` pins both the round count and the pre-training epoch count that validation
chose.

Pre-training is a pure function of the data, the pre-training settings, the seed, the device and the
thread count; its result is memoised per process (at most 256 MiB of weights), so tuning trials that
share those settings pay for it once. The memoised result is bit-identical to recomputing it. The
pre-training and its memo live in :mod:`~gan4rec.models.gan.irgan_pretrain`, the MLP scorer in
:mod:`~gan4rec.models.gan.irgan_scorer`.

**Distributed** (see :mod:`gan4rec.train.distributed`): both players are wrapped in DDP and each step
calls only the player it trains through its wrapper; the other player is used as the plain module
(``D.module``), under ``no_grad``, never by toggling ``requires_grad`` on a wrapped module. D's phase is
sharded by user: each rank owns a fixed share of the users with a positive, draws G's negatives for
their pairs only (so the softmax over the catalogue is split between the ranks) and shuffles their
labelled pairs with its own generator, padded to the largest rank's count so that all ranks take the
same number of steps. G's phase shards the epoch's shared permutation of the users. ``d_batch_size`` and
``g_batch_users`` are per rank; the EMA baseline averages the batch rewards of all ranks. The BPR
pre-training is itself distributed; its start is validated on rank 0.

History per round: ``d_loss`` (mean BCE), ``d_real`` / ``d_fake`` (mean ``sigmoid(d)`` on the observed pairs
/ on G's samples, over the round's D-steps), ``g_loss`` (the REINFORCE surrogate: with a baseline its
advantages are centred, so it is near 0 whenever the rewards are alike, and it is not meant to decrease),
``reward`` (mean raw reward of G's samples), ``g_entropy`` (mean entropy of G's policy, nats),
``fake_pos_rate`` (share of G's D-step samples that are training positives; left out with
``exclude_seen=True``, which makes it 0), ``adv_seconds`` (time of the round's D and G steps), plus the
loop's ``valid_<metric>``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.baselines.bpr import MFScorer
from gan4rec.models.gan.irgan_pretrain import Pretraining
from gan4rec.models.gan.irgan_scorer import MLPScorer
from gan4rec.models.torch_base import TorchRecommender, check_float, check_int
from gan4rec.train import distributed
from gan4rec.train.loop import parse_metric, resolve_device

__all__ = ["IRGAN", "MLPScorer"]

logger = logging.getLogger(__name__)

_SCORERS = ("mf", "mlp")
_OPTIMIZERS = ("adam", "sgd")
_REWARDS = ("sigmoid", "log")
_BASELINES = ("mean", "ema", "none")
_PLAYERS = ("generator", "discriminator")


@dataclass
class _Totals:
    """Sums over one round's steps, kept on the device so that a round synchronises once, at the end."""

    d_loss: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor
    fake_pos: torch.Tensor
    g_loss: torch.Tensor
    reward: torch.Tensor
    g_entropy: torch.Tensor
    g_samples: torch.Tensor
    d_pairs: int = 0
    n_draws: int = 0
    g_users: int = 0

    @classmethod
    def zeros(cls, device: torch.device) -> _Totals:
        def z() -> torch.Tensor:
            return torch.zeros((), dtype=torch.float64, device=device)

        return cls(z(), z(), z(), z(), z(), z(), z(), z())

    def row(self) -> dict[str, float]:
        """The round's history entries (see the module docstring)."""
        half = max(self.d_pairs // 2, 1)  # every D-epoch holds as many fake pairs as real ones
        return {
            "d_loss": float(self.d_loss) / max(self.d_pairs, 1),
            "d_real": float(self.d_real) / half,
            "d_fake": float(self.d_fake) / half,
            "fake_pos_rate": float(self.fake_pos) / max(self.n_draws, 1),
            "g_loss": float(self.g_loss) / max(self.g_users, 1),
            "reward": float(self.reward) / max(float(self.g_samples), 1.0),
            "g_entropy": float(self.g_entropy) / max(self.g_users, 1),
        }


def _is_proposal(p: torch.Tensor, seen: torch.Tensor, lam: float) -> torch.Tensor:
    """The original code's proposal ``(1 - lam) p + lam * uniform(positives)``, row-wise.

    Parameters
    ----------
    p
        ``(b, n_items)`` G's policy.
    seen
        ``(b, n_items)`` 0/1 training positives; every row holds at least one.
    lam
        Weight of the uniform-over-positives component.
    """
    return (1 - lam) * p + lam * seen / seen.sum(dim=1, keepdim=True)


def _loo_baseline(reward: torch.Tensor, keep: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Leave-one-out baseline: for each sample, the mean reward of the user's other kept samples.

    ``reward`` and ``keep`` (0/1) are ``(b, m)``, ``counts`` ``(b,)`` the kept samples per row; a row with a
    single sample gets baseline 0. Independent of the sample it is subtracted from, so the policy
    gradient stays unbiased.
    """
    masked = reward * keep  # (b, m)
    total = masked.sum(dim=1, keepdim=True)  # (b, 1)
    return (total - masked) / (counts[:, None] - 1).clamp(min=1)


def _csr_entries(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Indices of the stored entries of ``rows`` (ascending) in a CSR structure, row by row."""
    starts = np.asarray(indptr, dtype=np.int64)[rows]
    lengths = np.asarray(indptr, dtype=np.int64)[rows + 1] - starts
    offsets = np.cumsum(lengths) - lengths  # where each row starts in the output
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


class IRGAN(Pretraining, TorchRecommender):
    """IRGAN (Wang et al. 2017): a softmax generator trained by REINFORCE against a pairwise discriminator.

    See the module docstring for the game, the definition of one epoch (a round), the rewards, baselines,
    importance sampling and pre-training. :attr:`search_space` leaves out ``recommend_with``: ranking with
    D scored 0.008-0.013 validation NDCG@20 in 3 of its 4 trials of the ML-100K search (generator: 0.273-
    0.280; ``benchmarks/results/tune-irgan.json``); :attr:`search_space_wide` keeps it.

    Parameters
    ----------
    scorer
        ``"mf"`` (embeddings plus an item bias, as the original) or ``"mlp"`` (:class:`MLPScorer`), both
        players.
    n_factors
        G's embedding size (that of its BPR pre-training).
    d_factors
        D's embedding size; ``None``: ``n_factors``.
    mlp_hidden
        Hidden width of the MLP scorer.
    g_lr, d_lr
        Learning rates of G and D.
    g_l2, d_l2
        L2 weights on the squared norms of the rows each batch touches, per sample (as BPR).
    g_optimizer, d_optimizer
        ``"adam"`` or ``"sgd"``.
    epochs
        Maximum number of rounds (loop epochs); ``0`` returns the pre-trained start.
    d_epochs, d_resample_every, d_batch_size
        D-epochs per round, D-epochs between two draws of G's negatives, labelled pairs per D-step.
    g_epochs, g_batch_users, g_samples
        G-epochs per round, users per G-step, items sampled per observed item of the user per G-epoch
        (the original: 2).
    tau
        Temperature of G's softmax when drawing D's negatives (the original: 0.2).
    g_tau
        Temperature of G's policy in the G-step (the original: 1).
    reward
        ``"sigmoid"``: ``2 (sigmoid(d) - 0.5)`` (the original); ``"log"``: ``log sigmoid(d)``.
    baseline, baseline_momentum
        ``"mean"`` (leave-one-out mean of the user's samples), ``"ema"`` (moving average with this
        momentum) or ``"none"``.
    importance_sampling
        Weight ``lam`` of the uniform-over-positives component of G's proposal (the original: 0.2); ``0``
        samples G's policy directly. Needs ``exclude_seen=False``.
    exclude_seen
        Restrict G's policy and D's negatives to each user's unobserved training items (the original
        samples the whole catalogue, positives included).
    recommend_with
        ``"generator"`` or ``"discriminator"``: the player whose scores rank items.
    pretrain_epochs, pretrain_lr, pretrain_l2, pretrain_batch_size, pretrain_patience
        BPR pre-training of G: maximum epochs (``0``: none), Adam learning rate, L2, batch size, and
        patience in validations (every ``pretrain_eval_every`` epochs) when validation data is given.
    pretrain_d
        Start D as a copy of the pre-trained G (needs ``d_factors`` equal to ``n_factors``).
    warm_start
        Folder of a saved ``bpr`` model (``gan4rec train --save``) fitted on exactly this training data,
        used instead of pre-training G; its ``n_factors`` must equal ``n_factors`` (``scorer="mf"``).
    eval_every, patience
        Validate every ``eval_every`` rounds; stop after ``patience`` validations without improvement.
    device, random_state, n_threads
        As in :class:`~gan4rec.models.baselines.bpr.BPR`.
    precision
        ``"fp32"`` or ``"bf16"`` (CUDA only): the adversarial rounds run the players' scoring passes (the
        matrix products) under ``torch.autocast`` in bfloat16 and cast the scores back to fp32 before any
        softmax, reward or loss; weights, gradients and optimiser state stay fp32. The BPR pre-training,
        validation and scoring run in fp32.
    """

    name = "irgan"
    #: Devices where ``precision="bf16"`` is allowed (CPU bf16 products are slower than fp32 ones on most
    #: processors; the tests widen this to run the bf16 path on the CPU).
    bf16_devices: ClassVar[tuple[str, ...]] = ("cuda",)
    adversarial = True
    supports_distributed = True
    #: Pre-training validates every this many BPR epochs (BPR's default).
    pretrain_eval_every: ClassVar[int] = 5
    # The adversarial phase only: pre-training takes its settings from a tuned BPR-MF (fixed params).
    # D- and G-epochs per round stay small so that a trial of at most 10 rounds fits in about a minute.
    search_space: ClassVar[SearchSpace] = {
        "g_lr": {"type": "float", "low": 1e-5, "high": 3e-3, "log": True},
        "d_lr": {"type": "float", "low": 1e-5, "high": 3e-3, "log": True},
        "d_l2": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
        "tau": {"type": "float", "low": 0.1, "high": 3.0, "log": True},
        "d_epochs": {"type": "int", "low": 1, "high": 3},
        "g_epochs": {"type": "int", "low": 1, "high": 3},
        "reward": {"type": "categorical", "choices": list(_REWARDS)},
        "exclude_seen": {"type": "categorical", "choices": [True, False]},
        "pretrain_d": {"type": "categorical", "choices": [True, False]},
    }
    search_space_wide: ClassVar[SearchSpace] = {
        **search_space,
        "recommend_with": {"type": "categorical", "choices": list(_PLAYERS)},
    }
    published_configs: ClassVar[tuple[dict[str, Any], ...]] = (
        # The authors' code for MovieLens-100K (github.com/geek-ai/irgan, item_recommendation/cf_gan.py,
        # gen_model.py, dis_model.py; ../shared/ANCHORS.md): MF players of 5 factors with an item bias, plain
        # SGD (lr 0.001) for both; G one update per user over 2 |pos(u)| items drawn from
        # 0.8 p_G + 0.2 uniform(pos(u)), reward 2 (sigmoid(d) - 0.5), no baseline, no L2; D's negatives
        # from softmax(g / 0.2), redrawn every 5 D-epochs, batches of 16 (user, pos, neg) lines = 32
        # labelled pairs (utils.get_batch_data), L2 0.1 / 16 on tf.nn.l2_loss of the batch's rows. TF
        # minimises the sum over the batch, this code the mean: lr 0.001 on a sum of 32 is d_lr 0.032
        # here, and the L2 term is d_l2 = 32 * (0.1 / 16) / 2 = 0.1. Its schedule (15 rounds of 100 D- and
        # 50 G-epochs, hours on a CPU) and its DNS-MF start are not carried over: rounds keep the
        # defaults and G starts from BPR-MF.
        {"n_factors": 5, "g_optimizer": "sgd", "d_optimizer": "sgd", "g_lr": 1e-3, "g_batch_users": 1,
         "g_l2": 0.0, "g_samples": 2, "g_tau": 1.0, "importance_sampling": 0.2, "reward": "sigmoid",
         "baseline": "none", "exclude_seen": False, "d_lr": 0.032, "d_batch_size": 32, "d_l2": 0.1,
         "tau": 0.2, "d_resample_every": 5, "pretrain_d": False, "recommend_with": "generator"},
    )

    def __init__(
        self,
        *,
        scorer: str = "mf",
        n_factors: int = 64,
        d_factors: int | None = None,
        mlp_hidden: int = 64,
        g_lr: float = 1e-4,
        d_lr: float = 1e-3,
        g_l2: float = 0.0,
        d_l2: float = 1e-3,
        g_optimizer: str = "adam",
        d_optimizer: str = "adam",
        epochs: int = 10,
        d_epochs: int = 2,
        d_resample_every: int = 5,
        d_batch_size: int = 2048,
        g_epochs: int = 2,
        g_batch_users: int = 64,
        g_samples: int = 2,
        tau: float = 0.2,
        g_tau: float = 1.0,
        reward: str = "sigmoid",
        baseline: str = "mean",
        baseline_momentum: float = 0.9,
        importance_sampling: float = 0.0,
        exclude_seen: bool = False,
        recommend_with: str = "generator",
        pretrain_epochs: int = 100,
        pretrain_lr: float = 1e-3,
        pretrain_l2: float = 1e-2,
        pretrain_batch_size: int = 1024,
        pretrain_patience: int | None = 5,
        pretrain_d: bool = False,
        warm_start: str | None = None,
        eval_every: int = 1,
        patience: int | None = 3,
        device: str | None = None,
        random_state: int | np.random.Generator | None = None,
        n_threads: int | None = 1,
        precision: str = "fp32",
    ) -> None:
        self.scorer = scorer
        self.n_factors = n_factors
        self.d_factors = d_factors
        self.mlp_hidden = mlp_hidden
        self.g_lr = g_lr
        self.d_lr = d_lr
        self.g_l2 = g_l2
        self.d_l2 = d_l2
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.epochs = epochs
        self.d_epochs = d_epochs
        self.d_resample_every = d_resample_every
        self.d_batch_size = d_batch_size
        self.g_epochs = g_epochs
        self.g_batch_users = g_batch_users
        self.g_samples = g_samples
        self.tau = tau
        self.g_tau = g_tau
        self.reward = reward
        self.baseline = baseline
        self.baseline_momentum = baseline_momentum
        self.importance_sampling = importance_sampling
        self.exclude_seen = exclude_seen
        self.recommend_with = recommend_with
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.pretrain_l2 = pretrain_l2
        self.pretrain_batch_size = pretrain_batch_size
        self.pretrain_patience = pretrain_patience
        self.pretrain_d = pretrain_d
        self.warm_start = warm_start
        self.eval_every = eval_every
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads
        self.precision = precision

    # ------------------------------------------------------------------ params
    def _check_common_params(self) -> None:
        # As the base class, except that epochs=0 (the pre-trained start alone) is allowed.
        check_int(self.epochs, "epochs", low=0)
        check_int(self.eval_every, "eval_every")
        check_int(self.patience, "patience", allow_none=True)
        check_int(self.n_threads, "n_threads", allow_none=True)

    def _check_params(self) -> None:
        for name, value, choices in (
            ("scorer", self.scorer, _SCORERS),
            ("g_optimizer", self.g_optimizer, _OPTIMIZERS),
            ("d_optimizer", self.d_optimizer, _OPTIMIZERS),
            ("reward", self.reward, _REWARDS),
            ("baseline", self.baseline, _BASELINES),
            ("recommend_with", self.recommend_with, _PLAYERS),
            ("precision", self.precision, ("fp32", "bf16")),
        ):
            if value not in choices:
                raise DataError(f"{name}={value!r}; expected one of {', '.join(map(repr, choices))}")
        for name in ("n_factors", "mlp_hidden", "d_epochs", "d_resample_every", "d_batch_size", "g_epochs",
                     "g_batch_users", "g_samples", "pretrain_batch_size"):
            check_int(getattr(self, name), name)
        if self.precision == "bf16" and resolve_device(self.device).type not in self.bf16_devices:
            raise DataError(
                f"precision='bf16' runs on {' or '.join(self.bf16_devices)} only "
                f"(device is {resolve_device(self.device).type}); use precision='fp32' here"
            )
        check_int(self.d_factors, "d_factors", allow_none=True)
        check_int(self.pretrain_epochs, "pretrain_epochs", low=0)
        check_int(self.pretrain_patience, "pretrain_patience", allow_none=True)
        for name in ("g_lr", "d_lr", "tau", "g_tau", "pretrain_lr"):
            check_float(getattr(self, name), name, low_open=True)
        for name in ("g_l2", "d_l2", "pretrain_l2"):
            check_float(getattr(self, name), name)
        check_float(self.baseline_momentum, "baseline_momentum", high=1.0, high_open=True)
        check_float(self.importance_sampling, "importance_sampling", high=1.0, high_open=True)
        for name in ("exclude_seen", "pretrain_d"):
            if not isinstance(getattr(self, name), bool):
                raise DataError(f"{name}={getattr(self, name)!r}; expected true or false")
        if self.importance_sampling > 0 and self.exclude_seen:
            raise DataError(
                f"importance_sampling={self.importance_sampling!r} mixes in the user's positives, which "
                "exclude_seen=True removes from G's policy; set one of them off"
            )
        if self.pretrain_d and self._d_factors() != self.n_factors:
            raise DataError(
                f"pretrain_d=True copies G into D, so d_factors={self.d_factors!r} must equal "
                f"n_factors={self.n_factors!r} (or be None)"
            )
        if self.warm_start is not None:
            if not isinstance(self.warm_start, (str, Path)):
                raise DataError(f"warm_start={self.warm_start!r}; expected the folder of a saved bpr model")
            if self.scorer != "mf":
                raise DataError(f"warm_start needs scorer='mf' (a BPR-MF model), got scorer={self.scorer!r}")

    def _d_factors(self) -> int:
        return int(self.n_factors if self.d_factors is None else self.d_factors)

    # ------------------------------------------------------------------ modules
    def _new_scorer(self, n_users: int, n_items: int, n_factors: int) -> nn.Module:
        if self.scorer == "mlp":
            return MLPScorer(n_users, n_items, n_factors, int(self.mlp_hidden))
        return MFScorer(n_users, n_items, n_factors)

    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        return {
            "generator": self._new_scorer(n_users, n_items, int(self.n_factors)),
            "discriminator": self._new_scorer(n_users, n_items, self._d_factors()),
        }

    def _build_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        def make(kind: str, module: nn.Module, lr: float) -> torch.optim.Optimizer:
            if kind == "sgd":
                return torch.optim.SGD(module.parameters(), lr=lr)
            return torch.optim.Adam(module.parameters(), lr=lr)

        return {
            "generator": make(self.g_optimizer, modules["generator"], float(self.g_lr)),
            "discriminator": make(self.d_optimizer, modules["discriminator"], float(self.d_lr)),
        }

    # ------------------------------------------------------------------ fit
    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        self._train_data, self._valid_data = train, valid
        self._metric = str(getattr(self, "_fit_options", {}).get("metric", "NDCG@20"))
        parse_metric(self._metric)
        self.pretrain_best_epoch_: int | None = None
        self.pretrain_history_: list[dict[str, float]] = []
        self.start_valid_: float | None = None
        try:
            if self.epochs == 0:
                self._fit_start_only(train)
            else:
                super()._fit(train, valid)
        finally:
            for attr in ("_train_data", "_valid_data"):
                self.__dict__.pop(attr, None)

    def _prepare(self, train: Interactions) -> None:
        dev = self.device_
        n_pos = train.user_counts().astype(np.int64)  # (n_users,)
        if self.exclude_seen and (n_pos >= train.n_items).any():
            bad = int(np.flatnonzero(n_pos >= train.n_items)[0])
            raise DataError(
                f"exclude_seen=True but user {bad} has interacted with all {train.n_items} items, "
                "leaving G nothing to sample"
            )
        self._active = np.flatnonzero(n_pos > 0).astype(np.int64)  # (n_active,) users with a positive
        self._n_pos = torch.tensor(n_pos, device=dev)
        self._pair_users = torch.tensor(train.user_index(), dtype=torch.int64, device=dev)  # (nnz,)
        self._pair_items = torch.tensor(np.asarray(train.indices), dtype=torch.int64, device=dev)  # (nnz,)
        # D's phase: this rank's users and their pairs in CSR order (all of them in a single process), and
        # the labelled rows per D-epoch of the largest share (real + fake), to which every rank pads.
        self._d_users = distributed.partition(self._active)
        self._d_pair_users, self._d_pair_items = self._pair_users, self._pair_items
        if distributed.current() is not None:
            if not len(self._d_users):
                raise DataError(
                    f"irgan: {len(self._active)} users with a training item cannot be shared among "
                    f"{distributed.world_size()} ranks; use fewer processes"
                )
            entries = torch.as_tensor(_csr_entries(train.indptr, self._d_users), device=dev)
            self._d_pair_users = self._pair_users[entries]
            self._d_pair_items = self._pair_items[entries]
        self._d_rows = distributed.all_reduce_max(2 * len(self._d_pair_users))
        self._pretrained = False
        self._ema: float | None = None

    def _release(self) -> None:
        super()._release()
        for attr in ("_active", "_n_pos", "_pair_users", "_pair_items", "_seen_rows", "_d_users",
                     "_d_pair_users", "_d_pair_items", "_d_rows"):
            self.__dict__.pop(attr, None)
        self._seen_rows = None

    def _extra_state(self) -> dict[str, Any]:
        return {
            "pretrained": self._pretrained,
            "pretrain_best_epoch": self.pretrain_best_epoch_,
            "pretrain_history": self.pretrain_history_,
            "start_valid": self.start_valid_,
            "baseline_ema": self._ema,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._pretrained = bool(state.get("pretrained", False))
        best = state.get("pretrain_best_epoch")
        self.pretrain_best_epoch_ = None if best is None else int(best)
        self.pretrain_history_ = list(state.get("pretrain_history", []))
        start = state.get("start_valid")
        self.start_valid_ = None if start is None else float(start)
        ema = state.get("baseline_ema")
        self._ema = None if ema is None else float(ema)

    def refit_params(self) -> dict[str, Any]:
        """The round count and the pre-training epoch count that validation chose (each when it chose)."""
        out = super().refit_params()
        best = getattr(self, "pretrain_best_epoch_", None)
        if best is not None:
            out["pretrain_epochs"] = int(best)
        return out

    # ------------------------------------------------------------------ one round
    def _train_epoch(self, epoch: int) -> dict[str, float]:
        extra = self._pretrain() if not self._pretrained else {}
        t0 = time.perf_counter()
        tot = _Totals.zeros(self.device_)
        neg = self._d_pair_items
        for k in range(int(self.d_epochs)):
            if k % int(self.d_resample_every) == 0:
                neg = self._sample_for_d(tot)
            self._d_epoch(neg, tot)
        for _ in range(int(self.g_epochs)):
            self._g_epoch(tot)
        row = tot.row()
        if self.exclude_seen:
            del row["fake_pos_rate"]  # 0 by construction: D's negatives are drawn from unobserved items
        return {**row, "adv_seconds": time.perf_counter() - t0, **extra}

    def _mixed(self) -> contextlib.AbstractContextManager[Any]:
        """Where the players score in training: bfloat16 autocast with ``precision="bf16"``."""
        if self.precision == "bf16":
            return torch.autocast(self.device_.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _policy_logits(self, scores: torch.Tensor, users: torch.Tensor, temperature: float) -> torch.Tensor:
        """``(b, n_items)`` G logits (``scores`` of ``users``) over the temperature; seen items at ``-inf``
        under ``exclude_seen``."""
        logits = scores / temperature
        if self.exclude_seen:
            logits = logits.masked_fill(self._seen_dense(users).bool(), float("-inf"))
        return logits

    @torch.no_grad()
    def _sample_for_d(self, tot: _Totals) -> torch.Tensor:
        """One negative per observed pair of D's users, drawn from softmax(G / tau), aligned with the pairs.

        Returns the items, aligned with ``_d_pair_users`` (CSR order); counts in ``tot`` how many are
        training positives of their user.
        """
        gen = self.modules_["generator"]
        dev = self.device_
        n_items = self.n_items
        chunk = max(1, (1 << 22) // n_items)
        out = []
        for start in range(0, len(self._d_users), chunk):
            users = torch.as_tensor(self._d_users[start : start + chunk], device=dev)  # (b,) ascending
            counts = self._n_pos[users]  # (b,)
            with self._mixed():
                scores = gen.scores(users)  # type: ignore[operator]
            logits = self._policy_logits(scores.float(), users, float(self.tau))
            probs = torch.softmax(logits, dim=1)  # (b, n_items)
            draws = torch.multinomial(
                probs, int(counts.max()), replacement=True, generator=self.rank_torch_gen_
            )
            keep = torch.arange(draws.shape[1], device=dev)[None, :] < counts[:, None]  # (b, m)
            out.append(draws[keep])  # row-major: user by user, as the CSR entries
            tot.fake_pos += self._seen_dense(users).gather(1, draws)[keep].sum(dtype=torch.float64)
        negatives = torch.cat(out)
        tot.n_draws += len(negatives)
        return negatives

    def _d_epoch(self, neg: torch.Tensor, tot: _Totals) -> None:
        """One pass of D over its observed pairs (label 1) and G's negatives (label 0), shuffled."""
        disc = self.modules_["discriminator"]
        opt = self.optimizers_["discriminator"]
        dev = self.device_
        nnz = len(self._d_pair_users)
        users = torch.cat([self._d_pair_users, self._d_pair_users])  # (2 nnz,)
        items = torch.cat([self._d_pair_items, neg])  # (2 nnz,)
        labels = torch.cat([torch.ones(nnz, device=dev), torch.zeros(nnz, device=dev)])  # (2 nnz,)
        order_np = distributed.pad_to(self.rank_np_rng_.permutation(2 * nnz), self._d_rows)
        order = torch.from_numpy(order_np).to(dev)  # (d_rows,)
        l2 = float(self.d_l2)
        bs = int(self.d_batch_size)
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            u, i, y = users[idx], items[idx], labels[idx]
            with self._mixed():
                logits = self._call("discriminator", "pair_scores", u, i).float()  # (b,)
            loss = F.binary_cross_entropy_with_logits(logits, y)
            reg = l2 * disc.sq_norms(u, i) / len(u) if l2 > 0 else 0.0  # type: ignore[operator]
            opt.zero_grad(set_to_none=True)
            (loss + reg).backward()
            opt.step()
            with torch.no_grad():
                prob = torch.sigmoid(logits)
                tot.d_loss += loss.detach().double() * len(u)
                tot.d_real += (prob * y).sum(dtype=torch.float64)
                tot.d_fake += (prob * (1 - y)).sum(dtype=torch.float64)
            tot.d_pairs += len(u)

    def _g_epoch(self, tot: _Totals) -> None:
        """One REINFORCE pass of G over the users with a training item, in shuffled batches."""
        gen, disc = self.modules_["generator"], self.modules_["discriminator"]
        opt = self.optimizers_["generator"]
        dev = self.device_
        lam = float(self.importance_sampling)
        l2 = float(self.g_l2)
        order = distributed.shard(self.np_rng_.permutation(self._active))  # (n_active,) or this rank's share
        bs = int(self.g_batch_users)
        for start in range(0, len(order), bs):
            users = torch.as_tensor(order[start : start + bs], device=dev)  # (b,)
            counts = self._n_pos[users] * int(self.g_samples)  # (b,) samples per user
            with self._mixed():
                scores = self._call("generator", "scores", users)  # (b, n_items), through DDP when distributed
            scores = scores.float()
            logp = torch.log_softmax(self._policy_logits(scores, users, float(self.g_tau)), dim=1)
            with torch.no_grad():
                p = logp.exp()  # (b, n_items)
                proposal = _is_proposal(p, self._seen_dense(users), lam) if lam > 0 else p
                draws = torch.multinomial(
                    proposal, int(counts.max()), replacement=True, generator=self.rank_torch_gen_
                )
                keep = (torch.arange(draws.shape[1], device=dev)[None, :] < counts[:, None]).float()  # (b, m)
                with self._mixed():
                    d_logits = disc.scores(users).float().gather(1, draws)  # type: ignore[operator]  # (b, m)
                reward = (
                    2 * (torch.sigmoid(d_logits) - 0.5)
                    if self.reward == "sigmoid"
                    else F.logsigmoid(d_logits)
                )
                advantage = reward - self._baseline(reward, keep, counts)
                if lam > 0:
                    advantage = advantage * p.gather(1, draws) / proposal.gather(1, draws)
                weight = advantage * keep / counts[:, None]  # (b, m) per-user mean
            surrogate = -(logp.gather(1, draws) * weight).sum(dim=1)  # (b,)
            loss = surrogate.mean()
            if l2 > 0:
                flat = keep.bool()
                loss = (
                    loss
                    + l2
                    * gen.sq_norms(  # type: ignore[operator]
                        users[:, None].expand_as(draws)[flat], draws[flat]
                    )
                    / flat.sum()
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                tot.g_loss += surrogate.detach().sum(dtype=torch.float64)
                tot.reward += (reward * keep).sum(dtype=torch.float64)
                tot.g_samples += counts.sum(dtype=torch.float64)
                tot.g_entropy += torch.special.entr(p).sum(dtype=torch.float64)
            tot.g_users += len(users)

    def _baseline(
        self, reward: torch.Tensor, keep: torch.Tensor, counts: torch.Tensor
    ) -> torch.Tensor | float:
        """The variance-reducing baseline of each sample's reward (see the module docstring)."""
        if self.baseline == "mean":
            return _loo_baseline(reward, keep, counts)
        if self.baseline == "ema":
            # The average of earlier batches only (the first batch uses its own mean), then updated.
            if distributed.current() is None:
                batch_mean = float((reward * keep).sum() / keep.sum())
            else:  # the same value on every rank, so that the baseline state stays one (and checkpointable)
                sums = distributed.all_reduce_sum(torch.stack([(reward * keep).sum(), keep.sum()]).double())
                batch_mean = float(sums[0] / sums[1])
            value = batch_mean if self._ema is None else self._ema
            m = float(self.baseline_momentum)
            self._ema = batch_mean if self._ema is None else m * self._ema + (1 - m) * batch_mean
            return value
        return 0.0

    # ------------------------------------------------------------------ score
    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        return self.modules_[self.recommend_with].scores(users)  # type: ignore[operator]
