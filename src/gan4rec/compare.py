"""Compare several models with one honest protocol: tune, refit per seed, test once, test significance.

This is the library behind ``gan4rec compare`` and ``gan4rec demo``; the CLI only parses and prints.

For each split ``i`` (``splits`` of them, split seeds ``protocol.split_seed + i``; seeds of the models do
not change the data, so only new splits show how much the ranking depends on the particular test set):

1. **Tune** every model on validation only (:func:`gan4rec.tuning.tune`), with the same trial budget
   (``trials``) and the same time box (``timeout_per_model``) for each. A model whose search space is empty
   (or fully pinned by its fixed params), and every model when ``trials=0``, runs with its defaults plus
   the fixed params instead.
2. **Refit and test** the chosen params once per model seed (:func:`gan4rec.experiment.run_on_split`).
   Test data is read once per (split, seed) and never feeds back into any choice.
3. **Recommend** the top-K (K of ``protocol.metric``) for every test user and time it; the lists also give
   the popularity-bias statistics (share of recommendations per item-popularity decile, coverage).

Then, over all runs:

* **Leaderboard**: mean and sample standard deviation of every test metric over the runs (seeds x splits).
* **Significance**: each user's metric values are averaged over seeds (and over the splits where the user
  is a test user). All models see the same split, hence the same test users, so the values are paired by
  user. The best model (highest mean ``protocol.metric``) is compared with every other model by a paired
  Wilcoxon signed-rank test and a paired t-test across users, each family Holm-corrected over the models
  compared with the best. This is done for every per-user metric; every p-value is stored.
* **Confidence intervals**: 95% Student-t interval of the mean over users of those averaged values.

On a cold-start split (``protocol.split = "cold-items"``) every result has three tasks, ``warm``,
``cold`` and ``overall`` (:mod:`gan4rec.evaluation.cold`). Tuning maximises
:func:`gan4rec.experiment.cold_objective` on validation (the mean of the warm and cold tasks' metric, or the
warm task's for a model that cannot score cold items); each run is :func:`gan4rec.experiment.run_cold`
(hybrids calibrated on the validation overall task, test read once). The leaderboard, the best model and
the significance tests are per task (:func:`gan4rec.leaderboard.task_summary`): each task's users are the
same for all its models, and Holm corrects within the task. A model that cannot score cold items has
``None`` for the cold task. No top-K lists are timed and no popularity statistics are computed there.

The result is one JSON-ready dict (see :func:`compare`); :func:`gan4rec.report.write_report` renders it.

Experiment configs (TOML, ``configs/experiments/*.toml``) describe a whole comparison; see
:func:`gan4rec.config.load_experiment`. Paths inside a config are relative to the current working directory (where the
command runs), not to the config file, like paths given as flags.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gan4rec.config import EXPERIMENT_KEYS, load_experiment
from gan4rec.errors import DataError, MissingInputError
from gan4rec.experiment import (
    DataSpec,
    Protocol,
    data_record,
    load_split,
    protocol_record,
    run_on_split,
)
from gan4rec.leaderboard import (
    STD_NOTE,
    leaderboard_rows,
    leaderboard_text,
    model_entry,
    pool_users,
    significance_tests,
    task_summary,
    user_ci,
)
from gan4rec.popularity import (
    POPULARITY_BUCKETS,
    popularity_buckets,
    popularity_summary,
    recommend_counts,
    run_popularity,
    train_popularity,
)

# EXPERIMENT_KEYS, POPULARITY_BUCKETS, leaderboard_text and load_experiment live in gan4rec.config,
# gan4rec.popularity and gan4rec.leaderboard; they are re-exported here for callers of the old home.
__all__ = [
    "DEMO_MODELS",
    "DEMO_SEARCH_SPACES",
    "DEMO_TIMEOUT_PER_MODEL",
    "DEMO_TRIALS",
    "EXPERIMENT_KEYS",
    "POPULARITY_BUCKETS",
    "compare",
    "demo_experiment",
    "experiment_record",
    "experiment_toml",
    "leaderboard_text",
    "load_experiment",
]

log = logging.getLogger(__name__)

#: Models of ``gan4rec demo``, in leaderboard-tie order; those not in this build are skipped.
DEMO_MODELS: tuple[str, ...] = ("cfgan", "irgan", "ease", "itemknn", "toppop")

#: Tuning trials per model in the demo: a fixed count, so every machine runs the same search.
DEMO_TRIALS = 4

#: The demo's tuning time box per model, seconds: a guard, several times what a model needs on 2 idle cores.
DEMO_TIMEOUT_PER_MODEL = 120.0

#: The demo's small search spaces, around each model's defaults (TopPop has nothing to tune).
DEMO_SEARCH_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "cfgan": {"alpha": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
              "zr_ratio": {"type": "float", "low": 0.3, "high": 0.9}},
    "irgan": {"d_lr": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
              "tau": {"type": "float", "low": 0.1, "high": 1.0, "log": True}},
    "ease": {"l2": {"type": "float", "low": 50.0, "high": 5000.0, "log": True}},
    "itemknn": {"topk": {"type": "int", "low": 20, "high": 400, "log": True},
                "shrink": {"type": "int", "low": 0, "high": 100}},
}


# ---------------------------------------------------------------------------------------------- configs
def demo_experiment(n_users: int = 500, n_items: int = 800) -> dict[str, Any]:
    """The experiment of ``gan4rec demo`` (``configs/experiments/demo.toml`` holds the same one).

    A synthetic dataset with ML-100K's density (6.25%), a random 80/20 split with 20% of train for
    validation, one seed, and :data:`DEMO_TRIALS` tuning trials per model in a small search space around
    each model's good defaults (:data:`DEMO_SEARCH_SPACES`). The trial count, not the clock, sets the
    search, so the demo gives the same leaderboard on every machine; the time box
    (:data:`DEMO_TIMEOUT_PER_MODEL`) is only a guard, with a WARNING when it cuts a model short.
    """
    for name, value in (("n_users", n_users), ("n_items", n_items)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 20:
            raise DataError(f"{name}={value!r}; expected an integer >= 20")
    n_interactions = round(n_users * n_items * 0.0625)
    return {
        "description": "gan4rec demo: GAN recommenders against strong classic baselines on synthetic data",
        "models": list(DEMO_MODELS),
        # The GANs' epochs are capped so the whole demo stays within 3 minutes on 2 cores; early stopping
        # on validation still picks the epoch within the cap.
        "params": {"cfgan": {"epochs": 40, "eval_every": 5, "patience": 2},
                   "irgan": {"epochs": 4, "pretrain_epochs": 30}},
        "seeds": 1,
        "trials": DEMO_TRIALS,
        "splits": 1,
        "timeout_per_model": DEMO_TIMEOUT_PER_MODEL,
        "skip_missing_models": True,
        "data": {"dataset": "synthetic",
                 "synthetic": {"n_users": n_users, "n_items": n_items, "n_interactions": n_interactions,
                               "random_state": 0}},
        "protocol": {"split": "random", "test_frac": 0.2, "valid_frac": 0.2, "split_seed": 42,
                     "ks": (5, 10, 20), "metric": "NDCG@20"},
        "search_space": {name: {p: dict(spec) for p, spec in space.items()}
                         for name, space in DEMO_SEARCH_SPACES.items()},
    }


def experiment_record(
    models: Mapping[str, Mapping[str, Any]],
    spec: DataSpec,
    protocol: Protocol,
    *,
    seeds: Sequence[int],
    trials: int,
    splits: int,
    timeout_per_model: float | None,
    skip_missing: bool = False,
    description: str = "",
    search_spaces: Mapping[str, Mapping[str, Any]] | None = None,
    wide: bool = False,
    defaults_first: bool = False,
) -> dict[str, Any]:
    """The effective experiment as a config dict: :func:`experiment_toml` of it reproduces the run."""
    data = data_record(spec)
    proto = {k: v for k, v in protocol_record(protocol).items() if k != "evaluation"}
    out: dict[str, Any] = {}
    if description:
        out["description"] = description
    out.update({
        "models": list(models),
        "seeds": [int(s) for s in seeds],
        "trials": int(trials),
        "splits": int(splits),
    })
    if timeout_per_model is not None:
        out["timeout_per_model"] = float(timeout_per_model)
    if skip_missing:
        out["skip_missing_models"] = True
    out.update({key: True for key, on in (("wide", wide), ("defaults_first", defaults_first)) if on})
    out["data"] = data
    out["protocol"] = proto
    params = {name: dict(p) for name, p in models.items() if p}
    if params:
        out["params"] = params
    if search_spaces:
        out["search_space"] = {name: {p: dict(spec) for p, spec in space.items()} for name, space in search_spaces.items()}
    return _clean(out)


def experiment_toml(record: Mapping[str, Any]) -> str:
    """TOML text of an :func:`experiment_record`, loadable by :func:`load_experiment`."""
    import tomli_w

    doc = {k: v for k, v in record.items() if v is not None}
    header = (
        "# gan4rec experiment config, written by `gan4rec compare`: `gan4rec compare --config THIS_FILE`\n"
        "# reproduces the run. Paths are relative to the directory the command runs in.\n"
    )
    # TOML has no null, so a param fixed to None cannot be written: say so rather than reproduce silently wrong.
    lost = [f"params.{model}.{name}" for model, params in (record.get("params") or {}).items()
            for name, value in params.items() if value is None]
    if lost:
        header += (f"# WARNING: {', '.join(lost)} = None has no TOML form and is left out here, so the model's "
                   "default applies when this file is run.\n")
    return header + tomli_w.dumps(_drop_none(doc))


def _drop_none(obj: Any) -> Any:
    # TOML has no null: absent means default.
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj if v is not None]
    return obj


# ---------------------------------------------------------------------------------------------- compare
def compare(
    models: Sequence[str] | Mapping[str, Mapping[str, Any] | None],
    spec: DataSpec,
    protocol: Protocol,
    *,
    seeds: int | Sequence[int],
    trials: int,
    splits: int = 1,
    timeout_per_model: float | None = None,
    config: Mapping[str, Any] | None = None,
    device: str | None = None,
    skip_missing: bool = False,
    description: str = "",
    search_spaces: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    wide: bool = False,
    defaults_first: bool = False,
) -> dict[str, Any]:
    """Run the comparison protocol of the module docstring and return a JSON-ready result.

    Parameters
    ----------
    models
        Registry names, or ``{name: fixed params}`` (params held fixed, not searched).
    spec, protocol
        Data source and protocol; split ``i`` uses ``split_seed = protocol.split_seed + i``. The K of
        ``protocol.metric`` is added to ``protocol.ks`` when missing.
    seeds
        Model seeds: a count ``N`` (seeds ``0..N-1``) or explicit seeds. Tuning uses the first.
    trials
        Tuning trials per model, the same for all; ``0`` runs every model with its defaults + fixed params.
    splits
        Number of splits (random and leave-k-out splits; a temporal split is the same every time).
    timeout_per_model
        The tuning time box of each model (the same for all): after it no trial starts and a running
        epoch-based fit stops at its next validation; a WARNING says when it cut a model's search short,
        and ``results.NAME.tuning`` records the trials each model got.
    config
        The experiment config this run came from (``load_experiment(...)["source"]``), recorded verbatim.
    device
        Torch device for training and evaluation (``None``: CUDA when available).
    skip_missing
        Skip, with a warning, models that are not in :data:`gan4rec.models.MODELS` (else a DataError).
    description
        Free text recorded with the result and shown in the report.
    search_spaces
        ``{name: search space}`` replacing a model's declared ``search_space`` (e.g. the demo's small spaces
        around good defaults). A model searched in its own space also runs its ``published_configs`` first.
    wide
        Search ``search_space_wide`` for the models that declare one (others: their ``search_space``).
    defaults_first
        Each model's first trial is its defaults (:func:`gan4rec.tuning.tune`'s ``defaults_first``).

    Returns
    -------
    dict
        ``kind="compare"``, ``experiment`` (the effective config) and ``experiment_toml``, ``config``,
        ``models``, ``skipped``, ``dataset``, ``splits``, ``protocol``, ``seeds``, ``metric``, ``best``,
        ``leaderboard`` (rows sorted by mean ``metric``), ``results`` (one entry per model in the schema
        of ``gan4rec train``: ``metrics.test`` is the mean over runs, ``metrics.test_std`` the sample std (``std`` says so), plus
        ``per_seed``, ``tuning``, ``user_ci95``, ``history``, ``popularity``), ``significance`` (every
        p-value), ``popularity``, ``versions``, ``seconds`` and ``created``. On a cold-start split also
        ``tasks`` and ``objective``; ``best``, ``leaderboard`` and ``significance`` are ``{task: ...}``,
        every entry's metrics are ``{task: metrics or None}``, and ``popularity`` is ``None``.
    """
    t_start = time.perf_counter()
    wanted, skipped = _available_models(models, skip_missing)
    seed_list = _seed_list(seeds)
    spaces = _search_spaces(wanted, search_spaces or {}, wide, defaults_first)
    protocol, k = _checked_protocol(protocol, spec, wanted, spaces, trials=trials, splits=splits,
                                    timeout_per_model=timeout_per_model)
    acc = _Runs(wanted)
    cold = protocol.split == "cold-items"
    for s in range(int(splits)):
        run_split = _run_cold_split if cold else _run_split
        run_split(acc, s, spec, dataclasses.replace(protocol, split_seed=protocol.split_seed + s), wanted,
                  spaces, splits=int(splits), seed_list=seed_list, trials=int(trials), timeout=timeout_per_model, k=k,
                  device=device)
    summary = _summarise_cold(acc, wanted, protocol.metric) if cold else _summarise(acc, wanted, protocol.metric, k)
    record = experiment_record(wanted, spec, protocol, seeds=seed_list, trials=int(trials), splits=int(splits),
                               timeout_per_model=timeout_per_model, skip_missing=skip_missing,
                               description=description, search_spaces=search_spaces, wide=wide,
                               defaults_first=defaults_first)
    out = {
        "kind": "compare",
        "description": description,
        "experiment": record,
        "experiment_toml": experiment_toml(record),
        "config": dict(config) if config else None,
        "models": list(wanted),
        "skipped": skipped,
        "dataset": acc.split_records[0]["dataset"],
        "splits": acc.split_records,
        "protocol": protocol_record(protocol),
        "seeds": seed_list,
        "trials": int(trials),
        "timeout_per_model": timeout_per_model,
        "metric": protocol.metric,
        "std": STD_NOTE,
        **summary,
        "versions": _versions(),
        "seconds": round(time.perf_counter() - t_start, 3),
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
    }
    return _clean(out)


class _Runs:
    """What the runs of every split accumulate, model by model, for :func:`_summarise`."""

    def __init__(self, names: Iterable[str]) -> None:
        self.runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        self.tuning: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        self.histories: dict[str, dict[str, Any] | None] = {}
        self.user_values: dict[str, list[dict[str, np.ndarray]]] = {n: [] for n in names}  # per split: metric -> (n_u,)
        self.split_users: list[np.ndarray] = []
        self.split_records: list[dict[str, Any]] = []
        self.pop_train: list[dict[str, Any]] = []
        # Cold-start splits: task -> model -> per split {metric: (n_u,)}, and task -> per split users.
        self.task_values: dict[str, dict[str, list[dict[str, np.ndarray]]]] = {}
        self.task_users: dict[str, dict[int, np.ndarray]] = {}

    def task_users_of(self, task: str, s: int, users: np.ndarray, name: str) -> None:
        """Record split ``s``'s users of ``task``, or check that ``name``'s are the same as the others'."""
        seen = self.task_users.setdefault(task, {})
        if s not in seen:
            seen[s] = np.array(users, dtype=np.int64)  # a writable copy
        elif not np.array_equal(seen[s], users):
            raise RuntimeError(f"{name}: evaluated {task}-task test users differ from the other models' on split {s}")


