"""Hyperparameter tuning with Optuna, on the validation split only.

Every model declares its search space in its own file (``search_space``, plain data). :func:`tune` runs a
seeded TPE study with ``n_jobs=1`` (parallel trials are not reproducible): each trial fits on train minus
validation and scores the validation split. Test data is never touched here; the caller refits the best
params on the full train and reads test once (:func:`gan4rec.experiment.run_on_split`).

On a cold-start split (``cold-items``) a trial's value is :func:`gan4rec.experiment.cold_objective`: the
mean of the validation warm and cold tasks' metric for a model that can score cold items, the validation
warm task's for a pure collaborative-filtering model. ``gan4rec tune`` and ``gan4rec compare`` both tune
through :func:`tune`, so they share that objective.

Studies can be resumed (``storage="sqlite:///tune.db"``: a second call with the same study name continues
it up to ``n_trials`` in total) and time-boxed (``timeout`` seconds).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gan4rec.data.interactions import Interactions
from gan4rec.data.split import ColdSplit, Split, carve_validation
from gan4rec.errors import DataError
from gan4rec.experiment import DataSpec, Protocol, cold_objective, config_protocol, data_record
from gan4rec.leaderboard import STD_NOTE, metrics_mean_std
from gan4rec.models import MODELS, create
from gan4rec.train.loop import observe_validation

__all__ = ["TimeBoxError", "TuneResult", "refit_and_test", "suggest", "tune", "tuned_config", "tuned_config_toml",
           "validation_carvings"]

#: Split kinds whose validation part is a seeded random per-user holdout, so re-carving it with another
#: seed gives another, equally valid, validation split.
_RANDOM_CARVINGS = ("random", "presplit")

log = logging.getLogger(__name__)


class TimeBoxError(DataError):
    """The tuning time box stopped every trial of a model before one completed.

    ``n_run`` trials started, ``n_time_boxed`` of them were stopped mid-fit by the box.
    """

    def __init__(self, message: str, n_run: int = 0, n_time_boxed: int = 0) -> None:
        super().__init__(message)
        self.n_run, self.n_time_boxed = n_run, n_time_boxed


@dataclass
class TuneResult:
    """Outcome of :func:`tune`: the best params (search space + fixed + what validation pinned).

    ``trials`` holds every trial of the study (a resumed study's earlier ones too); ``n_run`` counts those
    this call ran, ``n_complete``/``n_pruned``/``n_failed`` the study's trials by state, and
    ``n_time_boxed`` the trials the time box stopped (recorded as pruned, user attr ``stopped="time box"``).
    ``best_model`` is the best trial's fitted model (first validation carving) when this call fitted it,
    else ``None``; :func:`gan4rec.experiment.run_on_split` can reuse it (``fitted=``) for the same seed.
    """

    model: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    study_name: str = ""
    seconds: float = 0.0
    n_requested: int = 0
    n_run: int = 0
    n_complete: int = 0
    n_pruned: int = 0
    n_failed: int = 0
    n_time_boxed: int = 0
    time_boxed: bool = False
    seed: int = 0
    search_space: dict[str, dict[str, Any]] = field(default_factory=dict)
    best_model: Any = field(default=None, repr=False, compare=False)
    best_fit_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "metric": self.metric, "best_params": self.best_params,
            "best_value": self.best_value, "study_name": self.study_name, "seconds": round(self.seconds, 3),
            "n_requested": self.n_requested, "n_run": self.n_run, "n_complete": self.n_complete,
            "n_pruned": self.n_pruned, "n_failed": self.n_failed, "n_time_boxed": self.n_time_boxed,
            "time_boxed": self.time_boxed, "search_space": self.search_space, "trials": self.trials,
        }

    def summary(self) -> str:
        """One line: the trials run and how they ended, e.g. ``"20 trials run (18 complete, 2 pruned)"``."""
        parts = [f"{self.n_complete} complete"]
        if self.n_pruned:
            boxed = f", {self.n_time_boxed} by the time box" if self.n_time_boxed else ""
            parts.append(f"{self.n_pruned} pruned{boxed}")
        if self.n_failed:
            parts.append(f"{self.n_failed} failed")
        total = len(self.trials)
        resumed = f" ({total} in the study)" if total != self.n_run else ""
        cut = f"; the time box stopped the search at {self.n_run} of {self.n_requested}" if self.time_boxed else ""
        return f"{self.n_run} trial(s) run{resumed}: {', '.join(parts)}{cut}"


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
    wide: bool = False,
    published: bool = True,
    defaults_first: bool = False,
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
        Validation metric to maximise, e.g. ``"NDCG@20"``; its K is added to ``ks``. On a cold-start split
        the value maximised is :func:`gan4rec.experiment.cold_objective` of it (see the module docstring).
    fixed_params
        Params held fixed (not searched); they override the search space.
    search_space
        Override the model's declared ``search_space``.
    wide
        Search the model's ``search_space_wide`` (a wider space some models declare) instead of its
        ``search_space``; a DataError when the model declares none. Ignored when ``search_space`` is given.
    published
        Run the model's ``published_configs`` (settings from its paper or its authors' code) as the first
        trials, those already in a resumed study skipped. Their keys inside the search space are enqueued
        as the trial's params (so the sampler learns from them); the others (outside the space, or a value
        the space does not contain) are applied on top and recorded in the trial's params; fixed params
        override them all.
    defaults_first
        Run the model's defaults as the very first trial (before any published config): the searched
        params whose default the space can take get it, the others are drawn by the sampler, and fixed
        params are fixed as always. A small budget then always contains the defaults, so a model cannot
        lose to a worse draw it happened to start from. Skipped in a resumed study that already ran it; the
        trial's record says ``"defaults": true``.
    timeout
        The time box, in seconds: no trial starts after it, and a running trial of an epoch-based model
        stops at its next validation past it (recorded as pruned, user attr ``stopped = "time box"``).
        Models without epochs finish the fit they are in.
    storage, study_name
        Optuna storage URL (e.g. ``"sqlite:///tune.db"``) and study name, to resume a study. A resumed
        study continues the search rather than replaying it: its sampler is seeded with ``seed`` and the
        number of trials already in the study, so the new trials are not the first ones again.
    seed
        Seeds the TPE sampler and every trial's model (``random_state``).
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

    Raises
    ------
    TimeBoxError
        When the time box stopped every trial before one completed (a :class:`DataError`).
    """
    ks = _check_tune_args(model_name, n_trials, metric, ks)
    cls = MODELS[model_name]
    fixed = dict(fixed_params or {})
    cls.check_params(fixed)
    space = {n: s for n, s in _declared_space(model_name, search_space, wide).items() if n not in fixed}
    cls.check_params(dict.fromkeys(space))
    carvings = validation_carvings(split, valid_repeats)
    cold = split if isinstance(split, ColdSplit) else None
    name = study_name or f"gan4rec-{model_name}-{split.fingerprint[:12]}-{metric}" + (
        f"-x{valid_repeats}" if valid_repeats > 1 else ""
    ) + ("-cold" if cold is not None else "")
    study = _open_study(name, storage, seed=seed, prune=prune)
    if not space:
        # Nothing to search: one trial gives the validation score; more would repeat it.
        n_trials = 1
    done = sum(t.state.is_finished() for t in study.trials)
    queued = 0
    if defaults_first and space and done < n_trials \
            and not any(t.user_attrs.get("defaults") for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial(defaults_in_space(space, cls.default_params()), user_attrs={"defaults": True})
        queued = 1
    if published and space and done + queued < n_trials:
        _enqueue_published(study, model_name, space, fixed, budget=n_trials - done - queued)
    t0 = time.perf_counter()
    deadline = None if timeout is None else t0 + timeout
    objective = _Objective(model_name, space, fixed, carvings, metric=metric, ks=ks, seed=seed, device=device,
                           prune=prune, deadline=deadline, n_total=n_trials, cold_split=cold)
    if done < n_trials:
        log.info("%s: %d trial(s) to run%s%s", model_name, n_trials - done,
                 f" ({done} already in study {name!r})" if done else "",
                 f", {timeout:g} s time box" if timeout is not None else "")
        # Model errors (e.g. a setting that needs too much memory) fail that trial only.
        # The time box is checked here (after each trial: study.stop) and in epoch-based fits, on one clock.
        study.optimize(objective, n_trials=n_trials - done, n_jobs=1, catch=(DataError,),
                       callbacks=[objective.progress])
    seconds = time.perf_counter() - t0
    return _result(study, objective, model_name, metric, n_requested=n_trials, n_before=done, seconds=seconds,
                   timeout=timeout, seed=seed)


def _declared_space(model_name: str, search_space: dict[str, dict[str, Any]] | None, wide: bool) -> dict[str, Any]:
    cls = MODELS[model_name]
    if search_space is not None:
        return dict(search_space)
    if wide:
        space = getattr(cls, "search_space_wide", None)
        if space is None:
            raise DataError(f"{model_name} declares no wide search space (search_space_wide); drop the wide option")
        return dict(space)
    return dict(cls.search_space)


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


def defaults_in_space(space: dict[str, dict[str, Any]], defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` of the params of ``space`` whose default the space can take (a first trial to enqueue)."""
    return {name: defaults[name] for name, spec in space.items() if name in defaults and _contains(spec, defaults[name])}


def _contains(spec: dict[str, Any], value: Any) -> bool:
    """Whether a search-space entry can take ``value`` (so Optuna may enqueue it)."""
    if spec.get("type") == "categorical":
        return any(value == c and type(value) is type(c) for c in spec["choices"])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if spec.get("type") == "int" and not float(value).is_integer():
        return False
    return bool(spec["low"] <= value <= spec["high"])


def _enqueue_published(study: Any, model_name: str, space: dict[str, Any], fixed: dict[str, Any], budget: int) -> None:
    """Enqueue the model's ``published_configs`` not yet in the study, at most ``budget`` of them."""
    cls = MODELS[model_name]
    seen = {json.dumps(t.user_attrs["published"], sort_keys=True, default=str)
            for t in study.get_trials(deepcopy=False) if "published" in t.user_attrs}
    n = 0
    for index, cfg in enumerate(cls.published_configs):
        key = json.dumps(dict(cfg), sort_keys=True, default=str)
        if key in seen or n >= budget:
            continue
        try:
            cls.check_params({k: v for k, v in cfg.items() if k not in fixed})
        except DataError as e:
            log.warning("%s: published config %d skipped: %s", model_name, index, e)
            continue
        searched = {k: v for k, v in cfg.items() if k in space and _contains(space[k], v)}
        extra = {k: v for k, v in cfg.items() if k not in fixed and k not in searched}
        study.enqueue_trial(searched, user_attrs={"published": dict(cfg), "published_extra": extra})
        seen.add(key)
        n += 1
        log.info("%s: published config %d enqueued as a trial%s", model_name, index,
                 f" (outside the search space: {extra})" if extra else "")


class _Objective:
    """One trial: fit the drawn params on every validation carving and return the mean validation metric.

    It also keeps the best complete trial's fitted model (first carving), stops epoch-based fits at the
    time box, and logs progress after each trial (:meth:`progress`, an Optuna callback).
    """

    def __init__(
        self, model_name: str, space: dict[str, dict[str, Any]], fixed: dict[str, Any],
        carvings: list[tuple[Interactions, Interactions]], *, metric: str, ks: tuple[int, ...], seed: int,
        device: str | None, prune: bool, deadline: float | None, n_total: int, cold_split: ColdSplit | None = None,
    ) -> None:
        self.model_name, self.space, self.fixed, self.carvings = model_name, space, fixed, carvings
        self.cold_split = cold_split  # the objective is cold_objective on it (one carving: its own validation)
        self.metric, self.ks, self.seed, self.device, self.prune = metric, ks, seed, device, prune
        self.deadline, self.n_total, self.n_run = deadline, n_total, 0
        self.best: tuple[float, int, Any, float] | None = None  # (value, trial number, model, fit seconds)

    def __call__(self, trial: Any) -> float:
        from gan4rec.evaluation.evaluator import evaluate

        params = {**suggest(trial, self.space), **trial.user_attrs.get("published_extra", {}), **self.fixed}
        log.info("%s trial %d: fitting %s%s", self.model_name, trial.number, params, self._time_left())
        fit_s, values, first = 0.0, [], None
        metrics: list[dict[str, Any]] = []  # per carving: {name: value}, or {task: {name: value} or None} (cold)
        for i, (train, valid) in enumerate(self.carvings):
            model = create(self.model_name, params, random_state=self.seed, device=self.device)
            t0 = time.perf_counter()
            watch = self.prune or self.deadline is not None
            with observe_validation(model, self._reporter(trial, i == 0)) if watch else contextlib.nullcontext():
                model.fit(train, valid, metric=self.metric)
            fit_s += time.perf_counter() - t0
            if self.cold_split is not None:
                value_i, task_metrics = cold_objective(model, self.cold_split, self.metric, train=train, ks=self.ks,
                                                       device=self.device)
                values.append(value_i)
                metrics.append(task_metrics)
            else:
                res = evaluate(model.score, train, valid, ks=self.ks, device=self.device)
                values.append(float(res.metrics[self.metric]))
                metrics.append(res.metrics)
            if i == 0:
                trial.set_user_attr("refit_params", model.refit_params())
                first = (model, time.perf_counter() - t0)
        value = float(np.mean(values))
        trial.set_user_attr("fit_seconds", round(fit_s, 4))
        trial.set_user_attr(
            "valid_metrics", metrics[0] if self.cold_split is not None
            else {m: float(np.mean([r[m] for r in metrics])) for m in metrics[0]}
        )
        if len(values) > 1:
            trial.set_user_attr("valid_repeats", values)
        if not math.isfinite(value):
            raise DataError(f"trial {trial.number}: validation {self.metric} is not finite")
        if first is not None and (self.best is None or value > self.best[0]):
            self.best = (value, trial.number, first[0], first[1])
        log.info("trial %d: %s = %.4f with %s (fit %.2f s)", trial.number, self.metric, value, params, fit_s)
        return value

    def _reporter(self, trial: Any, report_to_pruner: bool) -> Any:
        import optuna

        def report(epoch: int, value: float) -> None:
            if report_to_pruner and self.prune:
                trial.report(value, epoch)
                if trial.should_prune():
                    log.info("trial %d pruned at epoch %d (%s = %.4f)", trial.number, epoch, self.metric, value)
                    raise optuna.TrialPruned()
            if self.deadline is not None and time.perf_counter() > self.deadline:
                trial.set_user_attr("stopped", "time box")
                log.warning("%s trial %d stopped at epoch %d by the time box (%s = %.4f so far); recorded as "
                            "pruned", self.model_name, trial.number, epoch, self.metric, value)
                raise optuna.TrialPruned()

        return report

    def _time_left(self) -> str:
        if self.deadline is None:
            return ""
        return f"; {max(self.deadline - time.perf_counter(), 0.0):.0f} s left in the time box"

    def progress(self, study: Any, trial: Any) -> None:
        """Optuna callback: a log line per finished trial with the count, the best so far and the time left."""
        self.n_run += 1
        try:
            best = f"best so far {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "no complete trial yet"
        value = "" if trial.value is None else f" {self.metric} = {trial.value:.4f};"
        log.info("%s: trial %d/%d %s;%s %s%s", self.model_name, self.n_run, self.n_total, trial.state.name.lower(),
                 value, best, self._time_left())
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            study.stop()  # no new trial after the time box


def _open_study(name: str, storage: str | None, *, seed: int, prune: bool) -> Any:
    """Create (or, with ``storage``, load) the seeded TPE study; a resumed one continues its search.

    The TPE sampler draws its first trials at random from its seed. A new process resuming a study with
    the same seed would draw those first trials again, so a study that already holds ``n`` trials gets a
    sampler seeded with ``(seed, n)`` instead.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=storage is not None, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5) if prune else optuna.pruners.NopPruner(),
    )
    n_before = len(study.trials)
    if n_before:
        resumed_seed = int(np.random.SeedSequence([seed, n_before]).generate_state(1)[0])
        study.sampler = optuna.samplers.TPESampler(seed=resumed_seed)
        log.info("resuming study %r with %d trial(s); sampler seeded with (%d, %d)", name, n_before, seed, n_before)
    return study


def _result(
    study: Any, objective: _Objective, model_name: str, metric: str, *, n_requested: int, n_before: int,
    seconds: float, timeout: float | None, seed: int,
) -> TuneResult:
    """The :class:`TuneResult` of a finished study; a :class:`TimeBoxError` if no trial completed."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    n_boxed = sum(t.user_attrs.get("stopped") == "time box" for t in trials)
    n_run = sum(s.is_finished() for s in states) - n_before
    time_boxed = bool(timeout is not None and (n_before + n_run < n_requested or n_boxed))
    complete = states.count(optuna.trial.TrialState.COMPLETE)
    if not complete:
        if time_boxed:
            raise TimeBoxError(f"the {timeout:g} s time box stopped tuning {model_name!r} before a trial completed "
                               f"({n_run} started, {n_boxed} stopped mid-fit); give it more time", n_run, n_boxed)
        raise DataError(f"no tuning trial of {model_name!r} completed (see the log for each failure)")
    best = study.best_trial
    best_params = {**best.params, **best.user_attrs.get("published_extra", {}), **objective.fixed}
    reused = objective.best if objective.best is not None and objective.best[1] == best.number else None
    if time_boxed:
        log.warning("%s: the %g s time box cut tuning short: %d of %d trial(s) ran to their end, %d stopped "
                    "mid-fit, %d never started", model_name, timeout, n_before + n_run - n_boxed, n_requested,
                    n_boxed, n_requested - n_before - n_run)
    return TuneResult(
        model=model_name, metric=metric, best_params=best_params, best_value=float(best.value),  # type: ignore[arg-type]
        trials=_trial_records(study), study_name=study.study_name, seconds=seconds, n_requested=n_requested,
        n_run=n_run, n_complete=complete, n_pruned=states.count(optuna.trial.TrialState.PRUNED),
        n_failed=states.count(optuna.trial.TrialState.FAIL), n_time_boxed=n_boxed, time_boxed=time_boxed,
        seed=seed, search_space=objective.space, best_model=None if reused is None else reused[2],
        best_fit_seconds=0.0 if reused is None else round(reused[3], 4),
    )


def _trial_records(study: Any) -> list[dict[str, Any]]:
    """JSON-ready records of every trial of ``study``; ``params`` are those the model got (fixed ones aside)."""
    return [
        {"number": t.number, "state": t.state.name, "value": t.value,
         "params": {**t.params, **t.user_attrs.get("published_extra", {})},
         "fit_seconds": t.user_attrs.get("fit_seconds"), "refit_params": t.user_attrs.get("refit_params", {}),
         "valid_metrics": t.user_attrs.get("valid_metrics"),
         **({"valid_repeats": t.user_attrs["valid_repeats"]} if "valid_repeats" in t.user_attrs else {}),
         **({"stopped": t.user_attrs["stopped"]} if "stopped" in t.user_attrs else {}),
         **({"published": t.user_attrs["published"]} if "published" in t.user_attrs else {}),
         **({"defaults": True} if t.user_attrs.get("defaults") else {})}
        for t in study.get_trials(deepcopy=False) if t.state.is_finished()
    ]


def refit_and_test(
    result: TuneResult, split: Split, data_info: dict[str, Any], protocol: Protocol, *, seeds: int,
    device: str | None = None,
) -> dict[str, Any]:
    """Refit ``result.best_params`` and test once per seed ``0..seeds-1``: the second half of ``gan4rec tune``.

    The tuning seed's first fit is the best trial's own (same params, seed and data), so its fitted model
    (``result.best_model``) is reused rather than fitted again; only its refit on the full training data
    runs. A resumed study whose best trial ran in an earlier process has no model to reuse, and a seed
    other than the tuning seed needs its own fit.

    Returns the result in the schema of ``gan4rec train``, with ``metrics.test`` the mean over seeds and
    ``metrics.test_std`` the sample standard deviation (``ddof=1``; 0.0 for one seed; ``std`` says so; on a
    cold-start split both per task, ``None`` for a task the model did not run), ``per_seed``, ``best_params``, ``tuning`` (counts, time box) and ``trials``; ``protocol`` records the
    split really made (:func:`gan4rec.experiment.protocol_record`).
    """
    from gan4rec.experiment import protocol_record, run_on_split

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise DataError(f"seeds={seeds!r}; expected an integer >= 1")
    runs = []
    for seed in range(seeds):
        reuse = result.best_model if seed == result.seed else None
        if seed == result.seed and reuse is None:
            log.info("seed %d: the best trial ran in an earlier process; fitting it again", seed)
        out = run_on_split(result.model, result.best_params, split, data_info, protocol, seed=seed, device=device,
                           fitted=reuse, fitted_seconds=result.best_fit_seconds)
        runs.append(out.result)
    mean, std = metrics_mean_std([r["metrics"]["test"] for r in runs])
    return {**runs[0], "seed": list(range(seeds)),
            "metrics": {"valid": runs[0]["metrics"]["valid"], "test": mean, "test_std": std},
            "std": STD_NOTE,
            "per_seed": [{"seed": r["seed"], "metrics": r["metrics"], "fit_seconds": r["fit_seconds"]} for r in runs],
            "best_params": result.best_params, "tuning": {k: v for k, v in result.to_json().items() if k != "trials"},
            "trials": result.trials, "protocol": protocol_record(protocol, split)}


def tuned_config(result: TuneResult, split: Split, spec: DataSpec, protocol: Protocol) -> dict[str, Any]:
    """The config ``gan4rec tune --save-config`` writes: the best params, the data and the real protocol.

    ``gan4rec train --config`` on it refits the tuned model on the same data and split. The description
    records what the search really did (trials run and how they ended, time box), the ``[data]`` table the
    data source, and ``[protocol]`` the split that was made (pre-split files: no ``split``/``test_frac``).
    Params set to ``None`` have no TOML form; :func:`tuned_config_toml` says so in the file.
    """
    reps = protocol.valid_repeats
    where = f"the mean of {reps} validation carvings" if reps > 1 else "validation only"
    kind = split.spec.get("kind")
    how = "pre-split train/test files" if kind == "presplit" else f"{kind} split, seed {protocol.split_seed}"
    return {
        "description": f"{result.model} tuned by `gan4rec tune` ({result.summary()}; {result.metric} on {where}; "
                       f"split {split.fingerprint[:12]}, {how})",
        "model": result.model,
        "params": dict(result.best_params),
        "data": data_record(spec),
        "protocol": config_protocol(protocol, split),
    }


def tuned_config_toml(config: dict[str, Any]) -> str:
    """TOML text of a :func:`tuned_config`; a param set to ``None`` is left out with a warning comment."""
    import tomli_w

    lost = [f"params.{k}" for k, v in config.get("params", {}).items() if v is None]
    header = (f"# WARNING: {', '.join(lost)} = None has no TOML form and is left out here, so the model's default "
              "applies when this file is run.\n") if lost else ""
    return header + tomli_w.dumps(_without_none(config))


def _without_none(obj: Any) -> Any:
    # TOML has no null: absent means default.
    if isinstance(obj, dict):
        return {k: _without_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_without_none(v) for v in obj if v is not None]
    return obj
