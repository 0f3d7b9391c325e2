"""IRGAN's start: BPR-MF pre-training of G (memoised per process) or a warm start from a saved BPR model.

See :mod:`gan4rec.models.gan.irgan` ("Pre-training") for what the start is and why an int seed makes it
the ``bpr`` model of that seed. The memo is speed machinery only: a hit is bit-identical to recomputing.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import Recommender
from gan4rec.models.baselines.bpr import BPR
from gan4rec.train import distributed
from gan4rec.train.loop import FitResult, parse_metric, torch_threads
from gan4rec.train.seeding import derive_seed

__all__ = ["PRETRAIN_CACHE", "PRETRAIN_CACHE_BYTES", "Pretraining", "ScorerBPR", "remember"]

logger = logging.getLogger(__name__)


class ScorerBPR(BPR):
    """BPR-MF's own training (loss, sampling, loop) applied to an IRGAN scorer, to pre-train it."""

    def __init__(self, *, build: Any = None, **params: Any) -> None:
        super().__init__(**params)
        self.build = build

    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        return {"mf": self.build(n_users, n_items)}


# Memoised pre-training results: key -> (state dict copy, best epoch, history), least recently used first.
# A tuning study reuses one key for every trial; each seed's fit and refit add one. Bounded in bytes.
PRETRAIN_CACHE: OrderedDict[tuple, tuple[dict[str, torch.Tensor], int | None, list]] = OrderedDict()
PRETRAIN_CACHE_BYTES = 256 << 20


def remember(key: tuple, entry: tuple[dict[str, torch.Tensor], int | None, list]) -> None:
    """Add ``entry`` to the memo, evicting the least recently used ones beyond the byte bound."""

    def size(e: tuple[dict[str, torch.Tensor], int | None, list]) -> int:
        return sum(t.numel() * t.element_size() for t in e[0].values())

    if size(entry) > PRETRAIN_CACHE_BYTES:
        return
    PRETRAIN_CACHE[key] = entry
    while sum(size(e) for e in PRETRAIN_CACHE.values()) > PRETRAIN_CACHE_BYTES:
        PRETRAIN_CACHE.popitem(last=False)


