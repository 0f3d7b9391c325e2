"""Hyperparameter tuning with Optuna, on the validation split only.

Every model declares its search space in its own file (``search_space``, plain data). :func:`tune` runs a
seeded TPE study with ``n_jobs=1`` (parallel trials are not reproducible): each trial fits on train minus
validation and scores the validation split. Test data is never touched here; the caller refits the best
params on the full train and reads test once (:func:`gan4rec.experiment.run_on_split`).

Studies can be resumed (``storage="sqlite:///tune.db"``: a second call with the same study name continues
it up to ``n_trials`` in total) and time-boxed (``timeout`` seconds).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gan4rec.data.interactions import Interactions
from gan4rec.data.split import Split, carve_validation
from gan4rec.errors import DataError
from gan4rec.models import MODELS, create
from gan4rec.train.loop import observe_validation

__all__ = ["TuneResult", "suggest", "tune", "validation_carvings"]

#: Split kinds whose validation part is a seeded random per-user holdout, so re-carving it with another
#: seed gives another, equally valid, validation split.
_RANDOM_CARVINGS = ("random", "presplit")

log = logging.getLogger(__name__)


@dataclass
class TuneResult:
    """Outcome of :func:`tune`: the best params (search space + fixed + what validation pinned)."""

    model: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    study_name: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "metric": self.metric, "best_params": self.best_params,
            "best_value": self.best_value, "study_name": self.study_name, "seconds": round(self.seconds, 3),
            "trials": self.trials,
        }


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Draw one point of a plain-data search space from an Optuna trial.

    Each entry is ``{"type": "float"|"int", "low", "high", "log"?, "step"?}`` or
    ``{"type": "categorical", "choices": [...]}``.
    """
    out: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec.get("type")
        if kind == "float":
            out[name] = trial.suggest_float(name, spec["low"], spec["high"], log=bool(spec.get("log", False)),
                                            step=spec.get("step"))
        elif kind == "int":
            out[name] = trial.suggest_int(name, spec["low"], spec["high"], log=bool(spec.get("log", False)),
                                          step=spec.get("step", 1))
        elif kind == "categorical":
            out[name] = trial.suggest_categorical(name, list(spec["choices"]))
        else:
            raise DataError(f"search space entry {name!r} has type {kind!r}; expected float, int or categorical")
    return out


