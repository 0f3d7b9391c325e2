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

The result is one JSON-ready dict (see :func:`compare`); :func:`gan4rec.report.write_report` renders it.

Experiment configs (TOML, ``configs/experiments/*.toml``) describe a whole comparison; see
:func:`load_experiment`. Paths inside a config are relative to the current working directory (where the
command runs), not to the config file, like paths given as flags.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import logging
import math
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gan4rec.errors import DataError, MissingInputError
from gan4rec.experiment import DataSpec, Protocol, load_split, protocol_record, run_on_split

__all__ = [
    "DEMO_MODELS",
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

#: Top-level keys an experiment config may hold.
EXPERIMENT_KEYS: tuple[str, ...] = (
    "description", "models", "params", "model_configs", "seeds", "trials", "splits", "timeout_per_model",
    "skip_missing_models", "data", "protocol",
)

#: Item-popularity buckets of the popularity-bias statistics (equal numbers of items, most popular first).
POPULARITY_BUCKETS = 10

_ALPHA = 0.05
_RECOMMEND_BATCH = 1024
# Share of the least popular items counted as the long tail (buckets 3..10 of 10 = the bottom 80 %).
_TAIL_FROM_BUCKET = 2


# ---------------------------------------------------------------------------------------------- configs
def load_experiment(path: str | Path) -> dict[str, Any]:
    """Read and check a TOML experiment config.

    Keys (all optional; command-line flags override them):

    - ``description``: free text shown in the report.
    - ``models``: registry names, e.g. ``["cfgan", "ease", "toppop"]``.
    - ``[params.NAME]``: params of model ``NAME`` held fixed (not searched while tuning).
    - ``[model_configs]``: ``NAME = "configs/NAME.toml"``, a model config (``model``, ``[params]``) whose
      params are held fixed; ``[params.NAME]`` entries override it.
    - ``seeds`` (int N for seeds 0..N-1, or a list), ``trials`` (per model, >= 0), ``splits`` (>= 1),
      ``timeout_per_model`` (seconds of tuning per model).
    - ``skip_missing_models``: skip (with a warning) listed models that this build does not have.
    - ``[data]``: the :class:`~gan4rec.experiment.DataSpec` fields (``dataset``, ``train``, ``test``,
      ``format``...). Paths are relative to the current working directory.
    - ``[protocol]``: the :class:`~gan4rec.experiment.Protocol` fields (``split``, ``valid_frac``, ``ks``,
      ``metric``...).

    Returns
    -------
    dict
        The keys above with ``params`` resolved (model configs merged in) and ``source``: the path, the
        sha256 and the text of the file, recorded with every result.
    """
    from gan4rec.experiment import load_config

    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"{p}: no such experiment config file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
        cfg = tomllib.loads(text)
    except UnicodeDecodeError:
        raise DataError(f"{p}: not UTF-8 text; expected a TOML experiment config") from None
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{p}: invalid TOML ({e})") from None
    for key in cfg:
        if key not in EXPERIMENT_KEYS:
            raise DataError(f"{p}: unknown key {key!r}; expected keys among {', '.join(EXPERIMENT_KEYS)}")
    out: dict[str, Any] = {}
    if "description" in cfg:
        out["description"] = _expect(cfg["description"], str, p, "description", "a string")
    if "models" in cfg:
        models = cfg["models"]
        if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
            raise DataError(f"{p}: models = {models!r}; expected a non-empty list of registry names")
        if len(set(models)) != len(models):
            raise DataError(f"{p}: models = {models!r} lists a model twice")
        out["models"] = list(models)
    params: dict[str, dict[str, Any]] = {}
    configs = cfg.get("model_configs", {})
    if not isinstance(configs, dict):
        raise DataError(f"{p}: [model_configs] must be a table of NAME = \"path/to/model.toml\"")
    for name, cfg_path in configs.items():
        if not isinstance(cfg_path, str):
            raise DataError(f"{p}: model_configs.{name} = {cfg_path!r}; expected a path string")
        model_cfg = load_config(cfg_path)
        if model_cfg.get("model", name) != name:
            raise DataError(
                f"{p}: model_configs.{name} = {cfg_path!r} configures model {model_cfg['model']!r}, not {name!r}"
            )
        params[name] = dict(model_cfg.get("params", {}))
    table = cfg.get("params", {})
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise DataError(f"{p}: [params] must hold one table per model, e.g. [params.ease] l2 = 500.0")
    for name, values in table.items():
        params[name] = {**params.get(name, {}), **values}
    out["params"] = params
    if configs:
        out["model_configs"] = dict(configs)
    if "seeds" in cfg:
        seeds = cfg["seeds"]
        if isinstance(seeds, list):
            if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
                raise DataError(f"{p}: seeds = {seeds!r}; expected a count >= 1 or a non-empty list of seeds >= 0")
        else:
            _expect_int(seeds, p, "seeds", 1)
        out["seeds"] = seeds
    if "trials" in cfg:
        out["trials"] = _expect_int(cfg["trials"], p, "trials", 0)
    if "splits" in cfg:
        out["splits"] = _expect_int(cfg["splits"], p, "splits", 1)
    if "timeout_per_model" in cfg:
        t = cfg["timeout_per_model"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise DataError(f"{p}: timeout_per_model = {t!r}; expected a positive number of seconds")
        out["timeout_per_model"] = float(t)
    if "skip_missing_models" in cfg:
        out["skip_missing_models"] = _expect(cfg["skip_missing_models"], bool, p, "skip_missing_models", "true or false")
    for table_name, cls in (("data", DataSpec), ("protocol", Protocol)):
        section = cfg.get(table_name, {})
        if not isinstance(section, dict):
            raise DataError(f"{p}: [{table_name}] must be a table")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in section:
            if key not in known:
                raise DataError(f"{p}: unknown {table_name} key {key!r}; expected keys among {', '.join(sorted(known))}")
        out[table_name] = dict(section)
    if "ks" in out["protocol"]:
        out["protocol"]["ks"] = tuple(out["protocol"]["ks"])
    out["source"] = {"path": str(p), "sha256": hashlib.sha256(raw).hexdigest(), "text": text}
    return out


def _expect(value: Any, kind: type, path: Path, key: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise DataError(f"{path}: {key} = {value!r}; expected {what}")
    return value


def _expect_int(value: Any, path: Path, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DataError(f"{path}: {key} = {value!r}; expected an integer >= {low}")
    return value


def demo_experiment(n_users: int = 500, n_items: int = 800) -> dict[str, Any]:
    """The experiment of ``gan4rec demo`` (``configs/experiments/demo.toml`` holds the same one).

    A synthetic dataset with ML-100K's density (6.25%), a random 80/20 split with 20% of train for
    validation, 3 tuning trials and a 20 s tuning time box per model, one seed.
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
        "trials": 3,
        "splits": 1,
        "timeout_per_model": 20.0,
        "skip_missing_models": True,
        "data": {"dataset": "synthetic",
                 "synthetic": {"n_users": n_users, "n_items": n_items, "n_interactions": n_interactions,
                               "random_state": 0}},
        "protocol": {"split": "random", "test_frac": 0.2, "valid_frac": 0.2, "split_seed": 42,
                     "ks": (5, 10, 20), "metric": "NDCG@20"},
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
) -> dict[str, Any]:
    """The effective experiment as a config dict: :func:`experiment_toml` of it reproduces the run."""
    data = {}
    defaults = DataSpec()
    for f in dataclasses.fields(DataSpec):
        value = getattr(spec, f.name)
        if value is not None and value != getattr(defaults, f.name):
            data[f.name] = dict(value) if isinstance(value, dict) else value
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
    out["data"] = data
    out["protocol"] = proto
    params = {name: dict(p) for name, p in models.items() if p}
    if params:
        out["params"] = params
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
        Seconds after which a model's tuning starts no new trial (the same box for every model).
    config
        The experiment config this run came from (``load_experiment(...)["source"]``), recorded verbatim.
    device
        Torch device for training and evaluation (``None``: CUDA when available).
    skip_missing
        Skip, with a warning, models that are not in :data:`gan4rec.models.MODELS` (else a DataError).
    description
        Free text recorded with the result and shown in the report.

    Returns
    -------
    dict
        ``kind="compare"``, ``experiment`` (the effective config) and ``experiment_toml``, ``config``,
        ``models``, ``skipped``, ``dataset``, ``splits``, ``protocol``, ``seeds``, ``metric``, ``best``,
        ``leaderboard`` (rows sorted by mean ``metric``), ``results`` (one entry per model in the schema
        of ``gan4rec train``: ``metrics.test`` is the mean over runs, ``metrics.test_std`` the std, plus
        ``per_seed``, ``tuning``, ``user_ci95``, ``history``, ``popularity``), ``significance`` (every
        p-value), ``popularity``, ``versions``, ``seconds`` and ``created``.
    """
    from gan4rec.evaluation.metrics import RANKING_METRICS
    from gan4rec.models import MODELS

    t_start = time.perf_counter()
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
    seed_list = _seed_list(seeds)
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
    tuned_models = [n for n in wanted if trials > 0 and _search_space(n, wanted[n])]
    if tuned_models and protocol.valid_frac == 0:
        raise DataError(
            f"tuning {', '.join(tuned_models)} needs a validation split but protocol.valid_frac=0; "
            "set valid_frac > 0 or trials=0"
        )
    if splits > 1 and protocol.split == "temporal":
        raise DataError(f"splits={splits} with a temporal split: every split would be the same; use splits=1")
    if splits > 1 and spec.source() == "train/test":
        log.warning("pre-split train/test files: the %d splits differ only in their validation part", splits)

    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in wanted}
    tuning: dict[str, list[dict[str, Any]]] = {n: [] for n in wanted}
    histories: dict[str, dict[str, Any] | None] = {}
    user_values: dict[str, list[dict[str, np.ndarray]]] = {n: [] for n in wanted}  # per split: metric -> (n_u,)
    split_users: list[np.ndarray] = []
    split_records: list[dict[str, Any]] = []
    pop_train: list[dict[str, Any]] = []
    for s in range(int(splits)):
        proto_s = dataclasses.replace(protocol, split_seed=protocol.split_seed + s)
        split, info = load_split(spec, proto_s)
        assert split.test is not None  # load_split always makes a test part
        split_records.append({"index": s, "split_seed": proto_s.split_seed, "fingerprint": split.fingerprint,
                              "dataset": info})
        log.info("split %d/%d: %d users x %d items, %d train / %d valid / %d test interactions (%s)",
                 s + 1, splits, info["n_users"], info["n_items"], info["n_fit"], info["n_valid"], info["n_test"],
                 split.fingerprint[:12])
        evaluated_train = split.full_train() if (split.valid is None or proto_s.refit == "full") else split.train
        buckets, train_pop = _popularity_buckets(evaluated_train)
        pop_train.append(_train_popularity(buckets, train_pop, evaluated_train))
        users_s: np.ndarray | None = None
        for name, fixed in wanted.items():
            tuned = _tune_one(name, fixed, split, proto_s, trials=int(trials), timeout=timeout_per_model,
                              seed=seed_list[0], device=device)
            tuning[name].append({"split": s, **tuned})
            sums: dict[str, np.ndarray] = {}
            for seed in seed_list:
                rr = run_on_split(name, tuned["best_params"], split, info, proto_s, seed=seed, device=device)
                ev = rr.test_eval
                if users_s is None:
                    users_s = np.array(ev.users, dtype=np.int64)  # a writable copy: torch wraps it when scoring
                elif not np.array_equal(users_s, ev.users):
                    raise RuntimeError(f"{name}: evaluated test users differ from the other models' on split {s}")
                for metric, values in ev.per_user.items():
                    sums[metric] = sums.get(metric, 0.0) + np.asarray(values, dtype=np.float64)
                exclude = split.valid if evaluated_train is split.train and split.valid is not None else None
                counts, rec_seconds = _recommend_counts(rr.model, users_s, k, exclude)
                run = {
                    "split": s, "split_seed": proto_s.split_seed, "split_fingerprint": split.fingerprint,
                    "seed": int(seed), "metrics": rr.result["metrics"], "fit_seconds": rr.result["fit_seconds"],
                    "eval_seconds": rr.result["eval_seconds"], "recommend_seconds": round(rec_seconds, 4),
                    "params": rr.result["params"], "refit_params": rr.result["refit_params"],
                    "popularity": _run_popularity(counts, buckets, train_pop, evaluated_train),
                }
                runs[name].append({"result": rr.result, **run})
                if name not in histories:
                    histories[name] = _history_record(rr.model.history_, proto_s.metric, s, int(seed))
                log.info("%s split %d seed %d: test %s = %.4f (fit %.2f s, recommend %.3f s)", name, s, seed,
                         proto_s.metric, rr.result["metrics"]["test"].get(proto_s.metric, math.nan),
                         rr.result["fit_seconds"], rec_seconds)
            user_values[name].append({m: v / len(seed_list) for m, v in sums.items()})
        assert users_s is not None
        split_users.append(users_s)

    results = {name: _model_entry(name, runs[name], tuning[name], histories.get(name), MODELS[name])
               for name in wanted}
    per_user, units = _pool_users(user_values, split_users)
    for name, entry in results.items():
        entry["user_ci95"] = _user_ci(per_user[name])
    best = max(wanted, key=lambda n: (results[n]["metrics"]["test"].get(protocol.metric, -math.inf),
                                      -list(wanted).index(n)))
    significance = _significance(per_user, best, protocol.metric, len(units))
    leaderboard = _leaderboard(results, significance, protocol.metric, best)
    popularity = _popularity_summary(pop_train, {n: [r["popularity"] for r in runs[n]] for n in wanted}, k)
    for name in wanted:
        results[name]["popularity"] = popularity["models"][name]

    record = experiment_record(wanted, spec, protocol, seeds=seed_list, trials=int(trials), splits=int(splits),
                               timeout_per_model=timeout_per_model, skip_missing=skip_missing,
                               description=description)
    from gan4rec.models.base import versions

    vers = versions()
    try:
        import optuna

        vers["optuna"] = optuna.__version__
    except ImportError:
        pass
    out = {
        "kind": "compare",
        "description": description,
        "experiment": record,
        "experiment_toml": experiment_toml(record),
        "config": dict(config) if config else None,
        "models": list(wanted),
        "skipped": skipped,
        "dataset": split_records[0]["dataset"],
        "splits": split_records,
        "protocol": protocol_record(protocol),
        "seeds": seed_list,
        "trials": int(trials),
        "timeout_per_model": timeout_per_model,
        "metric": protocol.metric,
        "best": best,
        "leaderboard": leaderboard,
        "results": results,
        "significance": significance,
        "popularity": popularity,
        "versions": vers,
        "seconds": round(time.perf_counter() - t_start, 3),
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
    }
    return _clean(out)


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


def _search_space(name: str, fixed: Mapping[str, Any]) -> dict[str, Any]:
    from gan4rec.models import MODELS

    return {p: s for p, s in MODELS[name].search_space.items() if p not in fixed}


def _tune_one(
    name: str, fixed: dict[str, Any], split: Any, protocol: Protocol, *, trials: int, timeout: float | None,
    seed: int, device: str | None,
) -> dict[str, Any]:
    """Tune one model on validation; a model with nothing to search keeps its defaults + fixed params."""
    space = _search_space(name, fixed)
    if trials == 0 or not space:
        reason = "trials=0" if trials == 0 else "empty search space"
        log.info("%s: not tuned (%s); defaults + fixed params", name, reason)
        return {"tuned": False, "reason": reason, "best_params": dict(fixed), "best_value": None, "n_trials": 0,
                "seconds": 0.0, "trials": []}
    try:
        import optuna  # noqa: F401  # tune() needs it; fail with the fix rather than a traceback
    except ImportError:
        raise MissingInputError(
            f"tuning {name} needs optuna, which is not installed; pip install 'gan4rec[tune]' or pass trials=0"
        ) from None
    from gan4rec.tuning import tune

    log.info("%s: tuning on validation (%d trials%s)", name, trials,
             f", {timeout:g} s time box" if timeout is not None else "")
    res = tune(name, split, n_trials=trials, metric=protocol.metric, ks=protocol.ks, fixed_params=fixed,
               timeout=timeout, seed=seed, device=device, valid_repeats=protocol.valid_repeats)
    n_complete = sum(t["state"] == "COMPLETE" for t in res.trials)
    log.info("%s: best validation %s = %.4f after %d trials (%.1f s)", name, res.metric, res.best_value,
             len(res.trials), res.seconds)
    return {"tuned": True, "reason": None, "best_params": res.best_params, "best_value": res.best_value,
            "metric": res.metric, "n_trials": len(res.trials), "n_complete": n_complete,
            "timed_out": len(res.trials) < trials, "seconds": round(res.seconds, 3), "study_name": res.study_name,
            "trials": res.trials}


def _recommend_counts(model: Any, users: np.ndarray, k: int, exclude: Any) -> tuple[np.ndarray, float]:
    """How often each item is in the top-``k`` of ``users``, and the wall time of recommending them all."""
    counts = np.zeros(model.n_items, dtype=np.int64)  # (n_items,)
    t0 = time.perf_counter()
    for start in range(0, len(users), _RECOMMEND_BATCH):
        items, _ = model.recommend(users[start : start + _RECOMMEND_BATCH], k, exclude_seen=True, exclude=exclude)
        flat = items.reshape(-1)  # (batch * k,)
        counts += np.bincount(flat[flat >= 0], minlength=model.n_items)
    return counts, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- popularity
def _popularity_buckets(train: Any) -> tuple[np.ndarray, np.ndarray]:
    """Bucket of each item (0 = most popular tenth of the items) and the items' training popularity."""
    pop = np.asarray(train.item_counts(), dtype=np.int64)  # (n_items,)
    n = len(pop)
    order = np.argsort(-pop, kind="stable")  # (n_items,) most popular first, ties by item index
    buckets = np.empty(n, dtype=np.int64)
    buckets[order] = np.arange(n, dtype=np.int64) * POPULARITY_BUCKETS // max(n, 1)
    return buckets, pop


def _n_train_users(train: Any) -> int:
    return max(int(np.count_nonzero(train.user_counts())), 1)


def _train_popularity(buckets: np.ndarray, pop: np.ndarray, train: Any) -> dict[str, Any]:
    total = max(int(pop.sum()), 1)
    share = np.bincount(buckets, weights=pop, minlength=POPULARITY_BUCKETS) / total  # (n_buckets,)
    n_users = _n_train_users(train)
    return {
        "share": share,
        # A random training interaction's item: what users consume, the reference for recommendations.
        "mean_popularity": float((pop.astype(np.float64) ** 2).sum() / total / n_users),
        "tail_share": float(share[_TAIL_FROM_BUCKET:].sum()),
    }


def _run_popularity(counts: np.ndarray, buckets: np.ndarray, pop: np.ndarray, train: Any) -> dict[str, Any]:
    total = max(int(counts.sum()), 1)
    share = np.bincount(buckets, weights=counts, minlength=POPULARITY_BUCKETS) / total  # (n_buckets,)
    return {
        "share": share,
        "coverage": float(np.count_nonzero(counts) / max(len(counts), 1)),
        "mean_popularity": float((counts * pop.astype(np.float64)).sum() / total / _n_train_users(train)),
        "tail_share": float(share[_TAIL_FROM_BUCKET:].sum()),
    }


def _popularity_summary(train: list[dict[str, Any]], per_model: dict[str, list[dict[str, Any]]], k: int) -> dict[str, Any]:
    def avg(rows: list[dict[str, Any]], key: str) -> Any:
        values = [np.asarray(r[key], dtype=np.float64) for r in rows]
        return np.mean(values, axis=0)

    return {
        "k": k,
        "n_buckets": POPULARITY_BUCKETS,
        "buckets": "items sorted by training popularity (distinct users), most popular first, cut into equal-size "
                   "groups; share = fraction of training interactions / of recommendations in each group",
        "mean_popularity": "mean over (recommended or training) items of the share of training users who "
                           "interacted with the item",
        "tail": f"the {100 - 100 * _TAIL_FROM_BUCKET // POPULARITY_BUCKETS}% least popular items",
        "train_share": avg(train, "share"),
        "train_mean_popularity": float(avg(train, "mean_popularity")),
        "train_tail_share": float(avg(train, "tail_share")),
        "models": {
            name: {"share": avg(rows, "share"), "coverage": float(avg(rows, "coverage")),
                   "mean_popularity": float(avg(rows, "mean_popularity")), "tail_share": float(avg(rows, "tail_share"))}
            for name, rows in per_model.items()
        },
    }


# ---------------------------------------------------------------------------------------------- aggregation
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


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _model_entry(
    name: str, runs: list[dict[str, Any]], tuning: list[dict[str, Any]], history: dict[str, Any] | None, cls: Any
) -> dict[str, Any]:
    """One model's result, in the schema of ``gan4rec train`` (means over runs) plus the per-run values."""
    first = runs[0]["result"]
    test_keys = list(first["metrics"]["test"])
    test_mean, test_std = {}, {}
    for key in test_keys:
        test_mean[key], test_std[key] = _mean_std([r["metrics"]["test"][key] for r in runs])
    valid = None
    if all(r["metrics"]["valid"] is not None for r in runs):
        valid = {key: float(np.mean([r["metrics"]["valid"][key] for r in runs])) for key in first["metrics"]["valid"]}
    timing = {key: _mean_std([r[key] for r in runs]) for key in ("fit_seconds", "eval_seconds", "recommend_seconds")}
    return {
        "model": name,
        "adversarial": bool(cls.adversarial),
        "dataset": first["dataset"],
        "protocol": first["protocol"],
        "seed": sorted({r["seed"] for r in runs}),
        "params": first["params"],
        "best_params": tuning[0]["best_params"],
        "refit_params": first["refit_params"],
        "fit_seconds": round(timing["fit_seconds"][0], 4),
        "fit_seconds_std": round(timing["fit_seconds"][1], 4),
        "eval_seconds": round(timing["eval_seconds"][0], 4),
        "recommend_seconds": round(timing["recommend_seconds"][0], 4),
        "recommend_seconds_std": round(timing["recommend_seconds"][1], 4),
        "tune_seconds": round(sum(t["seconds"] for t in tuning), 3),
        "metrics": {"valid": valid, "test": test_mean, "test_std": test_std},
        "n_runs": len(runs),
        "versions": first["versions"],
        "per_seed": [{k: v for k, v in r.items() if k != "result"} for r in runs],
        "tuning": [{k: v for k, v in t.items()} for t in tuning],
        "history": history,
    }


def _pool_users(
    user_values: dict[str, list[dict[str, np.ndarray]]], split_users: list[np.ndarray]
) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """Per-user values averaged over the splits where the user is a test user, aligned across models."""
    all_users = np.concatenate(split_users)  # (sum of test users over splits,)
    units, inverse = np.unique(all_users, return_inverse=True)  # units: (n_units,)
    counts = np.bincount(inverse, minlength=len(units)).astype(np.float64)  # (n_units,)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, per_split in user_values.items():
        out[name] = {}
        for metric in per_split[0]:
            values = np.concatenate([ps[metric] for ps in per_split])  # aligned with all_users
            out[name][metric] = np.bincount(inverse, weights=values, minlength=len(units)) / counts
    return out, units


def _user_ci(per_user: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    from gan4rec.evaluation.significance import mean_ci

    out = {}
    for metric, values in per_user.items():
        mean, low, high = mean_ci(values, 0.95)
        out[metric] = {"mean": mean, "low": low, "high": high, "n_users": len(values)}
    return out


def _significance(per_user: dict[str, dict[str, np.ndarray]], best: str, metric: str, n_units: int) -> dict[str, Any]:
    from gan4rec.evaluation.significance import holm, paired_ttest, paired_wilcoxon

    others = [n for n in per_user if n != best]
    tests: dict[str, dict[str, Any]] = {}
    for m in per_user[best]:
        a = per_user[best][m]
        rows: dict[str, Any] = {}
        for name in others:
            b = per_user[name][m]
            diff = a - b
            rows[name] = {
                "mean_best": float(a.mean()), "mean_model": float(b.mean()), "mean_diff": float(diff.mean()),
                "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum()),
                "wilcoxon": paired_wilcoxon(a, b).to_json(), "ttest": paired_ttest(a, b).to_json(),
            }
        for test in ("wilcoxon", "ttest"):
            adjusted = holm([rows[n][test]["p"] for n in others])
            for name, p in zip(others, adjusted, strict=True):
                rows[name][test]["p_holm"] = float(p)
        tests[m] = rows
    return {
        "best": best,
        "metric": metric,
        "alpha": _ALPHA,
        "unit": "test user; each user's metric averaged over the seeds (and over the splits where the user is "
                "a test user)",
        "n_users": int(n_units),
        "alternative": "two-sided",
        "correction": "Holm over the models compared with the best, separately for each test and metric",
        "tests": tests,
    }


def _leaderboard(results: dict[str, Any], significance: dict[str, Any], metric: str, best: str) -> list[dict[str, Any]]:
    order = sorted(results, key=lambda n: (-results[n]["metrics"]["test"].get(metric, -math.inf), list(results).index(n)))
    rows = []
    tests = significance["tests"].get(metric, {})
    for rank, name in enumerate(order, 1):
        e = results[name]
        t = tests.get(name)
        ci = e["user_ci95"].get(metric, {})
        rows.append({
            "rank": rank, "model": name, "adversarial": e["adversarial"], "metric": metric,
            "mean": e["metrics"]["test"].get(metric), "std": e["metrics"]["test_std"].get(metric),
            "ci95": [ci.get("low"), ci.get("high")],
            "p_wilcoxon_holm": None if t is None else t["wilcoxon"]["p_holm"],
            "p_ttest_holm": None if t is None else t["ttest"]["p_holm"],
            "significant": None if t is None else bool(t["wilcoxon"]["p_holm"] <= _ALPHA),
            "fit_seconds": e["fit_seconds"], "recommend_seconds": e["recommend_seconds"],
            "tune_seconds": e["tune_seconds"], "is_best": name == best,
        })
    return rows


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


# ---------------------------------------------------------------------------------------------- text
def leaderboard_text(result: Mapping[str, Any]) -> str:
    """The leaderboard as a fixed-width text table, for the terminal."""
    metric = result["metric"]
    k = metric.split("@")[1]
    n_runs = len(result["seeds"]) * len(result["splits"])
    extra = [m for m in (f"Recall@{k}", f"Coverage@{k}") if m in result["results"][result["best"]]["metrics"]["test"]]
    head = ["#", "model", f"{metric} mean +- std", *extra, "fit s", "rec s", f"p vs {result['best']}"]
    lines = []
    for row in result["leaderboard"]:
        e = result["results"][row["model"]]
        cells = [str(row["rank"]), row["model"] + (" (GAN)" if row["adversarial"] else ""),
                 f"{_num(row['mean'])} +- {_num(row['std'])}"]
        cells += [_num(e["metrics"]["test"].get(m)) for m in extra]
        cells += [f"{e['fit_seconds']:.2f}", f"{e['recommend_seconds']:.3f}"]
        p = row["p_wilcoxon_holm"]
        cells.append("best" if row["is_best"] else f"{_p(p)}{' *' if row['significant'] else ''}")
        lines.append(cells)
    widths = [max(len(c) for c in col) for col in zip(head, *lines, strict=True)]
    fmt = "  ".join(f"{{:{'<' if i == 1 else '>'}{w}}}" for i, w in enumerate(widths))
    out = [(f"leaderboard: test {metric}, mean +- std over {n_runs} run(s) "
            f"({len(result['seeds'])} seed(s) x {len(result['splits'])} split(s)); "
            f"p: paired Wilcoxon across {result['significance']['n_users']} users, Holm-corrected, * p <= 0.05"),
           fmt.format(*head)]
    out += [fmt.format(*cells) for cells in lines]
    sig = result["significance"]
    tests = sig["tests"].get(metric, {})
    for name in (row["model"] for row in result["leaderboard"] if row["model"] in tests):
        t = tests[name]
        out.append(f"{sig['best']} vs {name}: {metric} diff {t['mean_diff']:+.4f}, users better/tied/worse "
                   f"{t['wins']}/{t['ties']}/{t['losses']}; Wilcoxon p = {_p(t['wilcoxon']['p'])} "
                   f"(Holm {_p(t['wilcoxon']['p_holm'])}), t-test p = {_p(t['ttest']['p'])} "
                   f"(Holm {_p(t['ttest']['p_holm'])})")
    if result.get("skipped"):
        out.append("skipped: " + ", ".join(f"{n} ({why})" for n, why in result["skipped"].items()))
    return "\n".join(out)


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _p(p: Any) -> str:
    if p is None:
        return "n/a"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.1e}"