class Pretraining:
    """IRGAN's pre-training steps, mixed into :class:`~gan4rec.models.gan.irgan.IRGAN`."""

    # Set by the model (declared for type checkers).
    scorer: str
    n_factors: int
    mlp_hidden: int
    pretrain_epochs: int
    pretrain_lr: float
    pretrain_l2: float
    pretrain_batch_size: int
    pretrain_eval_every: ClassVar[int]
    pretrain_patience: int | None
    pretrain_d: bool
    warm_start: str | None
    random_state: int | np.random.Generator | None
    n_threads: int | None
    device_: torch.device
    np_rng_: np.random.Generator
    modules_: dict[str, nn.Module]
    pretrain_best_epoch_: int | None
    pretrain_history_: list[dict[str, float]]
    start_valid_: float | None
    _metric: str
    _pretrained: bool
    _train_data: Interactions
    _valid_data: Interactions | None
    _new_scorer: Callable[[int, int, int], nn.Module]
    valid_score: Callable[[np.ndarray], torch.Tensor]
    fit_result_: FitResult
    history_: list[dict[str, float]]
    best_epoch_: int | None
    _setup_fit: Callable[..., None]
    _release: Callable[[], None]

    def _fit_start_only(self, train: Interactions) -> None:
        """``epochs=0``: set up exactly as the loop's run would, pre-train, and stop there."""
        self._setup_fit(train, optimizers=False)
        with torch_threads(self.n_threads if self.device_.type == "cpu" else None):
            self._pretrain()
        self.fit_result_ = FitResult(history=[], best_epoch=None, best_value=math.nan, stopped_early=False)
        self.history_ = []
        self.best_epoch_ = None
        self._release()
        for m in self.modules_.values():
            m.eval()

    def _pretrain(self) -> dict[str, float]:
        """Pre-train G (and copy it into D with ``pretrain_d``); returns the first round's extra history."""
        t0 = time.perf_counter()
        train, valid = self._train_data, self._valid_data
        gen, disc = self.modules_["generator"], self.modules_["discriminator"]
        # Drawn even when unused, so that the rounds' random streams do not depend on the start option.
        drawn = derive_seed(self.np_rng_)
        # An int random_state seeds the pre-training as the bpr model of that seed: with the same settings
        # the start is bit-identical to that BPR-MF run, so comparing the two measures the adversarial
        # phase alone (paired), without the noise of two different BPR seeds.
        rs = self.random_state
        seed = int(rs) if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) else drawn
        epochs_run = 0
        if self.warm_start is not None:
            gen.load_state_dict(self._warm_start_state(train))
        elif self.pretrain_epochs > 0:
            state, best, history = self._pretrained_state(train, valid, seed)
            gen.load_state_dict(state)
            self.pretrain_best_epoch_ = best if valid is not None else None
            self.pretrain_history_ = history
            epochs_run = len(history)
        if self.pretrain_d:
            disc.load_state_dict(gen.state_dict())
        self._pretrained = True
        extra: dict[str, float] = {"pretrain_epochs": float(epochs_run)}
        if valid is not None:
            from gan4rec.evaluation.evaluator import evaluate

            value = math.nan
            if distributed.is_main():  # validation runs on rank 0 only; the value is broadcast
                name, k = parse_metric(self._metric)
                res = evaluate(self.valid_score, train, valid, ks=[k], metrics=[name], device=self.device_)
                value = float(res.metrics[self._metric])
            self.start_valid_ = distributed.broadcast_floats([value])[0]
            extra[f"start_valid_{self._metric}"] = self.start_valid_
            for m in self.modules_.values():
                m.train()
        extra["pretrain_seconds"] = time.perf_counter() - t0
        if distributed.is_main():
            logger.info(
                "irgan: pre-trained start after %d BPR epochs%s",
                epochs_run,
                "" if self.start_valid_ is None else f", validation {self._metric} = {self.start_valid_:.4f}",
            )
        return extra

    def _pretrained_state(
        self, train: Interactions, valid: Interactions | None, seed: int
    ) -> tuple[dict[str, torch.Tensor], int | None, list[dict[str, float]]]:
        params = {
            "n_factors": int(self.n_factors),
            "lr": float(self.pretrain_lr),
            "l2": float(self.pretrain_l2),
            "epochs": int(self.pretrain_epochs),
            "batch_size": int(self.pretrain_batch_size),
            "eval_every": self.pretrain_eval_every,
            "patience": self.pretrain_patience,
            "device": str(self.device_),
            "random_state": seed,
            "n_threads": self.n_threads,
        }
        key = (
            train.fingerprint(),
            None if valid is None else valid.fingerprint(),
            self._metric,
            self.scorer,
            int(self.mlp_hidden),
            tuple(sorted((k, repr(v)) for k, v in params.items())),
            torch.get_num_threads() if self.n_threads is None else None,
            distributed.world_size(),
        )
        hit = PRETRAIN_CACHE.get(key)
        if hit is not None:
            PRETRAIN_CACHE.move_to_end(key)
            logger.info("irgan: reusing the memoised BPR pre-training of this data and seed")
        else:
            n_factors = int(self.n_factors)

            def build(n_users: int, n_items: int) -> nn.Module:
                return self._new_scorer(n_users, n_items, n_factors)

            bpr = ScorerBPR(build=build, **params).fit(train, valid, metric=self._metric)
            state = {k: v.detach().clone() for k, v in bpr.modules_["mf"].state_dict().items()}
            hit = (state, bpr.best_epoch_, [dict(r) for r in bpr.history_])
            remember(key, hit)
        state, best, history = hit
        return {k: v.clone() for k, v in state.items()}, best, [dict(r) for r in history]

    def _warm_start_state(self, train: Interactions) -> dict[str, torch.Tensor]:
        where = str(self.warm_start)
        model = Recommender.load(where)
        if not isinstance(model, BPR):
            raise DataError(
                f"warm_start={where!r} holds a {model.name!r} model; expected a saved 'bpr' model"
            )
        if model.seen_.fingerprint() != train.fingerprint():
            raise DataError(
                f"warm_start={where!r} was fitted on other data than this training set; a warm start must "
                "come from exactly the training data (never from validation or test data)"
            )
        if int(model.n_factors) != int(self.n_factors):
            raise DataError(
                f"warm_start={where!r} has n_factors={model.n_factors}; expected n_factors={self.n_factors}"
            )
        return {k: v.detach().to(self.device_).clone() for k, v in model.modules_["mf"].state_dict().items()}