def validation_carvings(split: Split, repeats: int = 1) -> list[tuple[Interactions, Interactions]]:
    """``repeats`` (fit, validation) pairs: ``(split.train, split.valid)``, then re-carvings of the full train.

    Carving ``i`` (``i >= 1``) holds out the same fraction of each user's training interactions as
    ``split.valid`` (the rule of :func:`gan4rec.data.split.carve_validation`), seeded with the split's seed
    + ``i``. Only splits whose validation is a random holdout can be re-carved: a time-based validation
    (leave-k-out by time, temporal) is one fixed set, so asking for more raises :class:`DataError`.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise DataError(f"valid_repeats must be an integer >= 1, got {repeats!r}")
    if split.valid is None:
        raise DataError("tuning needs a validation split (valid_frac > 0): test data is never used to tune")
    out = [(split.train, split.valid)]
    if repeats == 1:
        return out
    kind, frac, seed = split.spec.get("kind"), split.spec.get("valid_frac"), split.spec.get("seed")
    if kind not in _RANDOM_CARVINGS or not frac or seed is None:
        raise DataError(
            f"valid_repeats={repeats} needs a random validation holdout (split 'random' or pre-split files "
            f"with valid_frac > 0); this split's validation is {kind!r}"
        )
    full = split.full_train()
    for i in range(1, int(repeats)):
        out.append(carve_validation(full, kind="random", valid_frac=float(frac), random_state=int(seed) + i))
    return out


def tune(
    model_name: str,
    split: Split,
    *,
    n_trials: int,
    metric: str = "NDCG@20",
    ks: tuple[int, ...] = (20,),
    fixed_params: dict[str, Any] | None = None,
    search_space: dict[str, dict[str, Any]] | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    device: str | None = None,
    valid_repeats: int = 1,
    prune: bool = True,
) -> TuneResult:
    """Tune ``model_name`` on ``split.valid`` (never on test).

    Parameters
    ----------
    split
        A split with a validation part: trials fit on ``split.train`` and score ``split.valid``.
    n_trials
        Total number of trials of the study (a resumed study runs only the missing ones).
    metric
        Validation metric to maximise, e.g. ``"NDCG@20"``; its K is added to ``ks``.
    fixed_params
        Params held fixed (not searched); they override the search space.
    search_space
        Override the model's declared ``search_space``.
    timeout
        Stop starting new trials after this many seconds.
    storage, study_name
        Optuna storage URL (e.g. ``"sqlite:///tune.db"``) and study name, to resume a study.
    seed
        Seeds both the TPE sampler and every trial's model (``random_state``).
    valid_repeats
        Score each trial on this many validation carvings and maximise their mean (repeated holdout). The
        first is ``split.valid``; the others are carved from ``split.full_train()`` by the same rule with
        the split's seed + 1, + 2, ... (random carvings only: :func:`validation_carvings`). One carving
        makes the choice noisy where neighbouring settings differ by less than the validation noise (e.g.
        PureSVD's factor count); more carvings cost that many fits per trial. Epoch counts and other
        ``refit_params`` come from the first carving, which is also the run's own validation split.
    prune
        Abandon trials of the epoch-based models (those trained by :func:`gan4rec.train.loop.fit_loop`)
        whose validation metric, at one of their validations on the first carving, is below the median of
        the earlier trials at the same epoch (Optuna's ``MedianPruner``, after 5 complete trials). Pruned
        trials are recorded with state ``PRUNED`` and never chosen. Other models are never pruned.
    """
    import optuna

    ks = _check_tune_args(model_name, n_trials, metric, ks)
    cls = MODELS[model_name]
    fixed = dict(fixed_params or {})
    cls.check_params(fixed)
    space = {n: s for n, s in (search_space if search_space is not None else cls.search_space).items()
             if n not in fixed}
    cls.check_params(dict.fromkeys(space))

    carvings = validation_carvings(split, valid_repeats)
    objective = _Objective(model_name, space, fixed, carvings, metric=metric, ks=ks, seed=seed, device=device,
                           prune=prune)
    name = study_name or f"gan4rec-{model_name}-{split.fingerprint[:12]}-{metric}" + (
        f"-x{valid_repeats}" if valid_repeats > 1 else ""
    )
    study = _open_study(name, storage, seed=seed, prune=prune)
    if not space:
        # Nothing to search: one trial gives the validation score; more would repeat it.
        n_trials = 1
    done = sum(t.state.is_finished() for t in study.trials)
    t0 = time.perf_counter()
    if done < n_trials:
        # Model errors (e.g. a setting that needs too much memory) fail that trial only.
        study.optimize(objective, n_trials=n_trials - done, timeout=timeout, n_jobs=1, catch=(DataError,))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise DataError(f"no tuning trial of {model_name!r} completed (see the log for each failure)")
    best = study.best_trial
    best_params = {**best.params, **fixed}
    return TuneResult(
        model=model_name, metric=metric, best_params=best_params, best_value=float(best.value),  # type: ignore[arg-type]
        trials=_trial_records(study), study_name=name, seconds=time.perf_counter() - t0,
    )


def _check_tune_args(model_name: str, n_trials: int, metric: str, ks: tuple[int, ...]) -> tuple[int, ...]:
    """The cut-offs to evaluate (``ks`` with the K of ``metric``), after checking the arguments."""
    if model_name not in MODELS:
        raise DataError(f"unknown model {model_name!r}; known models: {', '.join(MODELS)}")
    if n_trials < 1:
        raise DataError(f"n_trials must be >= 1, got {n_trials}")
    if "@" not in metric:
        raise DataError(f"metric must look like 'NDCG@20', got {metric!r}")
    try:
        k = int(metric.split("@", 1)[1])
    except ValueError:
        raise DataError(f"metric must look like 'NDCG@20', got {metric!r}") from None
    return tuple(sorted(set(ks) | {k}))


class _Objective:
    """One trial: fit the drawn params on every validation carving and return the mean validation metric."""

    def __init__(
        self, model_name: str, space: dict[str, dict[str, Any]], fixed: dict[str, Any],
        carvings: list[tuple[Interactions, Interactions]], *, metric: str, ks: tuple[int, ...], seed: int,
        device: str | None, prune: bool,
    ) -> None:
        self.model_name, self.space, self.fixed, self.carvings = model_name, space, fixed, carvings
        self.metric, self.ks, self.seed, self.device, self.prune = metric, ks, seed, device, prune

    def __call__(self, trial: Any) -> float:
        from gan4rec.evaluation.evaluator import evaluate

        params = {**suggest(trial, self.space), **self.fixed}
        fit_s, values, metrics = 0.0, [], []
        for i, (train, valid) in enumerate(self.carvings):
            model = create(self.model_name, params, random_state=self.seed, device=self.device)
            t0 = time.perf_counter()
            with observe_validation(model, self._reporter(trial)) if self.prune and i == 0 else contextlib.nullcontext():
                model.fit(train, valid, metric=self.metric)
            fit_s += time.perf_counter() - t0
            res = evaluate(model.score, train, valid, ks=self.ks, device=self.device)
            values.append(float(res.metrics[self.metric]))
            metrics.append(res.metrics)
            if i == 0:
                trial.set_user_attr("refit_params", model.refit_params())
        value = float(np.mean(values))
        trial.set_user_attr("fit_seconds", round(fit_s, 4))
        trial.set_user_attr(
            "valid_metrics", {m: float(np.mean([r[m] for r in metrics])) for m in metrics[0]}
        )
        if len(values) > 1:
            trial.set_user_attr("valid_repeats", values)
        if not math.isfinite(value):
            raise DataError(f"trial {trial.number}: validation {self.metric} is not finite")
        log.info("trial %d: %s = %.4f with %s (fit %.2f s)", trial.number, self.metric, value, params, fit_s)
        return value

    def _reporter(self, trial: Any) -> Any:
        import optuna

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                log.info("trial %d pruned at epoch %d (%s = %.4f)", trial.number, epoch, self.metric, value)
                raise optuna.TrialPruned()

        return report


def _open_study(name: str, storage: str | None, *, seed: int, prune: bool) -> Any:
    """Create (or, with ``storage``, load) the seeded TPE study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=name, storage=storage, load_if_exists=storage is not None, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5) if prune else optuna.pruners.NopPruner(),
    )


def _trial_records(study: Any) -> list[dict[str, Any]]:
    """JSON-ready records of every trial of ``study``."""
    return [
        {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
         "fit_seconds": t.user_attrs.get("fit_seconds"), "refit_params": t.user_attrs.get("refit_params", {}),
         "valid_metrics": t.user_attrs.get("valid_metrics"),
         **({"valid_repeats": t.user_attrs["valid_repeats"]} if "valid_repeats" in t.user_attrs else {})}
        for t in study.trials
    ]
