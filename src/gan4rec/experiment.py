"""One honest experiment: load data, split, fit with validation, refit, test once.

This is the library behind ``gan4rec train`` and ``gan4rec evaluate``; the CLI only parses and prints.

The protocol, in order:

1. Load the data (a dataset by name, one file, or pre-split train and test files).
2. Split. A single source is split into train/test by :attr:`Protocol.split`; validation is carved from
   train by the same rule (pre-split data: a per-user random 20% holdout of train, seed 42).
3. Fit on train minus validation; validation drives early stopping and gives ``metrics.valid``.
4. ``refit="full"`` (default): refit on the whole train with what validation chose
   (:meth:`Recommender.refit_params`, e.g. the best epoch count). ``refit="none"``: keep the model of step 3.
5. Evaluate test once: full ranking over all items, the user's training items excluded (and, without a
   refit, the validation items too, since they are part of the user's history).

With ``valid_frac = 0`` (a paper replica) steps 3-4 collapse to one fit on the whole train and
``metrics.valid`` is ``None``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from gan4rec.data.interactions import Interactions
from gan4rec.data.split import ColdSplit, Split
from gan4rec.errors import DataError
from gan4rec.models import create
from gan4rec.models.base import Recommender, versions

__all__ = [
    "COLD_ITEMS_FRAC", "DataSpec", "Protocol", "RunResult", "cold_objective", "cold_objective_value",
    "config_protocol", "data_record", "evaluate_model", "load_split",
    "protocol_record", "run", "run_cold", "run_on_split",
]

log = logging.getLogger(__name__)

SPLIT_KINDS = ("random", "leave-k-out", "temporal", "cold-items")
#: The cold-items split's default test and validation fractions (shares of the warm interactions), GAR's.
COLD_ITEMS_FRAC = 0.1

@dataclass
class DataSpec:
    """Where the interactions come from and how they are read.

    Exactly one source: ``dataset`` (a registry name, ``synthetic`` by default), ``data`` (one file), or
    ``train`` and ``test`` (pre-split files). ``item_features`` adds an item-feature file of the user's,
    joined by item id (:func:`gan4rec.data.io.attach_item_features`): a long table ``item,feature[,value]``,
    or, with ``item_features_text`` naming its text column, a text table made TF-IDF (``max_features``,
    ``min_df``).
    """

    dataset: str | None = None
    data: str | None = None
    train: str | None = None
    test: str | None = None
    format: str = "auto"
    min_rating: float | None = None
    columns: dict[str, str] | None = None
    sep: str | None = None
    on_bad_rows: str = "error"
    duplicates: str = "last"
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    synthetic: dict[str, Any] = field(default_factory=dict)
    item_features: str | None = None
    item_features_text: str | None = None
    max_features: int | None = None
    min_df: float = 1

    def __post_init__(self) -> None:
        for key in ("item_features", "item_features_text"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise DataError(f"data.{key} = {value!r}; expected a non-empty string")
        mf, md = self.max_features, self.min_df
        if mf is not None and (isinstance(mf, bool) or not isinstance(mf, int) or mf < 1):
            raise DataError(f"data.max_features = {mf!r}; expected an integer >= 1")
        if isinstance(md, bool) or not ((isinstance(md, int) and md >= 1) or (isinstance(md, float) and 0 < md < 1)):
            raise DataError(f"data.min_df = {md!r}; expected a document count >= 1 or a share in (0, 1)")
        given = [k for k in ("item_features_text", "max_features") if getattr(self, k) is not None]
        given += ["min_df"] if md != 1 else []
        if given and self.item_features is None:
            raise DataError(f"data.{given[0]} needs data.item_features (the feature file)")
        if self.item_features_text is None and (mf is not None or md != 1):
            raise DataError("data.max_features and data.min_df apply to a text column: set data.item_features_text")

    def source(self) -> str:
        given = [n for n in ("dataset", "data") if getattr(self, n)] + (
            ["train/test"] if self.train or self.test else []
        )
        if len(given) > 1:
            raise DataError(f"give one data source, not {' and '.join(given)}")
        if (self.train is None) != (self.test is None):
            raise DataError("--train and --test go together")
        return given[0] if given else "dataset"

    def describe(self) -> dict[str, Any]:
        src = self.source()
        if src == "data":
            return {"file": str(self.data), "format": self.format}
        if src == "train/test":
            return {"train": str(self.train), "test": str(self.test), "format": self.format}
        out: dict[str, Any] = {"name": self.dataset or "synthetic"}
        if (self.dataset or "synthetic") == "synthetic" and self.synthetic:
            out["synthetic"] = self.synthetic
        return out


@dataclass
class Protocol:
    """How data is split and results are computed. Recorded in every result's ``protocol`` key."""

    split: str = "random"
    test_frac: float = None  # type: ignore[assignment]  # None: the split's default (see __post_init__)
    valid_frac: float = None  # type: ignore[assignment]
    k: int = 1
    split_seed: int = 42
    refit: str = "full"
    ks: tuple[int, ...] = (5, 10, 20)
    metric: str = "NDCG@20"
    valid_repeats: int = 1
    """Tuning scores each trial on this many validation carvings (seeds split_seed, +1, ...) and uses their
    mean (:func:`gan4rec.tuning.validation_carvings`); fitting, early stopping and the final run use the
    first. Only tuning reads it."""

    def __post_init__(self) -> None:
        if self.split not in SPLIT_KINDS:
            raise DataError(f"protocol.split={self.split!r}; expected one of {', '.join(SPLIT_KINDS)}")
        # Fractions left unset take the split's default: 0.2 each, or GAR's 80/10/10 of the warm interactions
        # for cold-items; flags, configs and Python callers all get the same rule.
        default = COLD_ITEMS_FRAC if self.split == "cold-items" else 0.2
        if self.test_frac is None:
            self.test_frac = default
        if self.valid_frac is None:
            self.valid_frac = default
        if self.refit not in ("full", "none"):
            raise DataError(f"protocol.refit={self.refit!r}; expected 'full' or 'none'")
        if not 0 <= self.valid_frac < 1:
            raise DataError(f"protocol.valid_frac={self.valid_frac}; expected a fraction in [0, 1)")
        if not 0 < self.test_frac < 1:
            raise DataError(f"protocol.test_frac={self.test_frac}; expected a fraction in (0, 1)")
        if isinstance(self.valid_repeats, bool) or not isinstance(self.valid_repeats, int) or self.valid_repeats < 1:
            raise DataError(f"protocol.valid_repeats={self.valid_repeats!r}; expected an integer >= 1")
        if self.valid_repeats > 1 and (self.valid_frac == 0 or self.split != "random"):
            raise DataError(
                f"protocol.valid_repeats={self.valid_repeats} needs a random validation holdout "
                "(split 'random' or pre-split train/test files, valid_frac > 0)"
            )
        self.ks = tuple(int(k) for k in self.ks)
        if not self.ks or min(self.ks) < 1:
            raise DataError(f"protocol.ks={self.ks}; expected positive list lengths")


@dataclass
class RunResult:
    """What :func:`run` returns: the final model, the split it used, and the JSON-ready result."""

    model: Recommender
    split: Split
    result: dict[str, Any]
    test_eval: Any = None
    """The test :class:`~gan4rec.evaluation.evaluator.EvalResult`, with per-user values (significance tests)."""
    task_evals: dict[str, Any] | None = None
    """On a cold-start split, the test EvalResult of each task the model ran (``"warm"``, ``"cold"``,
    ``"overall"``; no ``"cold"`` for a model that cannot score cold items); ``None`` on other splits."""


def load_split(spec: DataSpec, protocol: Protocol) -> tuple[Split, dict[str, Any]]:
    """Read the data named by ``spec`` and split it by ``protocol``.

    Returns the split and a JSON-ready description of the dataset (source, sizes, fingerprint).
    """
    from gan4rec.data import io
    from gan4rec.data.split import make_split, presplit

    src = spec.source()
    read_kw: dict[str, Any] = {
        "min_rating": spec.min_rating,
        "duplicates": spec.duplicates,
        "on_bad_rows": spec.on_bad_rows,
    }
    if spec.columns:
        read_kw["columns"] = spec.columns
    if spec.sep:
        read_kw["sep"] = spec.sep
    kcore: dict[str, Any] = {
        "min_user_interactions": spec.min_user_interactions,
        "min_item_interactions": spec.min_item_interactions,
    }
    if src == "train/test":
        if protocol.split == "cold-items":
            raise DataError("protocol.split='cold-items' holds out whole items from one data source; pre-split "
                            "train/test files cannot be split that way (give --data or --dataset)")
        if spec.min_user_interactions or spec.min_item_interactions:
            raise DataError("k-core filters do not apply to pre-split train/test files")
        assert spec.train is not None and spec.test is not None  # source() checked they come together
        fmt: Any = spec.format
        train, test = io.read_uir_pair(spec.train, spec.test, format=fmt, **read_kw)
        (train, feats_info), (test, _) = _item_features(train, spec), _item_features(test, spec)
        split = presplit(train, test, valid_frac=protocol.valid_frac, random_state=protocol.split_seed)
    else:
        if src == "data":
            assert spec.data is not None
            data = io.read_interactions(spec.data, format=spec.format, **read_kw, **kcore)  # type: ignore[arg-type]
        else:
            from gan4rec.data.datasets import load_dataset

            name = spec.dataset or "synthetic"
            kw: dict[str, Any] = dict(spec.synthetic) if name == "synthetic" else {"min_rating": spec.min_rating}
            data = load_dataset(name, **kw)
            if spec.min_user_interactions or spec.min_item_interactions:
                data = data.filter(**kcore)
        split_kw: dict[str, Any] = {"valid_frac": protocol.valid_frac, "random_state": protocol.split_seed}
        if protocol.split == "cold-items":
            # GAR/ALDI's protocol: test_frac and valid_frac are shares of the WARM interactions.
            split_kw["test_frac"] = protocol.test_frac
        elif protocol.split == "leave-k-out":
            split_kw = {"k": protocol.k, "valid_k": protocol.k if protocol.valid_frac > 0 else 0,
                        "random_state": protocol.split_seed}
        else:
            split_kw["test_frac"] = protocol.test_frac
            if protocol.split == "temporal":
                split_kw.pop("random_state")
        data, feats_info = _item_features(data, spec)
        split = make_split(data, protocol.split, **split_kw)
    assert split.test is not None  # every split made here has a test part
    info = {
        **spec.describe(),
        "n_users": split.train.n_users,
        "n_items": split.train.n_items,
        "n_train": split.train.nnz + (split.valid.nnz if split.valid is not None else 0),
        "n_fit": split.train.nnz,
        "n_valid": split.valid.nnz if split.valid is not None else 0,
        "n_test": split.test.nnz,
        "split_fingerprint": split.fingerprint,
        **({"item_features": feats_info} if feats_info else {}),
    }
    return split, info


def _item_features(data: Interactions, spec: DataSpec) -> tuple[Interactions, dict[str, Any] | None]:
    """``data`` with the item-feature file of ``spec`` (if any) joined in, and what was read."""
    if spec.item_features is None:
        return data, None
    from gan4rec.data.io import attach_item_features

    return attach_item_features(data, spec.item_features, text_column=spec.item_features_text,
                                max_features=spec.max_features, min_df=spec.min_df)


def _evaluate(
    model: Recommender, train: Interactions, target: Interactions, protocol: Protocol,
    exclude: tuple[Interactions, ...] = (), device: str | None = None,
) -> Any:
    from gan4rec.evaluation.evaluator import evaluate

    return evaluate(model.score, train, target, ks=protocol.ks, exclude=exclude, device=device)


def protocol_record(protocol: Protocol, split: Split | None = None) -> dict[str, Any]:
    """The ``protocol`` key of a result: the split/refit choices plus the evaluator's defaults.

    Given the ``split`` the protocol made, it records the split that really happened: pre-split train/test
    files record ``split = "presplit"`` and no ``test_frac`` (the files fixed the test set). Such a record
    is not a :class:`Protocol` again; :func:`config_protocol` gives the loadable form.
    """
    from gan4rec.evaluation.evaluator import PROTOCOL

    out = dataclasses.asdict(protocol)
    out["ks"] = list(protocol.ks)
    if split is not None and split.spec.get("kind") == "presplit":
        out["split"] = "presplit"
        del out["test_frac"]
    return {**out, "evaluation": PROTOCOL}


def config_protocol(protocol: Protocol, split: Split | None = None) -> dict[str, Any]:
    """The ``[protocol]`` table of a config that reproduces a run: :class:`Protocol` fields, loadable.

    For pre-split train/test files it leaves out ``split`` and ``test_frac``, which do not apply (the
    config's ``[data]`` table names the files).
    """
    out = {k: v for k, v in protocol_record(protocol).items() if k != "evaluation"}
    if split is not None and split.spec.get("kind") == "presplit":
        out.pop("split")
        out.pop("test_frac")
    return out


def data_record(spec: DataSpec) -> dict[str, Any]:
    """The ``[data]`` table of a config that reproduces a run: the :class:`DataSpec` fields not at their default."""
    out = {}
    defaults = DataSpec()
    for f in dataclasses.fields(DataSpec):
        value = getattr(spec, f.name)
        if value is not None and value != getattr(defaults, f.name):
            out[f.name] = dict(value) if isinstance(value, dict) else value
    return out


def run(
    model_name: str,
    params: dict[str, Any] | None,
    spec: DataSpec,
    protocol: Protocol,
    *,
    seed: int = 0,
    device: str | None = None,
) -> RunResult:
    """Run the whole honest protocol (module docstring) for one model and seed."""
    create(model_name, params, random_state=seed)  # fail on bad params before reading data
    split, data_info = load_split(spec, protocol)
    return run_on_split(model_name, params, split, data_info, protocol, seed=seed, device=device)


def run_on_split(
    model_name: str,
    params: dict[str, Any] | None,
    split: Split,
    data_info: dict[str, Any],
    protocol: Protocol,
    *,
    seed: int = 0,
    device: str | None = None,
    fitted: Recommender | None = None,
    fitted_seconds: float = 0.0,
) -> RunResult:
    """Steps 3-5 of the protocol on an already-made split: fit with validation, refit, test once.

    ``fitted`` is a model already fitted by step 3, with these params and this seed, on ``split.train``
    with ``split.valid`` (e.g. the best tuning trial's, :attr:`gan4rec.tuning.TuneResult.best_model`):
    its fit is not repeated, and ``fitted_seconds`` is recorded as its fit time.
    """
    params = dict(params or {})
    if split.test is None:
        raise DataError("the split has no test part to evaluate")
    if isinstance(split, ColdSplit):
        return run_cold(model_name, params, split, data_info, protocol, seed=seed, device=device, fitted=fitted,
                        fitted_seconds=fitted_seconds)
    model, fit_seconds = _fit(model_name, params, split, protocol, seed, device, fitted, fitted_seconds)
    valid_metrics = None
    if split.valid is not None:
        valid_metrics = _evaluate(model, split.train, split.valid, protocol, device=device).metrics
        log.info("validation %s = %.4f", protocol.metric, valid_metrics.get(protocol.metric, float("nan")))

    test_train, exclude = split.train, () if split.valid is None else (split.valid,)
    refit_params: dict[str, Any] = {}
    if split.valid is not None and protocol.refit == "full":
        refit_params = model.refit_params()
        test_train, exclude = split.full_train(), ()
        model, fit_seconds = _refit(model, model_name, {**params, **refit_params}, test_train, seed, device)

    t0 = time.perf_counter()
    test_eval = _evaluate(model, test_train, split.test, protocol, exclude=exclude, device=device)
    result = _record(model_name, model, data_info, protocol, seed, refit_params, fit_seconds,
                     time.perf_counter() - t0, {"valid": valid_metrics, "test": test_eval.metrics})
    return RunResult(model=model, split=split, result=result, test_eval=test_eval)


def _fit(
    model_name: str, params: dict[str, Any], split: Split, protocol: Protocol, seed: int, device: str | None,
    fitted: Recommender | None, fitted_seconds: float,
) -> tuple[Recommender, float]:
    """Step 3: a model fitted on ``split.train`` with ``split.valid`` (or the one tuning already fitted)."""
    if fitted is not None:
        return fitted, fitted_seconds
    model = create(model_name, params, random_state=seed, device=device)
    t0 = time.perf_counter()
    model.fit(split.train, split.valid, metric=protocol.metric)
    return model, time.perf_counter() - t0


def _refit(
    model: Recommender, model_name: str, params: dict[str, Any], train: Interactions, seed: int,
    device: str | None,
) -> tuple[Recommender, float]:
    """Step 4: a new model with ``params`` (those validation chose included) fitted on ``train``; the
    validation run's history is kept in front of the refit's."""
    history = model.history_
    refit = create(model_name, params, random_state=seed, device=device)
    t0 = time.perf_counter()
    refit.fit(train, None)
    seconds = time.perf_counter() - t0
    refit.history_ = history + refit.history_ if history else refit.history_
    return refit, seconds


def _record(
    model_name: str, model: Recommender, data_info: dict[str, Any], protocol: Protocol, seed: int,
    refit_params: dict[str, Any], fit_seconds: float, eval_seconds: float, metrics: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """The JSON record of one run."""
    return {
        "model": model_name,
        "dataset": data_info,
        "protocol": protocol_record(protocol),
        "seed": seed,
        "params": model.get_params(),
        "refit_params": refit_params,
        **extra,
        "fit_seconds": round(fit_seconds, 4),
        "eval_seconds": round(eval_seconds, 4),
        "metrics": metrics,
        "versions": versions(),
    }


def _cold_score_fn(model: Recommender, train: Interactions) -> Any:
    """``model.score``; for a model that cannot score cold items, those items (no training interaction) are
    scored ``-inf``, so they rank last in every task instead of at whatever constant the model gives them."""
    if model.cold_start:
        return model.score
    from gan4rec.evaluation.cold import masked_scores

    return masked_scores(model.score, train.item_counts() == 0)


def _cold_metrics(
    model: Recommender, split: ColdSplit, part: str, train: Interactions, ks: Any, device: str | None,
    tasks: tuple[str, ...] = ("warm", "cold", "overall"),
) -> tuple[dict[str, dict[str, float] | None], dict[str, Any]]:
    """The metrics of ``model`` on ``part`` for each of ``tasks`` (``None`` for a task not run: the cold
    task of a model that cannot score cold items), and each task's EvalResult (per-user values)."""
    from gan4rec.evaluation.cold import evaluate_cold

    run = tasks if model.cold_start else tuple(t for t in tasks if t != "cold")
    res = evaluate_cold(_cold_score_fn(model, train), split, part=part, train=train,  # type: ignore[arg-type]
                        ks=ks, tasks=run, device=device)
    return {t: (res[t].metrics if t in res else None) for t in tasks}, res


def cold_objective_value(task_metrics: dict[str, dict[str, float] | None], metric: str) -> float:
    """The cold-items tuning objective from validation task metrics: the mean of the warm and cold ``metric``
    where the cold task was run (a model that can score cold items), else the warm ``metric``.

    Each of these tasks ranks one population of items (warm or cold), so the value hardly depends on the
    calibration of cold-item scores against warm ones, which is chosen after tuning (uncalibrated during
    tuning). Hardly: a hybrid calibrates every item without a training interaction, which includes the
    few warm items whose interactions all fell into validation or test
    (:mod:`gan4rec.models.hybrid.common`).
    """
    values = [task_metrics[t][metric] for t in ("warm", "cold") if task_metrics.get(t) is not None]  # type: ignore[index]
    if not values or task_metrics.get("warm") is None:
        raise DataError(f"the cold-items objective needs the warm task's {metric}")
    return float(sum(values) / len(values))


def cold_objective(
    model: Recommender, split: ColdSplit, metric: str, *, train: Interactions | None = None, ks: Any = (20,),
    device: str | None = None,
) -> tuple[float, dict[str, dict[str, float] | None]]:
    """The value :func:`gan4rec.tuning.tune` maximises on a cold-start split, read on VALIDATION only.

    ``model`` (fitted on ``train``, default ``split.train``) is evaluated on the validation warm task and,
    when it can score cold items (``model.cold_start``), the validation cold task; the value is
    :func:`cold_objective_value` of them. Returns the value and ``{"warm": metrics, "cold": metrics or None}``.
    """
    fit_on = split.train if train is None else train
    metrics, _ = _cold_metrics(model, split, "valid", fit_on, ks, device, tasks=("warm", "cold"))
    return cold_objective_value(metrics, metric), metrics


def run_cold(
    model_name: str,
    params: dict[str, Any],
    split: ColdSplit,
    data_info: dict[str, Any],
    protocol: Protocol,
    *,
    seed: int = 0,
    device: str | None = None,
    fitted: Recommender | None = None,
    fitted_seconds: float = 0.0,
) -> RunResult:
    """:func:`run_on_split` on a cold-start split: metrics for the warm, cold and overall tasks.

    The model is fitted on ``split.train`` with ``split.valid`` (warm validation plus the cold-validation
    items' interactions). A hybrid (``cold_start``) is then calibrated on the VALIDATION overall task
    (:func:`gan4rec.models.hybrid.common.calibrate`: a scale and offset of cold-item scores), and the chosen
    values are reused at the refit on ``split.full_train()`` (train plus warm validation), like the epoch
    count. Test is read once, for the three tasks (:mod:`gan4rec.evaluation.cold`). A model that cannot
    score cold items ranks them last and gets no cold-task metrics (``None``). ``result["metrics"]`` is
    ``{"valid": {task: metrics}, "test": {task: metrics}}``; ``test_eval`` is the overall task's and
    ``task_evals`` every task's.
    """
    from gan4rec.models.hybrid.common import HybridRecommender, calibrate

    model, fit_seconds = _fit(model_name, params, split, protocol, seed, device, fitted, fitted_seconds)
    calibration = None
    if isinstance(model, HybridRecommender):
        calibration = calibrate(model, split, protocol.metric)
        log.info("calibrated cold-item scores on validation: scale %g, offset %g (%s %.4f -> %.4f)",
                 calibration["cold_scale"], calibration["cold_offset"], protocol.metric,
                 calibration["uncalibrated"], calibration["value"])
    valid_metrics, _ = _cold_metrics(model, split, "valid", split.train, protocol.ks, device)
    test_train = split.train
    refit_params: dict[str, Any] = {}
    if protocol.refit == "full":
        refit_params = model.refit_params()
        if calibration is not None:
            refit_params.update(cold_scale=calibration["cold_scale"], cold_offset=calibration["cold_offset"])
        test_train = split.full_train()
        model, fit_seconds = _refit(model, model_name, {**params, **refit_params}, test_train, seed, device)
    t0 = time.perf_counter()
    test_metrics, test_evals = _cold_metrics(model, split, "test", test_train, protocol.ks, device)
    result = _record(model_name, model, data_info, protocol, seed, refit_params, fit_seconds,
                     time.perf_counter() - t0, {"valid": valid_metrics, "test": test_metrics},
                     cold_start=model.cold_start, calibration=calibration)
    return RunResult(model=model, split=split, result=result, test_eval=test_evals["overall"], task_evals=test_evals)


def evaluate_model(
    model: Recommender, meta: dict[str, Any], spec: DataSpec, protocol: Protocol, *, device: str | None = None
) -> dict[str, Any]:
    """Evaluate a saved model on the test part of ``spec``, re-split exactly as when it was trained.

    The split is rebuilt from the protocol stored with the model and must have the same fingerprint;
    otherwise the test set would not be the one held out from its training data. On a cold-items split the
    test metrics are per task, as :func:`run_cold` reports them (``None`` for the cold task of a model that
    cannot score cold items).
    """
    split, data_info = load_split(spec, protocol)
    assert split.test is not None
    saved = meta.get("split_fingerprint")
    if saved and saved != split.fingerprint:
        raise DataError(
            "the data and protocol given do not reproduce the split this model was trained on "
            f"(split fingerprint {split.fingerprint[:12]} != saved {saved[:12]})"
        )
    if not split.train.same_space(model.seen_):
        raise DataError("the data's users and items differ from the model's id maps")
    refit = protocol.refit == "full" or split.valid is None
    train = split.full_train() if refit else split.train
    extra: dict[str, Any] = {}
    if isinstance(split, ColdSplit):
        metrics: Any = _cold_metrics(model, split, "test", train, protocol.ks, device)[0]
        extra["cold_start"] = model.cold_start
    else:
        exclude = () if refit else (split.valid,)
        metrics = _evaluate(model, train, split.test, protocol, exclude=exclude, device=device).metrics  # type: ignore[arg-type]
    return {
        "model": model.name,
        "dataset": data_info,
        "protocol": protocol_record(protocol),
        "params": model.get_params(),
        **extra,
        "metrics": {"test": metrics},
        "versions": versions(),
    }