def _available_models(
    models: Sequence[str] | Mapping[str, Mapping[str, Any] | None], skip_missing: bool
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The models to run with their fixed params (checked), and those skipped as not in this build."""
    from gan4rec.models import MODELS

    wanted = _model_params(models)
    skipped: dict[str, str] = {}
    for name in list(wanted):
        if name not in MODELS:
            if not skip_missing:
                raise DataError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
            skipped[name] = "not in this build"
            del wanted[name]
            log.warning("skipping %s: not in this build (known models: %s)", name, ", ".join(MODELS))
    if not wanted:
        raise DataError(f"none of the models {', '.join(skipped)} is in this build; known: {', '.join(MODELS)}")
    for name, params in wanted.items():
        MODELS[name].check_params(params)
    return wanted, skipped


def _checked_protocol(
    protocol: Protocol, spec: DataSpec, wanted: Mapping[str, Mapping[str, Any]], spaces: Mapping[str, Any], *,
    trials: int, splits: int,
    timeout_per_model: float | None,
) -> tuple[Protocol, int]:
    """Check the budget and the protocol; return the protocol with the K of its metric evaluated, and K."""
    from gan4rec.evaluation.metrics import RANKING_METRICS

    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 0:
        raise DataError(f"trials={trials!r}; expected an integer >= 0 (0 = no tuning)")
    if isinstance(splits, bool) or not isinstance(splits, (int, np.integer)) or splits < 1:
        raise DataError(f"splits={splits!r}; expected an integer >= 1")
    if timeout_per_model is not None and not (isinstance(timeout_per_model, (int, float)) and timeout_per_model > 0):
        raise DataError(f"timeout_per_model={timeout_per_model!r}; expected a positive number of seconds or None")
    family, _, k_text = protocol.metric.partition("@")
    if family not in RANKING_METRICS or not k_text.isdigit() or int(k_text) < 1:
        raise DataError(
            f"protocol.metric={protocol.metric!r}; expected NAME@K with NAME among {', '.join(RANKING_METRICS)}"
        )
    k = int(k_text)
    if k not in protocol.ks:
        protocol = dataclasses.replace(protocol, ks=tuple(sorted({*protocol.ks, k})))
        log.info("added K=%d of %s to the evaluated cut-offs", k, protocol.metric)
    tuned_models = [n for n in wanted if trials > 0 and spaces[n][0]]
    if tuned_models and protocol.valid_frac == 0:
        raise DataError(
            f"tuning {', '.join(tuned_models)} needs a validation split but protocol.valid_frac=0; "
            "set valid_frac > 0 or trials=0"
        )
    if splits > 1 and protocol.split == "temporal":
        raise DataError(f"splits={splits} with a temporal split: every split would be the same; use splits=1")
    if splits > 1 and spec.source() == "train/test":
        log.warning("pre-split train/test files: the %d splits differ only in their validation part", splits)
    return protocol, k


def _run_split(
    acc: _Runs, s: int, spec: DataSpec, proto_s: Protocol, wanted: Mapping[str, dict[str, Any]],
    spaces: Mapping[str, tuple[dict[str, Any], bool, bool]], *, splits: int,
    seed_list: list[int], trials: int, timeout: float | None, k: int, device: str | None,
) -> None:
    """Split ``s``: make it, then tune every model on its validation and refit + test it once per seed."""
    split, info = load_split(spec, proto_s)
    assert split.test is not None  # load_split always makes a test part
    acc.split_records.append({"index": s, "split_seed": proto_s.split_seed, "fingerprint": split.fingerprint,
                              "dataset": info})
    log.info("split %d/%d: %d users x %d items, %d train / %d valid / %d test interactions (%s)",
             s + 1, splits, info["n_users"], info["n_items"], info["n_fit"], info["n_valid"], info["n_test"],
             split.fingerprint[:12])
    evaluated_train = split.full_train() if (split.valid is None or proto_s.refit == "full") else split.train
    buckets, train_pop = popularity_buckets(evaluated_train)
    acc.pop_train.append(train_popularity(buckets, train_pop, evaluated_train))
    exclude = split.valid if evaluated_train is split.train and split.valid is not None else None
    users_s: np.ndarray | None = None
    for name, fixed in wanted.items():
        tuned, best_model = _tune_one(name, fixed, spaces[name], split, proto_s, trials=trials, timeout=timeout,
                                      seed=seed_list[0], device=device)
        acc.tuning[name].append({"split": s, **tuned})
        sums: dict[str, np.ndarray] = {}
        for seed in seed_list:
            # The tuning seed's first fit is the best trial's: reuse it rather than fit it again.
            reuse = best_model if seed == seed_list[0] else None
            rr = run_on_split(name, tuned["best_params"], split, info, proto_s, seed=seed, device=device,
                              fitted=reuse, fitted_seconds=tuned.get("best_fit_seconds", 0.0))
            best_model = None
            ev = rr.test_eval
            if users_s is None:
                users_s = np.array(ev.users, dtype=np.int64)  # a writable copy: torch wraps it when scoring
            elif not np.array_equal(users_s, ev.users):
                raise RuntimeError(f"{name}: evaluated test users differ from the other models' on split {s}")
            for metric, values in ev.per_user.items():
                sums[metric] = sums.get(metric, 0.0) + np.asarray(values, dtype=np.float64)
            counts, rec_seconds = recommend_counts(rr.model, users_s, k, exclude)
            run = {
                "split": s, "split_seed": proto_s.split_seed, "split_fingerprint": split.fingerprint,
                "seed": int(seed), "metrics": rr.result["metrics"], "fit_seconds": rr.result["fit_seconds"],
                "eval_seconds": rr.result["eval_seconds"], "recommend_seconds": round(rec_seconds, 4),
                "params": rr.result["params"], "refit_params": rr.result["refit_params"],
                "popularity": run_popularity(counts, buckets, train_pop, evaluated_train),
            }
            acc.runs[name].append({"result": rr.result, **run})
            if name not in acc.histories:
                acc.histories[name] = _history_record(rr.model.history_, proto_s.metric, s, int(seed))
            log.info("%s split %d seed %d: test %s = %.4f (fit %.2f s, recommend %.3f s)", name, s, seed,
                     proto_s.metric, rr.result["metrics"]["test"].get(proto_s.metric, math.nan),
                     rr.result["fit_seconds"], rec_seconds)
        acc.user_values[name].append({m: v / len(seed_list) for m, v in sums.items()})
    assert users_s is not None
    acc.split_users.append(users_s)


def _run_cold_split(
    acc: _Runs, s: int, spec: DataSpec, proto_s: Protocol, wanted: Mapping[str, dict[str, Any]],
    spaces: Mapping[str, tuple[dict[str, Any], bool, bool]], *, splits: int,
    seed_list: list[int], trials: int, timeout: float | None, k: int, device: str | None,
) -> None:
    """:func:`_run_split` on a cold-start split: tune on the cold objective, then run_cold per seed, and
    keep each task's per-user values (averaged over the seeds) for the per-task significance tests."""
    from gan4rec.experiment import cold_objective_value

    split, info = load_split(spec, proto_s)
    acc.split_records.append({"index": s, "split_seed": proto_s.split_seed, "fingerprint": split.fingerprint,
                              "dataset": info})
    log.info("cold-items split %d/%d: %d users x %d items, %d train / %d valid / %d test interactions (%s)",
             s + 1, splits, info["n_users"], info["n_items"], info["n_fit"], info["n_valid"], info["n_test"],
             split.fingerprint[:12])
    for name, fixed in wanted.items():
        tuned, best_model = _tune_one(name, fixed, spaces[name], split, proto_s, trials=trials, timeout=timeout,
                                      seed=seed_list[0], device=device)
        acc.tuning[name].append({"split": s, **tuned})
        sums: dict[str, dict[str, np.ndarray]] = {}
        for seed in seed_list:
            reuse = best_model if seed == seed_list[0] else None
            rr = run_on_split(name, tuned["best_params"], split, info, proto_s, seed=seed, device=device,
                              fitted=reuse, fitted_seconds=tuned.get("best_fit_seconds", 0.0))
            best_model = None
            assert rr.task_evals is not None  # run_cold always sets them
            for task, ev in rr.task_evals.items():
                acc.task_users_of(task, s, ev.users, name)
                task_sums = sums.setdefault(task, {})
                for m, values in ev.per_user.items():
                    task_sums[m] = task_sums.get(m, 0.0) + np.asarray(values, dtype=np.float64)
            res = rr.result
            run = {
                "split": s, "split_seed": proto_s.split_seed, "split_fingerprint": split.fingerprint,
                "seed": int(seed), "metrics": res["metrics"], "fit_seconds": res["fit_seconds"],
                "eval_seconds": res["eval_seconds"], "params": res["params"], "refit_params": res["refit_params"],
                "valid_objective": cold_objective_value(res["metrics"]["valid"], proto_s.metric),
                "calibration": res.get("calibration"),
            }
            acc.runs[name].append({"result": res, **run})
            if name not in acc.histories:
                acc.histories[name] = _history_record(rr.model.history_, proto_s.metric, s, int(seed))
            log.info("%s split %d seed %d: test %s %s (fit %.2f s)", name, s, seed, proto_s.metric,
                     ", ".join(f"{t} {'cannot' if v is None else format(v[proto_s.metric], '.4f')}"
                               for t, v in res["metrics"]["test"].items()), res["fit_seconds"])
        for task, task_sums in sums.items():
            acc.task_values.setdefault(task, {}).setdefault(name, []).append(
                {m: v / len(seed_list) for m, v in task_sums.items()})


def _summarise_cold(acc: _Runs, wanted: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """:func:`_summarise` of a cold-start comparison: per-model entries, then each task ranked and tested."""
    from gan4rec.evaluation.cold import COLD_TASKS
    from gan4rec.models import MODELS

    results = {}
    for name in wanted:
        results[name] = model_entry(name, acc.runs[name], acc.tuning[name], acc.histories.get(name), MODELS[name])
        results[name]["cold_start"] = bool(MODELS[name].cold_start)
    split_users = {t: [users[s] for s in sorted(users)] for t, users in acc.task_users.items()}
    summary = task_summary(results, acc.task_values, split_users, metric, COLD_TASKS)
    objective = (f"validation mean of the warm and cold tasks' {metric} (warm task only for a model that cannot "
                 "score cold items)")
    return {"tasks": list(COLD_TASKS), "objective": objective, **summary, "results": results, "popularity": None}


def _summarise(acc: _Runs, wanted: Mapping[str, Any], metric: str, k: int) -> dict[str, Any]:
    """Per-model entries, the best model, significance, leaderboard and popularity over all runs."""
    from gan4rec.models import MODELS

    results = {name: model_entry(name, acc.runs[name], acc.tuning[name], acc.histories.get(name), MODELS[name])
               for name in wanted}
    per_user, units = pool_users(acc.user_values, acc.split_users)
    for name, entry in results.items():
        entry["user_ci95"] = user_ci(per_user[name])
    best = max(wanted, key=lambda n: (results[n]["metrics"]["test"].get(metric, -math.inf), -list(wanted).index(n)))
    significance = significance_tests(per_user, best, metric, len(units))
    leaderboard = leaderboard_rows(results, significance, metric, best)
    popularity = popularity_summary(acc.pop_train, {n: [r["popularity"] for r in acc.runs[n]] for n in wanted}, k)
    for name in wanted:
        results[name]["popularity"] = popularity["models"][name]
    return {"best": best, "leaderboard": leaderboard, "results": results, "significance": significance,
            "popularity": popularity}


def _versions() -> dict[str, str]:
    from gan4rec.models.base import versions

    vers = versions()
    try:
        import optuna

        vers["optuna"] = optuna.__version__
    except ImportError:
        pass
    return vers


def _model_params(models: Sequence[str] | Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    if isinstance(models, str):
        raise DataError(f"models={models!r}; expected a list of registry names, not one string")
    if isinstance(models, Mapping):
        out = {str(n): dict(p or {}) for n, p in models.items()}
    else:
        names = list(models)
        if len(set(names)) != len(names):
            raise DataError(f"models={names!r} lists a model twice")
        out = {str(n): {} for n in names}
    if not out:
        raise DataError("models is empty; expected at least one registry name")
    return out


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise DataError(f"seeds={seeds!r}; expected a count >= 1 or a list of seeds")
        return list(range(int(seeds)))
    out = list(seeds) if isinstance(seeds, Sequence) and not isinstance(seeds, str) else None
    if not out or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in out):
        raise DataError(f"seeds={seeds!r}; expected a count >= 1 or a non-empty list of seeds >= 0")
    if len(set(out)) != len(out):
        raise DataError(f"seeds={out!r} repeats a seed")
    return [int(s) for s in out]


def _search_spaces(
    wanted: Mapping[str, Mapping[str, Any]], given: Mapping[str, Mapping[str, Any]], wide: bool, defaults_first: bool
) -> dict[str, tuple[dict[str, Any], bool, bool]]:
    """Each model's (search space without fixed params, own space: published configs run first, defaults first)."""
    from gan4rec.models import MODELS

    for name in given:
        if name not in wanted:
            raise DataError(f"search space given for {name!r}, which is not among the models {', '.join(wanted)}")
    out = {}
    for name, fixed in wanted.items():
        cls = MODELS[name]
        own = name not in given
        if not own:
            space = {p: dict(spec) for p, spec in given[name].items()}
            cls.check_params(dict.fromkeys(space))
        elif wide and getattr(cls, "search_space_wide", None) is not None:
            space = dict(cls.search_space_wide)  # type: ignore[attr-defined]
        else:
            space = dict(cls.search_space)
        out[name] = ({p: spec for p, spec in space.items() if p not in fixed}, own, defaults_first)
    return out


def _tune_one(
    name: str, fixed: dict[str, Any], space: tuple[dict[str, Any], bool, bool], split: Any, protocol: Protocol, *,
    trials: int, timeout: float | None, seed: int, device: str | None,
) -> tuple[dict[str, Any], Any]:
    """Tune one model on validation; a model with nothing to search keeps its defaults + fixed params.

    Returns the tuning record and the best trial's fitted model (or ``None``) for the first seed's run.
    """
    if trials == 0 or not space[0]:
        reason = "trials=0" if trials == 0 else "empty search space"
        log.info("%s: not tuned (%s); defaults + fixed params", name, reason)
        return {"tuned": False, "reason": reason, "best_params": dict(fixed), "best_value": None, "n_trials": 0,
                "seconds": 0.0, "trials": []}, None
    try:
        import optuna  # noqa: F401  # tune() needs it; fail with the fix rather than a traceback
    except ImportError:
        raise MissingInputError(
            f"tuning {name} needs optuna, which is not installed; pip install 'gan4rec[tune]' or pass trials=0"
        ) from None
    from gan4rec.tuning import TimeBoxError, tune

    log.info("%s: tuning on validation (%d trials%s)", name, trials,
             f", {timeout:g} s time box" if timeout is not None else "")
    try:
        res = tune(name, split, n_trials=trials, metric=protocol.metric, ks=protocol.ks, fixed_params=fixed,
                   search_space=space[0], published=space[1], defaults_first=space[2], timeout=timeout, seed=seed,
                   device=device, valid_repeats=protocol.valid_repeats)
    except TimeBoxError as e:
        log.warning("%s: %s; running it with its defaults + fixed params instead", name, e)
        return {"tuned": False, "reason": f"time box: {e}", "best_params": dict(fixed), "best_value": None,
                "n_trials": e.n_run, "n_time_boxed": e.n_time_boxed, "n_requested": trials, "timed_out": True,
                "seconds": float(timeout or 0.0), "trials": []}, None
    log.info("%s: best validation %s = %.4f; %s (%.1f s)", name,
             "cold objective" if protocol.split == "cold-items" else res.metric, res.best_value, res.summary(),
             res.seconds)
    return {"tuned": True, "reason": None, "best_params": res.best_params, "best_value": res.best_value,
            "metric": res.metric, "n_trials": res.n_run, "n_requested": trials, "n_complete": res.n_complete,
            "n_pruned": res.n_pruned, "n_failed": res.n_failed, "n_time_boxed": res.n_time_boxed,
            "timed_out": res.time_boxed, "seconds": round(res.seconds, 3), "study_name": res.study_name,
            "best_fit_seconds": res.best_fit_seconds, "reused_best_fit": res.best_model is not None,
            "search_space": res.search_space, "trials": res.trials}, res.best_model


def _history_record(history: list[dict[str, Any]] | None, metric: str, split: int, seed: int) -> dict[str, Any] | None:
    """The per-epoch log of a run, cut into the validated fit and the refit on the full training data."""
    if not history:
        return None
    rows = [dict(r) for r in history]
    cut = next((i for i in range(1, len(rows)) if rows[i].get("epoch", 0) <= rows[i - 1].get("epoch", 0)), len(rows))
    fit_rows, refit_rows = rows[:cut], rows[cut:]
    keys = [key for r in fit_rows for key in r if key.startswith("valid_") and key != "valid_seconds"]
    selection = f"valid_{metric}" if f"valid_{metric}" in keys else (keys[0] if keys else None)
    best_epoch = None
    if selection is not None:
        scored = [(r[selection], -i, r.get("epoch")) for i, r in enumerate(fit_rows)
                  if isinstance(r.get(selection), (int, float)) and math.isfinite(r[selection])]
        if scored:
            best_epoch = max(scored)[2]
    return {"split": split, "seed": seed, "fit": fit_rows, "refit": refit_rows, "selection_key": selection,
            "best_epoch": best_epoch}


def _clean(obj: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays converted, non-finite floats as ``None``."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj
