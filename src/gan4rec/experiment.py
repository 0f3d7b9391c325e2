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
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan4rec.data.interactions import Interactions
from gan4rec.data.split import Split
from gan4rec.errors import DataError, MissingInputError
from gan4rec.models import create
from gan4rec.models.base import Recommender, versions

__all__ = [
    "DataSpec", "Protocol", "RunResult", "evaluate_model", "load_config", "load_split", "protocol_record", "run",
    "run_on_split",
]

log = logging.getLogger(__name__)

SPLIT_KINDS = ("random", "leave-k-out", "temporal")


@dataclass
class DataSpec:
    """Where the interactions come from and how they are read.

    Exactly one source: ``dataset`` (a registry name, ``synthetic`` by default), ``data`` (one file), or
    ``train`` and ``test`` (pre-split files).
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
    test_frac: float = 0.2
    valid_frac: float = 0.2
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


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML experiment config: ``model = "..."``, ``[params]``, ``[protocol]``, ``[data]``."""
    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"{p}: no such config file")
    try:
        cfg = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{p}: invalid TOML ({e})") from None
    allowed = {"model", "params", "protocol", "data", "description"}
    for key in cfg:
        if key not in allowed:
            raise DataError(f"{p}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
    for table in ("params", "protocol", "data"):
        if table in cfg and not isinstance(cfg[table], dict):
            raise DataError(f"{p}: [{table}] must be a table")
    proto_fields = {f.name for f in dataclasses.fields(Protocol)}
    for key in cfg.get("protocol", {}):
        if key not in proto_fields:
            raise DataError(f"{p}: unknown protocol key {key!r} (allowed: {', '.join(sorted(proto_fields))})")
    data_fields = {f.name for f in dataclasses.fields(DataSpec)}
    for key in cfg.get("data", {}):
        if key not in data_fields:
            raise DataError(f"{p}: unknown data key {key!r} (allowed: {', '.join(sorted(data_fields))})")
    return cfg


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
        if spec.min_user_interactions or spec.min_item_interactions:
            raise DataError("k-core filters do not apply to pre-split train/test files")
        assert spec.train is not None and spec.test is not None  # source() checked they come together
        fmt: Any = spec.format
        train, test = io.read_uir_pair(spec.train, spec.test, format=fmt, **read_kw)
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
        if protocol.split == "leave-k-out":
            split_kw = {"k": protocol.k, "valid_k": protocol.k if protocol.valid_frac > 0 else 0,
                        "random_state": protocol.split_seed}
        else:
            split_kw["test_frac"] = protocol.test_frac
            if protocol.split == "temporal":
                split_kw.pop("random_state")
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
    }
    return split, info


def _evaluate(
    model: Recommender, train: Interactions, target: Interactions, protocol: Protocol,
    exclude: tuple[Interactions, ...] = (), device: str | None = None,
) -> Any:
    from gan4rec.evaluation.evaluator import evaluate

    return evaluate(model.score, train, target, ks=protocol.ks, exclude=exclude, device=device)


def protocol_record(protocol: Protocol) -> dict[str, Any]:
    """The ``protocol`` key of a result: the split/refit choices plus the evaluator's defaults."""
    from gan4rec.evaluation.evaluator import PROTOCOL

    out = dataclasses.asdict(protocol)
    out["ks"] = list(protocol.ks)
    return {**out, "evaluation": PROTOCOL}


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
) -> RunResult:
    """Steps 3-5 of the protocol on an already-made split: fit with validation, refit, test once."""
    params = dict(params or {})
    model = create(model_name, params, random_state=seed, device=device)
    if split.test is None:
        raise DataError("the split has no test part to evaluate")

    t0 = time.perf_counter()
    model.fit(split.train, split.valid, metric=protocol.metric)
    fit_seconds = time.perf_counter() - t0
    valid_metrics = None
    if split.valid is not None:
        valid_metrics = _evaluate(model, split.train, split.valid, protocol, device=device).metrics
        log.info("validation %s = %.4f", protocol.metric, valid_metrics.get(protocol.metric, float("nan")))

    test_train, exclude = split.train, () if split.valid is None else (split.valid,)
    refit_params: dict[str, Any] = {}
    if split.valid is not None and protocol.refit == "full":
        refit_params = model.refit_params()
        history = model.history_
        model = create(model_name, {**params, **refit_params}, random_state=seed, device=device)
        test_train, exclude = split.full_train(), ()
        t0 = time.perf_counter()
        model.fit(test_train, None)
        fit_seconds = time.perf_counter() - t0
        model.history_ = history + model.history_ if history else model.history_

    t0 = time.perf_counter()
    test_eval = _evaluate(model, test_train, split.test, protocol, exclude=exclude, device=device)
    test_metrics = test_eval.metrics
    eval_seconds = time.perf_counter() - t0
    result = {
        "model": model_name,
        "dataset": data_info,
        "protocol": protocol_record(protocol),
        "seed": seed,
        "params": model.get_params(),
        "refit_params": refit_params,
        "fit_seconds": round(fit_seconds, 4),
        "eval_seconds": round(eval_seconds, 4),
        "metrics": {"valid": valid_metrics, "test": test_metrics},
        "versions": versions(),
    }
    return RunResult(model=model, split=split, result=result, test_eval=test_eval)


def evaluate_model(
    model: Recommender, meta: dict[str, Any], spec: DataSpec, protocol: Protocol, *, device: str | None = None
) -> dict[str, Any]:
    """Evaluate a saved model on the test part of ``spec``, re-split exactly as when it was trained.

    The split is rebuilt from the protocol stored with the model and must have the same fingerprint;
    otherwise the test set would not be the one held out from its training data.
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
    exclude = () if refit else (split.valid,)
    metrics = _evaluate(model, train, split.test, protocol, exclude=exclude, device=device).metrics  # type: ignore[arg-type]
    return {
        "model": model.name,
        "dataset": data_info,
        "protocol": protocol_record(protocol),
        "params": model.get_params(),
        "metrics": {"test": metrics},
        "versions": versions(),
    }
